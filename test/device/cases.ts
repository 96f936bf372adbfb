/**
 * Model configurations that together use every layer and option of the ViT code (prefix tokens,
 * LayerScale, no_embed_class, MAP pooling, SwiGLU, distillation, pre-norm QuickGELU, average
 * pooling with fc_norm, per-token head, sin-cos and resampled position embeddings), with random
 * weights, for the device tests (host model vs the same model on a device).
 */
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig, type ViTConfig } from '../../src/models/config.js';
import { Tensor } from '../../src/tensor.js';
import type { Backend } from '../../src/backend/backend.js';
import { randn } from '../helpers.js';

const base = { img_size: 24, patch_size: 6, embed_dim: 36, depth: 2, num_heads: 3, num_classes: 7 };

export const DEVICE_CONFIGS: Record<string, Partial<ViTConfig>> = {
  plain: { ...base },
  'dinov2-reg (layerscale, registers, no_embed_class, dynamic size, no head)': { ...base, init_values: 0.1, reg_tokens: 2, no_embed_class: true, dynamic_img_size: true, num_classes: 0 },
  'siglip (no class token, MAP pool, swiglu)': { ...base, class_token: false, global_pool: 'map', mlp_layer: 'swiglu_packed', act: 'silu' },
  'deit distilled': { ...base, distilled: true },
  'clip (pre-norm, quick_gelu, no patch bias)': { ...base, pre_norm: true, act: 'quick_gelu', layer_norm_eps: 1e-5 },
  'avg pool + fc_norm, gelu tanh, sincos': { ...base, global_pool: 'avg', fc_norm: true, act: 'gelu_tanh', pos_embed: 'sincos' },
  "per-token head (global_pool '')": { ...base, global_pool: '', class_token: false },
};

/** a model of `overrides` with every parameter random (seeded) */
export function randomModel(overrides: Partial<ViTConfig>, backend: Backend, seed = 1): VisionTransformer {
  const c = resolveConfig(overrides as Record<string, unknown>);
  const m = new VisionTransformer(c, undefined, backend);
  m.params.buffer.set(randn(m.params.count, seed, 0.2));
  return m;
}

export function pixels(c: ViTConfig, B: number, seed: number, H = 0, W = 0): Tensor {
  const h = H || (Array.isArray(c.img_size) ? c.img_size[0] : c.img_size), w = W || (Array.isArray(c.img_size) ? c.img_size[1] : c.img_size);
  return new Tensor([B, c.in_chans, h, w], randn(B * c.in_chans * h * w, seed));
}
