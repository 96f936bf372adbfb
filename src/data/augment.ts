/**
 * Training augmentation, each a small pure function of the image and a seeded generator:
 * - random translation for digits: pad by `pad` with the background value, random crop back to
 *   the original size (../shared/anchors/mnist_pytorch_calibration.py's `shift`);
 * - timm's RandomResizedCropAndInterpolation (scale (0.08, 1), ratio (3/4, 4/3)) and a random
 *   horizontal flip (p 0.5) for photos;
 * - timm's Mixup / CutMix in 'batch' mode with soft, label-smoothed targets.
 */
import { cropImage, type RawImage } from '../io/image.js';
import { resizePil, type Filter } from '../io/resample.js';
import { interpolate } from '../nn/interpolate.js';
import { pyRound } from '../io/preprocess.js';
import type { Rng } from './rng.js';

export interface MixupSpec {
  /** Beta(alpha, alpha) for mixup; 0 disables it */
  mixupAlpha: number;
  /** Beta(alpha, alpha) for cutmix; 0 disables it */
  cutmixAlpha: number;
  /** probability of mixing a batch at all (timm's mix_prob, default 1) */
  prob: number;
  /** probability of cutmix rather than mixup when both are enabled (timm default 0.5) */
  switchProb: number;
  /** label smoothing folded into the soft targets */
  labelSmoothing: number;
  numClasses: number;
}

export interface AugmentSpec {
  /** 'shift': random translation (digits); 'rrc_flip': random resized crop + flip (photos); 'none' */
  kind: 'none' | 'shift' | 'rrc_flip';
  /** shift: the maximum translation in pixels */
  pad: number;
  /** rrc: area fraction range */
  scale: [number, number];
  /** rrc: aspect ratio range */
  ratio: [number, number];
  /** probability of a horizontal flip (rrc_flip) */
  flip: number;
  mixup: MixupSpec | null;
}

export function defaultAugment(kind: AugmentSpec['kind'], mixup: MixupSpec | null = null): AugmentSpec {
  return { kind, pad: 2, scale: [0.08, 1], ratio: [3 / 4, 4 / 3], flip: 0.5, mixup };
}

/** Translate an (H, W, C) u8 image by up to ±pad pixels: out[y][x] = padded[y + i][x + j], i, j in [0, 2 pad]. */
export function shiftU8(img: RawImage, pad: number, rng: Rng, fill = 0): RawImage {
  const i = rng.int(0, 2 * pad);
  const j = rng.int(0, 2 * pad);
  return translateU8(img, i - pad, j - pad, fill);
}

/** out[y][x] = img[y + dy][x + dx], `fill` outside. */
export function translateU8(img: RawImage, dy: number, dx: number, fill = 0): RawImage {
  const { width: W, height: H, channels: C } = img;
  const out = new Uint8Array(W * H * C).fill(fill);
  for (let y = 0; y < H; y++) {
    const sy = y + dy;
    if (sy < 0 || sy >= H) continue;
    const x0 = Math.max(0, -dx);
    const x1 = Math.min(W, W - dx);
    if (x1 <= x0) continue;
    out.set(img.data.subarray((sy * W + x0 + dx) * C, (sy * W + x1 + dx) * C), (y * W + x0) * C);
  }
  return { data: out, width: W, height: H, channels: C };
}

/** Translate (C, H, W) float planes, `fill[c]` outside. */
export function shiftF32(x: Float32Array, C: number, H: number, W: number, pad: number, rng: Rng, fill: number[]): Float32Array {
  const dy = rng.int(0, 2 * pad) - pad;
  const dx = rng.int(0, 2 * pad) - pad;
  const out = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    const plane = c * H * W;
    out.fill(fill[c] ?? 0, plane, plane + H * W);
    for (let y = 0; y < H; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= H) continue;
      const x0 = Math.max(0, -dx);
      const x1 = Math.min(W, W - dx);
      if (x1 <= x0) continue;
      out.set(x.subarray(plane + sy * W + x0 + dx, plane + sy * W + x1 + dx), plane + y * W + x0);
    }
  }
  return out;
}

/** timm RandomResizedCropAndInterpolation.get_params: [top, left, h, w] of the crop. */
export function rrcParams(H: number, W: number, scale: [number, number], ratio: [number, number], rng: Rng): [number, number, number, number] {
  const area = W * H;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = rng.uniform(scale[0], scale[1]) * area;
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w <= W && h <= H && w > 0 && h > 0) {
      const i = rng.int(0, H - h);
      const j = rng.int(0, W - w);
      return [i, j, h, w];
    }
  }
  // fallback: central crop
  const inRatio = W / H;
  let w: number;
  let h: number;
  if (inRatio < Math.min(...ratio)) {
    w = W;
    h = pyRound(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    h = H;
    w = pyRound(h * Math.max(...ratio));
  } else {
    w = W;
    h = H;
  }
  return [Math.floor((H - h) / 2), Math.floor((W - w) / 2), h, w];
}


/** Mirror an (H, W, C) u8 image left-right. */
export function flipU8(img: RawImage): RawImage {
  const { width: W, height: H, channels: C } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = (y * W + x) * C;
      const d = (y * W + (W - 1 - x)) * C;
      for (let c = 0; c < C; c++) out[d + c] = img.data[s + c]!;
    }
  }
  return { data: out, width: W, height: H, channels: C };
}

/** Mirror (C, H, W) float planes left-right, in place. */
export function flipF32(x: Float32Array, C: number, H: number, W: number): void {
  for (let r = 0; r < C * H; r++) {
    const o = r * W;
    for (let a = 0, b = W - 1; a < b; a++, b--) {
      const t = x[o + a]!;
      x[o + a] = x[o + b]!;
      x[o + b] = t;
    }
  }
}

/** RandomResizedCrop (PIL crop, then Image.resize with `filter`) to outH x outW, then flip with probability `flip`. */
export function rrcFlipU8(img: RawImage, outH: number, outW: number, spec: AugmentSpec, filter: Filter, rng: Rng): RawImage {
  const [top, left, h, w] = rrcParams(img.height, img.width, spec.scale, spec.ratio, rng);
  let out = resizePil(cropImage(img, top, left, h, w), outW, outH, filter);
  if (rng.next() < spec.flip) out = flipU8(out);
  return out;
}

/**
 * RandomResizedCrop on (C, H, W) float planes to (C, outH, outW) (torchvision on tensors: torch
 * `interpolate(antialias=True)`, bilinear unless `mode` says bicubic), then flip with probability
 * `flip`; the same draws, in the same order, as rrcFlipU8.
 */
export function rrcFlipF32(x: Float32Array, C: number, H: number, W: number, spec: AugmentSpec, rng: Rng,
  outH = H, outW = W, mode: 'bilinear' | 'bicubic' = 'bilinear'): Float32Array {
  const [top, left, h, w] = rrcParams(H, W, spec.scale, spec.ratio, rng);
  const crop = new Float32Array(C * h * w);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) {
      const s = c * H * W + (y + top) * W + left;
      crop.set(x.subarray(s, s + w), c * h * w + y * w);
    }
  }
  const out = h === outH && w === outW ? crop : interpolate(crop, C, h, w, outH, outW, mode, true); // (C, outH, outW)
  if (rng.next() < spec.flip) flipF32(out, C, outH, outW);
  return out;
}

/** timm mixup_target: smoothed one-hot of y mixed with that of the reversed batch. (B, K) */
export function mixupTargets(y: Int32Array, K: number, lam: number, smoothing: number): Float32Array {
  const B = y.length;
  const off = smoothing / K;
  const on = 1 - smoothing + off;
  const t = new Float32Array(B * K);
  for (let b = 0; b < B; b++) {
    const y1 = y[b]!;
    const y2 = y[B - 1 - b]!;
    for (let k = 0; k < K; k++) t[b * K + k] = (k === y1 ? on : off) * lam + (k === y2 ? on : off) * (1 - lam);
  }
  return t;
}

/**
 * timm Mixup.__call__ in 'batch' mode on x (B, C, H, W), in place: one lambda per batch, mixup
 * x = lam x + (1 - lam) flip(x), or cutmix of a box from flip(x) with lambda corrected to the box
 * area. Returns the soft targets (B, K) and lambda.
 */
export function mixupBatch(x: Float32Array, y: Int32Array, C: number, H: number, W: number, spec: MixupSpec, rng: Rng): { soft: Float32Array; lam: number; cutmix: boolean } {
  const B = y.length;
  let lam = 1;
  let useCutmix = false;
  if (rng.next() < spec.prob) {
    let lamMix: number;
    if (spec.mixupAlpha > 0 && spec.cutmixAlpha > 0) {
      useCutmix = rng.next() < spec.switchProb;
      lamMix = useCutmix ? rng.beta(spec.cutmixAlpha, spec.cutmixAlpha) : rng.beta(spec.mixupAlpha, spec.mixupAlpha);
    } else if (spec.mixupAlpha > 0) {
      lamMix = rng.beta(spec.mixupAlpha, spec.mixupAlpha);
    } else {
      useCutmix = true;
      lamMix = rng.beta(spec.cutmixAlpha, spec.cutmixAlpha);
    }
    lam = lamMix;
  }
  const per = C * H * W;
  if (lam !== 1) {
    const orig = x.slice();
    if (useCutmix) {
      // rand_bbox + correct_lam
      const r = Math.sqrt(1 - lam);
      const cutH = Math.trunc(H * r);
      const cutW = Math.trunc(W * r);
      const cy = rng.int(0, H - 1);
      const cx = rng.int(0, W - 1);
      const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
      const yl = clip(cy - Math.floor(cutH / 2), H);
      const yh = clip(cy + Math.floor(cutH / 2), H);
      const xl = clip(cx - Math.floor(cutW / 2), W);
      const xh = clip(cx + Math.floor(cutW / 2), W);
      for (let b = 0; b < B; b++) {
        const src = (B - 1 - b) * per;
        for (let c = 0; c < C; c++) {
          for (let yy = yl; yy < yh; yy++) {
            const o = c * H * W + yy * W;
            x.set(orig.subarray(src + o + xl, src + o + xh), b * per + o + xl);
          }
        }
      }
      lam = 1 - ((yh - yl) * (xh - xl)) / (H * W);
    } else {
      const a = Math.fround(lam);
      const bcoef = Math.fround(1 - lam);
      for (let b = 0; b < B; b++) {
        const src = (B - 1 - b) * per;
        const dst = b * per;
        for (let i = 0; i < per; i++) x[dst + i] = Math.fround(orig[dst + i]! * a) + Math.fround(orig[src + i]! * bcoef);
      }
    }
  }
  return { soft: mixupTargets(y, spec.numClasses, lam, spec.labelSmoothing), lam, cutmix: useCutmix };
}
