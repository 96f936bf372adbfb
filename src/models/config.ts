/**
 * ViTConfig: timm's VisionTransformer arguments, with timm's names and defaults.
 * Each field says what it controls; `resolveConfig` fills defaults and validates.
 */
import { VitkitError, expected } from '../errors.js';

export type GlobalPool = 'token' | 'avg';
export type PosEmbedKind = 'learn' | 'sincos' | 'none';
export type Activation = 'gelu' | 'gelu_tanh';

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
  /** 'token': classify from the class token; 'avg': mean of the patch tokens */
  global_pool: GlobalPool;
  /** LayerNorm after pooling instead of before it; null = timm's default (true when global_pool is 'avg') */
  fc_norm: boolean | null;
  /** 'learn': learned (1, N, D) embedding; 'sincos': fixed 2-D sin-cos; 'none': no position embedding */
  pos_embed: PosEmbedKind;
  /** LayerNorm epsilon: timm 1e-6, Hugging Face 1e-12 */
  layer_norm_eps: number;
  /** MLP activation: exact erf GELU or the tanh approximation */
  act: Activation;
}

export const DEFAULT_CONFIG: ViTConfig = {
  img_size: 224, patch_size: 16, in_chans: 3, num_classes: 1000, embed_dim: 768, depth: 12, num_heads: 12,
  mlp_ratio: 4, qkv_bias: true, class_token: true, global_pool: 'token', fc_norm: null, pos_embed: 'learn',
  layer_norm_eps: 1e-6, act: 'gelu',
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
  if (c.global_pool !== 'token' && c.global_pool !== 'avg') throw expected("'token' or 'avg'", `${where}.global_pool`, c.global_pool);
  if (!['learn', 'sincos', 'none'].includes(c.pos_embed)) throw expected("'learn', 'sincos' or 'none'", `${where}.pos_embed`, c.pos_embed);
  if (c.act !== 'gelu' && c.act !== 'gelu_tanh') throw expected("'gelu' or 'gelu_tanh'", `${where}.act`, c.act);
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
    H: Math.floor(c.embed_dim * c.mlp_ratio),
    /** patch vector length C * P * P */
    KP: c.in_chans * c.patch_size * c.patch_size,
    useFcNorm: c.fc_norm ?? c.global_pool === 'avg',
  };
}
