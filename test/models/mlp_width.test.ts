/**
 * The MLP width is config's `dims().H` everywhere (issue 16): a Hugging Face checkpoint whose
 * intermediate width is not floor(hidden * ratio) must run with the width it was saved with.
 * The reference is a float64 forward written here from the raw HF weight arrays, following
 * transformers' ViTForImageClassification and Dinov2Model (SwiGLU) modules — no engine code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { dims } from '../../src/models/config.js';
import { randn, tmp } from '../helpers.js';

type W = Record<string, { shape: number[]; data: Float32Array }>;

/** y (n, out) = x (n, in) W^T + b, float64 */
function lin(x: Float64Array, n: number, w: { shape: number[]; data: Float32Array }, b: { data: Float32Array } | undefined): Float64Array {
  const [o, i] = w.shape as [number, number];
  const y = new Float64Array(n * o);
  for (let r = 0; r < n; r++) for (let j = 0; j < o; j++) {
    let s = b ? b.data[j]! : 0;
    for (let k = 0; k < i; k++) s += x[r * i + k]! * w.data[j * i + k]!;
    y[r * o + j] = s;
  }
  return y;
}
function layerNorm(x: Float64Array, n: number, d: number, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let m = 0; for (let k = 0; k < d; k++) m += x[r * d + k]!; m /= d;
    let v = 0; for (let k = 0; k < d; k++) v += (x[r * d + k]! - m) ** 2; v /= d;
    for (let k = 0; k < d; k++) y[r * d + k] = (x[r * d + k]! - m) / Math.sqrt(v + eps) * g[k]! + b[k]!;
  }
  return y;
}
/** erf by its Maclaurin series (|x| small here) continued by the asymptotic complement: float64-exact enough */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 5) return Math.sign(x);
  let s = 0, t = ax, k = 0;
  while (Math.abs(t) > 1e-17 * Math.abs(s) || k < 3) { s += t / (2 * k + 1); k++; t *= -ax * ax / k; if (k > 200) break; }
  return Math.sign(x) * 2 / Math.sqrt(Math.PI) * s;
}
const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const silu = (x: number) => x / (1 + Math.exp(-x));

interface RefCfg { D: number; NH: number; depth: number; P: number; img: number; eps: number; prefix: string; dino: boolean }

/** the token sequence after the final layernorm (N, D), HF semantics, float64 */
function hfForward(w: W, cfg: RefCfg, px: Float32Array): Float64Array {
  const { D, NH, P, img, eps, prefix: p } = cfg, g = img / P, NP = g * g, N = NP + 1, HD = D / NH;
  const x = new Float64Array(N * D);
  const cw = w[`${p}embeddings.patch_embeddings.projection.weight`]!, cb = w[`${p}embeddings.patch_embeddings.projection.bias`]!;
  const cls = w[`${p}embeddings.cls_token`]!, pos = w[`${p}embeddings.position_embeddings`]!;
  for (let k = 0; k < D; k++) x[k] = cls.data[k]! + pos.data[k]!;
  for (let gy = 0; gy < g; gy++) for (let gx = 0; gx < g; gx++) {
    const t = 1 + gy * g + gx;
    for (let o = 0; o < D; o++) {
      let s = cb.data[o]!;
      for (let c = 0; c < 3; c++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) {
        s += cw.data[((o * 3 + c) * P + i) * P + j]! * px[(c * img + gy * P + i) * img + gx * P + j]!;
      }
      x[t * D + o] = s + pos.data[t * D + o]!;
    }
  }
  for (let l = 0; l < cfg.depth; l++) {
    const h = `${p}encoder.layer.${l}.`;
    const n1 = cfg.dino ? 'norm1' : 'layernorm_before', n2 = cfg.dino ? 'norm2' : 'layernorm_after';
    const a = layerNorm(x, N, D, w[h + n1 + '.weight']!.data, w[h + n1 + '.bias']!.data, eps);
    const q = lin(a, N, w[h + 'attention.attention.query.weight']!, w[h + 'attention.attention.query.bias']);
    const k = lin(a, N, w[h + 'attention.attention.key.weight']!, w[h + 'attention.attention.key.bias']);
    const v = lin(a, N, w[h + 'attention.attention.value.weight']!, w[h + 'attention.attention.value.bias']);
    const ctx = new Float64Array(N * D);
    for (let hh = 0; hh < NH; hh++) for (let i = 0; i < N; i++) {
      const s = new Float64Array(N);
      let mx = -Infinity;
      for (let j = 0; j < N; j++) {
        let d = 0; for (let e = 0; e < HD; e++) d += q[i * D + hh * HD + e]! * k[j * D + hh * HD + e]!;
        s[j] = d / Math.sqrt(HD); mx = Math.max(mx, s[j]!);
      }
      let z = 0; for (let j = 0; j < N; j++) { s[j] = Math.exp(s[j]! - mx); z += s[j]!; }
      for (let e = 0; e < HD; e++) { let o = 0; for (let j = 0; j < N; j++) o += s[j]! / z * v[j * D + hh * HD + e]!; ctx[i * D + hh * HD + e] = o; }
    }
    const ao = lin(ctx, N, w[h + 'attention.output.dense.weight']!, w[h + 'attention.output.dense.bias']);
    const ls1 = cfg.dino ? w[h + 'layer_scale1.lambda1']!.data : null;
    for (let r = 0; r < N * D; r++) x[r] += ao[r]! * (ls1 ? ls1[r % D]! : 1);
    const b = layerNorm(x, N, D, w[h + n2 + '.weight']!.data, w[h + n2 + '.bias']!.data, eps);
    let m: Float64Array;
    if (cfg.dino) {
      const hin = lin(b, N, w[h + 'mlp.weights_in.weight']!, w[h + 'mlp.weights_in.bias']); // (N, 2Hs): [x1 | x2]
      const Hs = w[h + 'mlp.weights_in.weight']!.shape[0]! / 2;
      const act = new Float64Array(N * Hs);
      for (let r = 0; r < N; r++) for (let j = 0; j < Hs; j++) act[r * Hs + j] = silu(hin[r * 2 * Hs + j]!) * hin[r * 2 * Hs + Hs + j]!;
      m = lin(act, N, w[h + 'mlp.weights_out.weight']!, w[h + 'mlp.weights_out.bias']);
    } else {
      const f1 = lin(b, N, w[h + 'intermediate.dense.weight']!, w[h + 'intermediate.dense.bias']).map(gelu);
      m = lin(f1, N, w[h + 'output.dense.weight']!, w[h + 'output.dense.bias']);
    }
    const ls2 = cfg.dino ? w[h + 'layer_scale2.lambda1']!.data : null;
    for (let r = 0; r < N * D; r++) x[r] += m[r]! * (ls2 ? ls2[r % D]! : 1);
  }
  return layerNorm(x, N, D, w[`${p}layernorm.weight`]!.data, w[`${p}layernorm.bias`]!.data, eps);
}

function writeHf(dir: string, config: Record<string, unknown>, shapes: Record<string, number[]>, seed: number): W {
  mkdirSync(dir, { recursive: true });
  const w: W = {};
  let s = seed;
  for (const [k, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const ln = /(norm|layernorm)[^.]*\.weight$/.test(k);
    const data = randn(n, s++, ln ? 0.2 : 0.15);
    if (ln) for (let i = 0; i < n; i++) data[i] = 1 + data[i]!;
    w[k] = { shape, data };
  }
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(path.join(dir, 'model.safetensors'), w as Record<string, StTensorIn>);
  return w;
}

function layerShapes(h: string, D: number, fc: [string, number, number][], names: [string, string], ls: boolean): Record<string, number[]> {
  const out: Record<string, number[]> = {
    [`${h}${names[0]}.weight`]: [D], [`${h}${names[0]}.bias`]: [D],
    [`${h}attention.attention.query.weight`]: [D, D], [`${h}attention.attention.query.bias`]: [D],
    [`${h}attention.attention.key.weight`]: [D, D], [`${h}attention.attention.key.bias`]: [D],
    [`${h}attention.attention.value.weight`]: [D, D], [`${h}attention.attention.value.bias`]: [D],
    [`${h}attention.output.dense.weight`]: [D, D], [`${h}attention.output.dense.bias`]: [D],
    [`${h}${names[1]}.weight`]: [D], [`${h}${names[1]}.bias`]: [D],
  };
  for (const [n, o, i] of fc) { out[`${h}${n}.weight`] = [o, i]; out[`${h}${n}.bias`] = [o]; }
  if (ls) { out[`${h}layer_scale1.lambda1`] = [D]; out[`${h}layer_scale2.lambda1`] = [D]; }
  return out;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m;
}

test('HF ViT hidden 176 / intermediate 480: logits = a float64 HF forward (the MLP is 480 wide, not floor(176 * 480/176) = 479)', () => {
  const D = 176, I = 480, img = 32, P = 16, NP = 4, K = 3;
  assert.equal(Math.floor(D * (I / D)), 479); // the width the old code ran with
  const shapes: Record<string, number[]> = {
    'vit.embeddings.cls_token': [1, 1, D], 'vit.embeddings.position_embeddings': [1, NP + 1, D],
    'vit.embeddings.patch_embeddings.projection.weight': [D, 3, P, P], 'vit.embeddings.patch_embeddings.projection.bias': [D],
    ...layerShapes('vit.encoder.layer.0.', D, [['intermediate.dense', I, D], ['output.dense', D, I]], ['layernorm_before', 'layernorm_after'], false),
    'vit.layernorm.weight': [D], 'vit.layernorm.bias': [D], 'classifier.weight': [K, D], 'classifier.bias': [K],
  };
  const dir = path.join(tmp(), 'hf176');
  const w = writeHf(dir, {
    architectures: ['ViTForImageClassification'], model_type: 'vit', hidden_size: D, intermediate_size: I,
    num_hidden_layers: 1, num_attention_heads: 4, hidden_act: 'gelu', layer_norm_eps: 1e-12, image_size: img,
    patch_size: P, num_channels: 3, qkv_bias: true, id2label: { 0: 'a', 1: 'b', 2: 'c' },
  }, shapes, 100);
  const { model } = loadModel(dir);
  assert.equal(dims(model.config).H, 480);
  const px = randn(3 * img * img, 7);
  const seq = hfForward(w, { D, NH: 4, depth: 1, P, img, eps: 1e-12, prefix: 'vit.', dino: false }, px);
  const ref = lin(seq.subarray(0, D), 1, w['classifier.weight']!, w['classifier.bias']); // (1, K): the CLS token
  const logits = model.forward(new Tensor([1, 3, img, img], px)).data;
  const spread = Math.max(...ref) - Math.min(...ref);
  assert.ok(spread > 0.5, `reference logits spread ${spread}`); // a check that can fail
  const err = maxAbs(logits, ref);
  assert.ok(err < 1e-4, `logits ${Array.from(logits)} vs float64 HF ${Array.from(ref)}: max |diff| ${err}`);
});

test('HF Dinov2 SwiGLU (hidden 64: fc1 2 x 176, not floor(64 * 4) = 256): features = a float64 HF forward', () => {
  const D = 64, img = 32, P = 16, NP = 4;
  const Hs = (Math.floor(Math.floor(D * 4) * 2 / 3) + 7) >> 3 << 3; // transformers Dinov2SwiGLUFFN: 176
  assert.equal(Hs, 176);
  const shapes: Record<string, number[]> = {
    'embeddings.cls_token': [1, 1, D], 'embeddings.mask_token': [1, D], 'embeddings.position_embeddings': [1, NP + 1, D],
    'embeddings.patch_embeddings.projection.weight': [D, 3, P, P], 'embeddings.patch_embeddings.projection.bias': [D],
    ...layerShapes('encoder.layer.0.', D, [['mlp.weights_in', 2 * Hs, D], ['mlp.weights_out', D, Hs]], ['norm1', 'norm2'], true),
    ...layerShapes('encoder.layer.1.', D, [['mlp.weights_in', 2 * Hs, D], ['mlp.weights_out', D, Hs]], ['norm1', 'norm2'], true),
    'layernorm.weight': [D], 'layernorm.bias': [D],
  };
  const dir = path.join(tmp(), 'dino_swiglu');
  const w = writeHf(dir, {
    architectures: ['Dinov2Model'], model_type: 'dinov2', hidden_size: D, num_hidden_layers: 2, num_attention_heads: 4,
    mlp_ratio: 4, use_swiglu_ffn: true, hidden_act: 'gelu', layer_norm_eps: 1e-6, image_size: img, patch_size: P,
    num_channels: 3, qkv_bias: true, layerscale_value: 1,
  }, shapes, 300);
  const { model } = loadModel(dir);
  const d = dims(model.config);
  assert.deepEqual([d.H, d.Hact], [2 * Hs, Hs]);
  assert.notEqual(d.H, Math.floor(D * model.config.mlp_ratio));
  const px = randn(3 * img * img, 9);
  const seq = hfForward(w, { D, NH: 4, depth: 2, P, img, eps: 1e-6, prefix: '', dino: true }, px);
  const ref = seq.subarray(0, D); // Dinov2Model pooler_output: the CLS token after layernorm
  const feats = model.forward(new Tensor([1, 3, img, img], px)).data;
  assert.equal(feats.length, D);
  const err = maxAbs(feats, ref);
  assert.ok(err < 1e-4, `max |features - float64 HF| ${err}`);
});
