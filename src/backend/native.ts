/** Loads the native addon (build/Release/vitkit.node), built by `npm install` through node-gyp. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Backend } from './backend.js';
import { VitkitError } from '../errors.js';
import { hostOps } from './host.js';

export interface NativeAddon extends Omit<Backend, 'name' | keyof ReturnType<typeof hostOps>> {
  gemmIsa(): string;
  fmaPeak?(threads: number, seconds: number): number;
}

/** the package root: dist/src/backend/native.js is three levels below it */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const candidates = ['build/Release/vitkit.node', 'build/Debug/vitkit.node'].map((p) => path.join(packageRoot, p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new VitkitError(
      `The native addon is not built (looked for ${candidates[0]}). Run \`npm install\` (or \`npm run build:native\`) ` +
      'in the vitkit package; it needs python3, make and a C++17 compiler (g++ or clang++).');
  }
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
  return Object.assign(Object.create(null), addon, hostOps(addon), { name: 'native' as const }) as Backend;
}
