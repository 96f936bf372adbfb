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
import { VitkitError } from '../../src/errors.js';

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

// the host-number ops (cross entropy, AdamW, sum of squares) are device-shaped on WebGPU: device.test.ts checks those
for (const c of cases.filter((k) => !k.ops.some((o) => NOT_ON_DEVICE.has(o)))) {
  const why = skip || (c.big && !FULL ? 'a big shape: runs with VITKIT_WEBGPU_FULL=1' : false);
  test(`webgpu = reference: ${c.name}`, { skip: why }, async (t) => { t.diagnostic(await compare(c)); });
}

test('webgpu new ops reject bad arguments with a one-line VitkitError before encoding', { skip }, () => {
  const d = dev!;
  const t = d.alloc([64]), small = d.alloc([3]);
  const one = (f: () => void, re: RegExp) => assert.throws(f, (e: Error) => e instanceof VitkitError && re.test(e.message) && !e.message.includes('\n'));
  one(() => d.copyRows(d.view(t, 0, [32]), d.view(t, 16, [32]), 1, 0, 0, 0, 0, 1, 32, false), /copyRows: out and inp overlap/);
  one(() => d.copyRows(t, t, 2, 4, 3, 4, 0, 2, 1, false), /copyRows: rows 3\.\.4 do not fit in outN 4/);
  one(() => d.copyRows(small, t, 2, 4, 0, 4, 0, 2, 1, false), /copyRows: out has 3 elements, expected at least 6/);
  one(() => d.actForward(t, t, 64, 4), /actForward: expected kind 0 .* but received 4/);
  one(() => d.gluBackward(small, t, t, 2, 16, 3), /gluBackward: dinp has 3 elements, expected at least 64 \(R\*2Hh\)/);
  one(() => d.meanRows(small, t, 1, 8, 4, 5, 8), /meanRows: rows 4\.\.8 do not fit in N 8/);
  one(() => d.crossAttentionBackward(d.view(t, 0, [4]), d.view(t, 2, [32]), t, t, t, t, 1, 1, 4, 2, 2, 0.5), /crossAttentionBackward: dq and dkv overlap/);
  one(() => d.scale(small, t, 2, 4), /scale: out has 3 elements, expected at least 4/);
  d.release(t);
  d.release(small);
});
