/**
 * CLIP checkpoints in two layouts:
 * - open_clip's hub layout: `open_clip_config.json` ({ model_cfg, preprocess_cfg }) and
 *   `open_clip_model.safetensors` with OpenAI key names; tokenizer: the shipped OpenAI vocabulary,
 *   zero padding (src/text).
 * - Hugging Face `CLIPModel`: `config.json` (CLIPConfig), `model.safetensors` (`vision_model.*`,
 *   `text_model.*`, `visual_projection`, `text_projection`, `logit_scale`), `preprocessor_config.json`
 *   (CLIPImageProcessor) and `tokenizer.json` or `vocab.json` + `merges.txt`.
 * Both load into one ClipModel (OpenAI names); `saveClip` writes the layout a model came from.
 */
import { parseJsonObject } from '../checkpoint/checkpoint_core.js';
import type { DeviceName } from '../models/runner.js';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { copyFileAtomic, makeDirs, readTextFile, writeFileAtomic } from '../io/files.js';
import type { Backend } from '../backend/backend.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../io/safetensors.js';
import { type PreprocessConfig, preprocessFromTimm, preprocessFromHf } from '../io/preprocess.js';
import { loadTokenizer } from '../node/text.js';
import type { BpeTokenizer } from '../text/bpe.js';
import { type ClipConfig, configFromOpenClip, configFromHfClip } from '../models/clip/config.js';
import { ClipModel } from '../models/clip/model.js';
import { hfKeyMap, hfToOpenAi, openAiToHf, HF_IGNORED, type RawTensor } from '../models/clip/names.js';

export const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711];

export type ClipLayout = 'open_clip' | 'hf';

export interface LoadedClip {
  model: ClipModel;
  preprocess: PreprocessConfig;
  tokenizer: BpeTokenizer;
  layout: ClipLayout;
  /** the directory it came from */
  dir: string;
  /** the config file's JSON, written back (updated) when saving */
  configJson: Record<string, unknown>;
  /** where encodeImage runs the image tower (default cpu; the projection and the text tower stay on the host) */
  device?: DeviceName;
}

function readJson(file: string): Record<string, unknown> {
  return parseJsonObject(readTextFile(file, 'CLIP config'), file);
}

/** Which CLIP layout a directory holds, or null when it is not a CLIP checkpoint. */
export function clipLayoutOf(dir: string): ClipLayout | null {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return null;
  const oc = existsSync(path.join(dir, 'open_clip_config.json'));
  // a Hub repo may hold both layouts: open_clip's when its weights are here, else HF's
  if (oc && existsSync(path.join(dir, 'open_clip_model.safetensors'))) return 'open_clip';
  const cfg = path.join(dir, 'config.json');
  if (existsSync(cfg)) {
    try {
      const j = parseJsonObject(readTextFile(cfg, 'config'), cfg);
      const arch = Array.isArray(j['architectures']) ? (j['architectures'] as unknown[]) : [];
      if (j['model_type'] === 'clip' || arch.includes('CLIPModel')) return 'hf';
    } catch { /* not JSON: not a CLIP dir */ }
  }
  return oc ? 'open_clip' : null;
}

/** open_clip's eval transform from preprocess_cfg: resize (shortest side, or squash), center crop, mean/std */
export function preprocessFromOpenClip(pp: Record<string, unknown> | undefined, c: ClipConfig, file: string): PreprocessConfig {
  const p = pp ?? {};
  const mode = p['resize_mode'] ?? 'shortest';
  if (mode !== 'shortest' && mode !== 'squash') throw new VitkitError(`Expected preprocess_cfg.resize_mode "shortest" or "squash" in ${file} but received ${JSON.stringify(mode)}`);
  const size = c.vision.image_size;
  const [H, W] = typeof size === 'number' ? [size, size] : size;
  return preprocessFromTimm({
    mean: p['mean'] ?? OPENAI_MEAN, std: p['std'] ?? OPENAI_STD, interpolation: p['interpolation'] ?? 'bicubic',
    crop_pct: 1, crop_mode: mode === 'squash' ? 'squash' : 'center', input_size: [3, H, W],
  }, typeof size === 'number' ? size : [H, W], 3);
}

function readTensors(file: string): Map<string, RawTensor> {
  const st = readSafetensors(file);
  const out = new Map<string, RawTensor>();
  for (const k of st.keys()) {
    if (HF_IGNORED.test(k)) continue;
    out.set(k, st.f32(k));
  }
  return out;
}

/** copy OpenAI-named tensors into the model, reporting missing / unexpected / mis-shaped tensors by name */
export function loadOpenAiTensors(model: ClipModel, raw: ReadonlyMap<string, RawTensor>, where: string): void {
  const names = model.params.names();
  const want = new Set(names);
  const missing = names.filter((n) => !raw.has(n));
  const extra = [...raw.keys()].filter((k) => !want.has(k) && k !== 'attn_mask' && k !== 'visual.attn_mask');
  const list = (a: string[]) => `${a.slice(0, 8).join(', ')}${a.length > 8 ? `, ... (${a.length} in all)` : ''}`;
  if (missing.length) throw new VitkitError(`Missing tensor${missing.length > 1 ? 's' : ''} in ${where}: ${list(missing)}`);
  if (extra.length) throw new VitkitError(`Unexpected tensor${extra.length > 1 ? 's' : ''} in ${where}: ${list(extra)}`);
  for (const n of names) {
    const t = raw.get(n)!;
    model.params.set(n, t.shape, t.data, where);
  }
}

export interface LoadClipOptions {
  backend?: Backend;
}

/** Load a CLIP checkpoint directory (open_clip hub layout or Hugging Face CLIPModel). */
export function loadClip(dir: string, opts: LoadClipOptions = {}): LoadedClip {
  const layout = clipLayoutOf(dir);
  if (!layout) throw new VitkitError(`${dir} is not a CLIP checkpoint: expected open_clip_config.json + open_clip_model.safetensors, or a Hugging Face CLIPModel (config.json with model_type "clip" + model.safetensors)`);
  if (layout === 'open_clip') {
    const cfgFile = path.join(dir, 'open_clip_config.json');
    const json = readJson(cfgFile);
    if (json['model_cfg'] === undefined) throw new VitkitError(`Expected model_cfg in ${cfgFile} but received none`);
    const config = configFromOpenClip(json['model_cfg'], `${cfgFile} model_cfg`);
    const weights = path.join(dir, 'open_clip_model.safetensors');
    if (!existsSync(weights)) throw new VitkitError(`No open_clip_model.safetensors in ${dir} (open_clip hub layout)`);
    const model = new ClipModel(config, undefined, opts.backend);
    loadOpenAiTensors(model, readTensors(weights), weights);
    const pp = json['preprocess_cfg'] as Record<string, unknown> | undefined;
    return { model, preprocess: preprocessFromOpenClip(pp, config, cfgFile), tokenizer: loadTokenizer(dir, { layout: 'open_clip' }), layout, dir, configJson: json };
  }
  const cfgFile = path.join(dir, 'config.json');
  const json = readJson(cfgFile);
  const config = configFromHfClip(json, cfgFile);
  const weights = path.join(dir, 'model.safetensors');
  if (!existsSync(weights)) throw new VitkitError(`No model.safetensors in ${dir} (Hugging Face CLIPModel layout)`);
  const model = new ClipModel(config, undefined, opts.backend);
  const hf = readTensors(weights);
  const map = hfKeyMap(config.vision.layers, config.text.layers);
  const { tensors, missing, badShape } = hfToOpenAi(hf, map);
  if (missing.length) throw new VitkitError(`Missing tensor${missing.length > 1 ? 's' : ''} in ${weights}: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` ... (${missing.length} in all)` : ''}`);
  if (badShape.length) throw new VitkitError(`Wrong shape in ${weights}: ${badShape[0]}`);
  const known = new Set(map.flatMap((e) => e.hf));
  const extra = [...hf.keys()].filter((k) => !known.has(k));
  if (extra.length) throw new VitkitError(`Unexpected tensor${extra.length > 1 ? 's' : ''} in ${weights}: ${extra.slice(0, 8).join(', ')}`);
  // HF stores logit_scale as a 0-d tensor like open_clip; accept (1,) too
  const ls = tensors.get('logit_scale');
  if (ls && ls.shape.length === 1 && ls.shape[0] === 1) tensors.set('logit_scale', { shape: [], data: ls.data });
  loadOpenAiTensors(model, tensors, weights);
  const ppFile = path.join(dir, 'preprocessor_config.json');
  const preprocess = existsSync(ppFile)
    ? preprocessFromHf(readJson(ppFile), imageSide(config), 3)
    : preprocessFromOpenClip(undefined, config, cfgFile);
  // the directory's tokenizer files when present, else OpenAI's vocabulary (what every CLIPModel ships)
  const hasTok = existsSync(path.join(dir, 'tokenizer.json')) || (existsSync(path.join(dir, 'vocab.json')) && existsSync(path.join(dir, 'merges.txt')));
  const tokenizer = hasTok ? loadTokenizer(dir, { layout: 'hf' }) : loadTokenizer(undefined, { contextLength: config.text.context_length });
  return { model, preprocess, tokenizer, layout, dir, configJson: json };
}

function imageSide(c: ClipConfig): number {
  const s = c.vision.image_size;
  return typeof s === 'number' ? s : s[0];
}

/** The model's tensors by OpenAI name (copies). */
export function openAiTensors(model: ClipModel): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  for (const s of model.params.specs) out.set(s.name, { shape: [...s.shape], data: model.params.get(s.name).slice() });
  return out;
}

/**
 * Save in the layout `loaded` came from, into `dir` (created). Refuses to overwrite existing
 * checkpoint files unless `overwrite`. Tokenizer and preprocessor files of the source directory
 * are copied beside the weights so the result loads on its own.
 */
export function saveClip(dir: string, loaded: Pick<LoadedClip, 'model' | 'layout' | 'configJson' | 'dir'>, opts: { overwrite?: boolean; metadata?: Record<string, string> } = {}): string[] {
  makeDirs(dir, 'CLIP checkpoint folder');
  const { model, layout } = loaded;
  const oc = openAiTensors(model);
  const tensors: Record<string, StTensorIn> = {};
  const cfgName = layout === 'open_clip' ? 'open_clip_config.json' : 'config.json';
  const wName = layout === 'open_clip' ? 'open_clip_model.safetensors' : 'model.safetensors';
  const cfgPath = path.join(dir, cfgName), wPath = path.join(dir, wName);
  for (const p of [cfgPath, wPath]) {
    if (!opts.overwrite && existsSync(p)) throw new VitkitError(`Refusing to overwrite existing file ${p}: pass --overwrite to replace it`);
  }
  const src = layout === 'open_clip' ? oc : openAiToHf(oc, hfKeyMap(model.config.vision.layers, model.config.text.layers));
  for (const [k, t] of src) tensors[k] = { shape: t.shape, data: t.data };
  writeSafetensors(wPath, tensors, opts.metadata, { overwrite: opts.overwrite ?? false });
  const written = [wPath];
  writeFileAtomic(cfgPath, JSON.stringify(loaded.configJson, null, 2) + '\n', { overwrite: opts.overwrite ?? false, what: 'CLIP config' });
  written.push(cfgPath);
  const extras = layout === 'hf' ? ['preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json'] : [];
  if (path.resolve(loaded.dir) !== path.resolve(dir)) {
    for (const f of extras) {
      const from = path.join(loaded.dir, f), to = path.join(dir, f);
      if (existsSync(from) && (!existsSync(to) || opts.overwrite)) { copyFileAtomic(from, to, { overwrite: opts.overwrite ?? false, what: 'CLIP checkpoint file' }); written.push(to); }
    }
  }
  return written;
}
