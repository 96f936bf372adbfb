/**
 * The training augmentation of YOLOS / DETR (hustvl/YOLOS datasets/coco.py make_coco_transforms,
 * the transforms of datasets/transforms.py, which are DETR's):
 *
 *   RandomHorizontalFlip(),
 *   RandomSelect(RandomResize(scales, max_size),
 *                Compose(RandomResize([400, 500, 600]), RandomSizeCrop(384, 600), RandomResize(scales, max_size)))
 *
 * `augmentDetection` does the flip and, when a crop is asked for, RandomSelect's choice and the
 * crop branch up to the crop; the final multi-scale resize is the caller's (train_cli.ts). Every
 * draw comes from one seeded Rng in this order: flip, then (crop on) select, pre-crop size, crop
 * width, crop height, crop top, crop left. Targets are normalised (cx, cy, w, h), which resizing
 * leaves unchanged; the crop works in the pre-resized image's pixels as DETR's `crop` does.
 */
import { VitkitError } from '../errors.js';
import type { RawImage } from '../io/pixels.js';
import { resizePil } from '../io/resample.js';
import type { Rng } from '../data/rng.js';
import { cxcywhToXyxy, xyxyToCxcywh } from './box_ops.js';
import type { DetTarget } from './criterion.js';
import { detResizeSize } from './detect.js';

/** DETR's RandomSizeCrop(384, 600) */
export const DETR_CROP_SIZE: [number, number] = [384, 600];
/** DETR's RandomResize([400, 500, 600]) before the crop */
export const DETR_CROP_RESIZE: readonly number[] = [400, 500, 600];

/** A crop region as torchvision's F.crop takes it: rows [top, top + height), columns [left, left + width). */
export interface CropRegion {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** DETR `crop`'s boxes: what survives, with the input index of each kept box. */
export interface CroppedBoxes {
  /** (n', 4) x0 y0 x1 y1 in the crop's pixels, float32 as torch computes them */
  boxes: Float32Array;
  /** (n') the kept boxes' area after clipping */
  area: Float32Array;
  /** (n') index in the input of each kept box */
  keep: number[];
}

/**
 * DETR / YOLOS `crop` (datasets/transforms.py) on (n, 4) x0 y0 x1 y1 boxes in the image's pixels:
 * shift by (left, top), clip to [0, width] x [0, height], and drop every box whose clipped width or
 * height is not positive (zero area). In float32 like the authors' tensors.
 */
export function cropBoxes(boxes: ArrayLike<number>, r: CropRegion): CroppedBoxes {
  if (boxes.length % 4 !== 0) throw new VitkitError(`Expected boxes of shape (n, 4) but received ${boxes.length} values`);
  const n = boxes.length / 4, f = Math.fround;
  const out: number[] = [], area: number[] = [], keep: number[] = [];
  const off = [r.left, r.top, r.left, r.top], max = [r.width, r.height, r.width, r.height];
  for (let k = 0; k < n; k++) {
    const c = [0, 1, 2, 3].map((d) => Math.max(0, Math.min(f(f(boxes[4 * k + d]!) - off[d]!), max[d]!)));
    if (!(c[2]! > c[0]! && c[3]! > c[1]!)) continue;
    out.push(...c);
    area.push(f(f(c[2]! - c[0]!) * f(c[3]! - c[1]!)));
    keep.push(k);
  }
  return { boxes: Float32Array.from(out), area: Float32Array.from(area), keep };
}

function checkRegion(img: { width: number; height: number }, r: CropRegion): void {
  const ok = [r.top, r.left, r.height, r.width].every(Number.isInteger) && r.top >= 0 && r.left >= 0 && r.height >= 1 && r.width >= 1 &&
    r.top + r.height <= img.height && r.left + r.width <= img.width;
  if (!ok) throw new VitkitError(`Expected a crop region inside the ${img.width}x${img.height} image but received top ${r.top}, left ${r.left}, height ${r.height}, width ${r.width}`);
}

/** The pixels of region r of img (F.crop of a PIL image, for regions inside the image). */
export function cropImage(img: RawImage, r: CropRegion): RawImage {
  checkRegion(img, r);
  const C = img.channels, data = new Uint8Array(r.height * r.width * C); // (h, w, C)
  for (let y = 0; y < r.height; y++) {
    const src = ((r.top + y) * img.width + r.left) * C;
    data.set(img.data.subarray(src, src + r.width * C), y * r.width * C);
  }
  return { data, width: r.width, height: r.height, channels: C };
}

/**
 * RandomSizeCrop(minSize, maxSize) on a width x height image: crop width and height drawn
 * uniformly from [minSize, min(side, maxSize)] (Python's random.randint), then the position as
 * torchvision's RandomCrop.get_params (top in [0, height - h], left in [0, width - w]).
 */
export function sampleSizeCrop(rng: Rng, width: number, height: number, minSize: number, maxSize: number): CropRegion {
  if (Math.min(width, maxSize) < minSize || Math.min(height, maxSize) < minSize) {
    throw new VitkitError(`RandomSizeCrop(${minSize}, ${maxSize}) needs an image of at least ${minSize}x${minSize} but received ${width}x${height}`);
  }
  const w = rng.int(minSize, Math.min(width, maxSize));
  const h = rng.int(minSize, Math.min(height, maxSize));
  if (w === width && h === height) return { top: 0, left: 0, height: h, width: w };
  const top = rng.int(0, height - h), left = rng.int(0, width - w);
  return { top, left, height: h, width: w };
}

/** Horizontal flip of normalised cx cy w h boxes: cx -> 1 - cx (YOLOS RandomHorizontalFlip). */
export function flipTarget(t: DetTarget): DetTarget {
  const b = Float32Array.from(t.boxes); // (n, 4)
  for (let i = 0; i < b.length; i += 4) b[i] = 1 - b[i]!;
  return { labels: t.labels, boxes: b };
}

/** Mirror an interleaved image left to right. */
export function flipImage(img: RawImage): RawImage {
  const C = img.channels, W = img.width, d = new Uint8Array(img.data.length); // (H, W, C)
  for (let y = 0; y < img.height; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) d[(y * W + x) * C + c] = img.data[(y * W + W - 1 - x) * C + c]!;
  return { ...img, data: d };
}

/** The crop branch of RandomSelect: RandomResize(resize) then RandomSizeCrop(size[0], size[1]). */
export interface DetCropOptions {
  /** RandomSizeCrop's min and max side (DETR: 384, 600) */
  size: [number, number];
  /** RandomResize's short sides before the crop (DETR: 400, 500, 600) */
  resize: readonly number[];
}

/** Check crop options before any image is read: every pre-crop size must leave room for the smallest crop. */
export function checkCropOptions(c: DetCropOptions, what = '--random-size-crop'): void {
  const [mn, mx] = c.size;
  if (!(Number.isInteger(mn) && Number.isInteger(mx) && mn >= 1 && mx >= mn)) throw new VitkitError(`Expected ${what} min,max integers with 1 <= min <= max but received ${mn},${mx}`);
  if (c.resize.length === 0 || !c.resize.every((s) => Number.isInteger(s) && s >= mn)) {
    throw new VitkitError(`Expected the pre-crop short sides (${c.resize.join(', ')}) to be integers >= ${what}'s min ${mn}: the crop cannot be larger than the image`);
  }
}

/**
 * Flip (p 0.5) and, with `crop`, RandomSelect (p 0.5 the plain branch) and the crop branch up to
 * the crop, of one image and its normalised (cx, cy, w, h) target. The boxes the crop leaves with
 * zero area are dropped (their labels too); a crop may leave none.
 */
export function augmentDetection(img: RawImage, target: DetTarget, rng: Rng, crop: DetCropOptions | null): { img: RawImage; target: DetTarget; cropped: boolean } {
  let im = img, t = target;
  if (rng.next() < 0.5) { im = flipImage(im); t = flipTarget(t); }
  if (!crop || rng.next() < 0.5) return { img: im, target: t, cropped: false };
  const size = crop.resize[Math.floor(rng.next() * crop.resize.length)]!;
  const [oh, ow] = detResizeSize(im.width, im.height, size, null);
  const resized = oh === im.height && ow === im.width ? im : resizePil(im, ow, oh, 'bilinear');
  const r = sampleSizeCrop(rng, ow, oh, crop.size[0], crop.size[1]);
  const n = t.labels.length;
  const abs = cxcywhToXyxy(t.boxes, n); // (n, 4) normalised x0 y0 x1 y1
  for (let k = 0; k < n; k++) {
    abs[4 * k] = Math.fround(abs[4 * k]! * ow); abs[4 * k + 1] = Math.fround(abs[4 * k + 1]! * oh);
    abs[4 * k + 2] = Math.fround(abs[4 * k + 2]! * ow); abs[4 * k + 3] = Math.fround(abs[4 * k + 3]! * oh);
  }
  const c = cropBoxes(abs, r);
  const norm = xyxyToCxcywh(c.boxes, c.keep.length); // (n', 4) in the crop's pixels
  for (let k = 0; k < norm.length; k += 4) { norm[k]! /= r.width; norm[k + 1]! /= r.height; norm[k + 2]! /= r.width; norm[k + 3]! /= r.height; }
  return { img: cropImage(resized, r), target: { labels: c.keep.map((k) => t.labels[k]!), boxes: Float32Array.from(norm) }, cropped: true };
}
