/**
 * CIFAR-10's binary format: `data_batch_{1..5}.bin` (train) and `test_batch.bin`, each record one
 * label byte followed by 3072 bytes of pixels, channel-planar (3, 32, 32): R plane, G plane, B plane.
 * Class names come from `batches.meta.txt` when present.
 */
import { existsSync } from 'node:fs';
import { readRegularFile } from '../io/files.js';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { type U8Dataset, sharedI32, sharedU8 } from './dataset.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const SIDE = 32;
const RECORD = 1 + 3 * SIDE * SIDE;

export function isCifarDir(dir: string): boolean {
  return existsSync(path.join(dir, 'data_batch_1.bin')) || existsSync(path.join(dir, 'test_batch.bin'));
}

/** Parse CIFAR-10 binary files into one dataset (pixels converted to (H, W, C)). */
export function readCifarFiles(files: string[], name: string): U8Dataset {
  const bufs = files.map((f) => {
    const b = readRegularFile(f, 'CIFAR-10 file', 1 << 30);
    if (b.length === 0 || b.length % RECORD !== 0) {
      throw new VitkitError(`Expected a multiple of ${RECORD} bytes (records of 1 label byte + 3072 pixel bytes) in CIFAR-10 file ${f} but received ${b.length} bytes`);
    }
    return b;
  });
  const n = bufs.reduce((s, b) => s + b.length / RECORD, 0);
  const P = SIDE * SIDE;
  const ds: U8Dataset = { kind: 'u8', name, n, channels: 3, height: SIDE, width: SIDE, labels: sharedI32(n), pixels: sharedU8(n * 3 * P) };
  let i = 0;
  bufs.forEach((b, fi) => {
    for (let r = 0; r < b.length / RECORD; r++, i++) {
      const o = r * RECORD;
      const y = b[o]!;
      if (y >= CIFAR10_CLASSES.length) {
        throw new VitkitError(`Expected a label in [0, 9] for record ${r} of CIFAR-10 file ${files[fi]} but received ${y}`);
      }
      ds.labels[i] = y;
      const dst = i * 3 * P;
      for (let p = 0; p < P; p++) {
        ds.pixels[dst + 3 * p] = b[o + 1 + p]!;
        ds.pixels[dst + 3 * p + 1] = b[o + 1 + P + p]!;
        ds.pixels[dst + 3 * p + 2] = b[o + 1 + 2 * P + p]!;
      }
    }
  });
  return ds;
}

/** The standard split of a CIFAR-10 binary folder: data_batch_1..5 train, test_batch test. */
export function loadCifar10(dir: string): { train: U8Dataset | null; test: U8Dataset | null; labelNames: string[] } {
  const trainFiles = [1, 2, 3, 4, 5].map((k) => path.join(dir, `data_batch_${k}.bin`)).filter((f) => existsSync(f));
  const testFile = path.join(dir, 'test_batch.bin');
  const metaFile = path.join(dir, 'batches.meta.txt');
  let labelNames = CIFAR10_CLASSES;
  if (existsSync(metaFile)) {
    const names = readRegularFile(metaFile, 'CIFAR-10 meta file', 1 << 20).toString('utf8').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
    if (names.length === 10) labelNames = names;
  }
  return {
    train: trainFiles.length ? readCifarFiles(trainFiles, `${dir} (data_batch_*.bin)`) : null,
    test: existsSync(testFile) ? readCifarFiles([testFile], testFile) : null,
    labelNames,
  };
}
