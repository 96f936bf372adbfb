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
  assert.deepEqual(Object.keys(DEFAULT_CONFIG).length, 22);
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
