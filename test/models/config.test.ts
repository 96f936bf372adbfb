/** resolveConfig: timm's defaults for the family fields and one clear error per bad value. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, dims, imgHW, tokenLayout, DEFAULT_CONFIG } from '../../src/models/config.js';
import { VitkitError } from '../../src/errors.js';
import { vitParamSpecs } from '../../src/models/vit.js';

test('family fields default as timm: no LayerScale, no registers, class token with pos_embed, static size', () => {
  const c = resolveConfig({});
  assert.equal(c.init_values, null);
  assert.equal(c.reg_tokens, 0);
  assert.equal(c.no_embed_class, false);
  assert.equal(c.dynamic_img_size, false);
  assert.equal(c.pre_norm, false);
  assert.equal(c.distilled, false);
  assert.equal(c.mlp_layer, 'mlp');
  assert.equal(c.mlp_hidden, null);
  assert.equal(c.pos_embed_antialias, true);
  assert.equal(c.det_tokens, 0);
  assert.deepEqual(Object.keys(DEFAULT_CONFIG).length, 25);
});

test('bad family values are one-line errors naming the field, expected and received', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ img_size: [224] }, /positive integer or \[height, width\].*config\.img_size but received \[224\]/],
    [{ img_size: [224, 200] }, /img_size \(\[224, 200\]\) must be a multiple of patch_size \(16\) on both sides/],
    [{ init_values: 'small' }, /a number or null for config\.init_values but received "small"/],
    [{ reg_tokens: -1 }, /an integer >= 0 for config\.reg_tokens but received -1/],
    [{ no_embed_class: 1 }, /a boolean for config\.no_embed_class/],
    [{ dynamic_img_size: 'yes' }, /a boolean for config\.dynamic_img_size/],
    [{ pre_norm: null }, /a boolean for config\.pre_norm/],
    [{ act: 'relu' }, /one of "gelu", "gelu_tanh", "quick_gelu", "silu" for config\.act but received "relu"/],
    [{ global_pool: 'max' }, /one of "token", "avg", "map", "" for config\.global_pool/],
    [{ mlp_layer: 'swiglu' }, /one of "mlp", "swiglu_packed" for config\.mlp_layer/],
    [{ distilled: true, class_token: false, global_pool: 'avg' }, /distilled needs class_token true and global_pool 'token'/],
    [{ distilled: true, reg_tokens: 4 }, /distilled does not combine with reg_tokens/],
    [{ mlp_layer: 'swiglu_packed', embed_dim: 12, num_heads: 3, mlp_ratio: 1.25 }, /needs an even hidden width.*15/],
    [{ class_token: false }, /global_pool 'token' needs class_token true/],
  ];
  for (const [over, re] of bad) {
    assert.throws(() => resolveConfig(over), (e: unknown) => e instanceof VitkitError && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(over));
  }
});

test('token layout: [cls, dist | reg..., patches] on a non-square grid; pos_embed rows follow no_embed_class', () => {
  const c = resolveConfig({ img_size: [28, 42], patch_size: 14, reg_tokens: 4, no_embed_class: true, embed_dim: 12, num_heads: 3 });
  assert.deepEqual(imgHW(c), [28, 42]);
  const t = tokenLayout(c);
  assert.deepEqual([t.gridH, t.gridW, t.numPatches, t.numPrefix, t.N], [2, 3, 6, 5, 11]);
  const d = dims(c);
  assert.equal(d.posLen, 6);
  const specs = vitParamSpecs(c);
  assert.deepEqual(specs.find((s) => s.name === 'pos_embed')!.shape, [1, 6, 12]);
  assert.deepEqual(specs.find((s) => s.name === 'reg_token')!.shape, [1, 4, 12]);
  const deit = resolveConfig({ distilled: true, embed_dim: 12, num_heads: 3, img_size: 32 });
  assert.deepEqual(vitParamSpecs(deit).slice(0, 3).map((s) => s.name), ['cls_token', 'pos_embed', 'dist_token']);
  assert.deepEqual(vitParamSpecs(deit).find((s) => s.name === 'pos_embed')!.shape, [1, 2 + 4, 12]);
  assert.deepEqual(vitParamSpecs(deit).slice(-2).map((s) => s.name), ['head_dist.weight', 'head_dist.bias']);
  const glu = resolveConfig({ mlp_layer: 'swiglu_packed', embed_dim: 12, num_heads: 3, mlp_ratio: 2, img_size: 32 });
  assert.deepEqual(vitParamSpecs(glu).find((s) => s.name === 'blocks.0.mlp.fc2.weight')!.shape, [12, 12]);
});

test("SwiGLUPacked gates the second half with act of the first (timm GluMlp, gate_last false)", async () => {
  const { VisionTransformer } = await import('../../src/models/vit.js');
  const { getBackend } = await import('../../src/backend/index.js');
  const { Tensor } = await import('../../src/tensor.js');
  const { actScalar } = await import('../../src/backend/reference.js');
  const c = resolveConfig({ img_size: 4, patch_size: 2, in_chans: 1, num_classes: 0, embed_dim: 4, depth: 1, num_heads: 1, mlp_ratio: 1, mlp_layer: 'swiglu_packed', act: 'silu', class_token: false, global_pool: 'avg' });
  const m = new VisionTransformer(c, undefined, getBackend('reference'));
  const set = (n: string, f: (i: number) => number) => { const v = m.params.get(n); for (let i = 0; i < v.length; i++) v[i] = f(i); };
  for (const n of m.params.names()) set(n, () => 0);
  set('patch_embed.proj.weight', (i) => ((i * 7) % 5) / 5 - 0.4); // (4, 1, 2, 2)
  for (const n of ['blocks.0.norm1.weight', 'blocks.0.norm2.weight', 'fc_norm.weight']) set(n, () => 1);
  set('blocks.0.mlp.fc1.weight', (i) => ((i * 3) % 7) / 7 - 0.5); // (4, 4): rows 0-1 -> x1, rows 2-3 -> x2
  set('blocks.0.mlp.fc2.weight', (i) => ((i * 5) % 3) / 3 - 0.3); // (4, 2)
  const x = new Tensor([1, 1, 4, 4], Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)));
  const got = m.forwardFeatures(x, { hiddenStates: true }).hiddenStates!;
  // by hand: attention branch is zero (proj 0), so out = x + fc2(silu(x1) * x2) with [x1, x2] = fc1(LN(x))
  const inp = got[0]!.data, outp = got[1]!.data;
  const W1 = m.params.get('blocks.0.mlp.fc1.weight'), W2 = m.params.get('blocks.0.mlp.fc2.weight');
  for (let t = 0; t < 4; t++) {
    const row = Array.from(inp.subarray(t * 4, t * 4 + 4));
    const mean = row.reduce((a, b) => a + b, 0) / 4;
    const vr = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
    const ln = row.map((v) => (v - mean) / Math.sqrt(vr + c.layer_norm_eps));
    const h = [0, 1, 2, 3].map((j) => ln.reduce((s, v, k) => s + v * W1[j * 4 + k]!, 0));
    const g = [0, 1].map((j) => actScalar(h[j]!, 3) * h[j + 2]!);
    for (let o = 0; o < 4; o++) {
      const want = row[o]! + g[0]! * W2[o * 2]! + g[1]! * W2[o * 2 + 1]!;
      assert.ok(Math.abs(outp[t * 4 + o]! - want) < 1e-5, `token ${t} dim ${o}: ${outp[t * 4 + o]} vs ${want}`);
    }
  }
});
