/**
 * Colour maps, the crop geometry, map upsampling, and the overlay PNG itself: its hottest patch
 * (read back from the PNG by undoing the blend) must be the reference rollout's hottest patch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { REFS, needRefs } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { preprocessFromTimm, preprocessFromHf } from '../../src/io/preprocess.js';
import { colormapLut, invertColor } from '../../src/explain/colormap.js';
import { cropBox, upsampleMap, renderOverlay, writePng, fmtValue, type Box } from '../../src/explain/overlay.js';
import { explainOne } from '../../src/explain/explain.js';

/** matplotlib's published endpoints and midpoint (hex) of viridis and inferno */
const ANCHORS: Record<'viridis' | 'inferno', [number, string][]> = {
  viridis: [[0, '440154'], [128, '21918c'], [255, 'fde725']],
  inferno: [[0, '000004'], [128, 'bc3754'], [255, 'fcffa4']],
};

test('colour map LUTs hit the published viridis / inferno anchors within 5/255 (the polynomial fit\'s own error)', () => {
  for (const name of ['viridis', 'inferno'] as const) {
    const lut = colormapLut(name);
    assert.equal(lut.length, 768);
    for (const [i, hex] of ANCHORS[name]) {
      const want = [0, 2, 4].map((k) => parseInt(hex.slice(k, k + 2), 16));
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(lut[3 * i + c]! - want[c]!) <= 5, `${name}[${i}] channel ${c}: ${lut[3 * i + c]} vs ${want[c]}`);
    }
    // perceptual maps get lighter monotonically: sum of channels rises (loosely) along the map
    for (let i = 16; i < 256; i += 16) {
      const s = (j: number) => lut[3 * j]! + lut[3 * j + 1]! + lut[3 * j + 2]!;
      assert.ok(s(i) > s(i - 16), `${name} not brightening at ${i}`);
    }
  }
});

function assertBox(got: Box, want: [number, number, number, number]) {
  const g = [got.x0, got.y0, got.x1, got.y1];
  g.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-9, `box ${g} vs ${want}`));
}

test('cropBox: where the model input lies in the original image', () => {
  const timm = preprocessFromTimm({ input_size: [3, 224, 224], crop_pct: 0.9 }, 224, 3);
  // 512x512: shorter side to floor(224 / 0.9) = 248, crop offset 12
  assertBox(cropBox(timm, 512, 512), [12 * 512 / 248, 12 * 512 / 248, 236 * 512 / 248, 236 * 512 / 248]);
  // 451x300: resized to 372x248, crop offsets left 74, top 12
  assertBox(cropBox(timm, 451, 300), [74 * 451 / 372, 12 * 300 / 248, 298 * 451 / 372, 236 * 300 / 248]);
  // HF exact resize without crop: the whole image
  assertBox(cropBox(preprocessFromHf({ size: { height: 64, width: 64 } }, 64, 3), 451, 300), [0, 0, 451, 300]);
  // HF shortest edge 256, crop 224 with floor offsets: 300x451 (w x h) -> 256x384, left 16, top 80
  const hf = preprocessFromHf({ size: { shortest_edge: 256 }, do_center_crop: true, crop_size: { height: 224, width: 224 } }, 224, 3);
  assertBox(cropBox(hf, 300, 451), [16 * 300 / 256, 80 * 451 / 384, 240 * 300 / 256, 304 * 451 / 384]);
  // timm squash: 100x50 -> 248x248, crop 12
  const sq = preprocessFromTimm({ input_size: [3, 224, 224], crop_pct: 0.9, crop_mode: 'squash' }, 224, 3);
  assertBox(cropBox(sq, 100, 50), [12 * 100 / 248, 12 * 50 / 248, 236 * 100 / 248, 236 * 50 / 248]);
});

test('upsampleMap: bilinear between patch centres, clamped at the edges, NaN outside the box', () => {
  // map value = col + 2 * row is linear, so bilinear interpolation reproduces it exactly
  const up = upsampleMap([0, 1, 2, 3], 2, 2, { x0: 0, y0: 0, x1: 4, y1: 4 }, 4, 4);
  const u = [0, 0.25, 0.75, 1];
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) assert.ok(Math.abs(up[y * 4 + x]! - (u[x]! + 2 * u[y]!)) < 1e-6, `(${x}, ${y}) = ${up[y * 4 + x]}`);
  const part = upsampleMap([5], 1, 1, { x0: 1, y0: 0, x1: 3, y1: 4 }, 4, 2);
  assert.deepEqual([...part].map((v) => (Number.isNaN(v) ? 'nan' : v)), ['nan', 5, 5, 'nan', 'nan', 5, 5, 'nan']);
});

test('fmtValue labels', () => {
  assert.equal(fmtValue(0), '0');
  assert.equal(fmtValue(0.024571), '0.0246');
  assert.equal(fmtValue(1), '1');
  assert.equal(fmtValue(0.00001234), '1.23e-5');
});

async function rgb(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

test('the hottest patch of the rollout overlay PNG is the reference rollout\'s hottest patch', async (t) => {
  if (!needRefs(t)) return;
  const ref = readSafetensors(path.join(REFS, 'timm_vit_tiny_ref.safetensors')).f32('rollout');
  const N = 197, G = 14;
  const loaded = loadModel(path.join(REFS, 'timm_vit_tiny'));
  const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-overlay-'));
  const lut = colormapLut('viridis');
  // boxes from the preprocessing arithmetic (see the cropBox test): [x0, y0, x1, y1]
  const cases: [string, number, [number, number, number, number]][] = [
    ['astronaut.png', 0, [12 * 512 / 248, 12 * 512 / 248, 236 * 512 / 248, 236 * 512 / 248]],
    ['chelsea.png', 1, [74 * 451 / 372, 12 * 300 / 248, 298 * 451 / 372, 236 * 300 / 248]],
  ];
  for (const [name, b, box] of cases) {
    const src = path.join(REFS, 'images', name);
    const row = ref.data.subarray(b * N * N + 1, b * N * N + N);
    let want = 0;
    for (let j = 1; j < row.length; j++) if (row[j]! > row[want]!) want = j;
    const e = await explainOne(loaded, src);
    const ov = renderOverlay(e.original, e.rollout, G, G, e.box, { alpha: 0.5 });
    const file = path.join(dir, `${name}.rollout.png`);
    await writePng(file, ov.image);
    const png = await rgb(file);
    const orig = await rgb(src);
    assert.equal(png.width, orig.width);
    assert.equal(png.height, orig.height);
    const bw = (box[2] - box[0]) / G, bh = (box[3] - box[1]) / G;
    let best = -1, bestV = -1;
    for (let r = 0; r < G; r++) {
      for (let c = 0; c < G; c++) {
        const x = Math.floor(box[0] + (c + 0.5) * bw), y = Math.floor(box[1] + (r + 0.5) * bh);
        const L = ov.legend;
        if (L && x >= L.x && x < L.x + L.w && y >= L.y && y < L.y + L.h) continue;
        const o = (y * png.width + x) * 3;
        // undo the blend: png = 0.5 * image + 0.5 * heat
        const heat = [0, 1, 2].map((k) => Math.max(0, Math.min(255, 2 * png.data[o + k]! - orig.data[o + k]!)));
        const v = invertColor(lut, heat[0]!, heat[1]!, heat[2]!);
        if (v > bestV) { bestV = v; best = r * G + c; }
      }
    }
    assert.equal(best, want, `${name}: hottest overlay patch ${Math.floor(best / G)},${best % G} vs reference ${Math.floor(want / G)},${want % G}`);
    assert.ok(bestV >= 240, `${name}: hottest patch colour maps back to ${bestV}/255`);
  }
});
