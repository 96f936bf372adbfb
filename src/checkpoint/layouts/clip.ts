/**
 * Hugging Face CLIP image tower: `CLIPVisionModel` and `CLIPVisionModelWithProjection` (keys under `vision_model.`).
 *
 * Key map (HF -> timm), block i:
 *   vision_model.embeddings.class_embedding (D) -> cls_token (1, 1, D)
 *   vision_model.embeddings.patch_embedding.weight -> patch_embed.proj.weight (no bias: timm drops it with pre_norm)
 *   vision_model.embeddings.position_embedding.weight (N, D) -> pos_embed (1, N, D)
 *   vision_model.pre_layrnorm -> norm_pre (HF's spelling)
 *   vision_model.encoder.layers.i.layer_norm1 -> blocks.i.norm1; .self_attn.{q,k,v}_proj -> blocks.i.attn.qkv
 *   .self_attn.out_proj -> blocks.i.attn.proj; .layer_norm2 -> blocks.i.norm2; .mlp.fc1/.mlp.fc2 -> blocks.i.mlp.fc1/fc2
 *   vision_model.post_layernorm -> norm
 *   visual_projection.weight (P, D) -> head.weight, head.bias = 0 (WithProjection only; image_embeds = logits;
 *   timm's _convert_openai_clip does the same with OpenAI's `proj`)
 *   vision_model.embeddings.position_ids (a buffer some versions save) is dropped.
 * Semantics: hidden_act (quick_gelu for OpenAI CLIP), LayerNorm eps (1e-5) from the config; class-token pooling.
 * One difference to keep in mind: HF's last_hidden_state is the encoder output BEFORE post_layernorm (HF applies
 * it to the pooled class token only); vitkit's `features` are after the final norm like timm's forward_features.
 * hidden_states, pooler_output (= pre_logits) and image_embeds (= logits) are the same.
 */
import type { ViTConfig } from '../../models/config.js';
import { VitkitError } from '../../errors.js';
import { type HfLayout, type Rule, HfConfig, hfAct, imgHW, mlpHidden, numPatches, linearRules, qkvRules, rename } from './hf.js';

function clipConfig(cfg: HfConfig, projection: boolean): Record<string, unknown> {
  const D = cfg.int('hidden_size');
  return {
    img_size: cfg.size('image_size', 224), patch_size: cfg.int('patch_size', 32), in_chans: cfg.int('num_channels', 3),
    num_classes: projection ? cfg.int('projection_dim', 512) : 0, embed_dim: D, depth: cfg.int('num_hidden_layers', 12, 0),
    num_heads: cfg.int('num_attention_heads', 12), ...cfg.intermediate(D), qkv_bias: true, class_token: true,
    global_pool: 'token', fc_norm: null, pos_embed: 'learn', pre_norm: true,
    layer_norm_eps: cfg.num('layer_norm_eps', 1e-5), act: cfg.act('quick_gelu'),
  };
}

function clipHfConfig(c: ViTConfig, projection: boolean): Record<string, unknown> {
  const [h, w] = imgHW(c);
  return {
    architectures: [projection ? 'CLIPVisionModelWithProjection' : 'CLIPVisionModel'], model_type: 'clip_vision_model',
    hidden_size: c.embed_dim, intermediate_size: mlpHidden(c), num_hidden_layers: c.depth, num_attention_heads: c.num_heads,
    num_channels: c.in_chans, image_size: h === w ? h : [h, w], patch_size: c.patch_size, hidden_act: hfAct(c.act),
    layer_norm_eps: c.layer_norm_eps, attention_dropout: 0, initializer_range: 0.02, initializer_factor: 1,
    ...(projection ? { projection_dim: c.num_classes } : {}),
  };
}

/** the CLIP/SigLIP encoder layer names (self_attn.{q,k,v,out}_proj, layer_norm1/2, mlp.fc1/fc2) */
export function clipEncoderRules(c: ViTConfig, p: string): Rule[] {
  const D = c.embed_dim, H = mlpHidden(c);
  const rules: Rule[] = [];
  for (let i = 0; i < c.depth; i++) {
    const h = `${p}encoder.layers.${i}.`, t = `blocks.${i}.`;
    rules.push(
      ...linearRules(h + 'layer_norm1', t + 'norm1', D, null),
      ...qkvRules(h + 'self_attn.', ['q_proj', 'k_proj', 'v_proj'], '.', t + 'attn.qkv', D, true),
      ...linearRules(h + 'self_attn.out_proj', t + 'attn.proj', D, D),
      ...linearRules(h + 'layer_norm2', t + 'norm2', D, null),
      ...linearRules(h + 'mlp.fc1', t + 'mlp.fc1', H, D),
      ...linearRules(h + 'mlp.fc2', t + 'mlp.fc2', D, H),
    );
  }
  return rules;
}

function clipRules(c: ViTConfig, projection: boolean): Rule[] {
  const D = c.embed_dim, P = c.patch_size, N = numPatches(c) + 1;
  const p = 'vision_model.';
  const rules: Rule[] = [
    rename(`${p}embeddings.class_embedding`, 'cls_token', [D], [1, 1, D]),
    rename(`${p}embeddings.patch_embedding.weight`, 'patch_embed.proj.weight', [D, c.in_chans, P, P]),
    rename(`${p}embeddings.position_embedding.weight`, 'pos_embed', [N, D], [1, N, D]),
    { kind: 'hf_only', hf: [`${p}embeddings.position_ids`, [1, N]] },
    ...linearRules(`${p}pre_layrnorm`, 'norm_pre', D, null),
    ...clipEncoderRules(c, p),
    ...linearRules(`${p}post_layernorm`, 'norm', D, null),
  ];
  if (projection) {
    rules.push(rename('visual_projection.weight', 'head.weight', [c.num_classes, D]),
      { kind: 'timm_only_zero', timm: ['head.bias', [c.num_classes]], why: "CLIPVisionModelWithProjection's visual_projection has no bias" });
  }
  return rules;
}

/** a nested vision_config (CLIPModel / SiglipModel) read as the tower's own config, projection_dim from the top level */
export function visionConfigOf(cfg: HfConfig): HfConfig {
  const v = cfg.raw['vision_config'];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new VitkitError(`${cfg.file}: expected an object for "vision_config" but received ${JSON.stringify(v)}`);
  }
  const raw: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  if (raw['projection_dim'] === undefined && cfg.raw['projection_dim'] !== undefined) raw['projection_dim'] = cfg.raw['projection_dim'];
  return new HfConfig(raw, `${cfg.file} vision_config`);
}

export const CLIPVisionModel: HfLayout = {
  architecture: 'CLIPVisionModel', modelType: 'clip_vision_model', hasClassifier: false,
  describe: 'transformers CLIPVisionModel (vision_model.*)',
  configFromHf: (cfg) => clipConfig(cfg, false),
  hfConfigFrom: (c) => clipHfConfig(c, false),
  rules: (c) => clipRules(c, false),
};

export const CLIPVisionModelWithProjection: HfLayout = {
  architecture: 'CLIPVisionModelWithProjection', modelType: 'clip_vision_model', hasClassifier: false,
  describe: 'transformers CLIPVisionModelWithProjection (vision_model.* + visual_projection)',
  configFromHf: (cfg) => clipConfig(cfg, true),
  hfConfigFrom: (c) => clipHfConfig(c, true),
  rules: (c) => clipRules(c, true),
};

/** the image tower of a full `CLIPModel` (vision_model.* + visual_projection; the text tower and logit_scale are dropped) */
export const CLIPModel: HfLayout = {
  architecture: 'CLIPModel', modelType: 'clip', hasClassifier: false,
  describe: 'transformers CLIPModel, image tower only (vision_model.* + visual_projection; text_model.*, text_projection, logit_scale dropped)',
  ignore: /^(text_model\.|text_projection\.|logit_scale$)/,
  configFromHf: (cfg) => clipConfig(visionConfigOf(cfg), true),
  hfConfigFrom(c) {
    const { architectures: _a, model_type: _m, projection_dim, ...vision } = clipHfConfig(c, true);
    return { architectures: ['CLIPModel'], model_type: 'clip', projection_dim, vision_config: { ...vision, model_type: 'clip_vision_model' }, text_config: {} };
  },
  rules: (c) => clipRules(c, true),
};
