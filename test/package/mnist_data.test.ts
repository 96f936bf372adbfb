/**
 * data/mnist.bin.br (what the package ships instead of the 41 MB `mnist` dependency) holds exactly
 * the mnist package's 10,000 digits, every pixel round(v * 255), in the package's order; and a
 * damaged file is one clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { MNIST_FILE, readMnistFile } from '../../src/data/mnist.js';
import { VitkitError } from '../../src/errors.js';

test('data/mnist.bin.br equals the mnist package, digit by digit, pixel by pixel', () => {
  const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist')), 'digits');
  const { counts, pixels } = readMnistFile();
  assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  let off = 0;
  for (let d = 0; d < 10; d++) {
    const data = (JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    assert.equal(data.length, counts[d]! * 784, `digit ${d}`);
    for (let i = 0; i < data.length; i++) {
      const want = Math.min(255, Math.max(0, Math.round(data[i]! * 255)));
      if (pixels[off + i] !== want) assert.fail(`digit ${d} value ${i}: file ${pixels[off + i]}, package ${want}`);
    }
    off += data.length;
  }
  assert.equal(off, pixels.length);
});

test('a damaged MNIST file is a VitkitError naming it', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-mnist-'));
  try {
    const truncated = path.join(dir, 'short.bin.br');
    const raw = Buffer.alloc(48 + 784);
    raw.write('VKMNIST1', 0, 'latin1');
    for (let d = 0; d < 10; d++) raw.writeUInt32LE(1, 8 + 4 * d);
    writeFileSync(truncated, brotliCompressSync(raw));
    assert.throws(() => readMnistFile(truncated), (e: unknown) => e instanceof VitkitError &&
      e.message === `Expected 48 + 10 x 784 bytes in the MNIST digits file ${truncated} but received ${48 + 784} (images per digit: 1, 1, 1, 1, 1, 1, 1, 1, 1, 1; reinstall vitkit)`);
    const garbage = path.join(dir, 'garbage.bin.br');
    writeFileSync(garbage, 'not brotli at all');
    assert.throws(() => readMnistFile(garbage), (e: unknown) => e instanceof VitkitError && e.message.startsWith(`Cannot read the MNIST digits ${garbage}: `));
    assert.ok(MNIST_FILE.endsWith(path.join('data', 'mnist.bin.br')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
