/**
 * Hugging Face DINOv2: `Dinov2Model` and `Dinov2WithRegistersModel` (headless; keys without a prefix).
 *
 * Key map (HF -> timm), block i:
 *   embeddings.cls_token -> cls_token; embeddings.position_embeddings (1, 1 + NP, D) -> pos_embed
 *   embeddings.patch_embeddings.projection.* -> patch_embed.proj.*; embeddings.mask_token: dropped (training only)
 *   encoder.layer.i.norm1 -> blocks.i.norm1; .attention.attention.{query,key,value} -> blocks.i.attn.qkv
 *   .attention.output.dense -> blocks.i.attn.proj; .layer_scale1.lambda1 -> blocks.i.ls1.gamma; .norm2 -> blocks.i.norm2
 *   .mlp.fc1/.mlp.fc2 -> blocks.i.mlp.fc1/fc2, or with use_swiglu_ffn .mlp.weights_in/.weights_out -> mlp.fc1/fc2
 *     (timm SwiGLUPacked; both compute silu(first half) * second half)
 *   .layer_scale2.lambda1 -> blocks.i.ls2.gamma; layernorm -> norm
 * With registers: embeddings.register_tokens -> reg_token; HF adds pos row 0 to the class token and inserts the
 * registers after the position embedding, timm (no_embed_class) adds no position to prefix tokens, so
 * timm cls_token = cls_token + position_embeddings[:, 0] and timm pos_embed = position_embeddings[:, 1:] (exact; the same
 * fold timm's own _convert_dinov2 applies to Meta's checkpoints, whose w12/w3 SwiGLU are HF's weights_in/weights_out).
 * Semantics kept: HF DINOv2 always resamples the position embedding to the input (dynamic_img_size); Dinov2Model
 * does it without antialias (pos_embed_antialias false), Dinov2WithRegistersModel with it (as timm).
 * LayerNorm eps from the config (default 1e-6). SwiGLU width: (int(D * mlp_ratio * 2 / 3) + 7) // 8 * 8, packed x2.
 */
import type { ViTConfig } from '../../models/config.js';
import { VitkitError } from '../../errors.js';
import { type HfLayout, type Rule, type HfConfig, hfAct, imgHW, mlpHidden, numPatches, linearRules, qkvRules, rename } from './hf.js';

function dinoConfig(cfg: HfConfig, registers: boolean): Record<string, unknown> {
  const D = cfg.int('hidden_size');
  const ratio = cfg.num('mlp_ratio', 4);
  const swiglu = cfg.bool('use_swiglu_ffn', false);
  const mlp = swiglu
    ? { mlp_layer: 'swiglu_packed', mlp_ratio: ratio, mlp_hidden: hfSwigluWidth(D, ratio), act: 'silu' }
    : { mlp_ratio: ratio, act: cfg.act('gelu') };
  const R = registers ? cfg.int('num_register_tokens', 4, 0) : 0;
  return {
    img_size: cfg.size('image_size', 224), patch_size: cfg.int('patch_size', 14), in_chans: cfg.int('num_channels', 3),
    num_classes: 0, embed_dim: D, depth: cfg.int('num_hidden_layers', 12, 0), num_heads: cfg.int('num_attention_heads', 12),
    qkv_bias: cfg.bool('qkv_bias', true), class_token: true, global_pool: 'token', fc_norm: null, pos_embed: 'learn',
    layer_norm_eps: cfg.num('layer_norm_eps', 1e-6), init_values: cfg.num('layerscale_value', 1.0),
    reg_tokens: R, no_embed_class: R > 0, dynamic_img_size: true, pos_embed_antialias: registers, ...mlp,
  };
}

/** HF's SwiGLU width for hidden_size D and mlp_ratio r: (int(int(D * r) * 2 / 3) + 7) // 8 * 8, packed twice */
const hfSwigluWidth = (D: number, r: number) => 2 * ((Math.floor(Math.floor(D * r) * 2 / 3) + 7) >> 3 << 3);

function dinoHfConfig(c: ViTConfig, registers: boolean): Record<string, unknown> {
  const [h, w] = imgHW(c);
  const swiglu = c.mlp_layer === 'swiglu_packed';
  if (swiglu && hfSwigluWidth(c.embed_dim, 4) !== mlpHidden(c)) {
    throw new VitkitError(`Cannot write a Dinov2 SwiGLU config: fc1 width ${mlpHidden(c)} is not HF's ${hfSwigluWidth(c.embed_dim, 4)} for hidden_size ${c.embed_dim}`);
  }
  return {
    architectures: [registers ? 'Dinov2WithRegistersModel' : 'Dinov2Model'], model_type: registers ? 'dinov2_with_registers' : 'dinov2',
    hidden_size: c.embed_dim, num_hidden_layers: c.depth, num_attention_heads: c.num_heads,
    mlp_ratio: swiglu ? 4 : mlpHidden(c) / c.embed_dim, hidden_act: hfAct(swiglu ? 'gelu' : c.act), use_swiglu_ffn: swiglu,
    layer_norm_eps: c.layer_norm_eps, image_size: h === w ? h : [h, w], patch_size: c.patch_size, num_channels: c.in_chans,
    qkv_bias: c.qkv_bias, layerscale_value: c.init_values ?? 1, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
    drop_path_rate: 0, initializer_range: 0.02, ...(registers ? { num_register_tokens: c.reg_tokens } : {}),
  };
}

function dinoRules(c: ViTConfig, registers: boolean): Rule[] {
  const D = c.embed_dim, H = mlpHidden(c), P = c.patch_size, NP = numPatches(c);
  const rules: Rule[] = registers
    ? [
      { kind: 'cls_pos_fold', hf: [['embeddings.cls_token', [1, 1, D]], ['embeddings.position_embeddings', [1, 1 + NP, D]]], timm: [['cls_token', [1, 1, D]], ['pos_embed', [1, NP, D]]] },
      rename('embeddings.register_tokens', 'reg_token', [1, c.reg_tokens, D]),
    ]
    : [rename('embeddings.cls_token', 'cls_token', [1, 1, D]), rename('embeddings.position_embeddings', 'pos_embed', [1, 1 + NP, D])];
  rules.push(
    { kind: 'hf_only', hf: ['embeddings.mask_token', [1, D]], fill: 0 },
    rename('embeddings.patch_embeddings.projection.weight', 'patch_embed.proj.weight', [D, c.in_chans, P, P]),
    rename('embeddings.patch_embeddings.projection.bias', 'patch_embed.proj.bias', [D]),
  );
  const swiglu = c.mlp_layer === 'swiglu_packed';
  for (let i = 0; i < c.depth; i++) {
    const h = `encoder.layer.${i}.`, t = `blocks.${i}.`;
    rules.push(
      ...linearRules(h + 'norm1', t + 'norm1', D, null),
      ...qkvRules(h + 'attention.attention.', ['query', 'key', 'value'], '.', t + 'attn.qkv', D, c.qkv_bias),
      ...linearRules(h + 'attention.output.dense', t + 'attn.proj', D, D),
      rename(h + 'layer_scale1.lambda1', t + 'ls1.gamma', [D]),
      ...linearRules(h + 'norm2', t + 'norm2', D, null),
      ...linearRules(h + (swiglu ? 'mlp.weights_in' : 'mlp.fc1'), t + 'mlp.fc1', H, D),
      ...linearRules(h + (swiglu ? 'mlp.weights_out' : 'mlp.fc2'), t + 'mlp.fc2', D, swiglu ? H / 2 : H),
      rename(h + 'layer_scale2.lambda1', t + 'ls2.gamma', [D]),
    );
  }
  rules.push(...linearRules('layernorm', 'norm', D, null));
  return rules;
}

export const Dinov2Model: HfLayout = {
  architecture: 'Dinov2Model', modelType: 'dinov2', hasClassifier: false,
  describe: 'transformers Dinov2Model (headless)',
  configFromHf: (cfg) => dinoConfig(cfg, false),
  hfConfigFrom: (c) => dinoHfConfig(c, false),
  rules: (c) => dinoRules(c, false),
};

export const Dinov2WithRegistersModel: HfLayout = {
  architecture: 'Dinov2WithRegistersModel', modelType: 'dinov2_with_registers', hasClassifier: false,
  describe: 'transformers Dinov2WithRegistersModel (headless, register tokens)',
  configFromHf: (cfg) => dinoConfig(cfg, true),
  hfConfigFrom: (c) => dinoHfConfig(c, true),
  rules: (c) => dinoRules(c, true),
};
