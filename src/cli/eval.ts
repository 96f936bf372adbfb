/**
 * `vitkit eval --model <dir> --data <...> [--json]`: top-1 and top-5 accuracy, mean loss,
 * per-class accuracy and the confusion matrix on the data's evaluation set (MNIST's test split,
 * CIFAR-10's test_batch, an image folder's val/, a tensor file).
 */
import { imageOptions } from './image_options.js';
import { runnerFor, type DeviceName } from '../models/runner.js';
import { Command, Option } from 'commander';
import { VitkitError } from '../errors.js';
import { loadModel } from '../checkpoint/checkpoint.js';
import { openData } from '../data/open.js';
import { sharedI32, type Dataset } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import { evaluateModel, type EvalReport } from '../train/loop.js';
import { preparePipeline } from '../train/prepare.js';
import { deviceOption, parseIntOpt } from './common.js';
import { evalDetect, formatCoco } from './detect.js';
import { imageProgress } from './progress.js';

export interface EvalOutput extends EvalReport {
  model: string;
  data: string;
  labels: string[];
}

/** Map the data's class indices onto the model's by name when both name their classes. */
function remapLabels(ds: Dataset, dataNames: string[] | null, modelLabels: string[]): Dataset {
  if (!dataNames) return ds;
  const same = dataNames.every((n, i) => modelLabels[i] === n);
  if (same) return ds;
  if (!dataNames.every((n) => modelLabels.includes(n))) return ds; // unnamed model classes: indices as they are
  const map = dataNames.map((n) => modelLabels.indexOf(n));
  const labels = sharedI32(ds.n);
  for (let i = 0; i < ds.n; i++) labels[i] = map[ds.labels[i]!]!;
  return { ...ds, labels };
}

export async function evaluateCli(o: { model: string; data: string; batchSize: number; workers?: number; onBadImage: 'skip' | 'error'; device?: DeviceName; onProgress?: (done: number, total: number) => void }, warn: (s: string) => void = (s) => console.error(s)): Promise<EvalOutput> {
  const lm = loadModel(o.model);
  const data = openData(o.data, { purpose: 'eval' });
  if (!data.val || data.val.n === 0) throw new VitkitError(`Expected images to evaluate in ${o.data} but received none`);
  const val = remapLabels(data.val, data.labelNames, lm.labels);
  const pipeline = preparePipeline(lm.model, lm.preprocess, [val], o.onBadImage);
  const loader = new BatchLoader({ train: null, val, pipeline, workers: o.workers ?? (data.kind === 'folder' ? 2 : 1), onSkip: (f) => warn(`warning: skipped unreadable image ${f}`) });
  try {
    const runner = await runnerFor(lm.model, o.device ?? 'cpu');
    let done = 0;
    o.onProgress?.(0, val.n); // images read (an unreadable one skipped is not counted)
    const r = await evaluateModel(lm.model, loader, o.batchSize, async (x) => {
      const logits = await runner.forward(x);
      done += x.shape[0]!;
      o.onProgress?.(done, val.n);
      return logits;
    });
    runner.release();
    return { model: o.model, data: o.data, labels: lm.labels, ...r };
  } finally {
    await loader.close();
  }
}

/** The text report: summary, per-class accuracy, confusion matrix (rows true, columns predicted). */
export function formatEval(r: EvalOutput): string[] {
  const K = r.labels.length;
  const lines = [
    `Evaluated ${r.model} on ${r.data}: ${r.count} images`,
    `accuracy ${r.acc.toFixed(2)}%   top-5 ${r.top5.toFixed(2)}%   loss ${r.loss.toFixed(4)}`,
    '',
    'per-class accuracy:',
  ];
  const w = Math.min(24, Math.max(5, ...r.labels.map((l) => l.length)));
  r.perClass.forEach((a, k) => {
    const n = r.confusion[k]!.reduce((s, v) => s + v, 0);
    if (n) lines.push(`  ${String(k).padStart(String(K - 1).length)} ${r.labels[k]!.slice(0, w).padEnd(w)}  ${a!.toFixed(2).padStart(6)}%  (${r.confusion[k]![k]} / ${n})`);
  });
  const present = r.confusion.map((row, k) => row.some((v) => v > 0) || r.confusion.some((rr) => rr[k]! > 0));
  const idx = [...present.keys()].filter((k) => present[k]);
  if (idx.length <= 30) {
    lines.push('', 'confusion matrix (rows: true class, columns: predicted):');
    const cw = Math.max(4, ...idx.map((k) => String(Math.max(...r.confusion[k]!)).length + 1), String(K - 1).length + 1);
    lines.push(' '.repeat(6) + idx.map((k) => String(k).padStart(cw)).join(''));
    for (const k of idx) lines.push(String(k).padStart(5) + ' ' + idx.map((j) => String(r.confusion[k]![j]).padStart(cw)).join(''));
  } else {
    lines.push('', `(confusion matrix of ${idx.length} classes omitted; use --json)`);
  }
  return lines;
}

export function evalCommand(): Command {
  return imageOptions(deviceOption(new Command('eval')))
    .description('evaluate a checkpoint on a dataset: accuracy, top-5, per-class accuracy and the confusion matrix')
    .requiredOption('-m, --model <dir>', 'checkpoint directory (timm or Hugging Face layout), or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .requiredOption('-d, --data <source>', 'mnist (test split) | image folder (val/ or <class>/) | CIFAR-10 folder (test_batch) | .safetensors with x and y')
    .option('-b, --batch-size <n>', 'images per forward pass', parseIntOpt('--batch-size'), 128)
    .option('--workers <n>', 'data worker threads (0: main thread)', parseIntOpt('--workers', 0))
    .addOption(new Option('--on-bad-image <policy>', 'an unreadable image: skip it with a warning, or stop').choices(['skip', 'error']).default('error'))
    .option('--json', 'print {"acc", "top5", "loss", "count", "per_class", "confusion", "labels"} as JSON (--task detect: {"coco": {"AP", ...}, ...})')
    .option('--task <task>', 'classification (default) or detect (YOLOS on a COCO folder: the 12 numbers of pycocotools\' summarize())')
    .option('--shortest-edge <px>', 'detect: resize the short side to this (default: the checkpoint\'s)', parseIntOpt('--shortest-edge'))
    .option('--longest-edge <px>', 'detect: unless the long side would pass this', parseIntOpt('--longest-edge'))
    .action(async (o: { model: string; data: string; batchSize: number; workers?: number; onBadImage: 'skip' | 'error'; json?: boolean; device: DeviceName; task?: string; shortestEdge?: number; longestEdge?: number }) => {
      const task = o.task ?? 'classification';
      if (task !== 'classification' && task !== 'detect') throw new VitkitError(`Expected --task classification or detect but received ${JSON.stringify(task)}`);
      if (task === 'detect') {
        if (o.device === 'webgpu') throw new VitkitError(`eval --task detect runs on --device cpu only for now (received --device ${o.device})`);
        const r = await evalDetect(o);
        if (o.json) { console.log(JSON.stringify(r)); return; }
        console.log(`Evaluated ${r.model} on ${r.data}: ${r.images} images`);
        for (const l of formatCoco(r.coco)) console.log(l);
        return;
      }
      const bar = imageProgress('eval');
      let r: EvalOutput;
      try {
        r = await evaluateCli({ ...o, onProgress: bar.update });
      } finally {
        bar.stop();
      }
      if (o.json) {
        console.log(JSON.stringify({ model: r.model, data: r.data, count: r.count, acc: r.acc, top5: r.top5, loss: r.loss, per_class: r.perClass, confusion: r.confusion, labels: r.labels }));
        return;
      }
      for (const l of formatEval(r)) console.log(l);
    });
}
