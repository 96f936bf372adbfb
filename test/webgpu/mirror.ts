/**
 * Runs host-array code on a DeviceBackend: `mirror(dev).be` is a `Backend` whose ops upload each
 * Float32Array / Int32Array argument once (the same array object is the same device tensor for
 * the rest of the run), enqueue the device op, and leave results on the device; `finish()` reads
 * every tensor back into its host array. Each tensor is allocated with a guard region after it,
 * filled with a sentinel, and `finish()` reports any element of a guard that an op overwrote.
 */
import type { Backend } from '../../src/backend/backend.js';
import type { DeviceBackend, DeviceTensor } from '../../src/backend/device.js';

const GUARD = 67;
const SENTINEL = 1234.5;

export interface Mirror {
  be: Backend;
  /** the device tensor of a host array (uploaded on first use) */
  tensor(a: Float32Array | Int32Array): DeviceTensor;
  /** reads every tensor back into its host array; returns the guard regions that were written */
  finish(): Promise<string[]>;
}

export function mirror(dev: DeviceBackend): Mirror {
  const map = new Map<Float32Array | Int32Array, { full: DeviceTensor; view: DeviceTensor }>();
  const tensor = (a: Float32Array | Int32Array): DeviceTensor => {
    let e = map.get(a);
    if (!e) {
      const int = a instanceof Int32Array;
      const full = dev.alloc([a.length + GUARD], int ? 'i32' : 'f32');
      const host = int ? new Int32Array(a.length + GUARD).fill(-777) : new Float32Array(a.length + GUARD).fill(SENTINEL);
      host.set(a as never);
      dev.write(full, host);
      e = { full, view: dev.view(full, 0, [a.length]) };
      map.set(a, e);
    }
    return e.view;
  };
  const conv = (v: unknown): unknown => (v instanceof Float32Array || v instanceof Int32Array ? tensor(v) : v);
  const be = new Proxy({} as Backend, {
    get(_t, prop) {
      if (prop === 'name') return dev.name;
      if (prop === 'setThreads' || prop === 'getThreads') return () => 1;
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
      for (const [a, { full }] of map) {
        const got = a instanceof Int32Array ? await dev.readInt(full) : await dev.read(full);
        for (let i = a.length; i < got.length; i++) {
          const ok = a instanceof Int32Array ? got[i] === -777 : got[i] === SENTINEL;
          if (!ok) { bad.push(`guard of a ${a.length}-element tensor written at +${i - a.length}: ${got[i]}`); break; }
        }
        a.set(got.subarray(0, a.length) as never);
        dev.release(full);
      }
      map.clear();
      return bad;
    },
  };
}
