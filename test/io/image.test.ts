import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { VitkitError } from '../../src/errors.js';
import { loadImage, convertPixels, type RawImage } from '../../src/io/image.js';
import { resizePil, resizeTorchU8, FILTERS, type Filter } from '../../src/io/resample.js';
import { interpolate } from '../../src/nn/interpolate.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'vitkit-image-'));

function img(w: number, h: number, C: 1 | 3, f: (x: number, y: number, c: number) => number): RawImage {
  const data = new Uint8Array(w * h * C);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < C; c++) data[(y * w + x) * C + c] = f(x, y, c);
  return { data, width: w, height: h, channels: C };
}

// ---------------------------------------------------------------------------------------------
// resizePil

test('resizePil: a constant image stays constant for every filter, up and down', () => {
  const src = img(37, 23, 3, (_x, _y, c) => [17, 128, 250][c]);
  for (const f of FILTERS) {
    for (const [w, h] of [
      [11, 7],
      [80, 50],
      [37, 5],
      [3, 23],
    ]) {
      const out = resizePil(src, w, h, f);
      assert.equal(out.width, w);
      assert.equal(out.height, h);
      for (let i = 0; i < out.data.length; i++) assert.equal(out.data[i], [17, 128, 250][i % 3], `${f} ${w}x${h} at ${i}`);
    }
  }
});

test('resizePil: box filter 2x down is the pair mean rounded half up', () => {
  const vals = [0, 1, 10, 20, 255, 254, 7, 8, 100, 100];
  const src: RawImage = { data: Uint8Array.from(vals), width: vals.length, height: 1, channels: 1 };
  const out = resizePil(src, vals.length / 2, 1, 'box');
  const want = [];
  for (let i = 0; i < vals.length; i += 2) want.push(Math.floor((vals[i] + vals[i + 1] + 1) / 2));
  assert.deepEqual([...out.data], want);
  // the same along the vertical axis
  const col: RawImage = { data: Uint8Array.from(vals), width: 1, height: vals.length, channels: 1 };
  assert.deepEqual([...resizePil(col, 1, vals.length / 2, 'box').data], want);
});

test('resizePil: bilinear 2x down uses the stretched triangle (weights 3/7, 3/7, 1/7 at the left edge)', () => {
  // support 2 around centre 2i+1: taps at distance 0.5, 0.5, 1.5 -> 0.75, 0.75, 0.25 (interior adds another 0.25)
  const vals = [0, 70, 140, 210, 28, 56];
  const src: RawImage = { data: Uint8Array.from(vals), width: 6, height: 1, channels: 1 };
  const out = resizePil(src, 3, 1, 'bilinear');
  const r0 = (0 * 0.75 + 70 * 0.75 + 140 * 0.25) / 1.75;
  const r1 = (70 * 0.25 + 140 * 0.75 + 210 * 0.75 + 28 * 0.25) / 2;
  const r2 = (210 * 0.25 + 28 * 0.75 + 56 * 0.75) / 1.75;
  assert.deepEqual([...out.data], [r0, r1, r2].map((v) => Math.floor(v + 0.5)));
});

test('resizePil: nearest duplicates when enlarging and takes every other pixel (odd ones) when halving', () => {
  const src = img(4, 3, 1, (x, y) => 10 * y + x);
  const up = resizePil(src, 8, 6, 'nearest');
  for (let y = 0; y < 6; y++) for (let x = 0; x < 8; x++) assert.equal(up.data[y * 8 + x], 10 * (y >> 1) + (x >> 1));
  const big = img(8, 6, 1, (x, y) => 10 * y + x);
  const down = resizePil(big, 4, 3, 'nearest');
  for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) assert.equal(down.data[y * 4 + x], 10 * (2 * y + 1) + 2 * x + 1);
});

test('resizePil: channels are independent, identity size copies, output clipped to 0..255', () => {
  const rgb = img(19, 13, 3, (x, y, c) => (x * 37 + y * 11 + c * 101) % 256);
  for (const f of ['bicubic', 'lanczos', 'hamming'] as Filter[]) {
    const out = resizePil(rgb, 7, 9, f);
    for (let c = 0; c < 3; c++) {
      const plane = img(19, 13, 1, (x, y) => rgb.data[(y * 19 + x) * 3 + c]);
      const po = resizePil(plane, 7, 9, f);
      for (let i = 0; i < 63; i++) assert.equal(out.data[i * 3 + c], po.data[i]);
    }
  }
  const same = resizePil(rgb, 19, 13, 'bicubic');
  assert.deepEqual(same.data, rgb.data);
  assert.notEqual(same.data, rgb.data);
  // a hard edge overshoots with bicubic: values must stay clipped, and the edge must ring to 0 / 255
  const edge = img(8, 1, 1, (x) => (x < 4 ? 0 : 255));
  const up = resizePil(edge, 32, 1, 'bicubic');
  assert.ok(up.data.includes(0) && up.data.includes(255));
});

test('resizePil: a box region selects the source area', () => {
  const src = img(10, 10, 1, (x, y) => x * 10 + y);
  const out = resizePil(src, 4, 4, 'bilinear', [2, 3, 6, 7]);
  // integer box of the output size is a plain crop
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) assert.equal(out.data[y * 4 + x], (x + 2) * 10 + y + 3);
});

test('resizePil / resizeTorchU8: errors name the argument', () => {
  const src = img(4, 4, 1, () => 0);
  assert.throws(() => resizePil(src, 0, 4, 'bilinear'), (e: Error) => e instanceof VitkitError && /output width and height/.test(e.message));
  assert.throws(() => resizePil(src, 2, 2, 'cubic' as Filter), /resize filter but received "cubic"/);
  assert.throws(() => resizePil({ ...src, data: new Uint8Array(3) }, 2, 2, 'box'), /16 bytes/);
  assert.throws(() => resizeTorchU8(src, 2, 2, 'box' as 'bilinear'), /torch resize filter/);
});

test('resizeTorchU8 agrees with resizePil within one level (only the fixed-point precision differs)', () => {
  const src = img(61, 47, 3, (x, y, c) => (x * 13 + y * 7 + c * 50 + ((x * y) % 17)) % 256);
  for (const f of ['bilinear', 'bicubic'] as const) {
    const a = resizePil(src, 20, 30, f);
    const b = resizeTorchU8(src, 20, 30, f);
    for (let i = 0; i < a.data.length; i++) assert.ok(Math.abs(a.data[i] - b.data[i]) <= 1, `${f} ${i}`);
  }
});

// ---------------------------------------------------------------------------------------------
// interpolate

test('interpolate: constants stay constant in every mode', () => {
  const inp = new Float32Array(2 * 9 * 7);
  inp.fill(0.75, 0, 63);
  inp.fill(-2, 63);
  for (const mode of ['bilinear', 'bicubic'] as const) {
    for (const aa of [true, false]) {
      for (const [oh, ow] of [
        [4, 3],
        [20, 15],
        [9, 2],
      ]) {
        const out = interpolate(inp, 2, 9, 7, oh, ow, mode, aa);
        assert.equal(out.length, 2 * oh * ow);
        for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i] - (i < oh * ow ? 0.75 : -2)) < 1e-5, `${mode} ${aa} ${i}`);
      }
    }
  }
});

test('interpolate: bilinear 2x down, plain = pair means, antialiased = stretched triangle', () => {
  const row = Float32Array.from([0, 10, 20, 30, 40, 50]);
  assert.deepEqual([...interpolate(row, 1, 1, 6, 1, 3, 'bilinear', false)], [5, 25, 45]);
  const aa = interpolate(row, 1, 1, 6, 1, 3, 'bilinear', true);
  const want = [(0 * 0.75 + 10 * 0.75 + 20 * 0.25) / 1.75, (10 * 0.25 + 20 * 0.75 + 30 * 0.75 + 40 * 0.25) / 2, (30 * 0.25 + 40 * 0.75 + 50 * 0.75) / 1.75];
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(aa[i] - want[i]) < 1e-5);
  // vertical axis equals horizontal axis
  const col = interpolate(row, 1, 6, 1, 3, 1, 'bilinear', true);
  assert.deepEqual([...col], [...aa]);
});

test('interpolate: antialiased bicubic (Keys a = -0.5) reproduces a linear ramp away from the borders', () => {
  const W = 12;
  const ramp = Float32Array.from({ length: W }, (_, i) => 3 * i - 5);
  const out = interpolate(ramp, 1, 1, W, 1, 3 * W, 'bicubic', true);
  for (let o = 6; o < 3 * W - 6; o++) {
    const src = (o + 0.5) / 3 - 0.5;
    assert.ok(Math.abs(out[o] - (3 * src - 5)) < 1e-4, `o=${o}: ${out[o]} vs ${3 * src - 5}`);
  }
});

test('interpolate: plain bicubic uses the A = -0.75 cubic convolution with clamped indices', () => {
  const A = -0.75;
  const k = (x: number) => {
    x = Math.abs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
  };
  const vals = [3, -1, 4, 1, -5, 9, 2, 6];
  const inp = Float32Array.from(vals);
  const out = interpolate(inp, 1, 1, 8, 1, 20, 'bicubic', false);
  for (let o = 0; o < 20; o++) {
    const src = (o + 0.5) * (8 / 20) - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    let want = 0;
    for (let j = -1; j <= 2; j++) want += vals[Math.min(Math.max(i0 + j, 0), 7)] * k(j - t);
    assert.ok(Math.abs(out[o] - want) < 1e-5, `o=${o}: ${out[o]} vs ${want}`);
  }
});

test('interpolate: identity size returns a copy; bad shapes are rejected', () => {
  const x = Float32Array.from([1, 2, 3, 4]);
  const y = interpolate(x, 1, 2, 2, 2, 2, 'bicubic', true);
  assert.deepEqual([...y], [1, 2, 3, 4]);
  assert.notEqual(y, x);
  assert.throws(() => interpolate(x, 1, 3, 2, 2, 2, 'bicubic', true), /6 values \(1x3x2\) for the interpolate input but received 4/);
  assert.throws(() => interpolate(x, 1, 2, 2, 0, 2, 'bicubic', true), /interpolate outH/);
});

// ---------------------------------------------------------------------------------------------
// decoding

test('loadImage: grayscale PNG -> replicated RGB or single channel', async () => {
  const g = img(5, 3, 1, (x, y) => x * 40 + y);
  const png = await sharp(Buffer.from(g.data), { raw: { width: 5, height: 3, channels: 1 } }).png().toBuffer();
  const file = path.join(tmp, 'gray.png');
  writeFileSync(file, png);
  const rgb = await loadImage(file, 3);
  assert.equal(rgb.channels, 3);
  assert.equal(rgb.width, 5);
  assert.equal(rgb.height, 3);
  for (let i = 0; i < 15; i++) for (let c = 0; c < 3; c++) assert.equal(rgb.data[i * 3 + c], g.data[i]);
  const l = await loadImage(new Uint8Array(png), 1);
  assert.equal(l.channels, 1);
  assert.deepEqual(l.data, g.data);
});

test('loadImage: RGBA PNG drops alpha without compositing; L uses PIL fixed-point luma', async () => {
  const px = [
    [10, 200, 30, 0],
    [255, 0, 0, 128],
    [0, 0, 255, 255],
    [123, 45, 67, 1],
  ];
  const data = Uint8Array.from(px.flat());
  const png = await sharp(Buffer.from(data), { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
  const rgb = await loadImage(new Uint8Array(png), 3, 'rgba.png');
  assert.deepEqual([...rgb.data], px.flatMap((p) => p.slice(0, 3)));
  const l = await loadImage(new Uint8Array(png), 1);
  const pilL = (r: number, g: number, b: number) => Math.floor((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536);
  assert.deepEqual([...l.data], px.map((p) => pilL(p[0], p[1], p[2])));
  // PIL's value for (10, 200, 30) is 124 (0.299 R + 0.587 G + 0.114 B = 123.79)
  assert.equal(l.data[0], 124);
  // LA
  const la = await sharp(Buffer.from([50, 0, 60, 255]), { raw: { width: 2, height: 1, channels: 2 } }).png().toBuffer();
  const laRgb = await loadImage(new Uint8Array(la), 3);
  assert.deepEqual([...laRgb.data], [50, 50, 50, 60, 60, 60]);
  assert.deepEqual([...(await loadImage(new Uint8Array(la), 1)).data], [50, 60]);
});

test('loadImage: palette PNG and GIF (first frame) decode to RGB', async () => {
  const src = img(8, 8, 3, (x, y, c) => (x < 4 ? [255, 0, 0] : y < 4 ? [0, 0, 255] : [0, 255, 0])[c]);
  const pal = await sharp(Buffer.from(src.data), { raw: { width: 8, height: 8, channels: 3 } }).png({ palette: true }).toBuffer();
  assert.deepEqual((await loadImage(new Uint8Array(pal), 3)).data, src.data);
  const gif = await sharp(Buffer.from(src.data), { raw: { width: 8, height: 8, channels: 3 } }).gif().toBuffer();
  const g = await loadImage(new Uint8Array(gif), 3);
  assert.equal(g.width, 8);
  assert.equal(g.channels, 3);
  assert.deepEqual([...g.data.subarray(0, 3)], [255, 0, 0]);
});

test('loadImage: EXIF orientation 6 is applied (rotated 90 degrees clockwise)', async () => {
  // 32 wide, 16 high: left half red, right half blue
  const src = img(32, 16, 3, (x, _y, c) => (x < 16 ? [255, 0, 0] : [0, 0, 255])[c]);
  const jpg = await sharp(Buffer.from(src.data), { raw: { width: 32, height: 16, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const out = await loadImage(new Uint8Array(jpg), 3, 'rotated.jpg');
  assert.equal(out.width, 16);
  assert.equal(out.height, 32);
  const at = (x: number, y: number) => [...out.data.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3)];
  // rotating clockwise puts the left (red) half on top
  const top = at(8, 4);
  const bottom = at(8, 28);
  assert.ok(top[0] > 200 && top[2] < 60, `top ${top}`);
  assert.ok(bottom[2] > 200 && bottom[0] < 60, `bottom ${bottom}`);
});

test('loadImage: missing, non-image, empty and directory inputs raise VitkitError naming the file', async () => {
  const missing = path.join(tmp, 'nope.png');
  await assert.rejects(loadImage(missing, 3), (e: Error) => e instanceof VitkitError && e.message.startsWith(`Image file ${missing} does not exist`));
  const text = path.join(tmp, 'notes.txt');
  writeFileSync(text, 'this is not an image\n');
  await assert.rejects(loadImage(text, 3), (e: Error) => {
    assert.ok(e instanceof VitkitError);
    assert.match(e.message, /^Expected a decodable image \(JPEG, PNG, WebP, GIF, TIFF, AVIF\) for .*notes\.txt but decoding failed: /);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  const empty = path.join(tmp, 'empty.jpg');
  writeFileSync(empty, '');
  await assert.rejects(loadImage(empty, 3), /Expected an image for .*empty\.jpg but received an empty file/);
  const dir = path.join(tmp, 'adir.png');
  mkdirSync(dir);
  await assert.rejects(loadImage(dir, 3), /Expected a regular file for image file .*adir\.png but received a directory/);
  await assert.rejects(loadImage(new Uint8Array([1, 2, 3]), 3, 'upload.bin'), /for upload\.bin but decoding failed/);
  await assert.rejects(loadImage(text, 2 as 3), /Expected 1 or 3 for the channel count of image/);
});

test('convertPixels: RGB <-> L rules', () => {
  const rgb = Uint8Array.from([255, 255, 255, 0, 0, 0, 255, 0, 0]);
  assert.deepEqual([...convertPixels(rgb, 3, 1, 3, 1).data], [255, 0, 76]);
  assert.deepEqual([...convertPixels(Uint8Array.from([9, 8]), 2, 1, 1, 3).data], [9, 9, 9, 8, 8, 8]);
});
