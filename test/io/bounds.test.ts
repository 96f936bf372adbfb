/** Input bounds: image pixel limits and formats, preprocessing limits, capped regular-file reads, atomic writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { VitkitError } from '../../src/errors.js';
import { loadImage, MAX_INPUT_PIXELS } from '../../src/io/image.js';
import { preprocessFromHf, preprocessFromTimm, checkPreprocessForModel } from '../../src/io/preprocess.js';
import { cleanStaleTemps, readRegularFile, writeFileAtomic } from '../../src/io/files.js';
import { ROOT, tmp } from '../helpers.js';

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A valid 1x1 PNG whose IHDR then claims w x h. */
async function pngClaiming(w: number, h: number): Promise<Uint8Array> {
  const b = new Uint8Array(await sharp(Buffer.from([1, 2, 3]), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer());
  const dv = new DataView(b.buffer);
  // signature (8) | length (4) "IHDR" (4) | width (4) height (4) ... | crc over type + data
  dv.setUint32(16, w);
  dv.setUint32(20, h);
  dv.setUint32(29, crc32(b.subarray(12, 29)));
  return b;
}

function rejectsWith(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof VitkitError, `expected VitkitError, got ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, re);
    return true;
  };
}

test('an image over MAX_INPUT_PIXELS is refused before it is decoded', async () => {
  assert.equal(MAX_INPUT_PIXELS, 100_000_000);
  const t0 = performance.now();
  await assert.rejects(loadImage(await pngClaiming(20000, 20000), 3, 'huge.png'), rejectsWith(/at most 100000000 pixels for huge\.png but received "20000 x 20000 = 400000000 pixels"/));
  assert.ok(performance.now() - t0 < 5000);
  // within the limit it still decodes (here: fails on the missing pixel data, as a decode error)
  await assert.rejects(loadImage(await pngClaiming(3, 3), 3, 'small.png'), rejectsWith(/decodable image .* for small\.png/));
});

test('vector and non-listed formats are refused by content, whatever the name', async () => {
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>');
  await assert.rejects(loadImage(svg, 3, 'tiny.jpg'), rejectsWith(/Expected a raster image .* for tiny\.jpg but received SVG \(vector images are not rendered\)/));
  // the listed raster formats decode: PNG, JPEG, WebP, GIF, TIFF, AVIF
  const px = Buffer.alloc(8 * 8 * 3, 120);
  for (const f of ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif'] as const) {
    const enc = await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).toFormat(f).toBuffer();
    const img = await loadImage(new Uint8Array(enc), 3, `x.${f}`);
    assert.deepEqual([img.width, img.height], [8, 8], f);
  }
});

test('preprocessing bounds: HF size, crop_size, timm crop_pct, std 0, output vs model', () => {
  assert.throws(() => preprocessFromHf({ size: { height: 20000, width: 20000 } }, 224, 3), rejectsWith(/at most 1024 x 1024 .* for preprocessor_config\.json size but received "20000 x 20000"/));
  assert.throws(() => preprocessFromTimm({ crop_pct: 1e-6 }, 224, 3), rejectsWith(/pretrained_cfg\.crop_pct 0\.000001/));
  assert.throws(() => preprocessFromTimm({ std: [0.2, 0, 0.2] }, 224, 3), rejectsWith(/std values in \[1e-6, 1e6\] .* for pretrained_cfg\.std\[1\] but received 0/));
  assert.throws(() => preprocessFromTimm({ std: 0 }, 224, 3), rejectsWith(/pretrained_cfg\.std/));
  assert.throws(() => preprocessFromHf({ image_std: [0.5, 0.5, -1] }, 64, 3), rejectsWith(/image_std\[2\] but received -1/));
  assert.throws(() => preprocessFromHf({ rescale_factor: Infinity }, 64, 3), rejectsWith(/rescale_factor/));
  // sizes a real checkpoint uses are fine: 384 models, crop_pct 0.875 / 0.95 / 1.0
  preprocessFromTimm({ crop_pct: 0.875 }, 384, 3);
  preprocessFromHf({ size: { shortest_edge: 256 }, do_center_crop: true, crop_size: { height: 224, width: 224 } }, 224, 3);
  const pp = preprocessFromHf({ size: { height: 96, width: 96 } }, 64, 3);
  assert.throws(() => checkPreprocessForModel(pp, 3, 64, 'ckpt'), rejectsWith(/Expected preprocessing to 3 x 64 x 64 pixel_values .* for ckpt but preprocessor_config\.json \(size\) gives 3 x 96 x 96/));
});

test('readRegularFile: caps, directories, devices, FIFOs (no hang)', async () => {
  const d = tmp();
  const f = path.join(d, 'f.bin');
  writeFileSync(f, Buffer.alloc(100, 7));
  assert.equal(readRegularFile(f, 'test file', 100).length, 100);
  assert.throws(() => readRegularFile(f, 'test file', 99), rejectsWith(/Expected test file .*f\.bin of at most 99 bytes but received 100 bytes/));
  assert.throws(() => readRegularFile(d, 'test file', 99), rejectsWith(/regular file .* received a directory/));
  assert.throws(() => readRegularFile(path.join(d, 'none'), 'test file', 99), rejectsWith(/Test file .*none does not exist/));
  if (existsSync('/dev/zero')) assert.throws(() => readRegularFile('/dev/zero', 'test file', 1e9), rejectsWith(/character device/));
  const fifo = path.join(d, 'p');
  if (spawnSync('mkfifo', [fifo]).status === 0) {
    // even with a writer holding the FIFO open, nothing is read from it
    const w = spawn('sh', ['-c', `exec 3>"${fifo}"; sleep 5`]);
    try {
      assert.throws(() => readRegularFile(fifo, 'test file', 1e9), rejectsWith(/FIFO/));
    } finally {
      w.kill();
    }
  }
});

test('writeFileAtomic: refuses, replaces, and names the file on a write error with no temp left behind', () => {
  const d = tmp();
  const f = path.join(d, 'out.txt');
  writeFileAtomic(f, 'one');
  assert.throws(() => writeFileAtomic(f, 'two'), rejectsWith(/out\.txt already exists; pass --overwrite/));
  writeFileAtomic(f, 'three', { overwrite: true });
  assert.equal(readFileSync(f, 'utf8'), 'three');
  assert.deepEqual(readdirSync(d), ['out.txt']);
  assert.throws(() => writeFileAtomic(path.join(d, 'no', 'such', 'x.png'), 'x', { what: 'PNG' }), rejectsWith(/Cannot write PNG .*x\.png: its folder .*no\/such does not exist \(ENOENT\)/));
  // a write that fails midway (file size limit, as a full disk would): the error names the file, nothing is left
  const script = `import { writeFileAtomic } from ${JSON.stringify(path.join(ROOT, 'dist', 'src', 'io', 'files.js'))};
    try { writeFileAtomic(${JSON.stringify(path.join(d, 'big.bin'))}, new Uint8Array(1 << 20), { what: 'PNG' }); } catch (e) { console.log(e.name + ': ' + e.message); }`;
  const r = spawnSync('sh', ['-c', `ulimit -f 64; trap '' XFSZ; exec "${process.execPath}" --input-type=module -e '${script.replace(/'/g, "'\\''")}'`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) {
    assert.match(r.stdout.trim(), /^VitkitError: Cannot write PNG .*big\.bin: (EFBIG|ENOSPC)/);
    assert.deepEqual(readdirSync(d).filter((n) => n.startsWith('big')), []);
  }
});

test('cleanStaleTemps removes only our temp files of dead processes', () => {
  const d = tmp();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  const names = [
    `model.safetensors.tmp-${deadPid}-0123456789ab`, // ours, dead: removed
    `config.json.tmp-${deadPid}`, // ours (older naming), dead: removed
    `curves.png.tmp-${process.pid}-0123456789ab`, // ours, alive: kept
    `notes.tmp-${deadPid}-xyz`, // not our naming: kept
    'photo.png',
  ];
  for (const n of names) writeFileSync(path.join(d, n), 'x');
  const removed = cleanStaleTemps(d).map((p) => path.basename(p)).sort();
  assert.deepEqual(removed, [names[1], names[0]].sort());
  assert.deepEqual(readdirSync(d).sort(), [names[2], names[3], names[4]].sort());
});
