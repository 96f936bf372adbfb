/** Loads the native addon: a source build (build/Release/vitkit.node) or the package's prebuilt binary (addon_path.ts). */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Backend } from './backend.js';
import { VitkitError } from '../errors.js';
import { addonPath } from './addon_path.js';

export interface NativeAddon extends Omit<Backend, 'name'> {
  gemmIsa(): string;
  fmaPeak?(threads: number, seconds: number): number;
}

/** the package root: dist/src/backend/native.js is three levels below it */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const found = addonPath(packageRoot);
  try {
    const addon = createRequire(import.meta.url)(found) as NativeAddon;
    const env = process.env['VITKIT_THREADS'];
    const n = env ? Number(env) : availableParallelism();
    addon.setThreads(Number.isInteger(n) && n > 0 ? n : availableParallelism());
    cached = addon;
    return addon;
  } catch (e) {
    throw new VitkitError(`The native addon ${found} could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
      'Rebuild it with `npm run build:native` on this machine.');
  }
}

export function nativeBackend(): Backend {
  const addon = loadAddon();
  return Object.assign(Object.create(null), addon, { name: 'native' as const }) as Backend;
}
