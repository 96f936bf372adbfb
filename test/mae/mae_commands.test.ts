/**
 * `vitkit run` and `vitkit reconstruct` on the MAE reference (test/fixtures/mae, facebookresearch/mae):
 * run's outputs from pixel_values + noise equal the reference (mask / ids_restore exact, 1e-4,
 * loss 1e-5); reconstruct's PNG holds the four panels (the pasted panel is the original on visible
 * patches and the reconstruction on masked ones); bad input exits 1 (2 for a malformed command line).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, cliInProcess, maxAbsDiff, tmp } from '../helpers.js';
import { withoutDeviceLine } from '../helpers.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';

const DIR = path.join(FIXTURES, 'mae');
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
const IMG = path.join(FIXTURES, 'preprocess', 'timm_astronaut.png');

test('vitkit run --outputs loss,pred,mask,ids_restore,latent,reconstruction,pasted = the reference', async (t) => {
  const input = path.join(tmp(), 'in.safetensors'), out = path.join(tmp(), 'out.safetensors');
  writeSafetensors(input, { pixel_values: ref.f32('pixel_values'), noise: ref.f32('noise') });
  const r = await cliInProcess(['run', '--model', DIR, '--input', input, '--output', out, '--outputs', 'loss,pred,mask,ids_restore,latent,reconstruction,pasted']);
  assert.equal(r.code, 0, r.err);
  const o = readSafetensors(out);
  assert.deepEqual([...o.f32('mask').data], [...ref.f32('mask').data]);
  assert.deepEqual([...o.i64('ids_restore').data], [...ref.i64('ids_restore').data]);
  const errs = ['pred', 'latent', 'reconstruction', 'pasted'].map((k) => {
    assert.deepEqual(o.f32(k).shape, ref.f32(k).shape, k);
    const e = maxAbsDiff(o.f32(k).data, ref.f32(k).data);
    assert.ok(e <= 1e-4, `${k}: ${e}`);
    return `${k} ${e.toExponential(2)}`;
  });
  assert.ok(Math.abs(o.f32('loss').data[0]! - ref.f32('loss').data[0]!) <= 1e-5);
  t.diagnostic(errs.join(', '));
});

test('vitkit reconstruct writes original | masked | reconstruction | pasted and the loss', async () => {
  const out = path.join(tmp(), 'rec');
  const r = await cliInProcess(['reconstruct', '--model', DIR, '--seed', '1', '--out', out, '--json', IMG]);
  assert.equal(r.code, 0, r.err);
  const line = JSON.parse(r.out.trim()) as { loss: number; masked_patches: number; png: string };
  assert.equal(line.masked_patches, 12);
  assert.ok(line.loss > 0 && Number.isFinite(line.loss));
  const { data, info } = await sharp(readFileSync(line.png)).raw().toBuffer({ resolveWithObject: true });
  const k = 4, P = 32 * k, gap = 4; // 32 px panels scaled x4 to 128
  assert.equal(info.width, 4 * P + 3 * gap);
  assert.equal(info.height, P);
  const px = (panel: number, y: number, x: number) => [0, 1, 2].map((c) => data[(y * info.width + panel * (P + gap) + x) * info.channels + c]!);
  let visible = 0, masked = 0;
  for (let gy = 0; gy < 4; gy++) for (let gx = 0; gx < 4; gx++) {
    const y = gy * 8 * k + 5, x = gx * 8 * k + 7;
    const isMasked = px(1, y, x).every((v) => v === 128);
    if (isMasked) { masked++; assert.deepEqual(px(3, y, x), px(2, y, x)); } else { visible++; assert.deepEqual(px(3, y, x), px(0, y, x)); assert.deepEqual(px(1, y, x), px(0, y, x)); }
  }
  assert.equal(masked, 12);
  assert.equal(visible, 4);
  // the same seed gives the same masking and loss; another mask ratio masks another count
  const r2 = await cliInProcess(['reconstruct', '--model', DIR, '--seed', '1', '--out', out, '--json', '--overwrite', IMG]);
  assert.equal((JSON.parse(r2.out.trim()) as { loss: number }).loss, line.loss);
  const r3 = await cliInProcess(['reconstruct', '--model', DIR, '--mask-ratio', '0.5', '--out', out, '--json', '--overwrite', IMG]);
  assert.equal((JSON.parse(r3.out.trim()) as { masked_patches: number }).masked_patches, 8);
  const r4 = await cliInProcess(['reconstruct', '--model', DIR, '--out', out, IMG]);
  assert.equal(r4.code, 1);
  assert.match(r4.err, /already exists; pass --overwrite/);
});

test('bad input: mask ratio outside [0, 1), encoder-only checkpoint, image size not divisible by the patch', async () => {
  const r = await cliInProcess(['reconstruct', '--model', DIR, '--mask-ratio', '1', '--out', tmp(), IMG]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^error: Expected a mask ratio in \[0, 1\) for --mask-ratio but received 1$/);
  const src = readSafetensors(path.join(DIR, 'model.safetensors'));
  const enc: Record<string, StTensorIn> = {};
  for (const k of src.keys()) if (!k.startsWith('decoder') && k !== 'mask_token') enc[k] = src.f32(k);
  const dir = tmp();
  writeSafetensors(path.join(dir, 'model.safetensors'), enc);
  const cfg = readFileSync(path.join(DIR, 'mae_config.json'));
  (await import('node:fs')).writeFileSync(path.join(dir, 'mae_config.json'), cfg);
  const r2 = await cliInProcess(['reconstruct', '--model', dir, '--out', tmp(), IMG]);
  assert.equal(r2.code, 1);
  assert.match(r2.err, /^error: .*model.safetensors is an encoder-only checkpoint: it has no decoder weights/);
  assert.equal(withoutDeviceLine(r2.err).split('\n').length, 1);
  const input = path.join(tmp(), 'odd.safetensors');
  writeSafetensors(input, { pixel_values: { shape: [1, 3, 30, 30], data: new Float32Array(2700) } });
  const r3 = await cliInProcess(['run', '--model', DIR, '--input', input, '--output', path.join(tmp(), 'o.safetensors'), '--outputs', 'loss']);
  assert.equal(r3.code, 1);
  assert.match(withoutDeviceLine(r3.err), /^error: Image size 30x30 \(pixel_values \(1, 3, 30, 30\)\) is not divisible by the patch size 8$/);
  const r4 = await cliInProcess(['run', '--model', DIR, '--input', input, '--output', path.join(tmp(), 'o.safetensors'), '--outputs', 'logits']);
  assert.equal(r4.code, 1);
  assert.match(r4.err, /logits is not an MAE output/);
});
