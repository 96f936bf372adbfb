// The cpu runner (DeviceViT over HostDevice, since HostRunner was deleted) vs the host model's own
// forward, alternating in one process: median ms per batch. Usage:
//   node lab/runner_cpu_forward/forward.mjs <repo> [preset=vit_small_patch16_224] [batch=8] [reps=15]
import path from 'node:path';
import os from 'node:os';
const repo = path.resolve(process.argv[2] ?? '.');
const preset = process.argv[3] ?? 'vit_small_patch16_224', B = Number(process.argv[4] ?? 8), reps = Number(process.argv[5] ?? 15);
const v = await import(path.join(repo, 'dist/src/index.js'));
const model = v.createModel(v.presetConfig(preset));
v.initWeights(model, 0);
const c = model.config, [H, W] = v.imgHW(c);
const x = new v.Tensor([B, 3, H, W], Float32Array.from({ length: B * 3 * H * W }, (_, i) => Math.sin(i * 0.001)));
const runner = await v.runnerFor(model, 'cpu');
const host = [], dev = [];
for (let r = 0; r < reps + 2; r++) {
  let t = performance.now(); model.forward(x); const a = performance.now() - t;
  t = performance.now(); await runner.forward(x); const b = performance.now() - t;
  if (r >= 2) { host.push(a); dev.push(b); }
}
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
console.log(`${os.cpus()[0].model}, ${runner.description}; ${preset} b${B}, ${reps} reps, medians: host forward ${med(host).toFixed(1)} ms, cpu runner ${med(dev).toFixed(1)} ms (ratio ${(med(dev) / med(host)).toFixed(3)})`);
