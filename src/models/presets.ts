/**
 * timm architectures by name: the name is the spec. Each preset holds the keyword arguments timm's
 * registration function passes (timm 1.0.20: timm/models/vision_transformer.py and deit.py, `@register_model`)
 * and the pretrained config of the architecture's default tag (the first tag in timm's `default_cfgs`),
 * which supplies num_classes and, with `fixed_input_size`, img_size where the registration does not
 * (timm's `_update_default_model_kwargs`). `presetConfig` applies them in timm's order.
 */
import { type ViTConfig, DEFAULT_CONFIG, resolveConfig } from './config.js';
import { VitkitError } from '../errors.js';

export interface PretrainedCfg {
  input_size: [number, number, number];
  interpolation: 'bicubic' | 'bilinear';
  crop_pct: number;
  crop_mode: 'center';
  mean: [number, number, number];
  std: [number, number, number];
  /** classes of the default tag's weights (timm passes it to the model unless the caller does) */
  num_classes?: number;
  /** the model takes img_size from input_size (timm's _cfg default: true) */
  fixed_input_size?: boolean;
}

type Triple = [number, number, number];
const INCEPTION = { mean: [0.5, 0.5, 0.5] as Triple, std: [0.5, 0.5, 0.5] as Triple };
const IMAGENET = { mean: [0.485, 0.456, 0.406] as Triple, std: [0.229, 0.224, 0.225] as Triple };
const OPENAI_CLIP = { mean: [0.48145466, 0.4578275, 0.40821073] as Triple, std: [0.26862954, 0.26130258, 0.27577711] as Triple };

function cfg(size: number, crop_pct: number, norm: typeof INCEPTION, num_classes = 1000): PretrainedCfg {
  return { input_size: [3, size, size], interpolation: 'bicubic', crop_pct, crop_mode: 'center', ...norm, num_classes, fixed_input_size: true };
}

export interface Preset {
  /** the registration's model_args (vitkit names = timm's; act_layer is `act`) */
  args: Partial<ViTConfig>;
  /** the default tag's pretrained_cfg */
  pretrained_cfg: PretrainedCfg;
  /** the default tag, for reference (e.g. 'lvd142m') */
  tag?: string;
}

const dinov2 = (embed_dim: number, depth: number, num_heads: number, reg: boolean, giant = false): Preset => ({
  args: {
    patch_size: 14, embed_dim, depth, num_heads, init_values: 1e-5,
    ...(giant ? { mlp_ratio: 2.66667 * 2, mlp_layer: 'swiglu_packed' as const, act: 'silu' as const } : {}),
    ...(reg ? { reg_tokens: 4, no_embed_class: true } : {}),
  },
  pretrained_cfg: cfg(518, 1.0, IMAGENET, 0), tag: 'lvd142m',
});

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
  // deit.py: distilled=True selects VisionTransformerDistilled (dist_token, head_dist); tag fb_in1k, crop .9
  deit_tiny_distilled_patch16_224: { args: { patch_size: 16, embed_dim: 192, depth: 12, num_heads: 3, distilled: true }, pretrained_cfg: cfg(224, 0.9, IMAGENET), tag: 'fb_in1k' },
  deit_small_distilled_patch16_224: { args: { patch_size: 16, embed_dim: 384, depth: 12, num_heads: 6, distilled: true }, pretrained_cfg: cfg(224, 0.9, IMAGENET), tag: 'fb_in1k' },
  deit_base_distilled_patch16_224: { args: { patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12, distilled: true }, pretrained_cfg: cfg(224, 0.9, IMAGENET), tag: 'fb_in1k' },
  // DINOv2: LayerScale 1e-5; 518 px and no head come from the lvd142m pretrained cfg, not the registration
  vit_small_patch14_dinov2: dinov2(384, 12, 6, false),
  vit_base_patch14_dinov2: dinov2(768, 12, 12, false),
  vit_large_patch14_dinov2: dinov2(1024, 24, 16, false),
  vit_giant_patch14_dinov2: dinov2(1536, 40, 24, false, true),
  vit_small_patch14_reg4_dinov2: dinov2(384, 12, 6, true),
  vit_base_patch14_reg4_dinov2: dinov2(768, 12, 12, true),
  vit_large_patch14_reg4_dinov2: dinov2(1024, 24, 16, true),
  vit_giant_patch14_reg4_dinov2: dinov2(1536, 40, 24, true, true),
  // CLIP image towers: norm_pre, LayerNorm eps 1e-5 (timm passes norm_layer=partial(LayerNorm, eps=1e-5))
  vit_base_patch16_clip_224: {
    args: { patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12, pre_norm: true, layer_norm_eps: 1e-5 },
    pretrained_cfg: cfg(224, 0.95, OPENAI_CLIP), tag: 'laion2b_ft_in12k_in1k',
  },
  vit_base_patch16_clip_quickgelu_224: {
    args: { patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12, pre_norm: true, layer_norm_eps: 1e-5, act: 'quick_gelu' },
    pretrained_cfg: cfg(224, 1.0, OPENAI_CLIP, 512), tag: 'metaclip_2pt5b',
  },
  // SigLIP image tower: no class token, MAP head (AttentionPoolLatent), no classifier in the v2_webli weights
  vit_base_patch16_siglip_224: {
    args: { patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12, class_token: false, global_pool: 'map' },
    pretrained_cfg: cfg(224, 0.9, INCEPTION, 0), tag: 'v2_webli',
  },
};

export function getPreset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) {
    throw new VitkitError(`Unknown preset ${JSON.stringify(name)}; known presets: ${Object.keys(PRESETS).join(', ')}`);
  }
  return p;
}

/**
 * The keyword arguments timm builds an architecture with before any caller kwargs: the registration's
 * model_args, then (where those do not set them) num_classes, in_chans and, when fixed_input_size,
 * img_size from the pretrained cfg (`pcfg`, the default tag's unless given).
 */
export function archDefaults(name: string, pcfg?: Record<string, unknown>): Record<string, unknown> {
  const p = getPreset(name);
  const pc: Record<string, unknown> = pcfg ?? { ...p.pretrained_cfg };
  const out: Record<string, unknown> = { ...p.args };
  const nc = pc['num_classes'];
  if (typeof nc === 'number' && nc >= 0 && !('num_classes' in out)) out['num_classes'] = nc;
  const gp = pc['global_pool'];
  if (typeof gp === 'string' && !('global_pool' in out)) out['global_pool'] = gp;
  const inputSize = pc['input_size'];
  if (Array.isArray(inputSize) && inputSize.length === 3) {
    if (!('in_chans' in out)) out['in_chans'] = inputSize[0];
    if (pc['fixed_input_size'] === true && !('img_size' in out)) {
      out['img_size'] = inputSize[1] === inputSize[2] ? inputSize[1] : [inputSize[1], inputSize[2]];
    }
  }
  return out;
}

/** The full configuration `timm.create_model(name)` builds. */
export function presetConfig(name: string): ViTConfig {
  return resolveConfig({ ...DEFAULT_CONFIG, ...archDefaults(name) }, name);
}
