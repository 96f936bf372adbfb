/**
 * A seeded mutation fuzzer over vitkit's readers: safetensors (parse, every tensor read, the x/y
 * tensor-file loader), configs (timm config.json, HF config.json, preprocessor configs) and images
 * (decode and preprocess), plus whole checkpoint directories (config + weights -> load -> forward).
 *
 * The property: every input either loads or throws a VitkitError — never another error type, never
 * a non-finite output from a loaded model or preprocessed image, never an iteration that runs
 * past `slowMs`. Inputs start from the committed corpus in fuzz/corpus/ and are mutated by a
 * seeded generator, so a run is reproducible from its seed: `npm run fuzz -- --seconds 20 --seed 7`.
 * Findings are printed (and with --save <dir> written there) and make the command exit 1.
 */
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VitkitError } from '../src/errors.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { configFromHf, configFromTimm, loadModel } from '../src/checkpoint/checkpoint.js';
import { mulberry32 } from '../src/data/rng.js';
import { preprocessFromHf, preprocessFromTimm, preprocessImage } from '../src/io/preprocess.js';
import { loadImage } from '../src/io/image.js';
import { loadTensorFile } from '../src/data/tensors.js';
import { Tensor } from '../src/tensor.js';
import { imgHW } from '../src/models/config.js';

export type Target = 'safetensors' | 'config' | 'image' | 'checkpoint';
export const TARGETS: readonly Target[] = ['safetensors', 'config', 'image', 'checkpoint'];

export interface Finding {
  target: Target;
  iteration: number;
  /** what went wrong: the foreign error, the non-finite value, the slow iteration */
  problem: string;
  /** the input that caused it (for config targets, JSON text) */
  input: Uint8Array;
  name: string;
}

export interface FuzzOptions {
  seconds: number;
  seed?: number;
  targets?: readonly Target[];
  /** fuzz/corpus by default */
  corpus?: string;
  /** an iteration longer than this is a finding (default 10 s) */
  slowMs?: number;
  /** stop after this many findings (default 10) */
  maxFindings?: number;
}

export interface FuzzReport {
  iterations: Record<Target, number>;
  /** inputs that loaded / that were refused with a VitkitError */
  loaded: number;
  refused: number;
  findings: Finding[];
  seconds: number;
}

export const CORPUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fuzz', 'corpus');

type Rand = () => number;

const INTERESTING_BYTES = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x7b, 0x7d, 0x22, 0x2c, 0x30, 0x39, 0x2d];
const INTERESTING_NUMBERS = [0, -1, 1, 2, 3, 7, 8, 255, 256, 1023, 1e6, 1e7, 2 ** 31, 2 ** 53, 1e300, -1e300, 0.5, 1e-6, -0.0];

function int(r: Rand, n: number): number {
  return Math.floor(r() * n);
}

function pick<T>(r: Rand, xs: readonly T[]): T {
  return xs[int(r, xs.length)]!;
}

/** Byte-level mutations: flips, interesting bytes, inserts, deletes, chunk copies, truncation, splices. */
export function mutateBytes(r: Rand, src: Uint8Array, other?: Uint8Array): Uint8Array {
  let b = new Uint8Array(src);
  const rounds = 1 + int(r, 4);
  for (let k = 0; k < rounds; k++) {
    const n = b.length;
    const at = n ? int(r, n) : 0;
    switch (int(r, 9)) {
      case 0: if (n) b[at] = b[at]! ^ (1 << int(r, 8)); break;
      case 1: if (n) b[at] = pick(r, INTERESTING_BYTES); break;
      case 2: { const c = new Uint8Array(n + 1); c.set(b.subarray(0, at)); c[at] = pick(r, INTERESTING_BYTES); c.set(b.subarray(at), at + 1); b = c; break; }
      case 3: if (n) { const len = 1 + int(r, Math.min(16, n - at)); const c = new Uint8Array(n - len); c.set(b.subarray(0, at)); c.set(b.subarray(at + len), at); b = c; } break;
      case 4: if (n > 1) { const len = 1 + int(r, Math.min(64, n)); const from = int(r, n - len + 1); const c = new Uint8Array(n + len); c.set(b.subarray(0, at)); c.set(b.subarray(from, from + len), at); c.set(b.subarray(at), at + len); b = c; } break;
      case 5: b = b.subarray(0, int(r, n + 1)).slice(); break;
      case 6: if (other && other.length) { const cut = int(r, n + 1), ocut = int(r, other.length); const c = new Uint8Array(cut + other.length - ocut); c.set(b.subarray(0, cut)); c.set(other.subarray(ocut), cut); b = c; } break;
      case 7: if (n >= 8) { const dv = new DataView(b.buffer, b.byteOffset, b.byteLength); const v = dv.getBigUint64(0, true); dv.setBigUint64(0, BigInt.asUintN(64, v + BigInt(int(r, 17) - 8)), true); } break;
      default: { // ASCII digit runs (JSON numbers in headers) replaced by an interesting number
        const text = new TextDecoder('latin1').decode(b);
        const runs = [...text.matchAll(/\d+/g)];
        if (runs.length) {
          const m = pick(r, runs);
          const rep = new TextEncoder().encode(String(pick(r, INTERESTING_NUMBERS)));
          const c = new Uint8Array(n - m[0].length + rep.length);
          c.set(b.subarray(0, m.index)); c.set(rep, m.index); c.set(b.subarray(m.index + m[0].length), m.index + rep.length);
          b = c;
        }
      }
    }
  }
  return b;
}

function deepArray(depth: number): unknown {
  let v: unknown = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const INTERESTING_VALUES: (() => unknown)[] = [
  () => null, () => true, () => false, () => '', () => 'abc', () => '64', () => [], () => ({}), () => [1, 2], () => [0, 0, 0],
  () => ({ a: 1 }), () => deepArray(800), () => 'x'.repeat(1000), ...INTERESTING_NUMBERS.map((n) => () => n),
];

/** Structural JSON mutations: replace, delete or add values at random paths. */
export function mutateJson(r: Rand, v: unknown, depth = 0): unknown {
  if (depth > 6 || r() < 0.15) return pick(r, INTERESTING_VALUES)();
  if (Array.isArray(v)) {
    const c = [...v];
    if (c.length && r() < 0.7) { const i = int(r, c.length); c[i] = mutateJson(r, c[i], depth + 1); } else if (r() < 0.5) c.pop(); else c.push(pick(r, INTERESTING_VALUES)());
    return c;
  }
  if (typeof v === 'object' && v !== null) {
    const c = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(c);
    const x = r();
    if (keys.length && x < 0.7) { const k = pick(r, keys); c[k] = mutateJson(r, c[k], depth + 1); } else if (keys.length && x < 0.85) delete c[pick(r, keys)]; else c[pick(r, ['depth', 'img_size', 'num_classes', 'model_args', 'size', 'std', 'image_std', 'crop_pct', 'label_names', 'id2label', 'x'])] = pick(r, INTERESTING_VALUES)();
    return c;
  }
  return pick(r, INTERESTING_VALUES)();
}

function finiteOrThrow(data: ArrayLike<number>, what: string): void {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) throw new NonFinite(`${what}[${i}] is ${data[i]}`);
}

class NonFinite extends Error {}

function readCorpus(dir: string): { name: string; bytes: Uint8Array }[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.map((n) => ({ name: n, bytes: new Uint8Array(readFileSync(path.join(dir, n))) }));
}

/** Run the fuzzer for `opts.seconds`. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const seed = opts.seed ?? 1;
  const r = mulberry32(seed);
  const targets = opts.targets ?? TARGETS;
  const corpusDir = opts.corpus ?? CORPUS;
  const slowMs = opts.slowMs ?? 10_000;
  const maxFindings = opts.maxFindings ?? 10;
  const corpus: Record<Target, { name: string; bytes: Uint8Array }[]> = {
    safetensors: readCorpus(path.join(corpusDir, 'safetensors')),
    config: readCorpus(path.join(corpusDir, 'config')),
    image: readCorpus(path.join(corpusDir, 'image')),
    checkpoint: readCorpus(path.join(corpusDir, 'checkpoint')),
  };
  for (const t of targets) if (corpus[t].length === 0) throw new VitkitError(`Expected corpus files in ${path.join(corpusDir, t)} but received none`);
  const work = mkdtempSync(path.join(tmpdir(), 'vitkit-fuzz-'));
  const report: FuzzReport = { iterations: { safetensors: 0, config: 0, image: 0, checkpoint: 0 }, loaded: 0, refused: 0, findings: [], seconds: 0 };
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  let iteration = 0;
  try {
    while (performance.now() < deadline && report.findings.length < maxFindings) {
      const target = targets[iteration % targets.length]!;
      const seeds = corpus[target];
      const base = pick(r, seeds);
      const other = pick(r, seeds);
      let input: Uint8Array;
      let run: () => Promise<void>;
      switch (target) {
        case 'safetensors': {
          input = mutateBytes(r, base.bytes, other.bytes);
          const bytes = input;
          run = async () => {
            const st = parseSafetensors(bytes, 'fuzz.safetensors');
            for (const k of st.keys()) {
              const e = st.entry(k);
              if (['F64', 'F32', 'F16', 'BF16'].includes(e.dtype)) st.f32(k); else st.i64(k);
            }
            if (st.has('x') && st.has('y')) {
              const f = path.join(work, 'xy.safetensors');
              writeFileSync(f, bytes);
              const ds = loadTensorFile(f);
              finiteOrThrow(ds.data, 'x');
            }
          };
          break;
        }
        case 'config': {
          const text = new TextDecoder().decode(base.bytes);
          const json = JSON.parse(text) as unknown;
          const mutated = r() < 0.8 ? new TextEncoder().encode(JSON.stringify(mutateJson(r, json))) : mutateBytes(r, base.bytes, other.bytes);
          input = mutated;
          const kind = base.name.split(/[.-]/)[0]!;
          run = async () => {
            let v: unknown;
            try {
              v = JSON.parse(new TextDecoder().decode(mutated));
            } catch {
              throw new VitkitError('not JSON'); // the readers see parsed JSON; a JSON syntax error is the file reader's (VitkitError) case
            }
            // as the file readers do (checkpoint/checkpoint.ts readJson): a config file must hold a JSON object
            if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new VitkitError('not a JSON object');
            if (kind === 'preprocessor') {
              const p = preprocessFromHf(v as Record<string, unknown>, 32, 3);
              finiteOrThrow([...p.mean, ...p.std, p.rescaleFactor, p.height, p.width], 'preprocessing');
            } else if (kind === 'pretrained') {
              const p = preprocessFromTimm(v as Record<string, unknown>, 32, 3);
              finiteOrThrow([...p.mean, ...p.std, p.cropPct, p.height, p.width], 'preprocessing');
            } else {
              const c = kind === 'hf' ? configFromHf(v as Record<string, unknown>, 'fuzz-config.json') : configFromTimm(v as Record<string, unknown>, 'fuzz-config.json');
              finiteOrThrow([...imgHW(c), c.patch_size, c.embed_dim, c.depth, c.num_heads, c.mlp_ratio, c.layer_norm_eps, c.num_classes], 'config');
            }
          };
          break;
        }
        case 'image': {
          input = mutateBytes(r, base.bytes, r() < 0.2 ? other.bytes : undefined);
          const bytes = input;
          const channels = r() < 0.5 ? 3 : 1;
          run = async () => {
            const img = await loadImage(bytes, channels, 'fuzz-image');
            if (img.data.length !== img.width * img.height * img.channels) throw new Error(`decoded ${img.data.length} bytes for ${img.width}x${img.height}x${img.channels}`);
            const pv = await preprocessImage(bytes, preprocessFromTimm({ crop_pct: 0.875, interpolation: pick(r, ['bilinear', 'bicubic', 'nearest']) }, 16, channels), 'fuzz-image');
            finiteOrThrow(pv, 'pixel_values');
          };
          break;
        }
        default: {
          // a checkpoint directory: config.json (structurally mutated) or model.safetensors (byte-mutated)
          const cfgSeed = seeds.find((s) => s.name.endsWith('.json'))!;
          const wSeed = seeds.find((s) => s.name.endsWith('.safetensors'))!;
          const mutateConfig = r() < 0.6;
          const cfgBytes = mutateConfig ? new TextEncoder().encode(JSON.stringify(mutateJson(r, JSON.parse(new TextDecoder().decode(cfgSeed.bytes))))) : cfgSeed.bytes;
          const wBytes = mutateConfig ? wSeed.bytes : mutateBytes(r, wSeed.bytes);
          input = mutateConfig ? cfgBytes : wBytes;
          run = async () => {
            const d = path.join(work, `ckpt-${iteration}`);
            mkdirSync(d);
            try {
              writeFileSync(path.join(d, 'config.json'), cfgBytes);
              writeFileSync(path.join(d, 'model.safetensors'), wBytes);
              const { model } = loadModel(d);
              const c = model.config;
              const [ih, iw] = imgHW(c);
              const logits = model.forward(new Tensor([1, c.in_chans, ih, iw], new Float32Array(c.in_chans * ih * iw).fill(0.25)));
              finiteOrThrow(logits.data, 'logits');
            } finally {
              rmSync(d, { recursive: true, force: true });
            }
          };
        }
      }
      report.iterations[target]++;
      const s0 = performance.now();
      try {
        await run();
        report.loaded++;
      } catch (e) {
        if (e instanceof VitkitError && !e.message.includes('\n')) report.refused++;
        else {
          const problem = e instanceof NonFinite ? `non-finite output: ${e.message}` : e instanceof VitkitError ? `multi-line VitkitError: ${e.message}` : `${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
          report.findings.push({ target, iteration, problem, input, name: base.name });
        }
      }
      const ms = performance.now() - s0;
      if (ms > slowMs) report.findings.push({ target, iteration, problem: `slow: ${ms.toFixed(0)} ms`, input, name: base.name });
      iteration++;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

function usage(msg: string): never {
  console.error(`error: ${msg}\nusage: node dist/fuzz/fuzz.js [--seconds 20] [--seed 1] [--target ${TARGETS.join('|')}]... [--save <dir>]`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  let seconds = 20, seed = 1, save: string | undefined;
  const targets: Target[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, v = argv[i + 1];
    if (a === '--seconds') { seconds = Number(v); i++; if (!(seconds > 0)) usage(`Expected a positive number for --seconds but received ${JSON.stringify(v)}`); }
    else if (a === '--seed') { seed = Number(v); i++; if (!Number.isInteger(seed)) usage(`Expected an integer for --seed but received ${JSON.stringify(v)}`); }
    else if (a === '--target') { i++; if (!(TARGETS as readonly string[]).includes(v ?? '')) usage(`Expected one of ${TARGETS.join(', ')} for --target but received ${JSON.stringify(v)}`); targets.push(v as Target); }
    else if (a === '--save') { save = v; i++; }
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  const report = await runFuzz({ seconds, seed, ...(targets.length ? { targets } : {}) });
  const its = Object.entries(report.iterations).map(([t, n]) => `${t} ${n}`).join(', ');
  console.log(`fuzz: seed ${seed}, ${report.seconds.toFixed(1)} s, iterations ${its}; ${report.loaded} loaded, ${report.refused} refused with a VitkitError, ${report.findings.length} findings`);
  for (const f of report.findings) {
    console.log(`FINDING ${f.target} #${f.iteration} (from ${f.name}): ${f.problem}`);
    if (save) {
      mkdirSync(save, { recursive: true });
      const file = path.join(save, `${f.target}-seed${seed}-${f.iteration}-${f.name}`);
      writeFileSync(file, f.input);
      console.log(`  input saved to ${file}`);
    }
  }
  return report.findings.length ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
