/**
 * Where the model code gets its buffers, whatever the backend: `Mem<T>` hands out buffers of the
 * backend's type T (Float32Array on the host, DeviceTensor on a device) and views into them, and
 * `Params<T>` names the parameter (or gradient) views. Layers and the model are written against
 * these and `Ops<T>` (backend/ops.ts) only.
 */
import { type Arena, allocFrom } from './arena.js';

export interface Mem<T> {
  /** a buffer of n floats, zero-filled unless `zero` is false (for outputs an op fully overwrites) */
  take(n: number, zero?: boolean): T;
  /** elements [off, off + n) of t, without copying */
  sub(t: T, off: number, n: number): T;
}

/** Named parameter (or gradient) buffers, in checkpoint names. */
export interface Params<T> {
  get(name: string): T;
  has(name: string): boolean;
}

/** Host buffers: from the arena when given (reused step after step), else fresh arrays. */
export function hostMem(arena?: Arena): Mem<Float32Array> {
  return {
    take: (n, zero = true) => allocFrom(arena, n, zero),
    sub: (t, off, n) => t.subarray(off, off + n),
  };
}
