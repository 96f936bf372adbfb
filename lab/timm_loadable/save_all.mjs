import { loadModel, saveCheckpoint } from '../../dist/src/checkpoint/checkpoint.js';
import { presetModel } from '../../dist/src/checkpoint/checkpoint.js';
const R = '/work/shared/refs';
for (const f of ['timm_deit_distilled', 'timm_dinov2_reg', 'timm_clip_vit', 'timm_siglip', 'timm_vit_tiny']) {
  const lm = loadModel(`${R}/${f}`);
  saveCheckpoint(`/tmp/saved/${f}`, lm.model, { name: lm.name, pretrainedCfg: lm.pretrainedCfg, labels: lm.labels.length === 1000 ? undefined : lm.labels });
}
const hf = loadModel('../../test/fixtures/hf_vit_small');
saveCheckpoint('/tmp/saved/hf_vit_small', hf.model, { name: hf.name, pretrainedCfg: hf.pretrainedCfg, labels: hf.labels });
// a model of another shape, named vit_custom as train does
const p = presetModel('vit_small_patch14_reg4_dinov2', { imgSize: 42 });
saveCheckpoint('/tmp/saved/custom_reg4', p.model, { name: 'vit_custom', pretrainedCfg: p.pretrainedCfg });
import { presetConfig } from '../../dist/src/models/presets.js';
import { resolveConfig } from '../../dist/src/models/config.js';
import { VisionTransformer } from '../../dist/src/models/vit.js';
import { initWeights } from '../../dist/src/checkpoint/checkpoint.js';
const gc = resolveConfig({ ...presetConfig('vit_giant_patch14_dinov2'), depth: 1, img_size: 28, embed_dim: 96, num_heads: 4 });
const gm = new VisionTransformer(gc); initWeights(gm, 3);
saveCheckpoint('/tmp/saved/giant', gm, { name: 'vit_giant_patch14_dinov2', pretrainedCfg: {} });
const hc = resolveConfig({ img_size: 32, patch_size: 16, embed_dim: 176, num_heads: 4, depth: 1, mlp_ratio: 480 / 176, mlp_hidden: 480, num_classes: 2 });
const hm = new VisionTransformer(hc); initWeights(hm, 4);
saveCheckpoint('/tmp/saved/w480', hm, { name: 'vit_custom', pretrainedCfg: {} });
console.log('saved');
