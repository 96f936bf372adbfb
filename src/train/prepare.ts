/**
 * Setting up a training run, shared by `train`, `demo` and `eval`: the model (from scratch, a
 * checkpoint or an MAE encoder), the data pipeline, the teacher and the output-folder check.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readRegularFile } from '../io/files.js';
import { UsageError, VitkitError } from '../errors.js';
import { configFromTimm, initWeights, loadModel } from '../checkpoint/checkpoint.js';
import { DEFAULT_CONFIG, imgHW, resolveConfig, type ViTConfig } from '../models/config.js';
import { PRESETS, getPreset } from '../models/presets.js';
import { VisionTransformer } from '../models/vit.js';
import { adaptInputConvTo1 } from '../checkpoint/adapt_conv.js';
import type { Model } from '../models/model.js';
import { preprocessFromTimm, type PreprocessConfig } from '../io/preprocess.js';
import { labelsFor } from '../io/labels.js';
import { checkConfigResources } from '../checkpoint/validate.js';
import type { DataSource } from '../data/open.js';
import { checkLabels, type Dataset } from '../data/dataset.js';
import type { Pipeline } from '../data/batch.js';
import { STATE_FILE, type ModelMeta } from './loop.js';
import { STATE_DIR } from './state.js';
import { IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD } from '../io/preprocess_pixels.js';
import { isMaeDir, loadMaeEncoderAsVit } from '../mae/load.js';


// ---------------------------------------------------------------------------------------------
// model + data setup (shared with eval and demo)

export interface ArchOverrides {
  imgSize?: number;
  patchSize?: number;
  embedDim?: number;
  depth?: number;
  numHeads?: number;
  mlpRatio?: number;
  inChans?: number;
  numClasses?: number;
}

export interface PreparedModel {
  model: Model;
  meta: ModelMeta;
  preprocess: PreprocessConfig;
  /** 'scratch' (random init) or 'checkpoint' (fine-tuning) */
  origin: 'scratch' | 'checkpoint';
}

export const ARCH_FLAGS: [keyof ArchOverrides, keyof ViTConfig, string][] = [
  ['imgSize', 'img_size', '--img-size'], ['patchSize', 'patch_size', '--patch-size'], ['embedDim', 'embed_dim', '--embed-dim'],
  ['depth', 'depth', '--depth'], ['numHeads', 'num_heads', '--num-heads'], ['mlpRatio', 'mlp_ratio', '--mlp-ratio'],
  ['inChans', 'in_chans', '--in-chans'], ['numClasses', 'num_classes', '--num-classes'],
];

/** The image size and channels fixed by in-memory data (MNIST, CIFAR-10, tensor files); null for image files. */
function dataGeometry(d: DataSource): { size: number | null; channels: number | null } {
  const ds = d.train ?? d.val;
  if (!ds || ds.kind === 'files') return { size: null, channels: null };
  return { size: ds.height === ds.width ? ds.height : null, channels: ds.channels };
}

/** A from-scratch config: preset arguments or a JSON config, then the data's geometry and class count, then the flags. */
function scratchConfig(source: string, o: ArchOverrides, data: DataSource): { config: ViTConfig; name: string; pretrainedCfg: Record<string, unknown> } {
  let base: Partial<ViTConfig>;
  let name: string;
  let pcfg: Record<string, unknown>;
  if (PRESETS[source]) {
    const p = getPreset(source);
    base = { ...p.args };
    name = source;
    pcfg = { ...p.pretrained_cfg };
  } else if (source.endsWith('.json')) {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(readRegularFile(source, 'model config', 64 << 20).toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new VitkitError(`Cannot read model config ${source}: ${(e as Error).message}`);
    }
    if (typeof j['architecture'] === 'string' || j['model_args']) {
      base = { ...configFromTimm(j, source) };
      name = String(j['architecture'] ?? 'vit_custom');
      pcfg = { ...((j['pretrained_cfg'] ?? {}) as Record<string, unknown>) };
    } else {
      base = { ...resolveConfig(j, source) };
      name = 'vit_custom';
      pcfg = {};
    }
  } else {
    getPreset(source); // throws the known-preset list
    throw new Error('unreachable');
  }
  const g = dataGeometry(data);
  const over: Partial<Record<keyof ViTConfig, unknown>> = {};
  if (g.size !== null) over.img_size = g.size;
  if (g.channels !== null) over.in_chans = g.channels;
  if (data.numClasses > 0) over.num_classes = data.numClasses;
  for (const [k, key] of ARCH_FLAGS) if (o[k] !== undefined) over[key] = o[k];
  const config = resolveConfig({ ...DEFAULT_CONFIG, ...base, ...over }, 'the model');
  if (data.pretrainedCfg) pcfg = { ...data.pretrainedCfg };
  pcfg['input_size'] = [config.in_chans, ...imgHW(config)];
  const preset = PRESETS[name];
  if (preset) {
    const want = { ...DEFAULT_CONFIG, ...preset.args };
    const arch: (keyof ViTConfig)[] = ['patch_size', 'embed_dim', 'depth', 'num_heads', 'mlp_ratio', 'qkv_bias', 'class_token', 'global_pool', 'pos_embed'];
    if (arch.some((k) => want[k] !== config[k])) name = 'vit_custom';
  }
  return { config, name, pretrainedCfg: pcfg };
}

/**
 * --in-chans 1 on a 3-channel checkpoint: the same weights, the patch-embedding kernel summed over RGB
 * (timm's adapt_input_conv, checkpoint/adapt_conv.ts).
 */
export function grayModel(m: PreparedModel['model'], source: string): PreparedModel['model'] {
  if (m.config.in_chans !== 3) throw new VitkitError(`--in-chans 1 adapts a 3-channel checkpoint but ${source} has in_chans ${m.config.in_chans}`);
  const g = new VisionTransformer({ ...m.config, in_chans: 1 });
  for (const spec of g.params.specs) {
    const src = m.params.get(spec.name);
    if (spec.name === 'patch_embed.proj.weight') g.params.get(spec.name).set(adaptInputConvTo1(src, [spec.shape[0]!, 3, spec.shape[2]!, spec.shape[3]!]).data);
    else g.params.get(spec.name).set(src);
  }
  return g;
}

/** Build the model to train: from scratch (seeded init) or from a checkpoint directory. */
export function prepareModel(source: string, o: ArchOverrides, data: DataSource, seed: number): PreparedModel {
  const isDir = existsSync(source) && statSync(source).isDirectory();
  if (isDir && isMaeDir(source)) return maeClassifier(source, o, data, seed);
  if (isDir) {
    for (const [k, , flag] of ARCH_FLAGS) {
      if (o[k] !== undefined && k !== 'imgSize' && k !== 'numClasses' && !(k === 'inChans' && o.inChans === 1)) {
        throw new VitkitError(`${flag} cannot change the architecture of checkpoint ${source}; only --img-size and --num-classes apply when fine-tuning`);
      }
    }
    // fine-tuning on data with its own classes resets the head when the class count differs
    const probe = loadModel(source, o.imgSize !== undefined ? { imgSize: o.imgSize } : {});
    let numClasses = o.numClasses;
    if (numClasses === undefined && data.labelNames && data.numClasses !== probe.model.config.num_classes) numClasses = data.numClasses;
    const lm = numClasses !== undefined && numClasses !== probe.model.config.num_classes
      ? loadModel(source, { ...(o.imgSize !== undefined ? { imgSize: o.imgSize } : {}), numClasses })
      : probe;
    if (o.inChans === 1 && lm.model.config.in_chans !== 1) lm.model = grayModel(lm.model, source);
    const K = lm.model.config.num_classes;
    const labels = data.labelNames && data.labelNames.length === K ? data.labelNames : lm.labels;
    let pcfg = { ...lm.pretrainedCfg };
    let preprocess = lm.preprocess;
    if (lm.format === 'hf') {
      // the saved checkpoint is in timm's layout: carry the processor's normalization and resize over as a
      // pretrained_cfg (ViTImageProcessor resizes to the exact size: timm's 'squash' with crop_pct 1)
      const pp = lm.preprocess;
      pcfg = { input_size: [pp.channels, pp.height, pp.width], interpolation: pp.interpolation, crop_pct: 1, crop_mode: 'squash', mean: pp.mean, std: pp.std };
      preprocess = preprocessFromTimm(pcfg, lm.model.config.img_size, lm.model.config.in_chans);
    }
    if (data.pretrainedCfg) {
      pcfg = { ...data.pretrainedCfg, input_size: [lm.model.config.in_chans, ...imgHW(lm.model.config)] };
      preprocess = preprocessFromTimm(pcfg, lm.model.config.img_size, lm.model.config.in_chans);
    }
    if (lm.model.config.in_chans !== preprocess.channels) {
      pcfg = { ...pcfg, input_size: [lm.model.config.in_chans, ...imgHW(lm.model.config)] };
      preprocess = preprocessFromTimm(pcfg, lm.model.config.img_size, lm.model.config.in_chans); // mean/std: the RGB mean for one channel
    }
    const name = lm.format === 'timm' ? lm.name : 'vit_custom';
    return { model: lm.model, meta: { name, pretrainedCfg: pcfg, labels }, preprocess, origin: 'checkpoint' };
  }
  if (existsSync(source) && !source.endsWith('.json')) {
    throw new VitkitError(`Expected a preset name, a checkpoint directory or a .json config for --model but received the file ${source}`);
  }
  const { config, name, pretrainedCfg } = scratchConfig(source, o, data);
  checkConfigResources(config, source);
  const model = new VisionTransformer(config);
  initWeights(model, seed);
  const labels = labelsFor(config.num_classes, data.labelNames);
  return { model, meta: { name, pretrainedCfg, labels }, preprocess: preprocessFromTimm(pretrainedCfg, config.img_size, config.in_chans), origin: 'scratch' };
}

/** How the data is fed to this model; checks shapes, channels and labels. */
export function preparePipeline(model: Model, preprocess: PreprocessConfig, sets: (Dataset | null)[], onBadImage: 'skip' | 'error'): Pipeline {
  const c = model.config;
  if (c.in_chans !== 1 && c.in_chans !== 3) {
    for (const ds of sets) {
      if (ds && ds.kind !== 'f32') throw new VitkitError(`Expected a model with 1 or 3 input channels for images in ${ds.name} but received in_chans ${c.in_chans}`);
    }
  }
  for (const ds of sets) {
    if (!ds) continue;
    if (ds.kind === 'f32' && (ds.channels !== c.in_chans || ds.height !== imgHW(c)[0] || ds.width !== imgHW(c)[1])) {
      throw new VitkitError(`Expected x of shape (B, ${c.in_chans}, ${imgHW(c)[0]}, ${imgHW(c)[1]}) for the model in ${ds.name} but received (${ds.n}, ${ds.channels}, ${ds.height}, ${ds.width})`);
    }
    checkLabels(ds, c.num_classes);
  }
  const pp = { ...preprocess, channels: c.in_chans as 1 | 3, height: imgHW(c)[0], width: imgHW(c)[1] };
  return { channels: c.in_chans as 1 | 3, height: imgHW(c)[0], width: imgHW(c)[1], preprocess: pp, onBadImage };
}

// ---------------------------------------------------------------------------------------------
// progress display

/** --teacher: a classifier checkpoint for DeiT hard distillation; the student must be distilled and see the same pixels. */
export function prepareTeacher(dir: string, student: Model): Model {
  const s = student.config;
  if (!s.distilled) {
    throw new UsageError(`--teacher needs a distilled student (a DeiT *_distilled_* model with dist_token and head_dist) but --model is not distilled`);
  }
  const teacher = loadModel(dir).model;
  const t = teacher.config;
  if (t.num_classes !== s.num_classes) throw new VitkitError(`Expected the teacher ${dir} to have the student's ${s.num_classes} classes but it has ${t.num_classes}`);
  if (t.in_chans !== s.in_chans) throw new VitkitError(`Expected the teacher ${dir} to take the student's ${s.in_chans} input channels but it takes ${t.in_chans}`);
  const [sh, sw] = imgHW(s), [th, tw] = imgHW(t);
  if ((sh !== th || sw !== tw) && !(t.dynamic_img_size && sh % t.patch_size === 0 && sw % t.patch_size === 0)) {
    throw new VitkitError(`Expected the teacher ${dir} to take the student's ${sh}x${sw} images (it sees the same pixel batch) but it takes ${th}x${tw} and has no dynamic_img_size`);
  }
  return teacher;
}

/**
 * Every entry a run writes into --out (ema/ is a folder of its own checkpoint, checkpoint/ holds the
 * training state), and the top-level state files of a run folder from before checkpoint/: all
 * covered by --overwrite.
 */
const CHECKPOINT_FILES = [STATE_DIR, 'model.safetensors', 'config.json', 'metrics.jsonl', 'curves.png', 'ema', STATE_FILE, 'train_state.json'];

/** Refuse to train into a directory that holds a run or a checkpoint, unless resuming or --overwrite. */
export function checkOutDir(out: string, overwrite: boolean | undefined): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new VitkitError(`Expected a directory for --out but received the file ${out}`);
  const found = readdirSync(out).filter((f) => CHECKPOINT_FILES.includes(f));
  if (found.length && !overwrite) {
    throw new VitkitError(`Output directory ${out} already holds a checkpoint (${found.join(', ')}); pass --resume to continue that run or --overwrite to replace it`);
  }
}

/**
 * `vitkit train --model <MAE dir>`: fine-tune the pre-trained encoder as a classifier (MAE's
 * recipe: average pooling + fc_norm, a fresh head; pass --layer-decay 0.75 for its layer-wise lr
 * decay). The run saves a timm VisionTransformer checkpoint (config.json + model.safetensors).
 */
export function maeClassifier(source: string, o: { numClasses?: number; imgSize?: number }, data: DataSource, seed: number): PreparedModel {
  const K = o.numClasses ?? data.numClasses;
  if (!(K >= 1)) throw new VitkitError(`Fine-tuning the MAE encoder in ${source} needs classes: pass --num-classes or labelled --data`);
  if (o.imgSize !== undefined) throw new VitkitError(`--img-size cannot change MAE checkpoint ${source}: its encoder was pre-trained at its own size`);
  const model = loadMaeEncoderAsVit(source, K, seed);
  const c = model.config;
  const [h, w] = imgHW(c);
  const pretrainedCfg: Record<string, unknown> = data.pretrainedCfg
    ? { ...data.pretrainedCfg, input_size: [c.in_chans, h, w] }
    : { input_size: [c.in_chans, h, w], interpolation: 'bicubic', crop_pct: 0.875, mean: IMAGENET_DEFAULT_MEAN.slice(0, c.in_chans), std: IMAGENET_DEFAULT_STD.slice(0, c.in_chans) };
  const labels = labelsFor(K, data.labelNames && data.labelNames.length === K ? data.labelNames : null);
  return { model, meta: { name: 'vit_custom', pretrainedCfg, labels }, preprocess: preprocessFromTimm(pretrainedCfg, c.img_size, c.in_chans), origin: 'checkpoint' };
}
