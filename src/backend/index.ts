/** The one backend switch: 'native' (default) or 'reference' (plain TypeScript, for tests). */
import type { Backend } from './backend.js';
import { nativeBackend } from './native.js';
import { reference } from './reference.js';

export type { Backend } from './backend.js';
export type BackendName = 'native' | 'reference';

let current: Backend | undefined;

export function getBackend(name?: BackendName): Backend {
  if (name === 'reference') return reference;
  if (name === 'native') return nativeBackend();
  current ??= nativeBackend();
  return current;
}

export function setThreads(n: number): void {
  getBackend().setThreads(n);
}
