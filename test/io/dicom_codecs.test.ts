/**
 * Compressed transfer syntaxes through daikon's bundled JavaScript decoders, against pydicom 2.3.1
 * (with GDCM 3.0.21) on fixtures made by test/fixtures/dicom_codecs/make_fixtures.py (dcmtk / GDCM
 * encoders) from pydicom's MR_small.dcm: JPEG Lossless (Process 14 and SV1), JPEG-LS Lossless and
 * JPEG 2000 Lossless decode to MR_small's stored values exactly; JPEG Baseline and lossy JPEG 2000
 * (8-bit) within 1 of pydicom's decoding (two correct decoders of a lossy stream may round the
 * inverse DCT / wavelet differently by one level; ISO/IEC 10918-2's compliance test allows this).
 * RLE Lossless is covered by dicom.test.ts (MR_small_RLE.dcm, stored values exact).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, tmp, vitkit, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { decodeDicom, TRANSFER_SYNTAXES } from '../../src/io/dicom.js';
import { presetConfig } from '../../src/models/presets.js';
import { createModel } from '../../src/models/registry.js';
import { initWeights, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';

const DIR = path.join(FIXTURES, 'dicom_codecs');
const spec = JSON.parse(readFileSync(path.join(DIR, 'codecs_spec.json'), 'utf8')) as { files: Record<string, { transfer_syntax: string; lossless: boolean }> };
const pyd = readSafetensors(path.join(DIR, 'pydicom_decoded.safetensors'));
const ref = readSafetensors(path.join(FIXTURES, 'dicom', 'ref.safetensors'));
const MR = Array.from(ref.i64('MR_small.stored').data, Number); // (64, 64)
const LOSSLESS = Object.keys(spec.files).filter((f) => f.startsWith('MR_small_j') && spec.files[f]!.lossless);
const LOSSY = Object.keys(spec.files).filter((f) => !spec.files[f]!.lossless);

function identityModel(size: number): string {
  const dir = path.join(tmp(), 'm');
  const config = { ...presetConfig('vit_tiny_patch16_224'), img_size: size, in_chans: 1, embed_dim: 16, depth: 1, num_heads: 2, num_classes: 2 };
  const model = createModel(config);
  initWeights(model, 0);
  saveCheckpoint(dir, model, { name: 'vit_tiny_patch16_224', pretrainedCfg: { input_size: [1, size, size], mean: [0], std: [1], crop_pct: 1, crop_mode: 'center', interpolation: 'bicubic', num_classes: 2 } });
  return dir;
}

test('JPEG Lossless (P14, SV1), JPEG-LS and JPEG 2000 Lossless decode to pydicom\'s stored values exactly', () => {
  assert.deepEqual(LOSSLESS.map((f) => spec.files[f]!.transfer_syntax).sort(), ['1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.90']);
  for (const f of LOSSLESS) {
    const d = decodeDicom(readFileSync(path.join(DIR, f)), f);
    assert.equal(d.transferSyntax, spec.files[f]!.transfer_syntax, f);
    assert.ok(TRANSFER_SYNTAXES[d.transferSyntax], f);
    assert.deepEqual([d.rows, d.cols, d.frames, d.pixelRepresentation], [64, 64, 1, 1], f);
    let bad = 0;
    for (let i = 0; i < MR.length; i++) if (d.stored[i] !== MR[i]) bad++;
    assert.equal(bad, 0, `${f}: ${bad} stored values differ from pydicom's`);
  }
});

test('the compressed files reach the model windowed like the uncompressed one (run --outputs pixel_values = pydicom window01)', () => {
  const m = identityModel(64);
  const w = ref.f32('MR_small.window01').data;
  for (const f of LOSSLESS) {
    const out = path.join(tmp(), 'o.safetensors');
    const r = vitkit('run', '--model', m, '--image', path.join(DIR, f), '--output', out, '--outputs', 'pixel_values');
    assert.equal(r.code, 0, r.err);
    assert.ok(maxAbsDiff(readSafetensors(out).f32('pixel_values').data, w) <= 1e-6, f);
  }
});

test('JPEG Baseline and lossy JPEG 2000 (8-bit) within 1 of pydicom\'s decoding; the uncompressed 8-bit file exact', () => {
  assert.deepEqual(LOSSY.map((f) => spec.files[f]!.transfer_syntax).sort(), ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.91']);
  const plain = decodeDicom(readFileSync(path.join(DIR, 'MR_small_8bit.dcm')), 'MR_small_8bit.dcm');
  assert.deepEqual(Array.from(plain.stored), Array.from(pyd.i64('MR_small_8bit.dcm').data, Number));
  for (const f of LOSSY) {
    const d = decodeDicom(readFileSync(path.join(DIR, f)), f);
    assert.equal(d.transferSyntax, spec.files[f]!.transfer_syntax, f);
    assert.deepEqual([d.bitsAllocated, d.pixelRepresentation], [8, 0]);
    const p = pyd.i64(f).data;
    let off = 0;
    for (let i = 0; i < p.length; i++) if (d.stored[i] !== Number(p[i])) off++;
    assert.ok(maxAbsDiff(d.stored, Array.from(p, Number)) <= 1, f);
    assert.ok(off <= p.length / 10, `${f}: ${off} of ${p.length} values differ by 1`);
    // and the lossy file is a different image from the uncompressed one (the test would see a decoder that returned the source)
    assert.ok(maxAbsDiff(d.stored, plain.stored) >= 2, f);
  }
});

test('dcmtk\'s JPEG fill byte before EOI (FF FF D9) decodes, and the caller\'s bytes are left as they were', () => {
  const f = 'MR_small_8bit_jpeg_baseline.dcm';
  const bytes = readFileSync(path.join(DIR, f));
  assert.ok(bytes.indexOf(Buffer.from([0xff, 0xff, 0xd9, 0xfe, 0xff])) > 0, 'the fixture has the fill byte');
  const before = Buffer.from(bytes);
  decodeDicom(bytes, f);
  assert.ok(bytes.equals(before));
});

test('a small DICOM in a pooled Buffer (byteOffset > 0) is parsed from its own bytes', () => {
  const a = Buffer.from(readFileSync(path.join(DIR, 'MR_small_8bit_jpeg_baseline.dcm'))); // < 4 KiB: Node's shared pool
  const b = Buffer.from(readFileSync(path.join(DIR, 'MR_small_8bit_j2k_lossy.dcm')));
  assert.ok(a.length < 4096 && b.length < 4096 && b.byteOffset > 0, `pooled buffers: ${a.byteOffset}, ${b.byteOffset}`);
  const d = decodeDicom(b, 'j2k');
  assert.equal(d.transferSyntax, '1.2.840.10008.1.2.4.91');
  assert.ok(maxAbsDiff(d.stored, Array.from(pyd.i64('MR_small_8bit_j2k_lossy.dcm').data, Number)) <= 1);
});
