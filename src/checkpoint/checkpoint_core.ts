/**
 * Checkpoints without a file system (part of the core): a checkpoint's config.json (parsed), its
 * model.safetensors (bytes) and, for Hugging Face, its preprocessor_config.json (parsed) become
 * the model, its preprocessing and its labels. Both layouts: timm's hub layout (timm key names)
 * and Hugging Face's (HF names, adapted in one filter step, `hfToTimm`, by each family's key map
 * in src/checkpoint/layouts/<family>.ts, as timm's checkpoint_filter_fn does) for ViT, DeiT,
 * DINOv2, CLIP and SigLIP image towers. checkpoint/checkpoint.ts is the thin Node wrapper that reads a
 * checkpoint directory and calls this; both give the same model and the same error messages,
 * which name the files (`files` / `name` say what to call them here).
 *
 * The order is the folder loader's: config parsed and checked against the weights' header before
 * anything is allocated, then every tensor decoded and checked finite, then the model built.
 */
import { VitkitError, shapeStr, expected } from '../errors.js';
import { checkJsonDepth } from '../io/json.js';
import { type ViTConfig, resolveConfig, dims, imgHW } from '../models/config.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import { initHead } from '../models/init.js';
import { resampleAbsPosEmbed } from '../models/pos_embed.js';
import { HF_LAYOUTS, hfLayoutFor, isHfConfig } from './layouts/index.js';
import { HfConfig, hfLabels, hfToTimm as layoutHfToTimm, type HfLayout } from './layouts/hf.js';
import { configFromTimmJson, timmConfigJson as timmConfigJsonImpl, timmLabelNames } from './layouts/timm.js';
import { parseSafetensors, parseSafetensorsHeader, type SafetensorsFile, type StEntry } from '../io/safetensors_bytes.js';
import { type PreprocessConfig, preprocessFromTimm, preprocessFromHf } from '../io/preprocess_pixels.js';
import { labelsFrom } from '../io/labels_core.js';
import { checkCheckpointEntries, checkFinite } from './validate_core.js';
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

/** What the files of a checkpoint are called in messages. */
export interface CheckpointFileNames {
  config: string;
  weights: string;
  preprocessorConfig: string;
}

/** A checkpoint in memory: what a checkpoint directory holds, already read. */
export interface CheckpointBytes {
  /** config.json, parsed (or its text, or its UTF-8 bytes) */
  config: Record<string, unknown> | string | Uint8Array;
  /** model.safetensors, whole */
  weights: Uint8Array;
  /** Hugging Face preprocessor_config.json, parsed (or its text, or its UTF-8 bytes); absent: transformers' defaults */
  preprocessorConfig?: Record<string, unknown> | string | Uint8Array;
  /**
   * A name for messages: errors then name `<name>/config.json`, `<name>/model.safetensors`,
   * `<name>/preprocessor_config.json` (without it: the bare file names)
   */
  name?: string;
  /** per-file names for messages (override `name`) */
  files?: Partial<CheckpointFileNames>;
}

export interface BytesLoadOptions extends LoadOptions {
  /**
   * The ImageNet-1k class names, for a 1000-class checkpoint that names no classes itself (the
   * Node entry passes the list bundled in data/; without it such a model's labels are class_<i>).
   */
  imagenetLabels?: readonly string[] | (() => readonly string[]);
}

const MAX_JSON_CHARS = 64 << 20;
/** JSON text -> a JSON object, or a one-line VitkitError naming the file. */
export function parseJsonObject(text: string, file: string): Record<string, unknown> {
  if (text.length > MAX_JSON_CHARS) throw new VitkitError(`Expected ${file} of at most ${MAX_JSON_CHARS} characters but received ${text.length}`);
  checkJsonDepth(text, file);
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new VitkitError(`${file} is not a valid JSON object (${(e as Error).message})`);
  }
}

function jsonObject(v: unknown, file: string): Record<string, unknown> {
  if (typeof v === 'string') return parseJsonObject(v, file);
  if (v instanceof Uint8Array) {
    if (v.length > MAX_JSON_CHARS) throw new VitkitError(`Expected ${file} of at most ${MAX_JSON_CHARS} bytes but received ${v.length}`);
    return parseJsonObject(new TextDecoder('utf-8', { ignoreBOM: true }).decode(v), file);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    throw expected('a JSON object (parsed), its text or its UTF-8 bytes', file, v);
  }
  return v as Record<string, unknown>;
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
        const data = resampleAbsPosEmbed(t.data, d.D, [oldGrid, oldGrid], [d.gridH, d.gridW], posPrefix, c.pos_embed_antialias); // (1, posLen, D)
        t = { shape: [1, d.posLen, d.D], data };
      }
    }
    model.params.set(name, t.shape, t.data, where);
  }
}

/** HF buffers that are not parameters (integer position ids) */
const HF_BUFFERS = /(^|\.)position_ids$/;

/** Every tensor of a parsed safetensors file as float32, each checked finite (HF's integer buffers dropped on request). */
export function stateDictOf(st: SafetensorsFile, file: string, opts: { dropBuffers?: boolean } = {}): Raw {
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

/** The caller's overrides applied to a checkpoint's config (a fresh head when the class count changes). */
export function applyOverrides(c: ViTConfig, opts: LoadOptions): ViTConfig {
  const over: Partial<ViTConfig> = {};
  if (opts.imgSize !== undefined) over.img_size = opts.imgSize;
  if (opts.numClasses !== undefined) over.num_classes = opts.numClasses;
  return resolveConfig({ ...c, ...over }, 'options');
}

/** The config.json timm's save_for_hf writes: a real timm architecture and only model_args timm accepts (see families/timm.ts). */
export function timmConfigJson(name: string, config: ViTConfig, pretrainedCfg: Record<string, unknown>, labels?: readonly string[]): Record<string, unknown> {
  return timmConfigJsonImpl(name, config, pretrainedCfg, labels);
}

/**
 * A checkpoint's config read and checked against its weights' header, before anything is
 * allocated: the first half of loading (planCheckpoint), the second is buildCheckpoint.
 */
export interface CheckpointPlan {
  format: 'timm' | 'hf';
  /** the config as the checkpoint states it */
  base: ViTConfig;
  /** after the caller's overrides */
  config: ViTConfig;
  resetHead: boolean;
  files: CheckpointFileNames;
  /** timm: config.json as read */
  cfg: Record<string, unknown>;
  /** HF: the layout and the class names of id2label */
  layout?: HfLayout;
  names: string[] | null;
}

/** Parse a checkpoint's config.json (either layout) and check it against the weights' header entries. */
export function planCheckpoint(cfg: Record<string, unknown>, entries: Map<string, StEntry>, files: CheckpointFileNames, opts: LoadOptions = {}): CheckpointPlan {
  if (isHfConfig(cfg)) {
    const layout = hfLayoutFor(cfg, files.config);
    const hfCfg = new HfConfig(cfg, files.config);
    const base = resolveConfig(layout.configFromHf(hfCfg), files.config);
    const names = layout.hasClassifier ? hfLabels(hfCfg, base.num_classes) : null;
    const config = applyOverrides(base, opts);
    const resetHead = opts.numClasses !== undefined && opts.numClasses !== base.num_classes;
    checkCheckpointEntries(base, config, entries, files.weights, files.config, opts);
    return { format: 'hf', base, config, resetHead, files, cfg, layout, names };
  }
  const base = configFromTimm(cfg, files.config);
  const config = applyOverrides(base, opts);
  checkCheckpointEntries(base, config, entries, files.weights, files.config, opts);
  const resetHead = opts.numClasses !== undefined && opts.numClasses !== base.num_classes;
  return { format: 'timm', base, config, resetHead, files, cfg, names: null };
}

/**
 * The weights (a parsed safetensors file) into the planned model; HF's preprocessor config
 * (parsed; undefined: transformers' defaults) or timm's pretrained_cfg to preprocessing settings.
 */
export function buildCheckpoint(plan: CheckpointPlan, st: SafetensorsFile, preprocessorConfig: Record<string, unknown> | undefined, opts: BytesLoadOptions = {}): LoadedModel {
  const { config, base, files, resetHead } = plan;
  const imagenet = opts.imagenetLabels;
  const imagenetFn = imagenet === undefined ? undefined : typeof imagenet === 'function' ? imagenet : () => imagenet;
  const create = () => createModel(config, opts.backend ? { backend: opts.backend } : {});
  if (plan.format === 'hf') {
    const layout = plan.layout!;
    const raw = layoutHfToTimm(layout, base, stateDictOf(st, files.weights, { dropBuffers: true }), files.weights);
    const model = create();
    loadStateDict(model, raw, files.weights, { skipHead: resetHead });
    if (resetHead) initHead(model);
    const pp = preprocessorConfig === undefined ? undefined : normalizeHfProcessor(preprocessorConfig);
    return {
      model, preprocess: preprocessFromHf(pp, imgHW(config)[0], config.in_chans),
      labels: labelsFrom(config.num_classes, resetHead ? null : plan.names, imagenetFn),
      format: 'hf', name: layout.architecture, pretrainedCfg: {},
    };
  }
  const cfg = plan.cfg;
  const model = create();
  const raw = stateDictOf(st, files.weights);
  loadStateDict(model, raw, files.weights, { skipHead: resetHead });
  if (resetHead) initHead(model);
  const pcfg = { ...((cfg['pretrained_cfg'] ?? {}) as Record<string, unknown>) };
  const names = timmLabelNames(cfg, files.config);
  if (!resetHead && names && names.length !== config.num_classes) {
    throw new VitkitError(`${files.config}: expected ${config.num_classes} "label_names" (num_classes) but received ${names.length}`);
  }
  return {
    model, preprocess: preprocessFromTimm(pcfg, imgHW(config), config.in_chans),
    labels: labelsFrom(config.num_classes, resetHead ? null : names, imagenetFn), format: 'timm',
    name: String(cfg['architecture']), pretrainedCfg: pcfg,
  };
}

/** The names messages use for a checkpoint's files: per-file names, else `<name>/<file>`, else the bare file names. */
export function checkpointFileNames(name?: string, files: Partial<CheckpointFileNames> = {}): CheckpointFileNames {
  const at = (f: string) => (name === undefined || name === '' ? f : `${name.replace(/\/+$/, '')}/${f}`);
  return {
    config: files.config ?? at('config.json'),
    weights: files.weights ?? at('model.safetensors'),
    preprocessorConfig: files.preprocessorConfig ?? at('preprocessor_config.json'),
  };
}

/**
 * Load a checkpoint from memory: config.json parsed (or its text or bytes), model.safetensors as
 * bytes and, for Hugging Face, preprocessor_config.json parsed (or its text or bytes). Returns what loadModel returns
 * for the same files on disk: the model with its weights, its preprocessing settings, its labels
 * (for a 1000-class checkpoint without names, ImageNet-1k's when `opts.imagenetLabels` is given).
 * Errors are the folder loader's, naming the files as `source.name` / `source.files` say.
 */
export function loadModelFromBytes(source: CheckpointBytes, opts: BytesLoadOptions = {}): LoadedModel {
  if (typeof source !== 'object' || source === null) throw expected('an object { config, weights, preprocessorConfig? }', 'the checkpoint', source);
  if (source.name !== undefined && typeof source.name !== 'string') throw expected('a string', 'the checkpoint name', source.name);
  const files = checkpointFileNames(source.name, source.files);
  const cfg = jsonObject(source.config, files.config);
  const weights = source.weights;
  if (!(weights instanceof Uint8Array)) throw expected('the bytes of a .safetensors file (a Uint8Array)', files.weights, weights);
  const pp = source.preprocessorConfig === undefined ? undefined : jsonObject(source.preprocessorConfig, files.preprocessorConfig);
  const { entries } = parseSafetensorsHeader(weights, weights.length, files.weights);
  const plan = planCheckpoint(cfg, entries, files, opts);
  const st = parseSafetensors(weights, files.weights);
  return buildCheckpoint(plan, st, plan.format === 'hf' ? pp : undefined, opts);
}
