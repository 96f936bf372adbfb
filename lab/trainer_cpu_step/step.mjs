// Usage (after npx tsc -p .): node lab/trainer_cpu_step/step.mjs "$PWD" 16
// ViT-Ti/16 at 224, batch 8, one training step on cpu: the pre-merge host Trainer step (host layers:
// forward/backward, crossEntropy, AdamW, clipGradNorm) vs the one Trainer (device code on HostDevice), alternating.
const root = process.argv[2];
const { presetConfig } = await import(`${root}/dist/src/models/presets.js`);
const { VisionTransformer, emptyCache } = await import(`${root}/dist/src/models/vit.js`);
const { initWeights } = await import(`${root}/dist/src/checkpoint/checkpoint.js`);
const { getBackend } = await import(`${root}/dist/src/backend/index.js`);
const { loadAddon } = await import(`${root}/dist/src/backend/native.js`);
const { Tensor } = await import(`${root}/dist/src/tensor.js`);
const { Trainer, scheduleFor } = await import(`${root}/dist/src/train/trainer.js`);
const { AdamW, clipGradNorm } = await import(`${root}/dist/src/train/optim.js`);
const { crossEntropy } = await import(`${root}/dist/src/train/loss.js`);
const { Arena } = await import(`${root}/dist/src/nn/arena.js`);
const be = getBackend('native');
const cfg = presetConfig('vit_tiny_patch16_224');
const opts = { lr: 1e-4, weightDecay: 0.05, labelSmoothing: 0.1, clipGrad: 1 };
const mk = () => { const m = new VisionTransformer(cfg, undefined, be); initWeights(m, 0); return m; };
const mOld = mk(), mNew = mk();
// the old host Trainer.step, verbatim in substance
const grads = mOld.params.like(), opt = new AdamW(mOld.params, { lr: opts.lr, weightDecay: opts.weightDecay, backend: be }), sched = scheduleFor(opts);
const arena = new Arena(); let it = 0;
const oldStep = (x, y) => {
  arena.reset(); const cache = emptyCache(arena); grads.buffer.fill(0);
  const r = crossEntropy(mOld.forward(x, { cache }), y, opts.labelSmoothing, 1000, be);
  mOld.backward(cache, r.dlogits, grads);
  clipGradNorm(grads, opts.clipGrad, be); opt.step(grads, sched.at(it++)); return r.loss;
};
const tr = new Trainer(mNew, opts);
const B = 8, n = B * 3 * 224 * 224, xa = new Float32Array(n); let s = 1;
for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; xa[i] = (s / 2 ** 32) * 2 - 1; }
const x = new Tensor([B, 3, 224, 224], xa), y = Int32Array.from({ length: B }, (_, i) => i * 101 % 1000);
const reps = Number(process.argv[3] ?? 8);
const tOld = [], tNew = [];
oldStep(x, y); await tr.step(x, y); // warm
for (let r = 0; r < reps; r++) {
  let t0 = performance.now(); const lo = oldStep(x, y); tOld.push(performance.now() - t0);
  t0 = performance.now(); const ln = (await tr.step(x, y)).loss; tNew.push(performance.now() - t0);
  if (Math.fround(lo) !== ln) throw new Error(`losses differ: ${lo} vs ${ln}`);
}
const med = (a) => { const b = [...a].sort((p, q) => p - q); return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2; };
console.log(`isa ${loadAddon().gemmIsa()}, threads ${be.threads?.getThreads()}, reps ${reps}`);
console.log(`old host step: median ${med(tOld).toFixed(0)} ms  [${tOld.map((v) => v.toFixed(0)).join(' ')}]`);
console.log(`one Trainer (cpu device): median ${med(tNew).toFixed(0)} ms  [${tNew.map((v) => v.toFixed(0)).join(' ')}]`);
