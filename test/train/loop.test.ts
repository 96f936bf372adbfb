import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig } from '../../src/models/config.js';
import { initWeights, loadModel } from '../../src/checkpoint/checkpoint.js';
import { preprocessFromTimm } from '../../src/io/preprocess.js';
import { Tensor } from '../../src/tensor.js';
import { sharedI32, sharedU8, type U8Dataset } from '../../src/data/dataset.js';
import { BatchLoader } from '../../src/data/loader.js';
import type { Pipeline } from '../../src/data/batch.js';
import { trainRun, readRunState, evaluateModel, DEFAULT_SETTINGS, type TrainSettings, type RunOptions } from '../../src/train/loop.js';
import { niceTicks, drawCurves, COLORS } from '../../src/train/plot.js';

const CONFIG = resolveConfig({ img_size: 8, patch_size: 4, in_chans: 1, num_classes: 3, embed_dim: 16, depth: 1, num_heads: 2, mlp_ratio: 2 });

/** 14 tiny "digits": class = which third of the image is bright */
function data(n: number, seedOff = 0): U8Dataset {
  const ds: U8Dataset = { kind: 'u8', name: 'tiny', n, channels: 1, height: 8, width: 8, labels: sharedI32(n), pixels: sharedU8(n * 64) };
  for (let i = 0; i < n; i++) {
    const y = (i + seedOff) % 3;
    ds.labels[i] = y;
    for (let q = 0; q < 64; q++) ds.pixels[i * 64 + q] = Math.floor((q % 8) / 3) === y ? 200 + ((i * 13 + q) % 50) : (i * 7 + q * 3) % 40;
  }
  return ds;
}

const pipeline: Pipeline = { channels: 1, height: 8, width: 8, preprocess: preprocessFromTimm({ mean: [0.1307], std: [0.3081], crop_pct: 1 }, 8, 1), onBadImage: 'error' };
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'vitkit-loop-'));

function freshModel(): VisionTransformer {
  const m = new VisionTransformer(CONFIG);
  initWeights(m, 3);
  return m;
}

const SETTINGS: TrainSettings = {
  ...DEFAULT_SETTINGS, epochs: 3, batchSize: 4, lr: 3e-3, minLr: 1e-5, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'cosine', warmupEpochs: 1,
  clipGrad: 1, emaDecay: 0.9, mixup: 0.4, cutmix: 1, seed: 5, shuffle: true, augment: 'shift',
};

function opts(out: string, settings: TrainSettings, extra: Partial<RunOptions> = {}): RunOptions {
  return {
    model: freshModel(), meta: { name: 'vit_custom', pretrainedCfg: { mean: [0.1307], std: [0.3081], crop_pct: 1 }, labels: ['a', 'b', 'c'] },
    train: data(14), val: data(6, 1), pipeline, settings, out, workers: 0, handleSigint: false, ...extra,
  };
}

const bytes = (f: string) => readFileSync(f);

test('resume after interruptions mid-epoch gives the same weights, optimizer state and metrics bit for bit', async () => {
  const a = tmp(), b = tmp();
  try {
    const straight = await trainRun(opts(a, SETTINGS));
    assert.equal(straight.interrupted, false);
    assert.equal(straight.history.length, 3);
    // stop after 5 steps (epoch 2, batch 1 of 4), resume and stop again after 6 more (epoch 3, batch 3), resume to the end
    const first = await trainRun(opts(b, SETTINGS, { stopAfterSteps: 5, workers: 1 }));
    assert.equal(first.interrupted, true);
    assert.equal(first.signal, false);
    assert.deepEqual([first.state.epoch, first.state.batch, first.state.step], [1, 1, 5]);
    const second = await trainRun(opts(b, SETTINGS, { resume: readRunState(b), stopAfterSteps: 6, workers: 2 }));
    assert.deepEqual([second.state.epoch, second.state.batch, second.state.step], [2, 3, 11]);
    const third = await trainRun(opts(b, SETTINGS, { resume: readRunState(b) }));
    assert.equal(third.interrupted, false);
    assert.ok(bytes(path.join(a, 'model.safetensors')).equals(bytes(path.join(b, 'model.safetensors'))), 'model.safetensors identical');
    assert.ok(bytes(path.join(a, 'ema', 'model.safetensors')).equals(bytes(path.join(b, 'ema', 'model.safetensors'))), 'EMA identical');
    const sa = readRunState(a), sb = readRunState(b);
    assert.deepEqual(sa.trainer.optimizer.expAvgSq, sb.trainer.optimizer.expAvgSq);
    assert.equal(sa.trainer.optimizer.step, 12);
    const strip = (h: typeof straight.history) => h.map(({ seconds: _s, img_s: _i, ...m }) => m);
    assert.deepEqual(strip(third.history), strip(straight.history));
    assert.equal(readFileSync(path.join(b, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 3);
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('a stop after the last step of an epoch (before its validation) resumes, and the run equals an uninterrupted one bit for bit', async () => {
  const a = tmp(), b = tmp();
  try {
    const straight = await trainRun(opts(a, SETTINGS));
    // 14 samples / batch 4 = 4 steps an epoch: stop after step 4 (epoch 1's last), then after step 12 (the last epoch's last)
    const first = await trainRun(opts(b, SETTINGS, { stopAfterSteps: 4 }));
    assert.equal(first.interrupted, true);
    assert.deepEqual([first.state.epoch, first.state.batch, first.state.step, first.state.history.length], [0, 4, 4, 0]);
    const r1 = readRunState(b);
    assert.deepEqual([r1.run.epoch, r1.run.batch], [0, 4]);
    const second = await trainRun(opts(b, SETTINGS, { resume: r1, stopAfterSteps: 8 }));
    assert.equal(second.interrupted, true);
    assert.deepEqual([second.state.epoch, second.state.batch, second.state.step, second.state.history.length], [2, 4, 12, 2]);
    const third = await trainRun(opts(b, SETTINGS, { resume: readRunState(b) }));
    assert.equal(third.interrupted, false);
    assert.deepEqual([third.state.epoch, third.state.batch, third.state.step, third.state.complete], [3, 0, 12, true]);
    for (const f of ['model.safetensors', path.join('ema', 'model.safetensors')]) {
      assert.ok(bytes(path.join(a, f)).equals(bytes(path.join(b, f))), `${f} identical`);
    }
    const sa = readRunState(a), sb = readRunState(b);
    assert.deepEqual(sb.trainer.optimizer.expAvg, sa.trainer.optimizer.expAvg);
    assert.deepEqual(sb.trainer.optimizer.expAvgSq, sa.trainer.optimizer.expAvgSq);
    assert.deepEqual(sb.trainer.ema, sa.trainer.ema);
    const strip = (h: typeof straight.history) => h.map(({ seconds: _s, img_s: _i, ...m }) => m);
    assert.deepEqual(strip(third.history), strip(straight.history));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('a run folder from before checkpoint/ (the state at the top level) resumes bit for bit, and its first save moves the state into checkpoint/', async () => {
  const a = tmp(), b = tmp();
  const s: TrainSettings = { ...SETTINGS, epochs: 2 };
  try {
    await trainRun(opts(a, s));
    await trainRun(opts(b, s, { stopAfterSteps: 3 }));
    // the layout vitkit wrote before checkpoint/: the same two files beside model.safetensors
    for (const f of ['train_state.safetensors', 'train_state.json']) renameSync(path.join(b, 'checkpoint', f), path.join(b, f));
    rmSync(path.join(b, 'checkpoint'), { recursive: true });
    const legacy = readRunState(b);
    assert.equal(legacy.file, path.join(b, 'train_state.safetensors'));
    assert.deepEqual([legacy.run.epoch, legacy.run.batch], [0, 3]);
    await trainRun(opts(b, s, { resume: legacy }));
    assert.deepEqual(readdirSync(b).filter((f) => f.startsWith('train_state')), [], 'the top-level state is gone');
    assert.deepEqual(readdirSync(path.join(b, 'checkpoint')).sort(), ['train_state.json', 'train_state.safetensors']);
    assert.ok(bytes(path.join(a, 'model.safetensors')).equals(bytes(path.join(b, 'model.safetensors'))), 'model.safetensors identical');
    assert.deepEqual(readRunState(b).trainer.optimizer.expAvgSq, readRunState(a).trainer.optimizer.expAvgSq);
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('constant schedule: 1 epoch, then resume for a 2nd, equals 2 epochs straight', async () => {
  const a = tmp(), b = tmp();
  const s: TrainSettings = { ...SETTINGS, schedule: 'constant', warmupEpochs: 0, mixup: 0, cutmix: 0, emaDecay: null, epochs: 2 };
  try {
    await trainRun(opts(a, s));
    const one = await trainRun(opts(b, { ...s, epochs: 1 }));
    assert.equal(one.state.complete, true);
    const r = readRunState(b);
    await trainRun(opts(b, { ...r.run.settings, epochs: 2 }, { resume: r }));
    assert.ok(bytes(path.join(a, 'model.safetensors')).equals(bytes(path.join(b, 'model.safetensors'))));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('the output directory: timm checkpoint, metrics.jsonl, curves.png, the state in checkpoint/, no temporary files', async () => {
  const out = tmp();
  try {
    const r = await trainRun(opts(out, { ...SETTINGS, epochs: 2, emaDecay: null }));
    const files = readdirSync(out).sort();
    // one .safetensors at the top level: timm's local-dir loader refuses a folder with two
    assert.deepEqual(files, ['checkpoint', 'config.json', 'curves.png', 'metrics.jsonl', 'model.safetensors']);
    assert.deepEqual(readdirSync(path.join(out, 'checkpoint')).sort(), ['train_state.json', 'train_state.safetensors']);
    assert.equal(existsSync(path.join(out, 'train_state.safetensors')), false);
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    for (const [i, l] of lines.entries()) {
      assert.deepEqual(Object.keys(l).sort(), ['device', 'epoch', 'img_s', 'lr', 'seconds', 'train_loss', 'val_acc', 'val_loss', 'val_top5']);
      assert.equal(l['epoch'], i + 1);
      assert.equal(l['device'], 'cpu');
      assert.equal(l['val_top5'], 100); // 3 classes: top-5 is everything (top-5 itself is checked with K = 10 below)
    }
    const meta = await sharp(path.join(out, 'curves.png')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 900, 360]);
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(cfg['label_names'], ['a', 'b', 'c']);
    const lm = loadModel(out);
    assert.deepEqual(lm.model.params.buffer, r.state && readRunState(out).weights);
    assert.deepEqual(lm.preprocess.mean, [0.1307]);
    const st = JSON.parse(readFileSync(path.join(out, 'checkpoint', 'train_state.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([st['epoch'], st['batch'], st['step'], st['complete']], [2, 0, 8, true]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('evaluateModel: accuracy, top-5, per-class accuracy and confusion from the logits', async () => {
  const m = freshModel();
  const val = data(11);
  const loader = new BatchLoader({ train: null, val, pipeline, workers: 1 });
  try {
    const r = await evaluateModel(m, loader, 4);
    // independent computation: one forward over everything
    const x = new Float32Array(11 * 64);
    for (let i = 0; i < 11 * 64; i++) x[i] = Math.fround(Math.fround(Math.fround(val.pixels[i]! / 255) - Math.fround(0.1307)) / Math.fround(0.3081));
    const logits = m.forward(new Tensor([11, 1, 8, 8], x)).data;
    const conf = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
    let correct = 0, top2 = 0;
    for (let i = 0; i < 11; i++) {
      const row = [...logits.subarray(i * 3, i * 3 + 3)];
      const order = [0, 1, 2].sort((p, q) => row[q]! - row[p]!);
      conf[val.labels[i]!]![order[0]!]!++;
      if (order[0] === val.labels[i]) correct++;
      if (order.slice(0, 2).includes(val.labels[i]!)) top2++;
    }
    assert.deepEqual(r.confusion, conf);
    assert.equal(r.count, 11);
    assert.ok(Math.abs(r.acc - (100 * correct) / 11) < 1e-9);
    assert.equal(r.top5, 100); // K = 3: trivially; the K = 10 test below checks top-5 itself
    assert.ok(top2 >= correct);
    assert.deepEqual(r.perClass.map((a) => a === null ? null : Math.round(a * 1e6)), conf.map((row, k) => Math.round((1e8 * row[k]!) / row.reduce((s, v) => s + v, 0))));
  } finally {
    await loader.close();
  }
});

test('evaluateModel: top-5 over K = 10 classes is the share of rows whose label ranks in the 5 largest logits (ties: lower index first)', async () => {
  // with 3 classes top-5 is always 100 %; here K = 10, so top-5 can miss
  const K = 10, n = 20;
  const m = new VisionTransformer(resolveConfig({ ...CONFIG, num_classes: K }));
  initWeights(m, 11);
  const val = data(n);
  for (let i = 0; i < n; i++) val.labels[i] = (i * 7) % K;
  const loader = new BatchLoader({ train: null, val, pipeline, workers: 1 });
  try {
    const r = await evaluateModel(m, loader, 6);
    const x = new Float32Array(n * 64); // (n, 1, 8, 8)
    for (let i = 0; i < n * 64; i++) x[i] = Math.fround(Math.fround(Math.fround(val.pixels[i]! / 255) - Math.fround(0.1307)) / Math.fround(0.3081));
    const logits = m.forward(new Tensor([n, 1, 8, 8], x)).data; // (n, K)
    let top1 = 0, top5 = 0;
    for (let i = 0; i < n; i++) {
      const row = [...logits.subarray(i * K, (i + 1) * K)];
      const order = [...row.keys()].sort((p, q) => row[q]! - row[p]! || p - q);
      if (order[0] === val.labels[i]) top1++;
      if (order.slice(0, 5).includes(val.labels[i]!)) top5++;
    }
    assert.ok(top5 > 0 && top5 < n, `the case must discriminate (top-5 hits ${top5} of ${n})`);
    assert.ok(Math.abs(r.top5 - (100 * top5) / n) < 1e-9, `top5 ${r.top5} vs ${(100 * top5) / n}`);
    assert.ok(Math.abs(r.acc - (100 * top1) / n) < 1e-9);
  } finally {
    await loader.close();
  }
});

test('plot: nice ticks and the series drawn in their colors', () => {
  assert.deepEqual(niceTicks(0.43, 2.31).ticks, [0, 0.5, 1, 1.5, 2, 2.5]);
  assert.deepEqual(niceTicks(37.5, 96.1).ticks, [20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(5, 5).ticks.length > 1, true);
  const h = [1, 2, 3, 4].map((e) => ({ epoch: e, train_loss: 2 / e, val_loss: 2.2 / e, val_acc: 50 + 10 * e, val_top5: 90 + e, lr: 0, seconds: 1, img_s: 1 }));
  const cv = drawCurves(h);
  const count = (c: readonly number[]) => {
    let n = 0;
    for (let y = 0; y < cv.height; y++) for (let x = 0; x < cv.width; x++) {
      const p = cv.get(x, y);
      if (p[0] === c[0] && p[1] === c[1] && p[2] === c[2]) n++;
    }
    return n;
  };
  for (const c of [COLORS.train, COLORS.val, COLORS.acc, COLORS.top5]) assert.ok(count(c) > 150, `color ${c}`);
  assert.equal(count(COLORS.ema), 0);
  // the train-loss line lies in the left half, accuracy in the right half
  let leftAcc = 0;
  for (let y = 0; y < cv.height; y++) for (let x = 0; x < cv.width / 2; x++) {
    const p = cv.get(x, y);
    if (p[0] === COLORS.acc[0] && p[1] === COLORS.acc[1] && p[2] === COLORS.acc[2]) leftAcc++;
  }
  assert.equal(leftAcc, 0);
});
