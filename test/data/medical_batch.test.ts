/**
 * Medical images in training / eval batches (issue 20): DICOM and 16-bit gray PNGs reach the batch
 * as floats, never through 8 bits; eval batches equal preprocessImage (what `predict` feeds the
 * model) bit for bit; train augmentations draw the same random numbers as for 8-bit files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { FIXTURES, tmp } from '../helpers.js';
import { makeBatch, type Pipeline } from '../../src/data/batch.js';
import { sharedI32, type FileDataset } from '../../src/data/dataset.js';
import { defaultAugment, type AugmentSpec } from '../../src/data/augment.js';
import { preprocessFromTimm, preprocessImage } from '../../src/io/preprocess.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A grayscale PNG of depth 8 or 16 holding `v(x, y)`, encoded by hand (no decoder under test involved). */
function grayPng(file: string, w: number, h: number, depth: 8 | 16, v: (x: number, y: number) => number): string {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth; // bit depth; colour type 0 (gray), compression / filter / interlace 0
  const bpp = depth / 8;
  const raw = Buffer.alloc(h * (1 + w * bpp)); // each row: filter byte 0, then big-endian samples
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (1 + w * bpp) + 1 + x * bpp;
      if (depth === 16) raw.writeUInt16BE(v(x, y), o);
      else raw[o] = v(x, y);
    }
  }
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  writeFileSync(file, png);
  return file;
}

function files(...paths: string[]): FileDataset {
  const labels = sharedI32(paths.length);
  return { kind: 'files', name: 'med', n: paths.length, labels, files: paths };
}

function pipeline(C: 1 | 3, size: number, cropPct: number): Pipeline {
  const mean = C === 1 ? [0.3] : [0.3, 0.4, 0.5];
  const std = C === 1 ? [0.2] : [0.2, 0.25, 0.3];
  return { channels: C, height: size, width: size, preprocess: preprocessFromTimm({ mean, std, crop_pct: cropPct, interpolation: 'bicubic' }, size, C), onBadImage: 'error' };
}

async function one(file: string, p: Pipeline, augment: AugmentSpec | null, seed: number): Promise<Float32Array> {
  const b = await makeBatch(files(file), p, { split: augment ? 'train' : 'val', indices: Int32Array.from([0]), augment, seed });
  assert.equal(b.size, 1);
  return b.x;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// A and B: 16-bit images whose values v / 65535 differ by 60 / 65535 < 1 / 255 everywhere; both round to
// gray 78 at 8 bits (20000..20155 / 257 lie in 77.8..78.5), so any 8-bit step makes their batches equal.
const dir = tmp();
const pattern = (x: number, y: number): number => 5 * ((x * 7 + y * 3) % 20);
const A = grayPng(path.join(dir, 'a.png'), 40, 36, 16, (x, y) => 20000 + pattern(x, y));
const B = grayPng(path.join(dir, 'b.png'), 40, 36, 16, (x, y) => 20060 + pattern(x, y));

test('eval batches of DICOM and 16-bit PNG files equal preprocessImage (predict\'s pixel_values) bit for bit', async () => {
  const dcm = path.join(FIXTURES, 'dicom', 'MR_small.dcm');
  for (const p of [pipeline(1, 32, 0.875), pipeline(3, 24, 0.9)]) {
    for (const f of [A, B, dcm]) {
      const x = await one(f, p, null, 1);
      assert.deepEqual(x, await preprocessImage(f, p.preprocess), `${path.basename(f)}, ${p.channels} channel(s)`);
    }
    // both in one batch: each sample at its offset
    const b = await makeBatch(files(A, dcm), p, { split: 'val', indices: Int32Array.from([1, 0]), augment: null, seed: 0 });
    const per = p.channels * p.height * p.width;
    assert.deepEqual(b.x.subarray(0, per), await preprocessImage(dcm, p.preprocess));
    assert.deepEqual(b.x.subarray(per), await preprocessImage(A, p.preprocess));
  }
});

test('16-bit images differing by less than 1/255 give different eval and train batch pixels (no 8-bit step)', async () => {
  const p = pipeline(1, 32, 0.875);
  for (const augment of [null, defaultAugment('shift'), defaultAugment('rrc_flip')]) {
    for (const seed of [3, 11]) {
      const xa = await one(A, p, augment, seed);
      const xb = await one(B, p, augment, seed);
      const d = maxDiff(xa, xb);
      // the window differs by 60 / 65535 = 9.2e-4 (0.0046 after / std 0.2): seen, not quantised away
      assert.ok(d > 1e-3 && d < 0.02, `${augment?.kind ?? 'eval'} seed ${seed}: max |A - B| = ${d}`);
    }
  }
});

test('augmentations of a 16-bit image draw what they draw for its 8-bit twin: same shift, same crop and flip', async () => {
  // k * 257 / 65535 = k / 255 exactly, so the 16-bit image's floats are the 8-bit image's values / 255
  const k = (x: number, y: number): number => (x * 13 + y * 29 + ((x * y) % 7) * 17) % 256;
  const g16 = grayPng(path.join(dir, 'g16.png'), 32, 32, 16, (x, y) => k(x, y) * 257);
  const g8 = grayPng(path.join(dir, 'g8.png'), 32, 32, 8, k);
  // geometry is the identity at 32 x 32 with crop_pct 1: a shifted batch is exactly the 8-bit one
  const p = pipeline(1, 32, 1);
  for (let seed = 1; seed <= 6; seed++) {
    assert.deepEqual(await one(g16, p, defaultAugment('shift'), seed), await one(g8, p, defaultAugment('shift'), seed), `shift, seed ${seed}`);
  }
  // RRC: torch's antialiased interpolate on floats vs PIL on 8 bits on the same crop agree to about a
  // grey level (PIL rounds to 8 bits); another crop or flip would differ by far more on this texture
  // (a smooth texture inside 20..235: PIL's two 8-bit passes neither clamp nor round by much)
  const smooth = (x: number, y: number): number => Math.round(127.5 + 60 * Math.sin(x / 4) * Math.cos(y / 5) + 40 * Math.sin((x + 2 * y) / 9));
  const wide = grayPng(path.join(dir, 'w16.png'), 48, 40, 16, (x, y) => smooth(x, y) * 257);
  const wide8 = grayPng(path.join(dir, 'w8.png'), 48, 40, 8, smooth);
  const std = 0.2;
  let distinct = 0;
  for (let seed = 1; seed <= 8; seed++) {
    const a = await one(wide, p, defaultAugment('rrc_flip'), seed);
    const b = await one(wide8, p, defaultAugment('rrc_flip'), seed);
    const d = maxDiff(a, b) * std; // in [0, 1] gray units
    assert.ok(d < 2.5 / 255, `rrc_flip seed ${seed}: max |float - 8-bit| = ${d * 255} grey levels`);
    const other = await one(wide8, p, defaultAugment('rrc_flip'), seed + 100);
    if (maxDiff(a, other) * std > 10 / 255) distinct++;
  }
  assert.ok(distinct >= 6, `another seed's crop differs by more than 10 grey levels for ${distinct} of 8 seeds`);
});
