/**
 * `vitkit export --format onnx`: the file runs in onnxruntime-node (bench/node_modules, installed by
 * scripts/bench-deps.mjs) and matches vitkit's logits within 1e-4 (fp32) and timm's reference logits
 * within 1e-4 (../shared/refs: timm_vit_tiny, timm_deit_distilled, timm_dinov2_reg, timm_clip_vit,
 * timm_siglip); the header (opset, input/output names, dims) decoded with the same protobuf schema.
 * YOLOS (test/fixtures/yolos_det, hustvl's layout): pred_logits / pred_boxes = hustvl/YOLOS's reference
 * outputs within 1e-4 at the position embedding's own size and at x2's 48x80 (resampled at export),
 * and = vitkit's forward with mid position embeddings at a resampled grid and at a size that is not a
 * multiple of the patch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { exportYolosOnnx, readOnnxSummary } from '../../src/export/onnx.js';
import { loadYolos } from '../../src/detect/load.js';
import { Yolos } from '../../src/detect/yolos.js';
import { FIXTURES, REFS, ROOT, IN_CI, maxAbsDiff, rng, tmp, needRefs, vitkit, assertUserError } from '../helpers.js';

type Ort = typeof import('onnxruntime-common') & { InferenceSession: { create(p: string, o?: object): Promise<{ run(f: object): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> }> } };
function loadOrt(): Ort | null {
  try {
    return createRequire(path.join(ROOT, 'bench', 'package.json'))('onnxruntime-node') as Ort;
  } catch {
    return null;
  }
}
const ort = loadOrt();
const NO_ORT = 'needs onnxruntime-node in bench/node_modules (node scripts/bench-deps.mjs)';
function needOrt(t: { skip: (m: string) => void }): boolean {
  if (ort) return true;
  if (IN_CI) assert.fail(NO_ORT);
  t.skip(NO_ORT);
  return false;
}

async function runOnnx(file: string, x: Tensor, outputs: string[]): Promise<Record<string, Float32Array>> {
  const s = await ort!.InferenceSession.create(file, { intraOpNumThreads: 1 });
  const r = await s.run({ pixel_values: new ort!.Tensor('float32', x.data, x.shape) });
  return Object.fromEntries(outputs.map((o) => [o, r[o]!.data as Float32Array]));
}

function exportTo(model: string, ...extra: string[]): string {
  const out = path.join(tmp(), 'model.onnx');
  const r = vitkit('export', '--model', model, '--format', 'onnx', '--out', out, ...extra);
  assert.equal(r.code, 0, r.err);
  return out;
}

test('timm_vit_tiny: onnxruntime = vitkit and timm logits within 1e-4; header opset 17, pixel_values -> logits, pre_logits', async (t) => {
  const dir = path.join(REFS, 'timm_vit_tiny'), refFile = path.join(REFS, 'timm_vit_tiny_ref.safetensors');
  if (!needRefs(t, dir, refFile) || !needOrt(t)) return;
  const out = exportTo(dir, '--outputs', 'logits,pre_logits', '--dynamic-batch');
  const h = readOnnxSummary(readFileSync(out));
  assert.equal(h.opset, 17);
  assert.deepEqual(h.inputs, [{ name: 'pixel_values', dims: ['batch', 3, 224, 224] }]);
  assert.deepEqual(h.outputs.map((o) => o.name), ['logits', 'pre_logits']);
  assert.deepEqual(h.outputs[0]!.dims, ['batch', 1000]);
  assert.deepEqual(h.outputs[1]!.dims, ['batch', 192]);
  const ref = readSafetensors(refFile);
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const m = loadModel(dir).model as VisionTransformer;
  const f = m.forwardFeatures(x);
  const got = await runOnnx(out, x, ['logits', 'pre_logits']);
  const eLog = maxAbsDiff(got['logits']!, m.forwardHead(f.features).data);
  const ePre = maxAbsDiff(got['pre_logits']!, m.forwardHead(f.features, { preLogits: true }).data);
  const eTimm = maxAbsDiff(got['logits']!, ref.f32('logits').data);
  t.diagnostic(`onnx vs vitkit logits ${eLog.toExponential(2)}, pre_logits ${ePre.toExponential(2)}, vs timm logits ${eTimm.toExponential(2)}`);
  assert.ok(eLog <= 1e-4 && ePre <= 1e-4 && eTimm <= 1e-4, `${eLog} ${ePre} ${eTimm}`);
  // the file is not replaced without --overwrite
  assertUserError(vitkit('export', '--model', dir, '--format', 'onnx', '--out', out), /already exists; pass --overwrite/);
});

test('timm_vit_tiny --dynamic-batch: batch 1 and 3 in one file = vitkit within 1e-4', async (t) => {
  const dir = path.join(REFS, 'timm_vit_tiny'), refFile = path.join(REFS, 'timm_vit_tiny_ref.safetensors');
  if (!needRefs(t, dir, refFile) || !needOrt(t)) return;
  const out = exportTo(dir, '--dynamic-batch');
  assert.deepEqual(readOnnxSummary(readFileSync(out)).inputs[0]!.dims, ['batch', 3, 224, 224]);
  const pv = readSafetensors(refFile).f32('pixel_values').data.subarray(0, 3 * 224 * 224); // the first image (1, 3, 224, 224)
  const x3 = new Float32Array(3 * pv.length); // (3, 3, 224, 224): the image, flipped, scaled
  for (let i = 0; i < pv.length; i++) { x3[i] = pv[i]!; x3[pv.length + i] = pv[pv.length - 1 - i]!; x3[2 * pv.length + i] = 0.5 * pv[i]!; }
  const m = loadModel(dir).model as VisionTransformer;
  for (const B of [1, 3]) {
    const x = new Tensor([B, 3, 224, 224], x3.subarray(0, B * pv.length));
    const e = maxAbsDiff((await runOnnx(out, x, ['logits']))['logits']!, m.forward(x).data);
    t.diagnostic(`batch ${B}: ${e.toExponential(2)}`);
    assert.ok(e <= 1e-4, `batch ${B}: ${e}`);
  }
});

for (const fam of ['timm_deit_distilled', 'timm_dinov2_reg', 'timm_clip_vit', 'timm_siglip']) {
  test(`${fam}: onnxruntime = vitkit within 1e-4 (logits, pre_logits) and timm's logits within 1e-4`, async (t) => {
    const dir = path.join(REFS, fam);
    if (!needRefs(t, dir) || !needOrt(t)) return;
    const m = loadModel(dir).model as VisionTransformer;
    const outs = m.config.num_classes > 0 ? ['logits', 'pre_logits'] : ['pre_logits'];
    const out = exportTo(dir, '--outputs', outs.join(','), '--dynamic-batch');
    const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
    const pv = ref.f32('pixel_values');
    const x = new Tensor(pv.shape, pv.data);
    const got = await runOnnx(out, x, outs);
    const f = m.forwardFeatures(x);
    const report: string[] = [];
    const check = (name: string, a: Float32Array, b: Float32Array) => {
      const e = maxAbsDiff(a, b);
      report.push(`${name} ${e.toExponential(2)}`);
      assert.ok(e <= 1e-4, `${fam} ${name}: ${e}`);
    };
    check('pre_logits vs vitkit', got['pre_logits']!, m.forwardHead(f.features, { preLogits: true }).data);
    if (ref.has('pre_logits')) check('pre_logits vs timm', got['pre_logits']!, ref.f32('pre_logits').data);
    if (got['logits']) {
      check('logits vs vitkit', got['logits'], m.forwardHead(f.features).data);
      if (ref.has('logits')) check('logits vs timm', got['logits'], ref.f32('logits').data);
    }
    t.diagnostic(report.join(', '));
  });
}

test('export refuses: --format other than onnx (exit 2), an unknown output; fixed batch header; --overwrite', (t) => {
  const dir = path.join(REFS, 'timm_vit_tiny');
  if (!needRefs(t, dir)) return;
  const out = path.join(tmp(), 'm.onnx');
  const r = vitkit('export', '--model', dir, '--format', 'tflite', '--out', out);
  assert.equal(r.code, 2);
  assert.match(r.err, /Expected --format onnx but received "tflite"/);
  const r2 = vitkit('export', '--model', dir, '--out', out, '--outputs', 'logits,features');
  assert.equal(r2.code, 2);
  assert.match(r2.err, /Expected --outputs from logits, pre_logits but received "features"/);
  // a fixed-batch export declares batch 1 and replaces a file only with --overwrite
  writeFileSync(out, 'x');
  assertUserError(vitkit('export', '--model', dir, '--out', out), /already exists/);
  assert.equal(readFileSync(out, 'utf8'), 'x');
  assert.equal(vitkit('export', '--model', dir, '--out', out, '--overwrite').code, 0);
  const h = readOnnxSummary(readFileSync(out));
  assert.deepEqual(h.inputs, [{ name: 'pixel_values', dims: [1, 3, 224, 224] }]);
  assert.deepEqual(h.outputs, [{ name: 'logits', dims: [1, 1000] }]);
});

test('YOLOS export: onnxruntime pred_logits / pred_boxes = hustvl/YOLOS within 1e-4 (own size, and 48x80 resampled); header', async (t) => {
  if (!needOrt(t)) return;
  const DIR = path.join(FIXTURES, 'yolos_det');
  const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
  const { model } = loadYolos(DIR);
  const def = exportTo(DIR);
  const h0 = readOnnxSummary(readFileSync(def));
  assert.equal(h0.opset, 17);
  assert.deepEqual(h0.inputs, [{ name: 'pixel_values', dims: [1, 3, 64, 96] }]);
  assert.deepEqual(h0.outputs, [{ name: 'pred_logits', dims: [1, 10, 6] }, { name: 'pred_boxes', dims: [1, 10, 4] }]);
  const report: string[] = [];
  for (const [key, pre, size] of [['pixel_values', '', '64,96'], ['x2', 'x2.', '48x80']] as const) {
    const out = exportTo(DIR, '--img-size', size, '--dynamic-batch');
    const pv = ref.f32(key);
    const x = new Tensor(pv.shape, pv.data);
    assert.deepEqual(readOnnxSummary(readFileSync(out)).inputs[0]!.dims, ['batch', 3, pv.shape[2], pv.shape[3]]);
    const got = await runOnnx(out, x, ['pred_logits', 'pred_boxes']);
    const mine = model.forward(x);
    const e = [maxAbsDiff(got['pred_logits']!, ref.f32(`${pre}pred_logits`).data), maxAbsDiff(got['pred_boxes']!, ref.f32(`${pre}pred_boxes`).data),
      maxAbsDiff(got['pred_logits']!, mine.logits.data), maxAbsDiff(got['pred_boxes']!, mine.boxes.data)];
    report.push(`${key}: vs YOLOS ${e[0]!.toExponential(2)} / ${e[1]!.toExponential(2)}, vs vitkit ${e[2]!.toExponential(2)} / ${e[3]!.toExponential(2)}`);
    assert.ok(e.every((v) => v <= 1e-4), `${key}: ${e.join(', ')}`);
  }
  t.diagnostic(report.join('; '));
});

test('YOLOS export with mid position embeddings, at a resampled grid and a size that is not a multiple of the patch = vitkit', async (t) => {
  if (!needOrt(t)) return;
  const { model } = loadYolos(path.join(FIXTURES, 'yolos_det'));
  const m = new Yolos({ ...model.config, midPe: [4, 6] });
  for (const n of model.params.names()) m.params.get(n).set(model.params.get(n));
  const mid = m.params.get('backbone.mid_pos_embed'), r = rng(11);
  for (let i = 0; i < mid.length; i++) mid[i] = 0.2 * (r() * 2 - 1);
  for (const [H, W] of [[48, 112], [70, 100], [64, 96]] as const) {
    const file = path.join(tmp(), 'y.onnx');
    writeFileSync(file, exportYolosOnnx(m, { imgSize: [H, W] }));
    const x = new Tensor([1, 3, H, W], Float32Array.from({ length: 3 * H * W }, () => r() * 4 - 2));
    const got = await runOnnx(file, x, ['pred_logits', 'pred_boxes']);
    const mine = m.forward(x);
    const e = Math.max(maxAbsDiff(got['pred_logits']!, mine.logits.data), maxAbsDiff(got['pred_boxes']!, mine.boxes.data));
    t.diagnostic(`${H}x${W}: ${e.toExponential(2)}`);
    assert.ok(e <= 1e-4, `${H}x${W}: ${e}`);
  }
});

test('YOLOS export refuses --outputs, a size under one patch; --img-size is for YOLOS only', (t) => {
  const DIR = path.join(FIXTURES, 'yolos_det'), out = path.join(tmp(), 'y.onnx');
  const r = vitkit('export', '--model', DIR, '--out', out, '--outputs', 'logits');
  assert.equal(r.code, 2);
  assert.match(r.err, /A YOLOS export has the outputs pred_logits and pred_boxes; --outputs is for classifiers/);
  assertUserError(vitkit('export', '--model', DIR, '--out', out, '--img-size', '8,96'), /height,width integers >= the patch size 16 but received 8,96/);
  const bad = vitkit('export', '--model', DIR, '--out', out, '--img-size', '64;96');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /Expected --img-size as height,width/);
  const vit = path.join(REFS, 'timm_vit_tiny');
  if (!needRefs(t, vit)) return;
  const c = vitkit('export', '--model', vit, '--out', out, '--img-size', '224,224');
  assert.equal(c.code, 2);
  assert.match(c.err, /--img-size sets a YOLOS export's input size/);
});
