/**
 * The detection command line: `vitkit detect` (--json, --out pictures + detections.json, refusing
 * to overwrite), `vitkit eval --task detect` on a COCO folder whose ground truth is the model's own
 * boxes (every detection matches one exactly: AP = AP50 = AR100 = 1), `vitkit train --task detect`
 * on shared/refs/yolos_det's training batch (3 steps = the float64 reference's after-3 parameters
 * under the refs README rule; stopping after step 1 and --resume gives bit-identical weights), and
 * the bad-input lines of issue 18 §4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, REFS, cliInProcess, maxAbs, maxAbsDiff, needRefs, stopBySignal, tmp } from '../helpers.js';
import { withoutDeviceLine } from '../helpers.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadYolos } from '../../src/detect/load.js';
import { DET_STATE, readTrainingState } from '../../src/train/state.js';
import { loadImage } from '../../src/io/image.js';
import type { DetectionResult } from '../../src/detect/detect.js';

const DIR = path.join(FIXTURES, 'yolos_det');
const IMAGES = ['astronaut', 'chelsea', 'coffee'].map((n) => path.join(REFS, 'images', `${n}.png`));
const TRAIN_REF = path.join(REFS, 'yolos_det', 'train_ref.safetensors');

test('vitkit detect --json / --out, and eval --task detect on the model\'s own boxes (AP 1)', async (t) => {
  if (!needRefs(t, ...IMAGES)) return;
  const work = tmp();
  const r = await cliInProcess(['detect', '--model', DIR, '--threshold', '0', '--shortest-edge', '64', '--longest-edge', '112', '--json', ...IMAGES]);
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as DetectionResult[];
  assert.equal(res.length, 3);
  for (const x of res) {
    assert.equal(x.detections.length, 10);
    for (let i = 1; i < 10; i++) assert.ok(x.detections[i]!.score <= x.detections[i - 1]!.score);
  }
  const out = path.join(work, 'boxes');
  const r2 = await cliInProcess(['detect', '-m', DIR, '--threshold', '0.2', '--shortest-edge', '64', '--longest-edge', '112', '--out', out, IMAGES[1]!]);
  assert.equal(r2.code, 0, r2.err);
  const png = await loadImage(path.join(out, 'chelsea.png'), 3), orig = await loadImage(IMAGES[1]!, 3);
  assert.deepEqual([png.width, png.height], [orig.width, orig.height]);
  const saved = JSON.parse(readFileSync(path.join(out, 'detections.json'), 'utf8')) as DetectionResult[];
  assert.ok(saved[0]!.detections.every((d) => d.score >= 0.2));
  if (saved[0]!.detections.length > 0) assert.notDeepEqual(png.data, orig.data, 'boxes drawn');
  const again = await cliInProcess(['detect', '-m', DIR, '--out', out, IMAGES[1]!]);
  assert.equal(again.code, 1);
  assert.match(again.err, /chelsea\.png already exists; pass --overwrite/);
  // a COCO folder whose annotations are the model's own boxes
  const coco = path.join(work, 'coco');
  mkdirSync(path.join(coco, 'images'), { recursive: true });
  mkdirSync(path.join(coco, 'annotations'));
  const images: object[] = [], annotations: object[] = [];
  let aid = 1;
  res.forEach((x, i) => {
    copyFileSync(IMAGES[i]!, path.join(coco, 'images', path.basename(IMAGES[i]!)));
    images.push({ id: i + 1, file_name: path.basename(IMAGES[i]!), width: x.width, height: x.height });
    for (const d of x.detections) {
      const [x0, y0, x1, y1] = d.box;
      annotations.push({ id: aid++, image_id: i + 1, category_id: d.label_id, bbox: [x0, y0, x1 - x0, y1 - y0], area: (x1 - x0) * (y1 - y0), iscrowd: 0 });
    }
  });
  const categories = [0, 1, 2, 3, 4].map((id) => ({ id, name: `c${id}` }));
  writeFileSync(path.join(coco, 'annotations', 'val.json'), JSON.stringify({ images, annotations, categories }));
  const ev = await cliInProcess(['eval', '--task', 'detect', '-m', DIR, '-d', coco, '--shortest-edge', '64', '--longest-edge', '112', '--json']);
  assert.equal(ev.code, 0, ev.err);
  const stats = (JSON.parse(ev.out) as { coco: Record<string, number> }).coco;
  assert.deepEqual(Object.keys(stats), ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']);
  assert.ok(Math.abs(stats['AP']! - 1) < 1e-12 && Math.abs(stats['AP50']! - 1) < 1e-12 && Math.abs(stats['AR100']! - 1) < 1e-12, JSON.stringify(stats));
  // training on the folder (flip + multi-scale): crowd, zero-area and out-of-image boxes are skipped with a count
  const extra = [
    { id: 900, image_id: 1, category_id: 0, bbox: [5, 5, 20, 20], area: 400, iscrowd: 1 },
    { id: 901, image_id: 1, category_id: 1, bbox: [5, 5, 0, 20], area: 0, iscrowd: 0 },
    { id: 902, image_id: 2, category_id: 2, bbox: [-4, 5, 20, 20], area: 400, iscrowd: 0 },
  ];
  // the model's boxes may leave the image: clip them for training
  const inside = (annotations as { image_id: number; bbox: number[] }[]).map((a) => {
    const im = res[a.image_id - 1]!, [x, y, w, h] = a.bbox as [number, number, number, number];
    const x0 = Math.max(0, x), y0 = Math.max(0, y), x1 = Math.min(im.width, x + w), y1 = Math.min(im.height, y + h);
    return { ...a, bbox: [x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0)] };
  }).filter((a) => a.bbox[0]! + a.bbox[2]! <= res[a.image_id - 1]!.width && a.bbox[1]! + a.bbox[3]! <= res[a.image_id - 1]!.height);
  writeFileSync(path.join(coco, 'annotations', 'val.json'), JSON.stringify({ images, annotations: [...inside, ...extra], categories }));
  const run = path.join(work, 'folder_run');
  const ft = await cliInProcess(['train', '--task', 'detect', '-m', DIR, '-d', coco, '-o', run, '--epochs', '1', '--batch-size', '3', '--shortest-edge', '64', '--longest-edge', '112']);
  assert.equal(ft.code, 0, ft.err);
  assert.match(ft.out, /skipped 3 annotations of .*val\.json: 1 crowd, 1 of zero area, 1 outside their image/);
  assert.match(ft.out, /epoch 1\/1 {2}loss \d+\.\d+/);
  const trained = loadYolos(run).model, init = loadYolos(DIR).model;
  assert.notDeepEqual(trained.params.buffer, init.params.buffer);
  assert.deepEqual(trained.config.labels, ['c0', 'c1', 'c2', 'c3', 'c4']);
  // bad input: unknown image id; a category that does not fit the head
  writeFileSync(path.join(coco, 'annotations', 'val.json'), JSON.stringify({ images, annotations: [{ id: 1, image_id: 99, category_id: 0, bbox: [0, 0, 5, 5], area: 25 }], categories }));
  const bad = await cliInProcess(['eval', '--task', 'detect', '-m', DIR, '-d', coco]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /annotations\[0\] \(id 1\) refers to image_id 99, which is not in "images"/);
  writeFileSync(path.join(coco, 'annotations', 'val.json'), JSON.stringify({ images, annotations: [], categories: [...categories, { id: 7, name: 'x' }] }));
  const tr = await cliInProcess(['train', '--task', 'detect', '-m', DIR, '-d', coco, '-o', path.join(work, 'run'), '--epochs', '1']);
  assert.equal(tr.code, 1);
  assert.match(tr.err, /category id 7 does not fit the model's 5 classes .*pass --num-classes 8 to re-initialise the class head's last layer/);
  assert.equal(withoutDeviceLine(tr.err).split('\n').length, 1);
});

test('vitkit train --task detect on the reference batch: after 3 steps = hustvl/YOLOS (float64), and stop + --resume is exact', async (t) => {
  if (!needRefs(t, TRAIN_REF)) return;
  const work = tmp();
  const ref = readSafetensors(TRAIN_REF);
  const data = path.join(work, 'batch.safetensors');
  const tensors: Record<string, { dtype: 'F32' | 'I64'; shape: number[]; data: Float32Array | BigInt64Array }> = {};
  tensors['x'] = { dtype: 'F32', ...ref.f32('x') };
  for (const b of [0, 1]) {
    tensors[`targets.${b}.labels`] = { dtype: 'I64', ...ref.i64(`targets.${b}.labels`) };
    tensors[`targets.${b}.boxes`] = { dtype: 'F32', ...ref.f32(`targets.${b}.boxes`) };
  }
  writeSafetensors(data, tensors);
  const args = (out: string) => ['train', '--task', 'detect', '-m', DIR, '-d', data, '-o', out, '--epochs', '3', '--batch-size', '2', '--lr', '1e-3',
    '--weight-decay', '1e-4', '--clip-grad', '0', '--no-augment', '--no-shuffle'];
  const full = path.join(work, 'full');
  const r = await cliInProcess(args(full));
  assert.equal(r.code, 0, r.err);
  const { model } = loadYolos(full);
  let worst = 0;
  for (const name of model.params.names()) {
    const p = model.params.get(name), a = ref.f32(`after3.${name}`).data, g = ref.f32(`grad.${name}`).data;
    const gmax = maxAbs(g), tau = 3e-7 * gmax;
    for (let i = 0; i < a.length; i++) {
      const e = Math.abs(p[i]! - a[i]!), ag = Math.abs(g[i]!);
      const tol = ag <= 1e-7 * gmax ? 3e-3 : 1e-5 + Math.min(3e-3, (3e-3 * 1e-8 * tau) / (ag + 1e-8) ** 2);
      assert.ok(e <= tol, `after3.${name}[${i}]: ${e} > ${tol}`);
      worst = Math.max(worst, e);
    }
  }
  const part = path.join(work, 'part');
  const s1 = await cliInProcess([...args(part), '--stop-after-steps', '1']);
  assert.equal(s1.code, 0, s1.err);
  assert.match(s1.out, /stopped after step 1/);
  const s2 = await cliInProcess([...args(part), '--resume']);
  assert.equal(s2.code, 0, s2.err);
  assert.ok(existsSync(path.join(part, 'checkpoint', 'det_train_state.safetensors')));
  assert.ok(!existsSync(path.join(part, 'det_train_state.safetensors')), 'one .safetensors at the top level');
  const a = readSafetensors(path.join(full, 'model.safetensors')), b = readSafetensors(path.join(part, 'model.safetensors'));
  for (const k of a.keys()) assert.deepEqual(b.f32(k).data, a.f32(k).data, `${k} after stop + resume`);
  const again = await cliInProcess(args(full));
  assert.equal(again.code, 1);
  assert.match(again.err, /already holds a checkpoint .*--resume .*--overwrite/);
});

for (const [sig, exit] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} during vitkit train --task detect: the step finishes, a resumable state is saved, exit ${exit}, a stale temp is removed, and the resumed run equals one not interrupted`, async () => {
    const work = tmp(), N = 300;
    const data = path.join(work, 'batch.safetensors');
    const x = new Float32Array(N * 3 * 64 * 96); // (N, 3, H, W)
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.013);
    const tensors: Record<string, { dtype: 'F32' | 'I64'; shape: number[]; data: Float32Array | BigInt64Array }> = { x: { dtype: 'F32', shape: [N, 3, 64, 96], data: x } };
    for (let b = 0; b < N; b++) {
      tensors[`targets.${b}.labels`] = { dtype: 'I64', shape: [2], data: BigInt64Array.from([BigInt(b % 5), BigInt((b + 2) % 5)]) };
      tensors[`targets.${b}.boxes`] = { dtype: 'F32', shape: [2, 4], data: Float32Array.from([0.3, 0.4, 0.2, 0.3, 0.6, 0.5, 0.3, 0.4]) }; // (2, 4) cx cy w h
    }
    writeSafetensors(data, tensors);
    const args = (out: string) => ['train', '--task', 'detect', '-m', DIR, '-d', data, '-o', out, '--epochs', '1', '--batch-size', '1'];
    const out = path.join(work, 'run');
    mkdirSync(out);
    const stale = 'model.safetensors.tmp-2147483646-abcdefabcdef'; // a dead writer's: cleaned at the start
    writeFileSync(path.join(out, stale), 'left by a killed run');
    const r = await stopBySignal(args(out), sig, 1500);
    assert.equal(r.signal, null, `the process handled ${sig}`);
    assert.equal(r.code, exit, `exit ${r.code}\n${r.out}\n${r.err}`);
    assert.ok(r.ms < 5000, `stopped ${r.ms} ms after the signal`);
    assert.equal(withoutDeviceLine(r.err), 'Interrupted: finishing the current step and writing a resumable checkpoint...\n');
    const m = /stopped after step (\d+) \(loss [\d.]+\); saved to .*run, continue with --resume/.exec(r.out);
    assert.ok(m, r.out);
    const step = Number(m[1]);
    assert.ok(step > 0 && step < N, `stopped at step ${step} of ${N}`);
    assert.ok(!readdirSync(out).includes(stale), 'the stale temporary file was removed');
    assert.deepEqual([...readdirSync(out), ...readdirSync(path.join(out, 'checkpoint'))].filter((f) => f.includes('.tmp-')), []);
    const st = readTrainingState<{ epoch: number; position: number; steps: number }>(path.join(out, 'checkpoint', 'det_train_state.safetensors'), DET_STATE).run;
    assert.deepEqual([st.epoch, st.position, st.steps], [0, step, step]);
    // resumed for one step = the same steps in one go: weights and AdamW moments
    const res = await cliInProcess([...args(out), '--resume', '--stop-after-steps', String(step + 1)]);
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, new RegExp(`resuming at epoch 1, image ${step} of ${N} \\(${step} steps done\\)`));
    const straight = path.join(work, 'straight');
    const s = await cliInProcess([...args(straight), '--stop-after-steps', String(step + 1)]);
    assert.equal(s.code, 0, s.err);
    assert.ok(readFileSync(path.join(out, 'model.safetensors')).equals(readFileSync(path.join(straight, 'model.safetensors'))), 'model.safetensors identical');
    const state = (d: string) => { const f = readSafetensors(path.join(d, 'checkpoint', 'det_train_state.safetensors')); return ['model', 'optimizer.exp_avg', 'optimizer.exp_avg_sq'].map((k) => f.f32(k).data); };
    assert.deepEqual(state(out), state(straight));
  });
}

test('vitkit run on a YOLOS checkpoint: pred_logits, pred_boxes (1e-4), last_attention (1e-5) = hustvl/YOLOS on pixel_values and x2', async () => {
  const work = tmp();
  const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
  const cases: [string, string][] = [['pixel_values', ''], ['x2', 'x2.']];
  for (const [key, prefix] of cases) {
    const input = path.join(work, `${key}.safetensors`), output = path.join(work, `${key}.out.safetensors`);
    writeSafetensors(input, { pixel_values: { dtype: 'F32', ...ref.f32(key) } });
    const outs = prefix ? 'pred_logits,pred_boxes' : 'pred_logits,pred_boxes,last_attention';
    const r = await cliInProcess(['run', '--model', DIR, '--input', input, '--output', output, '--outputs', outs]);
    assert.equal(r.code, 0, r.err);
    const o = readSafetensors(output);
    const e = (k: string) => maxAbsDiff(o.f32(k).data, ref.f32(`${prefix}${k}`).data);
    assert.ok(e('pred_logits') <= 1e-4 && e('pred_boxes') <= 1e-4, `${key}: ${e('pred_logits')}, ${e('pred_boxes')}`);
    if (!prefix) assert.ok(e('last_attention') <= 1e-5, `last_attention ${e('last_attention')}`);
  }
  const bad = await cliInProcess(['run', '--model', DIR, '--input', path.join(work, 'x2.safetensors'), '--output', path.join(work, 'o.safetensors'), '--outputs', 'logits']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /Output logits is not produced by a YOLOS model .*expected some of pred_logits, pred_boxes, last_attention, attentions/);
});
