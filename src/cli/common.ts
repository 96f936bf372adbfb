/** Shared CLI helpers: option parsing with clear errors, output-file safety, loading a model for inference. */
import { existsSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { DEVICE_NAMES, type DeviceName } from '../models/runner.js';
import { VitkitError, expected } from '../errors.js';
import { loadModel, type LoadedModel, type LoadOptions } from '../checkpoint/checkpoint.js';
import { PRESETS } from '../models/presets.js';
import { checkPreprocessForModel } from '../io/preprocess.js';
import { signalExitCode, type StopSignalName } from '../train/signals.js';

/**
 * A malformed option value is a malformed command line: commander prints
 * `error: option '--top-k <k>' argument 'abc' is invalid. Expected ...` and the CLI exits 2.
 */
function invalid(what: string, name: string, v: string): InvalidArgumentError {
  return new InvalidArgumentError(expected(what, name, v).message);
}

export function parseIntOpt(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw invalid(`an integer >= ${min}`, name, v);
    return n;
  };
}

export function parseFloatOpt(name: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw invalid(`a number in [${min}, ${max}]`, name, v);
    return n;
  };
}

/** One of a fixed set of values (exit 2 otherwise, like commander's .choices()). */
export function parseChoice<T extends string>(name: string, values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v)) throw invalid(`one of ${values.join(', ')}`, name, v);
    return v as T;
  };
}

/** The --device option of every command that runs a model: cpu (native kernels) or webgpu. */
export function deviceOption(cmd: Command): Command {
  return cmd.option('--device <name>', `where the model runs: ${DEVICE_NAMES.join(' | ')} (webgpu needs the optional package \`webgpu\` and an adapter)`,
    parseChoice('--device', DEVICE_NAMES), 'cpu' as DeviceName);
}

/**
 * SIGTERM (docker stop, systemd, CI runners) and SIGINT while a command computes: exit 143 / 130 at
 * once with one line. Outputs are written synchronously and atomically (temporary file, rename), so the
 * handler runs before a write starts or after it ended: never a partial file under the final name, and
 * no temporary file left. Returns the function that removes the handlers.
 */
export function stopOnSignal(command: string, output: string): () => void {
  const stop = (sig: StopSignalName): void => {
    console.error(`error: ${command} stopped by ${sig}; nothing was written to ${output}`);
    process.exit(signalExitCode(sig));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return () => {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  };
}

/** Refuse to replace a user's file unless --overwrite was given. */
export function checkOutput(file: string, overwrite: boolean | undefined): void {
  if (existsSync(file) && !overwrite) throw new VitkitError(`Output ${file} already exists; pass --overwrite to replace it`);
}

export function fmtNum(n: number, digits = 2): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export interface InferenceLoadOptions extends LoadOptions {
  /** accept a preset name without weights (random initialization) */
  randomWeights?: boolean;
  /** the command, for the message ("predict") */
  command?: string;
}

/**
 * Load a model for predict / explain / embed / fewshot. A preset name alone has no weights: its
 * outputs would be random, so it is refused unless --random-weights is given. The checkpoint's
 * preprocessing is checked against the model's input before any image is read.
 */
export function loadForInference(source: string, opts: InferenceLoadOptions = {}): LoadedModel {
  const { randomWeights, command, ...load } = opts;
  if (!existsSync(source) && PRESETS[source] && !randomWeights) {
    throw new VitkitError(
      `Expected a checkpoint directory for --model but received the preset name ${JSON.stringify(source)}, which has no weights: ` +
      `${command ?? 'its'} outputs would come from random initialization; pass --random-weights to use them anyway`,
    );
  }
  const lm = loadModel(source, load);
  const c = lm.model.config;
  // a model with a dynamic image size takes any multiple of its patch size (DINOv2's 518 weights fed 224 crops)
  if ((c as unknown as Record<string, unknown>)['dynamic_img_size'] !== true) checkPreprocessForModel(lm.preprocess, c.in_chans, c.img_size, source);
  return lm;
}
