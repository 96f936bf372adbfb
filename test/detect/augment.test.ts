/**
 * YOLOS / DETR's random crop (src/detect/augment.ts): the box arithmetic and pixels of `crop`
 * against the authors' function (test/fixtures/detr_crop/crop_ref.json, made by make_crop_ref.py
 * from hustvl/YOLOS datasets/transforms.py with torch 1.13); RandomSizeCrop's draws; the whole
 * flip + RandomSelect + crop on painted rectangles, where every kept box must be exactly the
 * bounding box of its colour in the cropped picture and every colour left in it must be kept;
 * and `vitkit train --task detect --random-size-crop` on a COCO folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, cliInProcess, tmp } from '../helpers.js';
import { Rng } from '../../src/data/rng.js';
import type { RawImage } from '../../src/io/pixels.js';
import { DETR_CROP_RESIZE, DETR_CROP_SIZE, augmentDetection, checkCropOptions, cropBoxes, cropImage, sampleSizeCrop } from '../../src/detect/augment.js';
import { loadYolos } from '../../src/detect/load.js';

interface RefCase {
  name: string; width: number; height: number; region: [number, number, number, number];
  boxes: number[]; labels: number[]; pixels: number[];
  out: { boxes: number[]; labels: number[]; area: number[]; size: [number, number]; pixels: number[]; image_size: [number, number] };
}
const REF = JSON.parse(readFileSync(path.join(FIXTURES, 'detr_crop', 'crop_ref.json'), 'utf8')) as { cases: RefCase[] };

test('cropBoxes / cropImage = hustvl/YOLOS (DETR) crop: shifted, clipped, zero-area boxes dropped, float32 exact', () => {
  assert.equal(REF.cases.length, 9);
  let dropped = 0;
  for (const c of REF.cases) {
    const [top, left, height, width] = c.region;
    const r = { top, left, height, width };
    const got = cropBoxes(Float32Array.from(c.boxes), r);
    assert.deepEqual(Array.from(got.boxes), c.out.boxes, `${c.name}: boxes`);
    assert.deepEqual(got.keep.map((k) => c.labels[k]), c.out.labels, `${c.name}: labels`);
    assert.deepEqual(Array.from(got.area), c.out.area, `${c.name}: area`);
    dropped += c.labels.length - got.keep.length;
    const img: RawImage = { data: Uint8Array.from(c.pixels), width: c.width, height: c.height, channels: 3 };
    const ci = cropImage(img, r);
    assert.deepEqual([ci.width, ci.height], c.out.image_size, `${c.name}: image size`);
    assert.deepEqual([ci.height, ci.width], c.out.size, `${c.name}: target size`);
    assert.deepEqual(Array.from(ci.data), c.out.pixels, `${c.name}: pixels`);
  }
  assert.ok(dropped >= 10, `the reference drops boxes (${dropped})`);
  assert.throws(() => cropImage({ data: new Uint8Array(4 * 4 * 3), width: 4, height: 4, channels: 3 }, { top: 1, left: 0, height: 4, width: 2 }), /crop region inside the 4x4 image but received top 1, left 0, height 4, width 2/);
  assert.throws(() => cropBoxes([1, 2, 3], { top: 0, left: 0, height: 1, width: 1 }), /boxes of shape \(n, 4\) but received 3 values/);
});

test('sampleSizeCrop: sizes in [min, min(side, max)], positions inside, every end reached, seeded', () => {
  const rng = new Rng(5);
  const seen = { w: new Set<number>(), h: new Set<number>(), top: new Set<number>(), left: new Set<number>() };
  for (let k = 0; k < 4000; k++) {
    const r = sampleSizeCrop(rng, 40, 25, 20, 30);
    assert.ok(r.width >= 20 && r.width <= 30 && r.height >= 20 && r.height <= 25, JSON.stringify(r));
    assert.ok(r.top >= 0 && r.left >= 0 && r.top + r.height <= 25 && r.left + r.width <= 40, JSON.stringify(r));
    seen.w.add(r.width); seen.h.add(r.height); seen.top.add(r.top); seen.left.add(r.left);
  }
  assert.equal(seen.w.size, 11); assert.equal(seen.h.size, 6);
  assert.ok(seen.top.has(0) && seen.top.has(5) && seen.left.has(0) && seen.left.has(20));
  const a = sampleSizeCrop(new Rng(9), 700, 450, 384, 600), b = sampleSizeCrop(new Rng(9), 700, 450, 384, 600);
  assert.deepEqual(a, b);
  assert.deepEqual(sampleSizeCrop(new Rng(1), 10, 10, 10, 20), { top: 0, left: 0, height: 10, width: 10 });
  assert.throws(() => sampleSizeCrop(new Rng(1), 300, 500, 384, 600), /RandomSizeCrop\(384, 600\) needs an image of at least 384x384 but received 300x500/);
  assert.doesNotThrow(() => checkCropOptions({ size: DETR_CROP_SIZE, resize: DETR_CROP_RESIZE }));
  assert.throws(() => checkCropOptions({ size: [450, 600], resize: DETR_CROP_RESIZE }), /pre-crop short sides \(400, 500, 600\) to be integers >= --random-size-crop's min 450/);
  assert.throws(() => checkCropOptions({ size: [600, 384], resize: DETR_CROP_RESIZE }), /min,max integers with 1 <= min <= max but received 600,384/);
});

/** colour of class k; the background is black */
const colour = (k: number) => [40 * (k + 1), 250 - 30 * k, 17 * k + 5];
/** boxes (x0, y0, x1, y1) in pixels, class = index */
const RECTS = [[3, 4, 20, 15], [25, 2, 40, 30], [44, 20, 62, 46], [5, 30, 22, 44], [30, 36, 38, 41]];

function painted(W: number, H: number): RawImage {
  const data = new Uint8Array(W * H * 3); // (H, W, 3)
  RECTS.forEach(([x0, y0, x1, y1], k) => {
    for (let y = y0!; y < y1!; y++) for (let x = x0!; x < x1!; x++) data.set(colour(k), (y * W + x) * 3);
  });
  return { data, width: W, height: H, channels: 3 };
}

/** bounding box [x0, y0, x1, y1) of the pixels of class k's colour, or null */
function colourBox(img: RawImage, k: number): number[] | null {
  const c = colour(k);
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
    const i = (y * img.width + x) * 3;
    if (img.data[i] === c[0] && img.data[i + 1] === c[1] && img.data[i + 2] === c[2]) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1); }
  }
  return x1 < 0 ? null : [x0, y0, x1, y1];
}

test('augmentDetection: flip + RandomSelect + crop keep exactly the boxes left in the picture, clipped to it', () => {
  const W = 64, H = 48, img = painted(W, H);
  const target = { labels: RECTS.map((_, k) => k), boxes: Float32Array.from(RECTS.flatMap(([x0, y0, x1, y1]) => [(x0! + x1!) / 2 / W, (y0! + y1!) / 2 / H, (x1! - x0!) / W, (y1! - y0!) / H])) };
  // the pre-crop size is the short side: no resampling, so colours survive exactly
  const crop = { size: [10, 40] as [number, number], resize: [H] };
  let cropped = 0, flipped = 0, partial = 0, droppedSome = 0;
  for (let seed = 0; seed < 300; seed++) {
    const r = augmentDetection(img, target, new Rng(seed), crop);
    const kept = new Map<number, number[]>();
    const n = r.target.labels.length;
    for (let i = 0; i < n; i++) {
      const [cx, cy, w, h] = Array.from(r.target.boxes).slice(4 * i, 4 * i + 4) as [number, number, number, number];
      kept.set(r.target.labels[i]!, [(cx - w / 2) * r.img.width, (cy - h / 2) * r.img.height, (cx + w / 2) * r.img.width, (cy + h / 2) * r.img.height]);
    }
    for (let k = 0; k < RECTS.length; k++) {
      const want = colourBox(r.img, k), got = kept.get(k);
      if (want === null) { assert.equal(got, undefined, `seed ${seed}: class ${k} is not in the picture but was kept`); continue; }
      assert.ok(got, `seed ${seed}: class ${k} is in the picture at ${want} but was dropped`);
      for (let d = 0; d < 4; d++) assert.ok(Math.abs(got[d]! - want[d]!) < 1e-3, `seed ${seed}, class ${k}: box ${got.join(',')} vs picture ${want.join(',')}`);
    }
    if (r.cropped) {
      cropped++;
      assert.ok(r.img.width >= 10 && r.img.width <= 40 && r.img.height >= 10 && r.img.height <= 40);
      if (n < RECTS.length) droppedSome++;
      if (RECTS.some((_, k) => { const b = colourBox(r.img, k), R = RECTS[k]!; return b !== null && (b[2]! - b[0]!) * (b[3]! - b[1]!) < (R[2]! - R[0]!) * (R[3]! - R[1]!); })) partial++;
    } else {
      assert.deepEqual([r.img.width, r.img.height], [W, H]);
      assert.equal(n, RECTS.length);
      if (colourBox(r.img, 0)![0]! > W / 2) flipped++;
    }
  }
  assert.ok(cropped > 110 && cropped < 190, `RandomSelect chose the crop ${cropped} times of 300`);
  assert.ok(partial > 20 && droppedSome > 20, `clipped ${partial}, dropped ${droppedSome}`);
  assert.ok(flipped > 0.3 * (300 - cropped) && flipped < 0.7 * (300 - cropped), `flipped ${flipped} of ${300 - cropped} uncropped`);
  // no crop option: flip only, nothing dropped
  for (let seed = 0; seed < 20; seed++) {
    const r = augmentDetection(img, target, new Rng(seed), null);
    assert.equal(r.cropped, false);
    assert.deepEqual([r.img.width, r.img.height, r.target.labels.length], [W, H, RECTS.length]);
  }
});

test('vitkit train --task detect --random-size-crop on a COCO folder: seeded, changes the batches, bad values refused', async () => {
  const work = tmp(), coco = path.join(work, 'coco'), DIR = path.join(FIXTURES, 'yolos_det');
  mkdirSync(path.join(coco, 'images'), { recursive: true });
  mkdirSync(path.join(coco, 'annotations'));
  const images: object[] = [], annotations: object[] = [];
  for (let i = 0; i < 2; i++) {
    const img = painted(64 + 32 * i, 48);
    await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toFile(path.join(coco, 'images', `p${i}.png`));
    images.push({ id: i + 1, file_name: `p${i}.png`, width: img.width, height: img.height });
    RECTS.forEach(([x0, y0, x1, y1], k) => annotations.push({ id: 10 * i + k + 1, image_id: i + 1, category_id: k, bbox: [x0, y0, x1! - x0!, y1! - y0!], area: (x1! - x0!) * (y1! - y0!), iscrowd: 0 }));
  }
  writeFileSync(path.join(coco, 'annotations', 'train.json'), JSON.stringify({ images, annotations, categories: RECTS.map((_, id) => ({ id, name: `c${id}` })) }));
  const args = (out: string, ...extra: string[]) => ['train', '--task', 'detect', '-m', DIR, '-d', coco, '-o', path.join(work, out), '--epochs', '1', '--batch-size', '2',
    '--shortest-edge', '64', '--longest-edge', '112', '--no-shuffle', '--seed', '3', ...extra];
  const weights = (out: string) => loadYolos(path.join(work, out)).model.params.buffer;
  const a = await cliInProcess(args('a', '--random-size-crop'));
  assert.equal(a.code, 0, a.err);
  const b = await cliInProcess(args('b', '--random-size-crop', '384,600'));
  assert.equal(b.code, 0, b.err);
  const plain = await cliInProcess(args('plain'));
  assert.equal(plain.code, 0, plain.err);
  assert.deepEqual(weights('a'), weights('b'), 'the same seed and DETR\'s default sizes give the same run');
  assert.notDeepEqual(weights('a'), weights('plain'), 'the crop changed the batch');
  const big = await cliInProcess(args('c', '--random-size-crop', '450,600'));
  assert.equal(big.code, 1);
  assert.match(big.err, /pre-crop short sides \(400, 500, 600\) to be integers >= --random-size-crop's min 450/);
  const noAug = await cliInProcess(args('d', '--random-size-crop', '--no-augment'));
  assert.equal(noAug.code, 1);
  assert.match(noAug.err, /--random-size-crop is an augmentation; it cannot be combined with --no-augment/);
  const malformed = await cliInProcess(args('e', '--random-size-crop', '384'));
  assert.equal(malformed.code, 2);
  assert.match(malformed.err, /--random-size-crop/);
  const tensors = await cliInProcess(['train', '--task', 'detect', '-m', DIR, '-d', path.join(work, 'batch.safetensors'), '-o', path.join(work, 'f'), '--random-size-crop']);
  assert.equal(tensors.code, 1);
  assert.match(tensors.err, /--random-size-crop crops images of a COCO folder, but --data .*batch\.safetensors is not a folder/);
  for (const r of [big, noAug, tensors]) assert.equal(r.err.trim().split('\n').length, 1, r.err);
});
