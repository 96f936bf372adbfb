/**
 * The core (dist/src/core.js) stays bundleable for a browser: its static import graph reaches no
 * node:* or bare Node-only module and not the native addon loader; a dynamic import() appears only
 * where it is guarded (WebGPU: navigator.gpu first, the `webgpu` package only without it). Then the
 * core runs in a child whose loader refuses every Node built-in imported from dist/src, and a tiny
 * ViT forward there matches the native backend's, and hf_vit_small loaded there from bytes
 * (loadModelFromBytes) gives transformers' logits. And the Node entry loads the addon only when a
 * native backend is asked for, not when a model is built or loaded with the reference backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, FIXTURES, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';

const DIST = path.join(ROOT, 'dist', 'src');
const CORE = path.join(DIST, 'core.js');

/** static `import ... from 'x'`, `import 'x'`, `export ... from 'x'` at the start of a line of emitted JS */
const STATIC_RE = /^[ \t]*(?:import|export)\b(?:[^'"`;]*?\bfrom)?\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_RE = /\bimport\s*\(/g;

/** dynamic import() sites allowed in the core, each with the guard that must come before it in the file */
const GUARDED_DYNAMIC: Record<string, RegExp> = {
  'backend/webgpu/index.js': /globalThis\.navigator;\s*if \(nav\?\.gpu\)\s*return nav\.gpu;/,
};

/** emitted JS without its block comments and whole-line or trailing // comments (for finding import() calls) */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[ \t;{}])\/\/.*$/gm, '$1');
}

interface Graph {
  files: Map<string, string>; // file -> the file that first imported it ('' for the root)
  bare: { spec: string; file: string }[];
  dynamic: { file: string; guarded: boolean }[];
}

function walk(root: string): Graph {
  const g: Graph = { files: new Map(), bare: [], dynamic: [] };
  const visit = (file: string, from: string): void => {
    if (g.files.has(file)) return;
    g.files.set(file, from);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(STATIC_RE)) {
      const spec = m[1]!;
      if (spec.startsWith('./') || spec.startsWith('../')) {
        const target = path.resolve(path.dirname(file), spec);
        assert.ok(existsSync(target), `${path.relative(DIST, file)} imports ${spec}, which does not exist`);
        visit(target, file);
      } else {
        g.bare.push({ spec, file });
      }
    }
    const code = stripComments(src);
    for (const m of code.matchAll(DYNAMIC_RE)) {
      const rel = path.relative(DIST, file).split(path.sep).join('/');
      const guard = GUARDED_DYNAMIC[rel];
      g.dynamic.push({ file: rel, guarded: guard !== undefined && guard.test(code.slice(0, m.index)) });
    }
  };
  visit(root, '');
  return g;
}

/** root -> ... -> file, as relative paths */
function chain(g: Graph, file: string): string {
  const out: string[] = [];
  for (let f: string | undefined = file; f; f = g.files.get(f)) out.unshift(path.relative(DIST, f));
  return out.join(' -> ');
}

test('the walker sees Node-only imports: the Node entry reaches node:fs, sharp and the addon loader', () => {
  const g = walk(path.join(DIST, 'index.js'));
  const specs = new Set(g.bare.map((b) => b.spec));
  for (const s of ['node:fs', 'sharp', 'commander']) assert.ok(specs.has(s), `expected ${s} in the Node entry's graph`);
  assert.ok(g.files.has(path.join(DIST, 'backend', 'native.js')));
  assert.ok(g.files.has(path.join(DIST, 'backend', 'addon_path.js')));
});

test('core.js reaches no node:* or bare module, no addon loader, and only the guarded dynamic import', () => {
  assert.ok(existsSync(CORE), `${CORE} missing: run tsc`);
  const g = walk(CORE);
  // the core's graph is the real one: models, layers, the registry, training, safetensors, preprocessing
  for (const f of ['models/vit.js', 'backend/select.js', 'backend/reference.js', 'backend/webgpu/index.js', 'train/trainer.js',
    'io/safetensors_bytes.js', 'io/preprocess_pixels.js', 'text/bpe.js', 'explain/rollout.js',
    'checkpoint/checkpoint_core.js', 'checkpoint/validate_core.js', 'checkpoint/layouts/index.js', 'checkpoint/layouts/timm.js']) {
    assert.ok(g.files.has(path.join(DIST, f)), `expected ${f} in the core's graph`);
  }
  const bad = g.bare.map((b) => `${b.spec} (${chain(g, b.file)})`);
  assert.deepEqual(bad, [], `core imports Node-only or bare modules:\n  ${bad.join('\n  ')}`);
  const loaders = ['backend/native.js', 'backend/addon_path.js', 'backend/index.js'].filter((f) => g.files.has(path.join(DIST, f)));
  assert.deepEqual(loaders, [], `core reaches the native addon loader: ${loaders.map((f) => chain(g, path.join(DIST, f))).join('; ')}`);
  const unguarded = g.dynamic.filter((d) => !d.guarded).map((d) => d.file);
  assert.deepEqual(unguarded, [], `unguarded dynamic import() in ${unguarded.join(', ')}`);
  // the two in webgpu/index.js, past navigator.gpu: the `webgpu` package, and the addon loader for Dawn's stderr capture
  assert.deepEqual(g.dynamic.map((d) => d.file), ['backend/webgpu/index.js', 'backend/webgpu/index.js'], 'expected exactly the two WebGPU dynamic imports');
});

test('internal.js (vitkit/internal) is browser-safe like the core: no node:* or bare module, no addon loader', () => {
  const file = path.join(DIST, 'internal.js');
  assert.ok(existsSync(file), `${file} missing: run tsc`);
  const g = walk(file);
  for (const f of ['backend/host_device.js', 'models/device.js', 'train/backward.js', 'mae/model.js', 'detect/yolos.js']) {
    assert.ok(g.files.has(path.join(DIST, f)), `expected ${f} in the internal entry's graph`);
  }
  const bad = g.bare.map((b) => `${b.spec} (${chain(g, b.file)})`);
  assert.deepEqual(bad, [], `internal.js imports Node-only or bare modules:\n  ${bad.join('\n  ')}`);
  const loaders = ['backend/native.js', 'backend/addon_path.js', 'backend/index.js'].filter((f) => g.files.has(path.join(DIST, f)));
  assert.deepEqual(loaders, [], `internal.js reaches the native addon loader: ${loaders.map((f) => chain(g, path.join(DIST, f))).join('; ')}`);
  assert.deepEqual(g.dynamic.filter((d) => !d.guarded).map((d) => d.file), []);
});

/** a loader that throws on every Node built-in (and sharp, commander, ...) imported by a module under dist/src */
const BLOCK_HOOKS = `
import { isBuiltin } from 'node:module';
const DIST = ${JSON.stringify(new URL(`file://${DIST}/`).href)};
const BARE = new Set(['sharp', 'commander', 'cli-progress', 'node-gyp-build', 'webgpu']);
export async function resolve(spec, ctx, next) {
  if (ctx.parentURL && ctx.parentURL.startsWith(DIST) && (isBuiltin(spec) || BARE.has(spec))) {
    throw new Error('blocked import of ' + spec + ' from ' + ctx.parentURL.slice(DIST.length));
  }
  return next(spec, ctx);
}
`;

const CHILD_CORE = `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(process.env.HOOKS));
const dlopen = process.dlopen; let loaded = 0;
process.dlopen = (...a) => { loaded++; return dlopen.apply(process, a); };
const core = await import(process.env.CORE);
const cfg = core.resolveConfig(JSON.parse(process.env.CFG));
const m = core.createModel(cfg, { seed: 3 });
if (m.backend.name !== 'reference') throw new Error('default backend in the core: ' + m.backend.name);
const x = new core.Tensor([2, 3, 16, 16], Float32Array.from({ length: 2 * 3 * 256 }, (_, i) => Math.sin(i * 0.37)));
const y = m.forward(x);
let blocked = 'none';
try { await import('data:text/javascript,' + encodeURIComponent("export * from " + JSON.stringify(process.env.FSMOD))); } catch (e) { blocked = e.message; }
// a checkpoint from bytes (read here, in the child's own script, which the hook does not police)
const fs = await import('node:fs');
const dir = process.env.HF_DIR;
const lm = core.loadModelFromBytes({
  config: JSON.parse(fs.readFileSync(dir + '/config.json', 'utf8')),
  weights: new Uint8Array(fs.readFileSync(dir + '/model.safetensors')),
  preprocessorConfig: fs.readFileSync(dir + '/preprocessor_config.json', 'utf8'),
  name: 'hf_vit_small',
});
const ref = core.parseSafetensors(new Uint8Array(fs.readFileSync(dir + '/ref.safetensors')));
const pv = ref.f32('pixel_values');
const hf = { backend: lm.model.backend.name, format: lm.format, labels: lm.labels, size: [lm.preprocess.height, lm.preprocess.width],
  logits: Array.from(lm.model.forward(new core.Tensor(pv.shape, pv.data)).data) };
console.log(JSON.stringify({ shape: y.shape, data: Array.from(y.data), loaded, blocked, hf }));
`;

const CFG = { img_size: 16, patch_size: 4, in_chans: 3, num_classes: 5, embed_dim: 16, depth: 2, num_heads: 2, mlp_ratio: 2 };
const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

test('the core runs with every Node built-in refused: its reference forward matches the native backend, and it loads a checkpoint from bytes', async () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD_CORE], {
    encoding: 'utf8',
    // FSMOD: a module under dist/src that imports node:fs, to show the hook does refuse
    env: { ...process.env, HOOKS: BLOCK_HOOKS, CORE: new URL(`file://${CORE}`).href, CFG: JSON.stringify(CFG), FSMOD: new URL(`file://${path.join(DIST, 'io', 'files.js')}`).href, HF_DIR },
  });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    shape: number[]; data: number[]; loaded: number; blocked: string;
    hf: { backend: string; format: string; labels: string[]; size: number[]; logits: number[] };
  };
  // hf_vit_small from bytes in the core (reference backend) = transformers' logits (1e-4, ../shared/refs/README.md)
  assert.deepEqual([out.hf.backend, out.hf.format, out.hf.labels, out.hf.size], ['reference', 'hf', ['astronaut', 'cat', 'coffee', 'rocket', 'camera'], [64, 64]]);
  const refLogits = readSafetensors(path.join(HF_DIR, 'ref.safetensors')).f32('logits').data;
  const hfErr = maxAbsDiff(out.hf.logits, refLogits);
  assert.ok(hfErr <= 1e-4, `core-loaded hf_vit_small logits vs transformers: ${hfErr}`);
  assert.match(out.blocked, /blocked import of node:/, 'the loader hook must refuse node:* from dist/src');
  assert.equal(out.loaded, 0, 'the core loaded a native addon');
  assert.deepEqual(out.shape, [2, 5]);

  const vitkit = await import('../../src/index.js');
  const m = vitkit.createModel(vitkit.resolveConfig(CFG), { seed: 3 });
  assert.equal(m.backend.name, 'native');
  const x = new vitkit.Tensor([2, 3, 16, 16], Float32Array.from({ length: 2 * 3 * 256 }, (_, i) => Math.sin(i * 0.37)));
  const y = m.forward(x);
  let worst = 0, scale = 0;
  for (let i = 0; i < y.data.length; i++) {
    worst = Math.max(worst, Math.abs(y.data[i]! - out.data[i]!));
    scale = Math.max(scale, Math.abs(y.data[i]!));
  }
  assert.ok(scale > 1e-3, 'logits are all ~0: the comparison would prove nothing');
  assert.ok(worst <= 1e-5 * Math.max(1, scale), `reference vs native logits differ by ${worst} (scale ${scale})`);
});

const CHILD_NODE = `
const dlopen = process.dlopen; const loaded = [];
process.dlopen = (...a) => { if (/vitkit\.node$/.test(String(a[1]))) loaded.push(a[1]); return dlopen.apply(process, a); };
const v = await import(process.env.INDEX);
const ref = v.getBackend('reference');
const cfg = v.resolveConfig(JSON.parse(process.env.CFG));
const m = v.createModel(cfg, { seed: 1, backend: ref });
v.saveCheckpoint(process.env.DIR, m, { name: 'tiny', pretrainedCfg: {} });
const l = v.loadModel(process.env.DIR, { backend: ref });
const lm = l.model ?? l;
lm.forward(new v.Tensor([1, 3, 16, 16], new Float32Array(768).fill(0.5)));
const before = loaded.length;
const nat = v.getBackend();
console.log(JSON.stringify({ before, after: loaded.length, name: nat.name, addon: loaded.map(String) }));
`;

test('the Node entry loads the vitkit addon on the first getBackend(), not when a model is built or loaded with the reference backend', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-core-'));
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD_NODE], {
      encoding: 'utf8',
      env: { ...process.env, INDEX: new URL(`file://${path.join(DIST, 'index.js')}`).href, CFG: JSON.stringify(CFG), DIR: path.join(dir, 'ckpt') },
    });
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; after: number; name: string; addon: string[] };
    assert.equal(out.before, 0, `the addon was loaded before it was needed: ${out.addon.join(', ')}`);
    assert.equal(out.name, 'native');
    assert.equal(out.after, 1, 'getBackend() should have loaded the addon once');
    assert.match(out.addon[0]!, /vitkit\.node$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('package.json exports: "vitkit" is the Node entry, the core under the browser condition and at "vitkit/core"', () => {
  const probe = "const a = await import('vitkit'); const b = await import('vitkit/core'); " +
    "console.log(JSON.stringify({ cli: typeof a.runCli, readFile: typeof a.readSafetensors, core: typeof b.createModel, coreCli: typeof b.runCli }));";
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [...args, '--input-type=module', '-e', probe], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as Record<string, string>;
  };
  assert.deepEqual(run([]), { cli: 'function', readFile: 'function', core: 'function', coreCli: 'undefined' });
  assert.deepEqual(run(['--conditions=browser']), { cli: 'undefined', readFile: 'undefined', core: 'function', coreCli: 'undefined' });
});
