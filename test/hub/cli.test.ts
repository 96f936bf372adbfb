/**
 * End to end: `vitkit predict --model org/name` against the local fake Hub serving
 * ../shared/refs/timm_vit_tiny (config.json + model.safetensors), compared with the same checkpoint
 * loaded from its directory. The CLI runs in a child process (async, so this process keeps serving).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { FakeHub } from './fake_hub.js';
import { BIN, REFS, hasRefs, needRefs, tmp, withoutDeviceLine } from '../helpers.js';

const TINY = path.join(REFS, 'timm_vit_tiny');
const IMAGE = path.join(REFS, 'images', 'chelsea.png');

let hub: FakeHub;
let commit = '';

function vitkitAsync(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_') && k !== 'HUGGING_FACE_HUB_TOKEN')) as Record<string, string>;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...clean, VITKIT_THREADS: '2', ...env }, encoding: 'utf8', maxBuffer: 1 << 24 }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

before(async () => {
  hub = await new FakeHub().start();
  if (hasRefs) {
    commit = hub.commit('timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', {
      'config.json': readFileSync(path.join(TINY, 'config.json')),
      'model.safetensors': readFileSync(path.join(TINY, 'model.safetensors')),
    });
  }
});
after(async () => {
  await hub.stop();
});

test('vitkit predict --model org/name downloads once into the HF cache and predicts like the local directory', async (t) => {
  if (!needRefs(t, TINY, IMAGE)) return;
  const home = tmp();
  const env = { HF_HOME: home, HF_ENDPOINT: hub.endpoint };
  const local = await vitkitAsync(env, 'predict', '--model', TINY, '--json', '-k', '3', IMAGE);
  assert.equal(local.code, 0, local.err);
  assert.equal(hub.requests().length, 0);
  const remote = await vitkitAsync(env, 'predict', '--model', 'timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', '--json', '-k', '3', IMAGE);
  assert.equal(remote.code, 0, remote.err);
  const [a, b] = [JSON.parse(local.out), JSON.parse(remote.out)] as { top: { index: number; score: number }[] }[][];
  assert.equal(b![0]!.top[0]!.index, a![0]!.top[0]!.index, 'same top-1 class');
  assert.deepEqual(b![0]!.top.map((t) => t.index), a![0]!.top.map((t) => t.index));
  assert.ok(Math.abs(b![0]!.top[0]!.score - a![0]!.top[0]!.score) < 1e-6);
  // HF_HOME/hub is the cache; the weights came through the CDN once
  const snap = path.join(home, 'hub', 'models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k', 'snapshots', commit);
  assert.ok(existsSync(path.join(snap, 'model.safetensors')));
  assert.equal(hub.requests('cdn').length, 1);
  assert.equal(withoutDeviceLine(remote.err), '', 'no progress bar when stderr is not a TTY (only the device line)');

  // again, hf-hub: spelling: one metadata request, no download
  hub.clearLog();
  const again = await vitkitAsync(env, 'predict', '--model', 'hf-hub:timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', '--json', '-k', '3', IMAGE);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(JSON.parse(again.out), b);
  assert.deepEqual(hub.requests().map((r) => r.method), ['HEAD']);

  // offline: no request at all
  hub.clearLog();
  const off = await vitkitAsync({ ...env, HF_HUB_OFFLINE: '1' }, 'predict', '--model', 'timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', '--json', '-k', '3', IMAGE);
  assert.equal(off.code, 0, off.err);
  assert.deepEqual(JSON.parse(off.out), b);
  assert.equal(hub.requests().length, 0);

  // info's <model> argument resolves the same way
  const info1 = await vitkitAsync({ ...env, HF_HUB_OFFLINE: '1' }, 'info', 'timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', '--json');
  assert.equal(info1.code, 0, info1.err);
  assert.equal((JSON.parse(info1.out) as { name: string }).name, 'vit_tiny_patch16_224');

  // vitkit download prints the snapshot directory
  const dl = await vitkitAsync(env, 'download', 'timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', '--json');
  assert.equal(dl.code, 0, dl.err);
  const info = JSON.parse(dl.out) as { dir: string; commit: string; layout: string; files: string[] };
  assert.equal(info.dir, snap);
  assert.equal(info.layout, 'timm');
  assert.deepEqual(info.files, ['config.json', 'model.safetensors']);
});

test('vitkit download into HF_HUB_CACHE, and user errors as one line with exit 1', async () => {
  hub.commit('acme/small', { 'config.json': '{"architecture": "vit_tiny_patch16_224"}', 'model.safetensors': Buffer.alloc(64) });
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp(), HF_ENDPOINT: hub.endpoint };
  const dl = await vitkitAsync(env, 'download', 'acme/small');
  assert.equal(dl.code, 0, dl.err);
  assert.match(dl.out.trim(), new RegExp(`^${cache}/models--acme--small/snapshots/[0-9a-f]{40}$`));
  assert.deepEqual(readdirSync(path.join(cache, 'models--acme--small')).sort(), ['blobs', 'refs', 'snapshots']);
  for (const [args, re] of [
    [['predict', '--model', 'acme/missing', 'x.png'], /^error: Model acme\/missing is no local directory, so it was looked up on the Hub: The Hub needs a token for config\.json of acme\/missing@main .*\(401\).*HF_HUB_OFFLINE=1/],
    [['info', 'hf-hub:acme/gone'], /^error: The Hub needs a token for config\.json of acme\/gone@main/],
    [['download', 'acme/small@nope'], /^error: Revision "nope" not found in acme\/small/],
    [['download', 'not a repo'], /^error: Expected <org>\/<name>\[@revision\] for <repo> but received "not a repo"/],
  ] as const) {
    const r = await vitkitAsync(env, ...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
  const off = await vitkitAsync({ ...env, HF_HUB_OFFLINE: '1' }, 'predict', '--model', 'acme/other', 'x.png');
  assert.equal(off.code, 1);
  assert.match(off.err, /^error: acme\/other@main is not in the Hugging Face cache .* HF_HUB_OFFLINE=1 forbids downloading it\n$/);
});
