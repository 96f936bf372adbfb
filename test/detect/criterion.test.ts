/**
 * Detection pieces on their own: box conversions and GIoU against hand-computed values, the exact
 * assignment solver against brute force over every assignment on small random matrices, and the
 * SetCriterion gradient w.r.t. pred_logits / pred_boxes against central finite differences of its
 * own loss in float64 (the loss values themselves are checked against YOLOS in yolos_train.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../helpers.js';
import { linearSumAssignment } from '../../src/detect/assign.js';
import { boxIou, cxcywhToXyxy, generalizedBoxIou, giouPairGrad, xyxyToCxcywh } from '../../src/detect/box_ops.js';
import { postProcess, setCriterion, type DetTarget } from '../../src/detect/criterion.js';

test('box conversions, IoU and GIoU on hand-computed boxes', () => {
  assert.deepEqual([...cxcywhToXyxy([0.5, 0.5, 0.2, 0.4])], [0.4, 0.3, 0.6, 0.7]);
  assert.deepEqual([...xyxyToCxcywh([1, 2, 5, 10])], [3, 6, 4, 8]);
  // [0,0,2,2] and [1,1,3,3]: inter 1, union 7, enclosing 9 -> giou 1/7 - 2/9
  const a = [0, 0, 2, 2], b = [1, 1, 3, 3], far = [5, 5, 6, 6];
  assert.ok(Math.abs(boxIou(a, b)[0]! - 1 / 7) < 1e-15);
  assert.ok(Math.abs(generalizedBoxIou(a, b)[0]! - (1 / 7 - 2 / 9)) < 1e-15);
  // disjoint: iou 0, giou = -(36 - 5) / 36
  assert.ok(Math.abs(generalizedBoxIou(a, far)[0]! + 31 / 36) < 1e-15);
  assert.ok(Math.abs(giouPairGrad(a, b).giou - (1 / 7 - 2 / 9)) < 1e-15);
});

test('giouPairGrad: gradient = central differences (overlapping, disjoint, nested boxes)', () => {
  const cases: [number[], number[]][] = [[[0.1, 0.2, 0.6, 0.7], [0.3, 0.1, 0.9, 0.5]], [[0, 0, 0.2, 0.3], [0.5, 0.6, 0.9, 0.8]], [[0.2, 0.2, 0.4, 0.5], [0.1, 0.1, 0.7, 0.8]]];
  for (const [a, b] of cases) {
    const g = giouPairGrad(a, b).grad;
    for (let k = 0; k < 4; k++) {
      const h = 1e-6, ap = a.slice(), am = a.slice();
      ap[k]! += h; am[k]! -= h;
      const fd = (giouPairGrad(ap, b).giou - giouPairGrad(am, b).giou) / (2 * h);
      assert.ok(Math.abs(fd - g[k]!) < 1e-7, `d giou / d a[${k}]: ${g[k]} vs ${fd}`);
    }
  }
});

function bruteBest(cost: Float64Array, nr: number, nc: number): number {
  const k = Math.min(nr, nc);
  let best = Infinity;
  const used = new Uint8Array(Math.max(nr, nc));
  const rec = (i: number, acc: number) => {
    if (i === k) { best = Math.min(best, acc); return; }
    for (let j = 0; j < Math.max(nr, nc); j++) {
      if (used[j]) continue;
      used[j] = 1;
      rec(i + 1, acc + (nr <= nc ? cost[i * nc + j]! : cost[j * nc + i]!));
      used[j] = 0;
    }
  };
  rec(0, 0);
  return best;
}

test('linearSumAssignment: optimal on 300 random matrices up to 7x7 (brute force), rows ascending, columns distinct', () => {
  const r = rng(7);
  for (let trial = 0; trial < 300; trial++) {
    const nr = 1 + Math.floor(r() * 7), nc = 1 + Math.floor(r() * 7);
    const cost = new Float64Array(nr * nc);
    // every third matrix has integer costs (many ties)
    for (let i = 0; i < cost.length; i++) cost[i] = trial % 3 === 0 ? Math.floor(r() * 4) : r() * 10 - 3;
    const a = linearSumAssignment(cost, nr, nc);
    const k = Math.min(nr, nc);
    assert.equal(a.rows.length, k);
    let total = 0;
    for (let i = 0; i < k; i++) {
      if (i > 0) assert.ok(a.rows[i]! > a.rows[i - 1]!);
      total += cost[a.rows[i]! * nc + a.cols[i]!]!;
    }
    assert.equal(new Set(a.cols).size, k);
    const best = bruteBest(cost, nr, nc);
    assert.ok(Math.abs(total - best) < 1e-9, `trial ${trial} (${nr}x${nc}): ${total} vs optimum ${best}`);
  }
  assert.throws(() => linearSumAssignment([1, NaN], 1, 2), /entry \(0, 1\) is NaN/);
  assert.throws(() => linearSumAssignment([1, 2, 3], 2, 2), /expected a cost matrix of \(2, 2\)/);
});

test('setCriterion: dloss/dlogits and dloss/dboxes = central differences of the total loss (float64)', () => {
  const B = 2, Q = 6, K1 = 4, r = rng(3);
  const logits = Float64Array.from({ length: B * Q * K1 }, () => r() * 4 - 2);
  const boxes = Float64Array.from({ length: B * Q * 4 }, (_, i) => (i % 4 < 2 ? 0.2 + 0.6 * r() : 0.1 + 0.3 * r()));
  const targets: DetTarget[] = [
    { labels: [0, 2, 1], boxes: [0.3, 0.4, 0.2, 0.3, 0.7, 0.6, 0.3, 0.2, 0.5, 0.5, 0.4, 0.4] },
    { labels: [1], boxes: [0.45, 0.55, 0.3, 0.25] },
  ];
  const res = setCriterion(logits, boxes, B, Q, K1, targets);
  assert.deepEqual(res.matches.map((m) => m.pred.length), [3, 1]);
  const f = (lg: Float64Array, bx: Float64Array) => {
    const x = setCriterion(lg, bx, B, Q, K1, targets);
    // the matching is locally constant: keep the same one
    assert.deepEqual(x.matches.map((m) => [...m.pred, ...m.target]), res.matches.map((m) => [...m.pred, ...m.target]));
    return x.loss;
  };
  const h = 1e-6;
  let worst = 0;
  for (const [arr, grad] of [[logits, res.dlogits], [boxes, res.dboxes]] as const) {
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i]!;
      arr[i] = v + h; const lp = f(logits, boxes);
      arr[i] = v - h; const lm = f(logits, boxes);
      arr[i] = v;
      const fd = (lp - lm) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - grad[i]!));
      assert.ok(Math.abs(fd - grad[i]!) < 1e-6, `element ${i}: analytic ${grad[i]} vs finite difference ${fd}`);
    }
  }
  console.log(`setCriterion gradient vs central differences: worst ${worst.toExponential(2)}`);
  // every gradient is used: unmatched tokens get no box gradient
  const matched = new Set(res.matches[1]!.pred);
  for (let q = 0; q < Q; q++) if (!matched.has(q)) assert.deepEqual([...res.dboxes.subarray((Q + q) * 4, (Q + q) * 4 + 4)], [0, 0, 0, 0]);
  assert.throws(() => setCriterion(logits, boxes, B, Q, K1, [targets[0]!, { labels: [3], boxes: [0.5, 0.5, 0.1, 0.1] }]), /targets\.1\.labels\[0\] is 3, expected a class index in \[0, 2\]/);
});

test('postProcess: best non-no-object class, boxes scaled to (h, w)', () => {
  // one token: logits favour no-object, then class 1
  const out = postProcess([0, 2, 5], [0.5, 0.25, 0.5, 0.5], 1, 1, 3, [[100, 200]]);
  const e = [Math.exp(0), Math.exp(2), Math.exp(5)], s = e[0]! + e[1]! + e[2]!;
  assert.equal(out[0]!.labels[0], 1);
  assert.ok(Math.abs(out[0]!.scores[0]! - e[1]! / s) < 1e-7);
  assert.deepEqual([...out[0]!.boxes], [50, 0, 150, 50]);
});
