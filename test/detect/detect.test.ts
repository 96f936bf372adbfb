/**
 * `detect` end to end on the reference images (shared/refs/images): YOLOS's eval transform at
 * shortest edge 64 / longest 112 = `single.{i}.pixel_values` of shared/refs/yolos_det, and each image's
 * detections (threshold 0: every det token) = YOLOS PostProcess `single.{i}.*` (scores 1e-4, boxes
 * 1e-2 px), sorted by score; the resize rule against hand-worked sizes; bad options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { FIXTURES, REFS, maxAbsDiff, needRefs } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadImage } from '../../src/io/image.js';
import { loadYolos } from '../../src/detect/load.js';
import { detect, detPreprocessImage, detResizeSize, detResizeSizeHf } from '../../src/detect/detect.js';

const DIR = path.join(FIXTURES, 'yolos_det');
const IMAGES = ['astronaut', 'chelsea', 'coffee'].map((n) => path.join(REFS, 'images', `${n}.png`));

test('detResizeSize: short side to S unless the long side would pass M, both floored to 16 (YOLOS get_size_with_aspect_ratio)', () => {
  assert.deepEqual(detResizeSize(512, 512, 64, 112), [64, 64]);
  assert.deepEqual(detResizeSize(451, 300, 64, 112), [64, 96]); // 451 * 64 / 300 = 96.2 -> 96
  // 64 * 1000 / 300 > 112: S = round(112 * 300 / 1000) = 34, long side int(34 * 1000 / 300) = 113, floored to 16: 32 x 112
  assert.deepEqual(detResizeSize(1000, 300, 64, 112), [32, 112]);
  // every case of test/fixtures/yolos_resize (hustvl/YOLOS resize() on PIL images of each size)
  const ref = JSON.parse(readFileSync(path.join(FIXTURES, 'yolos_resize', 'resize_ref.json'), 'utf8')) as { cases: [number, number, number, number | null, number, number][] };
  assert.ok(ref.cases.length > 200);
  const wrong = ref.cases.filter(([w, h, s, m, ow, oh]) => { const [a, b] = detResizeSize(w, h, s, m); return a !== oh || b !== ow; });
  assert.deepEqual(wrong, [], `${wrong.length} of ${ref.cases.length} sizes differ from hustvl/YOLOS resize()`);
  // YolosImageProcessor: the long side from the unrounded size 33.6 (int(33.6 * 1000 / 300) = 112), then both floored to 16
  assert.deepEqual(detResizeSizeHf(1000, 300, 64, 112), [32, 112]);
  assert.deepEqual(detResizeSizeHf(640, 480, 512, 1333), [512, 672]); // 682 -> 672
  assert.deepEqual(detResizeSizeHf(512, 512, 512, 1333), [512, 512]);
});

test('detect = YOLOS on each reference image alone: pixel values, scores, labels, boxes', async (t) => {
  if (!needRefs(t, ...IMAGES)) return;
  const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
  const { model } = loadYolos(DIR);
  const res = await detect(model, IMAGES, { threshold: 0, shortestEdge: 64, longestEdge: 112 });
  let worstPx = 0, worstS = 0, worstB = 0;
  for (let i = 0; i < 3; i++) {
    const img = await loadImage(IMAGES[i]!, 3);
    const p = detPreprocessImage(img, 64, 112);
    const rp = ref.f32(`single.${i}.pixel_values`);
    assert.deepEqual([1, 3, p.h, p.w], rp.shape);
    worstPx = Math.max(worstPx, maxAbsDiff(p.pixels, rp.data));
    const r = res[i]!;
    assert.equal(r.file, IMAGES[i]);
    assert.deepEqual([r.height, r.width], [img.height, img.width]);
    assert.equal(r.detections.length, 10);
    const scores = ref.f32(`single.${i}.scores`).data, boxes = ref.f32(`single.${i}.boxes`).data, labels = ref.i64(`single.${i}.labels`).data;
    const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
    r.detections.forEach((d, k) => {
      const q = order[k]!;
      assert.equal(d.label_id, Number(labels[q]));
      assert.equal(d.label, `class_${d.label_id}`);
      worstS = Math.max(worstS, Math.abs(d.score - scores[q]!));
      worstB = Math.max(worstB, maxAbsDiff(d.box, boxes.subarray(4 * q, 4 * q + 4)));
    });
  }
  console.log(`detect: pixel values ${worstPx.toExponential(2)}, scores ${worstS.toExponential(2)}, boxes ${worstB.toExponential(2)} px`);
  assert.ok(worstPx <= 1e-5, `pixel values ${worstPx}`);
  assert.ok(worstS <= 1e-4 && worstB <= 1e-2, `scores ${worstS}, boxes ${worstB} px`);
  // the three images in one batch, zero-padded bottom/right as YOLOS pads them = post.* of the padded reference batch
  const batched = await detect(model, IMAGES, { threshold: 0, shortestEdge: 64, longestEdge: 112, batchSize: 3 });
  let worstBatch = 0;
  for (let i = 0; i < 3; i++) {
    const scores = ref.f32('post.scores').data.subarray(10 * i, 10 * i + 10), boxes = ref.f32('post.boxes').data.subarray(40 * i, 40 * i + 40);
    const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
    batched[i]!.detections.forEach((d, k) => {
      worstBatch = Math.max(worstBatch, Math.abs(d.score - scores[order[k]!]!), maxAbsDiff(d.box, boxes.subarray(4 * order[k]!, 4 * order[k]! + 4)) / 100);
    });
  }
  assert.ok(worstBatch <= 1e-4, `padded batch vs post.*: ${worstBatch}`);
  const top = await detect(model, [IMAGES[0]!], { threshold: 0, topK: 3, shortestEdge: 64, longestEdge: 112 });
  assert.equal(top[0]!.detections.length, 3);
  await assert.rejects(detect(model, IMAGES, { threshold: 1.5 }), /Expected threshold in \[0, 1\] but received 1.5/);
  await assert.rejects(detect(model, IMAGES, { shortestEdge: 100, longestEdge: 50 }), /Expected longestEdge \(50\) >= shortestEdge \(100\)/);
});
