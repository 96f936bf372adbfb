/**
 * `interpolate`: `torch.nn.functional.interpolate(mode='bilinear'|'bicubic', align_corners=False,
 * antialias)` on float32 planes, including the float32 rounding of ATen's weight computation — the
 * tensor resampler the models use (position embeddings, augmentation of float images, medical
 * images), beside the 8-bit image resamplers of src/io/resample.ts.
 */
import { expected } from '../errors.js';

const f = Math.fround;

function aaFilterF32(mode: 'bicubic' | 'bilinear', x: number): number {
  x = Math.abs(x);
  if (mode === 'bilinear') return x < 1.0 ? f(1.0 - x) : 0.0;
  const a = -0.5;
  if (x < 1.0) return f(f(f(f(f((a + 2.0) * x) - (a + 3.0)) * x) * x) + 1.0);
  if (x < 2.0) return f(f(f(f(f(f(x - 5.0) * x) + 8.0) * x) - 4.0) * a);
  return 0.0;
}

interface FloatTaps {
  ksize: number;
  xmin: Int32Array;
  xsize: Int32Array;
  k: Float32Array;
}

/** ATen `_compute_indices_min_size_weights_aa` with scalar_t = float. */
function torchAaTaps(inSize: number, outSize: number, mode: 'bicubic' | 'bilinear'): FloatTaps {
  const interp = mode === 'bicubic' ? 4 : 2;
  const scale = f(inSize / outSize);
  const support = f(scale >= 1.0 ? interp * 0.5 * scale : interp * 0.5);
  const ksize = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1.0 ? f(1.0 / scale) : 1.0;
  const k = new Float32Array(outSize * ksize);
  const xminA = new Int32Array(outSize);
  const xsizeA = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const center = f(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f(center - support) + 0.5), 0);
    let xsize = Math.min(Math.trunc(f(center + support) + 0.5), inSize) - xmin;
    xsize = Math.min(Math.max(xsize, 0), ksize);
    const off = i * ksize;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = aaFilterF32(mode, f(f(f(j + xmin - center) + 0.5) * invscale));
      k[off + j] = w;
      total = f(total + w);
    }
    if (total !== 0) for (let j = 0; j < xsize; j++) k[off + j] = f(k[off + j] / total);
    xminA[i] = xmin;
    xsizeA[i] = xsize;
  }
  return { ksize, xmin: xminA, xsize: xsizeA, k };
}

/** Fixed 4-tap (bicubic, A = -0.75) or 2-tap (bilinear) weights of the non-antialiased kernels, indices clamped. */
function torchPlainTaps(inSize: number, outSize: number, mode: 'bicubic' | 'bilinear'): FloatTaps {
  const scale = f(inSize / outSize);
  if (mode === 'bilinear') {
    const ksize = 2;
    const idx = new Int32Array(outSize * 2);
    const k = new Float32Array(outSize * 2);
    for (let i = 0; i < outSize; i++) {
      let real = f(f(scale * (i + 0.5)) - 0.5);
      if (real < 0) real = 0;
      const i0 = Math.trunc(real);
      const i1 = i0 + (i0 < inSize - 1 ? 1 : 0);
      const l1 = f(Math.min(Math.max(f(real - i0), 0), 1));
      idx[2 * i] = i0;
      idx[2 * i + 1] = i1;
      k[2 * i] = f(1 - l1);
      k[2 * i + 1] = l1;
    }
    return { ksize, xmin: idx, xsize: new Int32Array(0), k };
  }
  const A = -0.75;
  const cc1 = (x: number) => f(f(f(f(f(A + 2) * x) - f(A + 3)) * x) * x + 1);
  const cc2 = (x: number) => f(f(f(f(f(A * x) - 5 * A) * x) + 8 * A) * x - 4 * A);
  const ksize = 4;
  const idx = new Int32Array(outSize * 4);
  const k = new Float32Array(outSize * 4);
  for (let i = 0; i < outSize; i++) {
    const real = f(f(scale * (i + 0.5)) - 0.5);
    const inIdx = Math.min(Math.floor(real), inSize - 1);
    const t = f(Math.min(Math.max(f(real - inIdx), 0), 1));
    const w = [cc2(f(t + 1)), cc1(t), cc1(f(1 - t)), cc2(f(f(1 - t) + 1))];
    for (let j = 0; j < 4; j++) {
      idx[4 * i + j] = Math.max(Math.min(inIdx + j - 1, inSize - 1), 0);
      k[4 * i + j] = w[j];
    }
  }
  return { ksize, xmin: idx, xsize: new Int32Array(0), k };
}

/**
 * `torch.nn.functional.interpolate(x, size=(outH, outW), mode, align_corners=False, antialias)` on
 * float32 planes `inp` of shape (C, H, W); returns (C, outH, outW).
 * antialias=true: ATen's separable AA kernel (Pillow-style support scaling; bicubic a = -0.5), width
 * pass first, unchanged axes skipped. antialias=false: the classic kernels (bicubic A = -0.75 with
 * clamped border indices; bilinear with the source index clamped at 0).
 */
export function interpolate(
  inp: Float32Array,
  C: number,
  H: number,
  W: number,
  outH: number,
  outW: number,
  mode: 'bicubic' | 'bilinear',
  antialias: boolean,
): Float32Array {
  if (mode !== 'bicubic' && mode !== 'bilinear') throw expected('bicubic or bilinear', 'the interpolate mode', mode);
  for (const [v, n] of [
    [C, 'C'],
    [H, 'H'],
    [W, 'W'],
    [outH, 'outH'],
    [outW, 'outW'],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw expected('a positive integer', `interpolate ${n}`, v);
  }
  if (inp.length !== C * H * W) throw expected(`${C * H * W} values (${C}x${H}x${W})`, 'the interpolate input', inp.length);
  if (!antialias) return interpolatePlain(inp, C, H, W, outH, outW, mode);
  if (H === outH && W === outW) return inp.slice();
  let cur = inp;
  let curW = W;
  if (outW !== W) {
    const t = torchAaTaps(W, outW, mode);
    const out = new Float32Array(C * H * outW);
    for (let r = 0; r < C * H; r++) {
      const ib = r * W;
      const ob = r * outW;
      for (let x = 0; x < outW; x++) {
        const ko = x * t.ksize;
        const n = t.xsize[x];
        const s0 = ib + t.xmin[x];
        let acc = f(cur[s0] * t.k[ko]);
        for (let j = 1; j < n; j++) acc = f(acc + f(cur[s0 + j] * t.k[ko + j]));
        out[ob + x] = n > 0 ? acc : 0;
      }
    }
    cur = out;
    curW = outW;
  }
  if (outH !== H) {
    const t = torchAaTaps(H, outH, mode);
    const out = new Float32Array(C * outH * curW);
    for (let c = 0; c < C; c++) {
      const pb = c * H * curW;
      for (let y = 0; y < outH; y++) {
        const ko = y * t.ksize;
        const n = t.xsize[y];
        const ob = (c * outH + y) * curW;
        for (let x = 0; x < curW; x++) {
          const s0 = pb + t.xmin[y] * curW + x;
          let acc = f(cur[s0] * t.k[ko]);
          for (let j = 1; j < n; j++) acc = f(acc + f(cur[s0 + j * curW] * t.k[ko + j]));
          out[ob + x] = n > 0 ? acc : 0;
        }
      }
    }
    cur = out;
  }
  return cur;
}

function interpolatePlain(
  inp: Float32Array,
  C: number,
  H: number,
  W: number,
  outH: number,
  outW: number,
  mode: 'bicubic' | 'bilinear',
): Float32Array {
  if (H === outH && W === outW) return inp.slice();
  const th = torchPlainTaps(H, outH, mode);
  const tw = torchPlainTaps(W, outW, mode);
  const n = th.ksize;
  const out = new Float32Array(C * outH * outW);
  for (let c = 0; c < C; c++) {
    const pb = c * H * W;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        // ATen's generic kernel: outer sum over the height taps of inner sums over the width taps
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const rb = pb + th.xmin[y * n + i] * W;
          let t = f(inp[rb + tw.xmin[x * n]] * tw.k[x * n]);
          for (let j = 1; j < n; j++) t = f(t + f(inp[rb + tw.xmin[x * n + j]] * tw.k[x * n + j]));
          acc = i === 0 ? f(t * th.k[y * n]) : f(acc + f(t * th.k[y * n + i]));
        }
        out[(c * outH + y) * outW + x] = acc;
      }
    }
  }
  return out;
}
