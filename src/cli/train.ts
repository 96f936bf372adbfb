/**
 * `vitkit train`: from scratch (a preset or config file plus architecture flags) or from a
 * checkpoint directory (fine-tuning), on any data `--data` names (see data/open.ts), with a
 * progress bar, validation after every epoch, resumable checkpoints and Ctrl-C handling.
 */
import { imageOptions } from './image_options.js';
import type { DeviceName } from '../models/runner.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { UsageError, VitkitError, expected } from '../errors.js';
import { configFromTimm } from '../checkpoint/checkpoint.js';
import { VisionTransformer, vitParamSpecs } from '../models/vit.js';
import { preprocessFromTimm } from '../io/preprocess.js';
import { checkConfigResources } from '../checkpoint/validate.js';
import { DEFAULT_MAX_CLASSES, openData, type DataSource } from '../data/open.js';
import {
  DEFAULT_SETTINGS, STATE_FILE, readRunState, trainRun, type ProgressSink, type RunResult, type TrainSettings,
} from '../train/loop.js';
import { STATE_DIR } from '../train/state.js';
import { deviceOption, parseFloatOpt, parseIntOpt } from './common.js';
import { addClipTrainOptions, clipTrainCli, isClipResume, type ClipTrainCliOptions } from '../train/clip_cli.js';
import { addDetTrainOptions, detTrainCli, type DetTrainCliOptions } from '../detect/train_cli.js';
import { isMaeResume, maeTrainCli, type MaeTrainCliOptions } from './mae.js';
import { signalExitCode } from '../train/signals.js';
import { ARCH_FLAGS, checkOutDir, prepareModel, preparePipeline, prepareTeacher, type ArchOverrides } from '../train/prepare.js';
import { barProgress } from './progress.js';

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
      if (r.signalName) process.exit(signalExitCode(r.signalName));
      return;
    }
    if (task === 'mae') {
      if (o.device === 'webgpu') throw new VitkitError(`train --task mae runs on --device cpu only for now (received --device ${o.device})`);
      const r = await maeTrainCli(o as unknown as MaeTrainCliOptions, explicit);
      if (r.signalName) process.exit(signalExitCode(r.signalName));
      return;
    }
    if (task === 'clip' && o.device === 'webgpu') throw new VitkitError(`train --task clip runs on --device cpu only for now (received --device ${o.device})`);
    if (task === 'clip') { await clipTrainCli(o as unknown as ClipTrainCliOptions, explicit); return; }
    const r = await trainCli(o, explicit, barProgress(), (s) => console.log(s));
    for (const l of summaryLines(r)) console.log(l);
    if (r.result.signalName) process.exit(signalExitCode(r.result.signalName));
  });
  return cmd;
}
