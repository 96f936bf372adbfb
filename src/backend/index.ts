/**
 * The one backend switch, Node side: 'native' (default) or 'reference' (plain TypeScript, for tests).
 * Importing this module registers the native backend with the core's registry (select.ts); the
 * addon itself loads on the first getBackend() that returns it, not on import.
 */
import { nativeBackend } from './native.js';
import { registerBackend } from './select.js';

export { getBackend, setThreads, registerBackend, hasBackend, type Backend, type BackendName, type BackendFactory } from './select.js';

registerBackend('native', nativeBackend);
