/**
 * The core in a real browser: headless Chromium loads dist/src/core.js as ES modules over HTTP
 * (no bundler: every import must resolve to a file served from dist/) and runs a tiny ViT forward
 * with the default backend, which there is the reference one; the logits match the native
 * backend's in Node. It also fetches hf_vit_small's files and loads them with loadModelFromBytes:
 * transformers' logits. Skipped where no Chromium is installed. (The page's markers are split in its
 * source, since --dump-dom prints the script too.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ROOT, maxAbsDiff } from '../helpers.js';
import * as vitkit from '../../src/index.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const CFG = { img_size: 16, patch_size: 4, in_chans: 3, num_classes: 5, embed_dim: 16, depth: 2, num_heads: 2, mlp_ratio: 2 };
const input = (): Float32Array => Float32Array.from({ length: 2 * 3 * 256 }, (_, i) => Math.sin(i * 0.37)); // (2, 3, 16, 16)

const PAGE = `<!doctype html><html><body><pre id="out">pending</pre><script type="module">
const out = document.getElementById('out');
try {
  const core = await import('/dist/src/core.js');
  const m = core.createModel(core.resolveConfig(${JSON.stringify(CFG)}), { seed: 3 });
  const x = new core.Tensor([2, 3, 16, 16], Float32Array.from({ length: 2 * 3 * 256 }, (_, i) => Math.sin(i * 0.37)));
  const y = m.forward(x);
  // a checkpoint from bytes: hf_vit_small fetched over HTTP, loaded by the core
  const get = async (f) => { const r = await fetch('/test/fixtures/hf_vit_small/' + f); if (!r.ok) throw new Error(f + ': ' + r.status); return r; };
  const lm = core.loadModelFromBytes({
    config: await (await get('config.json')).json(),
    weights: new Uint8Array(await (await get('model.safetensors')).arrayBuffer()),
    preprocessorConfig: await (await get('preprocessor_config.json')).text(),
    name: 'hf_vit_small',
  });
  const ref = core.parseSafetensors(new Uint8Array(await (await get('ref.safetensors')).arrayBuffer()));
  const pv = ref.f32('pixel_values');
  const hf = { format: lm.format, labels: lm.labels, logits: Array.from(lm.model.forward(new core.Tensor(pv.shape, pv.data)).data) };
  out.textContent = 'RES' + 'ULT:' + JSON.stringify({ backend: m.backend.name, shape: y.shape, data: Array.from(y.data), hf }) + 'END';
} catch (e) { out.textContent = 'FAI' + 'LED:' + String(e && e.message) + 'END'; }
</script></body></html>`;

function serve(): Promise<http.Server> {
  const dist = path.join(ROOT, 'dist');
  const hfDir = path.join(ROOT, 'test', 'fixtures', 'hf_vit_small');
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(PAGE);
      return;
    }
    const file = path.join(ROOT, decodeURIComponent(url));
    if (!(file.startsWith(dist + path.sep) || file.startsWith(hfDir + path.sep)) || !existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function dumpDom(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=20000', '--dump-dom', url],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
    const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('error', reject);
    p.on('close', () => { clearTimeout(timer); resolve(out); });
  });
}

test('core.js runs a ViT forward in headless Chromium, matching the native backend, and loads hf_vit_small from fetched bytes', { skip: CHROMIUM ? false : 'no chromium installed' }, async () => {
  const server = await serve();
  let dom: string;
  try {
    dom = await dumpDom(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  } finally {
    server.close();
  }
  const failed = /FAILED:([\s\S]*?)END/.exec(dom);
  assert.equal(failed, null, `the page threw: ${failed?.[1]}`);
  const m = /RESULT:([\s\S]*?)END/.exec(dom);
  assert.ok(m, `no result in the page: ${dom.slice(0, 300)}`);
  const got = JSON.parse(m[1]!) as { backend: string; shape: number[]; data: number[]; hf: { format: string; labels: string[]; logits: number[] } };
  assert.equal(got.backend, 'reference');
  assert.deepEqual(got.shape, [2, 5]);

  const model = vitkit.createModel(vitkit.resolveConfig(CFG), { seed: 3 });
  assert.equal(model.backend.name, 'native');
  const y = model.forward(new vitkit.Tensor([2, 3, 16, 16], input()));
  let worst = 0, scale = 0;
  for (let i = 0; i < y.data.length; i++) {
    worst = Math.max(worst, Math.abs(y.data[i]! - got.data[i]!));
    scale = Math.max(scale, Math.abs(y.data[i]!));
  }
  assert.ok(scale > 1e-3, 'logits are all ~0: the comparison would prove nothing');
  assert.ok(worst <= 1e-5 * Math.max(1, scale), `browser (reference) vs native logits differ by ${worst} (scale ${scale})`);

  // hf_vit_small loaded from bytes in the page = transformers' logits (1e-4, ../shared/refs/README.md)
  assert.equal(got.hf.format, 'hf');
  assert.deepEqual(got.hf.labels, ['astronaut', 'cat', 'coffee', 'rocket', 'camera']);
  const refLogits = vitkit.readSafetensors(path.join(ROOT, 'test', 'fixtures', 'hf_vit_small', 'ref.safetensors')).f32('logits').data;
  const err = maxAbsDiff(got.hf.logits, refLogits);
  assert.ok(err <= 1e-4, `browser hf_vit_small logits vs transformers: ${err}`);
});
