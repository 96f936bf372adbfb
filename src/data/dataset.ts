/**
 * Datasets as plain, transferable records. Pixel arrays live in SharedArrayBuffers, so worker
 * threads read them without a copy; a dataset can be posted to a worker as it is.
 *
 * - 'u8': in-memory 8-bit images (n, H, W, C) interleaved (MNIST, CIFAR-10), normalized when a
 *   batch is made, with the pipeline's mean / std.
 * - 'f32': in-memory float images (n, C, H, W), already normalized (safetensors `x`).
 * - 'files': image files decoded when a batch is made (image folders).
 */
import { VitkitError } from '../errors.js';
import { shuffleInPlace, splitRng } from './rng.js';

interface DatasetBase {
  /** where it came from, for messages: "MNIST train", a file or folder path */
  name: string;
  /** number of samples */
  n: number;
  /** class index per sample (n) */
  labels: Int32Array;
}

export interface U8Dataset extends DatasetBase {
  kind: 'u8';
  channels: 1 | 3;
  height: number;
  width: number;
  /** (n, H, W, C) interleaved 8-bit pixels */
  pixels: Uint8Array;
}

export interface F32Dataset extends DatasetBase {
  kind: 'f32';
  channels: number;
  height: number;
  width: number;
  /** (n, C, H, W) normalized float pixels */
  data: Float32Array;
}

export interface FileDataset extends DatasetBase {
  kind: 'files';
  /** one image path per sample */
  files: string[];
}

export type Dataset = U8Dataset | F32Dataset | FileDataset;

export function sharedU8(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}

export function sharedF32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

export function sharedI32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}

/** The samples `idx` of `ds`, in that order, as a new dataset. */
export function subset(ds: Dataset, idx: ArrayLike<number>, name = ds.name): Dataset {
  const n = idx.length;
  const labels = sharedI32(n);
  for (let i = 0; i < n; i++) labels[i] = ds.labels[idx[i]!]!;
  if (ds.kind === 'files') return { kind: 'files', name, n, labels, files: Array.from({ length: n }, (_, i) => ds.files[idx[i]!]!) };
  if (ds.kind === 'u8') {
    const per = ds.height * ds.width * ds.channels;
    const pixels = sharedU8(n * per);
    for (let i = 0; i < n; i++) pixels.set(ds.pixels.subarray(idx[i]! * per, (idx[i]! + 1) * per), i * per);
    return { ...ds, name, n, labels, pixels };
  }
  const per = ds.channels * ds.height * ds.width;
  const data = sharedF32(n * per);
  for (let i = 0; i < n; i++) data.set(ds.data.subarray(idx[i]! * per, (idx[i]! + 1) * per), i * per);
  return { ...ds, name, n, labels, data };
}

/** Samples per class (length numClasses). */
export function classCounts(ds: Dataset, numClasses: number): number[] {
  const c = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < ds.n; i++) c[ds.labels[i]!]!++;
  return c;
}

/** Every label must be a class of the model: 0 <= label < numClasses. */
export function checkLabels(ds: Dataset, numClasses: number): void {
  for (let i = 0; i < ds.n; i++) {
    const y = ds.labels[i]!;
    if (!(y >= 0 && y < numClasses)) {
      const which = ds.kind === 'files' ? `${ds.files[i]}` : `sample ${i} of ${ds.name}`;
      throw new VitkitError(`Expected a label in [0, ${numClasses - 1}] for ${which} (the model has ${numClasses} classes) but received ${y}`);
    }
  }
}

/**
 * Stratified, seeded split: for each class, the class's samples in dataset order are shuffled
 * with a generator seeded by (seed, class) and the first round(fraction * count) go to val
 * (at least one when the class has two or more samples). Returns sorted index lists.
 */
export function stratifiedSplit(labels: Int32Array, fraction: number, seed: number): { train: Int32Array; val: Int32Array } {
  if (!(fraction > 0 && fraction < 1)) throw new VitkitError(`Expected a fraction in (0, 1) for --val-split but received ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    let l = byClass.get(y);
    if (!l) byClass.set(y, (l = []));
    l.push(i);
  }
  const train: number[] = [];
  const val: number[] = [];
  for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
    const items = byClass.get(cls)!;
    const rng = splitRng(seed, cls);
    shuffleInPlace(items, rng);
    let k = Math.round(fraction * items.length);
    if (k === 0 && items.length >= 2) k = 1;
    if (k === items.length) k = items.length - 1;
    val.push(...items.slice(0, k));
    train.push(...items.slice(k));
  }
  return { train: Int32Array.from(train.sort((a, b) => a - b)), val: Int32Array.from(val.sort((a, b) => a - b)) };
}
