/** Cosine prototypes on hand-made vectors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosine, l2normalize, classPrototypes, prototypeScores, nearestPrototype } from '../../src/embed/prototypes.js';
import { VitkitError } from '../../src/errors.js';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('cosine similarity and L2 normalization', () => {
  close(cosine([1, 0], [0, 1]), 0);
  close(cosine([1, 1], [2, 2]), 1);
  close(cosine([3, 4], [-3, -4]), -1);
  close(cosine([1, 2, 2], [2, 0, 0]), 1 / 3);
  close(cosine([0, 0], [1, 1]), 0);
  const x = l2normalize(Float32Array.from([3, 4, 0, 0, 0, 2]), 3, 2);
  [0.6, 0.8, 0, 0, 0, 1].forEach((v, i) => close(x[i]!, v));
});

test('prototypes are the normalized mean of normalized support vectors', () => {
  // class 0: (10, 0) and (0, 1) -> normalized (1, 0), (0, 1) -> mean (.5, .5) -> (1/√2, 1/√2)
  // (the long vector does not dominate: every example counts once)
  // class 1: (-1, 0) alone
  const emb = Float32Array.from([10, 0, 0, 1, -1, 0]);
  const p = classPrototypes(emb, [0, 0, 1], 2, 2);
  close(p[0]!, Math.SQRT1_2); close(p[1]!, Math.SQRT1_2); close(p[2]!, -1); close(p[3]!, 0);
  // queries: (1, 1) is class 0 with score 1; (-2, 0.1) is class 1; (1, -1) is at 90° from class 0 and 135° from class 1
  const q = Float32Array.from([1, 1, -2, 0.1, 1, -1]);
  const s = prototypeScores(q, p, 2, 2);
  close(s[0]!, 1); close(s[1]!, -Math.SQRT1_2);
  close(s[2]!, (-2 + 0.1) / Math.sqrt(4.01) * Math.SQRT1_2); close(s[3]!, 2 / Math.sqrt(4.01));
  close(s[4]!, 0); close(s[5]!, -Math.SQRT1_2);
  assert.deepEqual([...nearestPrototype(s, 2)], [0, 1, 0]);
});

test('a class without support examples and out-of-range labels are errors', () => {
  assert.throws(() => classPrototypes(Float32Array.from([1, 0]), [0], 2, 2), (e: unknown) => e instanceof VitkitError && /Class 1 has no support examples/.test(e.message));
  assert.throws(() => classPrototypes(Float32Array.from([1, 0]), [2], 2, 2), /support labels in \[0, 1\] but received 2/);
  assert.throws(() => classPrototypes(Float32Array.from([1, 0, 1]), [0], 1, 2), /1 support embeddings of 2 values but received 3 values/);
});
