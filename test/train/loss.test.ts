/** Cross entropy against hand-derived values (2 classes, p = [1/4, 3/4]). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossEntropy } from '../../src/train/loss.js';
import { Tensor } from '../../src/tensor.js';
import { VitkitError } from '../../src/errors.js';

const LN3 = Math.log(3);
const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('cross entropy with label smoothing: hand-derived 2-class value and gradient', () => {
  // row 0: logits [0, ln 3] -> p = [1/4, 3/4], label 0; row 1: logits [ln 3, 0] -> p = [3/4, 1/4], label 0
  const logits = new Float32Array([0, LN3, LN3, 0]);
  const eps = 0.2;
  // torch: (1 - eps) * NLL + eps * mean_k(-log p_k); q = (1 - eps) onehot + eps / K = [0.9, 0.1]
  const row0 = (1 - eps) * Math.log(4) + eps * 0.5 * (Math.log(4) + Math.log(4 / 3));
  const row1 = (1 - eps) * Math.log(4 / 3) + eps * 0.5 * (Math.log(4 / 3) + Math.log(4));
  const { loss, dlogits } = crossEntropy(logits, new Int32Array([0, 0]), eps);
  close(loss, (row0 + row1) / 2);
  // dlogits = (p - q) / B
  const want = [(0.25 - 0.9) / 2, (0.75 - 0.1) / 2, (0.75 - 0.9) / 2, (0.25 - 0.1) / 2];
  want.forEach((w, i) => close(dlogits[i]!, w));
});

test('cross entropy without smoothing is -log p[y]; Tensor logits give K', () => {
  const { loss } = crossEntropy(new Tensor([1, 2], new Float32Array([0, LN3])), new Int32Array([1]), 0);
  close(loss, Math.log(4 / 3));
});

test('soft targets (SoftTargetCrossEntropy): hand-derived value and gradient', () => {
  const { loss, dlogits } = crossEntropy(new Float32Array([0, LN3]), new Float32Array([0.3, 0.7]), 0, 2);
  close(loss, -0.3 * Math.log(0.25) - 0.7 * Math.log(0.75));
  close(dlogits[0]!, 0.25 - 0.3);
  close(dlogits[1]!, 0.75 - 0.7);
  // one-hot soft targets with smoothing = hard labels with smoothing (torch's probability-target path)
  const a = crossEntropy(new Float32Array([0.3, -1, 2]), new Float32Array([0, 0, 1]), 0.1, 3);
  const b = crossEntropy(new Float32Array([0.3, -1, 2]), new Int32Array([2]), 0.1);
  close(a.loss, b.loss, 1e-12);
});

test('cross entropy is stable for large logits', () => {
  const { loss, dlogits } = crossEntropy(new Float32Array([1000, 0]), new Int32Array([1]), 0);
  close(loss, 1000, 1e-3);
  close(dlogits[0]!, 1);
  close(dlogits[1]!, -1);
});

test('labels out of range name the index and K', () => {
  assert.throws(() => crossEntropy(new Float32Array(4), new Int32Array([1, 2]), 0),
    (e: unknown) => e instanceof VitkitError && /Target 2 at index 1/.test(e.message) && /K = 2/.test(e.message));
  assert.throws(() => crossEntropy(new Float32Array(4), new Int32Array([-1, 0]), 0), /Target -1 at index 0/);
  assert.throws(() => crossEntropy(new Float32Array(5), new Int32Array([0, 0]), 0), VitkitError);
  assert.throws(() => crossEntropy(new Float32Array(4), new Float32Array(4), 0), /needs the class count K/);
});
