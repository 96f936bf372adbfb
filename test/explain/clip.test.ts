/**
 * Explaining a CLIP image tower toward a text prompt (src/explain/clip.ts):
 *  - the gradient fed into the image tower, dscore/dimage_embeds, equals central finite
 *    differences of score = exp(logit_scale) * cos(image, t) (float64);
 *  - dscore/dA of every block of the open_clip reference model's image tower equals finite
 *    differences of the score with one attention probability moved inside the forward (the
 *    gradient has come back through visual.proj, ln_post and the blocks after it);
 *  - on a constructed tower (red patches -> embedding axis 0, blue -> axis 1, one uniform-attention
 *    mixing block) the map toward axis 0 lies on the red half and the map toward axis 1 on the
 *    blue half, while plain attention rollout cannot tell them apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randn, REFS } from '../helpers.js';
import { Tensor } from '../../src/tensor.js';
import { reference } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { loadClip } from '../../src/clip/load.js';
import { normalizeRows } from '../../src/models/clip/model.js';
import { dims } from '../../src/models/config.js';
import { attentionRollout, gradientRollout, patchMap } from '../../src/explain/rollout.js';
import { clipAttentionGradients, similarityScoreGrad, textTargets } from '../../src/explain/clip.js';
import { CLIP_DIR, skipClip } from '../clip/common.js';

test('dscore/dimage_embeds = finite differences of exp(s) * cos(image, t)', () => {
  const B = 3, E = 7, scale = 14.3;
  const img = randn(B * E, 5);
  const t = normalizeRows(new Tensor([1, E], randn(E, 6))).data;
  const { grad, score, cosine } = similarityScoreGrad(img, B, E, t, scale);
  const f = (v: Float64Array, b: number) => {
    let n = 0, d = 0;
    for (let e = 0; e < E; e++) { n += v[b * E + e]! ** 2; d += v[b * E + e]! * t[e]!; }
    return (scale * d) / Math.sqrt(n);
  };
  const x = Float64Array.from(img);
  for (let b = 0; b < B; b++) {
    assert.ok(Math.abs(score[b]! - f(x, b)) < 1e-5, `score ${b}`);
    assert.ok(Math.abs(score[b]! - scale * cosine[b]!) < 1e-9);
    for (let e = 0; e < E; e++) {
      const h = 1e-5, k = b * E + e, v0 = x[k]!;
      x[k] = v0 + h; const up = f(x, b);
      x[k] = v0 - h; const dn = f(x, b);
      x[k] = v0;
      const fd = (up - dn) / (2 * h);
      assert.ok(Math.abs(fd - grad[k]!) < 1e-5 * Math.max(1, Math.abs(fd)), `d score / d image[${b}, ${e}]: ${grad[k]} vs fd ${fd}`);
    }
  }
});

/** The reference backend with one attention probability of block `block` (of `depth`) moved by `eps`. */
function perturbed(depth: number, block: number, idx: number, eps: number): Backend {
  let call = 0;
  return {
    ...reference,
    attentionForward(out, probs, qkv, B, N, NH, HD, scale, ...rest) {
      const p = probs ?? new Float32Array(B * NH * N * N);
      reference.attentionForward(out, p, qkv, B, N, NH, HD, scale, ...rest);
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

test('dscore/dA of every image-tower block matches finite differences of the similarity logit (open_clip reference model)', { skip: skipClip }, async () => {
  const clip = loadClip(CLIP_DIR, { backend: reference });
  const m = clip.model;
  const [t] = textTargets(clip, ['a photo of a cat']);
  const { height: H, width: W } = clip.preprocess;
  const x = new Tensor([1, 3, H, W], randn(3 * H * W, 11));
  const g = await clipAttentionGradients(m, x, t!.embedding);
  const depth = m.visual.config.depth;
  assert.equal(g.grads.length, depth);
  const score = (be: Backend) => {
    m.backend = be;
    try {
      const e = m.encodeImage(x);
      return similarityScoreGrad(e.data, 1, m.config.embed_dim, t!.embedding, Math.exp(m.logitScale)).score[0]!;
    } finally { m.backend = reference; }
  };
  assert.ok(Math.abs(score(reference) - g.score[0]!) < 1e-6, 'the explained score is the forward score');
  const [, NH, N] = g.grads[0]!.shape as [number, number, number, number];
  const eps = 1e-2;
  let worst = 0, scale = 0, checked = 0;
  for (let blk = 0; blk < depth; blk++) {
    const gd = g.grads[blk]!.data;
    let big = 0;
    for (let i = 1; i < gd.length; i++) if (Math.abs(gd[i]!) > Math.abs(gd[big]!)) big = i;
    // the largest entry, the class token's row (what the map reads) and entries of other rows and heads
    for (const idx of [big, 1, 5, N - 1, N + 2, (NH - 1) * N * N + 3, NH * N * N - 1]) {
      const fd = (score(perturbed(depth, blk, idx, eps)) - score(perturbed(depth, blk, idx, -eps))) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - gd[idx]!));
      scale = Math.max(scale, Math.abs(gd[idx]!));
      checked++;
    }
  }
  assert.ok(scale > 1e-2, `gradients too small to test (${scale})`);
  assert.ok(worst <= 2e-3 * Math.max(1, scale), `max |fd - analytic| ${worst} over ${checked} entries (scale ${scale})`);
});

test('constructed tower: the map toward "red" lies on the red patches, toward "blue" on the blue ones; plain rollout is the same for both', { skip: skipClip }, async () => {
  const clip = loadClip(CLIP_DIR, { backend: reference });
  const m = clip.model, p = m.params;
  const Wv = m.config.vision.width, E = m.config.embed_dim, P = m.config.vision.patch_size;
  const ls = m.logitScale;
  p.buffer.fill(0);
  for (const n of p.names()) if (/^visual\..*ln_[a-z0-9]+\.weight$/.test(n)) p.get(n).fill(1);
  p.get('logit_scale')[0] = ls;
  // conv1 (Wv, 3, P, P): channel R -> axis 0, channel B -> axis 1 (patch means)
  const conv = p.get('visual.conv1.weight');
  for (let k = 0; k < P * P; k++) { conv[(0 * 3 + 0) * P * P + k] = 1 / (P * P); conv[(1 * 3 + 2) * P * P + k] = 1 / (P * P); }
  // the last block mixes: q = k = 0 (uniform attention), v = I, out_proj = I, no MLP; the others do nothing
  const last = m.visual.config.depth - 1;
  const ipw = p.get(`visual.transformer.resblocks.${last}.attn.in_proj_weight`); // (3 Wv, Wv)
  const opw = p.get(`visual.transformer.resblocks.${last}.attn.out_proj.weight`); // (Wv, Wv)
  for (let i = 0; i < Wv; i++) { ipw[(2 * Wv + i) * Wv + i] = 1; opw[i * Wv + i] = 1; }
  const proj = p.get('visual.proj'); // (Wv, E)
  proj[0 * E + 0] = 1; proj[1 * E + 1] = 1;
  const { height: H, width: W } = clip.preprocess;
  const x = new Float32Array(3 * H * W); // (1, 3, H, W): red left half, blue right half
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) { if (c < W / 2) x[r * W + c] = 1; else x[2 * H * W + r * W + c] = 1; }
  const px = new Tensor([1, 3, H, W], x);
  const d = dims(m.visual.config);
  const axis = (k: number) => { const t = new Float32Array(E); t[k] = 1; return t; };
  const mapFor = async (t: Float32Array) => {
    const g = await clipAttentionGradients(m, px, t);
    return { map: patchMap(gradientRollout(g.attentions, g.grads, { numPrefix: 1 }).data, 0, d.N, 1), g };
  };
  const red = await mapFor(axis(0)), blue = await mapFor(axis(1));
  const left = (j: number) => j % d.gridW < d.gridW / 2;
  const sums = (map: Float32Array) => {
    let l = 0, r = 0;
    for (let j = 0; j < map.length; j++) if (left(j)) l += map[j]!; else r += map[j]!;
    return [l, r] as const;
  };
  const [rl, rr] = sums(red.map), [bl, br] = sums(blue.map);
  assert.ok(rl > 0.05 && rr === 0, `toward red: red half ${rl}, blue half ${rr}`);
  assert.ok(br > 0.05 && bl === 0, `toward blue: red half ${bl}, blue half ${br}`);
  assert.ok(Math.abs(red.g.cosine[0]! - Math.SQRT1_2) < 1e-4 && Math.abs(blue.g.cosine[0]! - Math.SQRT1_2) < 1e-4, 'a half-red half-blue image is equally similar to both');
  // plain attention rollout does not depend on the prompt: uniform over the patches here
  const plain = patchMap(attentionRollout(red.g.attentions, { numPrefix: 1 }).data, 0, d.N, 1);
  const [pl, pr] = sums(plain);
  assert.ok(Math.abs(pl - pr) < 1e-6, `plain rollout ${pl} vs ${pr}`);
});

test('textTargets: templates make the prompt ensemble (normalised mean of the filled templates); a template without {} is refused', { skip: skipClip }, async () => {
  const clip = loadClip(CLIP_DIR);
  const [one] = textTargets(clip, ['cat']);
  assert.deepEqual(one!.prompts, ['cat']);
  const [ens] = textTargets(clip, ['cat'], ['a photo of a {}.', 'a drawing of a {}']);
  assert.deepEqual(ens!.prompts, ['a photo of a cat.', 'a drawing of a cat']);
  const [a] = textTargets(clip, ['a photo of a cat.']), [b] = textTargets(clip, ['a drawing of a cat']);
  const E = clip.model.config.embed_dim;
  let n = 0;
  const mean = Array.from({ length: E }, (_, e) => (a!.embedding[e]! + b!.embedding[e]!) / 2);
  for (const v of mean) n += v * v;
  for (let e = 0; e < E; e++) assert.ok(Math.abs(ens!.embedding[e]! - mean[e]! / Math.sqrt(n)) < 1e-6);
  assert.throws(() => textTargets(clip, ['cat'], ['a photo']), /Expected --template with \{\} where the text goes but received "a photo"/);
});

test('the public API: explainClipImages(dir, files, texts) gives [image][prompt] maps on the patch grid', { skip: skipClip }, async () => {
  const vk = await import('../../src/index.js');
  const files = [path.join(REFS, 'images', 'chelsea.png'), path.join(REFS, 'images', 'coffee.png')];
  const r = await vk.explainClipImages(CLIP_DIR, files, ['a cat', 'a cup of coffee', 'a diagram']);
  assert.equal(r.length, 2);
  for (const per of r) {
    assert.deepEqual(per.map((e) => e.text), ['a cat', 'a cup of coffee', 'a diagram']);
    for (const e of per) {
      assert.deepEqual(e.grid, [4, 4]);
      assert.equal(e.rollout.length, 16);
      assert.ok(e.rollout.every((v) => v >= 0 && v <= 1));
      assert.ok(e.similarity >= -1 && e.similarity <= 1);
    }
  }
  assert.ok(r[0]![0]!.rollout.some((v, j) => v !== r[0]![2]!.rollout[j]), 'prompts gave the same map');
});
