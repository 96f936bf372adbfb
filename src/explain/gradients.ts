/**
 * dL/dA: the gradient of a target with respect to every block's attention probabilities, for
 * gradient-weighted rollout — one implementation on every device (the model on device tensors,
 * DeviceViT: the host kernels as the cpu device, or WebGPU).
 *
 * A training forward keeps each block's activations. Going back from dL/d(output) — one-hot(class)
 * for a class target, or a gradient the caller computes from the output (CLIP: the similarity to a
 * text) — the model backward reports at each block dO, the gradient at the attention output
 * (before proj); with V the values,
 *   out_h = A_h V_h   =>   dA_h = dO_h V_h^T   (per image and head, (N, HD) @ (HD, N)),
 * one strided GEMM per image and head, straight from the saved qkv. A is treated as a free
 * variable here (the softmax is not differentiated through), which is what Chefer et al.'s
 * grad ⊙ attn weighting uses. The host reads the outputs, the attention maps and their gradients
 * once at the end (and the output once more in between for a caller-computed gradient).
 */
import { Tensor } from '../tensor.js';
import { VitkitError } from '../errors.js';
import { dims } from '../models/config.js';
import type { DeviceTensor } from '../backend/device.js';
import { cpuDevice } from '../backend/devices.js';
import { DeviceParamTable, DeviceViT } from '../models/device.js';
import type { ForwardCache, VisionTransformer } from '../models/vit.js';
import type { Model } from '../models/model.js';

export interface AttentionGradients {
  /** the output differentiated: logits (B, K), or pre-logits (B, D) for a model without a head */
  logits: Tensor;
  /** per block (B, NH, N, N) */
  attentions: Tensor[];
  /** per block dL/dA (B, NH, N, N) */
  grads: Tensor[];
}

/**
 * What to differentiate: a class index (L = the sum over the batch of that logit), or a function
 * that, given the output (logits (B, K), or pre-logits (B, D) without a head), returns dL/d(output)
 * of the same shape.
 */
export type GradientTarget = number | ((output: Tensor) => Float32Array);

/**
 * Gradients of `target` w.r.t. each block's attention probabilities, for x (B, C, H, W), on the
 * device `on` runs on (a host Model: the cpu device, sharing its weights).
 */
export async function attentionGradients(on: DeviceViT | Model, x: Tensor, target: GradientTarget): Promise<AttentionGradients> {
  const own = !(on instanceof DeviceViT);
  const dm = own ? new DeviceViT(on as VisionTransformer, cpuDevice(on.backend)) : on;
  try {
    return await gradientsOn(dm, x, target);
  } finally {
    if (own) dm.release();
  }
}

async function gradientsOn(dm: DeviceViT, x: Tensor, target: GradientTarget): Promise<AttentionGradients> {
  const c = dm.config, d = dims(c), dev = dm.dev, K = c.num_classes;
  if (typeof target === 'number') {
    if (K === 0) throw new VitkitError('Gradient-weighted rollout needs a classifier head, but the model has num_classes 0');
    if (!Number.isInteger(target) || target < 0 || target >= K) throw new VitkitError(`Expected a class index in [0, ${K - 1}] but received ${target}`);
  }
  if (c.global_pool === '') throw new VitkitError('Attention gradients need a pooled output; the model has global_pool "" (one output per token)');
  dm.arena.reset();
  const mem = dm.arena.mem();
  const inp = dm.input(x, mem);
  const B = inp.B, N = inp.layout.N, { D, NH, HD } = d;
  const O = K > 0 ? K : D; // output width
  const cache = { mem } as unknown as ForwardCache<DeviceTensor>;
  const f = dm.featuresOn(inp.x, B, inp.layout, mem, { cache });
  const h = dm.core.head(f.features, B, N, K > 0, mem, cache);
  const out = h.logits ?? h.pre; // (B, O)
  const read = async (t: DeviceTensor, shape: number[]) => new Tensor(shape, (await dev.read(t)).slice());
  let seed: Float32Array; // (B, O) dL/d(output)
  let output: Tensor | null = null;
  if (typeof target === 'number') {
    seed = new Float32Array(B * O);
    for (let b = 0; b < B; b++) seed[b * O + target] = 1;
  } else {
    output = await read(out, [B, O]);
    seed = target(output);
    if (seed.length !== B * O) throw new VitkitError(`Expected the target's gradient of (${B}, ${O}) (${B * O} values) but received ${seed.length} values`);
  }
  const dout = mem.take(B * O, false); // (B, O)
  dev.write(dout, seed);
  const grads = new DeviceParamTable(dev, dm.model.params.specs, dm.model.params.count); // scratch: only the hook's results are kept
  dev.fill(grads.buffer, 0);
  try {
    const dA: DeviceTensor[] = new Array(c.depth);
    const span = (N - 1) * D + HD; // elements one head's (N, HD) rows span at row stride D
    dm.core.backward(cache, dout, grads, mem, {
      onAttnOutputGrad: (i, dattn) => {
        const qkv = cache.blocks[i]!.qkv; // (B*N, 3D)
        const g = mem.take(B * NH * N * N, false); // (B, NH, N, N)
        for (let b = 0; b < B; b++) {
          for (let hh = 0; hh < NH; hh++) {
            const dO = dev.view(dattn, b * N * D + hh * HD, [span]); // (N, HD) rows of stride D
            const V = dev.view(qkv, b * N * 3 * D + 2 * D + hh * HD, [(N - 1) * 3 * D + HD]); // (N, HD) rows of stride 3D
            dev.gemm(false, true, N, N, HD, 1, dO, D, V, 3 * D, 0, dev.view(g, (b * NH + hh) * N * N, [N * N]), N);
          }
        }
        dA[i] = g;
      },
    });
    const [logits, attentions, gs] = await Promise.all([
      output ? Promise.resolve(output) : read(out, [B, O]),
      Promise.all(cache.blocks.map((bc) => read(bc.probs, [B, NH, N, N]))),
      Promise.all(dA.map((g) => read(g, [B, NH, N, N]))),
    ]);
    return { logits, attentions, grads: gs };
  } finally {
    grads.release();
  }
}
