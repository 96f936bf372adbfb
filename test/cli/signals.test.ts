/**
 * SIGTERM (docker stop, systemd, CI runners) and SIGINT during `embed` and `index`: exit 143 / 130 with
 * one line, no output file and no temporary file (the default action killed the process with no word
 * and could leave `<out>.tmp-<pid>-<hex>` behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, REFS, needRefs, stopBySignal, tmp, withoutDeviceLine } from '../helpers.js';

async function folder(n: number): Promise<string> {
  const d = path.join(tmp(), 'imgs');
  mkdirSync(d);
  const first = path.join(d, '0.png');
  await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 120, g: 60, b: 10 } } }).png().toFile(first);
  for (let i = 1; i < n; i++) copyFileSync(first, path.join(d, `${i}.png`));
  return d;
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`embed stopped by ${sig}: exit ${sig === 'SIGTERM' ? 143 : 130}, one line, no output and no temporary file`, async () => {
    const imgs = await folder(4000); // ~20 s of embedding at batch 1: the signal arrives mid-way
    const outDir = tmp();
    const out = path.join(outDir, 'emb.safetensors');
    const r = await stopBySignal(['embed', '-m', path.join(FIXTURES, 'hf_vit_small'), '-o', out, '-b', '1', imgs], sig, 1500);
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
  const r = await stopBySignal(['index', '-m', clip, '-o', out, '-b', '1', imgs], 'SIGTERM', 2500);
  assert.equal(r.code, 143, r.err);
  assert.match(withoutDeviceLine(r.err), /^error: index stopped by SIGTERM; nothing was written to /);
  assert.deepEqual(readdirSync(outDir), []);
});
