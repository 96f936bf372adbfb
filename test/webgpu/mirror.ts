/**
 * Runs host-array code on a DeviceBackend: `mirror(dev).be` is a `Backend` whose ops upload each
 * host allocation (ArrayBuffer) once, as one device allocation, and pass every Float32Array /
 * Int32Array argument as a view of it at the same offset, so arrays that are views of one host
 * buffer (outputs with their guard regions, disjoint views of one gradient buffer, in-place
 * arguments) are views of one device allocation too. Ops are enqueued and results stay on the
 * device; `finish()` reads every allocation back into its host buffer. Each device allocation has
 * a guard region after it, filled with a sentinel; `finish()` reports any that an op overwrote.
 *
 * Ops whose Backend contract returns a host number (crossEntropyForward, adamwStep's host twin,
 * sumSquares) have device-shaped versions on a DeviceBackend instead; calling them here throws.
 */
import type { Backend } from '../../src/backend/backend.js';
import type { DeviceBackend, DeviceTensor } from '../../src/backend/device.js';

const GUARD = 67;
const SENTINEL = 1234.5;

/** Backend ops that a DeviceBackend does not have with the same contract */
export const NOT_ON_DEVICE: ReadonlySet<string> = new Set(['crossEntropyForward', 'adamwStep', 'sumSquares']);

export interface Mirror {
  be: Backend;
  /** the device tensor of a host array (its allocation uploaded on first use) */
  tensor(a: Float32Array | Int32Array): DeviceTensor;
  /** reads every allocation back into its host buffer; returns the guard regions that were written */
  finish(): Promise<string[]>;
}

interface Entry { full: DeviceTensor; elems: number; int: boolean }

export function mirror(dev: DeviceBackend): Mirror {
  const map = new Map<ArrayBufferLike, Entry>();
  const tensor = (a: Float32Array | Int32Array): DeviceTensor => {
    const int = a instanceof Int32Array;
    let e = map.get(a.buffer);
    if (!e) {
      const elems = a.buffer.byteLength / 4;
      const full = dev.alloc([elems + GUARD], int ? 'i32' : 'f32');
      const host = int ? new Int32Array(elems + GUARD).fill(-777) : new Float32Array(elems + GUARD).fill(SENTINEL);
      host.set((int ? new Int32Array(a.buffer) : new Float32Array(a.buffer)) as never);
      dev.write(full, host);
      e = { full, elems, int };
      map.set(a.buffer, e);
    }
    if (e.int !== int) throw new Error('mirror: one host buffer seen as both Float32Array and Int32Array');
    return dev.view(e.full, a.byteOffset / 4, [a.length]);
  };
  const conv = (v: unknown): unknown => (v instanceof Float32Array || v instanceof Int32Array ? tensor(v) : v);
  const be = new Proxy({} as Backend, {
    get(_t, prop) {
      if (prop === 'name') return dev.name;
      if (prop === 'setThreads' || prop === 'getThreads') return () => 1;
      if (typeof prop === 'string' && NOT_ON_DEVICE.has(prop)) {
        return () => { throw new Error(`mirror: ${prop} has no Backend-shaped twin on ${dev.name}`); };
      }
      const fn = (dev as unknown as Record<string | symbol, unknown>)[prop];
      if (typeof fn !== 'function') return undefined;
      return (...args: unknown[]) => (fn as (...a: unknown[]) => unknown).apply(dev, args.map(conv));
    },
  });
  return {
    be,
    tensor,
    async finish() {
      const bad: string[] = [];
      for (const [buf, { full, elems, int }] of map) {
        const got = int ? await dev.readInt(full) : await dev.read(full);
        for (let i = elems; i < got.length; i++) {
          const ok = int ? got[i] === -777 : got[i] === SENTINEL;
          if (!ok) { bad.push(`guard of a ${elems}-element allocation written at +${i - elems}: ${got[i]}`); break; }
        }
        (int ? new Int32Array(buf) : new Float32Array(buf)).set(got.subarray(0, elems) as never);
        dev.release(full);
      }
      map.clear();
      return bad;
    },
  };
}
