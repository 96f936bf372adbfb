/**
 * The async inference API: a worker thread runs the forward, the event loop keeps ticking, results are
 * bit-identical to the synchronous forward, errors arrive as VitkitErrors, and a program exits by itself.
 * Reference: ../shared/refs/timm_vit_tiny (logits vs timm_vit_tiny_ref.safetensors within 1e-4).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { InferenceSession, classify, embedImages, closeSessions, setModelResolver } from '../../src/node/inference.js';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { predictImages } from '../../src/cli/predict.js';
import { Tensor } from '../../src/tensor.js';
import { VitkitError } from '../../src/errors.js';
import { REFS, ROOT, FIXTURES, maxAbsDiff, tmp, needRefs } from '../helpers.js';

const TIMM_DIR = path.join(REFS, 'timm_vit_tiny');
const TIMM_REF = path.join(REFS, 'timm_vit_tiny_ref.safetensors');
const ASTRONAUT = path.join(REFS, 'images', 'astronaut.png');
const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

after(() => closeSessions());

test('forward in a worker: timm logits within 1e-4, bit-identical to the synchronous forward, caller tensor intact', async (t) => {
  if (!needRefs(t, TIMM_REF)) return;
  const ref = readSafetensors(TIMM_REF);
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const s = await InferenceSession.open(TIMM_DIR);
  try {
    assert.equal(s.info.numClasses, 1000);
    assert.equal(s.info.labels[0], 'tench');
    const logits = await s.forward(x);
    assert.deepEqual(logits.shape, [2, 1000]);
    assert.ok(maxAbsDiff(logits.data, ref.f32('logits').data) <= 1e-4);
    assert.equal(x.data.length, 2 * 3 * 224 * 224, 'the caller\'s pixels were copied, not detached');
    const sync = loadModel(TIMM_DIR).model.forward(x);
    assert.deepEqual(logits.data, sync.data, 'same kernels, same numbers');
    const pre = await s.embed(x);
    assert.deepEqual(pre.shape, [2, 192]);
    assert.ok(maxAbsDiff(pre.data, ref.f32('pre_logits').data) <= 1e-4);
    const feats = await s.features(new Tensor([3, 224, 224], pv.data.subarray(0, 3 * 224 * 224)));
    assert.deepEqual(feats.shape, [1, 197, 192]);
    assert.ok(maxAbsDiff(feats.data, ref.f32('features').data.subarray(0, 197 * 192)) <= 1e-4);
  } finally {
    await s.close();
  }
});

test('the event loop keeps ticking while a forward runs', async (t) => {
  if (!needRefs(t, TIMM_REF)) return;
  const pv = readSafetensors(TIMM_REF).f32('pixel_values');
  const B = 2;
  const x = new Tensor(pv.shape, pv.data);
  const s = await InferenceSession.open(TIMM_DIR);
  try {
    await s.forward(x); // warm-up
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    let maxGap = 0, last = t0;
    const gapTimer = setInterval(() => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; }, 1);
    await s.forward(x);
    const ms = performance.now() - t0;
    clearInterval(timer);
    clearInterval(gapTimer);
    console.log(`# async forward of ${B} images: ${ms.toFixed(0)} ms, ${ticks} interval ticks, longest gap ${maxGap.toFixed(1)} ms`);
    assert.ok(ticks >= 5, `only ${ticks} ticks in ${ms} ms`);
    // the same forward on the main thread: no tick can run until it returns
    const model = loadModel(TIMM_DIR).model;
    let syncTicks = 0;
    const t2 = setInterval(() => syncTicks++, 1);
    const s0 = performance.now();
    model.forward(x);
    const syncMs = performance.now() - s0;
    const during = syncTicks;
    clearInterval(t2);
    console.log(`# sync forward: ${syncMs.toFixed(0)} ms, ${during} ticks`);
    assert.equal(during, 0);
  } finally {
    await s.close();
  }
});

test('classify(path, { model, topK }) equals the synchronous predict path', async (t) => {
  if (!needRefs(t, TIMM_REF) || !needRefs(t, ASTRONAUT)) return;
  const res = await classify(ASTRONAUT, { model: TIMM_DIR, topK: 3 });
  assert.equal(res.length, 3);
  const [sync] = await predictImages(TIMM_DIR, [ASTRONAUT], 3);
  assert.deepEqual(res.map((r) => [r.label, r.index, r.score]), sync!.top.map((r) => [r.label, r.index, r.score]));
  assert.ok(res[0]!.score >= res[1]!.score && res[1]!.score >= res[2]!.score);
  // a Buffer and a batch through the same cached session
  const bytes = readFileSync(ASTRONAUT);
  const [fromBytes, fromPath] = await classify([bytes, ASTRONAUT], { model: TIMM_DIR, topK: 3 }) as Array<Array<{ score: number }>>;
  assert.deepEqual(fromBytes, res);
  assert.deepEqual(fromPath, res);
  assert.equal(bytes.length, readFileSync(ASTRONAUT).length, 'the caller\'s Buffer was copied, not detached');
  assert.ok(bytes.equals(readFileSync(ASTRONAUT)));
});

test('classify on a Hugging Face checkpoint (fixture) with its id2label names, and embedImages', async () => {
  const ref = readSafetensors(path.join(HF_DIR, 'ref.safetensors'));
  const pv = ref.f32('pixel_values');
  const out = await classify(new Tensor(pv.shape, pv.data), { model: HF_DIR, topK: 5 }) as Array<Array<{ label: string; index: number; score: number }>>;
  assert.equal(out.length, 2);
  const cfg = JSON.parse(readFileSync(path.join(HF_DIR, 'config.json'), 'utf8')) as { id2label: Record<string, string> };
  const logits = ref.f32('logits').data;
  for (let b = 0; b < 2; b++) {
    const row = Array.from(logits.subarray(b * 5, b * 5 + 5));
    const best = row.indexOf(Math.max(...row));
    assert.equal(out[b]![0]!.index, best);
    assert.equal(out[b]![0]!.label, cfg.id2label[String(best)]);
    assert.ok(Math.abs(out[b]!.reduce((s, r) => s + r.score, 0) - 1) < 1e-5);
  }
  const emb = await embedImages(new Tensor(pv.shape, pv.data), { model: HF_DIR });
  assert.deepEqual(emb.shape, [2, 96]);
});

test('errors become VitkitErrors: bad model, bad image, wrong pixel shape, closed session', async (t) => {
  const dir = tmp();
  await assert.rejects(classify('x.png', { model: path.join(dir, 'none') }), (e: unknown) => e instanceof VitkitError && /not found/.test(e.message));
  writeFileSync(path.join(dir, 'config.json'), '{"architecture": "vit_tiny_patch16_224"}');
  await assert.rejects(InferenceSession.open(dir), (e: unknown) => e instanceof VitkitError && /No model\.safetensors/.test(e.message));
  const s = await InferenceSession.open(HF_DIR);
  try {
    await assert.rejects(s.forward(path.join(dir, 'missing.png')), (e: unknown) => e instanceof VitkitError && /missing\.png/.test(e.message));
    await assert.rejects(s.forward(new Tensor([1, 3, 32, 32])), (e: unknown) => e instanceof VitkitError && /Expected pixel_values of shape \(B, 3, 64, 64\).*\(1, 3, 32, 32\)/.test(e.message));
    const pooled = Buffer.from('not an image'); // a small Buffer lives in Node's shared pool
    await assert.rejects(s.forward(pooled), (e: unknown) => e instanceof VitkitError);
    assert.equal(pooled.toString(), 'not an image');
    await assert.rejects(s.forward(42 as unknown as string), /Expected a file path, a Buffer/);
    const ok = await s.forward(new Tensor([3, 64, 64])); // still serving after errors
    assert.deepEqual(ok.shape, [1, 5]);
  } finally {
    await s.close();
  }
  await assert.rejects(s.forward(new Tensor([3, 64, 64])), /closed/);
  await assert.rejects(classify('x.png', { model: HF_DIR, topK: 0 }), /topK/);
  void t;
});

test('the model resolver seam: a spec that is not a path goes through setModelResolver', async () => {
  const seen: string[] = [];
  setModelResolver((spec) => { seen.push(spec); return HF_DIR; });
  try {
    const r = await classify(new Tensor([3, 64, 64]), { model: 'hub:some/model', topK: 1 });
    assert.equal(r.length, 1);
    assert.deepEqual(seen, ['hub:some/model']);
  } finally {
    setModelResolver(null);
  }
});

test('a program that never closes its session exits by itself', () => {
  const dir = tmp();
  const script = path.join(dir, 'main.mjs');
  const api = pathToFileURL(path.join(ROOT, 'dist', 'src', 'node', 'inference.js')).href;
  const tensor = pathToFileURL(path.join(ROOT, 'dist', 'src', 'tensor.js')).href;
  writeFileSync(script, `import { classify } from ${JSON.stringify(api)};\nimport { Tensor } from ${JSON.stringify(tensor)};\n` +
    `const r = await classify(new Tensor([3, 64, 64]), { model: ${JSON.stringify(HF_DIR)}, topK: 2 });\nconsole.log(JSON.stringify(r));\n`);
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, VITKIT_THREADS: '2' } });
  assert.equal(r.signal, null, 'killed by the timeout: the worker kept the process alive');
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as unknown[]).length, 2);
});
