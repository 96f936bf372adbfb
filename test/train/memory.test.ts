import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig, dims } from '../../src/models/config.js';
import { trainStepMemory } from '../../src/train/memory.js';

test('training-step memory counts the saved activations of every block', () => {
  const c = resolveConfig({ img_size: 16, patch_size: 4, in_chans: 1, num_classes: 3, embed_dim: 8, depth: 2, num_heads: 2, mlp_ratio: 2 });
  const d = dims(c);
  const B = 3, BN = B * d.N;
  const m = trainStepMemory(new VisionTransformer(c), B);
  // per block: x, ln1, qkv(3D), attn, x2, ln2 (BN x D each, qkv 3x), fc1 + act (BN x H), probs, 4 row stats
  const perBlock = BN * d.D * (1 + 1 + 3 + 1 + 1 + 1) + 2 * BN * d.H + B * d.NH * d.N * d.N + 4 * BN;
  const lower = 4 * c.depth * perBlock;
  assert.ok(m.activationBytes >= lower, `${m.activationBytes} < ${lower}`);
  assert.ok(m.activationBytes < lower * 1.6, `${m.activationBytes} unexpectedly large vs ${lower}`);
  assert.equal(m.paramStateBytes, 16 * new VisionTransformer(c).numParams);
});
