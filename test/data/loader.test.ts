import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchLoader, epochBatches } from '../../src/data/loader.js';
import { sharedF32, sharedI32, sharedU8, type F32Dataset, type U8Dataset } from '../../src/data/dataset.js';
import { defaultAugment } from '../../src/data/augment.js';
import { preprocessFromTimm } from '../../src/io/preprocess.js';
import type { Batch, Pipeline } from '../../src/data/batch.js';

function digits(n: number): U8Dataset {
  const ds: U8Dataset = { kind: 'u8', name: 'digits', n, channels: 1, height: 12, width: 12, labels: sharedI32(n), pixels: sharedU8(n * 144) };
  for (let i = 0; i < n; i++) {
    ds.labels[i] = i % 3;
    for (let q = 0; q < 144; q++) ds.pixels[i * 144 + q] = (i * 31 + q * 7) % 256;
  }
  return ds;
}

const pipeline: Pipeline = { channels: 1, height: 12, width: 12, preprocess: preprocessFromTimm({ mean: [0.1307], std: [0.3081], crop_pct: 1 }, 12, 1), onBadImage: 'error' };

async function collect(it: AsyncGenerator<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

test('epoch order: a seeded permutation per epoch, identity without shuffle, last batch smaller', () => {
  const e0 = epochBatches(10, 4, 5, 0, true);
  assert.deepEqual(e0.map((b) => b.length), [4, 4, 2]);
  const flat = e0.flatMap((b) => [...b]);
  assert.deepEqual([...flat].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(epochBatches(10, 4, 5, 0, true), e0);
  assert.notDeepEqual(epochBatches(10, 4, 5, 1, true).flatMap((b) => [...b]), flat);
  assert.notDeepEqual(epochBatches(10, 4, 6, 0, true).flatMap((b) => [...b]), flat);
  assert.deepEqual(epochBatches(5, 2, 5, 3, false).map((b) => [...b]), [[0, 1], [2, 3], [4]]);
});

test('batches do not depend on the number of workers, and a resumed epoch continues identically', async () => {
  const ds = digits(23);
  const aug = defaultAugment('shift', { mixupAlpha: 0.8, cutmixAlpha: 1, prob: 1, switchProb: 0.5, labelSmoothing: 0.1, numClasses: 3 });
  const runs: Batch[][] = [];
  for (const workers of [0, 1, 3]) {
    const loader = new BatchLoader({ train: ds, val: ds, pipeline, workers });
    try {
      runs.push(await collect(loader.trainEpoch(2, { batchSize: 5, seed: 9, shuffle: true, augment: aug })));
    } finally {
      await loader.close();
    }
  }
  assert.equal(runs[0]!.length, 5);
  for (const r of runs.slice(1)) {
    r.forEach((b, k) => {
      assert.deepEqual(b.x, runs[0]![k]!.x);
      assert.deepEqual(b.y, runs[0]![k]!.y);
      assert.deepEqual(b.soft, runs[0]![k]!.soft);
    });
  }
  assert.equal(runs[0]![0]!.soft!.length, 5 * 3);
  const loader = new BatchLoader({ train: ds, val: ds, pipeline, workers: 1 });
  try {
    const tail = await collect(loader.trainEpoch(2, { batchSize: 5, seed: 9, shuffle: true, augment: aug, start: 3 }));
    assert.equal(tail.length, 2);
    assert.deepEqual(tail[0]!.x, runs[0]![3]!.x);
    assert.deepEqual(tail[1]!.soft, runs[0]![4]!.soft);
    const other = await collect(loader.trainEpoch(3, { batchSize: 5, seed: 9, shuffle: true, augment: aug }));
    assert.notDeepEqual(other[0]!.x, runs[0]![0]!.x);
    const val = await collect(loader.evalBatches(10));
    assert.deepEqual(val.map((b) => b.size), [10, 10, 3]);
    assert.deepEqual([...val[2]!.y], [20 % 3, 21 % 3, 22 % 3]);
  } finally {
    await loader.close();
  }
});

test('augmentation changes training batches but never the eval transform', async () => {
  const ds = digits(8);
  const loader = new BatchLoader({ train: ds, val: ds, pipeline, workers: 0 });
  try {
    const plain = await collect(loader.trainEpoch(0, { batchSize: 8, seed: 1, shuffle: false, augment: null }));
    const shifted = await collect(loader.trainEpoch(0, { batchSize: 8, seed: 1, shuffle: false, augment: defaultAugment('shift') }));
    const val = await collect(loader.evalBatches(8));
    assert.deepEqual(plain[0]!.x, val[0]!.x);
    assert.notDeepEqual(shifted[0]!.x, plain[0]!.x);
    assert.equal(plain[0]!.soft, null);
  } finally {
    await loader.close();
  }
});

test('float datasets: size mismatch is an error naming both shapes', async () => {
  const ds: F32Dataset = { kind: 'f32', name: 't.safetensors', n: 2, channels: 1, height: 10, width: 10, labels: sharedI32(2), data: sharedF32(200) };
  const loader = new BatchLoader({ train: ds, val: null, pipeline, workers: 1 });
  try {
    await assert.rejects(collect(loader.trainEpoch(0, { batchSize: 2, seed: 0, shuffle: false, augment: null })), {
      name: 'VitkitError', message: 'Expected samples of shape (1, 12, 12) in t.safetensors but received (1, 10, 10)',
    });
  } finally {
    await loader.close();
  }
});
