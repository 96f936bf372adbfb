/**
 * Loads the native addon: a source build (build/Release/vitkit.node) or the package's prebuilt binary (addon_path.ts).
 *
 * The addon validates every argument itself (integers are safe, non-negative and never truncated;
 * size products are overflow-checked; every buffer covers what its dimensions address) and throws;
 * each function here is wrapped so that such an error, or a native allocation failure, reaches the
 * caller as a one-line VitkitError naming the op, the argument, what was expected and received.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Backend } from './backend.js';
import { VitkitError, describe } from '../errors.js';
import { hostOps } from './host.js';
import { addonPath } from './addon_path.js';

export interface NativeAddon extends Omit<Backend, 'name' | 'threads' | keyof ReturnType<typeof hostOps>> {
  setThreads(n: number): void;
  getThreads(): number;
  gemmIsa(): string;
  fmaPeak?(threads: number, seconds: number): number;
  /** fn() with descriptor 2 captured: [its result, the text]; absent in an addon built before it */
  captureStderr?(fn: () => unknown): [unknown, string];
}

/** the package root: dist/src/backend/native.js is three levels below it */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let cached: NativeAddon | undefined;
/** a thread count asked for before (or after) the addon was loaded; wins over VITKIT_THREADS */
let requestedThreads: number | undefined;

function checkThreads(n: unknown, name: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new VitkitError(`Expected an integer >= 1 for ${name} but received ${describe(n)}`);
  }
  return n;
}

/**
 * Sets the native thread count, at any time: applied at once when the addon is loaded, else when
 * it loads. (VITKIT_THREADS is only the default.)
 */
export function setNativeThreads(n: number): void {
  requestedThreads = checkThreads(n, 'the native thread count');
  cached?.setThreads(requestedThreads);
}

/** The thread count the native backend uses (or will use once loaded). */
export function nativeThreads(): number {
  return cached ? cached.getThreads() : requestedThreads ?? defaultThreads();
}

function defaultThreads(): number {
  const env = process.env['VITKIT_THREADS'];
  const n = env ? Number(env) : NaN;
  return Number.isInteger(n) && n > 0 ? n : availableParallelism();
}

/** A native error (a RangeError/TypeError from addon.cc, or anything else) as a VitkitError. */
function nativeError(op: string, e: unknown): VitkitError {
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  return new VitkitError(`native ${msg.startsWith(`${op}:`) ? msg : `${op}: ${msg}`}`);
}

function wrap(raw: Record<string, unknown>): NativeAddon {
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, fn] of Object.entries(raw)) {
    if (typeof fn !== 'function') continue;
    const f = fn as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]) => {
      try {
        return f(...args);
      } catch (e) {
        throw nativeError(name, e);
      }
    };
  }
  const addon = out as unknown as NativeAddon;
  const setThreads = addon.setThreads;
  addon.setThreads = (n: number) => {
    requestedThreads = checkThreads(n, 'setThreads(n)');
    setThreads(requestedThreads);
  };
  return addon;
}

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const found = addonPath(packageRoot);
  let addon: NativeAddon;
  try {
    addon = wrap(createRequire(import.meta.url)(found) as Record<string, unknown>);
  } catch (e) {
    throw new VitkitError(`The native addon ${found} could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
      'Rebuild it with `npm run build:native` on this machine.');
  }
  addon.setThreads(requestedThreads ?? defaultThreads());
  cached = addon;
  return addon;
}

export function nativeBackend(): Backend {
  const addon = loadAddon();
  const threads = { setThreads: (n: number) => addon.setThreads(n), getThreads: () => addon.getThreads() };
  return Object.assign(Object.create(null), addon, hostOps(addon), { name: 'native', threads }) as Backend;
}
