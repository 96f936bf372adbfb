/**
 * The model code itself on WebGPU (DeviceViT / Trainer: VitCore over DeviceTensor) against
 * ../shared/refs with the refs' tolerances: hf_vit_small loaded by the ordinary loader (logits,
 * every hidden state, every attention map; one submission per forward), timm_train_tiny (step-1
 * gradients of every parameter, parameters after 3 AdamW steps), the host model's outputs on a set
 * of configurations that use every layer, and (VITKIT_WEBGPU_FULL=1, CI) timm_vit_tiny at 224 with
 * its attention rollout.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { getBackend } from '../../src/backend/index.js';
import { DeviceViT, type ComputeDevice } from '../../src/models/device.js';
import type { VisionTransformer } from '../../src/models/vit.js';
import { Trainer, type TrainerOptions } from '../../src/train/trainer.js';
import { resolveConfig } from '../../src/models/config.js';
import { attentionRollout } from '../../src/explain/rollout.js';
import { Tensor } from '../../src/tensor.js';
import { REFS, needRefs, refsSkip, maxAbsDiff, maxAbs, randn } from '../helpers.js';
import { getTestDevice } from './setup.js';
import { TRAIN_TINY_OPTS, TRAIN_TINY_SKIP, checkAfter3, checkStep1Grads, setupTrainTiny } from '../train/train_tiny.js';
import { DEVICE_CONFIGS, pixels, randomModel } from '../device/cases.js';

const { dev: gpu, reason } = await getTestDevice();
after(() => gpu?.dispose());
const dev = gpu as unknown as ComputeDevice | null;
const skip = !dev ? reason : refsSkip();
const FULL = process.env['VITKIT_WEBGPU_FULL'] === '1';

test('webgpu model: hf_vit_small logits, every hidden state and attention map = transformers, one submission', { skip }, async (t) => {
  if (!needRefs(t)) return;
  const { model } = loadModel(path.join(REFS, 'hf_vit_small'));
  const ref = readSafetensors(path.join(REFS, 'hf_vit_small', 'ref.safetensors'));
  const dm = new DeviceViT(model as VisionTransformer, dev!);
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  // enqueueing a whole forward submits nothing; its first read is the one submission
  await dev!.sync();
  dm.arena.reset();
  const mem = dm.arena.mem();
  const inp = dm.input(x, mem);
  const before = gpu!.submissions;
  const f = dm.featuresOn(inp.x, inp.B, inp.layout, mem);
  const logitsT = dm.core.head(f.features, inp.B, inp.layout.N, true, mem).logits!;
  assert.equal(gpu!.submissions, before, 'the forward submits nothing by itself');
  const logits = await dev!.read(logitsT);
  assert.equal(gpu!.submissions, before + 1, 'the whole forward is one submission');
  const e = maxAbsDiff(logits, ref.f32('logits').data);
  const out = await dm.forwardFeatures(x, { hiddenStates: true, attentions: true });
  const eh = out.hiddenStates!.map((h, i) => maxAbsDiff(h.data, ref.f32(`hidden_states.${i}`).data));
  const ea = out.attentions!.map((a, i) => maxAbsDiff(a.data, ref.f32(`attentions.${i}`).data));
  t.diagnostic(`logits ${e.toExponential(2)}, hidden states ≤ ${Math.max(...eh).toExponential(2)}, attentions ≤ ${Math.max(...ea).toExponential(2)}`);
  assert.ok(e <= 1e-4, `logits max abs error ${e}`);
  eh.forEach((v, i) => assert.ok(v <= 1e-4, `hidden_states.${i} max abs error ${v}`));
  ea.forEach((v, i) => assert.ok(v <= 1e-5, `attentions.${i} max abs error ${v}`));
  dm.release();
});

test('webgpu training: timm_train_tiny step-1 gradients and parameters after 3 AdamW steps = timm', { skip: skip || TRAIN_TINY_SKIP }, async (t) => {
  const { model, ref, x, y, D } = setupTrainTiny(getBackend('native'));
  const dm = new DeviceViT(model, dev!);
  const tr = new Trainer(dm, TRAIN_TINY_OPTS);
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    const r = await tr.step(x, y);
    losses.push(r.loss);
    if (s === 0) {
      const g = await dev!.read(tr.grads.buffer);
      const host = model.params.like();
      host.buffer.set(g);
      t.diagnostic(checkStep1Grads(model.params.names(), (n) => host.get(n), ref, D));
    }
  }
  await tr.download();
  t.diagnostic(checkAfter3(model.params.names(), (n) => model.params.get(n), losses, ref, D));
  tr.release();
  dm.release();
});

/** timm mixup_target rows: smoothed one-hots of two labels mixed with lam, 1 - lam (B, K) */
function mixedTargets(B: number, K: number, s: number): Float32Array {
  const t = new Float32Array(B * K).fill(0.1 / K);
  for (let b = 0; b < B; b++) {
    const lam = 0.25 + 0.1 * ((b + s) % 5);
    t[b * K + ((b + s) % K)]! += lam * 0.9;
    t[b * K + ((3 * b + 2 * s + 1) % K)]! += (1 - lam) * 0.9;
  }
  return t;
}

/**
 * The same 3 steps on the cpu device and on webgpu: losses and gradient norms within 1e-4 of the
 * cpu's, weights within 1e-4, and the weights not bit-identical (the run really was on webgpu).
 */
async function cpuVsWebgpu(t: { diagnostic(s: string): void }, cname: string, opts: TrainerOptions, batch: (s: number, K: number) => { x: Tensor; target: Int32Array | Float32Array },
  teacher?: VisionTransformer): Promise<void> {
  const native = getBackend('native');
  const cpuModel = randomModel(DEVICE_CONFIGS[cname]!, native, 21), gpuModel = randomModel(DEVICE_CONFIGS[cname]!, native, 21);
  const ct = new Trainer(cpuModel, { ...opts, ...(teacher ? { teacher } : {}) });
  const gt = new Trainer(gpuModel, { ...opts, device: dev!, ...(teacher ? { teacher } : {}) });
  const K = cpuModel.config.num_classes, curve: string[] = [];
  for (let s = 0; s < 3; s++) {
    const { x, target } = batch(s, K);
    const a = await ct.step(x, target), g = await gt.step(x, target);
    curve.push(`${a.loss.toFixed(6)}/${g.loss.toFixed(6)}`);
    assert.ok(Number.isFinite(a.loss) && a.loss > 0);
    assert.ok(Math.abs(a.loss - g.loss) <= 1e-4 * Math.max(1, a.loss), `step ${s}: loss ${g.loss} on webgpu vs ${a.loss} on cpu`);
    assert.ok(Math.abs(a.gradNorm - g.gradNorm) <= 1e-4 * a.gradNorm, `step ${s}: grad norm ${g.gradNorm} vs ${a.gradNorm}`);
    if (teacher) {
      assert.ok(a.distLoss! > 0 && Math.abs(a.distLoss! - g.distLoss!) <= 1e-4 * Math.max(1, a.distLoss!), `step ${s}: distillation loss ${g.distLoss} vs ${a.distLoss}`);
      assert.ok(Math.abs(a.clsLoss! - g.clsLoss!) <= 1e-4 * Math.max(1, a.clsLoss!), `step ${s}: class-head loss ${g.clsLoss} vs ${a.clsLoss}`);
    }
  }
  await gt.download();
  const e = maxAbsDiff(gpuModel.params.buffer, cpuModel.params.buffer);
  t.diagnostic(`loss cpu/webgpu per step: ${curve.join(' ')}; weights max diff ${e.toExponential(2)}`);
  assert.ok(e <= 1e-4, `weights after 3 steps: max abs diff ${e}`);
  assert.ok(e > 0, 'the webgpu weights are bit-identical to the cpu ones: the run did not train on webgpu');
  const xe = pixels(cpuModel.config, 3, 77), ye = Int32Array.from([0, 1, 2]);
  const ee = maxAbsDiff((await gt.evaluate(xe, ye, { ema: opts.emaDecay !== undefined })).logits.data, (await ct.evaluate(xe, ye, { ema: opts.emaDecay !== undefined })).logits.data);
  assert.ok(ee <= 1e-4, `eval logits ${ee}`);
  gt.release();
}

const MIX_OPTS: TrainerOptions = { lr: 3e-3, weightDecay: 0.05, clipGrad: 0.5, warmupSteps: 1, totalSteps: 4, emaDecay: 0.9, layerDecay: 0.75 };

test('webgpu training with mixup / cutmix soft targets = the cpu device (within 1e-4, not bit-identical)', { skip: dev ? false : reason }, async (t) => {
  await cpuVsWebgpu(t, 'plain', MIX_OPTS, (s, K) => ({ x: pixels(resolveConfig({ ...DEVICE_CONFIGS['plain']! }), 4, 60 + s), target: mixedTargets(4, K, s) }));
});

test('webgpu training with a teacher (DeiT hard distillation) = the cpu device (within 1e-4, not bit-identical)', { skip: dev ? false : reason }, async (t) => {
  const teacher = randomModel(DEVICE_CONFIGS['plain']!, getBackend('native'), 12);
  teacher.params.get('head.weight').set(randn(7 * 36, 13, 3)); // clear argmax margins: both devices agree on the teacher's labels
  const cfg = resolveConfig({ ...DEVICE_CONFIGS['deit distilled']! });
  await cpuVsWebgpu(t, 'deit distilled', { ...MIX_OPTS, labelSmoothing: 0.1 }, (s) => ({ x: pixels(cfg, 4, 70 + s), target: Int32Array.from([s % 7, 1, 2, 3]) }), teacher);
});

for (const [name, cfg] of Object.entries(DEVICE_CONFIGS)) {
  test(`webgpu model = host model: ${name}`, { skip: dev ? false : reason }, async () => {
    const m = randomModel(cfg, getBackend('native'), 3);
    const dm = new DeviceViT(m, dev!);
    const x = pixels(m.config, 2, 5);
    const hf = m.forwardFeatures(x, { attentions: true });
    const hh = m.forwardHeads(hf.features);
    const df = await dm.forwardFeatures(x, { attentions: true });
    const dh = await dm.forwardHeads(x);
    const ef = maxAbsDiff(df.features.data, hf.features.data);
    assert.ok(ef <= 1e-5 * Math.max(1, maxAbs(hf.features.data)), `features ${ef}`);
    hf.attentions!.forEach((a, i) => { const e = maxAbsDiff(df.attentions![i]!.data, a.data); assert.ok(e <= 1e-5, `attentions.${i} ${e}`); });
    const ep = maxAbsDiff(dh.preLogits.data, hh.preLogits.data);
    assert.ok(ep <= 1e-5 * Math.max(1, maxAbs(hh.preLogits.data)), `pre_logits ${ep}`);
    if (hh.logits) {
      const el = maxAbsDiff(dh.logits!.data, hh.logits.data);
      assert.ok(el <= 1e-5 * Math.max(1, maxAbs(hh.logits.data)), `logits ${el}`);
    }
    dm.release();
  });
}

test('webgpu timm_vit_tiny at 224: logits, features, attention maps and their rollout = timm', { skip: skip || (FULL ? false : 'set VITKIT_WEBGPU_FULL=1 (about 2.5 GMAC: a minute or more on SwiftShader)') }, async (t) => {
  if (!needRefs(t)) return;
  const { model } = loadModel(path.join(REFS, 'timm_vit_tiny'));
  const ref = readSafetensors(path.join(REFS, 'timm_vit_tiny_ref.safetensors'));
  const dm = new DeviceViT(model as VisionTransformer, dev!);
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const t0 = performance.now();
  const logits = await dm.forward(x);
  t.diagnostic(`timm_vit_tiny forward, batch 2, on ${gpu!.info.description}: ${(performance.now() - t0).toFixed(0)} ms`);
  const e = maxAbsDiff(logits.data, ref.f32('logits').data);
  assert.ok(e <= 1e-4, `logits max abs error ${e}`);
  const f = await dm.forwardFeatures(x, { attentions: true });
  const ef = maxAbsDiff(f.features.data, ref.f32('features').data);
  assert.ok(ef <= 1e-4, `features max abs error ${ef}`);
  for (const i of [0, 11]) {
    const ea = maxAbsDiff(f.attentions![i]!.data, ref.f32(`attn${i}`).data);
    assert.ok(ea <= 1e-5, `attn${i} max abs error ${ea}`);
  }
  const er = maxAbsDiff(attentionRollout(f.attentions!).data, ref.f32('rollout').data);
  t.diagnostic(`logits ${e.toExponential(2)}, features ${ef.toExponential(2)}, rollout ${er.toExponential(2)}`);
  assert.ok(er <= 1e-5, `rollout max abs error ${er}`);
  dm.release();
});
