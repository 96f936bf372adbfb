/**
 * --device webgpu end to end: `run`, `predict`, `embed`, `eval` and `train` on WebGPU give what
 * they give on the cpu device (and `run`/`train` what PyTorch gives: ../shared/refs), and a short
 * MNIST run of the recipe's ViT follows the cpu run's loss curve step by step.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { getBackend } from '../../src/backend/index.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig } from '../../src/models/config.js';
import { initWeights } from '../../src/models/init.js';
import { DeviceViT, type ComputeDevice } from '../../src/models/device.js';
import { Trainer } from '../../src/train/trainer.js';
import { MNIST_MEAN, MNIST_STD, MNIST_VIT_ARGS, loadMnist } from '../../src/data/mnist.js';
import { Tensor } from '../../src/tensor.js';
import { REFS, needRefs, refsSkip, maxAbsDiff, cliInProcess } from '../helpers.js';
import { getTestDevice } from './setup.js';
import { TRAIN_TINY_DIR, TRAIN_TINY_SKIP, checkAfter3, writeTinyBatch, writeTinyCheckpoint } from '../train/train_tiny.js';

const { dev, reason } = await getTestDevice();
after(() => dev?.dispose());
const skip = !dev ? reason : refsSkip();

const cli = cliInProcess;

/** the command said on stderr which device the model (CLIP: its image tower) ran on: the device table's line */
function ranOn(r: { err: string }, d: string): void {
  assert.ok(r.err.split('\n').some((l) => l.startsWith(`device: ${d} (`) && !l.endsWith('(the text tower)')), r.err);
}

/** WebGPU's result is not the cpu device's bits: it ran on the GPU (and agrees within the bound the caller checks) */
function notCpuBits(gpu: ArrayLike<number>, cpu: ArrayLike<number>, what: string): void {
  assert.ok(maxAbsDiff(gpu, cpu) > 0, `${what}: webgpu gave the cpu device's bits, so it did not run on WebGPU`);
}

const HF = path.join(REFS, 'hf_vit_small');
const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'].map((f) => path.join(REFS, 'images', f));

test('run --device webgpu = transformers and = run --device cpu (logits, attentions)', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vitkit-dev-run-'));
  try {
    const outs: Record<string, ReturnType<typeof readSafetensors>> = {};
    for (const d of ['cpu', 'webgpu']) {
      const o = path.join(dir, `${d}.safetensors`);
      const r = await cli(['run', '--device', d, '-m', HF, '-i', path.join(HF, 'ref.safetensors'), '-o', o, '--outputs', 'logits,attentions,rollout']);
      assert.equal(r.code, 0, r.err);
      ranOn(r, d);
      assert.equal(r.err.split('\n').length, 1, `only the device line on stderr: ${r.err}`);
      outs[d] = readSafetensors(o);
    }
    const ref = readSafetensors(path.join(HF, 'ref.safetensors'));
    const g = outs['webgpu']!, c = outs['cpu']!;
    assert.ok(maxAbsDiff(g.f32('logits').data, ref.f32('logits').data) <= 1e-4);
    assert.ok(maxAbsDiff(g.f32('logits').data, c.f32('logits').data) <= 1e-5);
    notCpuBits(g.f32('logits').data, c.f32('logits').data, 'run logits');
    for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(g.f32(`attentions.${i}`).data, ref.f32(`attentions.${i}`).data) <= 1e-5);
    assert.ok(maxAbsDiff(g.f32('rollout').data, c.f32('rollout').data) <= 1e-5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('predict, embed and eval --device webgpu agree with the cpu device', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vitkit-dev-pred-'));
  try {
    const pred: Record<string, { image: string; top: { index: number; score: number }[] }[]> = {};
    for (const d of ['cpu', 'webgpu']) {
      const r = await cli(['predict', '--device', d, '-m', HF, '-k', '5', '--json', ...IMAGES]);
      assert.equal(r.code, 0, r.err);
      ranOn(r, d);
      pred[d] = JSON.parse(r.out);
    }
    assert.equal(pred['webgpu']!.length, 3);
    pred['webgpu']!.forEach((p, i) => {
      const q = pred['cpu']![i]!;
      assert.deepEqual(p.top.map((x) => x.index), q.top.map((x) => x.index), p.image);
      p.top.forEach((x, k) => assert.ok(Math.abs(x.score - q.top[k]!.score) <= 1e-5, `${p.image} class ${x.index}`));
    });
    const emb: Record<string, Float32Array> = {};
    for (const d of ['cpu', 'webgpu']) {
      const o = path.join(dir, `${d}.safetensors`);
      const r = await cli(['embed', '--device', d, '-m', HF, '-o', o, ...IMAGES]);
      assert.equal(r.code, 0, r.err);
      ranOn(r, d);
      emb[d] = readSafetensors(o).f32('embeddings').data;
    }
    assert.ok(maxAbsDiff(emb['webgpu']!, emb['cpu']!) <= 1e-5);
    notCpuBits(emb['webgpu']!, emb['cpu']!, 'embed');
    // eval over a tensor file of the reference pixels with the model's own top classes as labels
    const ref = readSafetensors(path.join(HF, 'ref.safetensors'));
    const pv = ref.f32('pixel_values');
    const logits = ref.f32('logits').data, K = 5;
    const y = BigInt64Array.from({ length: pv.shape[0]! }, (_, b) => BigInt([...logits.subarray(b * K, b * K + K)].indexOf(Math.max(...logits.subarray(b * K, b * K + K)))));
    writeSafetensors(path.join(dir, 'val.safetensors'), { x: { shape: pv.shape, data: pv.data }, y: { shape: [y.length], data: y } });
    const ev: Record<string, { acc: number; loss: number; count: number }> = {};
    for (const d of ['cpu', 'webgpu']) {
      const r = await cli(['eval', '--device', d, '-m', HF, '-d', path.join(dir, 'val.safetensors'), '--json']);
      assert.equal(r.code, 0, r.err);
      ranOn(r, d);
      ev[d] = JSON.parse(r.out);
    }
    assert.equal(ev['webgpu']!.acc, 100);
    assert.equal(ev['webgpu']!.count, pv.shape[0]);
    assert.ok(Math.abs(ev['webgpu']!.loss - ev['cpu']!.loss) <= 1e-5);
    assert.notEqual(ev['webgpu']!.loss, ev['cpu']!.loss, 'eval: webgpu gave the cpu device\'s loss bits');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train --device webgpu: 3 epochs on the timm_train_tiny batch land on timm\'s after3 (the cpu parity recipe)', { skip: skip || TRAIN_TINY_SKIP }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vitkit-dev-train-'));
  try {
    const ckpt = path.join(dir, 'ckpt');
    writeTinyCheckpoint(ckpt);
    writeTinyBatch(path.join(dir, 'batch.safetensors'));
    const ref = readSafetensors(path.join(TRAIN_TINY_DIR, 'ref.safetensors'));
    const D = (JSON.parse(readFileSync(path.join(TRAIN_TINY_DIR, 'spec.json'), 'utf8')) as { model: { embed_dim: number } }).model.embed_dim;
    const out = path.join(dir, 'out');
    const r = await cli(['train', '--device', 'webgpu', '--model', ckpt, '--data', path.join(dir, 'batch.safetensors'), '--epochs', '3', '--batch-size', '8',
      '--lr', '1e-3', '--weight-decay', '0.05', '--label-smoothing', '0.1', '--schedule', 'constant', '--warmup-epochs', '0', '--no-shuffle', '--no-augment', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const got = readSafetensors(path.join(out, 'model.safetensors'));
    const losses = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { train_loss: number }).train_loss);
    assert.equal(losses.length, 3);
    t.diagnostic(checkAfter3(got.keys(), (n) => got.f32(n).data, losses, ref, D));
    // the resumable state has the device's moments: the saved optimizer step count is 3
    assert.equal(readSafetensors(path.join(out, 'checkpoint', 'train_state.safetensors')).metadata['optimizer_step'], '3');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a short MNIST run of the recipe\'s ViT on WebGPU follows the cpu loss curve step by step', { skip: dev ? false : reason }, async (t) => {
  const { train } = loadMnist();
  const config = resolveConfig({ ...MNIST_VIT_ARGS }, 'test');
  const cpu = new VisionTransformer(config, undefined, getBackend('native'));
  initWeights(cpu, 0);
  const gpuModel = new VisionTransformer(config, undefined, getBackend('native'));
  gpuModel.params.buffer.set(cpu.params.buffer);
  const opts = { lr: 2e-3, weightDecay: 0.05, labelSmoothing: 0.1, warmupSteps: 2, totalSteps: 8, clipGrad: 1 };
  const ht = new Trainer(cpu, opts), dt = new Trainer(new DeviceViT(gpuModel, dev as unknown as ComputeDevice), opts);
  const B = 16, P = 28 * 28;
  const curve: string[] = [];
  for (let s = 0; s < 5; s++) {
    const x = new Float32Array(B * P), y = new Int32Array(B); // (B, 1, 28, 28), (B)
    for (let b = 0; b < B; b++) {
      const i = (s * B + b) * 37 % train.n;
      y[b] = train.labels[i]!;
      for (let p = 0; p < P; p++) x[b * P + p] = (train.pixels[i * P + p]! / 255 - MNIST_MEAN) / MNIST_STD;
    }
    const xt = new Tensor([B, 1, 28, 28], x);
    const a = await ht.step(xt, y), g = await dt.step(xt, y);
    curve.push(`${a.loss.toFixed(5)}/${g.loss.toFixed(5)}`);
    assert.ok(Math.abs(a.loss - g.loss) <= 1e-4 * Math.max(1, a.loss), `step ${s}: loss ${g.loss} on webgpu vs ${a.loss} on cpu`);
    assert.ok(Math.abs(a.gradNorm - g.gradNorm) <= 1e-4 * a.gradNorm, `step ${s}: grad norm ${g.gradNorm} vs ${a.gradNorm}`);
  }
  t.diagnostic(`loss cpu/webgpu per step: ${curve.join(' ')}`);
  await dt.download();
  assert.ok(maxAbsDiff(gpuModel.params.buffer, cpu.params.buffer) <= 1e-4, 'weights after 5 steps');
  dt.release();
});

test('the async API takes a device: classify(..., { device: "webgpu" }) = the cpu device', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const { classify, closeSessions } = await import('../../src/node/inference.js');
  try {
    const cpu = await classify(IMAGES[1]!, { model: HF, topK: 3 });
    const gpu = await classify(IMAGES[1]!, { model: HF, topK: 3, device: 'webgpu' });
    assert.deepEqual(gpu.map((c) => c.index), cpu.map((c) => c.index));
    gpu.forEach((c, i) => assert.ok(Math.abs(c.score - cpu[i]!.score) <= 1e-5, `${c.label}: ${c.score} vs ${cpu[i]!.score}`));
    await assert.rejects(classify(IMAGES[1]!, { model: HF, device: 'tpu' as never }), /Expected device to be one of cpu, webgpu, auto but received "tpu"/);
  } finally {
    await closeSessions();
  }
});

test('explain --device webgpu (rollout and grad-rollout) = the cpu device', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const maps: Record<string, { rollout: number[][]; predicted: { index: number } }[]> = {};
  for (const method of ['rollout', 'grad-rollout']) {
    for (const d of ['cpu', 'webgpu']) {
      const r = await cli(['explain', '--device', d, '-m', HF, '--method', method, '--json', IMAGES[1]!]);
      assert.equal(r.code, 0, r.err);
      ranOn(r, d);
      maps[`${method}/${d}`] = JSON.parse(r.out);
    }
    const g = maps[`${method}/webgpu`]![0]!, c = maps[`${method}/cpu`]![0]!;
    assert.equal(g.predicted.index, c.predicted.index);
    assert.ok(maxAbsDiff(g.rollout.flat(), c.rollout.flat()) <= 1e-5, `${method} map`);
    notCpuBits(g.rollout.flat(), c.rollout.flat(), `${method} map`);
  }
});

test('CLIP on WebGPU: index, search --image and zeroshot --device webgpu (the image tower on the device) = the cpu device', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const CLIP = path.join(REFS, 'openclip_clip');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vitkit-dev-clip-'));
  try {
    const emb: Record<string, Float32Array> = {}, zs: Record<string, { top: { index: number; score: number }[] }[]> = {};
    const ex: Record<string, { similarity: number; rollout: number[][] }> = {};
    for (const d of ['cpu', 'webgpu']) {
      // explain --text: the image tower's forward and backward on the device, the text tower on the host
      const e = await cli(['explain', '--device', d, '-m', CLIP, '--text', 'a cat', '--json', IMAGES[1]!]);
      assert.equal(e.code, 0, e.err);
      ranOn(e, d);
      ex[d] = (JSON.parse(e.out) as { similarity: number; rollout: number[][] }[])[0]!;
      const idx = path.join(dir, `${d}.safetensors`);
      const r = await cli(['index', '--device', d, '-m', CLIP, '-o', idx, ...IMAGES]);
      assert.equal(r.code, 0, r.err);
      ranOn(r, d);
      const st = readSafetensors(idx);
      emb[d] = st.f32(st.keys().find((k) => st.f32(k).shape.length === 2)!).data;
      const z = await cli(['zeroshot', '--device', d, '-m', CLIP, '--labels', 'astronaut,cat,coffee', '--json', ...IMAGES]);
      assert.equal(z.code, 0, z.err);
      zs[d] = JSON.parse(z.out);
      const s = await cli(['search', '--device', d, '-x', idx, '--image', IMAGES[1]!, '--json']);
      assert.equal(s.code, 0, s.err);
      assert.equal((JSON.parse(s.out) as { path: string }[])[0]!.path.endsWith('chelsea.png'), true, 'an image finds itself first');
    }
    assert.ok(emb['cpu']!.length > 0);
    assert.ok(maxAbsDiff(emb['webgpu']!, emb['cpu']!) <= 1e-5, 'index embeddings');
    notCpuBits(emb['webgpu']!, emb['cpu']!, 'index embeddings');
    assert.ok(Math.abs(ex['webgpu']!.similarity - ex['cpu']!.similarity) <= 1e-5, 'explain --text similarity');
    assert.ok(maxAbsDiff(ex['webgpu']!.rollout.flat(), ex['cpu']!.rollout.flat()) <= 1e-5, 'explain --text map');
    notCpuBits(ex['webgpu']!.rollout.flat(), ex['cpu']!.rollout.flat(), 'explain --text map');
    zs['webgpu']!.forEach((p, i) => p.top.forEach((x, k) => {
      assert.equal(x.index, zs['cpu']![i]!.top[k]!.index);
      assert.ok(Math.abs(x.score - zs['cpu']![i]!.top[k]!.score) <= 1e-5);
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train --device webgpu trains on WebGPU (fresh and --resume): the log and metrics.jsonl name it, and its weights are not the cpu run\'s bits', { skip: dev ? false : reason }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vitkit-dev-train-dev-'));
  try {
    // tiny on purpose (SwiftShader): img 16, patch 8, D 16, one block, 8 images, 2 epochs of 2 steps
    const cfg = path.join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ architecture: 'vit_tiny_patch16_224', num_classes: 3,
      model_args: { img_size: 16, patch_size: 8, in_chans: 3, embed_dim: 16, depth: 1, num_heads: 2 } }));
    const n = 8, x = new Float32Array(n * 3 * 16 * 16), y = new BigInt64Array(n);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.8;
    for (let i = 0; i < n; i++) y[i] = BigInt(i % 3);
    const data = path.join(dir, 'data.safetensors');
    writeSafetensors(data, { x: { shape: [n, 3, 16, 16], data: x }, y: { shape: [n], data: y } });
    const common = ['--model', cfg, '--data', data, '--batch-size', '4', '--lr', '1e-2', '--no-shuffle', '--no-augment', '--warmup-epochs', '0'];
    const w: Record<string, Float32Array> = {};
    for (const d of ['cpu', 'webgpu']) {
      const out = path.join(dir, d);
      const r1 = await cli(['train', '--device', d, ...common, '--epochs', '1', '--out', out]);
      assert.equal(r1.code, 0, r1.err);
      assert.match(r1.err.split('\n')[0]!, new RegExp(`^device: ${d} \\(`), r1.err); // the first line it writes on stderr
      const r2 = await cli(['train', '--device', d, '--resume', out, '--epochs', '2']);
      assert.equal(r2.code, 0, r2.err);
      assert.match(r2.err.split('\n')[0]!, new RegExp(`^device: ${d} \\(`), r2.err); // the first line it writes on stderr
      const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { device?: string });
      assert.deepEqual(lines.map((l) => l.device), [d, d]);
      w[d] = readSafetensors(path.join(out, 'model.safetensors')).f32('blocks.0.mlp.fc1.weight').data;
    }
    const diff = maxAbsDiff(w['webgpu']!, w['cpu']!);
    assert.ok(diff > 0, 'the webgpu run gave the cpu run\'s weights bit for bit: it did not run on WebGPU');
    assert.ok(diff < 1e-3, `webgpu vs cpu weights after 4 steps: max |diff| ${diff}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
