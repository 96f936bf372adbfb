/**
 * Absolute position embeddings: timm's resolution change (`resample_abs_pos_embed`) and the fixed
 * 2-D sin-cos table.
 */
import { expected } from '../errors.js';
import { interpolate } from '../nn/interpolate.js';

function gridOk(g: unknown, what: string): [number, number] {
  if (!Array.isArray(g) || g.length !== 2 || !g.every((v) => Number.isInteger(v) && v > 0)) {
    throw expected('[height, width] of positive integers', what, g);
  }
  return [g[0], g[1]];
}

/**
 * timm `resample_abs_pos_embed(posemb, new_size, old_size, num_prefix_tokens, 'bicubic', antialias=True)`:
 * posEmbed (1, numPrefix + oldH*oldW, D) -> (1, numPrefix + newH*newW, D). Prefix rows (class /
 * register tokens) are copied; the grid, as (D, oldH, oldW) planes, goes through
 * `F.interpolate(mode='bicubic', antialias=True, align_corners=False)` in float32.
 * antialias=false (config pos_embed_antialias false) is transformers' Dinov2Embeddings.interpolate_pos_encoding
 * (HF Dinov2Model): `F.interpolate(patch_pos_embed.to(float32), size=(H // patch, W // patch),
 * mode='bicubic', align_corners=False)`, antialias left at its default False, the class row copied: the
 * classic 4-tap cubic convolution, a = -0.75, source (dst + 0.5) * old / new - 0.5, indices clamped.
 * (Dinov2WithRegistersModel passes antialias=True, as timm does.) Older transformers releases passed
 * `scale_factor=((new + 0.1) / old)` instead of `size`: the same output grid, but torch then samples at
 * (dst + 0.5) * old / (new + 0.1) - 0.5, slightly different values; vitkit follows the `size` form.
 * numSuffix rows after the grid (YOLOS's detection-token positions) are copied like the prefix rows,
 * as YOLOS's InterpolateInitPosEmbed does (it resamples without antialias: pass antialias false).
 */
export function resampleAbsPosEmbed(
  posEmbed: Float32Array,
  D: number,
  oldGrid: [number, number],
  newGrid: [number, number],
  numPrefix: number,
  antialias = true,
  numSuffix = 0,
): Float32Array {
  if (!Number.isInteger(D) || D < 1) throw expected('a positive integer', 'the embedding dim of pos_embed', D);
  const [oh, ow] = gridOk(oldGrid, 'the old pos_embed grid');
  const [nh, nw] = gridOk(newGrid, 'the new pos_embed grid');
  if (!Number.isInteger(numPrefix) || numPrefix < 0) throw expected('a non-negative integer', 'the number of prefix tokens', numPrefix);
  if (!Number.isInteger(numSuffix) || numSuffix < 0) throw expected('a non-negative integer', 'the number of suffix tokens', numSuffix);
  const expectLen = (numPrefix + oh * ow + numSuffix) * D;
  if (!(posEmbed instanceof Float32Array) || posEmbed.length !== expectLen) {
    throw expected(
      `(1, ${numPrefix + oh * ow + numSuffix}, ${D}) = ${expectLen} values for a ${oh}x${ow} grid with ${numPrefix} prefix${numSuffix > 0 ? ` and ${numSuffix} suffix` : ''} tokens`,
      'pos_embed',
      posEmbed?.length,
    );
  }
  const out = new Float32Array((numPrefix + nh * nw + numSuffix) * D);
  out.set(posEmbed.subarray(0, numPrefix * D));
  if (numSuffix > 0) out.set(posEmbed.subarray((numPrefix + oh * ow) * D), (numPrefix + nh * nw) * D);
  if (oh === nh && ow === nw) {
    out.set(posEmbed.subarray(numPrefix * D, (numPrefix + oh * ow) * D), numPrefix * D);
    return out;
  }
  // (N, D) token rows -> (D, oh, ow) planes
  const n = oh * ow;
  const planes = new Float32Array(D * n);
  const base = numPrefix * D;
  for (let t = 0; t < n; t++) for (let d = 0; d < D; d++) planes[d * n + t] = posEmbed[base + t * D + d];
  const res = interpolate(planes, D, oh, ow, nh, nw, 'bicubic', antialias);
  const m = nh * nw;
  for (let t = 0; t < m; t++) for (let d = 0; d < D; d++) out[base + t * D + d] = res[d * m + t];
  return out;
}

/**
 * Fixed 2-D sin-cos position embedding, (gridH * gridW, D) row-major over (row, column).
 *
 * timm 1.0's VisionTransformer accepts only pos_embed in ('', 'none', 'learn') (its
 * `build_sincos2d_pos_embed` serves other models), so this follows MAE's
 * `get_2d_sincos_pos_embed` (also used by transformers' ViTMAE): the grid comes from
 * `np.meshgrid(grid_w, grid_h)`, so the first D/2 channels encode the column (w) coordinate and the
 * last D/2 the row (h) coordinate; within each half, D/4 sines then D/4 cosines of
 * pos * omega_k, omega_k = 1 / temperature^(k / (D/4)), computed in float64 and cast to float32.
 * No class-token row is included (MAE prepends a zero row when cls_token=True).
 */
export function sincos2dPosEmbed(gridH: number, gridW: number, D: number, temperature = 10000): Float32Array {
  gridOk([gridH, gridW], 'the sin-cos grid');
  if (!Number.isInteger(D) || D < 4 || D % 4 !== 0) throw expected('a positive multiple of 4', 'the sin-cos embedding dim', D);
  if (!(temperature > 0)) throw expected('a positive number', 'the sin-cos temperature', temperature);
  const q = D / 4;
  const omega = new Float64Array(q);
  for (let k = 0; k < q; k++) omega[k] = 1 / temperature ** (k / q);
  const out = new Float32Array(gridH * gridW * D);
  for (let y = 0; y < gridH; y++) {
    for (let x = 0; x < gridW; x++) {
      const o = (y * gridW + x) * D;
      for (let k = 0; k < q; k++) {
        const ax = x * omega[k];
        const ay = y * omega[k];
        out[o + k] = Math.sin(ax);
        out[o + q + k] = Math.cos(ax);
        out[o + 2 * q + k] = Math.sin(ay);
        out[o + 3 * q + k] = Math.cos(ay);
      }
    }
  }
  return out;
}
