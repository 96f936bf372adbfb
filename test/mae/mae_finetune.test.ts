/**
 * The MAE encoder as a classifier: `loadMaeEncoderAsVit` gives a timm VisionTransformer (avg pool +
 * fc_norm, MAE's fine-tuning model) whose blocks compute what the MAE encoder computes on all
 * patches (mask ratio 0, identity order: the reference MAE's own encoder output), and
 * `vitkit train --model <MAE dir> --num-classes 10` saves a checkpoint that loads as a timm ViT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, cliInProcess, maxAbsDiff, randn, tmp } from '../helpers.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadMae, loadMaeEncoderAsVit } from '../../src/mae/load.js';
import type { MaeCache } from '../../src/mae/model.js';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { vitParamSpecs } from '../../src/models/vit.js';
import { Tensor } from '../../src/tensor.js';

const DIR = path.join(FIXTURES, 'mae');
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));

test('the MAE encoder as a timm ViT = the MAE encoder on every patch (mask ratio 0)', () => {
  const mae = loadMae(DIR), vit = loadMaeEncoderAsVit(DIR, 10, 0);
  assert.equal(vit.config.global_pool, 'avg');
  assert.equal(vit.params.has('fc_norm.weight'), true);
  assert.equal(vit.params.has('norm.weight'), false);
  const x = ref.f32('pixel_values');
  const noise = new Float32Array(2 * 16).map((_, i) => i % 16); // ascending: the identity order
  const cache = {} as MaeCache;
  mae.forward(x.data, x.shape, { noise, maskRatio: 0, cache });
  const f = vit.forwardFeatures(new Tensor(x.shape, x.data)).features;
  const err = maxAbsDiff(f.data, cache.encOut);
  assert.ok(err <= 1e-5, `features vs MAE encoder: ${err}`);
});

test('vitkit train --model <MAE dir> --num-classes 10 fine-tunes the encoder and saves a timm VisionTransformer checkpoint', async () => {
  const data = path.join(tmp(), 'cls.safetensors');
  const n = 8;
  writeSafetensors(data, { x: { shape: [n, 3, 32, 32], data: randn(n * 3 * 32 * 32, 5) }, y: { shape: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)) } });
  const out = path.join(tmp(), 'ft');
  const r = await cliInProcess(['train', '--model', DIR, '--num-classes', '10', '--data', data, '--epochs', '1', '--batch-size', '4', '--layer-decay', '0.75', '--out', out, '--workers', '0']);
  assert.equal(r.code, 0, r.err);
  const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { architecture: string; num_classes: number; model_args: Record<string, unknown> };
  assert.equal(cfg.num_classes, 10);
  assert.equal(cfg.model_args['global_pool'], 'avg');
  assert.equal(cfg.model_args['embed_dim'], 64);
  // timm's VisionTransformer state_dict names and shapes, exactly
  const st = readSafetensors(path.join(out, 'model.safetensors'));
  const lm = loadModel(out);
  assert.equal(lm.format, 'timm');
  assert.deepEqual(st.keys().sort(), vitParamSpecs(lm.model.config).map((s) => s.name).sort());
  assert.deepEqual(st.f32('head.weight').shape, [10, 64]);
  // the encoder was trained from the MAE weights (moved, but close after 2 steps)
  const before = readSafetensors(path.join(DIR, 'model.safetensors')).f32('blocks.1.mlp.fc2.weight').data;
  const after = st.f32('blocks.1.mlp.fc2.weight').data;
  const d = maxAbsDiff(before, after);
  assert.ok(d > 0 && d < 0.05, `blocks.1.mlp.fc2.weight moved by ${d}`);
});
