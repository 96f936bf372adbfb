/**
 * Training states: where a run folder keeps them, and the one reader (and writer) of all four
 * (classification, CLIP, MAE, YOLOS). The reader checks every field of the saved run against a
 * schema (type, range, finite, integer, known keys only) and every tensor: a tampered or damaged
 * state is refused with a line naming the file and the field, expected versus received, instead of
 * training garbage ("batchSize": "64") or failing deep inside ("run.history.push is not a function"),
 * before the caller allocates its model.
 */
import { createHash } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, brief } from '../errors.js';
import type { DeviceKind } from '../backend/devices.js';
import { DEVICE_NAMES } from '../backend/devices.js';

/** the kinds an epoch can have run on (`auto` is resolved before training) */
const DEVICE_KINDS = DEVICE_NAMES.filter((n): n is Exclude<typeof n, 'auto'> => n !== 'auto');
import { cleanStaleTemps, makeDirs } from '../io/files.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../io/safetensors.js';
import { checkFinite } from '../checkpoint/validate.js';

// ---------------------------------------------------------------------------------------------
// the run state of `vitkit train` (classification): what train_state.safetensors records

/** Every setting that defines a run (saved with it; a resume continues with these). */
export interface TrainSettings {
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  labelSmoothing: number;
  schedule: 'cosine' | 'constant';
  warmupEpochs: number;
  clipGrad: number | null;
  layerDecay: number | null;
  emaDecay: number | null;
  /** mixup Beta alpha (0 = off) */
  mixup: number;
  /** cutmix Beta alpha (0 = off) */
  cutmix: number;
  seed: number;
  shuffle: boolean;
  /** train augmentation */
  augment: 'none' | 'shift' | 'rrc_flip';
  /** AdamW betas (absent: the Trainer's default 0.9, 0.999) */
  betas?: [number, number];
  /** AdamW eps (absent: the Trainer's default 1e-8) */
  eps?: number;
}

export const DEFAULT_SETTINGS: TrainSettings = {
  epochs: 10, batchSize: 64, lr: 1e-3, minLr: 0, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'cosine',
  warmupEpochs: 1, clipGrad: null, layerDecay: null, emaDecay: null, mixup: 0, cutmix: 0, seed: 0, shuffle: true, augment: 'none',
};

/** One line of metrics.jsonl. Accuracies are percentages. */
export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  val_loss: number | null;
  val_acc: number | null;
  val_top5: number | null;
  /** learning rate of the epoch's last step */
  lr: number;
  /** wall time of the epoch (training and validation) */
  seconds: number;
  /** training images per second */
  img_s: number;
  /** with --ema-decay: the EMA weights' validation accuracy */
  val_acc_ema?: number | null;
  /** where the epoch's steps ran (absent in runs written before it was recorded) */
  device?: DeviceKind;
}


/** The run state stored in train_state.safetensors (metadata "run") and train_state.json. */
export interface RunState {
  format: 'vitkit-train-state';
  version: 1;
  /** epochs completed */
  epoch: number;
  /**
   * batches done of epoch `epoch`: 0 at an epoch boundary; stepsPerEpoch when a stop came after the
   * epoch's last step, before its validation (the resume validates and ends that epoch first)
   */
  batch: number;
  /** optimizer steps done */
  step: number;
  stepsPerEpoch: number;
  trainSamples: number;
  settings: TrainSettings;
  /** config.json of the model (timm layout) and what saveCheckpoint needs */
  model: { config: Record<string, unknown>; name: string; pretrainedCfg: Record<string, unknown>; labels: string[] };
  /** sums over the unfinished epoch */
  partial: { lossSum: number; images: number; seconds: number; trainSeconds: number; lr: number };
  history: EpochMetrics[];
  /** every random draw derives from this seed with (epoch, batch); the order generator's state for the next epoch is shown */
  rng: { seed: number; epochOrderState: number };
  /** true once all epochs are done */
  complete: boolean;
  /** the data the run trains on (so --resume needs no --data) */
  data: DataRecord | null;
}

export interface DataRecord {
  source: string;
  valSplit?: number;
  valData?: string;
}


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

// ---------------------------------------------------------------------------------------------
// The one training-state reader: a schema of every field (type, range, finite, integer, known keys
// only) and readTrainingState, used by classification (RUN_STATE), CLIP, MAE and YOLOS.
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a field of a saved state must be. Objects are closed: a key the schema does not name is refused. */
export type Schema =
  | { t: 'int'; min: number; max?: number }
  | { t: 'num'; min: number; max: number; below?: boolean }
  | { t: 'bool' }
  | { t: 'str' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'const'; value: string | number }
  | { t: 'obj'; fields: Record<string, Schema> }
  /** any JSON object: one that its own reader checks (a timm config.json, a pretrained_cfg) */
  | { t: 'json' }
  | { t: 'arr'; of: Schema; len?: number; what?: string }
  | { t: 'nullable'; of: Schema }
  | { t: 'optional'; of: Schema };

/** Schema builders */
export const S = {
  int: (min = 0, max?: number): Schema => (max === undefined ? { t: 'int', min } : { t: 'int', min, max }),
  /** a finite number in [min, max] (in [min, max) with below) */
  num: (min = -Infinity, max = Infinity, below = false): Schema => ({ t: 'num', min, max, below }),
  bool: { t: 'bool' } as Schema,
  str: { t: 'str' } as Schema,
  json: { t: 'json' } as Schema,
  oneOf: (values: readonly string[]): Schema => ({ t: 'enum', values }),
  is: (value: string | number): Schema => ({ t: 'const', value }),
  obj: (fields: Record<string, Schema>): Schema => ({ t: 'obj', fields }),
  arr: (of: Schema, o: { len?: number; what?: string } = {}): Schema => ({ t: 'arr', of, ...o }),
  nullable: (of: Schema): Schema => ({ t: 'nullable', of }),
  optional: (of: Schema): Schema => ({ t: 'optional', of }),
};

/** AdamW betas: two numbers in [0, 1) */
export const BETAS = S.arr(S.num(0, 1, true), { len: 2, what: 'two numbers in [0, 1)' });

function describe(s: Schema): string {
  switch (s.t) {
    case 'int': return `an integer >= ${s.min}${s.max !== undefined ? ` and <= ${s.max}` : ''}`;
    case 'num': return `a finite number in [${s.min}, ${s.max}${s.below ? ')' : ']'}`;
    case 'bool': return 'true or false';
    case 'str': return 'a string';
    case 'enum': return `one of ${s.values.join(', ')}`;
    case 'const': return JSON.stringify(s.value);
    case 'obj': case 'json': return 'an object';
    case 'arr': return s.what ?? (s.of.t === 'str' ? 'an array of strings' : `an array of ${describe(s.of)}`);
    case 'nullable': return `null or ${describe(s.of)}`;
    case 'optional': return describe(s.of);
  }
}

function received(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (typeof v === 'string') return `the string ${brief(v)}`;
  if (Array.isArray(v)) return `the array ${brief(v)}`;
  if (isObj(v)) return `the object ${brief(v)}`;
  return `${String(v)}${typeof v === 'number' || typeof v === 'boolean' ? '' : ` (${typeof v})`}`;
}

/** Refusals of one state file: "Expected <what> for <field> in <file> but received <value>". */
export class StateChecker {
  constructor(readonly file: string) {}

  fail(field: string, what: string, v: unknown): never {
    throw new VitkitError(`Expected ${what} for ${field} in ${this.file} but received ${received(v)}`);
  }

  /** Check `v` against `s` (every field, recursively); `field` names it (the root: e.g. "the run state"). */
  check(s: Schema, v: unknown, field: string, root = true): void {
    const sub = (k: string) => (root ? k : `${field}.${k}`);
    switch (s.t) {
      case 'optional':
        if (v !== undefined) this.check(s.of, v, field, root);
        return;
      case 'nullable':
        if (v !== null) this.check(s.of, v, field, root);
        return;
      case 'int':
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < s.min || (s.max !== undefined && v > s.max)) this.fail(field, describe(s), v);
        return;
      case 'num':
        if (typeof v !== 'number' || !Number.isFinite(v) || v < s.min || v > s.max || (s.below && v >= s.max)) this.fail(field, describe(s), v);
        return;
      case 'bool':
        if (typeof v !== 'boolean') this.fail(field, describe(s), v);
        return;
      case 'str':
        if (typeof v !== 'string') this.fail(field, describe(s), v);
        return;
      case 'enum':
        if (typeof v !== 'string' || !s.values.includes(v)) this.fail(field, describe(s), v);
        return;
      case 'const':
        if (v !== s.value) this.fail(field, describe(s), v);
        return;
      case 'json':
        if (!isObj(v)) this.fail(field, describe(s), v);
        return;
      case 'obj': {
        if (!isObj(v)) this.fail(field, describe(s), v);
        for (const k of Object.keys(v)) {
          if (!Object.hasOwn(s.fields, k)) {
            throw new VitkitError(`Expected only the fields ${Object.keys(s.fields).join(', ')} in ${field} of ${this.file} but received the unknown field ${JSON.stringify(sub(k))} (${received(v[k])})`);
          }
        }
        for (const [k, fs] of Object.entries(s.fields)) this.check(fs, v[k], sub(k), false);
        return;
      }
      case 'arr': {
        if (!Array.isArray(v) || (s.len !== undefined && v.length !== s.len)) this.fail(field, describe(s), v);
        v.forEach((x, i) => this.check(s.of, x, `${field}[${i}]`, false));
        return;
      }
    }
  }
}

/** What a training state file holds: its run schema, its tensors, its metadata keys. */
export interface StateSpec {
  /** the "format" of the run */
  format: string;
  /** the file's metadata "format" */
  fileFormat: string;
  /** the run object (metadata "run", JSON) */
  run: Schema;
  /** cross-field checks after the schema (positions within the epoch, history length, ...) */
  consistent?: (run: Obj, c: StateChecker) => void;
  /** the tensors, each (N) float32, N the same for all: the weights first, then the AdamW moments */
  tensors: { weights: string; expAvg: string; expAvgSq: string; ema?: string };
  /** the metadata keys besides "run" and "checksum" */
  metadata: readonly string[];
  /**
   * a file from before the state recorded "run" (YOLOS: the position in metadata fields): the run
   * object made from its metadata, then checked by the same schema; null when it is not one
   */
  legacyRun?: (meta: Record<string, string>) => Obj | null;
  /** the legacy layout's tensor names */
  legacyTensors?: { weights: string; expAvg: string; expAvgSq: string };
  /** the legacy layout's metadata keys */
  legacyMetadata?: readonly string[];
}

export interface TrainingState<R> {
  file: string;
  run: R;
  weights: Float32Array;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
  ema?: Float32Array;
  /** AdamW's step count (bias correction) */
  optimizerStep: number;
}

/** sha256 over the state's metadata (format, step, optimizer_step, run) and its tensors' bytes, in name order */
export function stateChecksum(meta: Record<string, string>, tensors: Record<string, { data: ArrayBufferView }>): string {
  const h = createHash('sha256');
  for (const k of ['format', 'step', 'optimizer_step', 'run']) h.update(`${k}=${meta[k] ?? ''}\n`);
  for (const name of Object.keys(tensors).sort()) {
    const d = tensors[name]!.data;
    h.update(`${name}:${d.byteLength}\n`);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return 'sha256:' + h.digest('hex');
}

/**
 * The one training-state writer: (N) float32 tensors and the run (metadata "run", JSON) in one
 * safetensors file, written atomically, with the checksum that readTrainingState verifies.
 */
export function writeTrainingState(file: string, tensors: Record<string, Float32Array>, meta: Record<string, string>): void {
  const st: Record<string, StTensorIn> = {};
  for (const [k, data] of Object.entries(tensors)) st[k] = { dtype: 'F32', shape: [data.length], data };
  writeSafetensors(file, st, { ...meta, checksum: stateChecksum(meta, st) }, { overwrite: true });
}

/**
 * The one training-state reader: every metadata key known, the run checked field by field against
 * `spec.run` (and `spec.consistent`), the tensors present, (N) float32, finite, of one length, and
 * the checksum (where the file records one) equal to the bytes. Reads nothing but the file: the
 * caller builds its model after this passed.
 */
export function readTrainingState<R>(file: string, spec: StateSpec): TrainingState<R> {
  const st = readSafetensors(file);
  const c = new StateChecker(file);
  const meta = st.metadata;
  let raw: unknown;
  let names = spec.tensors;
  let metaKeys: readonly string[] = [...spec.metadata, 'run', 'checksum'];
  const legacy = meta['run'] === undefined && spec.legacyRun ? spec.legacyRun(meta) : null;
  if (legacy) {
    raw = legacy;
    names = { ...spec.legacyTensors! };
    metaKeys = spec.legacyMetadata ?? [];
  } else {
    try {
      raw = JSON.parse(meta['run'] ?? '');
    } catch {
      throw new VitkitError(`${file} is not a vitkit training state (${spec.format}): its metadata "run" is ${meta['run'] === undefined ? 'missing' : 'not JSON'}`);
    }
  }
  for (const k of Object.keys(meta)) {
    if (!metaKeys.includes(k)) throw new VitkitError(`Expected only the metadata keys ${metaKeys.join(', ')} in ${file} but received the unknown key ${JSON.stringify(k)} (${received(meta[k])})`);
  }
  if (!legacy && meta['format'] !== spec.fileFormat) c.fail('metadata "format"', JSON.stringify(spec.fileFormat), meta['format']);
  c.check(spec.run, raw, 'the run state');
  spec.consistent?.(raw as Obj, c);
  const optKey = legacy ? 'adam_step' : 'optimizer_step';
  const optStep = Number(meta[optKey]);
  if (meta[optKey] === undefined || !Number.isSafeInteger(optStep) || optStep < 0) {
    throw new VitkitError(`Expected an integer >= 0 for metadata "${optKey}" in ${file} but received ${JSON.stringify(meta[optKey] ?? null)}`);
  }
  const known = [names.weights, names.expAvg, names.expAvgSq, ...(spec.tensors.ema && !legacy ? [spec.tensors.ema] : [])];
  for (const k of st.keys()) {
    if (!known.includes(k)) throw new VitkitError(`Expected only the tensors ${known.join(', ')} in ${file} but received the unknown tensor ${JSON.stringify(k)}`);
  }
  const tensor = (name: string, moment: boolean) => {
    const t = st.f32(name);
    if (t.shape.length !== 1) throw new VitkitError(`Expected tensor ${JSON.stringify(name)} of shape (N) in ${file} but received (${t.shape.join(', ')})`);
    checkFinite(t.data, t.shape, name, file, moment ? Infinity : undefined); // moments may be large; weights may not
    return t.data;
  };
  const weights = tensor(names.weights, false);
  const expAvg = tensor(names.expAvg, true), expAvgSq = tensor(names.expAvgSq, true);
  const emaName = legacy ? undefined : spec.tensors.ema;
  const ema = emaName && st.has(emaName) ? tensor(emaName, false) : undefined;
  for (const [name, t] of [[names.expAvg, expAvg], [names.expAvgSq, expAvgSq], [emaName, ema]] as const) {
    if (t && t.length !== weights.length) throw new VitkitError(`Expected tensor ${JSON.stringify(name)} of ${weights.length} values (as ${JSON.stringify(names.weights)}) in ${file} but received ${t.length}`);
  }
  // the checksum (states written before it was recorded have none): a flipped byte or an edited run is refused
  const sum = meta['checksum'];
  if (sum !== undefined) {
    const all: Record<string, { data: Float32Array }> = { [names.weights]: { data: weights }, [names.expAvg]: { data: expAvg }, [names.expAvgSq]: { data: expAvgSq } };
    if (ema) all[emaName!] = { data: ema };
    const got = stateChecksum(meta, all);
    if (got !== sum) throw new VitkitError(`Cannot resume: ${file} does not match its checksum (expected ${sum} but the tensors and run give ${got}): the state was modified or damaged`);
  }
  return { file, run: raw as R, weights, expAvg, expAvgSq, ...(ema ? { ema } : {}), optimizerStep: optStep };
}

// --- the four states --------------------------------------------------------------------------

const METRICS = S.obj({
  epoch: S.int(1), train_loss: S.num(), val_loss: S.nullable(S.num()), val_acc: S.nullable(S.num(0, 100)), val_top5: S.nullable(S.num(0, 100)),
  lr: S.num(0), seconds: S.num(0), img_s: S.num(0), val_acc_ema: S.optional(S.nullable(S.num(0, 100))), device: S.optional(S.oneOf(DEVICE_KINDS)),
});
const HISTORY = S.arr(METRICS, { what: 'an array of per-epoch metrics' });

function historyInOrder(c: StateChecker, h: Obj[], epoch: number): void {
  if (h.length !== epoch) c.fail('history', `${epoch} entries (one per completed epoch)`, `${h.length} entries`);
  h.forEach((m, i) => { if (m['epoch'] !== i + 1) c.fail(`history[${i}].epoch`, `${i + 1} (history holds one entry per epoch, in order)`, m['epoch']); });
}

/** the position (epoch, batch) within `epochs` epochs of `stepsPerEpoch`: batch === stepsPerEpoch is a stop after the epoch's last step, before its end */
function positionInRun(c: StateChecker, r: Obj, epochs: number, stepsPerEpoch: number, batchField = 'batch'): void {
  const epoch = r['epoch'] as number, batch = r[batchField] as number;
  if (epoch > epochs) c.fail('epoch', `at most settings.epochs (${epochs})`, epoch);
  if (batch > stepsPerEpoch) c.fail(batchField, `the steps done of the epoch, 0 to ${stepsPerEpoch} (stepsPerEpoch ${stepsPerEpoch})`, batch);
  if (epoch === epochs && batch !== 0) c.fail(batchField, '0 once every epoch is done', batch);
}

/** `vitkit train` (classification): train_state.safetensors */
export const RUN_STATE: StateSpec = {
  format: 'vitkit-train-state',
  fileFormat: 'vitkit-trainer-state',
  run: S.obj({
    format: S.is('vitkit-train-state'), version: S.is(1), epoch: S.int(0), batch: S.int(0), step: S.int(0), stepsPerEpoch: S.int(1), trainSamples: S.int(1),
    settings: S.obj({
      epochs: S.int(1), batchSize: S.int(1), lr: S.num(0), minLr: S.num(0), weightDecay: S.num(0), labelSmoothing: S.num(0, 0.99),
      schedule: S.oneOf(['cosine', 'constant']), warmupEpochs: S.num(0), clipGrad: S.nullable(S.num(0)), layerDecay: S.nullable(S.num(0, 1)),
      emaDecay: S.nullable(S.num(0, 1)), mixup: S.num(0), cutmix: S.num(0), seed: S.int(0), shuffle: S.bool, augment: S.oneOf(['none', 'shift', 'rrc_flip']),
      // optional: runs saved before --betas / --eps existed use the Trainer's defaults
      betas: S.optional(BETAS), eps: S.optional(S.num(0)),
    }),
    model: S.obj({ config: S.json, name: S.str, pretrainedCfg: S.json, labels: S.arr(S.str) }),
    partial: S.obj({ lossSum: S.num(0), images: S.int(0), seconds: S.num(0), trainSeconds: S.num(0), lr: S.num(0) }),
    history: HISTORY,
    rng: S.obj({ seed: S.int(0), epochOrderState: S.int(0) }),
    complete: S.bool,
    data: S.optional(S.nullable(S.obj({ source: S.str, valSplit: S.optional(S.num(0, 0.9)), valData: S.optional(S.str) }))),
  }),
  consistent(r, c) {
    const s = r['settings'] as TrainSettings;
    const expect = Math.ceil((r['trainSamples'] as number) / s.batchSize);
    if (r['stepsPerEpoch'] !== expect) c.fail('stepsPerEpoch', `${expect} (ceil(trainSamples ${r['trainSamples'] as number} / settings.batchSize ${s.batchSize}))`, r['stepsPerEpoch']);
    positionInRun(c, r, s.epochs, expect);
    historyInOrder(c, r['history'] as Obj[], r['epoch'] as number);
    const seed = (r['rng'] as Obj)['seed'];
    if (seed !== s.seed) c.fail('rng.seed', `settings.seed (${s.seed})`, seed);
  },
  tensors: { weights: 'model', expAvg: 'optimizer.exp_avg', expAvgSq: 'optimizer.exp_avg_sq', ema: 'ema' },
  metadata: ['format', 'step', 'optimizer_step'],
};

/** Validate a parsed run state (RUN_STATE's schema and consistency); returns it typed. `file` names it in errors. */
export function validateRunState(raw: unknown, file: string): RunState {
  const c = new StateChecker(file);
  c.check(RUN_STATE.run, raw, 'the run state');
  RUN_STATE.consistent!(raw as Obj, c);
  const r = raw as RunState;
  return r.data === undefined ? { ...r, data: null } : r;
}

/** `vitkit train --task clip`: clip_train_state.safetensors */
export const CLIP_STATE: StateSpec = {
  format: 'vitkit-clip-train-state',
  fileFormat: 'vitkit-clip-train-state',
  run: S.obj({
    format: S.is('vitkit-clip-train-state'), source: S.str, epoch: S.int(0), batch: S.int(0), step: S.int(0),
    settings: S.obj({
      data: S.str, valData: S.optional(S.str), epochs: S.int(1), batchSize: S.int(2), lr: S.num(0), minLr: S.num(0), weightDecay: S.num(0),
      warmupEpochs: S.num(0), schedule: S.optional(S.oneOf(['cosine', 'constant'])), clipGrad: S.optional(S.num(0)), seed: S.int(0), shuffle: S.bool,
      out: S.str, lockImage: S.optional(S.bool), lockText: S.optional(S.bool), betas: S.optional(BETAS), eps: S.optional(S.num(0)),
    }),
  }),
  consistent(r, c) {
    const epochs = (r['settings'] as Obj)['epochs'] as number;
    // the steps per epoch depend on the data (checked when it is open): here only the epoch bounds
    positionInRun(c, r, epochs, Infinity);
  },
  tensors: { weights: 'model', expAvg: 'optimizer.exp_avg', expAvgSq: 'optimizer.exp_avg_sq' },
  metadata: ['format', 'optimizer_step'],
};

/** `vitkit train --task mae`: mae_train_state.safetensors */
export const MAE_STATE: StateSpec = {
  format: 'vitkit-mae-train-state',
  fileFormat: 'vitkit-mae-train-state',
  run: S.obj({
    format: S.is('vitkit-mae-train-state'), epoch: S.int(0), batch: S.int(0), step: S.int(0), stepsPerEpoch: S.int(1), samples: S.int(1), data: S.str,
    settings: S.obj({
      epochs: S.int(1), batchSize: S.int(1), lr: S.num(0), minLr: S.num(0), weightDecay: S.num(0), warmupEpochs: S.num(0),
      schedule: S.oneOf(['cosine', 'constant']), seed: S.int(0), shuffle: S.bool, augment: S.bool, maskRatio: S.num(0, 1, true),
      clipGrad: S.optional(S.num(0)), betas: S.optional(BETAS), eps: S.optional(S.num(0)),
    }),
    history: HISTORY,
    partial: S.obj({ lossSum: S.num(0), images: S.int(0), seconds: S.num(0) }),
  }),
  consistent(r, c) {
    const s = r['settings'] as Obj;
    const expect = Math.ceil((r['samples'] as number) / (s['batchSize'] as number));
    if (r['stepsPerEpoch'] !== expect) c.fail('stepsPerEpoch', `${expect} (ceil(samples ${r['samples'] as number} / settings.batchSize ${s['batchSize'] as number}))`, r['stepsPerEpoch']);
    positionInRun(c, r, s['epochs'] as number, expect);
    historyInOrder(c, r['history'] as Obj[], r['epoch'] as number);
  },
  tensors: { weights: 'model', expAvg: 'optimizer.exp_avg', expAvgSq: 'optimizer.exp_avg_sq' },
  metadata: ['format', 'optimizer_step'],
};

/** a metadata string as a number for the schema: absent stays absent, "" is not 0 */
const metaNumber = (v: string | undefined): number | undefined => (v === undefined ? undefined : v.trim() === '' ? NaN : Number(v));

/** `vitkit train --task detect`: det_train_state.safetensors (position = images done of the epoch) */
export const DET_STATE: StateSpec = {
  format: 'vitkit-det-train-state',
  fileFormat: 'vitkit-det-train-state',
  run: S.obj({ format: S.is('vitkit-det-train-state'), epoch: S.int(0), position: S.int(0), steps: S.int(0), data: S.str }),
  tensors: { weights: 'model', expAvg: 'optimizer.exp_avg', expAvgSq: 'optimizer.exp_avg_sq' },
  metadata: ['format', 'optimizer_step'],
  // states written before YOLOS used this format: the position in metadata fields, tensors params / exp_avg / exp_avg_sq
  legacyRun: (m) => (m['epoch'] === undefined && m['position'] === undefined ? null
    : { format: 'vitkit-det-train-state', epoch: metaNumber(m['epoch']), position: metaNumber(m['position']), steps: metaNumber(m['steps']), data: m['data'] }),
  legacyTensors: { weights: 'params', expAvg: 'exp_avg', expAvgSq: 'exp_avg_sq' },
  legacyMetadata: ['epoch', 'position', 'steps', 'adam_step', 'data'],
};
