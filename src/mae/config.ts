/**
 * The masked autoencoder's configuration (facebookresearch/mae `MaskedAutoencoderViT`), read from
 * vitkit's mae_config.json (MAE's constructor arguments) or from Hugging Face's ViTMAEConfig
 * (config.json, model_type "vit_mae"), and the two ViT configs its encoder and decoder blocks run with.
 */
import { VitkitError, expected } from '../errors.js';
import { type ViTConfig, resolveConfig } from '../models/config.js';
import { HfConfig } from '../checkpoint/layouts/hf.js';

export interface MaeConfig {
  img_size: number;
  patch_size: number;
  in_chans: number;
  embed_dim: number;
  depth: number;
  num_heads: number;
  decoder_embed_dim: number;
  decoder_depth: number;
  decoder_num_heads: number;
  mlp_ratio: number;
  /** the decoder's MLP ratio (MAE uses the encoder's; HF has its own decoder_intermediate_size) */
  decoder_mlp_ratio: number;
  norm_pix_loss: boolean;
  mask_ratio: number;
  layer_norm_eps: number;
  qkv_bias: boolean;
}

/** facebookresearch/mae's defaults (mae_vit_base_patch16_dec512d8b) */
export const MAE_DEFAULTS: MaeConfig = {
  img_size: 224, patch_size: 16, in_chans: 3, embed_dim: 768, depth: 12, num_heads: 12,
  decoder_embed_dim: 512, decoder_depth: 8, decoder_num_heads: 16, mlp_ratio: 4, decoder_mlp_ratio: 4,
  norm_pix_loss: false, mask_ratio: 0.75, layer_norm_eps: 1e-6, qkv_bias: true,
};

/** A mask ratio MAE can use: in [0, 1) (at least one patch is kept). */
export function checkMaskRatio(r: unknown, where: string): number {
  if (typeof r !== 'number' || !(r >= 0 && r < 1)) throw expected('a mask ratio in [0, 1)', where, r);
  return r;
}

/** Validates every field (one line naming the field on error) and the divisibility MAE needs. */
export function resolveMaeConfig(raw: Record<string, unknown>, where: string): MaeConfig {
  const known = Object.keys(MAE_DEFAULTS);
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) throw new VitkitError(`Unknown option ${JSON.stringify(k)} in ${where}; known options: ${known.join(', ')}`);
  }
  const c = { ...MAE_DEFAULTS, decoder_mlp_ratio: raw['mlp_ratio'] ?? MAE_DEFAULTS.mlp_ratio, ...raw } as MaeConfig;
  const int = (k: keyof MaeConfig, min = 1) => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw expected(`an integer >= ${min}`, `${where}.${k}`, v);
  };
  for (const k of ['img_size', 'patch_size', 'in_chans', 'embed_dim', 'num_heads', 'decoder_embed_dim', 'decoder_num_heads'] as const) int(k);
  int('depth', 0); int('decoder_depth', 0);
  for (const k of ['mlp_ratio', 'decoder_mlp_ratio', 'layer_norm_eps'] as const) {
    if (typeof c[k] !== 'number' || !(c[k] > 0)) throw expected('a positive number', `${where}.${k}`, c[k]);
  }
  for (const k of ['norm_pix_loss', 'qkv_bias'] as const) if (typeof c[k] !== 'boolean') throw expected('true or false', `${where}.${k}`, c[k]);
  checkMaskRatio(c.mask_ratio, `${where}.mask_ratio`);
  if (c.img_size % c.patch_size !== 0) {
    throw new VitkitError(`${where}: img_size ${c.img_size} is not divisible by patch_size ${c.patch_size}`);
  }
  if (c.embed_dim % c.num_heads !== 0) throw new VitkitError(`${where}: embed_dim ${c.embed_dim} is not divisible by num_heads ${c.num_heads}`);
  if (c.decoder_embed_dim % c.decoder_num_heads !== 0) {
    throw new VitkitError(`${where}: decoder_embed_dim ${c.decoder_embed_dim} is not divisible by decoder_num_heads ${c.decoder_num_heads}`);
  }
  if (c.embed_dim % 4 !== 0 || c.decoder_embed_dim % 4 !== 0) {
    throw new VitkitError(`${where}: the 2-D sin-cos position embedding needs embed_dim and decoder_embed_dim divisible by 4, received ${c.embed_dim} and ${c.decoder_embed_dim}`);
  }
  return c;
}

/** HF ViTMAEConfig (config.json) -> MaeConfig */
export function maeConfigFromHf(raw: Record<string, unknown>, file: string): MaeConfig {
  const h = new HfConfig(raw, file);
  const hidden = h.int('hidden_size', 768), dHidden = h.int('decoder_hidden_size', 512);
  const act = raw['hidden_act'] ?? 'gelu';
  if (act !== 'gelu') throw new VitkitError(`${file}: hidden_act ${JSON.stringify(act)} is not supported (ViTMAE uses "gelu")`);
  const size = h.size('image_size', 224), patch = h.size('patch_size', 16);
  if (typeof size !== 'number' || typeof patch !== 'number') throw new VitkitError(`${file}: expected square image_size and patch_size`);
  return resolveMaeConfig({
    img_size: size, patch_size: patch, in_chans: h.int('num_channels', 3),
    embed_dim: hidden, depth: h.int('num_hidden_layers', 12, 0), num_heads: h.int('num_attention_heads', 12),
    decoder_embed_dim: dHidden, decoder_depth: h.int('decoder_num_hidden_layers', 8, 0), decoder_num_heads: h.int('decoder_num_attention_heads', 16),
    mlp_ratio: h.int('intermediate_size', 3072) / hidden, decoder_mlp_ratio: h.int('decoder_intermediate_size', 2048) / dHidden,
    norm_pix_loss: h.bool('norm_pix_loss', false), mask_ratio: h.num('mask_ratio', 0.75),
    layer_norm_eps: h.num('layer_norm_eps', 1e-12), qkv_bias: h.bool('qkv_bias', true),
  }, file);
}

/** MaeConfig -> HF ViTMAEConfig fields */
export function hfConfigFromMae(c: MaeConfig): Record<string, unknown> {
  return {
    architectures: ['ViTMAEForPreTraining'], model_type: 'vit_mae',
    image_size: c.img_size, patch_size: c.patch_size, num_channels: c.in_chans,
    hidden_size: c.embed_dim, num_hidden_layers: c.depth, num_attention_heads: c.num_heads,
    intermediate_size: Math.floor(c.embed_dim * c.mlp_ratio),
    decoder_hidden_size: c.decoder_embed_dim, decoder_num_hidden_layers: c.decoder_depth,
    decoder_num_attention_heads: c.decoder_num_heads, decoder_intermediate_size: Math.floor(c.decoder_embed_dim * c.decoder_mlp_ratio),
    norm_pix_loss: c.norm_pix_loss, mask_ratio: c.mask_ratio, layer_norm_eps: c.layer_norm_eps, qkv_bias: c.qkv_bias,
    hidden_act: 'gelu',
  };
}

/** The ViT config the encoder's blocks (and the fine-tuned classifier) run with. */
export function encoderVitConfig(c: MaeConfig, numClasses = 0): ViTConfig {
  return resolveConfig({
    img_size: c.img_size, patch_size: c.patch_size, in_chans: c.in_chans, embed_dim: c.embed_dim, depth: c.depth,
    num_heads: c.num_heads, mlp_ratio: c.mlp_ratio, qkv_bias: c.qkv_bias, layer_norm_eps: c.layer_norm_eps,
    num_classes: numClasses, global_pool: 'avg', fc_norm: true, pos_embed: 'learn',
  }, 'the MAE encoder');
}

/** The ViT config of the decoder's blocks (its width, heads and depth; the image fields are the encoder's). */
export function decoderVitConfig(c: MaeConfig): ViTConfig {
  return resolveConfig({
    img_size: c.img_size, patch_size: c.patch_size, in_chans: c.in_chans, embed_dim: c.decoder_embed_dim, depth: c.decoder_depth,
    num_heads: c.decoder_num_heads, mlp_ratio: c.decoder_mlp_ratio, qkv_bias: c.qkv_bias, layer_norm_eps: c.layer_norm_eps,
    num_classes: 0, pos_embed: 'none',
  }, 'the MAE decoder');
}

/** facebookresearch/mae's models (models_mae.py) and a small one for digits and tests */
export const MAE_PRESETS: Record<string, Partial<MaeConfig>> = {
  mae_vit_base_patch16: { embed_dim: 768, depth: 12, num_heads: 12, decoder_embed_dim: 512, decoder_depth: 8, decoder_num_heads: 16 },
  mae_vit_large_patch16: { embed_dim: 1024, depth: 24, num_heads: 16, decoder_embed_dim: 512, decoder_depth: 8, decoder_num_heads: 16 },
  mae_vit_huge_patch14: { patch_size: 14, embed_dim: 1280, depth: 32, num_heads: 16, decoder_embed_dim: 512, decoder_depth: 8, decoder_num_heads: 16 },
  mae_vit_tiny_patch4: { img_size: 28, patch_size: 4, in_chans: 1, embed_dim: 64, depth: 4, num_heads: 4, decoder_embed_dim: 32, decoder_depth: 2, decoder_num_heads: 4 },
};
