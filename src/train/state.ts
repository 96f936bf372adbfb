/**
 * Field-by-field validation of a saved run state (train_state.safetensors metadata "run"): a
 * tampered or damaged state is refused with a line naming the file and the field, expected versus
 * received, instead of training garbage ("batchSize": "64") or failing deep inside
 * ("run.history.push is not a function").
 */
import { existsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, brief } from '../errors.js';
import type { EpochMetrics, RunState, TrainSettings } from './loop.js';
import { DEVICE_NAMES } from '../models/runner.js';
import { cleanStaleTemps, makeDirs } from '../io/files.js';

/**
 * The run folder's layout, the same for every task (classification, CLIP, MAE, YOLOS):
 *   <run>/               the model as its library loads it (timm, open_clip, facebookresearch/mae,
 *                        hustvl/YOLOS): exactly one model .safetensors at the top level, since
 *                        timm's `create_model('local-dir:<run>', pretrained=True)` refuses a folder
 *                        with two (timm 1.0.28 _hub.py load_state_dict_from_path)
 *   <run>/checkpoint/    the resumable training state (<task>_train_state.safetensors, and for
 *                        classification train_state.json). HF's Trainer writes checkpoint-N/; a run
 *                        keeps only its latest state, so the name is fixed.
 * Run folders written before the state moved keep it at the top level: they are still read, and
 * the next save moves it (writes checkpoint/, then removes the old top-level copy).
 */
export const STATE_DIR = 'checkpoint';

/** Where a run writes its training state file `name`: `<run>/checkpoint/<name>`. */
export function stateWritePath(runDir: string, name: string): string {
  return path.join(runDir, STATE_DIR, name);
}

/** Create `<run>/checkpoint/` (bounded mkdir) and remove temp files a killed run left there. */
export function prepareStateDir(runDir: string): void {
  makeDirs(path.join(runDir, STATE_DIR), 'training state folder');
  cleanStaleTemps(path.join(runDir, STATE_DIR));
}

/** Where to read the training state `name` of a run folder: `<run>/checkpoint/<name>`, else a legacy `<run>/<name>`; null when neither exists. */
export function findStateFile(runDir: string, name: string): string | null {
  for (const f of [stateWritePath(runDir, name), path.join(runDir, name)]) if (existsSync(f)) return f;
  return null;
}

/** After a save into checkpoint/: remove the top-level copies a legacy run folder held (`names`), so the folder holds one model .safetensors. */
export function removeLegacyState(runDir: string, names: readonly string[]): void {
  for (const n of names) {
    const f = path.join(runDir, n);
    if (existsSync(f)) unlinkSync(f);
  }
}

/** What marks a folder as holding a run's state (checkpoint/, or a legacy top-level state file): for the refusal to train over a run. */
export function runStateEntries(runDir: string, legacyName: string): string[] {
  return [STATE_DIR, legacyName].filter((n) => existsSync(path.join(runDir, n)));
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Checker {
  constructor(private readonly file: string) {}

  fail(field: string, what: string, v: unknown): never {
    throw new VitkitError(`Expected ${what} for ${field} in ${this.file} but received ${received(v)}`);
  }

  obj(v: unknown, field: string): Obj {
    if (!isObj(v)) this.fail(field, 'an object', v);
    return v;
  }

  int(v: unknown, field: string, min = 0): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(field, `an integer >= ${min}`, v);
    return v;
  }

  num(v: unknown, field: string, min = -Infinity, max = Infinity): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(field, `a finite number in [${min}, ${max}]`, v);
    return v;
  }

  numOrNull(v: unknown, field: string, min = -Infinity, max = Infinity): number | null {
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(field, `null or a finite number in [${min}, ${max}]`, v);
    return v;
  }

  bool(v: unknown, field: string): boolean {
    if (typeof v !== 'boolean') this.fail(field, 'true or false', v);
    return v;
  }

  str(v: unknown, field: string): string {
    if (typeof v !== 'string') this.fail(field, 'a string', v);
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(field, `one of ${values.join(', ')}`, v);
    return v as T;
  }
}

function received(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (typeof v === 'string') return `the string ${brief(v)}`;
  if (Array.isArray(v)) return `the array ${brief(v)}`;
  if (isObj(v)) return `the object ${brief(v)}`;
  return `${String(v)}${typeof v === 'number' || typeof v === 'boolean' ? '' : ` (${typeof v})`}`;
}

function settings(c: Checker, v: unknown): TrainSettings {
  const s = c.obj(v, 'settings');
  const f = (k: string) => `settings.${k}`;
  // betas / eps: optional (runs saved before --betas / --eps existed use the Trainer's defaults)
  const betas = s['betas'];
  if (betas !== undefined && !(Array.isArray(betas) && betas.length === 2 && betas.every((b) => typeof b === 'number' && b >= 0 && b < 1))) {
    c.fail(f('betas'), 'two numbers in [0, 1)', betas);
  }
  const eps = s['eps'] === undefined ? undefined : c.num(s['eps'], f('eps'), 0);
  return {
    ...(betas !== undefined ? { betas: [(betas as number[])[0]!, (betas as number[])[1]!] as [number, number] } : {}),
    ...(eps !== undefined ? { eps } : {}),
    epochs: c.int(s['epochs'], f('epochs'), 1),
    batchSize: c.int(s['batchSize'], f('batchSize'), 1),
    lr: c.num(s['lr'], f('lr'), 0),
    minLr: c.num(s['minLr'], f('minLr'), 0),
    weightDecay: c.num(s['weightDecay'], f('weightDecay'), 0),
    labelSmoothing: c.num(s['labelSmoothing'], f('labelSmoothing'), 0, 0.99),
    schedule: c.oneOf(s['schedule'], f('schedule'), ['cosine', 'constant'] as const),
    warmupEpochs: c.num(s['warmupEpochs'], f('warmupEpochs'), 0),
    clipGrad: c.numOrNull(s['clipGrad'], f('clipGrad'), 0),
    layerDecay: c.numOrNull(s['layerDecay'], f('layerDecay'), 0, 1),
    emaDecay: c.numOrNull(s['emaDecay'], f('emaDecay'), 0, 1),
    mixup: c.num(s['mixup'], f('mixup'), 0),
    cutmix: c.num(s['cutmix'], f('cutmix'), 0),
    seed: c.int(s['seed'], f('seed'), 0),
    shuffle: c.bool(s['shuffle'], f('shuffle')),
    augment: c.oneOf(s['augment'], f('augment'), ['none', 'shift', 'rrc_flip'] as const),
  };
}

function metrics(c: Checker, v: unknown, i: number): EpochMetrics {
  const m = c.obj(v, `history[${i}]`);
  const f = (k: string) => `history[${i}].${k}`;
  const out: EpochMetrics = {
    epoch: c.int(m['epoch'], f('epoch'), 1),
    train_loss: c.num(m['train_loss'], f('train_loss')),
    val_loss: c.numOrNull(m['val_loss'], f('val_loss')),
    val_acc: c.numOrNull(m['val_acc'], f('val_acc'), 0, 100),
    val_top5: c.numOrNull(m['val_top5'], f('val_top5'), 0, 100),
    lr: c.num(m['lr'], f('lr'), 0),
    seconds: c.num(m['seconds'], f('seconds'), 0),
    img_s: c.num(m['img_s'], f('img_s'), 0),
  };
  if (m['val_acc_ema'] !== undefined) out.val_acc_ema = c.numOrNull(m['val_acc_ema'], f('val_acc_ema'), 0, 100);
  if (m['device'] !== undefined) out.device = c.oneOf(m['device'], f('device'), DEVICE_NAMES);
  if (out.epoch !== i + 1) c.fail(f('epoch'), `${i + 1} (history holds one entry per epoch, in order)`, out.epoch);
  return out;
}

/** Validate a parsed run state; returns it typed. `file` names it in errors. */
export function validateRunState(raw: unknown, file: string): RunState {
  const c: Checker = new Checker(file);
  const r = c.obj(raw, 'the run state');
  if (r['format'] !== 'vitkit-train-state') c.fail('format', '"vitkit-train-state"', r['format']);
  if (r['version'] !== 1) c.fail('version', '1', r['version']);
  const s = settings(c, r['settings']);
  const stepsPerEpoch = c.int(r['stepsPerEpoch'], 'stepsPerEpoch', 1);
  const trainSamples = c.int(r['trainSamples'], 'trainSamples', 1);
  const expectSteps = Math.ceil(trainSamples / s.batchSize);
  if (stepsPerEpoch !== expectSteps) c.fail('stepsPerEpoch', `${expectSteps} (ceil(trainSamples ${trainSamples} / settings.batchSize ${s.batchSize}))`, stepsPerEpoch);
  const epoch = c.int(r['epoch'], 'epoch', 0);
  if (epoch > s.epochs) c.fail('epoch', `at most settings.epochs (${s.epochs})`, epoch);
  const batch = c.int(r['batch'], 'batch', 0);
  // batch === stepsPerEpoch: a stop after the epoch's last step, before its validation and history entry (the resume does them)
  if (batch > stepsPerEpoch) c.fail('batch', `the steps done of the epoch, 0 to ${stepsPerEpoch} (stepsPerEpoch ${stepsPerEpoch})`, batch);
  if (epoch === s.epochs && batch !== 0) c.fail('batch', '0 once every epoch is done', batch);
  const step = c.int(r['step'], 'step', 0);
  const m = c.obj(r['model'], 'model');
  const model = {
    config: c.obj(m['config'], 'model.config'),
    name: c.str(m['name'], 'model.name'),
    pretrainedCfg: c.obj(m['pretrainedCfg'], 'model.pretrainedCfg'),
    labels: (() => {
      const l = m['labels'];
      if (!Array.isArray(l) || !l.every((x) => typeof x === 'string')) c.fail('model.labels', 'an array of strings', l);
      return l as string[];
    })(),
  };
  const p = c.obj(r['partial'], 'partial');
  const partial = {
    lossSum: c.num(p['lossSum'], 'partial.lossSum', 0),
    images: c.int(p['images'], 'partial.images', 0),
    seconds: c.num(p['seconds'], 'partial.seconds', 0),
    trainSeconds: c.num(p['trainSeconds'], 'partial.trainSeconds', 0),
    lr: c.num(p['lr'], 'partial.lr', 0),
  };
  const h = r['history'];
  if (!Array.isArray(h)) c.fail('history', 'an array of per-epoch metrics', h);
  if (h.length !== epoch) c.fail('history', `${epoch} entries (one per completed epoch)`, `${h.length} entries`);
  const history = h.map((x, i) => metrics(c, x, i));
  const g = c.obj(r['rng'], 'rng');
  const rng = { seed: c.int(g['seed'], 'rng.seed', 0), epochOrderState: c.int(g['epochOrderState'], 'rng.epochOrderState', 0) };
  if (rng.seed !== s.seed) c.fail('rng.seed', `settings.seed (${s.seed})`, rng.seed);
  const complete = c.bool(r['complete'], 'complete');
  let data: RunState['data'] = null;
  if (r['data'] !== null && r['data'] !== undefined) {
    const d = c.obj(r['data'], 'data');
    data = { source: c.str(d['source'], 'data.source') };
    if (d['valSplit'] !== undefined) data.valSplit = c.num(d['valSplit'], 'data.valSplit', 0, 0.9);
    if (d['valData'] !== undefined) data.valData = c.str(d['valData'], 'data.valData');
  }
  return {
    format: 'vitkit-train-state', version: 1, epoch, batch, step, stepsPerEpoch, trainSamples, settings: s, model, partial, history, rng, complete, data,
  };
}
