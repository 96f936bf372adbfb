import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadMnist, MNIST_MEAN, MNIST_STD, MNIST_PRETRAINED_CFG } from '../../src/data/mnist.js';
import { makeBatch } from '../../src/data/batch.js';
import { preprocessFromTimm } from '../../src/io/preprocess.js';
import { openData } from '../../src/data/open.js';

const digitsDir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist')), 'digits');
const raw = (d: number): number[] => (JSON.parse(readFileSync(path.join(digitsDir, `${d}.json`), 'utf8')) as { data: number[] }).data;

test('MNIST split: 7,996 train / 2,004 test, per digit the first 80% (floored) in package order', () => {
  const m = loadMnist();
  assert.equal(m.train.n, 7996);
  assert.equal(m.test.n, 2004);
  let trainOff = 0;
  let testOff = 0;
  for (let d = 0; d < 10; d++) {
    const r = raw(d);
    const n = r.length / 784;
    const t = Math.floor(0.8 * n);
    // labels: contiguous runs per digit
    for (let k = 0; k < t; k++) assert.equal(m.train.labels[trainOff + k], d);
    for (let k = 0; k < n - t; k++) assert.equal(m.test.labels[testOff + k], d);
    // first train image of the digit is the package's image 0; first test image is image t
    for (let j = 0; j < 784; j += 7) {
      assert.equal(m.train.pixels[trainOff * 784 + j], Math.round(r[j]! * 255));
      assert.equal(m.test.pixels[testOff * 784 + j], Math.round(r[t * 784 + j]! * 255));
    }
    trainOff += t;
    testOff += n - t;
  }
  assert.equal(trainOff, 7996);
  assert.equal(testOff, 2004);
});

test('MNIST normalization: (round(255 v) / 255 - 0.1307) / 0.3081 per pixel', async () => {
  const m = loadMnist();
  const pre = preprocessFromTimm(MNIST_PRETRAINED_CFG, 28, 1);
  const b = await makeBatch(m.test, { channels: 1, height: 28, width: 28, preprocess: pre, onBadImage: 'error' }, { split: 'val', indices: Int32Array.of(5, 1000), augment: null, seed: 0 });
  assert.deepEqual([...b.y], [m.test.labels[5], m.test.labels[1000]]);
  for (const [bi, i] of [[0, 5], [1, 1000]] as const) {
    for (let j = 0; j < 784; j++) {
      const want = (m.test.pixels[i * 784 + j]! / 255 - MNIST_MEAN) / MNIST_STD;
      assert.ok(Math.abs(b.x[bi * 784 + j]! - want) < 1e-6, `pixel ${j}`);
    }
  }
});

test('openData("mnist") trains on the train split and validates on the test split', () => {
  const d = openData('mnist', { purpose: 'train' });
  assert.equal(d.train!.n, 7996);
  assert.equal(d.val!.n, 2004);
  assert.equal(d.numClasses, 10);
  assert.equal(d.augment, 'shift');
  assert.throws(() => openData('mnist', { purpose: 'train', valSplit: 0.1 }), /--val-split does not apply to mnist: its split is fixed \(7,996 train \/ 2,004 test\)/);
  const e = openData('mnist', { purpose: 'eval' });
  assert.equal(e.train, null);
  assert.equal(e.val!.n, 2004);
});
