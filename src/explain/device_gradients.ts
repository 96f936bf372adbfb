/**
 * attentionGradients (gradients.ts) on a device: the training forward, the backward from
 * dL/dlogits = one-hot(class) and each block's dL/dA_h = dO_h V_h^T (one strided GEMM per image and
 * head, straight from the saved qkv and the attention-output gradient) all run on the device; the
 * host reads the logits, the attention maps and their gradients once at the end.
 */
import { Tensor } from '../tensor.js';
import { VitkitError } from '../errors.js';
import { dims } from '../models/config.js';
import type { DeviceTensor } from '../backend/device.js';
import { DeviceParamTable, type DeviceViT } from '../models/device.js';
import type { ForwardCache } from '../models/vit.js';
import type { AttentionGradients } from './gradients.js';

export async function deviceAttentionGradients(dm: DeviceViT, x: Tensor, classIndex: number): Promise<AttentionGradients> {
  const c = dm.config, d = dims(c), dev = dm.dev, K = c.num_classes;
  if (K === 0) throw new VitkitError('Gradient-weighted rollout needs a classifier head, but the model has num_classes 0');
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= K) throw new VitkitError(`Expected a class index in [0, ${K - 1}] but received ${classIndex}`);
  dm.arena.reset();
  const mem = dm.arena.mem();
  const inp = dm.input(x, mem);
  const B = inp.B, N = inp.layout.N, { D, NH, HD } = d;
  const cache = { mem } as unknown as ForwardCache<DeviceTensor>;
  const f = dm.featuresOn(inp.x, B, inp.layout, mem, { cache });
  const logits = dm.core.head(f.features, B, N, true, mem, cache).logits!; // (B, K)
  const onehot = new Float32Array(B * K); // (B, K): L = sum over the batch of logit classIndex
  for (let b = 0; b < B; b++) onehot[b * K + classIndex] = 1;
  const dlogits = mem.take(B * K, false);
  dev.write(dlogits, onehot);
  const grads = new DeviceParamTable(dev, dm.model.params.specs, dm.model.params.count); // scratch: only the hook's results are kept
  dev.fill(grads.buffer, 0);
  const dA: DeviceTensor[] = new Array(c.depth);
  const span = (N - 1) * D + HD; // elements one head's (N, HD) rows span at row stride D
  dm.core.backward(cache, dlogits, grads, mem, {
    onAttnOutputGrad: (i, dattn) => {
      const qkv = cache.blocks[i]!.qkv; // (B*N, 3D)
      const out = mem.take(B * NH * N * N, false); // (B, NH, N, N)
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < NH; h++) {
          const dO = dev.view(dattn, b * N * D + h * HD, [span]); // (N, HD) rows of stride D
          const V = dev.view(qkv, b * N * 3 * D + 2 * D + h * HD, [(N - 1) * 3 * D + HD]); // (N, HD) rows of stride 3D
          dev.gemm(false, true, N, N, HD, 1, dO, D, V, 3 * D, 0, dev.view(out, (b * NH + h) * N * N, [N * N]), N);
        }
      }
      dA[i] = out;
    },
  });
  const read = async (t: DeviceTensor, shape: number[]) => new Tensor(shape, (await dev.read(t)).slice());
  const result: AttentionGradients = {
    logits: await read(logits, [B, K]),
    attentions: await Promise.all(cache.blocks.map((bc) => read(bc.probs, [B, NH, N, N]))),
    grads: await Promise.all(dA.map((g) => read(g, [B, NH, N, N]))),
  };
  grads.release();
  return result;
}
