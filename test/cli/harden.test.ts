/**
 * Hostile-user cases through real processes: malformed option values exit 2, presets without
 * weights are refused, non-regular and vector inputs are refused, outputs are never lost or
 * clobbered, and every failure is one line naming what was wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, vitkit, assertUserError, tmp } from '../helpers.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { IMAGE_EXTENSIONS } from '../../src/io/image.js';
import { IMAGE_EXTENSIONS as FOLDER_EXTENSIONS } from '../../src/data/folder.js';
import { EMBED_IMAGE_EXTENSIONS } from '../../src/embed/embed.js';

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');
const dir = tmp();

async function png(file: string, w = 40, h = 30, seed = 1): Promise<string> {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 31 + seed * 17) % 256;
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

const IMG = await png(path.join(dir, 'pic.png'));

/** A usage error: exit 2, one line naming the option. */
function assertUsage(r: ReturnType<typeof vitkit>, re: RegExp): void {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}: ${r.err}`);
  assertUserError(r, re);
}

test('malformed option values exit 2 like --schedule bogus', () => {
  assertUsage(vitkit('predict', '-m', HF_DIR, '--top-k', 'abc', IMG), /--top-k.*Expected an integer >= 1 for --top-k but received "abc"/);
  assertUsage(vitkit('--threads', '0', 'predict', '-m', HF_DIR, IMG), /Expected an integer >= 1 for --threads but received "0"/);
  assertUsage(vitkit('train', '--model', 'vit_tiny_patch16_224', '--data', 'mnist', '--epochs', '0'), /Expected an integer >= 1 for --epochs but received "0"/);
  assertUsage(vitkit('explain', '-m', HF_DIR, '--json', '--method', 'bogus', IMG), /Expected one of rollout, grad-rollout for --method but received "bogus"/);
  assertUsage(vitkit('train', '--model', 'vit_tiny_patch16_224', '--data', 'mnist', '--schedule', 'bogus'), /bogus/);
  assertUsage(vitkit('explain', '-m', HF_DIR, IMG), /Expected --out <dir> for the PNGs and\/or --json/);
});

test('predict, explain, embed and fewshot refuse a preset\'s random weights unless --random-weights', () => {
  const sup = path.join(dir, 'sup');
  mkdirSync(path.join(sup, 'a'), { recursive: true });
  writeFileSync(path.join(sup, 'a', 'x.png'), readFileSync(IMG));
  const cases: string[][] = [
    ['predict', '-m', 'vit_tiny_patch16_224', IMG],
    ['explain', '-m', 'vit_tiny_patch16_224', '--json', IMG],
    ['embed', '-m', 'vit_tiny_patch16_224', '-o', path.join(dir, 'e.jsonl'), IMG],
    ['fewshot', '-m', 'vit_tiny_patch16_224', '-s', sup, IMG],
  ];
  for (const c of cases) {
    const r = vitkit(...c);
    assert.equal(r.code, 1, `${c[0]}: ${r.err}`);
    assertUserError(r, /preset name "vit_tiny_patch16_224", which has no weights.*--random-weights/);
  }
  const ok = vitkit('predict', '-m', 'vit_tiny_patch16_224', '--random-weights', '--json', IMG);
  assert.equal(ok.code, 0, ok.err);
  assert.equal((JSON.parse(ok.out) as unknown[]).length, 1);
});

test('the same image types everywhere; predict reads a folder (tiff included), refuses SVG, FIFOs and devices', async () => {
  assert.deepEqual([...FOLDER_EXTENSIONS], [...IMAGE_EXTENSIONS]);
  assert.deepEqual([...EMBED_IMAGE_EXTENSIONS].sort(), [...IMAGE_EXTENSIONS].sort());
  const f = path.join(dir, 'folder');
  mkdirSync(path.join(f, 'sub'), { recursive: true });
  await png(path.join(f, 'a.png'));
  const px = Buffer.alloc(20 * 20 * 3, 90);
  await sharp(px, { raw: { width: 20, height: 20, channels: 3 } }).tiff().toFile(path.join(f, 'sub', 'b.tiff'));
  writeFileSync(path.join(f, 'notes.txt'), 'not an image');
  const r = vitkit('predict', '-m', HF_DIR, '--json', f);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((JSON.parse(r.out) as { image: string }[]).map((p) => path.relative(f, p.image)), ['a.png', path.join('sub', 'b.tiff')]);

  // a tiny SVG that asks for a 15000 x 15000 render: refused without rendering
  const svg = path.join(dir, 'bomb.png');
  writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="15000" height="15000"><rect width="15000" height="15000"/></svg>');
  const t0 = performance.now();
  assertUserError(vitkit('predict', '-m', HF_DIR, svg), /Expected a raster image \(JPEG, PNG, WebP, GIF, TIFF, AVIF\) for .*bomb\.png but received SVG/);
  assert.ok(performance.now() - t0 < 20000);
  if (existsSync('/dev/zero')) assertUserError(vitkit('predict', '-m', HF_DIR, '/dev/zero'), /Expected a regular file for image file \/dev\/zero but received a character device/);
  const fifo = path.join(dir, 'pipe.png');
  if (spawnSync('mkfifo', [fifo]).status === 0) {
    assertUserError(vitkit('predict', '-m', HF_DIR, fifo), /Expected a regular file for image file .*pipe\.png but received a FIFO/);
  }
});

test('preprocessing that would allocate gigabytes is refused before any image is read', () => {
  for (const [name, edit] of [
    ['size', { size: { height: 20000, width: 20000 } }],
    ['crop', { do_center_crop: true, crop_size: { height: 20000, width: 20000 } }],
    ['std', { image_std: [0.5, 0, 0.5] }],
  ] as const) {
    const d = path.join(dir, `pp-${name}`);
    mkdirSync(d);
    for (const f of ['config.json', 'model.safetensors']) writeFileSync(path.join(d, f), readFileSync(path.join(HF_DIR, f)));
    const pp = JSON.parse(readFileSync(path.join(HF_DIR, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(d, 'preprocessor_config.json'), JSON.stringify({ ...pp, ...edit }));
    const r = vitkit('predict', '-m', d, IMG);
    assertUserError(r, name === 'std' ? /std values in \[1e-6, 1e6\].*image_std\[1\].*received 0/ : /at most 1024 x 1024 pixels.*received "?20000 x 20000/);
  }
  // a timm crop_pct of 1e-6
  const d = path.join(dir, 'pp-timm');
  mkdirSync(d);
  const r0 = vitkit('train', '--model', 'vit_tiny_patch16_224', '--img-size', '16', '--patch-size', '8', '--embed-dim', '16', '--depth', '1', '--num-heads', '2',
    '--data', tensorData('pp.safetensors', 8, [0, 1]), '--epochs', '1', '--batch-size', '8', '--out', path.join(d, 'run'));
  assert.equal(r0.code, 0, r0.err);
  const cfgFile = path.join(d, 'run', 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { pretrained_cfg: Record<string, unknown> };
  cfg.pretrained_cfg['crop_pct'] = 1e-6;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  assertUserError(vitkit('predict', '-m', path.join(d, 'run'), IMG), /at most 1024 x 1024 pixels .*pretrained_cfg\.crop_pct 0\.000001 .*received "16000000 x 16000000"/);
});

/** x (n, 3, 16, 16) and y from `labels` cycled, as a tensor file. */
function tensorData(name: string, n: number, labels: number[]): string {
  const file = path.join(dir, name);
  const x = new Float32Array(n * 3 * 16 * 16);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) y[i] = BigInt(labels[i % labels.length]!);
  writeSafetensors(file, { x: { shape: [n, 3, 16, 16], data: x }, y: { shape: [n], data: y } });
  return file;
}

const TINY_ARCH = ['--model', 'vit_tiny_patch16_224', '--img-size', '16', '--patch-size', '8', '--embed-dim', '16', '--depth', '1', '--num-heads', '2'];

test('one label of 10^6 in y: refused by --max-classes; a sparse label set warns', () => {
  const big = tensorData('big.safetensors', 4, [0, 1000000]);
  const r = vitkit('train', ...TINY_ARCH, '--data', big, '--epochs', '1', '--out', path.join(dir, 'big-run'));
  assertUserError(r, /Expected labels below --max-classes 100000 in .*big\.safetensors but received the label 1000000 \(1000001 classes, 2 distinct labels\)/);
  assert.ok(!existsSync(path.join(dir, 'big-run', 'model.safetensors')));
  const sparse = tensorData('sparse.safetensors', 4, [0, 99]);
  const r2 = vitkit('train', ...TINY_ARCH, '--data', sparse, '--epochs', '1', '--batch-size', '4', '--out', path.join(dir, 'sparse-run'));
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.err, /warning: the labels in .*sparse\.safetensors imply 100 classes \(max label 99\) but only 2 distinct labels occur/);
  assertUserError(vitkit('train', ...TINY_ARCH, '--data', sparse, '--max-classes', '50', '--out', path.join(dir, 'sparse-2')), /--max-classes 50/);
});

test('train --out: every file a run writes is covered by --overwrite', () => {
  // checkpoint/ holds the training state; train_state.json at the top level is where a run folder from before checkpoint/ kept it
  for (const f of ['curves.png', 'train_state.json', 'ema', 'checkpoint']) {
    const out = path.join(dir, `ow-${f}`);
    mkdirSync(out);
    const dirEntry = f === 'ema' || f === 'checkpoint';
    if (dirEntry) { mkdirSync(path.join(out, f)); writeFileSync(path.join(out, f, 'config.json'), '{"mine": true}'); }
    else writeFileSync(path.join(out, f), 'the user\'s file');
    const kept = dirEntry ? path.join(out, f, 'config.json') : path.join(out, f);
    const before = readFileSync(kept, 'utf8');
    const r = vitkit('train', ...TINY_ARCH, '--data', tensorData(`ow-${f}.safetensors`, 4, [0, 1]), '--epochs', '1', '--batch-size', '4', '--ema-decay', '0.9', '--out', out);
    assertUserError(r, new RegExp(`already holds a checkpoint \\(${f.replace('.', '\\.')}\\); pass --resume .* or --overwrite`));
    const after = readFileSync(kept, 'utf8');
    assert.equal(after, before);
  }
});

test('a training run whose every image is skipped fails and writes no checkpoint; eval over 0 images fails', () => {
  const root = path.join(dir, 'broken');
  for (const c of ['a', 'b']) {
    mkdirSync(path.join(root, c), { recursive: true });
    for (let i = 0; i < 2; i++) writeFileSync(path.join(root, c, `${i}.png`), 'not a png');
  }
  const out = path.join(dir, 'broken-run');
  const r = vitkit('train', ...TINY_ARCH, '--data', root, '--epochs', '1', '--batch-size', '2', '--on-bad-image', 'skip', '--workers', '0', '--out', out);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.err, /error: Expected training images in epoch 1 of .*broken but every one of its 4 images was skipped as unreadable: train_loss would be NaN/);
  assert.ok(!existsSync(path.join(out, 'model.safetensors')), 'no checkpoint of a NaN epoch');
  const e = vitkit('eval', '-m', HF_DIR, '--data', root, '--on-bad-image', 'skip', '--workers', '0');
  assert.equal(e.code, 1, e.out + e.err);
  assert.match(e.err, /error: Expected images to evaluate in .*broken but received none \(all 4 were skipped as unreadable\)/);
});

test('explain: output names never collide and PNGs are written whole', async () => {
  const d1 = path.join(dir, 'd1'), d2 = path.join(dir, 'd2');
  mkdirSync(d1); mkdirSync(d2);
  const a1 = await png(path.join(d1, 'a.png'), 40, 30, 1);
  const a2 = await png(path.join(d2, 'a.png'), 40, 30, 2);
  const a3 = await png(path.join(dir, 'a-1.png'), 40, 30, 3);
  const out = path.join(dir, 'maps');
  mkdirSync(out);
  writeFileSync(path.join(out, 'old.png.tmp-2147483646-abcdefabcdef'), 'left by a killed run'); // a dead pid: cleaned
  const r = vitkit('explain', '-m', HF_DIR, '-o', out, a1, a2, a3);
  assert.equal(r.code, 0, r.err);
  const files = readdirSync(out).sort();
  assert.deepEqual(files, ['a-1.heads.png', 'a-1.rollout.png', 'a-2.heads.png', 'a-2.rollout.png', 'a.heads.png', 'a.rollout.png']);
  // the a-1 maps are a-1.png's own, d2/a.png took a-2
  assert.match(r.out, new RegExp(`a-1\\.png: [\\s\\S]*wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/a-1\\.rollout\\.png`));
  for (const f of files) {
    const m = await sharp(path.join(out, f)).metadata();
    assert.equal(m.format, 'png');
  }
  // again without --overwrite: refused, nothing replaced
  assertUserError(vitkit('explain', '-m', HF_DIR, '-o', out, a1), /already exists; pass --overwrite/);
});
