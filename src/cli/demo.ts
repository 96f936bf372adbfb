/**
 * `vitkit demo`: the first command after `npm install`. Trains the small MNIST ViT of
 * ../shared/anchors (patch 7, D 64, depth 4; 30 epochs, under a minute on 2 cores) with a progress bar, evaluates it,
 * saves the checkpoint (default ./vitkit-demo), shows a handful of test digits as ASCII art with
 * predicted and true labels, writes them as PNGs, and says where everything went.
 */
import { Command } from 'commander';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { VitkitError } from '../errors.js';
import { makeDirs, writeFileAtomic } from '../io/files.js';
import { Tensor } from '../tensor.js';
import { openData } from '../data/open.js';
import { makeBatch } from '../data/batch.js';
import { Rng } from '../data/rng.js';
import type { U8Dataset } from '../data/dataset.js';
import { DEFAULT_SETTINGS, type TrainSettings } from '../train/loop.js';
import { trainRun } from '../train/loop.js';
import { STATE_DIR } from '../train/state.js';
import { prepareModel, preparePipeline } from '../train/prepare.js';
import { barProgress, fmtDuration } from './progress.js';
import { parseIntOpt } from './common.js';
import { MNIST_VIT_ARGS } from '../data/mnist.js';
import { imgHW } from '../models/config.js';
import { argmaxRows } from '../nn/functional.js';

export const DEMO_MARKER = '.vitkit-demo';
export const DEMO_EPOCHS = 30; // the full recipe of ../shared/anchors: about 50 s on 2 cores

/**
 * The demo directory must be new, empty, or an earlier demo's (marked by .vitkit-demo); an earlier demo's
 * that holds a trained model is replaced only with --overwrite (the overwrite rule, as for `train`).
 */
export function checkDemoDir(out: string, overwrite = false): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new VitkitError(`Refusing to write the demo into ${out}: it is a file; pass --out <dir>`);
  const entries = readdirSync(out);
  if (entries.length && !entries.includes(DEMO_MARKER)) {
    throw new VitkitError(`Refusing to write the demo into ${out}: the directory exists and was not made by vitkit demo; pass --out <dir>`);
  }
  // checkpoint/ holds the training state; a demo folder from before it held train_state.safetensors at the top level
  const model = entries.filter((f) => f === 'model.safetensors' || f === STATE_DIR || f === 'train_state.safetensors');
  if (model.length && !overwrite) {
    throw new VitkitError(`Refusing to overwrite the demo model in ${out} (${model.join(', ')}): pass --overwrite to train it again from scratch, --out <dir> for a new folder, or vitkit train --resume ${out} to continue it`);
  }
}

const RAMP = ' .:-=+*#%@';

/** A 28x28 digit as 14 lines of 28 characters (two pixel rows per character row). */
export function asciiDigit(px: Uint8Array, size = 28): string[] {
  const lines: string[] = [];
  for (let y = 0; y < size; y += 2) {
    let s = '';
    for (let x = 0; x < size; x++) {
      const v = (px[y * size + x]! + (y + 1 < size ? px[(y + 1) * size + x]! : 0)) / 2;
      s += RAMP[Math.min(RAMP.length - 1, Math.floor((v / 256) * RAMP.length))];
    }
    lines.push(s);
  }
  return lines;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('train a small ViT on MNIST in a minute or two, evaluate it, save it and show predictions on test digits')
    .option('-o, --out <dir>', 'where to save the checkpoint', 'vitkit-demo')
    .option('-e, --epochs <n>', 'epochs', parseIntOpt('--epochs'), DEMO_EPOCHS)
    .option('--samples <n>', 'test digits to show', parseIntOpt('--samples'), 8)
    .option('--seed <n>', 'seed', parseIntOpt('--seed', 0), 0)
    .option('--overwrite', 'replace an earlier demo\'s trained model in --out')
    .action(async (o: { out: string; epochs: number; samples: number; seed: number; overwrite?: boolean }) => {
      const t0 = performance.now();
      checkDemoDir(o.out, o.overwrite);
      makeDirs(o.out, 'demo folder');
      writeFileAtomic(path.join(o.out, DEMO_MARKER), 'made by `vitkit demo`; a later demo may replace this directory\n', { overwrite: true, what: 'demo marker' });
      console.log(`vitkit demo: a Vision Transformer learns to read handwritten digits (MNIST: 10,000 digits of the npm package "mnist", shipped with vitkit).`);
      const data = openData('mnist', { purpose: 'train', seed: o.seed });
      const pm = prepareModel('vit_tiny_patch16_224', {
        imgSize: MNIST_VIT_ARGS.img_size, patchSize: MNIST_VIT_ARGS.patch_size, embedDim: MNIST_VIT_ARGS.embed_dim, depth: MNIST_VIT_ARGS.depth,
        numHeads: MNIST_VIT_ARGS.num_heads, mlpRatio: MNIST_VIT_ARGS.mlp_ratio, inChans: 1, numClasses: 10,
      }, data, o.seed);
      const pipeline = preparePipeline(pm.model, pm.preprocess, [data.train, data.val], 'error');
      const c = pm.model.config;
      console.log(`Model: img ${imgHW(c)[0]}x${imgHW(c)[1]}, ${imgHW(c)[0] / c.patch_size}x${imgHW(c)[1] / c.patch_size} patches of ${c.patch_size} px, ` +
        `D ${c.embed_dim}, ${c.depth} blocks, ${c.num_heads} heads, ${pm.model.numParams.toLocaleString('en-US')} parameters`);
      console.log(`Data: ${data.train!.n.toLocaleString('en-US')} training digits, ${data.val!.n.toLocaleString('en-US')} test digits; ${o.epochs} epochs of AdamW, cosine schedule, ±2 px shifts\n`);
      const settings: TrainSettings = {
        ...DEFAULT_SETTINGS, epochs: o.epochs, batchSize: 128, lr: 2e-3, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'cosine',
        warmupEpochs: 1, seed: o.seed, shuffle: true, augment: 'shift',
      };
      const r = await trainRun({
        model: pm.model, meta: pm.meta, train: data.train!, val: data.val, pipeline, settings, out: o.out, workers: 1,
        progress: barProgress(), data: { source: 'mnist' },
      });
      if (r.signal) {
        console.log(`\nInterrupted. The run so far is saved in ${o.out}; continue it with: vitkit train --resume ${o.out}`);
        process.exit(130);
      }
      const last = r.history[r.history.length - 1]!;
      const seconds = (performance.now() - t0) / 1000;
      console.log(`\nTest accuracy ${last.val_acc!.toFixed(2)}% (top-5 ${last.val_top5!.toFixed(2)}%) on ${data.val!.n.toLocaleString('en-US')} digits the model never saw, after ${fmtDuration(seconds)}.\n`);

      // a handful of test digits
      const test = data.val as U8Dataset;
      const rng = new Rng(1234 + o.seed);
      const picks = new Set<number>();
      while (picks.size < Math.min(o.samples, test.n)) picks.add(Math.floor(rng.next() * test.n));
      const idx = Int32Array.from(picks);
      const b = await makeBatch(test, pipeline, { split: 'val', indices: idx, augment: null, seed: 0 });
      const logits = pm.model.forward(new Tensor([b.size, 1, ...imgHW(c)], b.x));
      const K = c.num_classes;
      const preds = argmaxRows(logits.data, b.size, K); // (B)
      const sampleDir = path.join(o.out, 'samples');
      makeDirs(sampleDir, 'demo samples folder');
      const per = 28 * 28;
      const perRow = Math.max(1, Math.min(4, Math.floor(((process.stdout.columns ?? 100) + 3) / 31)));
      for (let s = 0; s < idx.length; s += perRow) {
        const group = [...idx.subarray(s, s + perRow)];
        const arts = group.map((i) => asciiDigit(test.pixels.subarray(i * per, (i + 1) * per)));
        const heads = group.map((i, k) => {
          const p = preds[s + k]!, y = test.labels[i]!;
          return `predicted ${p}, true ${y} ${p === y ? 'ok' : 'WRONG'}`.padEnd(28);
        });
        console.log(heads.join('   '));
        for (let l = 0; l < arts[0]!.length; l++) console.log(arts.map((a) => a[l]).join('   '));
        console.log('');
      }
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k]!;
        const f = path.join(sampleDir, `test${i}_label${test.labels[i]}.png`);
        writeFileAtomic(f, await sharp(Buffer.from(test.pixels.subarray(i * per, (i + 1) * per)), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer(), { overwrite: true, what: 'PNG' });
      }
      const right = preds.filter((p, k) => p === test.labels[idx[k]!]).length;
      console.log(`${right} of ${idx.length} shown digits classified correctly.\n`);
      console.log(`Saved in ${o.out}/:`);
      console.log(`  config.json, model.safetensors   the trained model (timm layout)`);
      console.log(`  metrics.jsonl, curves.png        loss and accuracy per epoch`);
      console.log(`  checkpoint/                      the training state (optimizer, position) to continue training`);
      console.log(`  samples/*.png                    the digits above`);
      console.log(`\nNext:`);
      console.log(`  vitkit predict --model ${o.out} ${path.join(o.out, 'samples', '*.png')}`);
      console.log(`  vitkit eval --model ${o.out} --data mnist`);
      console.log(`  vitkit train --resume ${o.out} --epochs ${o.epochs + 10}     (train further)`);
    });
}
