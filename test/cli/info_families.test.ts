/**
 * `vitkit info` for the family presets against timm's own numbers, and `vitkit run --outputs` for every family.
 *
 * Parameter counts (M) and GMACs per image are timm's, from huggingface/pytorch-image-models
 * results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv (columns param_count, infer_gmacs, at each model's
 * default input size: 224 px, DINOv2 518 px), the same file the plain-ViT numbers in cli.test.ts match.
 * Until the family parameters (registers, dist token, LayerScale, MAP head, SwiGLU, norm_pre) are in the model,
 * the family rows are marked todo (they run and report without failing the suite).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { REFS, FIXTURES, assertUserError, maxAbsDiff, tmp, vitkit, needRefs } from '../helpers.js';
import { VisionTransformer } from '../../src/models/vit.js';

/** the model has the family features (forwardHeads comes with them) */
const HAS_FAMILIES = typeof (VisionTransformer.prototype as unknown as { forwardHeads?: unknown }).forwardHeads === 'function';
const TODO = HAS_FAMILIES ? {} : { todo: 'needs the family parameters from the model branch' };

/** name -> [param_count M, infer_gmacs] from timm's benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv */
const TIMM: Record<string, [number, number]> = {
  deit_tiny_distilled_patch16_224: [5.91, 1.27],
  deit_small_distilled_patch16_224: [22.44, 4.63],
  deit_base_distilled_patch16_224: [87.34, 17.68],
  vit_small_patch14_dinov2: [22.06, 46.76],
  vit_base_patch14_dinov2: [86.58, 151.71],
  vit_large_patch14_dinov2: [304.37, 507.15],
  vit_giant_patch14_dinov2: [1136.48, 1784.2],
  vit_small_patch14_reg4_dinov2: [22.06, 46.95],
  vit_base_patch14_reg4_dinov2: [86.58, 152.25],
  vit_large_patch14_reg4_dinov2: [304.37, 508.9],
  vit_giant_patch14_reg4_dinov2: [1136.48, 1790.08],
  vit_base_patch16_clip_224: [86.57, 17.58],
  vit_base_patch16_clip_quickgelu_224: [86.19, 17.58],
  vit_base_patch16_siglip_224: [92.88, 17.73],
};

test('info: parameters and GMACs of every family preset equal timm\'s', TODO, () => {
  const bad: string[] = [];
  for (const [name, [p, g]] of Object.entries(TIMM)) {
    const r = vitkit('info', '--json', name);
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out) as { params: number; gmacs: number };
    const got = [(info.params / 1e6).toFixed(2), info.gmacs.toFixed(2)];
    if (got[0] !== p.toFixed(2) || got[1] !== g.toFixed(2)) bad.push(`${name}: params ${got[0]}M GMACs ${got[1]}, timm ${p.toFixed(2)}M ${g.toFixed(2)}`);
  }
  assert.deepEqual(bad, []);
});

test('info: the configuration of a family preset is timm\'s (DINOv2 518 px, no head; SigLIP MAP head)', () => {
  const d = JSON.parse(vitkit('info', '--json', 'vit_small_patch14_reg4_dinov2').out) as { config: Record<string, unknown> };
  assert.deepEqual([d.config['img_size'], d.config['num_classes'], d.config['reg_tokens'], d.config['init_values'], d.config['no_embed_class']], [518, 0, 4, 1e-5, true]);
  const s = JSON.parse(vitkit('info', '--json', 'vit_base_patch16_siglip_224').out) as { config: Record<string, unknown> };
  assert.deepEqual([s.config['global_pool'], s.config['class_token']], ['map', false]);
  const text = vitkit('info', 'deit_tiny_distilled_patch16_224').out;
  assert.match(text, /distilled\s+true/);
});

// ---------------------------------------------------------------------------------------------
// vitkit run --outputs for every family

const FAMILIES = ['timm_deit_distilled', 'timm_dinov2_reg', 'timm_clip_vit', 'timm_siglip'];

for (const fam of FAMILIES) {
  test(`run --outputs features,pre_logits,logits,hidden_states,attentions on ${fam}${fam.includes('deit') ? ' (+ cls_logits, dist_logits)' : ''}`, TODO, (t) => {
    const dir = path.join(REFS, fam);
    if (!needRefs(t, dir)) return;
    const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
    const work = tmp();
    const input = path.join(work, 'in.safetensors');
    const pv = ref.f32('pixel_values');
    writeSafetensors(input, { pixel_values: { shape: pv.shape, data: pv.data } });
    const output = path.join(work, 'out.safetensors');
    const deit = fam.includes('deit');
    const outs = 'features,pre_logits,logits,hidden_states,attentions' + (deit ? ',cls_logits,dist_logits' : '');
    const r = vitkit('run', '--model', dir, '--input', input, '--output', output, '--outputs', outs);
    assert.equal(r.code, 0, r.err);
    const got = readSafetensors(output);
    const L = 3;
    const pairs: [string, string, number][] = [
      ['features', 'features', 1e-4], ['pre_logits', 'pre_logits', 1e-4], ['logits', 'logits', 1e-4],
      ...Array.from({ length: L }, (_, i) => [`hidden_states.${i + 1}`, `block${i}`, 1e-4] as [string, string, number]),
      ['attentions.0', 'attn0', 1e-5], [`attentions.${L - 1}`, `attn${L - 1}`, 1e-5],
    ];
    if (deit) pairs.push(['cls_logits', 'head_logits', 1e-4], ['dist_logits', 'head_dist_logits', 1e-4]);
    const report: string[] = [];
    for (const [mine, theirs, tol] of pairs) {
      const a = got.f32(mine), b = ref.f32(theirs);
      assert.deepEqual(a.shape, b.shape, mine);
      const err = maxAbsDiff(a.data, b.data);
      report.push(`${mine} ${err.toExponential(2)}`);
      assert.ok(err <= tol, `${mine} vs ${theirs}: ${err} > ${tol}`);
    }
    assert.ok(got.has(`hidden_states.0`) && got.has(`attentions.${L - 1}`) && !got.has(`attentions.${L}`));
    t.diagnostic(report.join(', '));
  });
}

test('run: cls_logits / dist_logits on a model without a distillation head is one clear line', () => {
  const work = tmp();
  const ref = readSafetensors(path.join(FIXTURES, 'hf_vit_small', 'ref.safetensors'));
  const pv = ref.f32('pixel_values');
  const input = path.join(work, 'in.safetensors');
  writeSafetensors(input, { pixel_values: { shape: pv.shape, data: pv.data } });
  assertUserError(vitkit('run', '--model', path.join(FIXTURES, 'hf_vit_small'), '--input', input, '--output', path.join(work, 'o.safetensors'), '--outputs', 'logits,dist_logits'),
    /cls_logits\/dist_logits need a distilled model with a head \(DeiT\); .*hf_vit_small has distilled false, num_classes 5/);
});
