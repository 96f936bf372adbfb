/**
 * The masked autoencoder on the command line: `vitkit train --task mae` (pre-training, see
 * train/mae_run.ts) and `vitkit reconstruct` (MAE's demo pictures: original, masked,
 * reconstruction, reconstruction with the visible patches pasted back).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError, VitkitError } from '../errors.js';
import { type MaeConfig, MAE_PRESETS, resolveMaeConfig } from '../mae/config.js';
import { MaskedAutoencoder, initMae } from '../mae/model.js';
import { isMaeDir, loadMae } from '../mae/load.js';
import { STATE_DIR, findStateFile, runStateEntries } from '../train/state.js';
import { MAE_STATE_FILE, maeTrainRun, openMaeData, readMaeRunState, type MaeRunResult, type MaeRunSettings } from '../train/mae_run.js';
import { MAE_BASE_LR, maeLr } from '../train/mae_train.js';
import type { ScheduleKind } from '../train/schedule.js';

export interface MaeTrainCliOptions {
  model?: string;
  data?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  warmupEpochs: number;
  schedule: ScheduleKind;
  seed: number;
  shuffle: boolean;
  augment: boolean;
  out: string;
  resume?: string | boolean;
  overwrite?: boolean;
  stopAfterSteps?: number;
  clipGrad?: number;
  betas?: [number, number];
  eps?: number;
  maskRatio?: number;
  normPixLoss?: boolean;
  workers?: number;
  imgSize?: number; patchSize?: number; embedDim?: number; depth?: number; numHeads?: number; mlpRatio?: number; inChans?: number;
}

/** A MAE to pre-train: a preset or a mae_config.json (from scratch, seeded init), or an MAE checkpoint directory. */
export function prepareMae(source: string, o: MaeTrainCliOptions): { model: MaskedAutoencoder; origin: 'scratch' | 'checkpoint' } {
  const over: Partial<Record<keyof MaeConfig, unknown>> = {};
  const flags: [keyof MaeTrainCliOptions, keyof MaeConfig][] = [['imgSize', 'img_size'], ['patchSize', 'patch_size'], ['embedDim', 'embed_dim'], ['depth', 'depth'], ['numHeads', 'num_heads'], ['mlpRatio', 'mlp_ratio'], ['inChans', 'in_chans']];
  for (const [k, key] of flags) if (o[k] !== undefined) over[key] = o[k];
  if (o.maskRatio !== undefined) over.mask_ratio = o.maskRatio;
  if (o.normPixLoss) over.norm_pix_loss = true;
  if (existsSync(source) && statSync(source).isDirectory()) {
    if (!isMaeDir(source)) throw new VitkitError(`--task mae needs an MAE checkpoint directory (mae_config.json, or config.json with model_type "vit_mae") but ${source} is not one`);
    const m = loadMae(source);
    const arch = Object.keys(over).filter((k) => k !== 'mask_ratio' && k !== 'norm_pix_loss');
    if (arch.length) throw new VitkitError(`--${arch[0]!.replace(/_/g, '-')} cannot change the architecture of checkpoint ${source}`);
    Object.assign(m.config, over);
    return { model: m, origin: 'checkpoint' };
  }
  let base: Record<string, unknown>;
  if (MAE_PRESETS[source]) base = { ...MAE_PRESETS[source] };
  else if (source.endsWith('.json')) {
    try { base = JSON.parse(readFileSync(source, 'utf8')) as Record<string, unknown>; } catch (e) { throw new VitkitError(`Cannot read MAE config ${source}: ${(e as Error).message}`); }
  } else {
    throw new VitkitError(`Unknown MAE model ${JSON.stringify(source)}: expected an MAE checkpoint directory, a mae_config.json or one of ${Object.keys(MAE_PRESETS).join(', ')}`);
  }
  const config = resolveMaeConfig({ ...base, ...over }, source.endsWith('.json') ? source : `preset ${source}`);
  const model = new MaskedAutoencoder(config);
  initMae(model, o.seed);
  return { model, origin: 'scratch' };
}

/**
 * `vitkit train --task mae`. MAE's recipe unless given: AdamW betas (0.9, 0.95), weight decay 0.05
 * (not on ndim-1 tensors and biases), lr = 1.5e-4 x batch / 256 (MAE's base lr rule), cosine with warmup.
 */
export async function maeTrainCli(o: MaeTrainCliOptions, explicit: ReadonlySet<string>, log: (s: string) => void = (s) => console.log(s)): Promise<MaeRunResult> {
  const resumeDir = o.resume === undefined || o.resume === false ? undefined : o.resume === true ? o.out : o.resume;
  const resume = resumeDir ? readMaeRunState(resumeDir) : null;
  if (resumeDir && !resume) throw new VitkitError(`Cannot resume: no ${STATE_DIR}/${MAE_STATE_FILE} in ${resumeDir}`);
  let settings: MaeRunSettings;
  let model: MaskedAutoencoder;
  let dataSrc: string;
  const out = resumeDir ?? o.out;
  if (resume) {
    settings = { ...resume.run.settings, ...(explicit.has('epochs') ? { epochs: o.epochs } : {}) };
    model = loadMae(resumeDir!);
    dataSrc = o.data ?? resume.run.data;
    log(`Resuming ${resumeDir} at epoch ${resume.run.epoch + 1} of ${settings.epochs}${resume.run.batch ? `, step ${resume.run.batch + 1} of ${resume.run.stepsPerEpoch}` : ''}`);
  } else {
    if (!o.model) throw new VitkitError(`--task mae needs --model <${Object.keys(MAE_PRESETS).join('|')}|mae_config.json|MAE checkpoint dir>`);
    if (!o.data) throw new VitkitError('--task mae needs --data: a .safetensors with x (and optionally noise), an image folder or mnist');
    if (existsSync(o.out)) {
      const found = [...['model.safetensors', 'mae_config.json'].filter((f) => existsSync(path.join(o.out, f))), ...runStateEntries(o.out, MAE_STATE_FILE)];
      if (found.length && !o.overwrite) throw new VitkitError(`Output directory ${o.out} already holds a checkpoint (${found.join(', ')}); pass --resume to continue that run or --overwrite to replace it`);
    }
    if (o.maskRatio !== undefined && !(o.maskRatio >= 0 && o.maskRatio < 1)) throw new UsageError(`Expected a mask ratio in [0, 1) for --mask-ratio but received ${o.maskRatio}`);
    model = prepareMae(o.model, o).model;
    dataSrc = o.data;
    settings = {
      epochs: o.epochs, batchSize: o.batchSize, lr: explicit.has('lr') ? o.lr : maeLr(o.batchSize), minLr: o.minLr,
      weightDecay: explicit.has('weightDecay') ? o.weightDecay : 0.05, warmupEpochs: o.warmupEpochs, schedule: o.schedule,
      seed: o.seed, shuffle: o.shuffle, augment: o.augment, maskRatio: model.config.mask_ratio,
      ...(o.clipGrad !== undefined ? { clipGrad: o.clipGrad } : {}), ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}),
    };
    const c = model.config;
    log(`MAE pre-training ${o.model}: img ${c.img_size}, patch ${c.patch_size}, encoder ${c.embed_dim}x${c.depth} (${c.num_heads} heads), decoder ${c.decoder_embed_dim}x${c.decoder_depth}, ` +
      `mask ratio ${c.mask_ratio}${c.norm_pix_loss ? ', norm_pix_loss' : ''}, ${model.params.count.toLocaleString()} parameters; ` +
      `lr ${settings.lr.toExponential(3)}${explicit.has('lr') ? '' : ` (base lr ${MAE_BASE_LR} x batch ${o.batchSize} / 256)`}`);
  }
  const data = openMaeData(dataSrc, model, settings.seed);
  const r = await maeTrainRun({
    model, data, settings, out, resume, log, message: (line) => console.error(line), ...(o.stopAfterSteps !== undefined ? { stopAfterSteps: o.stopAfterSteps } : {}), ...(o.workers !== undefined ? { workers: o.workers } : {}),
  });
  if (r.interrupted) log(`Interrupted after ${r.steps} steps. A resumable checkpoint is in ${out}. Continue with: vitkit train --task mae --resume ${out}`);
  else log(`Done: ${r.history.length} epochs, ${r.steps} steps, train_loss ${r.history.at(-1)?.train_loss.toFixed(4) ?? '--'}; MAE checkpoint ${path.join(out, 'model.safetensors')} + mae_config.json; curves ${path.join(out, 'curves.png')}`);
  return r;
}

/** `--resume [dir]` of an MAE run */
export function isMaeResume(resume: string | boolean | undefined, out: string): boolean {
  if (resume === undefined || resume === false) return false;
  return findStateFile(resume === true ? out : resume, MAE_STATE_FILE) !== null;
}

