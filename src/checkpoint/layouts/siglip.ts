/**
 * Hugging Face SigLIP image tower: `SiglipVisionModel` (keys under `vision_model.`).
 *
 * Key map (HF -> timm), block i:
 *   vision_model.embeddings.patch_embedding.{weight,bias} -> patch_embed.proj.*
 *   vision_model.embeddings.position_embedding.weight (NP, D) -> pos_embed (1, NP, D) (no class token)
 *   vision_model.encoder.layers.i.* -> blocks.i.* as for CLIP (../clip/layout.ts)
 *   vision_model.post_layernorm -> norm
 *   vision_model.head.probe -> attn_pool.latent
 *   vision_model.head.attention.in_proj_weight (3D, D) -> attn_pool.q.weight (rows 0..D-1) + attn_pool.kv.weight (rows D..3D-1)
 *   vision_model.head.attention.in_proj_bias (3D) -> attn_pool.q.bias + attn_pool.kv.bias
 *   vision_model.head.attention.out_proj -> attn_pool.proj; vision_model.head.layernorm -> attn_pool.norm
 *   vision_model.head.mlp.fc1/fc2 -> attn_pool.mlp.fc1/fc2
 * Semantics kept: SigLIP's MAP head = timm's AttentionPoolLatent (latent query, nn.MultiheadAttention with the model's
 * head count, residual + norm + MLP); pooler_output = pre_logits; no classifier (num_classes 0). hidden_act from the
 * config (gelu_pytorch_tanh for Google's weights; timm's vit_*_siglip_* use erf GELU), LayerNorm eps 1e-6.
 */
import type { ViTConfig } from '../../models/config.js';
import { VitkitError } from '../../errors.js';
import { type HfLayout, type Rule, type HfConfig, hfAct, imgHW, mlpHidden, numPatches, linearRules, rename } from './hf.js';
import { clipEncoderRules, visionConfigOf } from './clip.js';

function siglipConfig(cfg: HfConfig): Record<string, unknown> {
    const D = cfg.int('hidden_size');
    if (!cfg.bool('vision_use_head', true)) throw new VitkitError(`${cfg.file}: vision_use_head false (no MAP head) is not supported`);
    return {
      img_size: cfg.size('image_size', 224), patch_size: cfg.int('patch_size', 16), in_chans: cfg.int('num_channels', 3),
      num_classes: 0, embed_dim: D, depth: cfg.int('num_hidden_layers', 12, 0), num_heads: cfg.int('num_attention_heads', 12),
      ...cfg.intermediate(D), qkv_bias: true, class_token: false, global_pool: 'map', fc_norm: null, pos_embed: 'learn',
      layer_norm_eps: cfg.num('layer_norm_eps', 1e-6), act: cfg.act('gelu_pytorch_tanh'),
    };
}

export const SiglipVisionModel: HfLayout = {
  architecture: 'SiglipVisionModel', modelType: 'siglip_vision_model', hasClassifier: false,
  describe: 'transformers SiglipVisionModel (vision_model.*, MAP head)',
  configFromHf: siglipConfig,
  hfConfigFrom(c: ViTConfig) {
    const [h, w] = imgHW(c);
    return {
      architectures: ['SiglipVisionModel'], model_type: 'siglip_vision_model', hidden_size: c.embed_dim, intermediate_size: mlpHidden(c),
      num_hidden_layers: c.depth, num_attention_heads: c.num_heads, num_channels: c.in_chans, image_size: h === w ? h : [h, w],
      patch_size: c.patch_size, hidden_act: hfAct(c.act), layer_norm_eps: c.layer_norm_eps, attention_dropout: 0, vision_use_head: true,
    };
  },
  rules(c: ViTConfig): Rule[] {
    const D = c.embed_dim, H = mlpHidden(c), P = c.patch_size, NP = numPatches(c);
    const p = 'vision_model.';
    return [
      rename(`${p}embeddings.patch_embedding.weight`, 'patch_embed.proj.weight', [D, c.in_chans, P, P]),
      rename(`${p}embeddings.patch_embedding.bias`, 'patch_embed.proj.bias', [D]),
      rename(`${p}embeddings.position_embedding.weight`, 'pos_embed', [NP, D], [1, NP, D]),
      { kind: 'hf_only', hf: [`${p}embeddings.position_ids`, [1, NP]] },
      ...clipEncoderRules(c, p),
      ...linearRules(`${p}post_layernorm`, 'norm', D, null),
      rename(`${p}head.probe`, 'attn_pool.latent', [1, 1, D]),
      { kind: 'concat', hf: [[`${p}head.attention.in_proj_weight`, [3 * D, D]]], timm: [['attn_pool.q.weight', [D, D]], ['attn_pool.kv.weight', [2 * D, D]]] },
      { kind: 'concat', hf: [[`${p}head.attention.in_proj_bias`, [3 * D]]], timm: [['attn_pool.q.bias', [D]], ['attn_pool.kv.bias', [2 * D]]] },
      ...linearRules(`${p}head.attention.out_proj`, 'attn_pool.proj', D, D),
      ...linearRules(`${p}head.layernorm`, 'attn_pool.norm', D, null),
      ...linearRules(`${p}head.mlp.fc1`, 'attn_pool.mlp.fc1', H, D),
      ...linearRules(`${p}head.mlp.fc2`, 'attn_pool.mlp.fc2', D, H),
    ];
  },
};

/** the image tower of a full `SiglipModel` (vision_model.*; the text tower, logit_scale and logit_bias are dropped) */
export const SiglipModel: HfLayout = {
  architecture: 'SiglipModel', modelType: 'siglip', hasClassifier: false,
  describe: 'transformers SiglipModel, image tower only (vision_model.*; text_model.*, logit_scale, logit_bias dropped)',
  ignore: /^(text_model\.|logit_scale$|logit_bias$)/,
  configFromHf: (cfg) => siglipConfig(visionConfigOf(cfg)),
  hfConfigFrom(c) {
    const { architectures: _a, model_type: _m, ...vision } = SiglipVisionModel.hfConfigFrom(c);
    return { architectures: ['SiglipModel'], model_type: 'siglip', vision_config: { ...vision, model_type: 'siglip_vision_model' }, text_config: {} };
  },
  rules: (c) => SiglipVisionModel.rules(c),
};
