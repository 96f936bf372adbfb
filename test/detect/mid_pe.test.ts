/**
 * YOLOS's mid position embeddings (YOLOS-S/B): no PyTorch reference holds them, so (1) all-zero
 * mid embeddings must leave the hustvl reference outputs unchanged (at 64x96 and at 48x80, where they
 * are resampled), (2) non-zero ones change the output, and the gradient w.r.t. them (through the
 * resampling at 48x80 too) must equal central differences of the model's own loss. (The Hugging
 * Face name the loader asks for, vit.encoder.mid_position_embeddings, is checked in yolos_parity.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, maxAbsDiff, rng } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { loadYolos } from '../../src/detect/load.js';
import { Yolos, emptyYolosCache } from '../../src/detect/yolos.js';
import { getBackend } from '../../src/backend/index.js';

const DIR = path.join(FIXTURES, 'yolos_det');
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
const t = (k: string) => { const v = ref.f32(k); return new Tensor(v.shape, v.data); };

function withMid(scale: number): Yolos {
  const { model } = loadYolos(DIR, getBackend('reference'));
  const m = new Yolos({ ...model.config, midPe: [4, 6] }, undefined, getBackend('reference'));
  for (const n of model.params.names()) m.params.get(n).set(model.params.get(n));
  const mid = m.params.get('backbone.mid_pos_embed');
  assert.equal(mid.length, 2 * (1 + 24 + 10) * 64);
  const r = rng(5);
  for (let i = 0; i < mid.length; i++) mid[i] = scale * (r() * 2 - 1);
  return m;
}

test('YOLOS mid position embeddings: zeros change nothing; non-zero ones change the output', () => {
  const m = withMid(0);
  for (const [x, k] of [['pixel_values', ''], ['x2', 'x2.']] as const) {
    const o = m.forward(t(x));
    assert.ok(maxAbsDiff(o.logits.data, ref.f32(`${k}pred_logits`).data) <= 1e-4 && maxAbsDiff(o.boxes.data, ref.f32(`${k}pred_boxes`).data) <= 1e-4, x);
  }
  const o = withMid(0.1).forward(t('pixel_values'));
  assert.ok(maxAbsDiff(o.logits.data, ref.f32('pred_logits').data) > 1e-3);
});

for (const x of ['pixel_values', 'x2'] as const) {
  test(`YOLOS mid position embeddings: gradient = central differences (${x}${x === 'x2' ? ', resampled 4x6 -> 3x5' : ''})`, () => {
    const m = withMid(0.1);
    const xin = t(x);
    const B = xin.shape[0]!;
    const r = rng(11);
    const wl = Float64Array.from({ length: B * 10 * 6 }, () => r() * 2 - 1), wb = Float64Array.from({ length: B * 10 * 4 }, () => r() * 2 - 1);
    const loss = () => { const o = m.forward(xin); let s = 0; o.logits.data.forEach((v, i) => { s += v * wl[i]!; }); o.boxes.data.forEach((v, i) => { s += v * wb[i]!; }); return s; };
    const cache = emptyYolosCache();
    m.forward(xin, { cache });
    const grads = m.params.like();
    m.backward(cache, Float32Array.from(wl), Float32Array.from(wb), grads);
    const g = grads.get('backbone.mid_pos_embed'), mid = m.params.get('backbone.mid_pos_embed');
    let gmax = 0;
    for (const v of g) gmax = Math.max(gmax, Math.abs(v));
    assert.ok(gmax > 1e-3);
    // elements of both layers: the class row, patch rows (used by every output grid cell), det rows
    const per = 35 * 64, picks = [0, 5, 64 + 3, 10 * 64 + 7, 24 * 64 + 63, 25 * 64 + 1, 34 * 64 + 9].flatMap((e) => [e, per + e]);
    let worst = 0;
    for (const e of picks) {
      const v = mid[e]!, h = 1e-2;
      mid[e] = v + h; const lp = loss();
      mid[e] = v - h; const lm = loss();
      mid[e] = v;
      const fd = (lp - lm) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - g[e]!));
      assert.ok(Math.abs(fd - g[e]!) <= 2e-3 * gmax + 2e-4, `mid_pos_embed[${e}]: backward ${g[e]} vs central difference ${fd}`);
    }
    console.log(`${x}: mid_pos_embed gradient vs central differences: worst ${worst.toExponential(2)} (max |g| ${gmax.toExponential(2)})`);
  });
}
