/**
 * SIGTERM (docker stop, systemd, CI runners) and SIGINT during `embed` and `index`: exit 143 / 130 with
 * one line, no output file and no temporary file (the default action killed the process with no word
 * and could leave `<out>.tmp-<pid>-<hex>` behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { BIN, FIXTURES, REFS, needRefs, tmp, withoutDeviceLine } from '../helpers.js';

async function folder(n: number): Promise<string> {
  const d = path.join(tmp(), 'imgs');
  mkdirSync(d);
  const first = path.join(d, '0.png');
  await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 120, g: 60, b: 10 } } }).png().toFile(first);
  for (let i = 1; i < n; i++) copyFileSync(first, path.join(d, `${i}.png`));
  return d;
}

async function stopped(args: string[], sig: NodeJS.Signals, afterMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VITKIT_THREADS: '1' } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  // the device line comes when the model is about to compute (the signal handlers are in place by then):
  // wait for it, not a fixed time from spawn, which a loaded machine can spend loading modules
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`no device line on stderr within 60 s: ${err}`)), 60_000);
    const look = () => { if (/^device: /m.test(err)) { clearTimeout(t); child.stderr.off('data', look); ok(); } };
    child.stderr.on('data', look);
  });
  await new Promise((r) => setTimeout(r, afterMs));
  child.kill(sig);
  return new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal, err })));
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`embed stopped by ${sig}: exit ${sig === 'SIGTERM' ? 143 : 130}, one line, no output and no temporary file`, async () => {
    const imgs = await folder(4000); // ~20 s of embedding at batch 1: the signal arrives mid-way
    const outDir = tmp();
    const out = path.join(outDir, 'emb.safetensors');
    const r = await stopped(['embed', '-m', path.join(FIXTURES, 'hf_vit_small'), '-o', out, '-b', '1', imgs], sig, 1500);
    assert.equal(r.signal, null, 'the process handled the signal');
    assert.equal(r.code, sig === 'SIGTERM' ? 143 : 130, r.err);
    assert.match(r.err, /^device: cpu \(/, 'the device line first');
    assert.equal(withoutDeviceLine(r.err), `error: embed stopped by ${sig}; nothing was written to ${out}\n`);
    assert.deepEqual(readdirSync(outDir), []);
  });
}

test('index stopped by SIGTERM: exit 143, no index and no temporary file', async (t) => {
  const clip = path.join(REFS, 'openclip_clip');
  if (!needRefs(t, clip)) return;
  const imgs = await folder(2000);
  const outDir = tmp();
  const out = path.join(outDir, 'index.safetensors');
  const r = await stopped(['index', '-m', clip, '-o', out, '-b', '1', imgs], 'SIGTERM', 2500);
  assert.equal(r.code, 143, r.err);
  assert.match(withoutDeviceLine(r.err), /^error: index stopped by SIGTERM; nothing was written to /);
  assert.deepEqual(readdirSync(outDir), []);
});
