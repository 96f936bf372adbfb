/**
 * The op case table (test/backend/cases.ts) on WebGPU: every op of Backend that a DeviceBackend
 * has with the same contract, forward and backward, against the plain-TypeScript reference with
 * the tolerances of the CPU run, through mirror.ts (a guard region after every device allocation
 * and after every output). The ops whose Backend contract returns a host number
 * (crossEntropyForward, adamwStep, sumSquares) have device-shaped twins, checked against the CPU
 * training code in device.test.ts. Shapes marked big run only with VITKIT_WEBGPU_FULL=1 (CI sets it):
 * SwiftShader is slow.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { reference } from '../../src/backend/reference.js';
import { cases, compareOutputs, guardErrors, type Case } from '../backend/cases.js';
import { getTestDevice } from './setup.js';
import { mirror, NOT_ON_DEVICE } from './mirror.js';

const { dev, reason } = await getTestDevice();
const skip = dev ? false : reason;
after(() => dev?.dispose());
const FULL = process.env['VITKIT_WEBGPU_FULL'] === '1';

async function compare(c: Case): Promise<string> {
  const want = c.want ? c.want() : c.run(reference);
  const m = mirror(dev!);
  const got = c.run(m.be);
  const deviceGuards = await m.finish();
  assert.deepEqual([...deviceGuards, ...guardErrors('reference', want), ...guardErrors('webgpu', got)], [], 'an op wrote past the end of its output');
  return compareOutputs(c, got, want, 'webgpu');
}

test('every Backend op but the host-number ones is on the WebGPU backend', { skip }, () => {
  const ops = Object.keys(reference).filter((k) => typeof (reference as unknown as Record<string, unknown>)[k] === 'function' && k !== 'setThreads' && k !== 'getThreads');
  const missing = ops.filter((k) => !NOT_ON_DEVICE.has(k) && typeof (dev as unknown as Record<string, unknown>)[k] !== 'function');
  assert.deepEqual(missing, []);
});

for (const c of cases) {
  const hostOnly = c.ops.filter((o) => NOT_ON_DEVICE.has(o));
  const why = skip || (hostOnly.length > 0 ? `${hostOnly.join(', ')}: device-shaped on WebGPU (device.test.ts)` : false)
    || (c.big && !FULL ? 'a big shape: runs with VITKIT_WEBGPU_FULL=1' : false);
  test(`webgpu = reference: ${c.name}`, { skip: why }, async (t) => { t.diagnostic(await compare(c)); });
}
