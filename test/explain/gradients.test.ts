/**
 * dL/dA for gradient-weighted rollout, checked by central finite differences: a backend wrapper
 * adds ±eps to one attention probability of one block inside the forward (and recomputes that
 * block's attention output from the perturbed probabilities), and the class logit's change is
 * compared with the analytic gradient.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn } from '../helpers.js';
import { Tensor } from '../../src/tensor.js';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { resolveConfig, imgHW, type ViTConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { attentionGradients } from '../../src/explain/gradients.js';

function tinyModel(over: Partial<ViTConfig>, seed: number): VisionTransformer {
  const c = resolveConfig({ img_size: 12, patch_size: 4, in_chans: 3, num_classes: 4, embed_dim: 16, depth: 2, num_heads: 2, mlp_ratio: 2, ...over });
  const m = new VisionTransformer(c, undefined, reference);
  let s = seed;
  for (const spec of m.params.specs) {
    const v = m.params.get(spec.name);
    if (/norm\.weight$|norm\d\.weight$/.test(spec.name)) v.set(randn(v.length, s++, 0.2).map((x) => 1 + x));
    else if (spec.name.endsWith('.bias')) v.set(randn(v.length, s++, 0.1));
    else {
      const fanIn = spec.shape.length >= 2 ? spec.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
      v.set(randn(v.length, s++, spec.name.includes('qkv') ? 3 / Math.sqrt(fanIn) : 1.5 / Math.sqrt(fanIn)));
    }
  }
  return m;
}

/** The reference backend with one attention probability of block `block` moved by `eps`. */
function perturbed(depth: number, block: number, idx: number, eps: number): Backend {
  let call = 0;
  return {
    ...reference,
    attentionForward(out, probs, qkv, B, N, NH, HD, scale) {
      const p = probs ?? new Float32Array(B * NH * N * N);
      reference.attentionForward(out, p, qkv, B, N, NH, HD, scale);
      if (call++ % depth !== block) return;
      p[idx] = p[idx]! + eps;
      const D = NH * HD;
      for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let i = 0; i < N; i++) for (let e = 0; e < HD; e++) {
        let s = 0;
        for (let j = 0; j < N; j++) s += p[((b * NH + h) * N + i) * N + j]! * qkv[(b * N + j) * 3 * D + 2 * D + h * HD + e]!;
        out[(b * N + i) * D + h * HD + e] = s;
      }
    },
  };
}

async function checkFd(model: VisionTransformer, label: string) {
  const c = model.config;
  const x = new Tensor([2, 3, ...imgHW(c)], randn(2 * 3 * imgHW(c)[0] * imgHW(c)[1], 99));
  const k = 2;
  const g = await attentionGradients(model, x, k);
  assert.equal(g.grads.length, c.depth);
  const [B, NH, N] = g.grads[0]!.shape as [number, number, number, number];
  const logitSum = (be: Backend) => {
    model.backend = be;
    const l = model.forward(x);
    model.backend = reference;
    let s = 0;
    for (let b = 0; b < B; b++) s += l.data[b * c.num_classes + k]!;
    return s;
  };
  const eps = 1e-2;
  let worst = 0, scale = 0;
  for (let blk = 0; blk < c.depth; blk++) {
    const gd = g.grads[blk]!.data;
    // the largest-magnitude entry and a few spread-out ones, in both images and all heads
    let big = 0;
    for (let i = 1; i < gd.length; i++) if (Math.abs(gd[i]!) > Math.abs(gd[big]!)) big = i;
    const picks = [big, 0, N + 1, NH * N * N + 3 * N + 5, (B * NH * N * N) - 1, ((B - 1) * NH + NH - 1) * N * N + 2];
    for (const idx of picks) {
      const fd = (logitSum(perturbed(c.depth, blk, idx, eps)) - logitSum(perturbed(c.depth, blk, idx, -eps))) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - gd[idx]!));
      scale = Math.max(scale, Math.abs(gd[idx]!));
    }
  }
  assert.ok(scale > 1e-3, `${label}: gradients too small to test (${scale})`);
  assert.ok(worst <= 2e-3 * Math.max(1, scale), `${label}: max |fd - analytic| ${worst} (scale ${scale})`);
}

test('dL/dA matches finite differences (class token, token pooling)', async () => {
  await checkFd(tinyModel({}, 1), 'token');
});

test('dL/dA matches finite differences (no class token, average pooling with fc_norm, tanh GELU)', async () => {
  await checkFd(tinyModel({ class_token: false, global_pool: 'avg', act: 'gelu_tanh', depth: 3 }, 7), 'avg');
});
