import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REFS as REFS_DIR, needRefs } from '../helpers.js';
import sharp from 'sharp';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadImage } from '../../src/io/image.js';
import {
  preprocessFromTimm,
  preprocessFromHf,
  preprocessImage,
  preprocessBatch,
  preprocessForDisplay,
  pyRound,
  shorterSideSize,
  type PreprocessConfig,
} from '../../src/io/preprocess.js';

const ROOT = new URL('../../../', import.meta.url);
const REFS = REFS_DIR + '/';
const FIX = fileURLToPath(new URL('test/fixtures/preprocess/', ROOT));

function stats(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  let s = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    s += d;
    if (d > m) m = d;
  }
  return { mean: s / a.length, max: m };
}

const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// config resolution

test('preprocessFromTimm: pretrained_cfg fields and timm defaults', () => {
  const c = preprocessFromTimm(
    { input_size: [3, 224, 224], interpolation: 'bicubic', crop_pct: 0.9, crop_mode: 'center', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    224,
    3,
  );
  assert.equal(c.kind, 'timm');
  assert.equal(c.cropPct, 0.9);
  assert.equal(c.resizeHeight, 248); // floor(224 / 0.9)
  assert.deepEqual(c.mean, [0.5, 0.5, 0.5]);
  const d = preprocessFromTimm(undefined, 384, 3);
  assert.deepEqual(d.mean, [0.485, 0.456, 0.406]);
  assert.deepEqual(d.std, [0.229, 0.224, 0.225]);
  assert.equal(d.interpolation, 'bicubic');
  assert.equal(d.cropPct, 0.875);
  assert.equal(d.cropMode, 'center');
  assert.equal(d.height, 384);
  assert.equal(d.resizeHeight, 438);
  const g = preprocessFromTimm({}, 28, 1);
  assert.equal(g.channels, 1);
  assert.equal(g.mean.length, 1);
  assert.ok(Math.abs(g.mean[0] - (0.485 + 0.456 + 0.406) / 3) < 1e-12);
  assert.throws(() => preprocessFromTimm({ crop_mode: 'zoom' }, 224, 3), /Expected center, squash or border for pretrained_cfg\.crop_mode but received "zoom"/);
  assert.throws(() => preprocessFromTimm({ interpolation: 'cubic' }, 224, 3), /pretrained_cfg\.interpolation but received "cubic"/);
  assert.throws(() => preprocessFromTimm({}, 224, 4), /Expected 1 or 3 input channels/);
});

test('preprocessFromHf: ViTImageProcessor fields, defaults and backend', () => {
  const c = preprocessFromHf(
    { do_normalize: true, do_rescale: true, do_resize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2, rescale_factor: 1 / 255, size: { height: 64, width: 64 }, image_processor_type: 'ViTImageProcessor' },
    64,
    3,
  );
  assert.equal(c.kind, 'hf');
  assert.equal(c.interpolation, 'bilinear');
  assert.equal(c.height, 64);
  assert.equal(c.resizeWidth, 64);
  assert.equal(c.doCenterCrop, false);
  assert.equal(c.hfBackend, 'torchvision');
  assert.equal(preprocessFromHf({ image_processor_type: 'ViTImageProcessorPil' }, 224, 3).hfBackend, 'pil');
  const d = preprocessFromHf(undefined, 96, 3);
  assert.equal(d.height, 96);
  assert.deepEqual(d.mean, [0.5, 0.5, 0.5]);
  assert.equal(d.rescaleFactor, 1 / 255);
  const e = preprocessFromHf({ size: { shortest_edge: 256 }, do_center_crop: true, crop_size: { height: 224, width: 224 }, resample: 3 }, 224, 3);
  assert.equal(e.resizeMode, 'shortest_edge');
  assert.equal(e.interpolation, 'bicubic');
  assert.equal(e.height, 224);
  assert.throws(() => preprocessFromHf({ size: { shortest_edge: 256 } }, 224, 3), /do_center_crop/);
  assert.throws(() => preprocessFromHf({ resample: 9 }, 224, 3), /preprocessor_config\.json resample but received 9/);
  assert.throws(() => preprocessFromHf({ image_mean: [0.1, 0.2] }, 224, 3), /Expected 1 or 3 values for preprocessor_config\.json image_mean/);
});

test('geometry helpers: Python rounding and torchvision shorter-side sizes', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 3].map(pyRound), [0, 2, 2, -0, 2, 3, 3]);
  assert.deepEqual(shorterSideSize(300, 451, 248), [248, 372]);
  assert.deepEqual(shorterSideSize(512, 512, 248), [248, 248]);
  assert.deepEqual(shorterSideSize(600, 400, 256), [384, 256]);
});

// ---------------------------------------------------------------------------------------------
// parity with the PyTorch references

test('timm eval transform parity on astronaut + chelsea (timm_vit_tiny_ref pixel_values)', async (t) => {
  if (!needRefs(t)) return;
  const cfg = preprocessFromTimm(json(REFS + 'timm_vit_tiny/config.json')['pretrained_cfg'] as Record<string, unknown>, 224, 3);
  const px = await preprocessBatch([REFS + 'images/astronaut.png', REFS + 'images/chelsea.png'], cfg);
  const ref = readSafetensors(REFS + 'timm_vit_tiny_ref.safetensors').f32('pixel_values');
  assert.deepEqual(ref.shape, [2, 3, 224, 224]);
  const s = stats(px, ref.data);
  t.diagnostic(`timm pixel_values: mean abs diff ${s.mean.toExponential(3)}, max ${s.max.toExponential(3)}`);
  assert.ok(s.mean <= 0.01 && s.max <= 0.1, JSON.stringify(s));
  assert.ok(s.max <= 1e-6, `expected exact PIL parity, got ${JSON.stringify(s)}`);
});

test('HF ViTImageProcessor parity on astronaut + chelsea (hf_vit_small/ref pixel_values)', async (t) => {
  if (!needRefs(t)) return;
  const cfg = preprocessFromHf(json(REFS + 'hf_vit_small/preprocessor_config.json'), 64, 3);
  const ref = readSafetensors(REFS + 'hf_vit_small/ref.safetensors').f32('pixel_values');
  assert.deepEqual(ref.shape, [2, 3, 64, 64]);
  const px = await preprocessBatch([REFS + 'images/astronaut.png', REFS + 'images/chelsea.png'], cfg);
  const s = stats(px, ref.data);
  t.diagnostic(`hf pixel_values (torchvision backend): mean abs diff ${s.mean.toExponential(3)}, max ${s.max.toExponential(3)}`);
  assert.ok(s.max <= 1e-6, JSON.stringify(s));
  // the PIL backend differs by at most one 8-bit level in a few pixels
  const pil = await preprocessBatch([REFS + 'images/astronaut.png', REFS + 'images/chelsea.png'], { ...cfg, hfBackend: 'pil' });
  const sp = stats(pil, ref.data);
  t.diagnostic(`hf pixel_values (PIL backend): mean abs diff ${sp.mean.toExponential(3)}, max ${sp.max.toExponential(3)}`);
  assert.ok(sp.mean <= 0.01 && sp.max <= 0.1, JSON.stringify(sp));
});

interface FixtureCase {
  name: string;
  kind: 'timm' | 'hf';
  batchIndex: number;
  width: number;
  height: number;
  cropX: number;
  cropY: number;
  window: [number, number, number, number];
}

test('parity from the bundled fixtures (reference windows + the source crops they depend on)', async (t) => {
  const meta = json(FIX + 'cases.json') as unknown as { timm: Record<string, unknown>; hf: Record<string, unknown>; cases: FixtureCase[] };
  const refs = readSafetensors(FIX + 'ref_windows.safetensors');
  const cfgs: Record<string, PreprocessConfig> = {
    timm: preprocessFromTimm(meta.timm, 224, 3),
    hf: preprocessFromHf(meta.hf, 64, 3),
  };
  for (const c of meta.cases) {
    const crop = await loadImage(FIX + `${c.name}.png`, 3);
    // paste the crop into a blank image of the original size; only the window is compared
    const full = await sharp({ create: { width: c.width, height: c.height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .composite([{ input: Buffer.from(crop.data), raw: { width: crop.width, height: crop.height, channels: 3 }, left: c.cropX, top: c.cropY }])
      .png()
      .toBuffer();
    const cfg = cfgs[c.kind];
    const px = await preprocessImage(new Uint8Array(full), cfg, c.name);
    const [y0, x0, wh, ww] = c.window;
    const win = new Float32Array(3 * wh * ww);
    for (let ch = 0; ch < 3; ch++)
      for (let y = 0; y < wh; y++) for (let x = 0; x < ww; x++) win[(ch * wh + y) * ww + x] = px[(ch * cfg.height + y0 + y) * cfg.width + x0 + x];
    const ref = refs.f32(c.name);
    const s = stats(win, ref.data);
    t.diagnostic(`${c.name}: ${wh}x${ww} window, mean ${s.mean.toExponential(2)}, max ${s.max.toExponential(2)}`);
    assert.ok(s.max <= 1e-6, `${c.name} ${JSON.stringify(s)}`);
  }
});

// ---------------------------------------------------------------------------------------------
// modes, display, batch

async function synthetic(w: number, h: number): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const x = i % w;
    const y = Math.floor(i / w);
    data[3 * i] = (x * 255) / (w - 1);
    data[3 * i + 1] = (y * 255) / (h - 1);
    data[3 * i + 2] = (x + y) % 256;
  }
  return new Uint8Array(await sharp(Buffer.from(data), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
}

test('timm crop modes: output shape, border fill and squash geometry', async () => {
  const png = await synthetic(120, 60);
  const base = preprocessFromTimm({ crop_pct: 1.0 }, 32, 3);
  for (const mode of ['center', 'squash', 'border'] as const) {
    const px = await preprocessImage(png, { ...base, cropMode: mode });
    assert.equal(px.length, 3 * 32 * 32);
  }
  // border: the 2:1 image is scaled to 32x16 and padded with round(255 * mean) above and below
  const disp = await preprocessForDisplay(png, { ...base, cropMode: 'border' });
  assert.equal(disp.width, 32);
  assert.deepEqual([...disp.data.subarray(0, 3)], [124, 116, 104]);
  assert.deepEqual([...disp.data.subarray((31 * 32 + 5) * 3, (31 * 32 + 5) * 3 + 3)], [124, 116, 104]);
  assert.notDeepEqual([...disp.data.subarray((16 * 32 + 16) * 3, (16 * 32 + 16) * 3 + 3)], [124, 116, 104]);
  // squash maps the right edge to the right edge (red channel = x ramp ends near 255)
  const sq = await preprocessForDisplay(png, { ...base, cropMode: 'squash' });
  assert.ok(sq.data[(16 * 32 + 31) * 3] > 240);
  const ce = await preprocessForDisplay(png, { ...base, cropMode: 'center' });
  assert.ok(ce.data[(16 * 32 + 31) * 3] < 200); // centre crop loses the sides
});

test('preprocessForDisplay matches the normalized values; 1-channel configs give gray RGB', async () => {
  const png = await synthetic(90, 70);
  const cfg = preprocessFromTimm({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 48, 3);
  const px = await preprocessImage(png, cfg);
  const disp = await preprocessForDisplay(png, cfg);
  assert.equal(disp.channels, 3);
  const n = 48 * 48;
  for (let i = 0; i < n; i += 97) for (let c = 0; c < 3; c++) assert.ok(Math.abs(px[c * n + i] - (disp.data[i * 3 + c] / 255 - 0.5) / 0.5) < 1e-6);
  const g = preprocessFromTimm({}, 48, 1);
  const gd = await preprocessForDisplay(png, g);
  assert.equal(gd.channels, 3);
  assert.equal(gd.data[0], gd.data[1]);
  const gp = await preprocessImage(png, g);
  assert.equal(gp.length, n);
});

test('preprocessBatch stacks images and reports a missing file by name', async () => {
  const cfg = preprocessFromHf({ size: { height: 16, width: 16 } }, 16, 3);
  const a = await synthetic(40, 30);
  const one = await preprocessImage(a, cfg);
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const dir = mkdtempSync((await import('node:os')).tmpdir() + '/vitkit-pp-');
  writeFileSync(dir + '/a.png', a);
  const b = await preprocessBatch([dir + '/a.png', dir + '/a.png'], cfg);
  assert.equal(b.length, 2 * one.length);
  assert.deepEqual(b.subarray(one.length), one);
  await assert.rejects(preprocessBatch([dir + '/a.png', dir + '/missing.jpg'], cfg), /Image file .*missing\.jpg does not exist/);
});

