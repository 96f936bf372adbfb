/**
 * `vitkit train`: from scratch (a preset or config file plus architecture flags) or from a
 * checkpoint directory (fine-tuning), on any data `--data` names (see data/open.ts), with a
 * progress bar, validation after every epoch, resumable checkpoints and Ctrl-C handling.
 */
import { imageOptions } from './image_options.js';
import type { DeviceName } from '../models/runner.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readRegularFile } from '../io/files.js';
import path from 'node:path';
import { UsageError, VitkitError, expected } from '../errors.js';
import { configFromTimm, initWeights, loadModel } from '../io/checkpoint.js';
import { DEFAULT_CONFIG, imgHW, resolveConfig, type ViTConfig } from '../models/config.js';
import { PRESETS, getPreset } from '../models/presets.js';
import { VisionTransformer, vitParamSpecs } from '../models/vit.js';
import { adaptInputConvTo1 } from '../io/adapt_conv.js';
import type { Model } from '../models/model.js';
import { preprocessFromTimm, type PreprocessConfig } from '../io/preprocess.js';
import { labelsFor } from '../io/labels.js';
import { checkConfigResources } from '../io/validate.js';
import { DEFAULT_MAX_CLASSES, openData, type DataSource } from '../data/open.js';
import { checkLabels, type Dataset } from '../data/dataset.js';
import type { Pipeline } from '../data/batch.js';
import {
  DEFAULT_SETTINGS, STATE_FILE, readRunState, trainRun, type EpochMetrics, type ModelMeta, type ProgressSink, type RunResult, type TrainSettings,
} from '../train/loop.js';
import { STATE_DIR } from '../train/state.js';
import { deviceOption, parseFloatOpt, parseIntOpt } from './common.js';
import { addClipTrainOptions, clipTrainCli, isClipResume, type ClipTrainCliOptions } from '../train/clip_cli.js';
import { addDetTrainOptions, detTrainCli, type DetTrainCliOptions } from '../detect/train_cli.js';
import { isMaeResume, maeClassifier, maeTrainCli, type MaeTrainCliOptions } from './mae.js';
import { isMaeDir } from '../models/families/mae/load.js';

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

const ARCH_FLAGS: [keyof ArchOverrides, keyof ViTConfig, string][] = [
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
 * (timm's adapt_input_conv, io/adapt_conv.ts).
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

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function epochLine(m: EpochMetrics, epochs: number): string {
  const parts = [`epoch ${m.epoch}/${epochs}`, `train_loss ${m.train_loss.toFixed(4)}`];
  if (m.val_loss !== null) parts.push(`val_loss ${m.val_loss.toFixed(4)}`);
  if (m.val_acc !== null) parts.push(`val_acc ${m.val_acc.toFixed(2)}%`);
  if (m.val_top5 !== null) parts.push(`top5 ${m.val_top5.toFixed(2)}%`);
  if (m.val_acc_ema !== undefined && m.val_acc_ema !== null) parts.push(`ema_acc ${m.val_acc_ema.toFixed(2)}%`);
  parts.push(`lr ${m.lr.toExponential(2)}`, `${m.seconds.toFixed(1)}s`, `${Math.round(m.img_s)} img/s`);
  return parts.join('  ');
}

/** cli-progress bar on stderr (TTY only) plus one summary line per epoch on stdout. */
export function barProgress(log: (s: string) => void = (s) => console.log(s)): ProgressSink {
  const bar = new cliProgress.SingleBar({
    format: 'epoch {epoch} |{bar}| {value}/{total} | loss {loss} | lr {lr} | {ips} img/s | left {left}',
    hideCursor: true, clearOnComplete: true, barsize: 24, etaBuffer: 50, fps: 8,
  }, cliProgress.Presets.shades_classic);
  let active = false;
  let epochLabel = '';
  return {
    epochStart(epoch, epochs, total, done) {
      epochLabel = `${epoch}/${epochs}`;
      bar.start(total, done, { epoch: epochLabel, loss: '--', lr: '--', ips: '--', left: '--' });
      active = true;
    },
    step(s) {
      bar.update(s.done, { epoch: epochLabel, loss: Number.isFinite(s.loss) ? s.loss.toFixed(4) : '--', lr: s.lr.toExponential(2), ips: Math.round(s.imgPerSec), left: fmtDuration(s.etaSeconds) });
    },
    epochEnd(m, epochs) {
      if (active) bar.stop();
      active = false;
      log(epochLine(m, epochs));
    },
    message(line) {
      if (active) process.stderr.write('\n');
      console.error(line);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the command

/** commander's parsed options: the run settings (as flags give them) plus what the command needs */
interface TrainOpts extends ArchOverrides, Pick<TrainSettings,
  'epochs' | 'batchSize' | 'lr' | 'minLr' | 'weightDecay' | 'labelSmoothing' | 'schedule' | 'warmupEpochs' |
  'mixup' | 'cutmix' | 'seed' | 'shuffle'> {
  model?: string;
  data?: string;
  valData?: string;
  valSplit?: number;
  clipGrad?: number;
  layerDecay?: number;
  emaDecay?: number;
  augment: boolean;
  out: string;
  resume?: string | boolean;
  overwrite?: boolean;
  workers?: number;
  onBadImage: 'skip' | 'error';
  stopAfterSteps?: number;
  maxClasses: number;
  teacher?: string;
  /** where the steps run */
  device?: DeviceName;
  /** AdamW betas / eps (absent: the task's defaults, 0.9,0.999 / 1e-8 for classification, 0.9,0.98 / 1e-6 for clip) */
  betas?: [number, number];
  eps?: number;
}

/** `--betas b1,b2`: two numbers in [0, 1); anything else is a malformed command line (exit 2) */
export function parseBetasOpt(v: string): [number, number] {
  const p = v.split(',');
  const n = p.map((x) => (x.trim() === '' ? NaN : Number(x)));
  if (p.length !== 2 || !n.every((x) => Number.isFinite(x) && x >= 0 && x < 1)) {
    throw new InvalidArgumentError(expected('two comma-separated numbers in [0, 1) like 0.9,0.999', '--betas', v).message);
  }
  return [n[0]!, n[1]!];
}

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

function defaultWorkers(d: DataSource): number {
  return d.kind === 'folder' ? 2 : 1;
}

export interface TrainCliResult {
  result: RunResult;
  out: string;
}

/** `vitkit train` without the process concerns (usable from tests and the demo). */
export async function trainCli(o: TrainOpts, explicit: Set<string>, progress: ProgressSink, log: (s: string) => void): Promise<TrainCliResult> {
  if (o.resume !== undefined && o.resume !== false) {
    const out = typeof o.resume === 'string' ? o.resume : o.out;
    const saved = readRunState(out);
    const run = saved.run;
    const settings: TrainSettings = { ...run.settings };
    if (explicit.has('epochs')) settings.epochs = o.epochs;
    const ignored = ['batchSize', 'lr', 'minLr', 'weightDecay', 'labelSmoothing', 'schedule', 'warmupEpochs', 'clipGrad', 'layerDecay', 'emaDecay', 'mixup', 'cutmix', 'seed', 'shuffle', 'augment', 'model', 'valSplit', 'valData', 'betas', 'eps']
      .filter((k) => explicit.has(k));
    if (ignored.length) log(`note: resuming with the run's saved settings; ignoring ${ignored.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')}`);
    if (run.epoch >= settings.epochs) {
      log(`The run in ${out} already finished ${run.epoch} of ${settings.epochs} epochs; pass a larger --epochs to train further`);
      return { result: { history: run.history, interrupted: false, state: run }, out };
    }
    const dataSrc = o.data ?? run.data?.source;
    if (!dataSrc) throw new VitkitError('Cannot resume: pass --data (the run does not record its data)');
    const dataRec = { ...(run.data?.valSplit !== undefined ? { valSplit: run.data.valSplit } : {}), ...(run.data?.valData ? { valData: run.data.valData } : {}) };
    const data = openData(dataSrc, { purpose: 'train', seed: settings.seed, maxClasses: o.maxClasses ?? DEFAULT_MAX_CLASSES, warn: (l) => progress.message(l), ...(dataRec.valSplit ? { valSplit: dataRec.valSplit } : {}), ...(dataRec.valData ? { valData: dataRec.valData } : {}) });
    const config = configFromTimm(run.model.config, saved.file);
    checkConfigResources(config, `model.config in ${saved.file}`);
    if (saved.weights.length !== vitParamSpecs(config).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0)) {
      throw new VitkitError(`Expected the saved "model" tensor to hold the weights of model.config in ${saved.file} but it has ${saved.weights.length} values`);
    }
    const model = new VisionTransformer(config);
    const preprocess = preprocessFromTimm(run.model.pretrainedCfg, config.img_size, config.in_chans);
    const pipeline = preparePipeline(model, preprocess, [data.train, data.val], o.onBadImage);
    const at = run.batch === run.stepsPerEpoch ? `, after its last step (its validation comes first)` : run.batch ? `, step ${run.batch + 1} of ${run.stepsPerEpoch}` : '';
    log(`Resuming ${out} at epoch ${run.epoch + 1} of ${settings.epochs}${at}`);
    // the run state does not record the teacher: pass --teacher again to keep distilling
    const teacher = o.teacher !== undefined ? prepareTeacher(o.teacher, model) : undefined;
    const result = await trainRun({
      model, meta: { name: run.model.name, pretrainedCfg: run.model.pretrainedCfg, labels: run.model.labels }, train: data.train!, val: data.val, pipeline, settings, out,
      workers: o.workers ?? defaultWorkers(data), resume: saved, progress,
      ...(teacher ? { teacher } : {}),
      device: o.device ?? 'cpu',
      ...(o.stopAfterSteps !== undefined ? { stopAfterSteps: o.stopAfterSteps } : {}),
      data: { source: dataSrc, ...dataRec },
    });
    return { result, out };
  }
  if (!o.model) throw new VitkitError('Expected --model <preset|dir|config.json> (or --resume) but received none');
  if (!o.data) throw new VitkitError('Expected --data <mnist|folder|file.safetensors|cifar-10 folder> but received none');
  checkOutDir(o.out, o.overwrite);
  const data = openData(o.data, { purpose: 'train', seed: o.seed, maxClasses: o.maxClasses ?? DEFAULT_MAX_CLASSES, warn: (l) => progress.message(l), ...(o.valSplit !== undefined ? { valSplit: o.valSplit } : {}), ...(o.valData ? { valData: o.valData } : {}) });
  const pm = prepareModel(o.model, o, data, o.seed);
  const teacher = o.teacher !== undefined ? prepareTeacher(o.teacher, pm.model) : undefined;
  const pipeline = preparePipeline(pm.model, pm.preprocess, [data.train, data.val], o.onBadImage);
  const settings: TrainSettings = {
    ...DEFAULT_SETTINGS,
    epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, minLr: o.minLr, weightDecay: o.weightDecay, labelSmoothing: o.labelSmoothing,
    schedule: o.schedule, warmupEpochs: o.warmupEpochs, clipGrad: o.clipGrad ?? null, layerDecay: o.layerDecay ?? null, emaDecay: o.emaDecay ?? null,
    mixup: o.mixup, cutmix: o.cutmix, seed: o.seed, shuffle: o.shuffle, augment: o.augment ? data.augment : 'none',
    ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}),
  };
  const c = pm.model.config;
  log(`Training ${pm.origin === 'checkpoint' ? `from ${o.model}` : `${o.model} from scratch`}: img ${c.img_size}, patch ${c.patch_size}, D ${c.embed_dim}, depth ${c.depth}, ` +
    `${c.num_heads} heads, ${c.num_classes} classes, ${(pm.model.numParams / 1e6).toFixed(3)}M parameters`);
  log(`Data ${o.data}: ${data.train!.n} train / ${data.val ? data.val.n : 0} val images${data.val ? '' : ' (no validation set: pass --val-split or --val-data)'}; ` +
    `augmentation ${settings.augment}${settings.mixup || settings.cutmix ? ` + mixup ${settings.mixup} / cutmix ${settings.cutmix}` : ''}`);
  const result = await trainRun({
    model: pm.model, meta: pm.meta, train: data.train!, val: data.val, pipeline, settings, out: o.out,
    workers: o.workers ?? defaultWorkers(data), progress, device: o.device ?? 'cpu',
    ...(o.stopAfterSteps !== undefined ? { stopAfterSteps: o.stopAfterSteps } : {}),
    ...(teacher ? { teacher } : {}),
    data: { source: o.data, ...(o.valSplit !== undefined ? { valSplit: o.valSplit } : {}), ...(o.valData ? { valData: o.valData } : {}) },
  });
  return { result, out: o.out };
}

export function summaryLines(r: TrainCliResult): string[] {
  const h = r.result.history;
  const last = h[h.length - 1];
  const lines: string[] = [];
  if (r.result.signal && !r.result.interrupted) {
    lines.push(`Interrupted after the last epoch finished: the run is complete (${h.length} epochs); nothing to resume.`);
  }
  if (r.result.interrupted) {
    lines.push(`Interrupted at epoch ${r.result.state.epoch + 1}, step ${r.result.state.batch} of ${r.result.state.stepsPerEpoch}. A resumable checkpoint is in ${r.out}.`);
    lines.push(`Continue with: vitkit train --resume ${r.out}`);
  } else if (last) {
    lines.push(`Done: ${h.length} epoch${h.length > 1 ? 's' : ''}, train_loss ${last.train_loss.toFixed(4)}${last.val_acc !== null ? `, val_acc ${last.val_acc.toFixed(2)}%, top5 ${last.val_top5!.toFixed(2)}%` : ''}`);
  }
  lines.push(`Checkpoint (timm layout): ${path.join(r.out, 'config.json')}, ${path.join(r.out, 'model.safetensors')}`);
  lines.push(`Metrics: ${path.join(r.out, 'metrics.jsonl')}; curves: ${path.join(r.out, 'curves.png')}; resume state: ${path.join(r.out, STATE_DIR, STATE_FILE)}`);
  return lines;
}

export function trainCommand(): Command {
  const f = (name: string, min = -Infinity, max = Infinity) => parseFloatOpt(name, min, max);
  const cmd = imageOptions(deviceOption(new Command('train')))
    .description('train a ViT from a preset / config (from scratch) or a checkpoint directory (fine-tuning); checkpoints, metrics.jsonl and curves.png go to --out')
    .option('-m, --model <preset|dir|config.json>', 'preset name (from scratch), checkpoint directory (fine-tune) or JSON config, or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('-d, --data <source>', 'mnist | image folder (<class>/*.jpg, or train/ + val/) | CIFAR-10 binary folder | .safetensors with x (B,C,H,W) and y (B)')
    .option('--val-data <source>', 'an explicit validation set (any --data form)')
    .option('--val-split <fraction>', 'hold out this fraction of the training data for validation (seeded, stratified)', f('--val-split', 0, 0.9))
    .option('-e, --epochs <n>', 'epochs', parseIntOpt('--epochs'), DEFAULT_SETTINGS.epochs)
    .option('-b, --batch-size <n>', 'images per step', parseIntOpt('--batch-size'), DEFAULT_SETTINGS.batchSize)
    .option('--lr <lr>', 'peak learning rate (AdamW)', f('--lr', 0), DEFAULT_SETTINGS.lr)
    .option('--min-lr <lr>', 'cosine floor', f('--min-lr', 0), DEFAULT_SETTINGS.minLr)
    .option('--weight-decay <wd>', 'AdamW weight decay (not on norms, biases, pos_embed, cls_token)', f('--weight-decay', 0), DEFAULT_SETTINGS.weightDecay)
    .option('--label-smoothing <eps>', 'label smoothing', f('--label-smoothing', 0, 0.99), DEFAULT_SETTINGS.labelSmoothing)
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule, stepped per iteration').choices(['cosine', 'constant']).default(DEFAULT_SETTINGS.schedule))
    .option('--warmup-epochs <n>', 'linear warmup (fractions allowed)', f('--warmup-epochs', 0), DEFAULT_SETTINGS.warmupEpochs)
    .option('--betas <b1,b2>', 'AdamW betas (default 0.9,0.999; --task clip: 0.9,0.98)', parseBetasOpt)
    .option('--eps <eps>', 'AdamW eps (default 1e-8; --task clip: 1e-6)', f('--eps', 0))
    .option('--clip-grad <norm>', 'clip the global gradient norm', f('--clip-grad', 0))
    .option('--layer-decay <rate>', 'layer-wise lr decay for fine-tuning, e.g. 0.75', f('--layer-decay', 0, 1))
    .option('--ema-decay <decay>', 'keep an EMA of the weights, e.g. 0.9998 (saved in <out>/ema)', f('--ema-decay', 0, 1))
    .option('--mixup <alpha>', 'mixup Beta alpha (timm; 0 = off)', f('--mixup', 0), 0)
    .option('--cutmix <alpha>', 'cutmix Beta alpha (timm; 0 = off)', f('--cutmix', 0), 0)
    .option('--seed <n>', 'seed for initialization, data order and augmentation', parseIntOpt('--seed', 0), DEFAULT_SETTINGS.seed)
    .option('--no-shuffle', 'keep the data order')
    .option('--no-augment', 'no random crop / flip / shift')
    .option('-o, --out <dir>', 'output directory', 'vitkit-run')
    .option('--resume [dir]', 'continue the run in <dir> (default: --out) exactly where it stopped')
    .option('--overwrite', 'replace a checkpoint already in --out')
    .option('--workers <n>', 'data worker threads (0: on the main thread; default 1, 2 for image folders)', parseIntOpt('--workers', 0))
    .option('--teacher <dir>', 'DeiT hard distillation: a classifier checkpoint whose argmax the distillation head learns (distilled --model only)')
    .option('--max-classes <n>', 'most classes the labels of a tensor file may imply (max label + 1)', parseIntOpt('--max-classes'), DEFAULT_MAX_CLASSES)
    .addOption(new Option('--on-bad-image <policy>', 'an unreadable image: skip it with a warning, or stop').choices(['skip', 'error']).default('error'))
    .addOption(new Option('--stop-after-steps <n>', 'stop as Ctrl-C does after n steps (testing)').argParser(parseIntOpt('--stop-after-steps')).hideHelp());
  for (const [k, , flag] of ARCH_FLAGS) {
    const num = k === 'mlpRatio' ? f(flag, 0) : parseIntOpt(flag, k === 'depth' || k === 'numClasses' ? 0 : 1);
    cmd.option(`${flag} <n>`, `architecture: ${flag.slice(2).replace(/-/g, ' ')}${k === 'imgSize' ? ' (with a checkpoint: resamples pos_embed)' : k === 'numClasses' ? ' (with a checkpoint: a new head)' : ''}`, num);
  }
  addClipTrainOptions(cmd);
  addDetTrainOptions(cmd);
  cmd.option('--mask-ratio <r>', 'mae: fraction of patches masked (default the model\'s, 0.75)', f('--mask-ratio', 0, 0.999999))
    .option('--norm-pix-loss', 'mae: reconstruct per-patch normalised pixels (MAE\'s norm_pix_loss)');
  cmd.action(async (o: TrainOpts, c: Command) => {
    const explicit = new Set(Object.keys(o).filter((k) => c.getOptionValueSource(k) === 'cli'));
    const task = (o as { task?: string }).task ?? (isClipResume(o.resume, o.out) ? 'clip' : isMaeResume(o.resume, o.out) ? 'mae' : 'classification');
    if (task !== 'classification' && task !== 'clip' && task !== 'detect' && task !== 'mae') throw new UsageError(`Expected --task classification, clip, detect or mae but received ${JSON.stringify(task)}`);
    if (task === 'detect') {
      if (o.device === 'webgpu') throw new VitkitError(`train --task detect runs on --device cpu only for now (received --device ${o.device})`);
      const r = await detTrainCli(o as unknown as DetTrainCliOptions, explicit);
      if (r.signal) process.exit(130);
      return;
    }
    if (task === 'mae') {
      if (o.device === 'webgpu') throw new VitkitError(`train --task mae runs on --device cpu only for now (received --device ${o.device})`);
      const r = await maeTrainCli(o as unknown as MaeTrainCliOptions, explicit);
      if (r.signal) process.exit(130);
      return;
    }
    if (task === 'clip' && o.device === 'webgpu') throw new VitkitError(`train --task clip runs on --device cpu only for now (received --device ${o.device})`);
    if (task === 'clip') { await clipTrainCli(o as unknown as ClipTrainCliOptions, explicit); return; }
    const r = await trainCli(o, explicit, barProgress(), (s) => console.log(s));
    for (const l of summaryLines(r)) console.log(l);
    if (r.result.signal) process.exit(r.result.signalName === 'SIGTERM' ? 143 : 130);
  });
  return cmd;
}
