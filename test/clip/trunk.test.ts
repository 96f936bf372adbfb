/** Any engine ViT as CLIP's image tower (open_clip's `visual.trunk`): names, and image_embeds = trunk pre-logits @ visual.proj. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipModel } from '../../src/models/clip/model.js';
import type { ClipConfig } from '../../src/models/clip/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig } from '../../src/models/config.js';
import { Tensor } from '../../src/tensor.js';
import { randn, maxAbsDiff } from '../helpers.js';

test('a timm-style ViT (1 channel, avg pooling, no pre-norm) as the image trunk', () => {
  const vitCfg = resolveConfig({ img_size: 16, patch_size: 4, in_chans: 1, num_classes: 0, embed_dim: 32, depth: 1, num_heads: 2, mlp_ratio: 2, global_pool: 'avg' });
  const cfg: ClipConfig = {
    embed_dim: 8, act: 'gelu', layer_norm_eps: 1e-5,
    vision: { image_size: 16, patch_size: 4, width: 32, layers: 1, head_width: 16, mlp_ratio: 2, vit: vitCfg },
    text: { context_length: 8, vocab_size: 49408, width: 16, heads: 2, layers: 1, mlp_ratio: 4, pool: { kind: 'argmax' } },
    init_logit_scale: Math.log(1 / 0.07),
  };
  const clip = new ClipModel(cfg);
  clip.params.buffer.set(randn(clip.params.count, 5, 0.1));
  const names = clip.params.names();
  assert.ok(names.includes('visual.trunk.patch_embed.proj.weight') && names.includes('visual.trunk.fc_norm.weight'));
  assert.ok(!names.some((n) => n.startsWith('visual.trunk.head')));
  const vit = new VisionTransformer(vitCfg);
  for (const n of vit.params.names()) vit.params.get(n).set(clip.params.get('visual.trunk.' + n));
  const x = new Tensor([2, 1, 16, 16], randn(2 * 256, 9));
  const pre = vit.forwardHead(vit.forwardFeatures(x).features, { preLogits: true }).data; // (2, 32)
  const proj = clip.params.get('visual.proj');
  const want = new Float32Array(2 * 8);
  for (let b = 0; b < 2; b++) for (let e = 0; e < 8; e++) { let s = 0; for (let d = 0; d < 32; d++) s += pre[b * 32 + d]! * proj[d * 8 + e]!; want[b * 8 + e] = s; }
  assert.ok(maxAbsDiff(clip.encodeImage(x).data, want) < 1e-5);
});
