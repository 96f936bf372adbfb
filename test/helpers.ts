/** Shared test utilities: paths, seeded random data, error metrics. */
import { existsSync, mkdtempSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import assert from 'node:assert/strict';
import { mulberry32 } from '../src/data/rng.js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** repo root: compiled tests live at dist/test/... */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** ../shared beside the checkout; VITKIT_SHARED overrides it (e.g. VITKIT_SHARED=/nonexistent to check that parity tests fail in CI) */
export const SHARED = process.env['VITKIT_SHARED'] ? path.resolve(process.env['VITKIT_SHARED']) : path.resolve(ROOT, '..', 'shared');
export const REFS = path.join(SHARED, 'refs');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const hasRefs = existsSync(REFS);
export const NO_REFS = `needs ${REFS} beside the checkout (not present)`;
/** under CI=true a parity test whose reference is missing fails instead of skipping */
export const IN_CI = process.env['CI'] === 'true';

/**
 * The one gate for every test that reads reference data (../shared/refs): true when every file
 * exists; otherwise the test skips with the reason, except under CI=true where it fails naming
 * the missing files. Call first in the test body: `if (!needRefs(t, file)) return;`.
 */
export function needRefs(t: { skip: (m: string) => void }, ...files: string[]): boolean {
  const want = files.length > 0 ? files : [REFS];
  const missing = want.filter((f) => !existsSync(f));
  if (missing.length === 0) return true;
  if (IN_CI) assert.fail(`reference data missing (CI=true: a parity test must not skip): ${missing.join(', ')}`);
  t.skip(`needs ${missing.join(', ')} (not present)`);
  return false;
}

/**
 * For a `{ skip }` option at declaration time (a describe or a shared before hook): the reason
 * to skip, or false when the references are present or under CI=true (where the test body must
 * then call needRefs and fail).
 */
export function refsSkip(...files: string[]): string | false {
  const want = files.length > 0 ? files : [REFS];
  const missing = want.filter((f) => !existsSync(f));
  if (missing.length === 0 || IN_CI) return false;
  return `needs ${missing.join(', ')} (not present)`;
}

/** the same seeded PRNG the library uses for initialization */
export const rng = mulberry32;

/** uniform values in [-scale, scale) */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) {
      if (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) continue;
      if (a[i] === b[i]) continue; // same infinity
      return Infinity;
    }
    if (d > m) m = d;
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export const BIN = path.join(ROOT, 'bin', 'vitkit.js');

/** Run the vitkit command line in a child process (2 native threads). */
export function vitkit(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, VITKIT_THREADS: '2' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * Run the vitkit command line in a child process (one thread) and send it `sig` `afterMs` after its
 * device line: the line comes when the model is about to compute, the command's signal handlers in
 * place by then (not a fixed time from spawn, which a loaded machine can spend loading modules).
 * Resolves with how it exited, what it printed and `ms`, the time from the signal to the exit.
 */
export async function stopBySignal(args: string[], sig: NodeJS.Signals, afterMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string; ms: number }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VITKIT_THREADS: '1' } });
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  // 'close': the process exited and its output is all read
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.on('close', (code, signal) => ok({ code, signal })));
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`no device line on stderr within 60 s: ${err}`)), 60_000);
    const look = () => { if (/^device: /m.test(err)) { clearTimeout(t); child.stderr.off('data', look); ok(); } };
    child.stderr.on('data', look);
  });
  await new Promise((r) => setTimeout(r, afterMs));
  const sent = Date.now();
  child.kill(sig);
  const r = await closed;
  return { ...r, out, err, ms: Date.now() - sent };
}

/**
 * stderr without the device line a command that runs a model writes before it computes
 * (`device: cpu (...)`, src/cli/main.ts): what is left is the command's own messages
 */
export function withoutDeviceLine(err: string): string {
  return err.split('\n').filter((l) => !/^device: \S+ \(/.test(l)).join('\n');
}

/** A user error: non-zero exit, one line on stderr matching `re` (besides the device line), no stack trace. */
export function assertUserError(r: ReturnType<typeof vitkit>, re: RegExp) {
  assert.notEqual(r.code, 0, `expected failure, got exit 0: ${r.out}`);
  assert.match(r.err, re);
  assert.equal(withoutDeviceLine(r.err).trim().split('\n').length, 1, `expected one line, got:\n${r.err}`);
  assert.ok(r.err.split('\n').filter((l) => l.startsWith('device: ')).length <= 1, `at most one device line:\n${r.err}`);
  assert.doesNotMatch(r.err, /\n\s+at /);
}

export function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'vitkit-test-'));
}

/** Run the vitkit command line in this process, capturing what it prints (console.log / console.error lines). */
export async function cliInProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { run } = await import('../src/cli/main.js');
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    const code = await run(['node', 'vitkit', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}
