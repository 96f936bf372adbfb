/**
 * MAE training parity against facebookresearch/mae in float64 (test/fixtures/mae/train_ref.safetensors,
 * a copy of shared/refs/mae): step-1 gradients of every parameter within 1e-4 x the tensor's max |g|,
 * and the parameters after 3 AdamW steps (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.05 except
 * ndim 1 and biases: MAE's pre-training groups) under the after-3 rule of shared/refs/README.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { checkAfter3Rule, checkGrads } from './checks.js';
import { loadMae } from '../../src/mae/load.js';
import type { MaeCache } from '../../src/mae/model.js';
import { AdamW } from '../../src/train/optim.js';
import { maeAdamWOptions } from '../../src/train/mae_train.js';

const DIR = path.join(FIXTURES, 'mae');
const tr = readSafetensors(path.join(DIR, 'train_ref.safetensors'));

test('MAE step-1 gradients and 3 AdamW steps = facebookresearch/mae in float64', (t) => {
  const model = loadMae(DIR);
  const names = model.params.names();
  assert.deepEqual(names.map((n) => `grad.${n}`).sort(), tr.keys().filter((k) => k.startsWith('grad.')).sort());
  const x = tr.f32('x'), noise = tr.f32('noise').data;
  const opt = new AdamW(model.params, maeAdamWOptions(1e-3));
  // MAE's groups: decay 0.05 on every tensor of ndim > 1 that is not a bias (cls_token and mask_token included)
  assert.equal(opt.segments.find((s) => s.name === 'cls_token')!.weightDecay, 0.05);
  assert.equal(opt.segments.find((s) => s.name === 'blocks.0.norm1.weight')!.weightDecay, 0);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const cache = {} as MaeCache;
    const out = model.forward(x.data, x.shape, { noise, cache });
    losses.push(out.loss);
    const grads = model.params.like();
    model.backward(cache, out.pred, grads);
    if (step === 0) t.diagnostic(checkGrads(names, (n) => grads.get(n), tr));
    opt.step(grads);
  }
  const refLosses = tr.f32('losses').data;
  for (let s = 0; s < 3; s++) assert.ok(Math.abs(losses[s]! - refLosses[s]!) <= 1e-5, `loss ${s}: ${losses[s]} vs ${refLosses[s]}`);
  t.diagnostic(`losses ${losses.map((l) => l.toFixed(7))} vs ${[...refLosses].map((l) => l.toFixed(7))}`);
  t.diagnostic(checkAfter3Rule(names, (n) => model.params.get(n), tr, 1e-3, 1e-8));
});
