/**
 * Where a WebGPU training step spends its time: every op of one Trainer step on the MNIST
 * recipe's ViT, synced and timed one by one (so the total is slower than a real step), summed per op name.
 *   node dist/lab/webgpu_profile/step.js [B]
 */
import { createWebGpuBackend } from '../../src/backend/webgpu/index.js';
import { OP_NAMES } from '../../src/backend/ops.js';
import { getBackend } from '../../src/backend/index.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { resolveConfig } from '../../src/models/config.js';
import { initWeights } from '../../src/models/init.js';
import { DeviceViT, type ComputeDevice } from '../../src/models/device.js';
import { Trainer } from '../../src/train/trainer.js';
import { MNIST_VIT_ARGS } from '../../src/data/mnist.js';
import { Tensor } from '../../src/tensor.js';

process.env['VK_ICD_FILENAMES'] ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
const B = Number(process.argv[2] ?? 8);
const dev = await createWebGpuBackend();
const times = new Map<string, { n: number; ms: number }>();
const pending: Promise<void>[] = [];
const names = [...OP_NAMES, 'copy', 'fill', 'crossEntropyForward', 'crossEntropyBackward', 'adamw', 'gradNorm', 'clipGradNorm'];
const prof = new Proxy(dev, {
  get(target, prop, recv) {
    const v = Reflect.get(target, prop, recv);
    if (typeof prop === 'string' && names.includes(prop) && typeof v === 'function') {
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        const t0 = performance.now();
        pending.push(target.sync().then(() => {
          const e = times.get(prop) ?? { n: 0, ms: 0 };
          e.n++; e.ms += performance.now() - t0;
          times.set(prop, e);
        }));
        return r;
      };
    }
    return typeof v === 'function' ? v.bind(target) : v;
  },
}) as unknown as ComputeDevice;
const config = resolveConfig({ ...MNIST_VIT_ARGS }, 'lab');
const m = new VisionTransformer(config, undefined, getBackend('native'));
initWeights(m, 0);
const t = new Trainer(new DeviceViT(m, prof), { lr: 1e-3 });
const x = new Tensor([B, 1, 28, 28], new Float32Array(B * 784).fill(0.5));
const y = Int32Array.from({ length: B }, (_, i) => i % 10);
await t.step(x, y); // compile
times.clear();
const t0 = performance.now();
await t.step(x, y);
await Promise.all(pending);
console.log(`B=${B}: one profiled step ${(performance.now() - t0).toFixed(0)} ms`);
for (const [k, v] of [...times].sort((a, b) => b[1].ms - a[1].ms)) console.log(`${k.padEnd(24)} ${String(v.n).padStart(4)} calls ${v.ms.toFixed(1).padStart(9)} ms`);
dev.dispose();
