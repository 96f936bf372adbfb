import { test } from 'node:test';
import assert from 'node:assert/strict';
import { translateU8, shiftU8, flipU8, rrcParams, mixupTargets, mixupBatch, shiftF32, flipF32 } from '../../src/data/augment.js';
import { Rng, permutation, hashSeed } from '../../src/data/rng.js';
import type { RawImage } from '../../src/io/image.js';

function ramp(w: number, h: number, c = 1): RawImage {
  const data = new Uint8Array(w * h * c);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) % 251;
  return { data, width: w, height: h, channels: c as 1 | 3 };
}

/** the calibration script's shift: pad 2 with `fill`, crop 28x28 at (i, j) */
function padCrop(img: RawImage, pad: number, i: number, j: number, fill: number): Uint8Array {
  const { width: W, height: H, channels: C } = img;
  const PW = W + 2 * pad, PH = H + 2 * pad;
  const padded = new Uint8Array(PW * PH * C).fill(fill);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) padded[((y + pad) * PW + x + pad) * C + c] = img.data[(y * W + x) * C + c]!;
  const out = new Uint8Array(W * H * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) out[(y * W + x) * C + c] = padded[((y + i) * PW + x + j) * C + c]!;
  return out;
}

test('translation equals pad-2-then-crop for all 25 offsets', () => {
  const img = ramp(28, 28);
  for (let i = 0; i <= 4; i++) for (let j = 0; j <= 4; j++) {
    assert.deepEqual(translateU8(img, i - 2, j - 2, 0).data, padCrop(img, 2, i, j, 0), `offset ${i},${j}`);
  }
  const rgb = ramp(5, 4, 3);
  assert.deepEqual(translateU8(rgb, 1, -2, 9).data, padCrop(rgb, 2, 3, 0, 9));
});

test('random shift draws offsets uniformly from [-2, 2] and is seeded', () => {
  const img = ramp(28, 28);
  const seen = new Set<string>();
  const rng = new Rng(7);
  for (let k = 0; k < 400; k++) {
    const out = shiftU8(img, 2, rng).data;
    let hit = '';
    for (let i = 0; i <= 4 && !hit; i++) for (let j = 0; j <= 4 && !hit; j++) if (Buffer.compare(Buffer.from(out), Buffer.from(padCrop(img, 2, i, j, 0))) === 0) hit = `${i},${j}`;
    assert.ok(hit, 'output is one of the 25 translations');
    seen.add(hit);
  }
  assert.equal(seen.size, 25);
  assert.deepEqual(shiftU8(img, 2, new Rng(3)).data, shiftU8(img, 2, new Rng(3)).data);
});

test('float shift pads with the fill value', () => {
  const x = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
  const rng = new Rng(0);
  const out = shiftF32(x, 2, 3, 3, 1, rng, [-1, -2]);
  // every output value is either an input value of the same channel or that channel's fill
  for (let c = 0; c < 2; c++) for (let q = 0; q < 9; q++) {
    const v = out[c * 9 + q]!;
    assert.ok(v === (c === 0 ? -1 : -2) || (v >= c * 9 && v < (c + 1) * 9), `channel ${c} value ${v}`);
  }
});

test('flips mirror left-right', () => {
  const img = ramp(3, 2, 3);
  const f = flipU8(img);
  assert.deepEqual([...f.data.subarray(0, 3)], [...img.data.subarray(6, 9)]);
  assert.deepEqual(flipU8(f).data, img.data);
  const x = Float32Array.of(1, 2, 3, 4, 5, 6);
  flipF32(x, 1, 2, 3);
  assert.deepEqual([...x], [3, 2, 1, 6, 5, 4]);
});

test('random-resized-crop boxes lie inside the image with area and aspect in range', () => {
  const rng = new Rng(11);
  let small = 0;
  for (let k = 0; k < 2000; k++) {
    const [i, j, h, w] = rrcParams(40, 60, [0.08, 1], [3 / 4, 4 / 3], rng);
    assert.ok(i >= 0 && j >= 0 && i + h <= 40 && j + w <= 60 && h > 0 && w > 0, `box ${[i, j, h, w]}`);
    const area = (h * w) / 2400;
    if (!(h === 40 && w === 60)) {
      assert.ok(area > 0.06 && area <= 1.05, `area ${area}`);
      assert.ok(w / h > 0.7 && w / h < 1.45, `ratio ${w / h}`);
    }
    if (area < 0.3) small++;
  }
  assert.ok(small > 300, 'small crops are common with scale (0.08, 1)');
  // impossible scale: the fallback is a central crop clamped to the ratio range
  assert.deepEqual(rrcParams(10, 40, [5, 6], [3 / 4, 4 / 3], new Rng(1)), [0, 13, 10, 13]);
  assert.deepEqual(rrcParams(20, 20, [5, 6], [3 / 4, 4 / 3], new Rng(1)), [0, 0, 20, 20]);
});

test('mixup targets: lam * smooth(onehot(y)) + (1 - lam) * smooth(onehot(flip(y)))', () => {
  const t = mixupTargets(Int32Array.of(0, 1), 2, 0.7, 0.1);
  // off 0.05, on 0.95: row 0 = 0.7 [0.95, 0.05] + 0.3 [0.05, 0.95]
  const want = [0.68, 0.32, 0.32, 0.68];
  want.forEach((w, i) => assert.ok(Math.abs(t[i]! - w) < 1e-6, `${i}: ${t[i]} vs ${w}`));
  const u = mixupTargets(Int32Array.of(2, 0, 1), 4, 1, 0);
  assert.deepEqual([...u], [0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
});

test('mixup mixes each image with its mirror in the batch; cutmix pastes a box and corrects lambda', () => {
  const B = 3, C = 1, H = 8, W = 8, per = 64;
  const mk = () => Float32Array.from({ length: B * per }, (_, i) => Math.floor(i / per) * 100 + (i % per));
  const y = Int32Array.of(0, 1, 2);
  const x = mk();
  const r = mixupBatch(x, y, C, H, W, { mixupAlpha: 1, cutmixAlpha: 0, prob: 1, switchProb: 0.5, labelSmoothing: 0, numClasses: 3 }, new Rng(5));
  assert.equal(r.cutmix, false);
  const x0 = mk();
  for (let b = 0; b < B; b++) for (let q = 0; q < per; q += 9) {
    const want = r.lam * x0[b * per + q]! + (1 - r.lam) * x0[(B - 1 - b) * per + q]!;
    assert.ok(Math.abs(x[b * per + q]! - want) < 1e-3);
  }
  assert.ok(Math.abs(r.soft[0]! - r.lam) < 1e-6 && Math.abs(r.soft[2]! - (1 - r.lam)) < 1e-6);
  for (let seed = 0; seed < 20; seed++) {
    const xc = mk();
    const c = mixupBatch(xc, y, C, H, W, { mixupAlpha: 0, cutmixAlpha: 1, prob: 1, switchProb: 0.5, labelSmoothing: 0, numClasses: 3 }, new Rng(seed));
    assert.equal(c.cutmix, true);
    let changed = 0;
    for (let q = 0; q < per; q++) if (xc[q] !== x0[q]) changed++;
    assert.ok(Math.abs(c.lam - (1 - changed / per)) < 1e-9, `seed ${seed}: lam ${c.lam}, changed ${changed}`);
    for (let q = 0; q < per; q++) assert.ok(xc[q] === x0[q] || xc[q] === x0[2 * per + q]);
  }
});

test('seeded generators: permutations, Beta mean, independent seeds', () => {
  const p = permutation(100, new Rng(1));
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(p, permutation(100, new Rng(1)));
  assert.notDeepEqual(p, permutation(100, new Rng(2)));
  assert.notEqual(hashSeed(0, 1, 2), hashSeed(0, 2, 1));
  const rng = new Rng(3);
  let s = 0;
  for (let k = 0; k < 4000; k++) s += rng.beta(2, 6);
  assert.ok(Math.abs(s / 4000 - 0.25) < 0.02, `Beta(2, 6) mean ${s / 4000}`);
  let s2 = 0;
  for (let k = 0; k < 4000; k++) s2 += rng.beta(0.2, 0.2);
  assert.ok(Math.abs(s2 / 4000 - 0.5) < 0.04, `Beta(0.2, 0.2) mean ${s2 / 4000}`);
});
