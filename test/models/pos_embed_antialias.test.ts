/**
 * pos_embed_antialias = false: the position-embedding grid is resampled as torch's upsample_bicubic2d
 * (align_corners=False, antialias=False), i.e. the separable cubic convolution with a = -0.75, source
 * coordinate (dst + 0.5) * in / out - 0.5 (not clamped), the 4 taps' indices clamped to the border.
 * The reference below is an independent float64 implementation written from that definition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resampleAbsPosEmbed } from '../../src/models/pos_embed.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { randn, maxAbsDiff } from '../helpers.js';

const A = -0.75;
function cubic(x: number): number {
  const t = Math.abs(x);
  if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  return 0;
}
/** (out, in) weight matrix of one axis; `scale` is in / out (torch with `size`), or 1 / scale_factor when one is passed */
function axis(inN: number, outN: number, scale = inN / outN): number[][] {
  return Array.from({ length: outN }, (_, o) => {
    const src = (o + 0.5) * scale - 0.5;
    const f = Math.floor(src), t = src - f;
    const w = new Array<number>(inN).fill(0);
    for (let k = -1; k <= 2; k++) w[Math.min(Math.max(f + k, 0), inN - 1)]! += cubic(k - t);
    return w;
  });
}
/** rows (numPrefix + h*w, D) -> (numPrefix + H*W, D), plain bicubic (sampling scales in / out unless given) */
function plainBicubic(pe: Float32Array, D: number, [h, w]: [number, number], [H, W]: [number, number], numPrefix: number, scales?: [number, number]): Float64Array {
  const ry = axis(h, H, scales?.[0]), rx = axis(w, W, scales?.[1]);
  const out = new Float64Array((numPrefix + H * W) * D);
  for (let i = 0; i < numPrefix * D; i++) out[i] = pe[i]!;
  for (let Y = 0; Y < H; Y++) for (let X = 0; X < W; X++) for (let d = 0; d < D; d++) {
    let s = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) s += ry[Y]![y]! * rx[X]![x]! * pe[(numPrefix + y * w + x) * D + d]!;
    out[(numPrefix + Y * W + X) * D + d] = s;
  }
  return out;
}

test('cubic convolution sanity: weights sum to 1 and hit the samples at integer positions', () => {
  for (const [i, o] of [[3, 5], [7, 4], [4, 4]] as const) for (const row of axis(i, o)) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.deepEqual(axis(4, 4).map((r) => r.map((v) => Math.round(v * 1e9) / 1e9)), [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
});

for (const [from, to] of [[[3, 4], [5, 7]], [[6, 6], [4, 3]], [[4, 4], [9, 2]]] as [[number, number], [number, number]][]) {
  test(`resampleAbsPosEmbed antialias=false ${from.join('x')} -> ${to.join('x')} = torch bicubic (a = -0.75, align_corners False) within 1e-6`, () => {
    const D = 5, P = 1;
    const pe = randn((P + from[0] * from[1]) * D, 17 + to[0]);
    const got = resampleAbsPosEmbed(pe, D, from, to, P, false);
    const want = plainBicubic(pe, D, from, to, P);
    const err = maxAbsDiff(got, want);
    assert.ok(err < 1e-6, `max abs diff ${err}`);
    // and antialias (timm's default) is a different kernel: downsampling differs, which the flag must select
    if (to[0] < from[0] || to[1] < from[1]) assert.ok(maxAbsDiff(resampleAbsPosEmbed(pe, D, from, to, P, true), want) > 1e-3);
  });
}

test('a dynamic-size model with pos_embed_antialias false resamples its pos_embed without antialias (and true with it)', () => {
  const base = { img_size: 32, patch_size: 8, in_chans: 3, num_classes: 0, embed_dim: 8, depth: 1, num_heads: 2, dynamic_img_size: true, no_embed_class: true };
  for (const aa of [false, true]) {
    const m = new VisionTransformer(resolveConfig({ ...base, pos_embed_antialias: aa }));
    const pe = randn(16 * 8, 5);
    m.params.set('pos_embed', [1, 16, 8], pe, 'test');
    const layout = m.checkInput({ shape: [1, 3, 16, 24] } as never); // 2 x 3 grid, from 4 x 4: downsampling
    const r = m.posEmbedFor(layout);
    assert.equal(r.resampled, true);
    const plain = plainBicubic(pe, 8, [4, 4], [2, 3], 0);
    const err = maxAbsDiff(r.pos!, plain);
    if (aa) assert.ok(err > 1e-3, `antialias on should differ from the plain kernel (${err})`);
    else assert.ok(err < 1e-6, `antialias off: ${err}`);
  }
});

test('HF Dinov2Model resampling is transformers\' current `size=` form, not the older `scale_factor=(new + 0.1) / old` one', () => {
  // DINOv2's 224 -> 518 px at patch 14: a 16x16 table to 37x37 (and a non-square 37x30); class row copied
  const D = 2, P = 1;
  const pe = randn((P + 16 * 16) * D, 91);
  for (const to of [[37, 37], [37, 30]] as [number, number][]) {
    const got = resampleAbsPosEmbed(pe, D, [16, 16], to, P, false);
    assert.deepEqual([...got.subarray(0, D)], [...pe.subarray(0, D)]);
    // (1e-5: the source coordinates are float32, as torch's, up to 16 here, against this float64 reference)
    const sized = maxAbsDiff(got, plainBicubic(pe, D, [16, 16], to, P));
    assert.ok(sized < 1e-5, `size= form: ${sized}`);
    // torch samples at (dst + 0.5) / scale_factor - 0.5 when a scale_factor is passed: same grid, other values
    const legacy = maxAbsDiff(got, plainBicubic(pe, D, [16, 16], to, P, [16 / (to[0] + 0.1), 16 / (to[1] + 0.1)]));
    assert.ok(legacy > 1e-3, `the legacy form should differ measurably (${legacy})`);
  }
});
