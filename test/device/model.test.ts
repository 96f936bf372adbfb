/**
 * The device model code (DeviceViT, Trainer: VitCore over DeviceTensor) on the native backend as
 * a device (HostDevice, zero-copy) against the host model (VitCore over Float32Array) and a
 * training step written with the host layers (loss.ts, optim.ts).
 * Both run the same kernels in the same order, so every output, hidden state, attention map,
 * loss, gradient norm and weight after training must be bit-identical; the one exception is a
 * resampled position embedding, which a device computes as M @ pos_embed (1e-6 there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { HostDevice } from '../../src/backend/host_device.js';
import { DeviceViT } from '../../src/models/device.js';
import { Trainer, scheduleFor, type TrainerOptions } from '../../src/train/trainer.js';
import { AdamW, ModelEma, clipGradNorm, gradNorm } from '../../src/train/optim.js';
import { crossEntropy, countCorrect } from '../../src/train/loss.js';
import { argmaxRows } from '../../src/nn/functional.js';
import { createModel } from '../../src/models/registry.js';
import { emptyCache, type VisionTransformer } from '../../src/models/vit.js';
import type { ParamTable } from '../../src/nn/params.js';
import type { Tensor } from '../../src/tensor.js';
import { maxAbsDiff, randn } from '../helpers.js';
import { DEVICE_CONFIGS, randomModel, pixels } from './cases.js';

const native = getBackend('native');

function same(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]} on the device and ${b[i]} on the host`);
  }
}

for (const [name, cfg] of Object.entries(DEVICE_CONFIGS)) {
  test(`device forward = host forward, bit for bit: ${name}`, async () => {
    const m = randomModel(cfg, native, 3);
    const dm = new DeviceViT(m, new HostDevice(native));
    const x = pixels(m.config, 2, 5);
    const hf = m.forwardFeatures(x, { hiddenStates: true, attentions: true });
    const df = await dm.forwardFeatures(x, { hiddenStates: true, attentions: true });
    same(df.features.data, hf.features.data, 'features');
    assert.deepEqual(df.features.shape, hf.features.shape);
    assert.equal(df.hiddenStates!.length, m.config.depth + 1);
    hf.hiddenStates!.forEach((h, i) => same(df.hiddenStates![i]!.data, h.data, `hidden_states.${i}`));
    hf.attentions!.forEach((a, i) => same(df.attentions![i]!.data, a.data, `attentions.${i}`));
    const hh = m.forwardHeads(hf.features);
    const dh = await dm.forwardHeads(x);
    same(dh.preLogits.data, hh.preLogits.data, 'pre_logits');
    assert.deepEqual(dh.preLogits.shape, hh.preLogits.shape);
    if (hh.logits) same(dh.logits!.data, hh.logits.data, 'logits');
    else assert.equal(dh.logits, null);
    if (hh.clsLogits) { same(dh.clsLogits!.data, hh.clsLogits.data, 'head'); same(dh.distLogits!.data, hh.distLogits!.data, 'head_dist'); }
    // a second forward reuses the device buffers: the results must not change
    same((await dm.forward(x)).data, (hh.logits ?? hh.preLogits).data, 'second forward');
  });
}

test('device forward at another size (dynamic_img_size): the resampled pos_embed as M @ pos matches the resampler', async () => {
  const cfg = DEVICE_CONFIGS['dinov2-reg (layerscale, registers, no_embed_class, dynamic size, no head)']!;
  const m = randomModel(cfg, native, 4);
  const dm = new DeviceViT(m, new HostDevice(native));
  const x = pixels(m.config, 2, 6, 30, 18);
  const h = m.forward(x), d = await dm.forward(x);
  assert.deepEqual(d.shape, h.shape);
  const e = maxAbsDiff(d.data, h.data);
  assert.ok(e <= 1e-5, `max abs diff ${e}`);
});

const TRAIN: Record<string, TrainerOptions> = {
  'cosine, warmup, clipping, label smoothing, EMA': { lr: 3e-3, weightDecay: 0.05, labelSmoothing: 0.1, clipGrad: 0.5, warmupSteps: 1, totalSteps: 4, emaDecay: 0.9 },
  'layer decay, betas, eps': { lr: 1e-3, weightDecay: 0.1, layerDecay: 0.75, betas: [0.8, 0.95], eps: 1e-6 },
};

/**
 * The training step written with the host layers only (the host model's forward / backward,
 * loss.ts, optim.ts): what the Trainer computed before it ran on devices, as the reference the
 * Trainer on the cpu device (the device code over HostDevice) must equal bit for bit.
 */
class HostStep {
  readonly grads: ParamTable;
  readonly opt: AdamW;
  readonly ema: ModelEma | null;
  readonly schedule;
  private it = 0;
  constructor(readonly m: VisionTransformer, readonly o: TrainerOptions, readonly teacher: VisionTransformer | null = null) {
    this.grads = m.params.like();
    this.opt = new AdamW(m.params, {
      lr: o.lr, weightDecay: o.weightDecay ?? 0.05, backend: m.backend,
      ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}), ...(o.layerDecay !== undefined ? { layerDecay: o.layerDecay } : {}),
    });
    this.schedule = scheduleFor(o);
    this.ema = o.emaDecay !== undefined ? new ModelEma(m.params, o.emaDecay, m.backend) : null;
  }
  step(x: Tensor, target: Int32Array | Float32Array): { loss: number; lr: number; gradNorm: number; clsLoss?: number; distLoss?: number } {
    const m = this.m, be = m.backend, K = m.config.num_classes, B = x.shape[0]!, ls = this.o.labelSmoothing ?? 0;
    const cache = emptyCache();
    this.grads.buffer.fill(0);
    let loss: number, extra = {};
    if (this.teacher) {
      const yt = argmaxRows(this.teacher.forward(x).data, B, K);
      const h = m.forwardHeads(m.forwardFeatures(x, { cache }).features, { cache });
      const a = crossEntropy(h.clsLogits!, target, ls, K, be), b = crossEntropy(h.distLogits!, yt, 0, K, be);
      be.scale(a.dlogits, a.dlogits, 0.5, B * K);
      be.scale(b.dlogits, b.dlogits, 0.5, B * K);
      m.backward(cache, a.dlogits, this.grads, { dDistLogits: b.dlogits });
      loss = (Math.fround(a.loss) + Math.fround(b.loss)) / 2;
      extra = { clsLoss: Math.fround(a.loss), distLoss: Math.fround(b.loss) };
    } else {
      const r = crossEntropy(m.forward(x, { cache }), target, ls, K, be);
      m.backward(cache, r.dlogits, this.grads);
      loss = Math.fround(r.loss);
    }
    const norm = this.o.clipGrad !== undefined ? clipGradNorm(this.grads, this.o.clipGrad, be) : gradNorm(this.grads, be);
    const lr = this.schedule.at(this.it++);
    this.opt.step(this.grads, lr);
    this.ema?.update(m.params);
    return { loss, lr, gradNorm: Math.fround(norm), ...extra };
  }
}

function softTargets(B: number, K: number, seed: number): Float32Array {
  const t = new Float32Array(B * K); // (B, K): timm mixup_target rows (smoothed, mixed with the flipped batch)
  for (let b = 0; b < B; b++) {
    const lam = 0.3 + 0.1 * ((b + seed) % 5), off = 0.1 / K;
    t[b * K + ((b + seed) % K)] += lam * (1 - 0.1);
    t[b * K + ((B - 1 - b + 2 * seed) % K)] += (1 - lam) * (1 - 0.1);
    for (let k = 0; k < K; k++) t[b * K + k] += off;
  }
  return t;
}

for (const [cname, cfg] of Object.entries(DEVICE_CONFIGS)) {
  if (cfg.num_classes === 0 || cfg.global_pool === '') continue;
  for (const [oname, opts] of Object.entries(TRAIN)) {
    test(`Trainer on the cpu device = the host training step, bit for bit, 3 steps: ${cname}; ${oname}`, async () => {
      const host = randomModel(cfg, native, 7), devModel = randomModel(cfg, native, 7);
      const t = new HostStep(host, opts);
      const dt = new Trainer(devModel, opts);
      for (let s = 0; s < 3; s++) {
        const x = pixels(host.config, 4, 20 + s);
        const y = Int32Array.from({ length: 4 }, (_, i) => (i * 3 + s) % host.config.num_classes);
        const a = t.step(x, y), b = await dt.step(x, y);
        assert.ok(Number.isFinite(a.loss) && a.loss > 0);
        assert.equal(b.loss, a.loss, `step ${s} loss`);
        assert.equal(b.gradNorm, a.gradNorm, `step ${s} grad norm`);
        assert.equal(b.lr, a.lr);
        same(await dt.dev.read(dt.grads.buffer), t.grads.buffer, `step ${s} gradients`);
      }
      // the cpu device shares the host model's weights: no download needed
      same(devModel.params.buffer, host.params.buffer, 'weights after 3 steps');
      const st = await dt.state(), hs = t.opt.state();
      assert.equal(st.step, 3);
      assert.equal(st.optimizer.step, hs.step);
      same(st.optimizer.expAvg, hs.expAvg, 'exp_avg');
      same(st.optimizer.expAvgSq, hs.expAvgSq, 'exp_avg_sq');
      if (t.ema) same(st.ema!, t.ema.params.buffer, 'ema');
      const xe = pixels(host.config, 3, 99), ye = Int32Array.from([0, 1, 2]);
      const ea = host.forward(xe), eb = await dt.evaluate(xe, ye);
      same(eb.logits.data, ea.data, 'eval logits');
      assert.equal(eb.correct, countCorrect(ea.data, ye, host.config.num_classes));
      assert.equal(eb.loss, Math.fround(crossEntropy(ea, ye).loss));
      if (t.ema) {
        const emaHost = createModel(host.config, { params: t.ema.params, backend: native });
        const ema = await dt.evaluate(xe, ye, { ema: true });
        same(ema.logits.data, emaHost.forward(xe).data, 'EMA eval logits');
        same((await dt.emaModel())!.params.buffer, t.ema.params.buffer, 'emaModel weights');
        // evaluating the EMA leaves the trained weights in place
        same((await dt.evaluate(xe, ye)).logits.data, ea.data, 'eval logits after the EMA eval');
      }
    });
  }
}

for (const cname of ['plain', 'deit distilled']) {
  test(`Trainer on the cpu device with soft targets (mixup / cutmix) = the host step, bit for bit: ${cname}`, async () => {
    const cfg = DEVICE_CONFIGS[cname]!, opts = TRAIN['cosine, warmup, clipping, label smoothing, EMA']!;
    const host = randomModel(cfg, native, 5), devModel = randomModel(cfg, native, 5);
    const t = new HostStep(host, opts), dt = new Trainer(devModel, opts);
    for (let s = 0; s < 3; s++) {
      const x = pixels(host.config, 3, 30 + s), soft = softTargets(3, host.config.num_classes, s);
      const a = t.step(x, soft), b = await dt.step(x, soft);
      assert.ok(Number.isFinite(a.loss) && a.loss > 0);
      assert.equal(b.loss, a.loss, `step ${s} loss`);
      assert.equal(b.gradNorm, a.gradNorm, `step ${s} grad norm`);
    }
    same(devModel.params.buffer, host.params.buffer, 'weights after 3 steps');
  });
}

test('Trainer on the cpu device with a teacher (DeiT hard distillation, hard and soft targets) = the host step, bit for bit', async () => {
  const cfg = DEVICE_CONFIGS['deit distilled']!, opts = TRAIN['layer decay, betas, eps']!;
  const teacher = randomModel(DEVICE_CONFIGS['plain']!, native, 12);
  teacher.params.get('head.weight').set(randn(7 * 36, 13, 3)); // a teacher whose argmax varies over the batch
  const host = randomModel(cfg, native, 6), devModel = randomModel(cfg, native, 6);
  const t = new HostStep(host, { ...opts, labelSmoothing: 0.1 }, teacher), dt = new Trainer(devModel, { ...opts, labelSmoothing: 0.1, teacher });
  for (let s = 0; s < 4; s++) {
    // the last step has mixup targets with the teacher: the class head learns the soft targets
    const x = pixels(host.config, 4, 50 + s), y = s < 3 ? Int32Array.from([s % 7, 1, 2, 3]) : softTargets(4, 7, s);
    const a = t.step(x, y), b = await dt.step(x, y);
    assert.ok(a.distLoss! > 0 && a.clsLoss! > 0);
    assert.deepEqual(b, a, `step ${s}`);
  }
  same(devModel.params.buffer, host.params.buffer, 'weights after 4 steps');
});

test('a resumed trainer continues exactly like an uninterrupted one', async () => {
  const cfg = DEVICE_CONFIGS['plain']!, opts = TRAIN['cosine, warmup, clipping, label smoothing, EMA']!;
  const host = randomModel(cfg, native, 8);
  const t = new Trainer(host, opts);
  const batches = [0, 1, 2, 3].map((s) => ({ x: pixels(host.config, 2, 40 + s), y: Int32Array.from([s % 7, (s + 2) % 7]) }));
  for (const b of batches.slice(0, 2)) await t.step(b.x, b.y);
  const resumedModel = randomModel(cfg, native, 0);
  resumedModel.params.buffer.set(host.params.buffer);
  const dt = new Trainer(new DeviceViT(resumedModel, new HostDevice(native)), opts);
  dt.loadState(await t.state());
  for (const b of batches.slice(2)) {
    const a = await t.step(b.x, b.y), r = await dt.step(b.x, b.y);
    assert.equal(r.loss, a.loss);
    assert.equal(r.lr, a.lr);
  }
  await dt.download();
  same(resumedModel.params.buffer, host.params.buffer, 'weights');
});

test('the trainer rejects what it cannot train, naming it', async () => {
  const m = randomModel(DEVICE_CONFIGS['plain']!, native, 1);
  const dt = new Trainer(new DeviceViT(m, new HostDevice(native)), { lr: 1e-3 });
  const x = pixels(m.config, 2, 1);
  await assert.rejects(dt.step(x, new Float32Array(13)), /Batch has 2 images but the targets have 13 values \(expected 2 x 7 soft targets\)/);
  await assert.rejects(dt.step(x, Int32Array.from([0, 7])), /Target 7 at index 1 is out of bounds/);
  await assert.rejects(dt.step(x, Int32Array.from([0])), /Batch has 2 images but the targets have 1/);
  const hf = randomModel(DEVICE_CONFIGS['dinov2-reg (layerscale, registers, no_embed_class, dynamic size, no head)']!, native, 1);
  assert.throws(() => new Trainer(new DeviceViT(hf, new HostDevice(native)), { lr: 1e-3 }), /num_classes 0/);
  const other = new HostDevice(native);
  assert.throws(() => new Trainer(new DeviceViT(m, new HostDevice(native)), { lr: 1e-3, device: other }), /device option/);
});

test('attention gradients (strided dO V^T GEMMs on the saved qkv) = dO V^T in float64 from the host backward\'s attention-output gradient', async () => {
  const { attentionGradients } = await import('../../src/explain/gradients.js');
  const { emptyCache } = await import('../../src/models/vit.js');
  for (const name of ['plain', 'deit distilled', 'clip (pre-norm, quick_gelu, no patch bias)']) {
    const m = randomModel(DEVICE_CONFIGS[name]!, native, 11);
    const x = pixels(m.config, 2, 12);
    const d = await attentionGradients(new DeviceViT(m, new HostDevice(native)), x, 3);
    // independently: the host model's forward and backward from one-hot(3), and dA = dO V^T per image and head in float64
    const cache = emptyCache();
    const logits = m.forward(x, { cache });
    const B = 2, K = m.config.num_classes, D = m.config.embed_dim, NH = m.config.num_heads, HD = D / NH, N = cache.layout.N;
    const onehot = new Float32Array(B * K);
    for (let b = 0; b < B; b++) onehot[b * K + 3] = 1;
    const want: Float64Array[] = [];
    m.backward(cache, onehot, m.params.like(), {
      onAttnOutputGrad: (i, dO) => {
        const qkv = cache.blocks[i]!.qkv, g = new Float64Array(B * NH * N * N); // (B, NH, N, N)
        for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let t = 0; t < N; t++) for (let u = 0; u < N; u++) {
          let acc = 0;
          for (let e = 0; e < HD; e++) acc += dO[(b * N + t) * D + h * HD + e]! * qkv[(b * N + u) * 3 * D + 2 * D + h * HD + e]!;
          g[((b * NH + h) * N + t) * N + u] = acc;
        }
        want[i] = g;
      },
    });
    same(d.logits.data, logits.data, `${name}: logits`);
    assert.equal(d.grads.length, m.config.depth);
    want.forEach((g, i) => {
      same(d.attentions[i]!.data, cache.blocks[i]!.probs, `${name}: attentions.${i}`);
      const e = maxAbsDiff(d.grads[i]!.data, g), s = Math.max(...g.map(Math.abs));
      assert.ok(s > 0 && e <= 1e-5 * s, `${name}: dA.${i} error ${e} (max ${s})`);
    });
  }
  // a caller-computed gradient at the output: dL/dlogits = 2 * one-hot(1) gives twice the class-1 gradients
  const m = randomModel(DEVICE_CONFIGS['plain']!, native, 5);
  const x = pixels(m.config, 2, 3);
  const one = await attentionGradients(m, x, 1);
  const two = await attentionGradients(m, x, (out) => { const g = new Float32Array(out.data.length); for (let b = 0; b < 2; b++) g[b * out.shape[1]! + 1] = 2; return g; });
  one.grads.forEach((g, i) => same(two.grads[i]!.data, g.data.map((v) => 2 * v), `twice dA.${i}`));
  await assert.rejects(attentionGradients(m, x, () => new Float32Array(3)), /Expected the target's gradient of \(2, \d+\)/);
  await assert.rejects(attentionGradients(m, x, 99), /class index in \[0, /);
});
