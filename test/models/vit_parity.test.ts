/**
 * The model against PyTorch: timm's vit_tiny_patch16_224 (../shared/refs, 22 MB, not copied) and
 * transformers' ViTForImageClassification (hf_vit_small, copied into test/fixtures).
 * Tolerances from ../shared/refs/README.md: logits / features / hidden states 1e-4, attention 1e-5.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { readSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { getBackend } from '../../src/backend/index.js';
import { REFS, FIXTURES, maxAbsDiff, randn, rng, needRefs } from '../helpers.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig } from '../../src/models/config.js';

const TIMM_DIR = path.join(REFS, 'timm_vit_tiny');
const TIMM_REF = path.join(REFS, 'timm_vit_tiny_ref.safetensors');
const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

/** asserts max |got - ref[name]| <= tol and records the error for the test's diagnostic line */
function checker(ref: SafetensorsFile, report: string[]) {
  return (name: string, got: Float32Array, tol: number) => {
    const err = maxAbsDiff(got, ref.f32(name).data);
    report.push(`${name} ${err.toExponential(2)}`);
    assert.ok(err <= tol, `${name}: max abs diff ${err} > ${tol}`);
  };
}

test('timm vit_tiny_patch16_224: logits, features, every block, attention', (t) => {
  if (!needRefs(t, TIMM_REF)) return;
  const ref = readSafetensors(TIMM_REF);
  const { model, labels } = loadModel(TIMM_DIR);
  assert.equal(labels.length, 1000);
  assert.equal(labels[0], 'tench');
  const pv = ref.f32('pixel_values');
  const f = model.forwardFeatures(new Tensor(pv.shape, pv.data), { hiddenStates: true, attentions: true });
  const logits = model.forwardHead(f.features);
  const pre = model.forwardHead(f.features, { preLogits: true });
  const report: string[] = [];
  const check = checker(ref, report);
  check('logits', logits.data, 1e-4);
  check('features', f.features.data, 1e-4);
  check('pre_logits', pre.data, 1e-4);
  for (let i = 0; i < 12; i++) check(`block${i}`, f.hiddenStates![i + 1]!.data, 1e-4);
  check('attn0', f.attentions![0]!.data, 1e-5);
  check('attn11', f.attentions![11]!.data, 1e-5);
  t.diagnostic(report.join(', '));
});

test('Hugging Face ViTForImageClassification: logits, hidden states, attentions', (t) => {
  const ref = readSafetensors(path.join(HF_DIR, 'ref.safetensors'));
  const { model, labels, format } = loadModel(HF_DIR);
  assert.equal(format, 'hf');
  assert.deepEqual(labels, ['astronaut', 'cat', 'coffee', 'rocket', 'camera']);
  assert.equal(model.config.layer_norm_eps, 1e-12);
  const pv = ref.f32('pixel_values');
  const f = model.forwardFeatures(new Tensor(pv.shape, pv.data), { hiddenStates: true, attentions: true });
  const logits = model.forwardHead(f.features);
  const report: string[] = [];
  const check = checker(ref, report);
  check('logits', logits.data, 1e-4);
  for (let i = 0; i <= 3; i++) check(`hidden_states.${i}`, f.hiddenStates![i]!.data, 1e-4);
  for (let i = 0; i < 3; i++) check(`attentions.${i}`, f.attentions![i]!.data, 1e-5);
  t.diagnostic(report.join(', '));
});

test('native and reference backends agree on the non-default branches (avg pool, fc_norm, gelu_tanh, no qkv bias, no class token)', () => {
  const c = resolveConfig({ img_size: 40, patch_size: 8, in_chans: 3, num_classes: 7, embed_dim: 36, depth: 2, num_heads: 3,
    mlp_ratio: 2, qkv_bias: false, class_token: false, global_pool: 'avg', act: 'gelu_tanh' });
  const a = new VisionTransformer(c, undefined, getBackend('native'));
  const names = a.params.names();
  assert.ok(names.includes('fc_norm.weight') && !names.includes('norm.weight') && !names.includes('cls_token'));
  const r = rng(7);
  a.params.buffer.forEach((_, i) => { a.params.buffer[i] = (r() - 0.5) * 0.6; });
  const b = new VisionTransformer(c, a.params, getBackend('reference'));
  const x = new Tensor([2, 3, 40, 40], randn(2 * 3 * 40 * 40, 3));
  const la = a.forward(x), lb = b.forward(x);
  const err = maxAbsDiff(la.data, lb.data);
  assert.ok(err < 1e-4, `native vs reference ${err}`);
  // pooling really is the mean of patch tokens: shuffling the tokens of each image leaves pre_logits unchanged
  const f = a.forwardFeatures(x).features; // (2, 25, 36)
  assert.deepEqual(f.shape, [2, 25, 36]);
  const [B, N, D] = f.shape as [number, number, number];
  const pooled = a.forwardHead(f, { preLogits: true }).data; // (2, 36)
  const perm = [...Array(N).keys()].sort((p, q) => ((p * 7 + 3) % N) - ((q * 7 + 3) % N)); // a fixed permutation of the 25 tokens
  assert.notDeepEqual(perm, [...Array(N).keys()]);
  const shuffled = new Float32Array(B * N * D); // (2, 25, 36)
  for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) shuffled.set(f.data.subarray((b * N + perm[n]!) * D, (b * N + perm[n]! + 1) * D), (b * N + n) * D);
  const pooledShuffled = a.forwardHead(new Tensor([B, N, D], shuffled), { preLogits: true }).data;
  assert.ok(maxAbsDiff(pooled, pooledShuffled) < 1e-5, `token order changed pre_logits by ${maxAbsDiff(pooled, pooledShuffled)}`);
  // and it is fc_norm(mean over tokens), computed here in float64
  const w = a.params.get('fc_norm.weight'), bias = a.params.get('fc_norm.bias');
  for (let b = 0; b < B; b++) {
    const mean = new Float64Array(D);
    for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) mean[d]! += f.data[(b * N + n) * D + d]! / N;
    const mu = mean.reduce((s2, v) => s2 + v, 0) / D;
    const v = mean.reduce((s2, m) => s2 + (m - mu) ** 2, 0) / D;
    for (let d = 0; d < D; d++) {
      const want = ((mean[d]! - mu) / Math.sqrt(v + c.layer_norm_eps)) * w[d]! + bias[d]!;
      assert.ok(Math.abs(pooled[b * D + d]! - want) < 1e-4, `pre_logits[${b},${d}] ${pooled[b * D + d]} vs fc_norm(mean) ${want}`);
    }
  }
  // and a token that is not the mean moves it: changing one token changes pre_logits
  const bumped = Float32Array.from(f.data);
  for (let d = 0; d < D; d++) bumped[d]! += 1 + d;
  assert.ok(maxAbsDiff(a.forwardHead(new Tensor([B, N, D], bumped), { preLogits: true }).data.subarray(0, D), pooled.subarray(0, D)) > 1e-3);
});

test('input errors name the expected and received shape', () => {
  const { model } = loadModel(HF_DIR);
  assert.throws(() => model.forward(new Tensor([1, 3, 32, 64])), /Input height \(32\) doesn't match model \(64\)/);
  assert.throws(() => model.forward(new Tensor([1, 1, 64, 64])), /Input has 1 channels but the model expects in_chans 3/);
  assert.throws(() => model.forward(new Tensor([3, 64, 64])), /Expected pixel_values of shape \(B, 3, 64, 64\) but received \(3, 64, 64\)/);
});
