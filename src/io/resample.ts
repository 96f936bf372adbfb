/**
 * Resamplers that reproduce, bit for bit where the reference is integer, the two implementations
 * vision checkpoints were trained and evaluated with:
 *
 * - `resizePil`: Pillow's `Image.resize` on 8-bit images (libImaging/Resample.c). Separable
 *   convolution; per output pixel the filter support is scaled by the downscale factor (this is the
 *   antialiasing), taps are normalised to sum 1 in double precision, converted to 22-bit fixed point
 *   (round half away from zero), accumulated in int32 starting from a rounding bias of 2^21, then
 *   shifted and clipped to 0..255. Horizontal pass first (only over the rows the vertical pass
 *   needs), then vertical; a pass whose axis is unchanged is skipped. NEAREST goes through Pillow's
 *   affine path (incremental source coordinate, truncation).
 * - `resizeTorchU8`: torchvision `F.resize` on uint8 tensors with antialias=True (ATen's
 *   separable uint8 kernel, used by transformers' torchvision image-processor backend): the same
 *   taps as Pillow but converted to int16 with a precision chosen per axis from the largest tap.
 *
 * Coefficient tables are computed once per axis and reused for every row / column. (torch's float
 * `interpolate`, used on tensors such as position embeddings, is src/nn/interpolate.ts.)
 */
import { expected } from '../errors.js';
import type { RawImage } from './pixels.js';

export type Filter = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos' | 'box' | 'hamming';

export const FILTERS: readonly Filter[] = ['nearest', 'bilinear', 'bicubic', 'lanczos', 'box', 'hamming'];

/** PIL's `Image.Resampling` integer codes (as stored in transformers' `resample`). */
export const PIL_RESAMPLE_CODES: Readonly<Record<number, Filter>> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

// ---------------------------------------------------------------------------------------------
// Pillow filters (double precision, as in Resample.c)

const F32_054 = Math.fround(0.54);
const F32_046 = Math.fround(0.46);

function boxFilter(x: number): number {
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}
function bilinearFilter(x: number): number {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
function hammingFilter(x: number): number {
  if (x < 0.0) x = -x;
  if (x === 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * Math.PI;
  // 0.54f and 0.46f are float literals in Pillow
  return (Math.sin(x) / x) * (F32_054 + F32_046 * Math.cos(x));
}
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
function sinc(x: number): number {
  if (x === 0.0) return 1.0;
  x = x * Math.PI;
  return Math.sin(x) / x;
}
function lanczosFilter(x: number): number {
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

interface PilFilter {
  fn: (x: number) => number;
  support: number;
}

const PIL_FILTERS: Record<Exclude<Filter, 'nearest'>, PilFilter> = {
  box: { fn: boxFilter, support: 0.5 },
  bilinear: { fn: bilinearFilter, support: 1.0 },
  hamming: { fn: hammingFilter, support: 1.0 },
  bicubic: { fn: bicubicFilter, support: 2.0 },
  lanczos: { fn: lanczosFilter, support: 3.0 },
};

/** Per-axis taps: output i reads input [xmin[i], xmin[i] + xsize[i]) with weights k[i*ksize ..]. */
export interface AxisCoeffs {
  ksize: number;
  xmin: Int32Array;
  xsize: Int32Array;
  /** normalised double taps */
  k: Float64Array;
}

/** Pillow's precompute_coeffs (box edges in0/in1 are C floats). */
export function pilCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: PilFilter): AxisCoeffs {
  in0 = Math.fround(in0);
  in1 = Math.fround(in1);
  const scale = (in1 - in0) / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const k = new Float64Array(outSize * ksize);
  const xminA = new Int32Array(outSize);
  const xsizeA = new Int32Array(outSize);
  const inv = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const off = xx * ksize;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * inv);
      k[off + x] = w;
      ww += w;
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) k[off + x] /= ww;
    xminA[xx] = xmin;
    xsizeA[xx] = Math.max(0, xmax);
  }
  return { ksize, xmin: xminA, xsize: xsizeA, k };
}

/** double taps -> fixed point with `bits` fractional bits, rounding half away from zero (C `(int)(v ± 0.5)`). */
function toFixed(k: Float64Array, bits: number): Int32Array {
  const out = new Int32Array(k.length);
  const s = 2 ** bits;
  for (let i = 0; i < k.length; i++) {
    const v = k[i] * s;
    out[i] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return out;
}

const PIL_PRECISION_BITS = 32 - 8 - 2;

/**
 * One separable fixed-point pass over interleaved 8-bit pixels. Sums are exact int32 (as in C:
 * |sum| < 2^31 for 8-bit inputs and normalised taps); `>> bits` then clipping to 0..255.
 */
function passU8(
  src: Uint8Array,
  inW: number,
  C: number,
  outW: number,
  outH: number,
  rowOffset: number,
  horizontal: boolean,
  c: AxisCoeffs,
  kk: Int32Array,
  bits: number,
): Uint8Array {
  const out = new Uint8Array(outW * outH * C);
  const clamped = new Uint8ClampedArray(out.buffer); // integer stores clip to 0..255
  const bias = 1 << (bits - 1);
  const { ksize, xmin, xsize } = c;
  const inRow = inW * C;
  if (horizontal) {
    for (let yy = 0; yy < outH; yy++) {
      const rowBase = (yy + rowOffset) * inRow;
      const outBase = yy * outW * C;
      for (let xx = 0; xx < outW; xx++) {
        const n = xsize[xx];
        const ko = xx * ksize;
        const sBase = rowBase + xmin[xx] * C;
        const o = outBase + xx * C;
        if (C === 3) {
          let s0 = bias;
          let s1 = bias;
          let s2 = bias;
          for (let x = 0, p = sBase; x < n; x++, p += 3) {
            const w = kk[ko + x];
            s0 = (s0 + Math.imul(src[p], w)) | 0;
            s1 = (s1 + Math.imul(src[p + 1], w)) | 0;
            s2 = (s2 + Math.imul(src[p + 2], w)) | 0;
          }
          clamped[o] = s0 >> bits;
          clamped[o + 1] = s1 >> bits;
          clamped[o + 2] = s2 >> bits;
        } else {
          for (let ch = 0; ch < C; ch++) {
            let s = bias;
            for (let x = 0, p = sBase + ch; x < n; x++, p += C) s = (s + Math.imul(src[p], kk[ko + x])) | 0;
            clamped[o + ch] = s >> bits;
          }
        }
      }
    }
  } else {
    const rowLen = outW * C; // == inW * C for a vertical pass
    const acc = new Int32Array(rowLen);
    for (let yy = 0; yy < outH; yy++) {
      const n = xsize[yy];
      const ko = yy * ksize;
      acc.fill(bias);
      for (let y = 0; y < n; y++) {
        const w = kk[ko + y];
        if (w === 0) continue;
        const base = (xmin[yy] + y) * inRow;
        for (let i = 0; i < rowLen; i++) acc[i] = (acc[i] + Math.imul(src[base + i], w)) | 0;
      }
      const ob = yy * rowLen;
      for (let i = 0; i < rowLen; i++) clamped[ob + i] = acc[i] >> bits;
    }
  }
  return out;
}

function checkImage(img: RawImage, what: string): void {
  if (!img || !(img.data instanceof Uint8Array)) throw expected('a RawImage with Uint8Array data', what, img);
  const { width, height, channels } = img;
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw expected('positive integer width and height', what, [width, height]);
  }
  if (img.data.length !== width * height * channels) {
    throw expected(`${width * height * channels} bytes (${height}x${width}x${channels})`, what, img.data.length);
  }
}

function checkSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw expected('positive integer output width and height', what, [width, height]);
  }
}

/**
 * PIL `Image.resize((width, height), filter, box)` on 8-bit interleaved pixels. `box` is the source
 * region [x0, y0, x1, y1] (default: the whole image).
 */
export function resizePil(
  img: RawImage,
  width: number,
  height: number,
  filter: Filter,
  box?: [number, number, number, number],
): RawImage {
  checkImage(img, 'the image to resize');
  checkSize(width, height, 'resizePil');
  if (!FILTERS.includes(filter)) throw expected(`one of ${FILTERS.join(', ')}`, 'the resize filter', filter);
  const b: [number, number, number, number] = box ? [...box] : [0, 0, img.width, img.height];
  if (b[0] < 0 || b[1] < 0 || b[2] > img.width || b[3] > img.height || b[2] - b[0] < 0 || b[3] - b[1] < 0) {
    throw expected(`a box inside (0, 0, ${img.width}, ${img.height})`, 'the resize box', b);
  }
  if (width === img.width && height === img.height && b[0] === 0 && b[1] === 0 && b[2] === img.width && b[3] === img.height) {
    return { ...img, data: img.data.slice() };
  }
  // Pillow: a very tall image is resized vertically first
  if (img.height > img.width * 100 && height < img.height) {
    const tmp = resizeCore(img, img.width, height, filter, [0, b[1], img.width, b[3]]);
    return resizeCore(tmp, width, height, filter, [b[0], 0, b[2], height]);
  }
  return resizeCore(img, width, height, filter, b);
}

function resizeCore(img: RawImage, xsize: number, ysize: number, filter: Filter, box: number[]): RawImage {
  const f32 = box.map(Math.fround);
  // integer box of exactly the output size: a crop
  if (f32[0] === Math.trunc(f32[0]) && f32[2] - f32[0] === xsize && f32[1] === Math.trunc(f32[1]) && f32[3] - f32[1] === ysize) {
    return cropImage(img, f32[0], f32[1], xsize, ysize);
  }
  if (filter === 'nearest') return nearestPil(img, xsize, ysize, f32);
  const fil = PIL_FILTERS[filter];
  const needH = xsize !== img.width || f32[0] !== 0 || f32[2] !== xsize;
  const needV = ysize !== img.height || f32[1] !== 0 || f32[3] !== ysize;
  const vert = pilCoeffs(img.height, f32[1], f32[3], ysize, fil);
  return separableU8(img, xsize, ysize, needH, needV, vert, () => pilCoeffs(img.width, f32[0], f32[2], xsize, fil), PIL_PRECISION_BITS, PIL_PRECISION_BITS);
}

function separableU8(
  img: RawImage,
  xsize: number,
  ysize: number,
  needH: boolean,
  needV: boolean,
  vert: AxisCoeffs,
  horizCoeffs: () => AxisCoeffs,
  bitsH: number | ((c: AxisCoeffs) => number),
  bitsV: number | ((c: AxisCoeffs) => number),
): RawImage {
  const C = img.channels;
  let data = img.data;
  let w = img.width;
  let h = img.height;
  const yFirst = vert.xmin[0];
  const yLast = vert.xmin[ysize - 1] + vert.xsize[ysize - 1];
  let vxmin = vert.xmin;
  if (needH) {
    const hc = horizCoeffs();
    const bh = typeof bitsH === 'number' ? bitsH : bitsH(hc);
    vxmin = vert.xmin.map((v) => v - yFirst);
    data = passU8(data, w, C, xsize, yLast - yFirst, yFirst, true, hc, toFixed(hc.k, bh), bh);
    w = xsize;
    h = yLast - yFirst;
  }
  if (needV) {
    const bv = typeof bitsV === 'number' ? bitsV : bitsV(vert);
    data = passU8(data, w, C, w, ysize, 0, false, { ...vert, xmin: vxmin }, toFixed(vert.k, bv), bv);
    h = ysize;
  } else if (!needH) {
    data = data.slice();
  }
  return { data, width: w, height: h, channels: C };
}

function cropImage(img: RawImage, x0: number, y0: number, w: number, h: number): RawImage {
  const C = img.channels;
  const out = new Uint8Array(w * h * C);
  for (let y = 0; y < h; y++) {
    const s = ((y + y0) * img.width + x0) * C;
    out.set(img.data.subarray(s, s + w * C), y * w * C);
  }
  return { data: out, width: w, height: h, channels: C };
}

/** Pillow's NEAREST resize: ImagingScaleAffine with incremental coordinates. */
function nearestPil(img: RawImage, xsize: number, ysize: number, box: number[]): RawImage {
  const C = img.channels;
  const a0 = (box[2] - box[0]) / xsize;
  const a4 = (box[3] - box[1]) / ysize;
  const out = new Uint8Array(xsize * ysize * C);
  const xin = new Int32Array(xsize).fill(-1);
  let xo = box[0] + a0 * 0.5;
  for (let x = 0; x < xsize; x++) {
    const xi = xo < 0 ? -1 : Math.trunc(xo);
    if (xi >= 0 && xi < img.width) xin[x] = xi;
    xo += a0;
  }
  let yo = box[1] + a4 * 0.5;
  for (let y = 0; y < ysize; y++) {
    const yi = yo < 0 ? -1 : Math.trunc(yo);
    if (yi >= 0 && yi < img.height) {
      const rb = yi * img.width;
      for (let x = 0; x < xsize; x++) {
        if (xin[x] < 0) continue;
        const s = (rb + xin[x]) * C;
        const o = (y * xsize + x) * C;
        for (let c = 0; c < C; c++) out[o + c] = img.data[s + c];
      }
    }
    yo += a4;
  }
  return { data: out, width: xsize, height: ysize, channels: C };
}

// ---------------------------------------------------------------------------------------------
// torch / torchvision uint8 antialiased resize (bilinear / bicubic)

function torchU8Precision(c: AxisCoeffs): number {
  let wtMax = 0;
  for (let i = 0; i < c.k.length; i++) if (c.k[i] > wtMax) wtMax = c.k[i];
  let p = 0;
  for (p = 0; p < 22; ++p) {
    const next = Math.trunc(0.5 + wtMax * 2 ** (p + 1));
    if (next >= 1 << 15) break;
  }
  return p;
}

/**
 * torchvision `F.resize(uint8 tensor, [height, width], BILINEAR|BICUBIC, antialias=True)`: Pillow's
 * taps (bicubic a = -0.5) in int16 fixed point with per-axis precision, horizontal pass first.
 */
export function resizeTorchU8(img: RawImage, width: number, height: number, filter: 'bilinear' | 'bicubic'): RawImage {
  checkImage(img, 'the image to resize');
  checkSize(width, height, 'resizeTorchU8');
  if (filter !== 'bilinear' && filter !== 'bicubic') throw expected('bilinear or bicubic', 'the torch resize filter', filter);
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  const fil = PIL_FILTERS[filter];
  const vert = pilCoeffs(img.height, 0, img.height, height, fil);
  return separableU8(
    img,
    width,
    height,
    width !== img.width,
    height !== img.height,
    vert,
    () => pilCoeffs(img.width, 0, img.width, width, fil),
    torchU8Precision,
    torchU8Precision,
  );
}

// ---------------------------------------------------------------------------------------------
// torch.nn.functional.interpolate on float32 (C, H, W)
