/**
 * Backend selection for the core (no Node-only import): a registry of backend factories.
 * The reference backend (plain TypeScript) is always there; the Node entry registers the native
 * one (backend/index.ts), whose addon then loads on the first getBackend() that needs it. Without
 * a registered native backend (a browser bundle of the core), getBackend() is the reference.
 */
import type { Backend } from './backend.js';
import { VitkitError } from '../errors.js';
import { reference } from './reference.js';

export type { Backend } from './backend.js';
/** an open name: 'native' and 'reference' are vitkit's, any other one a backend registered by the application */
export type BackendName = string;
/** Builds the backend on first use (the native one loads its addon here). */
export type BackendFactory = () => Backend;

const factories = new Map<BackendName, BackendFactory>();
let current: Backend | undefined;

/** Makes `name` available to getBackend(); the factory runs on the first getBackend() that needs it. */
export function registerBackend(name: BackendName, factory: BackendFactory): void {
  if (name === 'reference') throw new VitkitError("Expected a backend name other than 'reference' (built in) but received 'reference'");
  if (typeof factory !== 'function') throw new VitkitError(`Expected a function for the ${name} backend factory but received ${typeof factory}`);
  factories.set(name, factory);
  if (current?.name === name) current = undefined;
}

/** Whether getBackend(name) can return that backend here (the reference one always). */
export function hasBackend(name: BackendName): boolean {
  return name === 'reference' || factories.has(name);
}

/**
 * 'reference' is the plain-TypeScript backend; 'native' the registered native one (an error where
 * none is registered); no name: the native backend when registered, else the reference one.
 */
export function getBackend(name?: BackendName): Backend {
  if (name === 'reference') return reference;
  if (name === 'native' && !factories.has('native')) {
    throw new VitkitError("The native backend is not available here (only vitkit's Node entry registers it); use getBackend('reference')");
  }
  if (name !== undefined) {
    const f = factories.get(name);
    if (!f) throw new VitkitError(`Unknown backend ${JSON.stringify(name)}; available here: ${['reference', ...factories.keys()].join(', ')}`);
    return f();
  }
  if (current) return current;
  const f = factories.get('native');
  if (!f) return reference; // not cached: a native backend registered later becomes the default
  try {
    current = f();
  } catch (e) {
    // no addon for this platform (macOS, Windows, FreeBSD without a prebuild; npm 11 blocks the
    // install-time build): the reference backend, with one line of notice; getBackend('native') still throws
    if (!(e instanceof VitkitError)) throw e;
    globalThis.console?.error(`vitkit: ${e.message.split('\n')[0]} Using the reference (TypeScript) backend instead: the same results, many times slower.`);
    current = reference;
  }
  return current;
}

/** Sets the thread count of the default backend where it has threads (the native one); a no-op on the reference. */
export function setThreads(n: number): void {
  getBackend().threads?.setThreads(n);
}
