/**
 * The model families against timm (../shared/refs, see its README; weights 6-8 MB each, not copied):
 * timm_deit_distilled, timm_dinov2_reg (native size and 70x84 through dynamic_img_size), timm_clip_vit,
 * timm_siglip, each loaded through its timm hub layout (config.json architecture + model_args), and again
 * through each Hugging Face layout from a file THIS TEST CONVERTS from the timm reference weights by the
 * documented key map (saveHfCheckpoint; no transformers output is available for these families here).
 * Tolerances from the refs README: tokens and logits 1e-4, attention probabilities 1e-5.
 * Preprocessing: each checkpoint's own pretrained_cfg against the reference pixel_values (fixtures copied
 * into test/fixtures/families, so this part runs in a fresh clone).
 *
 * Until the family compute (LayerScale, registers, dist token, norm_pre, QuickGELU, MAP head) is in the
 * model, the model-output tests are marked todo (they run and report, without failing the suite).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { configFromTimm, loadModel, saveHfCheckpoint, type LoadedModel } from '../../src/checkpoint/checkpoint.js';
import { readSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { preprocessFromTimm, preprocessBatch } from '../../src/io/preprocess.js';
import { resolveConfig, type ViTConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import type { StateDict } from '../../src/checkpoint/layouts/hf.js';
import { Tensor } from '../../src/tensor.js';
import { REFS, FIXTURES, maxAbsDiff, tmp, needRefs } from '../helpers.js';

/** the model computes the family features (forwardHeads comes with them) */
const HAS_FAMILIES = typeof (VisionTransformer.prototype as unknown as { forwardHeads?: unknown }).forwardHeads === 'function';
const TODO = HAS_FAMILIES ? {} : { todo: 'needs the family compute from the model branch' };

const FAM = path.join(FIXTURES, 'families');
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

type Heads = { preLogits: Tensor; logits: Tensor | null; clsLogits?: Tensor; distLogits?: Tensor };

/** compare every reference output of one input (key prefix `pre`, e.g. '@70x84.') */
function checkOutputs(lm: LoadedModel, ref: SafetensorsFile, pre: string, report: string[], opts: { logitsShift?: Float32Array; noLogits?: boolean } = {}) {
  const m = lm.model;
  const pv = ref.f32(`${pre}pixel_values`);
  const f = m.forwardFeatures(new Tensor(pv.shape, pv.data), { hiddenStates: true, attentions: true });
  const check = (name: string, got: Float32Array, tol: number) => {
    const err = maxAbsDiff(got, ref.f32(pre + name).data);
    report.push(`${pre}${name} ${err.toExponential(2)}`);
    assert.ok(err <= tol, `${pre}${name}: max abs diff ${err} > ${tol}`);
  };
  const L = m.config.depth;
  check('features', f.features.data, 1e-4);
  for (let i = 0; i < L; i++) check(`block${i}`, f.hiddenStates![i + 1]!.data, 1e-4);
  check('attn0', f.attentions![0]!.data, 1e-5);
  check(`attn${L - 1}`, f.attentions![L - 1]!.data, 1e-5);
  check('pre_logits', m.forwardHead(f.features, { preLogits: true }).data, 1e-4);
  if (!opts.noLogits) {
    const logits = m.config.num_classes === 0 ? m.forwardHead(f.features, { preLogits: true }) : m.forwardHead(f.features);
    const want = opts.logitsShift ? logits.data.map((v, i) => v + opts.logitsShift![i % opts.logitsShift!.length]!) : logits.data;
    check('logits', want, 1e-4);
  }
  if (m.config.distilled && ref.has(`${pre}head_logits`)) {
    const h = (m as unknown as { forwardHeads: (x: Tensor) => Heads }).forwardHeads(f.features);
    check('head_logits', h.clsLogits!.data, 1e-4);
    check('head_dist_logits', h.distLogits!.data, 1e-4);
  }
}

function timmState(dir: string): StateDict {
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  const sd: StateDict = new Map();
  for (const k of st.keys()) sd.set(k, st.f32(k));
  return sd;
}

const FAMILIES = [
  { ref: 'timm_deit_distilled', hf: 'DeiTForImageClassificationWithTeacher' },
  { ref: 'timm_dinov2_reg', hf: 'Dinov2WithRegistersModel' },
  { ref: 'timm_clip_vit', hf: 'CLIPVisionModelWithProjection' },
  { ref: 'timm_siglip', hf: 'SiglipVisionModel' },
] as const;

for (const { ref } of FAMILIES) {
  test(`${ref} (timm hub layout): features, every block, attention first/last, pre_logits, logits`, TODO, (t) => {
    const dir = path.join(REFS, ref);
    if (!needRefs(t, dir)) return;
    const r = readSafetensors(path.join(dir, 'ref.safetensors'));
    const lm = loadModel(dir);
    assert.equal(lm.format, 'timm');
    const report: string[] = [];
    checkOutputs(lm, r, '', report);
    if (ref === 'timm_dinov2_reg') checkOutputs(lm, r, '@70x84.', report); // 5x6 grid, pos_embed resampled on the fly
    t.diagnostic(report.join(', '));
  });
}

test('DeiT through HF DeiTForImageClassificationWithTeacher converted from the timm reference weights', TODO, (t) => {
  const dir = path.join(REFS, 'timm_deit_distilled');
  if (!needRefs(t, dir)) return;
  const c = configFromTimm(json(path.join(dir, 'config.json')));
  const out = path.join(tmp(), 'hf');
  saveHfCheckpoint(out, 'DeiTForImageClassificationWithTeacher', c, timmState(dir));
  const lm = loadModel(out);
  assert.equal(lm.name, 'DeiTForImageClassificationWithTeacher');
  const report: string[] = [];
  checkOutputs(lm, readSafetensors(path.join(dir, 'ref.safetensors')), '', report);
  t.diagnostic(report.join(', '));
});

test('DINOv2 with registers through HF Dinov2WithRegistersModel converted from the timm reference weights (native and 70x84)', TODO, (t) => {
  const dir = path.join(REFS, 'timm_dinov2_reg');
  if (!needRefs(t, dir)) return;
  const c = configFromTimm(json(path.join(dir, 'config.json')));
  const out = path.join(tmp(), 'hf');
  saveHfCheckpoint(out, 'Dinov2WithRegistersModel', c, timmState(dir));
  const lm = loadModel(out);
  // HF folds the class position into the class token: same network, and HF always resamples (with antialias, as timm)
  assert.deepEqual([lm.model.config.dynamic_img_size, lm.model.config.pos_embed_antialias, lm.model.config.no_embed_class], [true, true, true]);
  const r = readSafetensors(path.join(dir, 'ref.safetensors'));
  const report: string[] = [];
  checkOutputs(lm, r, '', report);
  checkOutputs(lm, r, '@70x84.', report);
  t.diagnostic(report.join(', '));
});

test('DINOv2 without registers through HF Dinov2Model converted from timm-layout weights: same outputs as the timm layout at native size', TODO, (t) => {
  // no timm reference exists for a register-free DINOv2 here: the reg4 reference weights without registers and with a
  // class position row make one, loaded once in timm's layout and once through the converted HF file
  const dir = path.join(REFS, 'timm_dinov2_reg');
  if (!needRefs(t, dir)) return;
  const base = configFromTimm(json(path.join(dir, 'config.json')));
  const c: ViTConfig = resolveConfig({ ...base, reg_tokens: 0, no_embed_class: false });
  const sd = timmState(dir);
  sd.delete('reg_token');
  const pos = sd.get('pos_embed')!;
  const withCls = new Float32Array(pos.data.length + c.embed_dim); // (1, 1 + NP, D)
  withCls.set(pos.data.subarray(0, c.embed_dim).map((v) => v * 0.5), 0);
  withCls.set(pos.data, c.embed_dim);
  sd.set('pos_embed', { shape: [1, pos.shape[1]! + 1, c.embed_dim], data: withCls });
  const timmModel = new VisionTransformer(c);
  for (const [k, v] of sd) timmModel.params.set(k, v.shape, v.data);
  const out = path.join(tmp(), 'hf');
  saveHfCheckpoint(out, 'Dinov2Model', c, sd);
  const lm = loadModel(out);
  assert.equal(lm.model.config.pos_embed_antialias, false); // HF Dinov2Model resamples without antialias
  const pv = readSafetensors(path.join(dir, 'ref.safetensors')).f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const err = maxAbsDiff(lm.model.forwardFeatures(x).features.data, timmModel.forwardFeatures(x).features.data);
  assert.ok(err <= 1e-6, `features ${err}`);
});

test('CLIP through HF CLIPVisionModel and CLIPVisionModelWithProjection converted from the timm reference weights', TODO, (t) => {
  const dir = path.join(REFS, 'timm_clip_vit');
  if (!needRefs(t, dir)) return;
  const c = configFromTimm(json(path.join(dir, 'config.json')));
  const r = readSafetensors(path.join(dir, 'ref.safetensors'));
  const report: string[] = [];
  // CLIPVisionModel: no projection (the timm head dropped)
  const sd = timmState(dir);
  const bias = sd.get('head.bias')!.data;
  const noHead = new Map(sd); noHead.delete('head.weight'); noHead.delete('head.bias');
  const out0 = path.join(tmp(), 'hf');
  saveHfCheckpoint(out0, 'CLIPVisionModel', resolveConfig({ ...c, num_classes: 0 }), noHead);
  checkOutputs(loadModel(out0), r, '', report, { noLogits: true });
  // WithProjection: visual_projection has no bias, so the converted head is the timm head without its bias
  const zeroBias = new Map(sd); zeroBias.set('head.bias', { shape: [bias.length], data: new Float32Array(bias.length) });
  const out1 = path.join(tmp(), 'hfp');
  saveHfCheckpoint(out1, 'CLIPVisionModelWithProjection', c, zeroBias);
  const lm = loadModel(out1);
  assert.deepEqual([lm.model.config.act, lm.model.config.layer_norm_eps, lm.model.config.pre_norm], ['quick_gelu', 1e-5, true]);
  checkOutputs(lm, r, '', report, { logitsShift: bias });
  t.diagnostic(report.join(', '));
});

test('SigLIP through HF SiglipVisionModel converted from the timm reference weights (MAP head = pooler_output)', TODO, (t) => {
  const dir = path.join(REFS, 'timm_siglip');
  if (!needRefs(t, dir)) return;
  const c = configFromTimm(json(path.join(dir, 'config.json')));
  const sd = timmState(dir);
  sd.delete('head.weight'); sd.delete('head.bias');
  const out = path.join(tmp(), 'hf');
  // the HF layout keeps the config's activation: timm's SigLIP uses erf GELU, so the file says hidden_act gelu
  saveHfCheckpoint(out, 'SiglipVisionModel', resolveConfig({ ...c, num_classes: 0 }), sd);
  assert.equal(json(path.join(out, 'config.json'))['hidden_act'], 'gelu');
  const report: string[] = [];
  checkOutputs(loadModel(out), readSafetensors(path.join(dir, 'ref.safetensors')), '', report, { noLogits: true });
  t.diagnostic(report.join(', '));
});

test('headless HF ViTModel converted from timm vit_tiny weights: features, blocks, attention, pre_logits', (t) => {
  const dir = path.join(REFS, 'timm_vit_tiny');
  const refFile = path.join(REFS, 'timm_vit_tiny_ref.safetensors');
  if (!needRefs(t, refFile)) return;
  const c = resolveConfig({ ...configFromTimm(json(path.join(dir, 'config.json'))), num_classes: 0 });
  const sd = timmState(dir);
  sd.delete('head.weight'); sd.delete('head.bias');
  const out = path.join(tmp(), 'hf');
  saveHfCheckpoint(out, 'ViTModel', c, sd);
  const lm = loadModel(out);
  assert.deepEqual([lm.name, lm.model.config.num_classes], ['ViTModel', 0]);
  const report: string[] = [];
  checkOutputs(lm, readSafetensors(refFile), '', report, { noLogits: true });
  t.diagnostic(report.join(', '));
});

// ---------------------------------------------------------------------------------------------
// preprocessing: each checkpoint's own mean / std / crop (fixtures: runs in a fresh clone)

for (const f of ['deit_distilled', 'dinov2_reg', 'clip_vit', 'siglip']) {
  test(`${f}: the checkpoint's own eval transform reproduces the reference pixel_values`, async (t) => {
    const cfg = json(path.join(FAM, f, 'config.json'));
    const c = configFromTimm(cfg);
    const pp = preprocessFromTimm(cfg['pretrained_cfg'] as Record<string, unknown>, c.img_size, c.in_chans);
    const px = await preprocessBatch([path.join(FAM, 'images', 'astronaut.png'), path.join(FAM, 'images', 'chelsea.png')], pp);
    const ref = readSafetensors(path.join(FAM, f, 'pixel_values.safetensors')).f32('pixel_values');
    assert.equal(px.length, ref.data.length);
    let sum = 0;
    for (let i = 0; i < px.length; i++) sum += Math.abs(px[i]! - ref.data[i]!);
    const max = maxAbsDiff(px, ref.data);
    t.diagnostic(`mean abs diff ${(sum / px.length).toExponential(2)}, max ${max.toExponential(2)} (crop_pct ${String((cfg['pretrained_cfg'] as Record<string, unknown>)['crop_pct'])})`);
    assert.ok(sum / px.length <= 0.01 && max <= 0.1, 'the README bar for a non-PIL resampler');
    assert.ok(max <= 1e-5, `expected PIL-exact preprocessing, max ${max}`);
  });
}
