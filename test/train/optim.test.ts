/**
 * AdamW against a hand-computed update (torch.optim.AdamW's formula written out in double),
 * timm's parameter groups and layer decay, gradient clipping, EMA, and state round trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParamTable } from '../../src/nn/params.js';
import { AdamW, clipGradNorm, ModelEma, paramGroups, layerId } from '../../src/train/optim.js';
import { vitParamSpecs } from '../../src/models/vit.js';
import { resolveConfig } from '../../src/models/config.js';
import { VitkitError } from '../../src/errors.js';

const close = (a: number, b: number, tol = 1e-7) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function table(): ParamTable {
  const t = new ParamTable([{ name: 'w', shape: [1, 2] }, { name: 'b', shape: [1] }, { name: 'pos_embed', shape: [1, 1, 1] }]);
  t.buffer.set([1.0, -2.0, 0.5, 0.25]);
  return t;
}

test('AdamW: two steps equal the hand-computed torch.optim.AdamW update', () => {
  const p = table(), g = p.like();
  const lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const opt = new AdamW(p, { lr, weightDecay: wd, betas: [b1, b2], eps });
  const grads = [[0.1, -0.3, 0.2, -0.05], [-0.2, -0.1, 0.4, 0.0]];
  // by hand: only 'w' (ndim 2, not in the no-decay list) decays
  const decays = [true, true, false, false];
  const want = [1.0, -2.0, 0.5, 0.25];
  const m = [0, 0, 0, 0], v = [0, 0, 0, 0];
  for (let t = 1; t <= 2; t++) {
    const gt = grads[t - 1]!;
    for (let i = 0; i < 4; i++) {
      if (decays[i]) want[i] = want[i]! * (1 - lr * wd);
      m[i] = b1 * m[i]! + (1 - b1) * gt[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * gt[i]! ** 2;
      const mhat = m[i]! / (1 - b1 ** t), vhat = v[i]! / (1 - b2 ** t);
      want[i] = want[i]! - lr * mhat / (Math.sqrt(vhat) + eps);
    }
    g.buffer.set(gt);
    opt.step(g);
    for (let i = 0; i < 4; i++) close(p.buffer[i]!, want[i]!);
  }
  // step 1 by inspection: m_hat = g, v_hat = g^2 -> p = p (1 - lr wd) - lr * sign(g)
  assert.equal(opt.stepCount, 2);
});

test('AdamW first step by inspection: p(1 - lr wd) - lr sign(g)', () => {
  const p = table(), g = p.like();
  g.buffer.set([0.1, -0.3, 0.2, 0]);
  new AdamW(p, { lr: 0.01, weightDecay: 0.1 }).step(g);
  close(p.buffer[0]!, 1.0 * 0.999 - 0.01, 1e-6);
  close(p.buffer[1]!, -2.0 * 0.999 + 0.01, 1e-6);
  close(p.buffer[2]!, 0.5 - 0.01, 1e-6);
  close(p.buffer[3]!, 0.25); // zero gradient, no decay: unchanged
});

test('parameter groups: timm no-decay rules and layer-wise lr decay', () => {
  const c = resolveConfig({ img_size: 8, patch_size: 4, embed_dim: 12, num_heads: 3, depth: 2, mlp_ratio: 2, num_classes: 5 });
  const t = new ParamTable(vitParamSpecs(c));
  const segs = new Map(paramGroups(t, { weightDecay: 0.05, layerDecay: 0.5 }).map((s) => [s.name, s]));
  const decayed = [...segs.values()].filter((s) => s.weightDecay > 0).map((s) => s.name).sort();
  assert.deepEqual(decayed, ['blocks.0.attn.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc2.weight',
    'blocks.1.attn.proj.weight', 'blocks.1.attn.qkv.weight', 'blocks.1.mlp.fc1.weight', 'blocks.1.mlp.fc2.weight',
    'head.weight', 'patch_embed.proj.weight']);
  // scale = decay^(layer_max - layer_id): stem 0, blocks.i -> i + 1, norm -> depth (timm merges it into
  // the last block's group), head -> depth + 1 = layer_max
  close(segs.get('cls_token')!.lrScale, 0.125);
  close(segs.get('pos_embed')!.lrScale, 0.125);
  close(segs.get('patch_embed.proj.bias')!.lrScale, 0.125);
  close(segs.get('blocks.0.norm1.weight')!.lrScale, 0.25);
  close(segs.get('blocks.1.mlp.fc2.weight')!.lrScale, 0.5);
  close(segs.get('norm.weight')!.lrScale, 0.5);
  close(segs.get('head.bias')!.lrScale, 1);
  assert.equal(layerId('blocks.11.attn.qkv.weight', 12), 12);
  assert.equal(layerId('fc_norm.weight', 12), 13);
  assert.equal(layerId('norm.bias', 12), 12);
  // without a head the largest id present is the last block's (with norm): scales shift up
  const headless = new ParamTable(vitParamSpecs(resolveConfig({ ...c, num_classes: 0 })));
  const hs = new Map(paramGroups(headless, { weightDecay: 0, layerDecay: 0.5 }).map((s) => [s.name, s]));
  close(hs.get('norm.weight')!.lrScale, 1);
  close(hs.get('blocks.1.norm1.weight')!.lrScale, 1);
  close(hs.get('cls_token')!.lrScale, 0.25);
  // the offsets tile the buffer
  let off = 0;
  for (const s of paramGroups(t, { weightDecay: 0 })) { assert.equal(s.offset, off); off += s.length; }
  assert.equal(off, t.count);
});

test('layer decay scales the step (and the decoupled decay) by lrScale', () => {
  const t = new ParamTable([{ name: 'cls_token', shape: [1, 1, 1] }, { name: 'blocks.0.w', shape: [1, 1] }, { name: 'head.weight', shape: [1, 1] }]);
  t.buffer.set([1, 1, 1]);
  const g = t.like();
  g.buffer.set([1, 1, 1]);
  new AdamW(t, { lr: 0.1, weightDecay: 0.5, layerDecay: 0.5 }).step(g);
  // depth 1: cls_token 0.25, blocks.0 0.5, head 1; cls_token does not decay
  close(t.buffer[0]!, 1 - 0.025, 1e-6);
  close(t.buffer[1]!, 1 * (1 - 0.05 * 0.5) - 0.05, 1e-6);
  close(t.buffer[2]!, 1 * (1 - 0.1 * 0.5) - 0.1, 1e-6);
});

test('AdamW state round trip resumes exactly', () => {
  const a = table(), b = table();
  const oa = new AdamW(a, { lr: 0.01, weightDecay: 0.1 });
  const g = a.like();
  g.buffer.set([0.1, -0.3, 0.2, 0.7]); oa.step(g);
  g.buffer.set([-0.4, 0.3, 0.1, 0.2]); oa.step(g);
  b.buffer.set(a.buffer);
  const ob = new AdamW(b, { lr: 0.01, weightDecay: 0.1 });
  ob.loadState(oa.state());
  g.buffer.set([0.5, 0.5, -0.5, 0.1]);
  oa.step(g); ob.step(g);
  assert.deepEqual([...b.buffer], [...a.buffer]);
  assert.equal(ob.stepCount, 3);
  assert.throws(() => ob.loadState({ step: 1, expAvg: new Float32Array(3), expAvgSq: new Float32Array(4) }), VitkitError);
});

test('clipGradNorm: global L2 norm, scaled by maxNorm / (norm + 1e-6) only when above', () => {
  const g = new Float32Array([3, 0, 4, 0]);
  close(clipGradNorm(g, 10), 5);
  assert.deepEqual([...g], [3, 0, 4, 0]);
  close(clipGradNorm(g, 1), 5);
  close(g[0]!, 3 / (5 + 1e-6)); close(g[2]!, 4 / (5 + 1e-6));
  const t = table();
  close(clipGradNorm(t, 100), Math.sqrt(1 + 4 + 0.25 + 0.0625), 1e-6);
});

test('ModelEma: ema = decay * ema + (1 - decay) * param', () => {
  const p = table();
  const ema = new ModelEma(p, 0.9);
  p.buffer.set([2, 0, 0.5, 1.25]);
  ema.update(p);
  [1.1, -1.8, 0.5, 0.35].forEach((w, i) => close(ema.params.buffer[i]!, w, 1e-6));
  ema.update(p);
  close(ema.params.buffer[0]!, 0.9 * 1.1 + 0.2, 1e-6);
  const saved = ema.state();
  const other = new ModelEma(table(), 0.9);
  other.loadState(saved);
  assert.deepEqual([...other.params.buffer], [...ema.params.buffer]);
});
