import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { openData } from '../../src/data/open.js';
import { loadCifar10, readCifarFiles } from '../../src/data/cifar.js';
import { loadTensorFile } from '../../src/data/tensors.js';
import { loadImageFolder } from '../../src/data/folder.js';
import { checkLabels, stratifiedSplit, classCounts } from '../../src/data/dataset.js';
import { makeBatch, type Pipeline } from '../../src/data/batch.js';
import { BatchLoader } from '../../src/data/loader.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { preprocessFromTimm } from '../../src/io/preprocess.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'vitkit-data-'));

async function png(file: string, w: number, h: number, v: number): Promise<void> {
  const px = Buffer.alloc(w * h * 3, v);
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

/** root/<cls>/<i>.png with a gray level per class */
async function makeFolder(root: string, classes: Record<string, number>): Promise<void> {
  let k = 0;
  for (const [cls, n] of Object.entries(classes)) {
    mkdirSync(path.join(root, cls), { recursive: true });
    for (let i = 0; i < n; i++) await png(path.join(root, cls, `img${i}.png`), 12 + i, 10, 40 * ++k % 256);
  }
}

const pipe = (size: number, channels: 1 | 3 = 3, onBadImage: 'skip' | 'error' = 'error'): Pipeline => ({
  channels, height: size, width: size, preprocess: { ...preprocessFromTimm({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 1 }, size, channels) }, onBadImage,
});

test('image folder: sorted classes, sorted files, train/ + val/ layout and eval transform', async () => {
  const root = tmp();
  try {
    await makeFolder(path.join(root, 'train'), { dog: 2, cat: 3 });
    await makeFolder(path.join(root, 'val'), { cat: 1, dog: 1 });
    writeFileSync(path.join(root, 'train', 'cat', 'notes.txt'), 'not an image');
    const d = openData(root, { purpose: 'train' });
    assert.equal(d.kind, 'folder');
    assert.deepEqual(d.labelNames, ['cat', 'dog']);
    assert.equal(d.train!.n, 5);
    assert.equal(d.val!.n, 2);
    assert.deepEqual([...d.train!.labels], [0, 0, 0, 1, 1]);
    const b = await makeBatch(d.val!, pipe(8), { split: 'val', indices: Int32Array.of(0, 1), augment: null, seed: 0 });
    assert.equal(b.x.length, 2 * 3 * 8 * 8);
    assert.deepEqual([...b.y], [0, 1]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('image folder errors: empty class folder, unknown val class, no class folders', async () => {
  const root = tmp();
  try {
    await makeFolder(path.join(root, 'a'), { x: 1 });
    mkdirSync(path.join(root, 'a', 'y'));
    assert.throws(() => loadImageFolder(path.join(root, 'a')), {
      message: `Class folder ${path.join(root, 'a', 'y')} has no images: expected files ending in .jpg, .jpeg, .png, .webp, .gif, .tif, .tiff, .avif, .dcm`,
    });
    await makeFolder(path.join(root, 'b', 'train'), { x: 2 });
    await makeFolder(path.join(root, 'b', 'val'), { z: 1 });
    assert.throws(() => openData(path.join(root, 'b'), { purpose: 'train' }), {
      message: `Class folder ${path.join(root, 'b', 'val', 'z')} is not one of the training classes: x`,
    });
    mkdirSync(path.join(root, 'c'));
    assert.throws(() => openData(path.join(root, 'c'), { purpose: 'train' }), /Expected mnist, a CIFAR-10 binary folder, an image folder \(<class>\/\*\.jpg\) or a \.safetensors file with x and y for --data but received the folder .* with no class folders/);
    assert.throws(() => openData(path.join(root, 'nope'), { purpose: 'train' }), /^VitkitError: Data .*nope not found: expected mnist, a CIFAR-10 binary folder/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('unreadable image: named in the error, or skipped with one warning', async () => {
  const root = tmp();
  try {
    await makeFolder(root, { a: 2, b: 2 });
    const bad = path.join(root, 'b', 'broken.png');
    writeFileSync(bad, 'this is not a png');
    const { ds } = loadImageFolder(root);
    const idx = Int32Array.from({ length: ds.n }, (_, i) => i);
    await assert.rejects(makeBatch(ds, pipe(8), { split: 'train', indices: idx, augment: null, seed: 0 }), (e: Error) => {
      assert.match(e.message, new RegExp(`for ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} but decoding failed: .*\\(pass --on-bad-image skip to skip unreadable images with a warning\\)$`));
      return true;
    });
    const skipped: string[] = [];
    const loader = new BatchLoader({ train: ds, val: ds, pipeline: pipe(8, 3, 'skip'), workers: 1, onSkip: (f) => skipped.push(f) });
    try {
      const sizes: number[] = [];
      for (let e = 0; e < 2; e++) for await (const b of loader.trainEpoch(e, { batchSize: 5, seed: 0, shuffle: false, augment: null })) sizes.push(b.size);
      assert.deepEqual(sizes, [4, 4]);
      assert.deepEqual(skipped, [bad]);
    } finally {
      await loader.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--val-split: seeded, stratified, disjoint', async () => {
  const labels = Int32Array.from({ length: 100 }, (_, i) => (i < 60 ? 0 : i < 90 ? 1 : 2));
  const a = stratifiedSplit(labels, 0.2, 1);
  assert.deepEqual(a, stratifiedSplit(labels, 0.2, 1));
  assert.notDeepEqual(a.val, stratifiedSplit(labels, 0.2, 2).val);
  const count = (idx: Int32Array, c: number) => [...idx].filter((i) => labels[i] === c).length;
  assert.deepEqual([0, 1, 2].map((c) => count(a.val, c)), [12, 6, 2]);
  assert.equal(new Set([...a.train, ...a.val]).size, 100);
  const root = tmp();
  try {
    await makeFolder(root, { a: 5, b: 5 });
    const d = openData(root, { purpose: 'train', valSplit: 0.4, seed: 3 });
    assert.deepEqual(classCounts(d.val!, 2), [2, 2]);
    assert.deepEqual(classCounts(d.train!, 2), [3, 3]);
    assert.throws(() => openData(root, { purpose: 'train', valSplit: 0.4, valData: root }), { message: 'Pass either --val-split or --val-data, not both' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('tensor files: x (B, C, H, W) and y (B); shape and label errors', () => {
  const dir = tmp();
  try {
    const f = path.join(dir, 'd.safetensors');
    const x = Float32Array.from({ length: 3 * 2 * 4 * 4 }, (_, i) => i / 10);
    writeSafetensors(f, { x: { shape: [3, 2, 4, 4], data: x }, y: { shape: [3], data: BigInt64Array.of(2n, 0n, 5n) } });
    const ds = loadTensorFile(f);
    assert.equal(ds.n, 3);
    assert.deepEqual([...ds.labels], [2, 0, 5]);
    assert.deepEqual([...ds.data.subarray(0, 3)], [...x.subarray(0, 3)]);
    assert.throws(() => checkLabels(ds, 4), { message: `Expected a label in [0, 3] for sample 2 of ${f} (the model has 4 classes) but received 5` });
    const d = openData(f, { purpose: 'train' });
    assert.equal(d.numClasses, 6);
    assert.equal(d.val, null);
    const g = path.join(dir, 'bad.safetensors');
    writeSafetensors(g, { x: { shape: [3, 2, 4, 4], data: x }, y: { shape: [2], data: BigInt64Array.of(1n, 0n) } });
    assert.throws(() => loadTensorFile(g), { message: `Expected y of shape (3) to match x (3, 2, 4, 4) in ${g} but received (2)` });
    const h = path.join(dir, 'neg.safetensors');
    writeSafetensors(h, { x: { shape: [3, 2, 4, 4], data: x }, y: { shape: [3], data: BigInt64Array.of(1n, -1n, 0n) } });
    assert.throws(() => loadTensorFile(h), { message: `Expected a label >= 0 for sample 1 of ${h} but received -1` });
    const k = path.join(dir, 'nox.safetensors');
    writeSafetensors(k, { pixel_values: { shape: [1], data: Float32Array.of(1) } });
    assert.throws(() => loadTensorFile(k), { message: `Expected tensors "x" (B, C, H, W) and "y" (B) in ${k} but received "pixel_values"` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CIFAR-10 binary: labels, planar RGB to interleaved, errors', () => {
  const dir = tmp();
  try {
    const rec = (label: number, r: number, g: number, b: number) => {
      const buf = Buffer.alloc(3073);
      buf[0] = label;
      buf.fill(r, 1, 1025);
      buf.fill(g, 1025, 2049);
      buf.fill(b, 2049, 3073);
      buf[1 + 33] = 200; // R of pixel (1, 1)
      return buf;
    };
    writeFileSync(path.join(dir, 'data_batch_1.bin'), Buffer.concat([rec(3, 10, 20, 30), rec(9, 1, 2, 3)]));
    writeFileSync(path.join(dir, 'test_batch.bin'), rec(0, 5, 6, 7));
    const c = loadCifar10(dir);
    assert.equal(c.train!.n, 2);
    assert.deepEqual([...c.train!.labels], [3, 9]);
    assert.deepEqual([...c.train!.pixels.subarray(0, 6)], [10, 20, 30, 10, 20, 30]);
    assert.deepEqual([...c.train!.pixels.subarray(33 * 3, 33 * 3 + 3)], [200, 20, 30]);
    assert.equal(c.labelNames[3], 'cat');
    const d = openData(dir, { purpose: 'train' });
    assert.equal(d.kind, 'cifar10');
    assert.equal(d.val!.n, 1);
    const bad = path.join(dir, 'bad.bin');
    writeFileSync(bad, rec(10, 0, 0, 0));
    assert.throws(() => readCifarFiles([bad], 'x'), { message: `Expected a label in [0, 9] for record 0 of CIFAR-10 file ${bad} but received 10` });
    writeFileSync(bad, Buffer.alloc(100));
    assert.throws(() => readCifarFiles([bad], 'x'), { message: `Expected a multiple of 3073 bytes (records of 1 label byte + 3072 pixel bytes) in CIFAR-10 file ${bad} but received 100 bytes` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
