/**
 * ViTConfig: timm's VisionTransformer arguments, with timm's names and defaults.
 * Each field says what it controls; `resolveConfig` fills defaults and validates.
 */
import { VitkitError, expected } from '../errors.js';

export type GlobalPool = 'token' | 'avg' | 'map' | '';
export type PosEmbedKind = 'learn' | 'sincos' | 'none';
export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu';
export type MlpLayer = 'mlp' | 'swiglu_packed';

export interface ViTConfig {
  /** input image side in pixels (square) */
  img_size: number;
  /** patch side in pixels; img_size must be a multiple of it */
  patch_size: number;
  /** input channels: 3 for RGB, 1 for grayscale */
  in_chans: number;
  /** classifier outputs; 0 means no head (features only) */
  num_classes: number;
  /** D: token width */
  embed_dim: number;
  /** L: number of transformer blocks */
  depth: number;
  /** NH: attention heads; embed_dim must be a multiple of it */
  num_heads: number;
  /** MLP hidden width = mlp_ratio * embed_dim */
  mlp_ratio: number;
  /** bias on the fused qkv projection */
  qkv_bias: boolean;
  /** prepend a learned class token */
  class_token: boolean;
  /** 'token': classify from the class token; 'avg': mean of the patch tokens; 'map': timm's AttentionPoolLatent
   * (attn_pool.*, SigLIP's head); '': no pooling (forward_head sees every token) */
  global_pool: GlobalPool;
  /** LayerNorm after pooling instead of before it; null = timm's default (true when global_pool is 'avg') */
  fc_norm: boolean | null;
  /** 'learn': learned (1, N, D) embedding; 'sincos': fixed 2-D sin-cos; 'none': no position embedding */
  pos_embed: PosEmbedKind;
  /** LayerNorm epsilon: timm 1e-6, Hugging Face 1e-12 */
  layer_norm_eps: number;
  /** MLP activation: exact erf GELU, its tanh approximation, QuickGELU x*sigmoid(1.702x) (CLIP), SiLU (SwiGLU) */
  act: Activation;
  /** LayerScale init (blocks.i.ls1.gamma / ls2.gamma, shape (D)); null = no LayerScale (timm's init_values) */
  init_values: number | null;
  /** register tokens (reg_token (1, R, D)), after the class/distillation tokens (DINOv2 with registers) */
  reg_tokens: number;
  /** pos_embed covers the patch tokens only; prefix tokens are added without it (timm's no_embed_class) */
  no_embed_class: boolean;
  /** accept any input size divisible by the patch size, pos_embed resampled on the fly (bicubic) as timm does */
  dynamic_img_size: boolean;
  /** LayerNorm norm_pre after the position embedding (CLIP's ln_pre); timm then drops the patch-embedding bias */
  pre_norm: boolean;
  /** DeiT distillation token (dist_token) and second head (head_dist); eval output is the mean of both heads */
  distilled: boolean;
  /** 'mlp': fc1 -> act -> fc2; 'swiglu_packed': timm's SwiGLUPacked (fc1 packs [x, gate], act(x) * gate -> fc2) */
  mlp_layer: MlpLayer;
  /** explicit MLP hidden width (fc1 rows), e.g. Hugging Face's intermediate_size; null = floor(embed_dim * mlp_ratio) */
  mlp_hidden: number | null;
  /** antialias when pos_embed is resampled for another grid: timm true; Hugging Face Dinov2Model (no registers) false */
  pos_embed_antialias: boolean;
}

export const DEFAULT_CONFIG: ViTConfig = {
  img_size: 224, patch_size: 16, in_chans: 3, num_classes: 1000, embed_dim: 768, depth: 12, num_heads: 12,
  mlp_ratio: 4, qkv_bias: true, class_token: true, global_pool: 'token', fc_norm: null, pos_embed: 'learn',
  layer_norm_eps: 1e-6, act: 'gelu', init_values: null, reg_tokens: 0, no_embed_class: false, dynamic_img_size: false,
  pre_norm: false, distilled: false, mlp_layer: 'mlp', mlp_hidden: null, pos_embed_antialias: true,
};

const KEYS = Object.keys(DEFAULT_CONFIG) as (keyof ViTConfig)[];

/** Merge overrides onto defaults and validate every field (unknown keys are an error). */
export function resolveConfig(overrides: Partial<Record<string, unknown>>, where = 'config'): ViTConfig {
  for (const k of Object.keys(overrides)) {
    if (!(KEYS as string[]).includes(k)) {
      throw new VitkitError(`Unknown option ${JSON.stringify(k)} in ${where}; known options: ${KEYS.join(', ')}`);
    }
  }
  const c = { ...DEFAULT_CONFIG, ...overrides } as ViTConfig;
  const posInt = (k: keyof ViTConfig, min = 1) => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw expected(`an integer >= ${min}`, `${where}.${k}`, v);
  };
  posInt('img_size'); posInt('patch_size'); posInt('in_chans'); posInt('num_classes', 0); posInt('embed_dim');
  posInt('depth', 0); posInt('num_heads');
  if (typeof c.mlp_ratio !== 'number' || !(c.mlp_ratio > 0)) throw expected('a positive number', `${where}.mlp_ratio`, c.mlp_ratio);
  if (typeof c.layer_norm_eps !== 'number' || !(c.layer_norm_eps > 0)) throw expected('a positive number', `${where}.layer_norm_eps`, c.layer_norm_eps);
  if (typeof c.qkv_bias !== 'boolean') throw expected('a boolean', `${where}.qkv_bias`, c.qkv_bias);
  if (typeof c.class_token !== 'boolean') throw expected('a boolean', `${where}.class_token`, c.class_token);
  if (c.fc_norm !== null && typeof c.fc_norm !== 'boolean') throw expected('a boolean or null', `${where}.fc_norm`, c.fc_norm);
  if (!['token', 'avg', 'map', ''].includes(c.global_pool)) throw expected("'token', 'avg', 'map' or ''", `${where}.global_pool`, c.global_pool);
  if (!['learn', 'sincos', 'none'].includes(c.pos_embed)) throw expected("'learn', 'sincos' or 'none'", `${where}.pos_embed`, c.pos_embed);
  if (!['gelu', 'gelu_tanh', 'quick_gelu', 'silu'].includes(c.act)) throw expected("'gelu', 'gelu_tanh', 'quick_gelu' or 'silu'", `${where}.act`, c.act);
  if (c.init_values !== null && (typeof c.init_values !== 'number' || !Number.isFinite(c.init_values))) throw expected('a finite number or null', `${where}.init_values`, c.init_values);
  posInt('reg_tokens', 0);
  for (const k of ['no_embed_class', 'dynamic_img_size', 'pre_norm', 'distilled', 'pos_embed_antialias'] as const) {
    if (typeof c[k] !== 'boolean') throw expected('a boolean', `${where}.${k}`, c[k]);
  }
  if (c.mlp_layer !== 'mlp' && c.mlp_layer !== 'swiglu_packed') throw expected("'mlp' or 'swiglu_packed'", `${where}.mlp_layer`, c.mlp_layer);
  if (c.mlp_hidden !== null) {
    posInt('mlp_hidden');
    if (c.mlp_layer === 'swiglu_packed' && c.mlp_hidden % 2 !== 0) throw expected('an even integer (fc1 packs [x, gate])', `${where}.mlp_hidden`, c.mlp_hidden);
  }
  if (c.distilled && (!c.class_token || c.global_pool !== 'token')) {
    throw new VitkitError(`${where}.distilled needs class_token true and global_pool 'token' (timm's VisionTransformerDistilled)`);
  }
  if (c.img_size % c.patch_size !== 0) {
    throw new VitkitError(`${where}.img_size (${c.img_size}) must be a multiple of patch_size (${c.patch_size})`);
  }
  if (c.embed_dim % c.num_heads !== 0) {
    throw new VitkitError(`${where}.embed_dim (${c.embed_dim}) must be a multiple of num_heads (${c.num_heads})`);
  }
  if (c.global_pool === 'token' && !c.class_token) {
    throw new VitkitError(`${where}.global_pool 'token' needs class_token true; use global_pool 'avg' without a class token`);
  }
  return c;
}

/** Derived sizes used everywhere. */
export function dims(c: ViTConfig) {
  const grid = c.img_size / c.patch_size;
  const numPatches = grid * grid;
  const numPrefix = c.class_token ? 1 : 0;
  return {
    grid,
    numPatches,
    numPrefix,
    /** N: tokens per image */
    N: numPatches + numPrefix,
    D: c.embed_dim,
    NH: c.num_heads,
    HD: c.embed_dim / c.num_heads,
    /** MLP hidden width */
    H: c.mlp_hidden ?? Math.floor(c.embed_dim * c.mlp_ratio),
    /** patch vector length C * P * P */
    KP: c.in_chans * c.patch_size * c.patch_size,
    useFcNorm: c.fc_norm ?? c.global_pool === 'avg',
  };
}
