/**
 * timm's hub layout: config.json = { architecture, num_classes, num_features, global_pool, model_args,
 * pretrained_cfg[, label_names] } with timm's state_dict names. Reading merges in timm's order (the
 * architecture's registration kwargs, then the pretrained cfg's num_classes / in_chans / img_size where
 * those are unset, then model_args). Writing names a real timm architecture and puts into model_args
 * only keyword arguments timm's VisionTransformer.__init__ accepts, so `timm.create_model` loads it.
 */
import { VitkitError } from '../../errors.js';
import { type ViTConfig, DEFAULT_CONFIG, resolveConfig } from '../../models/config.js';
import { PRESETS, archDefaults } from '../../models/presets.js';
import { imgHW } from './hf.js';

/** VisionTransformer.__init__ keyword arguments (timm 1.0.20, timm/models/vision_transformer.py) that vitkit writes. */
export const TIMM_WRITTEN_KWARGS = [
  'img_size', 'patch_size', 'in_chans', 'num_classes', 'global_pool', 'embed_dim', 'depth', 'num_heads', 'mlp_ratio',
  'qkv_bias', 'init_values', 'class_token', 'pos_embed', 'no_embed_class', 'reg_tokens', 'pre_norm', 'fc_norm',
  'dynamic_img_size', 'act_layer',
] as const;

/** timm kwargs that only change training (dropout, init): accepted and ignored */
const TRAINING_ONLY = new Set(['drop_rate', 'drop_path_rate', 'pos_drop_rate', 'attn_drop_rate', 'proj_drop_rate', 'patch_drop_rate', 'weight_init', 'fix_init']);
/** timm kwargs vitkit implements only at these values */
const FIXED: Record<string, unknown> = {
  qk_norm: false, scale_attn_norm: false, scale_mlp_norm: false, proj_bias: true, final_norm: true,
  pool_include_prefix: false, dynamic_img_pad: false, embed_norm_layer: null,
};
const ACTS: Record<string, ViTConfig['act']> = { gelu: 'gelu', gelu_tanh: 'gelu_tanh', quick_gelu: 'quick_gelu', silu: 'silu', swish: 'silu' };

/** vitkit settings timm's model_args cannot carry (written under the top-level "vitkit_args", which timm ignores) */
const VITKIT_ONLY = ['layer_norm_eps', 'mlp_layer', 'mlp_hidden', 'distilled', 'pos_embed_antialias', 'det_tokens'] as const;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** model_args (timm names) -> vitkit overrides */
export function fromTimmArgs(args: Record<string, unknown>, file: string): Record<string, unknown> {
  const over: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    if (TRAINING_ONLY.has(k)) continue;
    if (k in FIXED) {
      if (v !== FIXED[k] && !(v === undefined)) throw new VitkitError(`${file}: model_args.${k} ${JSON.stringify(v)} is not supported (vitkit implements ${k} ${JSON.stringify(FIXED[k])})`);
      continue;
    }
    if (k === 'act_layer' || k === 'act') {
      if (typeof v !== 'string' || !ACTS[v]) throw new VitkitError(`${file}: model_args.${k} ${JSON.stringify(v)} is not supported (expected one of ${Object.keys(ACTS).join(', ')})`);
      over['act'] = ACTS[v];
      continue;
    }
    if (k === 'norm_layer') {
      if (v !== null && v !== 'layernorm') throw new VitkitError(`${file}: model_args.norm_layer ${JSON.stringify(v)} is not supported (expected "layernorm")`);
      continue;
    }
    if (k === 'img_size' && Array.isArray(v) && v.length === 2 && v[0] === v[1]) {
      over[k] = v[0];
      continue;
    }
    if (k === 'pos_embed' && v === '') { over[k] = 'none'; continue; }
    over[k] = v;
  }
  return over;
}

/** timm config.json -> ViTConfig, in timm's merge order */
export function configFromTimmJson(cfg: Record<string, unknown>, file = 'config.json'): ViTConfig {
  const arch = cfg['architecture'];
  if (typeof arch !== 'string') throw new VitkitError(`${file} has no "architecture" string (expected e.g. "vit_base_patch16_224")`);
  const modelArgs = cfg['model_args'] ?? {};
  if (!isObj(modelArgs)) throw new VitkitError(`${file}: expected an object for "model_args" but received ${JSON.stringify(modelArgs)}`);
  const pcfgIn = cfg['pretrained_cfg'] ?? {};
  if (!isObj(pcfgIn)) throw new VitkitError(`${file}: expected an object for "pretrained_cfg" but received ${JSON.stringify(pcfgIn)}`);
  // timm's load_model_config_from_hf: the top-level num_classes replaces the pretrained cfg's
  const pcfg: Record<string, unknown> = { ...pcfgIn };
  for (const [where, v] of [['num_classes', cfg['num_classes']], ['pretrained_cfg.num_classes', pcfgIn['num_classes']]] as const) {
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1 << 24)) {
      throw new VitkitError(`${file}: expected an integer in [0, 16777216] for "${where}" but received ${JSON.stringify(v)}`);
    }
  }
  if (typeof cfg['num_classes'] === 'number') pcfg['num_classes'] = cfg['num_classes'];
  let base: Record<string, unknown>;
  if (PRESETS[arch]) base = archDefaults(arch, pcfg);
  else if (cfg['model_args']) {
    // an architecture vitkit has no preset for: model_args must carry it all (older vitkit wrote "vit_custom")
    base = {};
    if (typeof pcfg['num_classes'] === 'number') base['num_classes'] = pcfg['num_classes'];
    const inputSize = pcfg['input_size'];
    if (Array.isArray(inputSize) && inputSize.length === 3) base['img_size'] = inputSize[1] === inputSize[2] ? inputSize[1] : [inputSize[1], inputSize[2]];
  } else {
    throw new VitkitError(`Unknown architecture ${JSON.stringify(arch)} in ${file} and no model_args; known: ${Object.keys(PRESETS).join(', ')}`);
  }
  if (typeof cfg['global_pool'] === 'string' && !('global_pool' in base)) base['global_pool'] = cfg['global_pool'];
  const over = { ...fromTimmArgs(base, file), ...fromTimmArgs(modelArgs, file) };
  const extra = cfg['vitkit_args'] ?? {};
  if (!isObj(extra)) throw new VitkitError(`${file}: expected an object for "vitkit_args" but received ${JSON.stringify(extra)}`);
  return resolveConfig({ ...over, ...extra }, `${file} (model_args)`);
}

/** the settings of `c` that model_args cannot express, as an architecture would fix them */
function hiddenProps(c: Pick<ViTConfig, 'layer_norm_eps' | 'mlp_layer' | 'distilled'>) {
  return { layer_norm_eps: c.layer_norm_eps, mlp_layer: c.mlp_layer, distilled: c.distilled };
}

/**
 * The timm architecture to name for `c`: `name` when it is one and builds the same hidden settings
 * (norm eps, MLP kind, distillation), else the first registered architecture that does, else one
 * that matches all but the LayerNorm eps (which then only vitkit restores, from vitkit_args).
 */
export function timmArchitectureFor(name: string, c: ViTConfig): string {
  const want = hiddenProps(c);
  const props = (n: string) => hiddenProps({ ...DEFAULT_CONFIG, ...PRESETS[n]!.args });
  const same = (a: ReturnType<typeof hiddenProps>, strictEps: boolean) =>
    a.mlp_layer === want.mlp_layer && a.distilled === want.distilled && (!strictEps || a.layer_norm_eps === want.layer_norm_eps);
  if (PRESETS[name] && same(props(name), true)) return name;
  const names = Object.keys(PRESETS);
  if (PRESETS[name]) names.unshift(name); // among equals, keep the caller's architecture
  return names.find((n) => same(props(n), true)) ?? names.find((n) => same(props(n), false)) ?? 'vit_base_patch16_224';
}

/** mlp_ratio such that timm's int(embed_dim * mlp_ratio) is the MLP width */
export function timmMlpRatio(c: ViTConfig): number {
  if (c.mlp_hidden === null) return c.mlp_ratio;
  const H = c.mlp_hidden, D = c.embed_dim;
  return Math.floor(D * (H / D)) === H ? H / D : (H + 0.5) / D;
}

/** The config.json timm's save_for_hf writes, loadable by timm.create_model; vitkit-only settings in vitkit_args. */
export function timmConfigJson(name: string, config: ViTConfig, pretrainedCfg: Record<string, unknown>, labels?: readonly string[]): Record<string, unknown> {
  const architecture = timmArchitectureFor(name, config);
  const [h, w] = imgHW(config);
  const model_args: Record<string, unknown> = {
    img_size: h === w ? h : [h, w], patch_size: config.patch_size, in_chans: config.in_chans, num_classes: config.num_classes,
    global_pool: config.global_pool, embed_dim: config.embed_dim, depth: config.depth, num_heads: config.num_heads,
    mlp_ratio: timmMlpRatio(config), qkv_bias: config.qkv_bias, init_values: config.init_values, class_token: config.class_token,
    pos_embed: config.pos_embed === 'learn' ? 'learn' : 'none', no_embed_class: config.no_embed_class, reg_tokens: config.reg_tokens,
    pre_norm: config.pre_norm, fc_norm: config.fc_norm, dynamic_img_size: config.dynamic_img_size, act_layer: config.act,
  };
  // what the named architecture builds by itself and model_args cannot say
  const archCfg = { ...DEFAULT_CONFIG, ...PRESETS[architecture]!.args };
  const vitkit_args: Record<string, unknown> = {};
  for (const k of VITKIT_ONLY) {
    if (k === 'mlp_hidden') { if (config.mlp_hidden !== null) vitkit_args[k] = config.mlp_hidden; continue; }
    if (config[k] !== archCfg[k]) vitkit_args[k] = config[k];
  }
  if (config.pos_embed === 'sincos') vitkit_args['pos_embed'] = 'sincos';
  if (model_args['mlp_ratio'] !== config.mlp_ratio) vitkit_args['mlp_ratio'] = config.mlp_ratio;
  const out: Record<string, unknown> = {
    architecture, num_classes: config.num_classes, num_features: config.embed_dim, global_pool: config.global_pool, model_args,
    pretrained_cfg: { ...pretrainedCfg, input_size: [config.in_chans, h, w], num_classes: config.num_classes },
  };
  if (Object.keys(vitkit_args).length) out['vitkit_args'] = vitkit_args;
  if (labels) out['label_names'] = [...labels];
  return out;
}

/** label_names of a timm config.json: a list of strings (a string is not split into characters) */
export function timmLabelNames(cfg: Record<string, unknown>, file: string): string[] | null {
  const pcfg = isObj(cfg['pretrained_cfg']) ? cfg['pretrained_cfg'] : {};
  const v = cfg['label_names'] ?? pcfg['label_names'];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new VitkitError(`${file}: expected a list of strings for "label_names" but received ${JSON.stringify(v).slice(0, 60)}`);
  }
  return v as string[];
}
