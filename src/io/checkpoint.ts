/**
 * Checkpoints: timm's hub layout (config.json + model.safetensors with timm key names) and
 * Hugging Face's (config.json + model.safetensors with HF names + preprocessor_config.json) for ViT, DeiT,
 * DINOv2, CLIP and SigLIP image towers. Foreign layouts are adapted in one filter step (`hfToTimm`, by each
 * family's key map in src/models/families/<family>/layout.ts), as timm's checkpoint_filter_fn does.
 */
import { existsSync, statSync, mkdirSync } from 'node:fs';
import { readRegularFile, writeFileAtomic } from './files.js';
import path from 'node:path';
import { VitkitError, shapeStr } from '../errors.js';
import { type ViTConfig, resolveConfig, dims, imgHW } from '../models/config.js';
import { PRESETS, getPreset, presetConfig, type PretrainedCfg } from '../models/presets.js';
import { vitParamSpecs } from '../models/vit.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import '../backend/index.js'; // Node: registers the native backend (loaded on first use) as the default
import { initWeights, initHead } from '../models/init.js';
import { ParamTable } from '../nn/params.js';
import { resampleAbsPosEmbed } from '../models/pos_embed.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from './safetensors.js';
import { HF_LAYOUTS, hfLayoutFor, isHfConfig } from '../models/families/index.js';
import { HfConfig, hfLabels, hfToTimm as layoutHfToTimm, timmToHf, type HfLayout, type StateDict } from '../models/families/hf.js';
import { configFromTimmJson, timmConfigJson as timmConfigJsonImpl, timmLabelNames } from '../models/families/timm.js';
import { type PreprocessConfig, preprocessFromTimm, preprocessFromHf } from './preprocess.js';
import { labelsFor } from './labels.js';
import { checkCheckpointConfig, checkFinite } from './validate.js';
import type { Backend } from '../backend/backend.js';

export interface LoadedModel {
  model: Model;
  /** how images are turned into pixel_values for this checkpoint */
  preprocess: PreprocessConfig;
  /** one name per class */
  labels: string[];
  /** 'timm' | 'hf' checkpoint directory, or a 'preset' with random weights */
  format: 'timm' | 'hf' | 'preset';
  /** architecture name (timm) or the HF architecture class (e.g. Dinov2Model) */
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

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readRegularFile(file, 'JSON file', 64 << 20).toString('utf8');
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

/** timm config.json -> ViTConfig (architecture registration, then the pretrained cfg's defaults, then model_args) */
export function configFromTimm(cfg: Record<string, unknown>, file = 'config.json'): ViTConfig {
  return configFromTimmJson(cfg, file);
}

/** HF config.json (any supported architecture) -> ViTConfig */
export function configFromHf(cfg: Record<string, unknown>, file = 'config.json'): ViTConfig {
  const layout = hfLayoutFor(cfg, file);
  return resolveConfig(layout.configFromHf(new HfConfig(cfg, file)), file);
}

type Raw = Map<string, { shape: number[]; data: Float32Array }>;

/** HF keys -> timm keys by the layout's key map (ViTForImageClassification when not given); shapes checked per tensor. */
export function hfToTimm(raw: Raw, config: ViTConfig, layout: HfLayout = HF_LAYOUTS['ViTForImageClassification']!, where = 'model.safetensors'): Raw {
  return layoutHfToTimm(layout, config, raw, where);
}

/** the classifier's parameters (DeiT's distillation head too): replaced when the class count changes */
const HEAD_PARAM = /^head(_dist)?\./;

/** Copy a state dict into a model, with pos_embed resampling and a precise report of mismatches. */
export function loadStateDict(model: Model, raw: Raw, where: string, opts: { skipHead?: boolean } = {}): void {
  const c = model.config, d = dims(c);
  const expectedNames = new Set(model.params.names());
  const isHead = (k: string) => opts.skipHead === true && HEAD_PARAM.test(k);
  const missing = [...expectedNames].filter((k) => !raw.has(k) && !isHead(k));
  const extra = [...raw.keys()].filter((k) => !expectedNames.has(k) && !isHead(k));
  if (missing.length) throw new VitkitError(`Missing tensor${missing.length > 1 ? 's' : ''} in ${where}: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? `, ... (${missing.length} in all)` : ''}`);
  if (extra.length) throw new VitkitError(`Unexpected tensor${extra.length > 1 ? 's' : ''} in ${where}: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? `, ... (${extra.length} in all)` : ''}`);
  for (const name of model.params.names()) {
    if (isHead(name)) continue;
    let t = raw.get(name)!;
    if (name === 'pos_embed') {
      const want = model.params.shape(name);
      if (t.shape.length === 3 && t.shape[2] === want[2] && t.shape[1] !== want[1]) {
        const posPrefix = c.no_embed_class ? 0 : d.numPrefix; // timm: no prefix rows with no_embed_class
        const oldN = t.shape[1]! - posPrefix;
        const oldGrid = Math.round(Math.sqrt(oldN));
        if (oldN <= 0 || oldGrid * oldGrid !== oldN) {
          throw new VitkitError(`Cannot resample pos_embed in ${where}: ${shapeStr(t.shape)} has ${oldN} patch positions, not a square grid`);
        }
        const data = resampleAbsPosEmbed(t.data, d.D, [oldGrid, oldGrid], [d.gridH, d.gridW], posPrefix, c.pos_embed_antialias);
        t = { shape: [1, d.posLen, d.D], data };
      }
    }
    model.params.set(name, t.shape, t.data, where);
  }
}

/** HF buffers that are not parameters (integer position ids) */
const HF_BUFFERS = /(^|\.)position_ids$/;

function readWeights(file: string, opts: { dropBuffers?: boolean } = {}): Raw {
  const st = readSafetensors(file);
  const raw: Raw = new Map();
  for (const k of st.keys()) {
    if (opts.dropBuffers && HF_BUFFERS.test(k)) continue;
    const t = st.f32(k);
    checkFinite(t.data, t.shape, k, file);
    raw.set(k, t);
  }
  return raw;
}

/** image processors whose integer `size` means the shortest edge (transformers' get_size_dict(size, default_to_square=False)) */
const SHORTEST_EDGE_PROCESSORS = new Set(['CLIPImageProcessor', 'CLIPFeatureExtractor', 'BitImageProcessor', 'ChineseCLIPImageProcessor']);

/** A preprocessor_config.json in the explicit form preprocessFromHf reads: CLIP's and DINOv2's `size: 224` is {shortest_edge: 224}. */
export function normalizeHfProcessor(pp: Record<string, unknown>): Record<string, unknown> {
  const type = pp['image_processor_type'] ?? pp['feature_extractor_type'];
  if (typeof type === 'string' && SHORTEST_EDGE_PROCESSORS.has(type) && typeof pp['size'] === 'number') {
    return { ...pp, size: { shortest_edge: pp['size'] } };
  }
  return pp;
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
  if (isHfConfig(cfg)) {
    const layout = hfLayoutFor(cfg, cfgFile);
    const hfCfg = new HfConfig(cfg, cfgFile);
    const base = resolveConfig(layout.configFromHf(hfCfg), cfgFile);
    const names = layout.hasClassifier ? hfLabels(hfCfg, base.num_classes) : null;
    const config = applyOverrides(base, opts);
    const resetHead = opts.numClasses !== undefined && opts.numClasses !== base.num_classes;
    checkCheckpointConfig(base, config, weights, cfgFile, opts);
    const raw = layoutHfToTimm(layout, base, readWeights(weights, { dropBuffers: true }), weights);
    const model = createModel(config, opts.backend ? { backend: opts.backend } : {});
    loadStateDict(model, raw, weights, { skipHead: resetHead });
    if (resetHead) initHead(model);
    const ppFile = path.join(dir, 'preprocessor_config.json');
    const pp = existsSync(ppFile) ? normalizeHfProcessor(readJson(ppFile)) : undefined;
    return {
      model, preprocess: preprocessFromHf(pp, imgHW(config)[0], config.in_chans),
      labels: labelsFor(config.num_classes, resetHead ? null : names),
      format: 'hf', name: layout.architecture, pretrainedCfg: {},
    };
  }
  const base = configFromTimm(cfg, cfgFile);
  const config = applyOverrides(base, opts);
  checkCheckpointConfig(base, config, weights, cfgFile, opts);
  const model = createModel(config, opts.backend ? { backend: opts.backend } : {});
  const resetHead = opts.numClasses !== undefined && opts.numClasses !== base.num_classes;
  const raw = readWeights(weights);
  loadStateDict(model, raw, weights, { skipHead: resetHead });
  if (resetHead) initHead(model);
  const pcfg = { ...((cfg['pretrained_cfg'] ?? {}) as Record<string, unknown>) };
  const names = timmLabelNames(cfg, cfgFile);
  return {
    model, preprocess: preprocessFromTimm(pcfg, imgHW(config), config.in_chans),
    labels: labelsFor(config.num_classes, resetHead ? null : names), format: 'timm',
    name: String(cfg['architecture']), pretrainedCfg: pcfg,
  };
}

/** A preset with timm-style random initialization (trunc-normal std .02 weights, zero biases, unit norms). */
export function presetModel(name: string, opts: LoadOptions = {}, seed = 0): LoadedModel {
  const preset = getPreset(name);
  const config = applyOverrides(presetConfig(name), opts);
  const model = createModel(config, opts.backend ? { backend: opts.backend } : {});
  initWeights(model, seed);
  const [h, w] = imgHW(config);
  const pcfg: Record<string, unknown> = { ...preset.pretrained_cfg, input_size: [config.in_chans, h, w], num_classes: config.num_classes };
  return {
    model, preprocess: preprocessFromTimm(pcfg, [h, w], config.in_chans),
    labels: labelsFor(config.num_classes), format: 'preset', name, pretrainedCfg: pcfg,
  };
}

export { mulberry32, initWeights } from '../models/init.js';

/** The config.json timm's save_for_hf writes: a real timm architecture and only model_args timm accepts (see families/timm.ts). */
export function timmConfigJson(name: string, config: ViTConfig, pretrainedCfg: Record<string, unknown>, labels?: readonly string[]): Record<string, unknown> {
  return timmConfigJsonImpl(name, config, pretrainedCfg, labels);
}

/** Write a checkpoint directory in timm's layout, each file atomically (temporary file, then rename). */
export function saveCheckpoint(dir: string, model: Pick<Model, 'params' | 'config'>, meta: { name: string; pretrainedCfg: Record<string, unknown>; labels?: readonly string[] }, opts: { overwrite?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, StTensorIn> = {};
  for (const spec of model.params.specs) tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: model.params.get(spec.name) };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' }, { overwrite: opts.overwrite ?? false });
  const cfgPath = path.join(dir, 'config.json');
  if (existsSync(cfgPath) && !opts.overwrite) throw new VitkitError(`Refusing to overwrite ${cfgPath}; pass overwrite to replace it`);
  writeFileAtomic(cfgPath, JSON.stringify(timmConfigJson(meta.name, model.config, meta.pretrainedCfg, meta.labels), null, 2) + '\n', { overwrite: true, what: 'checkpoint config' });
}

/**
 * Write a timm state dict as a Hugging Face checkpoint directory of the given architecture
 * (config.json + model.safetensors), converted by the layout's key map (the inverse of loading).
 * Used to check every HF layout against the timm references; atomic per file, never overwriting.
 */
export function saveHfCheckpoint(dir: string, architecture: string, config: ViTConfig, state: StateDict, opts: { labels?: readonly string[]; overwrite?: boolean } = {}): void {
  const layout = HF_LAYOUTS[architecture];
  if (!layout) throw new VitkitError(`Unknown Hugging Face architecture ${architecture}; known: ${Object.keys(HF_LAYOUTS).join(', ')}`);
  const hf = timmToHf(layout, config, state);
  mkdirSync(dir, { recursive: true });
  const cfgPath = path.join(dir, 'config.json');
  if (existsSync(cfgPath) && !opts.overwrite) throw new VitkitError(`Refusing to overwrite ${cfgPath}; pass overwrite to replace it`);
  const tensors: Record<string, StTensorIn> = {};
  for (const [k, t] of hf) tensors[k] = { dtype: 'F32', shape: t.shape, data: t.data };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' }, { overwrite: opts.overwrite ?? false });
  writeFileAtomic(cfgPath, JSON.stringify(layout.hfConfigFrom(config, opts.labels), null, 2) + '\n', { overwrite: true, what: 'checkpoint config' });
}

export { vitParamSpecs, ParamTable };
export type { PretrainedCfg };
