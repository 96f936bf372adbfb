/**
 * The timm_train_tiny case (test/fixtures/train_tiny, a copy of shared/refs/timm_train_tiny made by
 * PyTorch) and its checks with the refs README's tolerances, shared by the host parity test and
 * the device (WebGPU) one: step-1 gradients of every parameter, and parameters after 3 AdamW steps.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, maxAbs } from '../helpers.js';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import type { TrainerOptions } from '../../src/train/trainer.js';

export const TRAIN_TINY_DIR = path.join(FIXTURES, 'train_tiny');
const present = ['model.safetensors', 'ref.safetensors', 'spec.json'].every((f) => existsSync(path.join(TRAIN_TINY_DIR, f)));
export const TRAIN_TINY_SKIP = present ? false : `needs ${TRAIN_TINY_DIR}/{model,ref}.safetensors and spec.json (copy of shared/refs/timm_train_tiny)`;

import { checkAfter3Tensor, newAfter3 } from '../after3_rule.js';

/** tolerances from shared/refs/README.md (timm_train_tiny) */
export const GRAD_REL = 1e-4;      // x max|ref grad| of the tensor
export const KEY_BIAS_ABS = 1e-6;  // key part of qkv.bias: exactly 0 in exact arithmetic
export const AFTER3_ABS = 1e-5;
/**
 * Like the key part of qkv.bias, an element whose step-1 reference gradient is at float32
 * rounding-noise level (|g| <= NOISE_REL x max|g| of its tensor; ~1e-8 relative here) gets AdamW
 * steps that are driven by that noise (m / (sqrt(v) + eps) with |g| ~ eps), up to lr each: its
 * `after3` value is checked only against that bound (3 steps x lr, plus slack), not 1e-5.
 * The fixture has exactly one such element (blocks.0.mlp.fc1.weight[766], g = 2.1e-9); the test
 * fails if more than MAX_NOISE_ELEMS appear.
 */
export const NOISE_REL = 1e-7;
export const MAX_NOISE_ELEMS = 4;

/** the reference run's optimizer settings (spec.json: timm's AdamW, constant lr) */
export const TRAIN_TINY_OPTS: TrainerOptions = {
  lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'constant',
};

export function setupTrainTiny(backend: Backend) {
  const spec = JSON.parse(readFileSync(path.join(TRAIN_TINY_DIR, 'spec.json'), 'utf8')) as { model: Record<string, unknown> };
  const { gelu, ...m } = spec.model;
  assert.equal(gelu, 'erf');
  const config = resolveConfig({ ...m, act: 'gelu', pos_embed: 'learn', fc_norm: null }, 'spec.json');
  const model = new VisionTransformer(config, undefined, backend);
  const st = readSafetensors(path.join(TRAIN_TINY_DIR, 'model.safetensors'));
  assert.deepEqual([...st.keys()].sort(), model.params.names().sort());
  for (const name of model.params.names()) {
    const t = st.f32(name);
    model.params.set(name, t.shape, t.data);
  }
  const ref = readSafetensors(path.join(TRAIN_TINY_DIR, 'ref.safetensors'));
  const xt = ref.f32('x');
  const x = new Tensor(xt.shape, xt.data);
  const y = Int32Array.from(ref.i64('y').data, (v) => Number(v));
  return { model, ref, x, y, D: config.embed_dim };
}

/** indices of the key part (D..2D-1) of a qkv.bias */
const isKeyBias = (name: string, i: number, D: number) => name.endsWith('attn.qkv.bias') && i >= D && i < 2 * D;

/** every parameter's step-1 gradient within GRAD_REL x its tensor's max; returns a summary line */
export function checkStep1Grads(names: readonly string[], grad: (name: string) => Float32Array, ref: SafetensorsFile, D: number): string {
  let worst = { name: '', rel: 0 };
  let keyBiasMax = 0;
  for (const name of names) {
    const g = grad(name), r = ref.f32(`grad.${name}`).data;
    const scale = maxAbs(r);
    let err = 0;
    for (let i = 0; i < r.length; i++) {
      const e = Math.abs(g[i]! - r[i]!);
      if (isKeyBias(name, i, D)) { keyBiasMax = Math.max(keyBiasMax, e); continue; }
      err = Math.max(err, e);
    }
    const rel = err / scale;
    if (rel > worst.rel) worst = { name, rel };
    assert.ok(err <= GRAD_REL * scale, `grad.${name}: max abs error ${err} > ${GRAD_REL} x ${scale}`);
  }
  assert.ok(keyBiasMax <= KEY_BIAS_ABS, `key part of qkv.bias: max abs error ${keyBiasMax} > ${KEY_BIAS_ABS}`);
  return `worst grad ${worst.name} ${worst.rel.toExponential(2)} x max|ref|, key-bias abs err ${keyBiasMax.toExponential(2)}`;
}

/** the losses before each of 3 steps within 1e-5, and every parameter after them within AFTER3_ABS; returns a summary line */
export function checkAfter3(names: readonly string[], param: (name: string) => Float32Array, losses: number[], ref: SafetensorsFile, D: number): string {
  const refLosses = ref.f32('losses').data;
  for (let s = 0; s < 3; s++) {
    assert.ok(Math.abs(losses[s]! - refLosses[s]!) <= 1e-5, `loss before step ${s + 1}: ${losses[s]} vs ${refLosses[s]}`);
  }
  // the refs README's after-3 rule (test/after3_rule.ts), every element (the key part of qkv.bias is noise there)
  const acc = newAfter3();
  let keyBias = 0;
  for (const name of names) {
    const r = ref.f32(`after3.${name}`).data;
    checkAfter3Tensor(acc, name, param(name), r, ref.f32(`grad.${name}`).data, TRAIN_TINY_OPTS.lr!, TRAIN_TINY_OPTS.eps!);
    if (name.endsWith('attn.qkv.bias')) keyBias += D;
  }
  assert.deepEqual(acc.failures, []);
  // noise elements: the key part of every qkv.bias (at most) plus a few (the fixture has one)
  assert.ok(acc.noise <= keyBias + MAX_NOISE_ELEMS, `too many noise-level gradients: ${acc.noise}`);
  return `losses ${losses.map((l) => l.toFixed(7)).join(', ')} vs ${[...refLosses].map((l) => l.toFixed(7)).join(', ')}; ` +
    `worst after3 ${acc.worst.toExponential(2)} (bound ${acc.worstBound.toExponential(2)}); ${acc.noise} noise-level elements`;
}

/** the timm_train_tiny model as a checkpoint directory: config.json naming the architecture with the small model's model_args */
export function writeTinyCheckpoint(dir: string, src = TRAIN_TINY_DIR): void {
  const spec = JSON.parse(readFileSync(path.join(src, 'spec.json'), 'utf8')) as { model: Record<string, unknown> };
  const m = spec.model;
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(src, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architecture: 'vit_tiny_patch16_224', num_classes: m['num_classes'], global_pool: m['global_pool'],
    model_args: {
      img_size: m['img_size'], patch_size: m['patch_size'], in_chans: m['in_chans'], embed_dim: m['embed_dim'], depth: m['depth'],
      num_heads: m['num_heads'], mlp_ratio: m['mlp_ratio'], qkv_bias: m['qkv_bias'], class_token: m['class_token'], layer_norm_eps: m['layer_norm_eps'],
    },
    pretrained_cfg: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 1, interpolation: 'bicubic' },
  }));
}

/** the reference batch (x, y) as a tensor file for `--data` */
export function writeTinyBatch(file: string, src = TRAIN_TINY_DIR): { x: Float32Array; y: BigInt64Array } {
  const ref = readSafetensors(path.join(src, 'ref.safetensors'));
  const x = ref.f32('x'), y = ref.i64('y');
  writeSafetensors(file, { x: { shape: x.shape, data: x.data }, y: { shape: y.shape, data: y.data } });
  return { x: x.data, y: y.data };
}
