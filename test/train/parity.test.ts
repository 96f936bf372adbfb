/**
 * Training parity with timm / PyTorch on one batch (test/fixtures/train_tiny, a copy of
 * shared/refs/timm_train_tiny made by PyTorch): step-1 logits, loss and every parameter's gradient,
 * then the losses and parameters of 3 AdamW steps. Runs on the native and the reference backend
 * (the checks and tolerances: ./train_tiny.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxAbs } from '../helpers.js';
import type { ForwardCache } from '../../src/models/vit.js';
import { getBackend } from '../../src/backend/index.js';
import { crossEntropy } from '../../src/train/loss.js';
import { vitBackward } from '../../src/train/backward.js';
import { Trainer } from '../../src/train/trainer.js';
import { TRAIN_TINY_OPTS, TRAIN_TINY_SKIP, checkAfter3, checkStep1Grads, setupTrainTiny } from './train_tiny.js';

for (const backendName of ['native', 'reference'] as const) {
  test(`timm parity (${backendName}): step-1 logits, loss and every gradient`, { skip: TRAIN_TINY_SKIP }, () => {
    const { model, ref, x, y, D } = setupTrainTiny(getBackend(backendName));
    const cache = {} as ForwardCache;
    const logits = model.forward(x, { cache });
    const refLogits = ref.f32('logits').data;
    const logitErr = maxAbs(logits.data.map((v, i) => v - refLogits[i]!));
    const { loss, dlogits } = crossEntropy(logits, y, 0.1);
    const refLoss = ref.f32('losses').data[0]!;
    const grads = model.params.like();
    vitBackward(model, cache, dlogits, grads);
    const summary = checkStep1Grads(model.params.names(), (n) => grads.get(n), ref, D);
    console.log(`[${backendName}] logits max err ${logitErr.toExponential(2)}, loss ${loss} vs ${refLoss} (err ${Math.abs(loss - refLoss).toExponential(2)}), ${summary}`);
    assert.ok(logitErr <= 1e-5 * Math.max(1, maxAbs(refLogits)), `logits max abs error ${logitErr}`);
    assert.ok(Math.abs(loss - refLoss) <= 1e-5, `loss ${loss} vs ${refLoss}`);
  });

  test(`timm parity (${backendName}): 3 AdamW steps (losses, parameters)`, { skip: TRAIN_TINY_SKIP }, async () => {
    const { model, ref, x, y, D } = setupTrainTiny(getBackend(backendName));
    const trainer = new Trainer(model, TRAIN_TINY_OPTS);
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) {
      const r = await trainer.step(x, y);
      assert.equal(r.lr, 1e-3);
      losses.push(r.loss);
    }
    console.log(`[${backendName}] ${checkAfter3(model.params.names(), (n) => model.params.get(n), losses, ref, D)}`);
  });
}
