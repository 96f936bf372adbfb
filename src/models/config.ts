/**
 * ViTConfig: timm's VisionTransformer arguments, with timm's names and defaults.
 * Each field says what it controls; `resolveConfig` fills defaults and validates.
 */
import { VitkitError, expected, describe } from '../errors.js';

/** 'token': class token; 'avg': mean of the patch tokens; 'map': attention pooling (AttentionPoolLatent); '': no pooling (every token goes through the head) */
export type GlobalPool = 'token' | 'avg' | 'map' | '';
export type PosEmbedKind = 'learn' | 'sincos' | 'none';
/** MLP activation: exact erf GELU, tanh GELU, QuickGELU x*sigmoid(1.702x), SiLU x*sigmoid(x) */
export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu';
/** 'mlp': fc1 -> act -> fc2; 'swiglu_packed': timm's SwiGLUPacked (fc1 packs [x1, x2], act(x1) * x2 -> fc2) */
export type MlpLayer = 'mlp' | 'swiglu_packed';

export interface ViTConfig {
  /** input image size in pixels: a side (square) or [height, width] */
  img_size: number | [number, number];
  /** patch side in pixels; both image sides must be multiples of it */
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
  /** MLP hidden width = mlp_ratio * embed_dim (for swiglu_packed: fc1's packed width) */
  mlp_ratio: number;
  /** bias on the fused qkv projection */
  qkv_bias: boolean;
  /** prepend a learned class token */
  class_token: boolean;
  /** how the head input is pooled from the tokens (see GlobalPool) */
  global_pool: GlobalPool;
  /** LayerNorm after pooling instead of before it; null = timm's default (true when global_pool is 'avg') */
  fc_norm: boolean | null;
  /** 'learn': learned embedding; 'sincos': fixed 2-D sin-cos; 'none': no position embedding */
  pos_embed: PosEmbedKind;
  /** LayerNorm epsilon: timm 1e-6, CLIP 1e-5, Hugging Face 1e-12 */
  layer_norm_eps: number;
  /** MLP activation */
  act: Activation;
  /** LayerScale init value (`blocks.i.ls1.gamma`, `ls2.gamma`, shape (D)); null = no LayerScale */
  init_values: number | null;
  /** R register tokens (`reg_token` (1, R, D)); token order [cls, reg..., patches] */
  reg_tokens: number;
  /** pos_embed covers the patch tokens only; prefix tokens are concatenated after the add, without it */
  no_embed_class: boolean;
  /** accept any input size divisible by the patch size; pos_embed is resampled on the fly (bicubic, timm's resample_abs_pos_embed) */
  dynamic_img_size: boolean;
  /** LayerNorm `norm_pre` after the position embedding (CLIP's ln_pre) */
  pre_norm: boolean;
  /** DeiT distillation: `dist_token` (token order [cls, dist, patches]) and `head_dist`; eval output = mean of both heads */
  distilled: boolean;
  /** MLP kind of every block */
  mlp_layer: MlpLayer;
  /** explicit MLP hidden width (fc1 rows), e.g. Hugging Face's intermediate_size; null = floor(embed_dim * mlp_ratio) */
  mlp_hidden: number | null;
  /** antialias when pos_embed is resampled for another grid: timm true; Hugging Face Dinov2Model (no registers) false */
  pos_embed_antialias: boolean;
  /**
   * YOLOS: learned detection tokens (`det_token` (1, det_tokens, D)) appended after the patches
   * (token order [cls, patches, det]), each with its own row at the end of pos_embed; at another
   * patch count the grid rows are resampled and the class and det rows copied (InterpolateInitPosEmbed).
   */
  det_tokens: number;
}

export const DEFAULT_CONFIG: ViTConfig = {
  img_size: 224, patch_size: 16, in_chans: 3, num_classes: 1000, embed_dim: 768, depth: 12, num_heads: 12,
  mlp_ratio: 4, qkv_bias: true, class_token: true, global_pool: 'token', fc_norm: null, pos_embed: 'learn',
  layer_norm_eps: 1e-6, act: 'gelu', init_values: null, reg_tokens: 0, no_embed_class: false, dynamic_img_size: false,
  pre_norm: false, distilled: false, mlp_layer: 'mlp', mlp_hidden: null, pos_embed_antialias: true, det_tokens: 0,
};

const KEYS = Object.keys(DEFAULT_CONFIG) as (keyof ViTConfig)[];
const POOLS: readonly GlobalPool[] = ['token', 'avg', 'map', ''];
const ACTS: readonly Activation[] = ['gelu', 'gelu_tanh', 'quick_gelu', 'silu'];
const MLPS: readonly MlpLayer[] = ['mlp', 'swiglu_packed'];

/** [height, width] of the configured image size. */
export function imgHW(c: Pick<ViTConfig, 'img_size'>): [number, number] {
  return typeof c.img_size === 'number' ? [c.img_size, c.img_size] : [c.img_size[0], c.img_size[1]];
}

/** Merge overrides onto defaults and validate every field (unknown keys are an error). */
export function resolveConfig(overrides: Partial<Record<string, unknown>>, where = 'config'): ViTConfig {
  for (const k of Object.keys(overrides)) {
    if (!(KEYS as string[]).includes(k)) {
      throw new VitkitError(`Unknown option ${JSON.stringify(k)} in ${where}; known options: ${KEYS.join(', ')}`);
    }
  }
  const c = { ...DEFAULT_CONFIG, ...overrides } as ViTConfig;
  const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  const posInt = (k: keyof ViTConfig, min = 1) => {
    if (!isInt(c[k], min)) throw expected(`an integer >= ${min}`, `${where}.${k}`, c[k]);
  };
  const bool = (k: keyof ViTConfig) => {
    if (typeof c[k] !== 'boolean') throw expected('a boolean', `${where}.${k}`, c[k]);
  };
  const oneOf = <T>(k: keyof ViTConfig, allowed: readonly T[]) => {
    if (!allowed.includes(c[k] as T)) throw expected(`one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, `${where}.${k}`, c[k]);
  };
  if (Array.isArray(c.img_size)) {
    const s = c.img_size as unknown[];
    if (s.length !== 2 || !s.every((v) => isInt(v, 1))) throw expected('a positive integer or [height, width] of positive integers', `${where}.img_size`, c.img_size);
    c.img_size = [s[0] as number, s[1] as number];
  } else if (!isInt(c.img_size, 1)) {
    throw expected('a positive integer or [height, width] of positive integers', `${where}.img_size`, c.img_size);
  }
  posInt('patch_size'); posInt('in_chans'); posInt('num_classes', 0); posInt('embed_dim');
  posInt('depth', 0); posInt('num_heads'); posInt('reg_tokens', 0); posInt('det_tokens', 0);
  if (typeof c.mlp_ratio !== 'number' || !(c.mlp_ratio > 0)) throw expected('a positive number', `${where}.mlp_ratio`, c.mlp_ratio);
  if (typeof c.layer_norm_eps !== 'number' || !(c.layer_norm_eps > 0)) throw expected('a positive number', `${where}.layer_norm_eps`, c.layer_norm_eps);
  if (c.init_values !== null && (typeof c.init_values !== 'number' || !Number.isFinite(c.init_values))) {
    throw expected('a number or null', `${where}.init_values`, c.init_values);
  }
  for (const k of ['qkv_bias', 'class_token', 'no_embed_class', 'dynamic_img_size', 'pre_norm', 'distilled'] as const) bool(k);
  if (c.fc_norm !== null && typeof c.fc_norm !== 'boolean') throw expected('a boolean or null', `${where}.fc_norm`, c.fc_norm);
  oneOf('global_pool', POOLS);
  oneOf('pos_embed', ['learn', 'sincos', 'none'] as PosEmbedKind[]);
  oneOf('act', ACTS);
  oneOf('mlp_layer', MLPS);
  bool('pos_embed_antialias');
  if (c.mlp_hidden !== null) {
    posInt('mlp_hidden');
    if (c.mlp_layer === 'swiglu_packed' && c.mlp_hidden % 2 !== 0) throw expected('an even integer (fc1 packs [x, gate])', `${where}.mlp_hidden`, c.mlp_hidden);
  }
  if (c.distilled && (!c.class_token || c.global_pool !== 'token')) {
    throw new VitkitError(`${where}.distilled needs class_token true and global_pool 'token' (timm's VisionTransformerDistilled)`);
  }
  const [H, W] = imgHW(c);
  if (H % c.patch_size !== 0 || W % c.patch_size !== 0) {
    throw new VitkitError(`${where}.img_size (${describe(c.img_size)}) must be a multiple of patch_size (${c.patch_size}) on both sides`);
  }
  if (c.embed_dim % c.num_heads !== 0) {
    throw new VitkitError(`${where}.embed_dim (${c.embed_dim}) must be a multiple of num_heads (${c.num_heads})`);
  }
  if (c.global_pool === 'token' && !c.class_token) {
    throw new VitkitError(`${where}.global_pool 'token' needs class_token true; use global_pool 'avg' or 'map' without a class token`);
  }
  if (c.distilled) {
    if (!c.class_token || c.global_pool !== 'token') throw new VitkitError(`${where}.distilled needs class_token true and global_pool 'token' (DeiT), received class_token ${c.class_token}, global_pool ${JSON.stringify(c.global_pool)}`);
    if (c.reg_tokens > 0) throw new VitkitError(`${where}.distilled does not combine with reg_tokens (received reg_tokens ${c.reg_tokens})`);
  }
  if (c.mlp_layer === 'swiglu_packed' && c.mlp_hidden === null && Math.floor(c.embed_dim * c.mlp_ratio) % 2 !== 0) {
    throw new VitkitError(`${where}.mlp_layer 'swiglu_packed' needs an even hidden width, but embed_dim * mlp_ratio = ${Math.floor(c.embed_dim * c.mlp_ratio)}`);
  }
  if (c.det_tokens > 0 && (c.pos_embed !== 'learn' || c.no_embed_class || c.reg_tokens > 0 || c.distilled)) {
    throw new VitkitError(`${where}.det_tokens (YOLOS) needs pos_embed 'learn' over every token (no_embed_class false) and no register or distillation tokens`);
  }
  if (c.pos_embed === 'sincos' && c.embed_dim % 4 !== 0) {
    throw new VitkitError(`${where}.pos_embed 'sincos' needs embed_dim a multiple of 4, received ${c.embed_dim}`);
  }
  return c;
}

/** Token layout of one image: prefix tokens [cls, dist | reg...] then the patch grid, row-major. */
export interface TokenLayout {
  gridH: number;
  gridW: number;
  numPatches: number;
  /** class token present (always the first token) */
  cls: boolean;
  /** distillation tokens (0 or 1), after the class token */
  dist: number;
  /** register tokens, after the class token */
  reg: number;
  /** cls + dist + reg */
  numPrefix: number;
  /** YOLOS detection tokens after the patches (0 otherwise) */
  det: number;
  /** numPrefix + numPatches + det */
  N: number;
}

export function tokenLayout(c: ViTConfig, gridH?: number, gridW?: number): TokenLayout {
  const [H, W] = imgHW(c);
  const gh = gridH ?? H / c.patch_size, gw = gridW ?? W / c.patch_size;
  const cls = c.class_token, dist = c.distilled ? 1 : 0, reg = c.reg_tokens;
  const numPrefix = (cls ? 1 : 0) + dist + reg;
  const det = c.det_tokens ?? 0;
  return { gridH: gh, gridW: gw, numPatches: gh * gw, cls, dist, reg, numPrefix, det, N: numPrefix + gh * gw + det };
}

/** Derived sizes used everywhere (at the configured image size unless a grid is given). */
export function dims(c: ViTConfig, gridH?: number, gridW?: number) {
  const t = tokenLayout(c, gridH, gridW);
  const [imgH, imgW] = [t.gridH * c.patch_size, t.gridW * c.patch_size];
  const H = c.mlp_hidden ?? Math.floor(c.embed_dim * c.mlp_ratio);
  const Hact = c.mlp_layer === 'swiglu_packed' ? H / 2 : H;
  const cfgLayout = tokenLayout(c);
  return {
    ...t,
    /** grid side (height) — kept for square callers; use gridH / gridW */
    grid: t.gridH,
    imgH, imgW,
    D: c.embed_dim,
    NH: c.num_heads,
    HD: c.embed_dim / c.num_heads,
    /** MLP hidden width (fc1 outputs) */
    H,
    /** fc2 input width: H, or H / 2 for swiglu_packed */
    Hact,
    /** MAP attention pool's MLP width (timm AttentionPoolLatent: a plain Mlp of the blocks' width,
     * int(embed_dim * mlp_ratio) when the blocks are SwiGLU) */
    poolH: c.mlp_layer === 'swiglu_packed' ? Math.floor(c.embed_dim * c.mlp_ratio) : H,
    /** patch vector length C * P * P */
    KP: c.in_chans * c.patch_size * c.patch_size,
    useFcNorm: c.fc_norm ?? c.global_pool === 'avg',
    /** rows of the learned pos_embed (at the configured size) */
    posLen: c.no_embed_class ? cfgLayout.numPatches : cfgLayout.N,
    /** pos_embed grid at the configured size */
    posGridH: cfgLayout.gridH,
    posGridW: cfgLayout.gridW,
  };
}
