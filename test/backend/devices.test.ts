/**
 * The device table (src/backend/devices.ts): the names, what `cpu` and `auto` open and how they
 * are described, and the cpu runner — the model on device tensors over the host kernels — giving
 * the host model's own bits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDeviceName, openDevice, cpuDevice, onDevice, announceDevice, hostDevice } from '../../src/backend/devices.js';
import { getBackend } from '../../src/backend/index.js';
import { reference } from '../../src/backend/reference.js';
import { runnerFor } from '../../src/models/runner.js';
import { randomModel, pixels } from '../device/cases.js';

const DEVICES_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/backend/devices.js');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

test('device names: cpu, webgpu, auto; anything else is refused naming the option and the choices', () => {
  for (const n of ['cpu', 'webgpu', 'auto']) assert.equal(checkDeviceName(n), n);
  assert.throws(() => checkDeviceName('gpu'), /Expected --device to be one of cpu, webgpu, auto but received "gpu"/);
  assert.throws(() => checkDeviceName('CPU', 'device'), /Expected device to be one of cpu, webgpu, auto but received "CPU"/);
});

test('cpu: the host backend as a device, one per backend, described by its kernels and threads', async () => {
  const r = await openDevice('cpu', reference);
  assert.equal(r.kind, 'cpu');
  assert.equal(r.description, 'cpu (plain-TypeScript reference kernels)');
  assert.equal(r.compute, cpuDevice(reference), 'one cpu device per backend object');
  const n = await openDevice('cpu', getBackend('native'));
  assert.match(n.description, /^cpu \(native (avx512|avx2|neon|portable)\S* kernels, \d+ threads?\)$/);
  assert.notEqual(n.compute, r.compute);
});

test('every opened or announced device reaches the listeners, with the role of the part that runs there', async () => {
  const seen: string[] = [];
  const stop = onDevice((d, role) => seen.push(`${d.kind}:${role ?? ''}`));
  await openDevice('cpu', reference);
  announceDevice(hostDevice(reference), 'the text tower');
  stop();
  await openDevice('cpu', reference);
  assert.deepEqual(seen, ['cpu:', 'cpu:the text tower']);
});

test('the cpu runner gives the host model\'s bits (forward, embeddings, hidden states, attentions) and shares its weights', async () => {
  const m = randomModel({ img_size: 24, patch_size: 8, embed_dim: 24, depth: 2, num_heads: 3, num_classes: 5, reg_tokens: 1 }, getBackend('native'), 3);
  const x = pixels(m.config, 2, 4);
  const r = await runnerFor(m, 'cpu');
  assert.equal(r.device, 'cpu');
  assert.match(r.description, /^cpu \(/);
  assert.equal(r.deviceModel.shared, true);
  assert.deepEqual((await r.forward(x)).data, m.forward(x).data);
  const f = m.forwardFeatures(x, { hiddenStates: true, attentions: true });
  const all = await r.forwardAll(x, { hiddenStates: true, attentions: true });
  assert.deepEqual(all.features.features.data, f.features.data);
  f.hiddenStates!.forEach((h, i) => assert.deepEqual(all.features.hiddenStates![i]!.data, h.data, `hidden ${i}`));
  f.attentions!.forEach((a, i) => assert.deepEqual(all.features.attentions![i]!.data, a.data, `attention ${i}`));
  assert.deepEqual((await r.embed(x)).data, m.forwardHead(f.features, { preLogits: true }).data);
  // shared weights: a change to the host model is what the runner computes with next
  m.params.get('head.bias')[0]! += 1;
  assert.deepEqual((await r.forward(x)).data, m.forward(x).data);
  r.release();
});

/** what `openDevice('auto')` says in a fresh process with `env` */
function autoIn(env: Record<string, string>): string {
  const js = `import(${JSON.stringify(DEVICES_JS)}).then(async (m) => { const d = await m.openDevice('auto'); console.log(d.kind + '|' + d.description); await m.closeDevices(); })`;
  return execFileSync(process.execPath, ['-e', js], { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

test('auto without a WebGPU adapter is cpu, and says why', () => {
  const out = autoIn({ VK_ICD_FILENAMES: '/nonexistent/icd.json' });
  assert.match(out, /^cpu\|cpu \(.* kernels.*\); auto: (no WebGPU adapter was found|webgpu needs the optional package `webgpu`.*)$/);
});

test('auto passes a software adapter over (it is slower than the cpu kernels) unless VITKIT_WEBGPU_ALLOW_FALLBACK=1', { skip: existsSync(SWIFTSHADER_ICD) ? false : `no SwiftShader (${SWIFTSHADER_ICD}: apt-get install chromium libvulkan1)` }, () => {
  assert.match(autoIn({ VK_ICD_FILENAMES: SWIFTSHADER_ICD }), /^cpu\|cpu \(.*\); auto: the only WebGPU adapter is a software fallback \(.*\), slower than the CPU$/);
  assert.match(autoIn({ VK_ICD_FILENAMES: SWIFTSHADER_ICD, VITKIT_WEBGPU_ALLOW_FALLBACK: '1' }), /^webgpu\|webgpu \(.*software fallback\)$/);
});
