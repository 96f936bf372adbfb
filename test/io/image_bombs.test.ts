/**
 * Image bombs inside the pixel cap: a PNG header is enough to ask for 10,000,000 x 10 pixels (100 M,
 * at the cap) whose resize to the model's input would need a row of 2 x 10^8 pixels; such images are
 * refused in one line from the header, before any decoding. And the smallest image, 1 x 1, goes
 * through explain's head grid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, tmp, vitkit, withoutDeviceLine } from '../helpers.js';
import { MAX_ASPECT_RATIO, checkDecodable, loadImage } from '../../src/io/image.js';
import { VitkitError } from '../../src/errors.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** an RGB PNG of w x h; the pixel rows are complete (all zero) when `full`, else one row (the header is what is checked) */
function png(w: number, h: number, full: boolean): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.alloc((full ? h : 1) * (1 + 3 * w)); // filter byte 0 + zero pixels per row
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

test('10,000,000 x 10, 10 x 10,000,000 and 100,000 x 1 are refused from the header in one line, at once', async () => {
  const d = tmp();
  for (const [w, h, full] of [[10_000_000, 10, false], [10, 10_000_000, false], [100_000, 1, true]] as const) {
    const f = path.join(d, `${w}x${h}.png`);
    writeFileSync(f, png(w, h, full));
    const t0 = Date.now();
    await assert.rejects(loadImage(f, 3), (e: Error) => e instanceof VitkitError
      && e.message === `Expected an image whose sides are at most ${MAX_ASPECT_RATIO}:1 apart for ${f} but received "${w} x ${h} (${Math.round(Math.max(w, h) / Math.min(w, h))}:1)"`);
    assert.ok(Date.now() - t0 < 2000, `${w}x${h} refused in ${Date.now() - t0} ms`);
    const r = vitkit('predict', '-m', HF_DIR, f);
    assert.equal(r.code, 1);
    assert.match(withoutDeviceLine(r.err), /^error: Expected an image whose sides are at most 100:1 apart for .* but received "\d+ x \d+ \(\d+:1\)"\n$/);
  }
});

test('the decoded size is bounded: a 10,000 x 10,000 header of float or double samples is over the 1 GiB cap', () => {
  assert.throws(() => checkDecodable('big.png', { width: 10_000, height: 10_000, channels: 4, depth: 'double' }), /Expected an image that decodes to at most \d+ bytes .* for big\.png but received "10000 x 10000 x 4 channels = 3200000000 bytes"/);
  assert.throws(() => checkDecodable('big.tif', { width: 10_000, height: 10_000, channels: 3, depth: 'float' }), /but received "10000 x 10000 x 3 channels = 1200000000 bytes"/);
  assert.doesNotThrow(() => checkDecodable('ok.png', { width: 4000, height: 3000, channels: 3, depth: 'uchar' }));
  assert.doesNotThrow(() => checkDecodable('pano.png', { width: 10_000, height: 100, channels: 3, depth: 'uchar' })); // 100:1 is allowed
  assert.throws(() => checkDecodable('zero.png', { width: 0, height: 10, channels: 3, depth: 'uchar' }), /at least 1 x 1 pixels for zero\.png/);
});

test('explain on a 1 x 1 image writes both pictures (the head grid was "offset is out of bounds")', async () => {
  const d = tmp();
  const f = path.join(d, 'dot.png');
  await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(f);
  const r = vitkit('explain', '-m', HF_DIR, f, '-o', path.join(d, 'out'));
  assert.equal(r.code, 0, r.err);
  const grid = await sharp(path.join(d, 'out', 'dot.heads.png')).metadata();
  assert.ok((grid.width ?? 0) >= 16 && (grid.height ?? 0) >= 16, `grid ${grid.width} x ${grid.height}`);
});
