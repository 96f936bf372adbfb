/**
 * The ViT-family architecture features against timm (../shared/refs, made by PyTorch):
 * DeiT distilled (dist token, two heads), DINOv2 with registers (LayerScale, reg tokens,
 * no_embed_class, dynamic image size at 70x84), CLIP (pre_norm, QuickGELU, eps 1e-5) and SigLIP
 * (no class token, MAP attention pooling). Weights load name by name (timm key = parameter name);
 * the configs are the timm model_args written out (the presets and layouts are tested elsewhere).
 * Tolerances from ../shared/refs/README.md: tokens and logits 1e-4, attention probabilities 1e-5.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { getBackend } from '../../src/backend/index.js';
import { REFS, maxAbsDiff, needRefs } from '../helpers.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig, type ViTConfig } from '../../src/models/config.js';
import { attentionRollout } from '../../src/explain/rollout.js';

export { needRefs };

/** a model with every parameter loaded by name from a timm model.safetensors (no key left over) */
export function loadByName(c: ViTConfig, file: string, backend = getBackend()): VisionTransformer {
  const m = new VisionTransformer(c, undefined, backend);
  const st = readSafetensors(file);
  assert.deepEqual([...st.keys()], m.params.names(), 'parameter names and order = timm state_dict');
  for (const name of m.params.names()) {
    const t = st.f32(name);
    m.params.set(name, t.shape, t.data, file);
  }
  return m;
}

export const FAMILY_CONFIGS: Record<string, Partial<ViTConfig>> = {
  // deit_tiny_distilled_patch16_224 + model_args
  timm_deit_distilled: { img_size: 64, patch_size: 16, embed_dim: 192, depth: 3, num_heads: 3, num_classes: 10, distilled: true },
  // vit_small_patch14_reg4_dinov2 + model_args
  timm_dinov2_reg: {
    img_size: 56, patch_size: 14, embed_dim: 192, depth: 3, num_heads: 3, num_classes: 0, init_values: 1e-5, reg_tokens: 4,
    no_embed_class: true, dynamic_img_size: true,
  },
  // vit_base_patch16_clip_quickgelu_224 + model_args
  timm_clip_vit: { img_size: 64, patch_size: 16, embed_dim: 192, depth: 3, num_heads: 3, num_classes: 10, pre_norm: true, act: 'quick_gelu', layer_norm_eps: 1e-5 },
  // vit_base_patch16_siglip_224 + model_args
  timm_siglip: { img_size: 64, patch_size: 16, embed_dim: 192, depth: 3, num_heads: 3, num_classes: 10, class_token: false, global_pool: 'map' },
};

function checker(ref: SafetensorsFile, report: string[], prefix = '') {
  return (name: string, got: Float32Array, tol: number) => {
    const err = maxAbsDiff(got, ref.f32(prefix + name).data);
    report.push(`${prefix}${name} ${err.toExponential(2)}`);
    assert.ok(err <= tol, `${prefix}${name}: max abs diff ${err} > ${tol}`);
  };
}

function checkCase(m: VisionTransformer, ref: SafetensorsFile, prefix: string, report: string[]) {
  const check = checker(ref, report, prefix);
  const pv = ref.f32(prefix + 'pixel_values');
  const f = m.forwardFeatures(new Tensor(pv.shape, pv.data), { hiddenStates: true, attentions: true });
  const L = m.config.depth;
  for (let i = 0; i < L; i++) check(`block${i}`, f.hiddenStates![i + 1]!.data, 1e-4);
  check('features', f.features.data, 1e-4);
  const h = m.forwardHeads(f.features);
  check('pre_logits', h.preLogits.data, 1e-4);
  check('logits', (h.logits ?? h.preLogits).data, 1e-4);
  assert.deepEqual(m.forwardHead(f.features, { preLogits: true }).data, h.preLogits.data);
  check('attn0', f.attentions![0]!.data, 1e-5);
  check(`attn${L - 1}`, f.attentions![L - 1]!.data, 1e-5);
  // intermediates are the block outputs
  const inter = m.forwardIntermediates(new Tensor(pv.shape, pv.data), { indices: [0, L - 1] });
  check('block0', inter.intermediates[0]!.data, 1e-4);
  check(`block${L - 1}`, inter.intermediates[1]!.data, 1e-4);
  return { f, h };
}

for (const backendName of ['native', 'reference'] as const) {
  for (const [name, over] of Object.entries(FAMILY_CONFIGS)) {
    test(`${name} (${backendName}): every block, features, pre_logits, logits, attention`, (t) => {
      const dir = path.join(REFS, name);
      if (!needRefs(t, path.join(dir, 'model.safetensors'), path.join(dir, 'ref.safetensors'))) return;
      const m = loadByName(resolveConfig(over, name), path.join(dir, 'model.safetensors'), getBackend(backendName));
      const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
      const report: string[] = [];
      const { h } = checkCase(m, ref, '', report);
      if (name === 'timm_deit_distilled') {
        checker(ref, report)('head_logits', h.clsLogits!.data, 1e-4);
        checker(ref, report)('head_dist_logits', h.distLogits!.data, 1e-4);
      }
      if (name === 'timm_dinov2_reg') {
        // 70x84 through dynamic_img_size: a 5x6 grid, pos_embed resampled on the fly
        checkCase(m, ref, '@70x84.', report);
        assert.equal(m.layout(70, 84).N, 1 + 4 + 30);
      }
      t.diagnostic(report.join(', '));
    });
  }
}

test('a DINOv2-style model refuses a size off the patch grid; a fixed-size model refuses another size', () => {
  const m = new VisionTransformer(resolveConfig({ ...FAMILY_CONFIGS['timm_dinov2_reg'], depth: 1 }), undefined, getBackend('reference'));
  assert.throws(() => m.forwardFeatures(new Tensor([1, 3, 70, 85])), /70x85.*multiple of patch_size 14/);
  const f = new VisionTransformer(resolveConfig({ ...FAMILY_CONFIGS['timm_clip_vit'], depth: 1 }), undefined, getBackend('reference'));
  assert.throws(() => f.forwardFeatures(new Tensor([1, 3, 64, 80])), /Input width \(80\) doesn't match model \(64\)/);
});

test('rollout over a model with 5 prefix tokens (class + 4 registers) keeps rows stochastic', (t) => {
  const dir = path.join(REFS, 'timm_dinov2_reg');
  if (!needRefs(t, path.join(dir, 'model.safetensors'), path.join(dir, 'ref.safetensors'))) return;
  const m = loadByName(resolveConfig(FAMILY_CONFIGS['timm_dinov2_reg']!), path.join(dir, 'model.safetensors'));
  const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
  const pv = ref.f32('@70x84.pixel_values');
  const f = m.forwardFeatures(new Tensor(pv.shape, pv.data), { attentions: true });
  const R = attentionRollout(f.attentions!, { numPrefix: 5, discardRatio: 0.5 });
  assert.deepEqual(R.shape, [2, 35, 35]);
  for (let i = 0; i < 35; i++) {
    let s = 0;
    for (let j = 0; j < 35; j++) s += R.data[i * 35 + j]!;
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${i} sums to ${s}`);
  }
});

test('a no_embed_class checkpoint loaded at a non-square size equals dynamic-size resampling on the fly', async (t) => {
  const dir = path.join(REFS, 'timm_dinov2_reg');
  if (!needRefs(t, path.join(dir, 'model.safetensors'))) return;
  const { loadStateDict } = await import('../../src/checkpoint/checkpoint.js');
  const dyn = loadByName(resolveConfig(FAMILY_CONFIGS['timm_dinov2_reg']!), path.join(dir, 'model.safetensors'));
  const fixed = new VisionTransformer(resolveConfig({ ...FAMILY_CONFIGS['timm_dinov2_reg'], dynamic_img_size: false, img_size: [42, 70] }));
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  loadStateDict(fixed, new Map(st.keys().map((k) => [k, st.f32(k)])), 'model.safetensors');
  assert.deepEqual(fixed.params.shape('pos_embed'), [1, 15, 192]);
  const x = new Tensor([1, 3, 42, 70], Float32Array.from({ length: 3 * 42 * 70 }, (_, i) => Math.sin(i * 0.37)));
  const a = dyn.forwardFeatures(x).features.data, b = fixed.forwardFeatures(x).features.data;
  assert.ok(maxAbsDiff(a, b) < 1e-5, `max diff ${maxAbsDiff(a, b)}`);
});
