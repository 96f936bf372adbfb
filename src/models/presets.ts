/**
 * timm architectures by name: the name is the spec. Each preset holds the architecture
 * arguments and the pretrained config (preprocessing) timm registers for its default weights.
 */
import type { ViTConfig } from './config.js';
import { VitkitError } from '../errors.js';

export interface PretrainedCfg {
  input_size: [number, number, number];
  interpolation: 'bicubic' | 'bilinear';
  crop_pct: number;
  crop_mode: 'center';
  mean: [number, number, number];
  std: [number, number, number];
}

const INCEPTION = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };
const IMAGENET = {
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
};

function cfg(size: number, crop_pct: number, norm: typeof INCEPTION): PretrainedCfg {
  return { input_size: [3, size, size], interpolation: 'bicubic', crop_pct, crop_mode: 'center', ...norm };
}

export interface Preset {
  args: Partial<ViTConfig>;
  pretrained_cfg: PretrainedCfg;
}

export const PRESETS: Record<string, Preset> = {
  vit_tiny_patch16_224: { args: { patch_size: 16, embed_dim: 192, depth: 12, num_heads: 3 }, pretrained_cfg: cfg(224, 0.9, INCEPTION) },
  vit_small_patch16_224: { args: { patch_size: 16, embed_dim: 384, depth: 12, num_heads: 6 }, pretrained_cfg: cfg(224, 0.9, INCEPTION) },
  vit_base_patch16_224: { args: { patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12 }, pretrained_cfg: cfg(224, 0.9, INCEPTION) },
  vit_large_patch16_224: { args: { patch_size: 16, embed_dim: 1024, depth: 24, num_heads: 16 }, pretrained_cfg: cfg(224, 0.9, INCEPTION) },
  vit_base_patch32_224: { args: { patch_size: 32, embed_dim: 768, depth: 12, num_heads: 12 }, pretrained_cfg: cfg(224, 0.9, INCEPTION) },
  vit_small_patch16_384: { args: { img_size: 384, patch_size: 16, embed_dim: 384, depth: 12, num_heads: 6 }, pretrained_cfg: cfg(384, 1.0, INCEPTION) },
  vit_base_patch16_384: { args: { img_size: 384, patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12 }, pretrained_cfg: cfg(384, 1.0, INCEPTION) },
  deit_tiny_patch16_224: { args: { patch_size: 16, embed_dim: 192, depth: 12, num_heads: 3 }, pretrained_cfg: cfg(224, 0.875, IMAGENET) },
  deit_small_patch16_224: { args: { patch_size: 16, embed_dim: 384, depth: 12, num_heads: 6 }, pretrained_cfg: cfg(224, 0.875, IMAGENET) },
  deit_base_patch16_224: { args: { patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12 }, pretrained_cfg: cfg(224, 0.875, IMAGENET) },
};

export function getPreset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) {
    throw new VitkitError(`Unknown preset ${JSON.stringify(name)}; known presets: ${Object.keys(PRESETS).join(', ')}`);
  }
  return p;
}
