/**
 * Detection on image files: YOLOS's eval transform (datasets/transforms.py RandomResize([S],
 * max_size=M) on the PIL image: the short side to S unless the long side would pass M, both sides
 * floored to multiples of 16, PIL bilinear;
 * ToTensor; ImageNet mean/std — the same as YolosImageProcessor), zero padding bottom/right to the
 * batch's largest size (YOLOS ignores the padding mask, so a padded batch gives other outputs than
 * one image alone), the model, and PostProcess with each file's own size.
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { loadImage, type RawImage } from '../io/image.js';
import { resizePil } from '../io/resample.js';
import { pyRound } from '../io/preprocess_pixels.js';
import { postProcess } from './criterion.js';
import type { Yolos } from './yolos.js';
import { YOLOS_DEFAULT_PREPROCESS, type DetPreprocess } from './load.js';

export interface Detection {
  label: string;
  label_id: number;
  score: number;
  /** x0, y0, x1, y1 in the image's pixels */
  box: [number, number, number, number];
}

export interface DetectionResult {
  file: string;
  width: number;
  height: number;
  /** sorted by score, highest first */
  detections: Detection[];
}

export interface DetectOptions {
  /** keep detections with score >= threshold (default 0.5; 0 keeps every det token) */
  threshold?: number;
  /** at most this many per image, after the threshold */
  topK?: number;
  shortestEdge?: number;
  longestEdge?: number;
  /** images per forward pass (default 1: each image alone, unpadded) */
  batchSize?: number;
  /** normalisation (default ImageNet) */
  preprocess?: DetPreprocess;
}

/**
 * hustvl/YOLOS get_size_with_aspect_ratio (datasets/transforms.py resize): (oh, ow) for an image of
 * w x h, short side S unless the long side would pass M, then both sides floored to multiples of 16
 * (YOLOS's change to DETR's rule; also when the short side is S already).
 */
export function detResizeSize(w: number, h: number, S: number, M: number | null): [number, number] {
  let size = S;
  if (M !== null) {
    const mn = Math.min(w, h), mx = Math.max(w, h);
    if ((mx / mn) * size > M) size = pyRound((M * mn) / mx);
  }
  const f16 = (v: number) => v - (v % 16);
  if ((w <= h && w === size) || (h <= w && h === size)) return [f16(h), f16(w)];
  if (w < h) return [f16(Math.trunc((size * h) / w)), f16(size)];
  return [f16(size), f16(Math.trunc((size * w) / h))];
}

/** transformers' YolosImageProcessor get_size_with_aspect_ratio_yolos: (oh, ow), both floored to multiples of 16 */
export function detResizeSizeHf(w: number, h: number, S: number, M: number | null): [number, number] {
  let size = S, raw: number | null = null;
  if (M !== null) {
    const mn = Math.min(w, h), mx = Math.max(w, h);
    if ((mx / mn) * size > M) { raw = (M * mn) / mx; size = pyRound(raw); }
  }
  let oh: number, ow: number;
  if (w < h) { ow = size; oh = Math.trunc(((raw ?? size) * h) / w); }
  else if ((h <= w && h === size) || (w <= h && w === size)) { oh = h; ow = w; }
  else { oh = size; ow = Math.trunc(((raw ?? size) * w) / h); }
  return [oh - (oh % 16), ow - (ow % 16)];
}

/** An RGB image through the eval transform: pixel values (3, oh, ow) */
export function detPreprocessImage(img: RawImage, S: number, M: number | null, pp: DetPreprocess = YOLOS_DEFAULT_PREPROCESS): { pixels: Float32Array; h: number; w: number } {
  const [oh, ow] = (pp.sizeRule === 'hf' ? detResizeSizeHf : detResizeSize)(img.width, img.height, S, M);
  if (!(oh >= 1 && ow >= 1)) throw new VitkitError(`Image of ${img.width}x${img.height} resizes to ${ow}x${oh} at shortest edge ${S}, longest ${M}: too small`);
  const r = oh === img.height && ow === img.width ? img : resizePil(img, ow, oh, 'bilinear');
  const pixels = new Float32Array(3 * oh * ow); // (3, oh, ow)
  const n = oh * ow;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) pixels[c * n + i] = (Math.fround(r.data[i * 3 + c]! / 255) - pp.mean[c]!) / pp.std[c]!;
  }
  return { pixels, h: oh, w: ow };
}

/** Zero-pad (3, h, w) images bottom/right to the largest: (B, 3, Hm, Wm) */
export function padBatch(items: { pixels: Float32Array; h: number; w: number }[]): Tensor {
  const Hm = Math.max(...items.map((i) => i.h)), Wm = Math.max(...items.map((i) => i.w));
  const out = new Float32Array(items.length * 3 * Hm * Wm); // (B, 3, Hm, Wm)
  items.forEach((it, b) => {
    for (let c = 0; c < 3; c++) for (let y = 0; y < it.h; y++) {
      out.set(it.pixels.subarray((c * it.h + y) * it.w, (c * it.h + y + 1) * it.w), ((b * 3 + c) * Hm + y) * Wm);
    }
  });
  return new Tensor([items.length, 3, Hm, Wm], out);
}

function checkOptions(o: DetectOptions): void {
  const t = o.threshold ?? 0.5;
  if (!(t >= 0 && t <= 1)) throw new VitkitError(`Expected threshold in [0, 1] but received ${t}`);
  for (const [k, v, min] of [['topK', o.topK, 1], ['shortestEdge', o.shortestEdge, 1], ['longestEdge', o.longestEdge, 1], ['batchSize', o.batchSize, 1]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new VitkitError(`Expected ${k} an integer >= ${min} but received ${v}`);
  }
  if (o.shortestEdge !== undefined && o.longestEdge !== undefined && o.longestEdge < o.shortestEdge) {
    throw new VitkitError(`Expected longestEdge (${o.longestEdge}) >= shortestEdge (${o.shortestEdge})`);
  }
}

/** Detect objects in image files (or encoded bytes): one result per image, as `vitkit detect --json` prints them. */
export async function detect(model: Yolos, images: readonly (string | Uint8Array)[], options: DetectOptions = {}): Promise<DetectionResult[]> {
  checkOptions(options);
  const pp = options.preprocess ?? YOLOS_DEFAULT_PREPROCESS;
  const S = options.shortestEdge ?? pp.shortestEdge, M = options.longestEdge ?? pp.longestEdge;
  const threshold = options.threshold ?? 0.5, bs = options.batchSize ?? 1;
  const Q = model.numDetTokens, K1 = model.config.numClasses + 1;
  const labels = model.config.labels;
  const out: DetectionResult[] = [];
  for (let i = 0; i < images.length; i += bs) {
    const srcs = images.slice(i, i + bs);
    const imgs = await Promise.all(srcs.map((s, j) => loadImage(s, 3, typeof s === 'string' ? s : `image ${i + j}`)));
    const items = imgs.map((img) => detPreprocessImage(img, S, M, pp));
    const x = padBatch(items);
    const y = model.forward(x);
    const post = postProcess(y.logits.data, y.boxes.data, srcs.length, Q, K1, imgs.map((im) => [im.height, im.width] as [number, number]));
    post.forEach((p, b) => {
      const dets: Detection[] = [];
      for (let q = 0; q < Q; q++) {
        const score = p.scores[q]!;
        if (!Number.isFinite(score)) throw new VitkitError(`Expected finite scores from the model for image ${typeof srcs[b] === 'string' ? srcs[b] : i + b} but det token ${q} has ${score}`);
        if (score < threshold) continue;
        const id = p.labels[q]!;
        dets.push({ label: labels?.[id] ?? `class_${id}`, label_id: id, score, box: [p.boxes[4 * q]!, p.boxes[4 * q + 1]!, p.boxes[4 * q + 2]!, p.boxes[4 * q + 3]!] });
      }
      dets.sort((a, c) => c.score - a.score);
      const src = srcs[b]!;
      out.push({ file: typeof src === 'string' ? src : `image ${i + b}`, width: imgs[b]!.width, height: imgs[b]!.height, detections: options.topK ? dets.slice(0, options.topK) : dets });
    });
  }
  return out;
}
