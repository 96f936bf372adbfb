/**
 * ClipConfig: CLIP as open_clip's `CLIP` (model_cfg of open_clip_config.json) and transformers'
 * `CLIPConfig` define it, in one shape. Each tower is described in open_clip's terms; the image
 * tower becomes an engine ViTConfig (pre-norm, class token, ln_post = `norm`, no head) and the
 * text tower's blocks reuse the same block config with causal attention.
 */
import { VitkitError, expected, describe } from '../../errors.js';
import { type Activation, type ViTConfig, DEFAULT_CONFIG, resolveConfig } from '../config.js';

/** Where the text tower pools: open_clip's 'argmax' (of the ids; the end-of-text token has the largest id),
 * or HF's newer configs: the first position of `eos_token_id`. */
export type TextPool = { kind: 'argmax' } | { kind: 'eos'; id: number };

export interface ClipVisionConfig {
  /** image side in pixels, or [height, width] */
  image_size: number | [number, number];
  patch_size: number;
  width: number;
  layers: number;
  /** width / heads */
  head_width: number;
  mlp_ratio: number;
  /**
   * Any engine ViT as the image tower instead of OpenAI's (open_clip's TimmModel trunk, e.g. a
   * vitkit-trained ViT for LiT): its tensors are named `visual.trunk.<timm name>`, its pooled
   * pre-logits feed `visual.proj`. Not part of open_clip's or HF's config files.
   */
  vit?: ViTConfig;
}

export interface ClipTextConfig {
  context_length: number;
  vocab_size: number;
  width: number;
  heads: number;
  layers: number;
  mlp_ratio: number;
  pool: TextPool;
}

export interface ClipConfig {
  /** width of the joint embedding (both projections' output) */
  embed_dim: number;
  /** QuickGELU x*sigmoid(1.702x) in every MLP (OpenAI's weights) or exact GELU */
  act: Activation;
  layer_norm_eps: number;
  vision: ClipVisionConfig;
  text: ClipTextConfig;
  /** logit_scale of a freshly initialised model: ln(1 / 0.07) (open_clip's init_logit_scale) */
  init_logit_scale: number;
}

export const LOGIT_SCALE_MAX = Math.log(100);

function obj(v: unknown, where: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw expected('an object', where, v);
  return v as Record<string, unknown>;
}

function int(o: Record<string, unknown>, k: string, d: number | undefined, where: string, min = 1): number {
  const v = o[k] ?? d;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw expected(`an integer >= ${min}`, `${where}.${k}`, v);
  return v;
}

function num(o: Record<string, unknown>, k: string, d: number, where: string): number {
  const v = o[k] ?? d;
  if (typeof v !== 'number' || !(v > 0)) throw expected('a positive number', `${where}.${k}`, v);
  return v;
}

/** open_clip options vitkit does not implement: reject them by name instead of computing something else */
const OC_VISION_UNSUPPORTED = ['timm_model_name', 'attentional_pool', 'ls_init_value', 'patch_dropout_keep', 'no_ln_pre', 'final_ln_after_pool', 'pool_type', 'output_tokens', 'hf_model_name'];
const OC_TEXT_UNSUPPORTED = ['hf_model_name', 'embed_cls', 'ls_init_value', 'no_causal_mask', 'proj_bias', 'attn_mask'];
const OC_DEFAULTS: Record<string, unknown> = { pool_type: 'tok', final_ln_after_pool: false, no_ln_pre: false, output_tokens: false, attentional_pool: false, embed_cls: false, no_causal_mask: false, proj_bias: false };

function rejectUnsupported(o: Record<string, unknown>, keys: string[], where: string, textPool = false): void {
  for (const k of keys) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (k === 'pool_type' && textPool) continue;
    if (OC_DEFAULTS[k] !== undefined && v === OC_DEFAULTS[k]) continue;
    if (k === 'ls_init_value' || k === 'patch_dropout_keep') continue; // training-time / LayerScale checked elsewhere
    throw new VitkitError(`${where}.${k} = ${describe(v)} is not supported by vitkit's CLIP (only OpenAI-style ViT towers)`);
  }
}

/** model_cfg of open_clip_config.json (or an open_clip model config) -> ClipConfig */
export function configFromOpenClip(modelCfg: unknown, where = 'open_clip_config.json model_cfg'): ClipConfig {
  const m = obj(modelCfg, where);
  const v = obj(m['vision_cfg'], `${where}.vision_cfg`);
  const t = obj(m['text_cfg'], `${where}.text_cfg`);
  const vw = `${where}.vision_cfg`, tw = `${where}.text_cfg`;
  rejectUnsupported(v, OC_VISION_UNSUPPORTED, vw);
  rejectUnsupported(t, OC_TEXT_UNSUPPORTED, tw, true);
  if (v['ls_init_value'] !== undefined && v['ls_init_value'] !== null) throw new VitkitError(`${vw}.ls_init_value (LayerScale) is not supported by vitkit's CLIP`);
  if (t['ls_init_value'] !== undefined && t['ls_init_value'] !== null) throw new VitkitError(`${tw}.ls_init_value (LayerScale) is not supported by vitkit's CLIP`);
  const pt = t['pool_type'] ?? 'argmax';
  if (pt !== 'argmax') throw expected('"argmax" (pooling at the end-of-text token)', `${tw}.pool_type`, pt);
  if (v['layers'] !== undefined && typeof v['layers'] !== 'number') throw expected('an integer (a ViT image tower; ResNet towers are not supported)', `${vw}.layers`, v['layers']);
  const width = int(v, 'width', 768, vw);
  const headWidth = int(v, 'head_width', 64, vw);
  if (width % headWidth !== 0) throw new VitkitError(`${vw}.width (${width}) must be a multiple of head_width (${headWidth})`);
  let imageSize: number | [number, number];
  const is = v['image_size'] ?? 224;
  if (Array.isArray(is)) {
    if (is.length !== 2 || !is.every((x) => Number.isInteger(x) && (x as number) > 0)) throw expected('an integer or [height, width]', `${vw}.image_size`, is);
    imageSize = [is[0] as number, is[1] as number];
  } else {
    imageSize = int(v, 'image_size', 224, vw);
  }
  const qg = m['quick_gelu'] ?? false;
  if (typeof qg !== 'boolean') throw expected('a boolean', `${where}.quick_gelu`, qg);
  const tWidth = int(t, 'width', 512, tw);
  const heads = int(t, 'heads', 8, tw);
  if (tWidth % heads !== 0) throw new VitkitError(`${tw}.width (${tWidth}) must be a multiple of heads (${heads})`);
  const cfg: ClipConfig = {
    embed_dim: int(m, 'embed_dim', undefined, where),
    act: qg ? 'quick_gelu' : 'gelu',
    layer_norm_eps: 1e-5,
    vision: {
      image_size: imageSize, patch_size: int(v, 'patch_size', 16, vw), width, layers: int(v, 'layers', 12, vw, 0),
      head_width: headWidth, mlp_ratio: num(v, 'mlp_ratio', 4, vw),
    },
    text: {
      context_length: int(t, 'context_length', 77, tw, 2), vocab_size: int(t, 'vocab_size', 49408, tw), width: tWidth, heads,
      layers: int(t, 'layers', 12, tw, 0), mlp_ratio: num(t, 'mlp_ratio', 4, tw), pool: { kind: 'argmax' },
    },
    init_logit_scale: Math.log(1 / 0.07),
  };
  visionViTConfig(cfg); // validates the image tower
  return cfg;
}

/** transformers' CLIPConfig (config.json of a CLIPModel) -> ClipConfig */
export function configFromHfClip(json: unknown, where = 'config.json'): ClipConfig {
  const c = obj(json, where);
  const v = obj(c['vision_config'], `${where}.vision_config`);
  const t = obj(c['text_config'], `${where}.text_config`);
  const vw = `${where}.vision_config`, tw = `${where}.text_config`;
  const vAct = v['hidden_act'] ?? 'quick_gelu', tAct = t['hidden_act'] ?? 'quick_gelu';
  const actOf = (a: unknown, k: string): Activation => {
    if (a === 'quick_gelu') return 'quick_gelu';
    if (a === 'gelu') return 'gelu';
    throw expected('"quick_gelu" or "gelu"', k, a);
  };
  const act = actOf(vAct, `${vw}.hidden_act`);
  if (actOf(tAct, `${tw}.hidden_act`) !== act) throw new VitkitError(`${where}: the towers' hidden_act differ (${describe(vAct)} vs ${describe(tAct)}); vitkit's CLIP uses one activation`);
  const eps = num(v, 'layer_norm_eps', 1e-5, vw);
  if (num(t, 'layer_norm_eps', 1e-5, tw) !== eps) throw new VitkitError(`${where}: the towers' layer_norm_eps differ`);
  const width = int(v, 'hidden_size', 768, vw), vHeads = int(v, 'num_attention_heads', 12, vw);
  const tWidth = int(t, 'hidden_size', 512, tw), tHeads = int(t, 'num_attention_heads', 8, tw);
  if (width % vHeads !== 0) throw new VitkitError(`${vw}.hidden_size (${width}) must be a multiple of num_attention_heads (${vHeads})`);
  if (tWidth % tHeads !== 0) throw new VitkitError(`${tw}.hidden_size (${tWidth}) must be a multiple of num_attention_heads (${tHeads})`);
  const nc = int(v, 'num_channels', 3, vw);
  if (nc !== 3) throw expected('3', `${vw}.num_channels`, nc);
  // transformers' CLIPTextTransformer: eos_token_id 2 (the legacy default) pools at argmax(input_ids), else at the first eos_token_id
  const eos = int(t, 'eos_token_id', 2, tw, 0);
  const pool: TextPool = eos === 2 ? { kind: 'argmax' } : { kind: 'eos', id: eos };
  const proj = int(c, 'projection_dim', 512, where);
  const cfg: ClipConfig = {
    embed_dim: proj,
    act,
    layer_norm_eps: eps,
    vision: {
      image_size: int(v, 'image_size', 224, vw), patch_size: int(v, 'patch_size', 32, vw), width, layers: int(v, 'num_hidden_layers', 12, vw, 0),
      head_width: width / vHeads, mlp_ratio: int(v, 'intermediate_size', 3072, vw) / width,
    },
    text: {
      context_length: int(t, 'max_position_embeddings', 77, tw, 2), vocab_size: int(t, 'vocab_size', 49408, tw), width: tWidth, heads: tHeads,
      layers: int(t, 'num_hidden_layers', 12, tw, 0), mlp_ratio: int(t, 'intermediate_size', 2048, tw) / tWidth, pool,
    },
    init_logit_scale: typeof c['logit_scale_init_value'] === 'number' ? (c['logit_scale_init_value'] as number) : Math.log(1 / 0.07),
  };
  visionViTConfig(cfg);
  return cfg;
}

/** open_clip model_cfg for a ClipConfig (what vitkit writes back into open_clip_config.json) */
export function openClipModelCfg(c: ClipConfig): Record<string, unknown> {
  return {
    embed_dim: c.embed_dim,
    quick_gelu: c.act === 'quick_gelu',
    vision_cfg: { image_size: c.vision.image_size, layers: c.vision.layers, width: c.vision.width, patch_size: c.vision.patch_size, head_width: c.vision.head_width, mlp_ratio: c.vision.mlp_ratio },
    text_cfg: { context_length: c.text.context_length, vocab_size: c.text.vocab_size, width: c.text.width, heads: c.text.heads, layers: c.text.layers, mlp_ratio: c.text.mlp_ratio },
  };
}

/** The engine ViTConfig of the image tower: OpenAI's VisionTransformer is timm's with pre_norm (ln_pre),
 * class-token pooling, the final norm as ln_post, no classifier (the projection is CLIP's own). */
export function visionViTConfig(c: ClipConfig): ViTConfig {
  if (c.vision.vit) {
    const v = resolveConfig({ ...c.vision.vit, num_classes: 0 }, 'CLIP vision tower (trunk)');
    if (v.embed_dim !== c.vision.width) throw new VitkitError(`CLIP vision trunk embed_dim (${v.embed_dim}) must equal vision width (${c.vision.width})`);
    return v;
  }
  return resolveConfig({
    ...DEFAULT_CONFIG,
    img_size: c.vision.image_size, patch_size: c.vision.patch_size, in_chans: 3, num_classes: 0,
    embed_dim: c.vision.width, depth: c.vision.layers, num_heads: c.vision.width / c.vision.head_width,
    mlp_ratio: c.vision.mlp_ratio, qkv_bias: true, class_token: true, global_pool: 'token', fc_norm: false,
    pos_embed: 'learn', layer_norm_eps: c.layer_norm_eps, act: c.act, pre_norm: true,
  }, 'CLIP vision tower');
}

/** The block config of the text tower (its blocks are the ViT's, with causal attention). */
export function textBlockConfig(c: ClipConfig): ViTConfig {
  return resolveConfig({
    ...DEFAULT_CONFIG,
    img_size: 1, patch_size: 1, in_chans: 1, num_classes: 0,
    embed_dim: c.text.width, depth: c.text.layers, num_heads: c.text.heads, mlp_ratio: c.text.mlp_ratio,
    qkv_bias: true, class_token: false, global_pool: 'avg', fc_norm: false, pos_embed: 'none',
    layer_norm_eps: c.layer_norm_eps, act: c.act,
  }, 'CLIP text tower');
}
