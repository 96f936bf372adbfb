// MNIST detection canvases for the README figure: 1–4 digits (the embedded MNIST, train split for
// training, test split for the held-out set) pasted at random positions and scales (14–30 px) on
// 64x64 black canvases, boxes = each digit's tight box (pixels >= 32), classes = the digit.
// Writes <out>/train.safetensors (x through YOLOS's eval transform at 64: /255, ImageNet mean/std,
// and targets.{b}.*), <out>/val/ (a COCO folder of PNGs), <out>/init/ (a fresh YOLOS, hustvl layout).
// Run after `npx tsc -p tsconfig.json`:  node lab/yolos_mnist/make.mjs /tmp/yolos_mnist [n_train] [n_val]
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { loadMnist } from '../../dist/src/data/mnist.js';
import { resizePil } from '../../dist/src/io/resample.js';
import { writeSafetensors } from '../../dist/src/io/safetensors.js';
import { mulberry32 } from '../../dist/src/models/init.js';
import { Yolos, yolosVitConfig, initYolos } from '../../dist/src/detect/yolos.js';
import { saveYolos } from '../../dist/src/detect/train_cli.js';

const out = process.argv[2] ?? '/tmp/yolos_mnist';
const nTrain = Number(process.argv[3] ?? 2000), nVal = Number(process.argv[4] ?? 300);
const S = 64, MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];
const mnist = loadMnist();

function canvas(ds, rand) {
  const img = new Uint8Array(S * S); // (S, S) gray
  const boxes = [], labels = [];
  const k = 1 + Math.floor(rand() * 4);
  for (let tries = 0; labels.length < k && tries < 50; tries++) {
    const i = Math.floor(rand() * ds.n), s = 14 + Math.floor(rand() * 17);
    const x0 = Math.floor(rand() * (S - s + 1)), y0 = Math.floor(rand() * (S - s + 1));
    // no two digits' squares overlap by more than a few pixels
    if (boxes.some((b) => Math.min(b.sx + b.s, x0 + s) - Math.max(b.sx, x0) > 3 && Math.min(b.sy + b.s, y0 + s) - Math.max(b.sy, y0) > 3)) continue;
    const d = resizePil({ data: ds.pixels.subarray(i * 784, (i + 1) * 784), width: 28, height: 28, channels: 1 }, s, s, 'bilinear');
    let bx0 = S, by0 = S, bx1 = -1, by1 = -1;
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const v = d.data[y * s + x];
      const o = (y0 + y) * S + x0 + x;
      img[o] = Math.max(img[o], v);
      if (v >= 32) { bx0 = Math.min(bx0, x0 + x); by0 = Math.min(by0, y0 + y); bx1 = Math.max(bx1, x0 + x + 1); by1 = Math.max(by1, y0 + y + 1); }
    }
    if (bx1 < 0) continue;
    boxes.push({ sx: x0, sy: y0, s, box: [bx0, by0, bx1 - bx0, by1 - by0] });
    labels.push(ds.labels[i]);
  }
  return { img, boxes: boxes.map((b) => b.box), labels };
}

mkdirSync(path.join(out, 'val', 'images'), { recursive: true });
mkdirSync(path.join(out, 'val', 'annotations'), { recursive: true });
const rand = mulberry32(2024);
const x = new Float32Array(nTrain * 3 * S * S);
const tensors = {};
for (let b = 0; b < nTrain; b++) {
  const c = canvas(mnist.train, rand);
  for (let ch = 0; ch < 3; ch++) for (let p = 0; p < S * S; p++) x[(b * 3 + ch) * S * S + p] = (Math.fround(c.img[p] / 255) - MEAN[ch]) / STD[ch];
  tensors[`targets.${b}.labels`] = { dtype: 'I64', shape: [c.labels.length], data: BigInt64Array.from(c.labels, (l) => BigInt(l)) };
  tensors[`targets.${b}.boxes`] = { dtype: 'F32', shape: [c.labels.length, 4], data: Float32Array.from(c.boxes.flatMap(([bx, by, bw, bh]) => [(bx + bw / 2) / S, (by + bh / 2) / S, bw / S, bh / S])) };
}
tensors['x'] = { dtype: 'F32', shape: [nTrain, 3, S, S], data: x };
writeSafetensors(path.join(out, 'train.safetensors'), tensors, {}, { overwrite: true });
const images = [], annotations = [];
let aid = 1;
for (let i = 0; i < nVal; i++) {
  const c = canvas(mnist.test, rand);
  const rgb = new Uint8Array(S * S * 3);
  for (let p = 0; p < S * S; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = c.img[p];
  const file = `canvas${String(i).padStart(4, '0')}.png`;
  writeFileSync(path.join(out, 'val', 'images', file), await sharp(rgb, { raw: { width: S, height: S, channels: 3 } }).png().toBuffer());
  images.push({ id: i + 1, file_name: file, width: S, height: S });
  c.boxes.forEach((bb, j) => annotations.push({ id: aid++, image_id: i + 1, category_id: c.labels[j], bbox: bb, area: bb[2] * bb[3], iscrowd: 0 }));
}
const categories = Array.from({ length: 10 }, (_, k) => ({ id: k, name: String(k) }));
writeFileSync(path.join(out, 'val', 'annotations', 'val.json'), JSON.stringify({ images, annotations, categories }));
const vit = yolosVitConfig({ patch_size: 8, embed_dim: 96, depth: 4, num_heads: 4, mlp_ratio: 4, qkv_bias: true, pe_size: [S, S], det_tokens: 16, layer_norm_eps: 1e-6 }, 'init');
const model = new Yolos({ vit, numClasses: 10, labels: categories.map((c) => c.name) });
initYolos(model, 0);
saveYolos(path.join(out, 'init'), model, { overwrite: true });
console.log(`wrote ${nTrain} training canvases, ${nVal} held-out canvases (${annotations.length} digits) and a fresh YOLOS (${model.numParams} parameters) to ${out}`);
