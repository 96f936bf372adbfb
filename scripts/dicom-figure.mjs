#!/usr/bin/env node
/**
 * Makes docs/dicom_explain.png, the README's medical-imaging figure:
 *
 *   1. a toy CT-vs-MR folder from ../shared/refs/dicom: CT/ = CT_small.dcm four times, MR/ = MR_small.dcm
 *      in its four encodings (explicit / implicit VR, big endian, RLE): one CT slice and one MR slice;
 *   2. vitkit train --model ../shared/refs/timm_vit_tiny --in-chans 1 --img-size 128 --num-classes 2
 *        --data <folder> --epochs 30 --batch-size 4 --lr 3e-4 --warmup-epochs 2 --seed 0 --workers 0 --out <run>
 *      (the 3-channel ViT-Ti fine-tuned as a 1-channel model: timm's adapt_input_conv);
 *   3. vitkit predict --json on CT_small.dcm and MR_small.dcm (the CT has no window of its own: minmax,
 *      as in training; the MR its file's 600/1600) and explainOne (explain's rollout, the library call);
 *   4. one PNG: per file, the windowed gray image explain draws on and the rollout overlay (explain's
 *      renderOverlay without the colour bar), scaled to 256 x 256 (nearest), captioned with the prediction.
 *
 * It shows the pipeline (DICOM in, windowed, one-channel fine-tune, attention out), not a medical
 * result: the model has seen exactly these two slices (no open medical data set installs here).
 *
 *   npm run build && node scripts/dicom-figure.mjs [--out docs/dicom_explain.png]
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REFS = path.resolve(ROOT, '..', 'shared', 'refs');
const DCM = path.join(REFS, 'dicom');
const args = process.argv.slice(2);
const outArg = args.indexOf('--out');
const OUT = path.resolve(outArg >= 0 ? args[outArg + 1] : path.join(ROOT, 'docs', 'dicom_explain.png'));
const dist = (f) => import(path.join(ROOT, 'dist', 'src', f));
const { drawText } = await dist('io/font.js');
const { loadModel } = await dist('checkpoint/checkpoint.js');
const { explainOne } = await dist('explain/explain.js');
const { renderOverlay } = await dist('explain/overlay.js');

function vitkit(...a) {
  console.log(`$ vitkit ${a.join(' ')}`);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitkit.js'), ...a], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vitkit ${a[0]} failed (${r.status}): ${r.stderr}`);
  if (r.stderr) process.stderr.write(r.stderr);
  return r.stdout;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitkit-dicom-figure-'));
try {
  const data = path.join(tmp, 'data');
  mkdirSync(path.join(data, 'CT'), { recursive: true });
  mkdirSync(path.join(data, 'MR'), { recursive: true });
  for (let i = 0; i < 4; i++) copyFileSync(path.join(DCM, 'CT_small.dcm'), path.join(data, 'CT', `ct${i}.dcm`));
  for (const f of ['MR_small.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm', 'MR_small_RLE.dcm']) copyFileSync(path.join(DCM, f), path.join(data, 'MR', f));
  const run = path.join(tmp, 'run');
  vitkit('train', '--model', path.join(REFS, 'timm_vit_tiny'), '--in-chans', '1', '--img-size', '128', '--num-classes', '2', '--data', data,
    '--epochs', '30', '--batch-size', '4', '--lr', '3e-4', '--warmup-epochs', '2', '--seed', '0', '--workers', '0', '--out', run);
  const files = ['CT_small.dcm', 'MR_small.dcm'].map((f) => path.join(DCM, f));
  const preds = JSON.parse(vitkit('predict', '--model', run, '--json', '--top-k', '1', ...files));
  // explain's rollout, drawn here at 256 x 256 without the colour bar (a 64 x 64 MR would be mostly legend)
  const loaded = loadModel(run);
  const S = 256;
  const PAD = 8;
  const CAP = 24;
  const W = PAD + 2 * (S + PAD);
  const H = files.length * (CAP + S + PAD) + PAD;
  const canvas = { data: new Uint8Array(W * H * 3).fill(255), width: W, height: H, channels: 3 }; // (H, W, 3)
  for (let i = 0; i < files.length; i++) {
    const e = await explainOne(loaded, files[i]); // e.original: the windowed gray image (RGB), what the overlay is drawn on
    const [GH, GW] = e.grid;
    const sx = S / e.original.width, sy = S / e.original.height;
    const { data: big } = await sharp(Buffer.from(e.original.data), { raw: { width: e.original.width, height: e.original.height, channels: 3 } })
      .resize(S, S, { kernel: 'nearest' }).raw().toBuffer({ resolveWithObject: true });
    const img = { data: new Uint8Array(big), width: S, height: S, channels: 3 };
    const box = { x0: e.box.x0 * sx, y0: e.box.y0 * sy, x1: e.box.x1 * sx, y1: e.box.y1 * sy };
    const ov = renderOverlay(img, e.rollout, GH, GW, box, { legend: false, alpha: 0.5 }).image;
    const y0 = PAD + i * (CAP + S + PAD);
    const p = preds[i].top[0];
    const stem = path.basename(files[i], '.dcm');
    // the built-in 5x7 font (io/font.ts) has digits and the lowercase letters of its legends
    drawText(canvas, PAD, y0 + 4, `${stem.toLowerCase().replace('_', ' ')}.dcm  predicted ${p.label.toLowerCase()} ${(100 * p.score).toFixed(1)}%`, 2, [0, 0, 0]);
    for (const [k, px] of [[0, img.data], [1, ov.data]]) {
      const x0 = PAD + k * (S + PAD);
      for (let y = 0; y < S; y++) canvas.data.set(px.subarray(y * S * 3, (y + 1) * S * 3), ((y0 + CAP + y) * W + x0) * 3);
    }
  }
  await sharp(Buffer.from(canvas.data.buffer), { raw: { width: W, height: H, channels: 3 } }).png({ compressionLevel: 9 }).toFile(OUT);
  console.log(`wrote ${OUT}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
