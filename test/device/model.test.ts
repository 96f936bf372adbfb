/**
 * The device model code (DeviceViT, DeviceTrainer: VitCore over DeviceTensor) on the native
 * backend as a device (HostDevice, zero-copy) against the host model (VitCore over Float32Array).
 * Both run the same kernels in the same order, so every output, hidden state, attention map,
 * loss, gradient norm and weight after training must be bit-identical; the one exception is a
 * resampled position embedding, which a device computes as M @ pos_embed (1e-6 there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { HostDevice } from '../../src/backend/host_device.js';
import { DeviceViT } from '../../src/models/device.js';
import { DeviceTrainer } from '../../src/train/device_trainer.js';
import { Trainer, type TrainerOptions } from '../../src/train/trainer.js';
import { maxAbsDiff } from '../helpers.js';
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

for (const [cname, cfg] of Object.entries(DEVICE_CONFIGS)) {
  if (cfg.num_classes === 0 || cfg.global_pool === '') continue;
  for (const [oname, opts] of Object.entries(TRAIN)) {
    test(`device training = host training, bit for bit, 3 steps: ${cname}; ${oname}`, async () => {
      const host = randomModel(cfg, native, 7), devModel = randomModel(cfg, native, 7);
      const t = new Trainer(host, opts);
      const dm = new DeviceViT(devModel, new HostDevice(native));
      const dt = new DeviceTrainer(dm, opts);
      for (let s = 0; s < 3; s++) {
        const x = pixels(host.config, 4, 20 + s);
        const y = Int32Array.from({ length: 4 }, (_, i) => (i * 3 + s) % host.config.num_classes);
        const a = t.step(x, y), b = await dt.step(x, y);
        assert.ok(Number.isFinite(a.loss) && a.loss > 0);
        assert.equal(b.loss, Math.fround(a.loss), `step ${s} loss`);
        assert.equal(b.gradNorm, Math.fround(a.gradNorm), `step ${s} grad norm`);
        assert.equal(b.lr, a.lr);
        same(await dm.dev.read(dt.grads.buffer), t.grads.buffer, `step ${s} gradients`);
      }
      await dt.download();
      same(devModel.params.buffer, host.params.buffer, 'weights after 3 steps');
      const st = await dt.state(), hs = t.state();
      assert.equal(st.step, 3);
      assert.equal(st.optimizer.step, hs.optimizer.step);
      same(st.optimizer.expAvg, hs.optimizer.expAvg, 'exp_avg');
      same(st.optimizer.expAvgSq, hs.optimizer.expAvgSq, 'exp_avg_sq');
      if (hs.ema) same(st.ema!, hs.ema, 'ema');
      const xe = pixels(host.config, 3, 99), ye = Int32Array.from([0, 1, 2]);
      const ea = t.evaluate(xe, ye), eb = await dt.evaluate(xe, ye);
      same(eb.logits.data, ea.logits.data, 'eval logits');
      assert.equal(eb.correct, ea.correct);
      assert.equal(eb.loss, Math.fround(ea.loss));
      if (opts.emaDecay !== undefined) {
        const ema = await dt.evaluate(xe, ye, { ema: true });
        same(ema.logits.data, t.evaluate(xe, ye, { ema: true }).logits.data, 'EMA eval logits');
        // evaluating the EMA leaves the trained weights in place
        same((await dt.evaluate(xe, ye)).logits.data, ea.logits.data, 'eval logits after the EMA eval');
      }
    });
  }
}

test('a resumed device trainer continues exactly like an uninterrupted host trainer', async () => {
  const cfg = DEVICE_CONFIGS['plain']!, opts = TRAIN['cosine, warmup, clipping, label smoothing, EMA']!;
  const host = randomModel(cfg, native, 8);
  const t = new Trainer(host, opts);
  const batches = [0, 1, 2, 3].map((s) => ({ x: pixels(host.config, 2, 40 + s), y: Int32Array.from([s % 7, (s + 2) % 7]) }));
  for (const b of batches.slice(0, 2)) t.step(b.x, b.y);
  const resumedModel = randomModel(cfg, native, 0);
  resumedModel.params.buffer.set(host.params.buffer);
  const dt = new DeviceTrainer(new DeviceViT(resumedModel, new HostDevice(native)), opts);
  dt.loadState(t.state());
  for (const b of batches.slice(2)) {
    const a = t.step(b.x, b.y), r = await dt.step(b.x, b.y);
    assert.equal(r.loss, Math.fround(a.loss));
    assert.equal(r.lr, a.lr);
  }
  await dt.download();
  same(resumedModel.params.buffer, host.params.buffer, 'weights');
});

test('device trainer rejects what it cannot train, naming it', async () => {
  const m = randomModel(DEVICE_CONFIGS['plain']!, native, 1);
  const dt = new DeviceTrainer(new DeviceViT(m, new HostDevice(native)), { lr: 1e-3 });
  const x = pixels(m.config, 2, 1);
  await assert.rejects(dt.step(x, new Float32Array(14)), /Soft targets/);
  await assert.rejects(dt.step(x, Int32Array.from([0, 7])), /Target 7 at index 1 is out of bounds/);
  await assert.rejects(dt.step(x, Int32Array.from([0])), /Batch has 2 images but the targets have 1/);
  const hf = randomModel(DEVICE_CONFIGS['dinov2-reg (layerscale, registers, no_embed_class, dynamic size, no head)']!, native, 1);
  assert.throws(() => new DeviceTrainer(new DeviceViT(hf, new HostDevice(native)), { lr: 1e-3 }), /num_classes 0/);
});

test('attention gradients on a device (strided dO V^T GEMMs on the saved qkv) = the host hook', async () => {
  const { attentionGradients } = await import('../../src/explain/gradients.js');
  const { deviceAttentionGradients } = await import('../../src/explain/device_gradients.js');
  for (const name of ['plain', 'deit distilled', 'clip (pre-norm, quick_gelu, no patch bias)']) {
    const m = randomModel(DEVICE_CONFIGS[name]!, native, 11);
    const x = pixels(m.config, 2, 12);
    const h = attentionGradients(m, x, 3);
    const d = await deviceAttentionGradients(new DeviceViT(m, new HostDevice(native)), x, 3);
    same(d.logits.data, h.logits.data, `${name}: logits`);
    assert.equal(d.grads.length, m.config.depth);
    h.grads.forEach((g, i) => {
      same(d.attentions[i]!.data, h.attentions[i]!.data, `${name}: attentions.${i}`);
      const e = maxAbsDiff(d.grads[i]!.data, g.data), s = Math.max(...g.data.map(Math.abs));
      assert.ok(s > 0 && e <= 1e-6 * s, `${name}: dA.${i} error ${e} (max ${s})`);
    });
  }
});
