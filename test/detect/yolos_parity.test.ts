/**
 * YOLOS inference parity with hustvl/YOLOS (test/fixtures/yolos_det: a copy of
 * shared/refs/yolos_det's model, config and ref.safetensors, made by the authors' code in PyTorch):
 * pred_logits / pred_boxes within 1e-4 and the last block's attention within 1e-5 on the padded
 * batch `pixel_values` (3, 3, 64, 96) and on `x2` (1, 3, 48, 80), where the position embedding is
 * resampled to 3x5; each image alone (`single.{i}`, one of them 64x64: resampled to 4x4); PostProcess
 * (`post.*`, scores 1e-4, boxes 1e-2 px). The Hugging Face layout is checked on a directory this
 * test converts from the hustvl checkpoint by transformers' conversion key map
 * (convert_yolos_to_pytorch.py's rename_key and its qkv split, re-implemented here), which must give
 * the same outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES, maxAbsDiff } from '../helpers.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { loadYolos } from '../../src/detect/load.js';
import { postProcess } from '../../src/detect/criterion.js';
import { getBackend } from '../../src/backend/index.js';

const DIR = path.join(FIXTURES, 'yolos_det');
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
const t = (k: string) => { const v = ref.f32(k); return new Tensor(v.shape, v.data); };

for (const backendName of ['native', 'reference'] as const) {
  test(`YOLOS (${backendName}): pred_logits, pred_boxes, last attention = hustvl/YOLOS on the batch and at another size`, () => {
    const { model, format } = loadYolos(DIR, getBackend(backendName));
    assert.equal(format, 'hustvl');
    assert.equal(model.numDetTokens, 10);
    const out = model.forward(t('pixel_values'), { attentions: true });
    assert.deepEqual(out.logits.shape, [3, 10, 6]);
    const eL = maxAbsDiff(out.logits.data, ref.f32('pred_logits').data), eB = maxAbsDiff(out.boxes.data, ref.f32('pred_boxes').data);
    const eA = maxAbsDiff(out.attentions![2]!.data, ref.f32('last_attention').data);
    const x2 = model.forward(t('x2'));
    const e2L = maxAbsDiff(x2.logits.data, ref.f32('x2.pred_logits').data), e2B = maxAbsDiff(x2.boxes.data, ref.f32('x2.pred_boxes').data);
    console.log(`[${backendName}] batch: logits ${eL.toExponential(2)} boxes ${eB.toExponential(2)} attention ${eA.toExponential(2)}; x2: logits ${e2L.toExponential(2)} boxes ${e2B.toExponential(2)}`);
    assert.ok(eL <= 1e-4 && eB <= 1e-4, `batch logits ${eL}, boxes ${eB}`);
    assert.ok(eA <= 1e-5, `last attention ${eA}`);
    assert.ok(e2L <= 1e-4 && e2B <= 1e-4, `x2 logits ${e2L}, boxes ${e2B}`);
  });
}

test('YOLOS: sides that are not multiples of the patch lose their last pixels, as the stride-16 convolution does', () => {
  const { model } = loadYolos(DIR);
  const x = t('x2'); // (1, 3, 48, 80)
  const big = new Float32Array(3 * 55 * 90).map((_, i) => Math.sin(i)); // (1, 3, 55, 90): its 48x80 top-left part is x2
  for (let c = 0; c < 3; c++) for (let y = 0; y < 48; y++) big.set(x.data.subarray((c * 48 + y) * 80, (c * 48 + y + 1) * 80), (c * 55 + y) * 90);
  const o = model.forward(new Tensor([1, 3, 55, 90], big));
  assert.ok(maxAbsDiff(o.logits.data, ref.f32('x2.pred_logits').data) <= 1e-4);
  assert.throws(() => model.forward(new Tensor([1, 3, 12, 90], new Float32Array(3 * 12 * 90))), /Input size 12x90 .* is smaller than one 16x16 patch/);
  assert.throws(() => model.forward(new Tensor([1, 1, 64, 64], new Float32Array(64 * 64))), /Expected pixel_values of shape \(B, 3, H, W\) but received \(1, 1, 64, 64\)/);
});

test('YOLOS: each image alone (single.{i}) and PostProcess (post.*) = hustvl/YOLOS', () => {
  const { model } = loadYolos(DIR);
  const orig = ref.i64('orig_sizes').data;
  const sizes = [0, 1, 2].map((i) => [Number(orig[2 * i]), Number(orig[2 * i + 1])] as [number, number]);
  const batch = model.forward(t('pixel_values'));
  const post = postProcess(batch.logits.data, batch.boxes.data, 3, 10, 6, sizes);
  const cat = (f: (i: number) => ArrayLike<number>) => Float64Array.from([0, 1, 2].flatMap((i) => Array.from(f(i))));
  const eS = maxAbsDiff(cat((i) => post[i]!.scores), ref.f32('post.scores').data);
  const eBx = maxAbsDiff(cat((i) => post[i]!.boxes), ref.f32('post.boxes').data);
  assert.deepEqual(Array.from(cat((i) => post[i]!.labels)), Array.from(ref.i64('post.labels').data, Number));
  assert.ok(eS <= 1e-4 && eBx <= 1e-2, `post scores ${eS}, boxes ${eBx} px`);
  let worst = 0;
  for (let i = 0; i < 3; i++) {
    const o = model.forward(t(`single.${i}.pixel_values`));
    const eL = maxAbsDiff(o.logits.data, ref.f32(`single.${i}.pred_logits`).data), eB = maxAbsDiff(o.boxes.data, ref.f32(`single.${i}.pred_boxes`).data);
    const p = postProcess(o.logits.data, o.boxes.data, 1, 10, 6, [sizes[i]!])[0]!;
    const es = maxAbsDiff(p.scores, ref.f32(`single.${i}.scores`).data), eb = maxAbsDiff(p.boxes, ref.f32(`single.${i}.boxes`).data);
    assert.deepEqual(Array.from(p.labels), Array.from(ref.i64(`single.${i}.labels`).data, Number));
    assert.ok(eL <= 1e-4 && eB <= 1e-4, `single.${i}: logits ${eL}, boxes ${eB}`);
    assert.ok(es <= 1e-4 && eb <= 1e-2, `single.${i}: scores ${es}, boxes ${eb} px`);
    worst = Math.max(worst, eL, eB);
  }
  console.log(`post: scores ${eS.toExponential(2)}, boxes ${eBx.toExponential(2)} px; single images: worst ${worst.toExponential(2)}`);
});

/** transformers' convert_yolos_to_pytorch.py: rename_key, and the qkv split of convert_state_dict */
function renameKey(name: string): string {
  const rules: [string, string][] = [
    ['backbone', 'vit'], ['cls_token', 'embeddings.cls_token'], ['det_token', 'embeddings.detection_tokens'],
    ['mid_pos_embed', 'encoder.mid_position_embeddings'], ['pos_embed', 'embeddings.position_embeddings'],
    ['patch_embed.proj', 'embeddings.patch_embeddings.projection'], ['blocks', 'encoder.layer'], ['attn.proj', 'attention.output.dense'],
    ['attn', 'attention.self'], ['norm1', 'layernorm_before'], ['norm2', 'layernorm_after'], ['mlp.fc1', 'intermediate.dense'],
    ['mlp.fc2', 'output.dense'], ['class_embed', 'class_labels_classifier'], ['bbox_embed', 'bbox_predictor'], ['vit.norm', 'vit.layernorm'],
  ];
  for (const [a, b] of rules) if (name.includes(a)) name = name.replace(a, b);
  return name;
}

function convertToHf(srcDir: string, dst: string): void {
  const st = readSafetensors(path.join(srcDir, 'model.safetensors'));
  const out: Record<string, StTensorIn> = {};
  for (const key of st.keys()) {
    const v = st.f32(key);
    if (key.includes('qkv')) {
      const layer = key.split('.')[2];
      const dim = v.shape[0]! / 3, row = v.data.length / v.shape[0]!;
      ['query', 'key', 'value'].forEach((p, k) => {
        out[`vit.encoder.layer.${layer}.attention.attention.${p}.${key.endsWith('weight') ? 'weight' : 'bias'}`] =
          { dtype: 'F32', shape: [dim, ...v.shape.slice(1)], data: v.data.slice(k * dim * row, (k + 1) * dim * row) };
      });
    } else {
      out[renameKey(key)] = { dtype: 'F32', shape: v.shape, data: v.data };
    }
  }
  writeSafetensors(path.join(dst, 'model.safetensors'), out);
  writeFileSync(path.join(dst, 'config.json'), JSON.stringify({
    model_type: 'yolos', architectures: ['YolosForObjectDetection'], hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 4,
    intermediate_size: 256, hidden_act: 'gelu', layer_norm_eps: 1e-6, image_size: [64, 96], patch_size: 16, num_channels: 3, qkv_bias: true,
    num_detection_tokens: 10, use_mid_position_embeddings: false, id2label: { 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' },
  }));
  writeFileSync(path.join(dst, 'preprocessor_config.json'), JSON.stringify({ size: { shortest_edge: 64, longest_edge: 112 }, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225] }));
}

test('YOLOS, Hugging Face layout (converted here from the hustvl checkpoint by transformers\' key map): same outputs, labels and preprocessing', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-yolos-hf-'));
  try {
    convertToHf(DIR, dir);
    const { model, format, preprocess } = loadYolos(dir);
    assert.equal(format, 'hf');
    assert.deepEqual(model.config.labels, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(preprocess.shortestEdge, 64);
    assert.equal(preprocess.longestEdge, 112);
    const out = model.forward(t('pixel_values'));
    const eL = maxAbsDiff(out.logits.data, ref.f32('pred_logits').data), eB = maxAbsDiff(out.boxes.data, ref.f32('pred_boxes').data);
    assert.ok(eL <= 1e-4 && eB <= 1e-4, `HF layout: logits ${eL}, boxes ${eB}`);
    // a checkpoint whose position embedding does not fit its det tokens is one clear line
    const cfg = JSON.parse(JSON.stringify({ model_type: 'yolos', hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 4, intermediate_size: 256,
      layer_norm_eps: 1e-6, image_size: [64, 96], patch_size: 16, num_detection_tokens: 12, use_mid_position_embeddings: false, id2label: { 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' } }));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    assert.throws(() => loadYolos(dir), /position_embeddings has shape \(1, 35, 64\) but .*12 det tokens need \(1, 37, 64\)/);
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, num_detection_tokens: 10, use_mid_position_embeddings: true }));
    assert.throws(() => loadYolos(dir), /Expected a tensor named "vit\.encoder\.mid_position_embeddings"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
