/**
 * DeiT hard-distillation training: loss = (CE(class head, y) + CE(distillation head, argmax teacher)) / 2
 * (DeiT's DistillationLoss, 'hard', alpha 0.5; label smoothing on the first term only), checked
 * against a hand computation of the loss and of both heads' bias gradients, then by training:
 * the distillation head comes to predict the teacher's argmax.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn } from '../helpers.js';
import { resolveConfig } from '../../src/models/config.js';
import { createModel } from '../../src/models/registry.js';
import { getBackend } from '../../src/backend/index.js';
import { Tensor } from '../../src/tensor.js';
import { Trainer } from '../../src/train/trainer.js';

const K = 4, B = 3;
const TINY = { img_size: 8, patch_size: 4, in_chans: 3, num_classes: K, embed_dim: 12, depth: 1, num_heads: 3, mlp_ratio: 2 };

/** log-softmax of a row in double */
function logSoftmax(row: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(row));
  const lse = m + Math.log(Array.from(row).reduce((s, v) => s + Math.exp(v - m), 0));
  return Array.from(row, (v) => v - lse);
}

function setup(backendName: 'native' | 'reference') {
  const be = getBackend(backendName);
  const student = createModel(resolveConfig({ ...TINY, distilled: true }), { seed: 3, backend: be });
  // a head large enough that the teacher's argmax differs between images
  const teacher = createModel(resolveConfig({ ...TINY, embed_dim: 6, num_heads: 2 }), { seed: 9, backend: be });
  teacher.params.get('head.weight').set(randn(K * 6, 5, 3));
  const x = new Tensor([B, 3, 8, 8], randn(B * 3 * 64, 11, 2));
  const y = Int32Array.from([0, 1, 2]);
  return { student, teacher, x, y };
}

for (const backendName of ['native', 'reference'] as const) {
  test(`hard distillation (${backendName}): loss and head gradients equal the hand computation`, async () => {
    const { student, teacher, x, y } = setup(backendName);
    const eps = 0.1;
    // by hand: the teacher's argmax, the two heads' logits, then the DeiT loss and its bias gradients
    const tl = teacher.forward(x).data;
    const yt = Array.from({ length: B }, (_, b) => {
      let best = 0;
      for (let k = 1; k < K; k++) if (tl[b * K + k]! > tl[b * K + best]!) best = k;
      return best;
    });
    assert.ok(yt.some((t, b) => t !== y[b]), `the teacher (${yt}) must disagree with the labels somewhere for the test to mean anything`);
    const h = student.forwardHeads(student.forwardFeatures(x).features);
    let ce = 0, kd = 0;
    const gHead = new Float64Array(K), gDist = new Float64Array(K);
    for (let b = 0; b < B; b++) {
      const lc = logSoftmax(h.clsLogits!.data.subarray(b * K, (b + 1) * K));
      const ld = logSoftmax(h.distLogits!.data.subarray(b * K, (b + 1) * K));
      for (let k = 0; k < K; k++) {
        const q = eps / K + (k === y[b] ? 1 - eps : 0);
        ce -= q * lc[k]!;
        if (k === yt[b]) kd -= ld[k]!;
        gHead[k] += 0.5 * (Math.exp(lc[k]!) - q) / B;
        gDist[k] += 0.5 * (Math.exp(ld[k]!) - (k === yt[b] ? 1 : 0)) / B;
      }
    }
    const want = (ce / B + kd / B) / 2;
    const trainer = new Trainer(student, { lr: 0, weightDecay: 0, labelSmoothing: eps, teacher });
    const r = await trainer.step(x, y);
    assert.ok(Math.abs(r.loss - want) < 1e-6, `loss ${r.loss} vs hand ${want}`);
    assert.ok(Math.abs(r.clsLoss! - ce / B) < 1e-6 && Math.abs(r.distLoss! - kd / B) < 1e-6);
    const gh = (await trainer.dev.read(trainer.grads.get('head.bias'))).slice(), gd = (await trainer.dev.read(trainer.grads.get('head_dist.bias'))).slice();
    for (let k = 0; k < K; k++) {
      assert.ok(Math.abs(gh[k]! - gHead[k]!) < 1e-6, `head.bias grad[${k}] ${gh[k]} vs ${gHead[k]}`);
      assert.ok(Math.abs(gd[k]! - gDist[k]!) < 1e-6, `head_dist.bias grad[${k}] ${gd[k]} vs ${gDist[k]}`);
    }
  });
}

test('hard distillation: the distillation head learns the teacher, the class head the labels', async () => {
  const { student, teacher, x, y } = setup('native');
  const tl = teacher.forward(x).data;
  const yt = Array.from({ length: B }, (_, b) => tl.subarray(b * K, (b + 1) * K).indexOf(Math.max(...tl.subarray(b * K, (b + 1) * K))));
  assert.ok(yt.some((t, b) => t !== y[b]), `the teacher (${yt}) must disagree with the labels somewhere`);
  const trainer = new Trainer(student, { lr: 1e-2, weightDecay: 0, teacher });
  let first = 0, last = 0;
  for (let s = 0; s < 60; s++) {
    const r = await trainer.step(x, y);
    if (s === 0) first = r.loss;
    last = r.loss;
  }
  assert.ok(last < first / 4, `loss ${first} -> ${last}`);
  const h = student.forwardHeads(student.forwardFeatures(x).features);
  for (let b = 0; b < B; b++) {
    const d = h.distLogits!.data.subarray(b * K, (b + 1) * K), c = h.clsLogits!.data.subarray(b * K, (b + 1) * K);
    assert.equal(d.indexOf(Math.max(...d)), yt[b], `image ${b}: distillation head argmax`);
    assert.equal(c.indexOf(Math.max(...c)), y[b], `image ${b}: class head argmax`);
    // the eval output is the mean of both heads
    for (let k = 0; k < K; k++) assert.ok(Math.abs(h.logits!.data[b * K + k]! - (d[k]! + c[k]!) / 2) < 1e-6);
  }
});

test('a teacher needs a distilled student with the same classes', () => {
  const { teacher } = setup('reference');
  const plain = createModel(resolveConfig(TINY), { seed: 1 });
  assert.throws(() => new Trainer(plain, { lr: 1e-3, teacher }), /needs a distilled student/);
  const other = createModel(resolveConfig({ ...TINY, distilled: true, num_classes: 7 }), { seed: 1 });
  assert.throws(() => new Trainer(other, { lr: 1e-3, teacher }), /teacher has 4 classes but the student has 7/);
});
