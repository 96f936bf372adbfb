/**
 * `vitkit info --devices`: cpu with the native ISA and thread count, and each WebGPU adapter with
 * its real description, key limits and shader-f16 — on SwiftShader where the machine has no GPU.
 * Without the `webgpu` package or without an adapter it says so in one line per cause, lists cpu,
 * and exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { vitkit, assertUserError, IN_CI, BIN } from '../helpers.js';
import { describeDevices, DEVICE_LIMITS, type WebGpuDevice } from '../../src/cli/info.js';
import { VitkitError } from '../../src/errors.js';
import { WEBGPU_MISSING } from '../../src/backend/webgpu/index.js';
import { SWIFTSHADER_ICD, defaultEnv } from '../webgpu/setup.js';

defaultEnv(); // VK_ICD_FILENAMES -> SwiftShader where chromium ships it (the child inherits it)
const icd = process.env['VK_ICD_FILENAMES'];
const skip = icd && existsSync(icd) ? false : IN_CI ? false : `no Vulkan ICD (${SWIFTSHADER_ICD} not present)`;

test('info --devices --json: cpu with its ISA and threads, the SwiftShader adapter with its description, limits and f16', { skip }, () => {
  const r = vitkit('info', '--devices', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { devices: Record<string, unknown>[]; notes: string[] };
  assert.deepEqual(Object.keys(j).sort(), ['devices', 'notes']);
  const cpu = j.devices[0]!;
  assert.equal(cpu['device'], 'cpu');
  assert.match(String(cpu['isa']), /^(avx512|avx2|portable)/);
  assert.equal(cpu['threads'], 2); // the helper runs the CLI with VITKIT_THREADS=2
  const gpus = j.devices.filter((d) => d['device'] === 'webgpu') as unknown as WebGpuDevice[];
  const sw = gpus.find((g) => /SwiftShader/i.test(g.description));
  assert.ok(sw, `no SwiftShader adapter in ${r.out}`);
  assert.equal(sw.vendor, 'google');
  assert.equal(sw.architecture, 'swiftshader');
  assert.equal(typeof sw.f16, 'boolean');
  assert.equal(sw.fallback, true);
  assert.deepEqual(Object.keys(sw.limits), [...DEVICE_LIMITS]);
  for (const k of DEVICE_LIMITS) assert.ok(Number.isInteger(sw.limits[k]) && sw.limits[k]! > 0, `${k} = ${sw.limits[k]}`);
  assert.ok(sw.limits.maxStorageBufferBindingSize! <= sw.limits.maxBufferSize!);
  assert.deepEqual(j.notes, []);
});

test('info --devices prints one line for cpu and the adapter with its limits', { skip }, () => {
  const r = vitkit('info', '--devices');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^ {2}cpu {6}native (avx512|avx2|portable)\S* kernels, 2 threads$/m);
  assert.match(r.out, /^ {2}webgpu {3}.*SwiftShader.*backend vulkan/m);
  assert.match(r.out, /maxBufferSize \d+, maxStorageBufferBindingSize \d+, maxComputeWorkgroupStorageSize \d+, maxComputeInvocationsPerWorkgroup \d+/);
  assert.match(r.out, /shader-f16 (yes|no)/);
});

test('info --devices without the webgpu package: one line saying so, cpu still listed', async () => {
  const r = await describeDevices(async () => { throw new VitkitError(WEBGPU_MISSING); });
  assert.deepEqual(r.devices.map((d) => d.device), ['cpu']);
  assert.equal(r.notes.length, 1);
  assert.match(r.notes[0]!, /^webgpu: .*optional package `webgpu` \(npm install webgpu\)$/);
});

test('info --devices without any adapter: one line saying so, cpu still listed', async () => {
  const r = await describeDevices(async () => []);
  assert.deepEqual(r.devices.map((d) => d.device), ['cpu']);
  assert.deepEqual(r.notes.length, 1);
  assert.match(r.notes[0]!, /^webgpu: no WebGPU adapter was found/);
});

test('info --devices where Vulkan has no driver: exit 0, cpu listed, one line saying why', () => {
  // an ICD file that does not exist: the Vulkan loader finds no driver
  const r = spawnSync(process.execPath, [BIN, 'info', '--devices', '--json'], {
    encoding: 'utf8', env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/vitkit_no_icd.json', VITKIT_THREADS: '2' },
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { devices: { device: string }[]; notes: string[] };
  assert.deepEqual(j.devices.map((d) => d.device), ['cpu']);
  assert.equal(j.notes.length, 1);
  assert.match(j.notes[0]!, /^webgpu: (no WebGPU adapter was found|.*optional package `webgpu`)/);
});

test('info needs a model or --devices, not both (exit 2)', () => {
  const none = vitkit('info');
  assert.equal(none.code, 2);
  assertUserError(none, /missing argument 'model'.*or pass --devices/);
  const both = vitkit('info', '--devices', 'vit_tiny_patch16_224');
  assert.equal(both.code, 2);
  assertUserError(both, /either a model or --devices, not both/);
});
