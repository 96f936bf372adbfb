/**
 * Checkpoints on disk: a checkpoint directory in timm's hub layout (config.json + model.safetensors
 * with timm key names) or Hugging Face's (config.json + model.safetensors with HF names +
 * preprocessor_config.json) for ViT, DeiT, DINOv2, CLIP and SigLIP image towers, and presets. This
 * is the thin Node wrapper over checkpoint_core.ts (the core's loadModelFromBytes: config parsing,
 * layout detection, key maps, state-dict loading, all without fs); here the files are found, read
 * (the weights' header first, to check the config before anything is allocated) and written.
 */
import { existsSync, statSync } from 'node:fs';
import { makeDirs, readRegularFile, writeFileAtomic } from '../io/files.js';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import type { ViTConfig } from '../models/config.js';
import { imgHW } from '../models/config.js';
import { PRESETS, getPreset, presetConfig, type PretrainedCfg } from '../models/presets.js';
import { vitParamSpecs } from '../models/vit.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import '../backend/index.js'; // Node: registers the native backend (loaded on first use) as the default
import { initWeights } from '../models/init.js';
import { ParamTable } from '../nn/params.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors, type StTensorIn } from '../io/safetensors.js';
import { HF_LAYOUTS } from './layouts/index.js';
import { timmToHf, type StateDict } from './layouts/hf.js';
import { preprocessFromTimm } from '../io/preprocess.js';
import { imagenetLabels, labelsFor } from '../io/labels.js';
import {
  applyOverrides, buildCheckpoint, parseJsonObject, planCheckpoint, timmConfigJson,
  type LoadedModel, type LoadOptions,
} from './checkpoint_core.js';

export {
  configFromTimm, configFromHf, hfToTimm, loadStateDict, normalizeHfProcessor, timmConfigJson, loadModelFromBytes,
  type LoadedModel, type LoadOptions, type BytesLoadOptions, type CheckpointBytes, type CheckpointFileNames,
} from './checkpoint_core.js';

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readRegularFile(file, 'JSON file', 64 << 20).toString('utf8');
  } catch (e) {
    throw new VitkitError(`Cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseJsonObject(text, file);
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
  const ppFile = path.join(dir, 'preprocessor_config.json');
  if (!existsSync(cfgFile)) throw new VitkitError(`No config.json in ${dir}: a checkpoint directory holds config.json and model.safetensors`);
  if (!existsSync(weights)) throw new VitkitError(`No model.safetensors in ${dir}: a checkpoint directory holds config.json and model.safetensors`);
  const cfg = readJson(cfgFile);
  const files = { config: cfgFile, weights, preprocessorConfig: ppFile };
  const plan = planCheckpoint(cfg, readSafetensorsHeader(weights).entries, files, opts); // header only: nothing allocated yet
  const st = readSafetensors(weights);
  const pp = plan.format === 'hf' && existsSync(ppFile) ? readJson(ppFile) : undefined;
  return buildCheckpoint(plan, st, pp, { ...opts, imagenetLabels });
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

export { initWeights } from '../models/init.js';

/** Write a checkpoint directory in timm's layout, each file atomically (temporary file, then rename). */
export function saveCheckpoint(dir: string, model: Pick<Model, 'params' | 'config'>, meta: { name: string; pretrainedCfg: Record<string, unknown>; labels?: readonly string[] }, opts: { overwrite?: boolean } = {}): void {
  // everything that can refuse is checked before the first byte is written: the config (labels of the
  // wrong length, a bad pretrained_cfg) and both files' existence
  if (meta.labels !== undefined && meta.labels.length !== model.config.num_classes) {
    throw new VitkitError(`Expected ${model.config.num_classes} labels (num_classes) for the checkpoint ${dir} but received ${meta.labels.length}`);
  }
  const cfgText = JSON.stringify(timmConfigJson(meta.name, model.config, meta.pretrainedCfg, meta.labels), null, 2) + '\n';
  const cfgPath = path.join(dir, 'config.json');
  const stPath = path.join(dir, 'model.safetensors');
  for (const f of [stPath, cfgPath]) if (existsSync(f) && !opts.overwrite) throw new VitkitError(`Refusing to overwrite ${f}; pass overwrite to replace it`);
  makeDirs(dir, 'checkpoint folder');
  const tensors: Record<string, StTensorIn> = {};
  for (const spec of model.params.specs) tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: model.params.get(spec.name) };
  writeSafetensors(stPath, tensors, { format: 'pt' }, { overwrite: opts.overwrite ?? false });
  writeFileAtomic(cfgPath, cfgText, { overwrite: true, what: 'checkpoint config' });
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
  const cfgText = JSON.stringify(layout.hfConfigFrom(config, opts.labels), null, 2) + '\n';
  const cfgPath = path.join(dir, 'config.json');
  const stPath = path.join(dir, 'model.safetensors');
  for (const f of [stPath, cfgPath]) if (existsSync(f) && !opts.overwrite) throw new VitkitError(`Refusing to overwrite ${f}; pass overwrite to replace it`);
  makeDirs(dir, 'checkpoint folder');
  const tensors: Record<string, StTensorIn> = {};
  for (const [k, t] of hf) tensors[k] = { dtype: 'F32', shape: t.shape, data: t.data };
  writeSafetensors(stPath, tensors, { format: 'pt' }, { overwrite: opts.overwrite ?? false });
  writeFileAtomic(cfgPath, cfgText, { overwrite: true, what: 'checkpoint config' });
}

export { vitParamSpecs, ParamTable };
export type { PretrainedCfg };
