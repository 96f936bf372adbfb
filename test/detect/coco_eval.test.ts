/**
 * COCO box evaluation = pycocotools: the 12 numbers of COCOeval.summarize() on fixtures made by
 * pycocotools 2.0.11 itself (test/fixtures/coco/make_fixtures.py): misses, duplicates, wrong
 * labels, false positives, equal scores, small/medium/large objects, areas below the box area, crowd
 * regions, a range with no ground truth (−1), more than 100 detections per image, and a hand-made case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../helpers.js';
import { COCO_STAT_KEYS, cocoEvaluate, type CocoDetection, type CocoGt } from '../../src/detect/coco_eval.js';

for (const name of ['hand', 'mixed', 'crowd', 'no_large', 'many_dets']) {
  test(`cocoEvaluate = pycocotools COCOeval.summarize() (fixture ${name})`, () => {
    const f = JSON.parse(readFileSync(path.join(FIXTURES, 'coco', `fixture_${name}.json`), 'utf8')) as { gt: CocoGt; dt: CocoDetection[]; stats: number[] };
    const s = cocoEvaluate(f.gt, f.dt);
    const got = COCO_STAT_KEYS.map((k) => s[k]);
    for (let i = 0; i < 12; i++) assert.ok(Math.abs(got[i]! - f.stats[i]!) <= 1e-12, `${COCO_STAT_KEYS[i]}: ${got[i]} vs pycocotools ${f.stats[i]}`);
  });
}

test('cocoEvaluate: detections on an unknown image and malformed boxes are one clear line', () => {
  const gt: CocoGt = { images: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100 }], categories: [{ id: 1 }] };
  assert.throws(() => cocoEvaluate(gt, [{ image_id: 7, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }]), /detections\[0\] has image_id 7, which is not among/);
  assert.throws(() => cocoEvaluate(gt, [{ image_id: 1, category_id: 1, bbox: [0, 0, 1] as unknown as [number, number, number, number], score: 1 }]), /expected bbox \[x, y, w, h\] of 4 finite numbers/);
});
