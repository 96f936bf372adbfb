/**
 * Checkpoints: timm's hub layout (config.json + model.safetensors with timm key names) and
 * Hugging Face's (ViTConfig config.json + model.safetensors with HF names + preprocessor_config.json).
 * Foreign layouts are adapted in one filter step (`hfToTimm`), as timm's checkpoint_filter_fn does.
 */
import { existsSync, readFileSync, statSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, shapeStr } from '../errors.js';
import { type ViTConfig, resolveConfig, dims, imgHW, DEFAULT_CONFIG } from '../models/config.js';
import { PRESETS, getPreset, type PretrainedCfg } from '../models/presets.js';
import { vitParamSpecs } from '../models/vit.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import { initWeights, initHead } from '../models/init.js';
import { ParamTable } from '../nn/params.js';
import { resampleAbsPosEmbed } from '../models/pos_embed.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from './safetensors.js';
import { type PreprocessConfig, preprocessFromTimm, preprocessFromHf } from './preprocess.js';
import { labelsFor } from './labels.js';
import type { Backend } from '../backend/backend.js';

export interface LoadedModel {
  model: Model;
  /** how images are turned into pixel_values for this checkpoint */
  preprocess: PreprocessConfig;
  /** one name per class */
  labels: string[];
  /** 'timm' | 'hf' checkpoint directory, or a 'preset' with random weights */
  format: 'timm' | 'hf' | 'preset';
  /** architecture name (timm) or model_type (hf) */
  name: string;
  /** timm pretrained_cfg to write back when saving */
  pretrainedCfg: Record<string, unknown>;
}

export interface LoadOptions {
  /** override the image size; the position embedding is resampled as timm does */
  imgSize?: number;
  /** replace the classifier with a fresh one of this many classes (fine-tuning) */
  numClasses?: number;
  backend?: Backend;
}

/** Options timm accepts that only matter for training regularization: accepted and ignored at inference. */
const TRAINING_ONLY_ARGS = new Set(['drop_rate', 'drop_path_rate', 'pos_drop_rate', 'attn_drop_rate', 'proj_drop_rate', 'patch_drop_rate', 'weight_init']);

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new VitkitError(`Cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new VitkitError(`${file} is not a valid JSON object (${(e as Error).message})`);
  }
}

/** timm config.json -> ViTConfig (architecture preset, then top-level num_classes/global_pool, then model_args) */
export function configFromTimm(cfg: Record<string, unknown>, file = 'config.json'): ViTConfig {
  const arch = cfg['architecture'];
  if (typeof arch !== 'string') throw new VitkitError(`${file} has no "architecture" string (expected e.g. "vit_base_patch16_224")`);
  const modelArgs = (cfg['model_args'] ?? {}) as Record<string, unknown>;
  let base: Partial<ViTConfig>;
  if (PRESETS[arch]) base = { ...getPreset(arch).args };
  else if (cfg['model_args']) base = {};
  else throw new VitkitError(`Unknown architecture ${JSON.stringify(arch)} in ${file} and no model_args; known: ${Object.keys(PRESETS).join(', ')}`);
  const over: Record<string, unknown> = { ...base };
  if (typeof cfg['num_classes'] === 'number') over['num_classes'] = cfg['num_classes'];
  if (typeof cfg['global_pool'] === 'string') over['global_pool'] = cfg['global_pool'];
  const pcfg = cfg['pretrained_cfg'] as Record<string, unknown> | undefined;
  const inputSize = pcfg?.['input_size'];
  if (Array.isArray(inputSize) && !('img_size' in modelArgs) && !('img_size' in base)) over['img_size'] = inputSize[1] === inputSize[2] ? inputSize[2] : [inputSize[1], inputSize[2]];
  for (const [k, v] of Object.entries(modelArgs)) {
    if (TRAINING_ONLY_ARGS.has(k)) continue;
    if (k === 'act_layer') {
      over['act'] = v === 'gelu_tanh' ? 'gelu_tanh' : v === 'gelu' ? 'gelu' : v;
      continue;
    }
    if (k === 'img_size' && Array.isArray(v)) {
      over[k] = v[0] === v[1] ? v[0] : v;
      continue;
    }
    over[k] = v;
  }
  return resolveConfig(over, `${file} (model_args)`);
}

/** HF ViTConfig -> ViTConfig */
export function configFromHf(cfg: Record<string, unknown>, file = 'config.json'): ViTConfig {
  const num = (k: string, dflt?: number): number => {
    const v = cfg[k] ?? dflt;
    if (typeof v !== 'number') throw new VitkitError(`${file} has no numeric "${k}"`);
    return v;
  };
  const hidden = num('hidden_size');
  const act = cfg['hidden_act'] ?? 'gelu';
  const actMap: Record<string, ViTConfig['act']> = { gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh' };
  if (typeof act !== 'string' || !actMap[act]) throw new VitkitError(`${file}: hidden_act ${JSON.stringify(act)} is not supported (expected gelu, gelu_new or gelu_pytorch_tanh)`);
  const id2label = cfg['id2label'] as Record<string, string> | undefined;
  const numLabels = id2label ? Object.keys(id2label).length : num('num_labels', 2);
  return resolveConfig({
    img_size: num('image_size', 224), patch_size: num('patch_size', 16), in_chans: num('num_channels', 3),
    num_classes: numLabels, embed_dim: hidden, depth: num('num_hidden_layers'), num_heads: num('num_attention_heads'),
    mlp_ratio: num('intermediate_size') / hidden, qkv_bias: cfg['qkv_bias'] === undefined ? true : Boolean(cfg['qkv_bias']),
    class_token: true, global_pool: 'token', fc_norm: false, pos_embed: 'learn',
    layer_norm_eps: num('layer_norm_eps', 1e-12), act: actMap[act]!,
  }, file);
}

type Raw = Map<string, { shape: number[]; data: Float32Array }>;

/** HF ViTForImageClassification keys -> timm keys (query/key/value fused into qkv). */
export function hfToTimm(raw: Raw, depth: number): Raw {
  const out: Raw = new Map();
  const take = (k: string) => {
    const v = raw.get(k);
    raw.delete(k);
    return v;
  };
  const map: [string, string][] = [
    ['vit.embeddings.cls_token', 'cls_token'],
    ['vit.embeddings.position_embeddings', 'pos_embed'],
    ['vit.embeddings.patch_embeddings.projection.weight', 'patch_embed.proj.weight'],
    ['vit.embeddings.patch_embeddings.projection.bias', 'patch_embed.proj.bias'],
    ['vit.layernorm.weight', 'norm.weight'], ['vit.layernorm.bias', 'norm.bias'],
    ['classifier.weight', 'head.weight'], ['classifier.bias', 'head.bias'],
  ];
  for (let i = 0; i < depth; i++) {
    const h = `vit.encoder.layer.${i}.`, t = `blocks.${i}.`;
    map.push([h + 'layernorm_before.weight', t + 'norm1.weight'], [h + 'layernorm_before.bias', t + 'norm1.bias'],
      [h + 'attention.output.dense.weight', t + 'attn.proj.weight'], [h + 'attention.output.dense.bias', t + 'attn.proj.bias'],
      [h + 'layernorm_after.weight', t + 'norm2.weight'], [h + 'layernorm_after.bias', t + 'norm2.bias'],
      [h + 'intermediate.dense.weight', t + 'mlp.fc1.weight'], [h + 'intermediate.dense.bias', t + 'mlp.fc1.bias'],
      [h + 'output.dense.weight', t + 'mlp.fc2.weight'], [h + 'output.dense.bias', t + 'mlp.fc2.bias']);
    for (const kind of ['weight', 'bias']) {
      const parts = ['query', 'key', 'value'].map((n) => take(`${h}attention.attention.${n}.${kind}`));
      if (parts.every((p) => p)) {
        const [q, k, v] = parts as { shape: number[]; data: Float32Array }[];
        const data = new Float32Array(q!.data.length * 3);
        data.set(q!.data, 0); data.set(k!.data, q!.data.length); data.set(v!.data, 2 * q!.data.length);
        out.set(`${t}attn.qkv.${kind}`, { shape: [q!.shape[0]! * 3, ...q!.shape.slice(1)], data });
      } else if (parts.some((p) => p)) {
        throw new VitkitError(`Checkpoint layer ${i} has only some of attention.attention.{query,key,value}.${kind}`);
      }
    }
  }
  for (const [from, to] of map) {
    const v = take(from);
    if (v) out.set(to, v);
  }
  // ViTModel's pooler is not part of ViTForImageClassification: drop it; anything else stays and is reported
  for (const k of [...raw.keys()]) if (k.startsWith('vit.pooler.')) raw.delete(k);
  for (const [k, v] of raw) out.set(k, v);
  return out;
}

/** Copy a state dict into a model, with pos_embed resampling and a precise report of mismatches. */
export function loadStateDict(model: Model, raw: Raw, where: string, opts: { skipHead?: boolean } = {}): void {
  const c = model.config, d = dims(c);
  const expectedNames = new Set(model.params.names());
  const missing = [...expectedNames].filter((k) => !raw.has(k) && !(opts.skipHead && k.startsWith('head.')));
  const extra = [...raw.keys()].filter((k) => !expectedNames.has(k) && !(opts.skipHead && k.startsWith('head.')));
  if (missing.length) throw new VitkitError(`Missing tensor${missing.length > 1 ? 's' : ''} in ${where}: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? `, ... (${missing.length} in all)` : ''}`);
  if (extra.length) throw new VitkitError(`Unexpected tensor${extra.length > 1 ? 's' : ''} in ${where}: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? `, ... (${extra.length} in all)` : ''}`);
  for (const name of model.params.names()) {
    if (opts.skipHead && name.startsWith('head.')) continue;
    let t = raw.get(name)!;
    if (name === 'pos_embed') {
      const want = model.params.shape(name);
      if (t.shape.length === 3 && t.shape[2] === want[2] && t.shape[1] !== want[1]) {
        const posPrefix = c.no_embed_class ? 0 : d.numPrefix; // timm: no prefix rows with no_embed_class
        const oldN = t.shape[1]! - posPrefix;
        const oldGrid = Math.round(Math.sqrt(oldN));
        if (oldGrid * oldGrid !== oldN) {
          throw new VitkitError(`Cannot resample pos_embed in ${where}: ${shapeStr(t.shape)} has ${oldN} patch positions, not a square grid`);
        }
        const data = resampleAbsPosEmbed(t.data, d.D, [oldGrid, oldGrid], [d.gridH, d.gridW], posPrefix);
        t = { shape: [1, d.posLen, d.D], data };
      }
    }
    model.params.set(name, t.shape, t.data, where);
  }
}

function readWeights(file: string): Raw {
  const st = readSafetensors(file);
  const raw: Raw = new Map();
  for (const k of st.keys()) raw.set(k, st.f32(k));
  return raw;
}

/** A fresh, head-reset config for fine-tuning. */
function applyOverrides(c: ViTConfig, opts: LoadOptions): ViTConfig {
  const over: Partial<ViTConfig> = {};
  if (opts.imgSize !== undefined) over.img_size = opts.imgSize;
  if (opts.numClasses !== undefined) over.num_classes = opts.numClasses;
  return resolveConfig({ ...c, ...over }, 'options');
}

/** Load a checkpoint directory (timm or HF layout) or build a preset with random weights. */
export function loadModel(source: string, opts: LoadOptions = {}): LoadedModel {
  if (!existsSync(source)) {
    if (PRESETS[source]) return presetModel(source, opts);
    if (/^[a-z]+_[a-z0-9_]+$/.test(source) && !source.includes('/')) getPreset(source); // throws "Unknown preset"
    throw new VitkitError(`Model ${source} not found: expected a checkpoint directory (config.json + model.safetensors) or a preset name`);
  }
  const dir = statSync(source).isDirectory() ? source : path.dirname(source);
  const cfgFile = path.join(dir, 'config.json');
  const weights = path.join(dir, 'model.safetensors');
  if (!existsSync(cfgFile)) throw new VitkitError(`No config.json in ${dir}: a checkpoint directory holds config.json and model.safetensors`);
  if (!existsSync(weights)) throw new VitkitError(`No model.safetensors in ${dir}: a checkpoint directory holds config.json and model.safetensors`);
  const cfg = readJson(cfgFile);
  const isHf = cfg['model_type'] === 'vit' || Array.isArray(cfg['architectures']);
  if (isHf) {
    const base = configFromHf(cfg, cfgFile);
    const config = applyOverrides(base, opts);
    const model = createModel(config, opts.backend ? { backend: opts.backend } : {});
    const raw = hfToTimm(readWeights(weights), base.depth);
    loadStateDict(model, raw, weights, { skipHead: opts.numClasses !== undefined && opts.numClasses !== base.num_classes });
    if (opts.numClasses !== undefined && opts.numClasses !== base.num_classes) initHead(model);
    const ppFile = path.join(dir, 'preprocessor_config.json');
    const pp = existsSync(ppFile) ? readJson(ppFile) : undefined;
    const id2label = cfg['id2label'] as Record<string, string> | undefined;
    const names = id2label ? Array.from({ length: base.num_classes }, (_, i) => id2label[String(i)] ?? `class_${i}`) : null;
    return {
      model, preprocess: preprocessFromHf(pp, imgHW(config)[0], config.in_chans),
      labels: labelsFor(config.num_classes, config.num_classes === base.num_classes ? names : null),
      format: 'hf', name: String(cfg['model_type'] ?? 'vit'), pretrainedCfg: {},
    };
  }
  const base = configFromTimm(cfg, cfgFile);
  const config = applyOverrides(base, opts);
  const model = createModel(config, opts.backend ? { backend: opts.backend } : {});
  const resetHead = opts.numClasses !== undefined && opts.numClasses !== base.num_classes;
  loadStateDict(model, readWeights(weights), weights, { skipHead: resetHead });
  if (resetHead) initHead(model);
  const pcfg = { ...((cfg['pretrained_cfg'] ?? {}) as Record<string, unknown>) };
  const names = (cfg['label_names'] ?? pcfg['label_names']) as string[] | undefined;
  return {
    model, preprocess: preprocessFromTimm(pcfg, config.img_size, config.in_chans),
    labels: labelsFor(config.num_classes, resetHead ? null : names), format: 'timm',
    name: String(cfg['architecture']), pretrainedCfg: pcfg,
  };
}

/** A preset with timm-style random initialization (trunc-normal std .02 weights, zero biases, unit norms). */
export function presetModel(name: string, opts: LoadOptions = {}, seed = 0): LoadedModel {
  const preset = getPreset(name);
  const config = applyOverrides(resolveConfig({ ...DEFAULT_CONFIG, ...preset.args }, name), opts);
  const model = createModel(config, opts.backend ? { backend: opts.backend } : {});
  initWeights(model, seed);
  const pcfg: Record<string, unknown> = { ...preset.pretrained_cfg, input_size: [config.in_chans, ...imgHW(config)] };
  return {
    model, preprocess: preprocessFromTimm(pcfg, config.img_size, config.in_chans),
    labels: labelsFor(config.num_classes), format: 'preset', name, pretrainedCfg: pcfg,
  };
}

export { mulberry32, initWeights } from '../models/init.js';

/** The config.json timm's save_for_hf writes, with model_args carrying the full configuration. */
export function timmConfigJson(name: string, config: ViTConfig, pretrainedCfg: Record<string, unknown>, labels?: readonly string[]): Record<string, unknown> {
  const { num_classes, global_pool, ...args } = config;
  const model_args: Record<string, unknown> = { ...args };
  if (model_args['act'] !== undefined) { model_args['act_layer'] = model_args['act']; delete model_args['act']; }
  const out: Record<string, unknown> = {
    architecture: PRESETS[name] ? name : 'vit_custom',
    num_classes, num_features: config.embed_dim, global_pool,
    model_args,
    pretrained_cfg: { ...pretrainedCfg, input_size: [config.in_chans, ...imgHW(config)], num_classes },
  };
  if (labels) out['label_names'] = [...labels];
  return out;
}

/** Write a checkpoint directory in timm's layout, each file atomically (temporary file, then rename). */
export function saveCheckpoint(dir: string, model: Pick<Model, 'params' | 'config'>, meta: { name: string; pretrainedCfg: Record<string, unknown>; labels?: readonly string[] }, opts: { overwrite?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, StTensorIn> = {};
  for (const spec of model.params.specs) tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: model.params.get(spec.name) };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' }, { overwrite: opts.overwrite ?? false });
  const cfgPath = path.join(dir, 'config.json');
  if (existsSync(cfgPath) && !opts.overwrite) throw new VitkitError(`Refusing to overwrite ${cfgPath}; pass overwrite to replace it`);
  const tmp = `${cfgPath}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(timmConfigJson(meta.name, model.config, meta.pretrainedCfg, meta.labels), null, 2) + '\n');
  renameSync(tmp, cfgPath);
}

export { vitParamSpecs, ParamTable };
export type { PretrainedCfg };
