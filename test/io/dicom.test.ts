/**
 * DICOM and 16-bit gray images against pydicom 3.0.2 (test/fixtures/dicom = ../shared/refs/dicom):
 * stored values exact, modality LUT within 1e-6, the PS3.3 C.11.2.1.2.1 window within 1e-6 through
 * `vitkit run --image ... --outputs pixel_values` on a 1-channel model with identity preprocessing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, tmp, vitkit, assertUserError, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { decodeDicom } from '../../src/io/dicom.js';
import { modalityLut, applyWindow, parseWindow, valueRange } from '../../src/io/window.js';
import { windowDicom } from '../../src/io/medical.js';
import { presetConfig } from '../../src/models/presets.js';
import { createModel } from '../../src/models/registry.js';
import { initWeights, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';

const DIR = path.join(FIXTURES, 'dicom');
const spec = JSON.parse(readFileSync(path.join(DIR, 'dicom_spec.json'), 'utf8')) as { files: Record<string, { rows: number; cols: number; window_center: number; window_width: number; window_from_file: boolean; photometric: string; transfer_syntax: string }> };
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
const FILES = Object.keys(spec.files);

/** A 1-channel ViT whose preprocessing is the identity at size x size (mean 0, std 1, crop_pct 1). */
function identityModel(size: number): string {
  const dir = path.join(tmp(), 'm');
  const config = { ...presetConfig('vit_tiny_patch16_224'), img_size: size, in_chans: 1, embed_dim: 16, depth: 1, num_heads: 2, num_classes: 2 };
  const model = createModel(config);
  initWeights(model, 0);
  saveCheckpoint(dir, model, { name: 'vit_tiny_patch16_224', pretrainedCfg: { input_size: [1, size, size], mean: [0], std: [1], crop_pct: 1, crop_mode: 'center', interpolation: 'bicubic', num_classes: 2 } });
  return dir;
}

function runPixels(model: string, image: string, ...extra: string[]): { shape: number[]; data: Float32Array } {
  const out = path.join(tmp(), 'o.safetensors');
  const r = vitkit('run', '--model', model, '--image', image, '--output', out, '--outputs', 'pixel_values', ...extra);
  assert.equal(r.code, 0, r.err);
  return readSafetensors(out).f32('pixel_values');
}

test('stored values exact and modality LUT within 1e-6 for every shared file (explicit/implicit VR, big endian, RLE)', () => {
  for (const f of FILES) {
    const name = f.replace(/\.dcm$/, '');
    const d = decodeDicom(readFileSync(path.join(DIR, f)), f);
    const s = ref.i64(`${name}.stored`);
    assert.deepEqual([d.rows, d.cols], s.shape, f);
    let bad = 0;
    for (let i = 0; i < s.data.length; i++) if (BigInt(d.stored[i]!) !== s.data[i]) bad++;
    assert.equal(bad, 0, `${f}: ${bad} stored values differ`);
    const m = modalityLut(d.stored, d.slope, d.intercept);
    assert.ok(maxAbsDiff(m, ref.f32(`${name}.modality`).data) <= 1e-6, f);
    assert.equal(d.photometric, spec.files[f]!.photometric);
    if (spec.files[f]!.window_from_file) assert.deepEqual(d.window, { center: spec.files[f]!.window_center, width: spec.files[f]!.window_width });
    else assert.equal(d.window, null);
  }
});

test('window01 within 1e-6 through vitkit run --image --outputs pixel_values (CT_small --window 40,400; MR files their own window)', () => {
  const models = new Map<number, string>();
  for (const f of FILES) {
    const sp = spec.files[f]!;
    if (!models.has(sp.rows)) models.set(sp.rows, identityModel(sp.rows));
    const extra = sp.window_from_file ? [] : ['--window', `${sp.window_center},${sp.window_width}`];
    const pv = runPixels(models.get(sp.rows)!, path.join(DIR, f), ...extra);
    assert.deepEqual(pv.shape, [1, 1, sp.rows, sp.cols]);
    const w = ref.f32(`${f.replace(/\.dcm$/, '')}.window01`).data;
    const err = maxAbsDiff(pv.data, w);
    assert.ok(err <= 1e-6, `${f}: window01 max |diff| ${err}`);
  }
});

test('ct_small_u16.png (16-bit PNG) with --window 1064,400 equals CT_small window 40/400 exactly; without a window it is v / 65535', () => {
  const m = identityModel(128);
  const png = runPixels(m, path.join(DIR, 'ct_small_u16.png'), '--window', '1064,400');
  const w = ref.f32('CT_small.window01').data;
  assert.equal(maxAbsDiff(png.data, w), 0);
  const plain = runPixels(m, path.join(DIR, 'ct_small_u16.png'));
  const hu = ref.f32('CT_small.modality').data;
  // all 16 bits: (HU + 1024) / 65535, not an 8-bit value
  assert.ok(maxAbsDiff(plain.data, Array.from(hu, (v) => (v + 1024) / 65535)) <= 1e-7);
});

test('the preset ct-soft-tissue is 40/400, and a DICOM without a window falls back to minmax (said once)', () => {
  assert.deepEqual(parseWindow('ct-soft-tissue'), { center: 40, width: 400, name: 'ct-soft-tissue' });
  assert.deepEqual(parseWindow('ct-lung'), { center: -600, width: 1500, name: 'ct-lung' });
  const d = decodeDicom(readFileSync(path.join(DIR, 'CT_small.dcm')), 'CT_small.dcm');
  const g = windowDicom(d, 'CT_small.dcm', {});
  let mn = Infinity, mx = -Infinity;
  for (const v of g.data) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
  assert.equal(mn, 0);
  assert.equal(mx, 1);
  const r = vitkit('run', '--model', identityModel(128), '--image', path.join(DIR, 'CT_small.dcm'), '--output', path.join(tmp(), 'o.st'), '--outputs', 'pixel_values');
  assert.equal(r.code, 0, r.err);
  assert.equal((r.err.match(/minmax/g) ?? []).length, 1, r.err);
});

test('PS3.3 linear window: the edges, MONOCHROME1 inversion and padding', () => {
  const x = Float32Array.from([-1000, 39.5 - 199.5, 39.5 - 199.5 + 1, 39.5, 39.5 + 199.5, 39.5 + 199.5 + 0.01, 3000]);
  const y = applyWindow(x, 40, 400, 't');
  assert.deepEqual(Array.from(y.slice(0, 2)), [0, 0]);
  assert.ok(Math.abs(y[2]! - (1 / 399 + 0.5 - 199.5 / 399)) < 1e-7);
  assert.equal(y[3], 0.5);
  assert.ok(Math.abs(y[4]! - 1) < 1e-7);
  assert.deepEqual(Array.from(y.slice(5)), [1, 1]);
  const inv = applyWindow(x, 40, 400, 't', { invert: true, mask: Uint8Array.from([0, 0, 0, 0, 0, 0, 1]) });
  assert.equal(inv[0], 1);
  assert.equal(inv[6], 0);
});

test('the modality LUT inside the window pass equals modalityLut then the window; padding (a stored value) gives 0; minmax range through a negative slope', () => {
  const st = Int32Array.from([-2000, 0, 1000, 1064, 1065, 1500, 4000]);
  const a = applyWindow(st, 40, 400, 't', { lut: { slope: 1, intercept: -1024 }, padding: 4000 });
  const b = applyWindow(modalityLut(st, 1, -1024), 40, 400, 't');
  assert.equal(b[6], 1);
  assert.equal(a[6], 0);
  assert.deepEqual(Array.from(a.subarray(0, 6)), Array.from(b.subarray(0, 6)));
  const c = applyWindow(Int32Array.from([7, 9]), 40, 400, 't', { lut: { slope: 0.1, intercept: 0.3 } });
  assert.deepEqual(Array.from(c), Array.from(applyWindow(modalityLut(Int32Array.from([7, 9]), 0.1, 0.3), 40, 400, 't')));
  assert.deepEqual(valueRange(st, { lut: { slope: -0.5, intercept: 10 }, padding: -2000 }), { min: -1990, max: 10 });
});

test('refused with one line, exit 1: truncated pixel data, no pixel data, unsupported transfer syntax, zero-width window', () => {
  const m = identityModel(64);
  const out = path.join(tmp(), 'o.safetensors');
  const trunc = vitkit('run', '--model', m, '--image', path.join(DIR, 'MR_truncated.dcm'), '--output', out, '--outputs', 'pixel_values');
  assertUserError(trunc, /8192 bytes of pixel data.*MR_truncated\.dcm.*received 8130/);
  assert.equal(trunc.code, 1);

  const ct = readFileSync(path.join(DIR, 'MR_small.dcm'));
  const at = ct.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  assert.ok(at > 132);
  const nopx = path.join(tmp(), 'nopixels.dcm');
  writeFileSync(nopx, ct.subarray(0, at));
  const r2 = vitkit('run', '--model', m, '--image', nopx, '--output', out, '--outputs', 'pixel_values');
  assertUserError(r2, /nopixels\.dcm.*pixel data|pixel data.*nopixels\.dcm/i);
  assert.equal(r2.code, 1);

  const ts = Buffer.from('1.2.840.10008.1.2.1\0');
  const i = ct.indexOf(ts);
  assert.ok(i > 0);
  const bad = Buffer.from(ct);
  Buffer.from('1.2.840.10008.1.2.9\0').copy(bad, i);
  const unsup = path.join(tmp(), 'unsupported.dcm');
  writeFileSync(unsup, bad);
  const r3 = vitkit('run', '--model', m, '--image', unsup, '--output', out, '--outputs', 'pixel_values');
  assertUserError(r3, /unsupported\.dcm.*transfer syntax 1\.2\.840\.10008\.1\.2\.9/);
  assert.equal(r3.code, 1);

  const png = path.join(tmp(), 'ct.png');
  copyFileSync(path.join(DIR, 'ct_small_u16.png'), png);
  const r4 = vitkit('run', '--model', identityModel(128), '--image', png, '--output', out, '--outputs', 'pixel_values', '--window', '1064,0');
  assertUserError(r4, /--window.*width/);
});

test('predict --json and explain on DICOM files (one named without .dcm) write no patient tags; explain draws on the windowed gray image', () => {
  const m = identityModel(128);
  const d = tmp();
  copyFileSync(path.join(DIR, 'CT_small.dcm'), path.join(d, 'ct.dcm'));
  const noext = path.join(tmp(), 'IM0001'); // recognised by 'DICM' at byte 128
  copyFileSync(path.join(DIR, 'CT_small.dcm'), noext);
  const r = vitkit('predict', '--model', m, '--json', '--window', 'ct-soft-tissue', d, noext);
  assert.equal(r.code, 0, r.err);
  const preds = JSON.parse(r.out) as { image: string }[];
  assert.deepEqual(preds.map((p) => path.basename(p.image)), ['ct.dcm', 'IM0001']);
  const all = r.out + r.err;
  for (const tag of ['CompressedSamples', '1CT1', '20040119', '2004-01-19']) assert.ok(!all.includes(tag), `patient/study tag ${tag} in predict output`);
  const outDir = tmp();
  const e = vitkit('explain', '--model', m, '--window', '40,400', '--out', outDir, path.join(d, 'ct.dcm'));
  assert.equal(e.code, 0, e.err);
  for (const tag of ['CompressedSamples', '1CT1', '20040119', '2004-01-19']) assert.ok(!(e.out + e.err).includes(tag), `tag ${tag} in explain output`);
});

test('--in-chans 1 on a 3-channel model (timm adapt_input_conv): gray x gives the logits RGB (x, x, x) gave', async () => {
  const { grayModel } = await import('../../src/train/prepare.js');
  const { VisionTransformer } = await import('../../src/models/vit.js');
  const { Tensor } = await import('../../src/tensor.js');
  const { adaptInputConvTo1 } = await import('../../src/checkpoint/adapt_conv.js');
  const w = Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 300, 400]); // (1, 3, 2, 2)
  assert.deepEqual(Array.from(adaptInputConvTo1(w, [1, 3, 2, 2]).data), [111, 222, 333, 444]);
  const config = { ...presetConfig('vit_tiny_patch16_224'), img_size: 32, in_chans: 3, embed_dim: 16, depth: 1, num_heads: 2, num_classes: 3 };
  const rgb = new VisionTransformer(config);
  initWeights(rgb, 1);
  const gray = grayModel(rgb, 'test');
  assert.equal(gray.config.in_chans, 1);
  const x = new Float32Array(32 * 32); // (1, 1, 32, 32)
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
  const x3 = new Float32Array(3 * x.length); // (1, 3, 32, 32)
  for (let c = 0; c < 3; c++) x3.set(x, c * x.length);
  const a = gray.forward(new Tensor([1, 1, 32, 32], x)).data;
  const b = rgb.forward(new Tensor([1, 3, 32, 32], x3)).data;
  assert.ok(maxAbsDiff(a, b) <= 1e-5, `max |diff| ${maxAbsDiff(a, b)}`);
});
