/**
 * The model on a device: `DeviceViT` is the ViT computation (VitCore, vit.ts) over DeviceTensors
 * of a DeviceBackend (WebGPU, or a host backend through HostDevice), with the parameters in one
 * device allocation. Every op of a forward is enqueued without waiting; the host reads only the
 * outputs it asked for, after the whole forward (one submission on WebGPU).
 *
 *   const dev = await createWebGpuBackend();
 *   const gpuModel = new DeviceViT(model, dev);      // uploads the weights
 *   const logits = await gpuModel.forward(pixels);   // Tensor (B, K) on the host
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { DeviceBackend, DeviceTensor } from '../backend/device.js';
import { OP_NAMES } from '../backend/ops.js';
import type { Mem, Params } from '../nn/mem.js';
import type { ParamSpec } from '../nn/params.js';
import type { ParamTable } from '../nn/params.js';
import { dims, type TokenLayout, type ViTConfig } from './config.js';
import { VitCore, checkPixelShape, type ForwardCache, type FeaturesOutput, type HeadsOutput, type VisionTransformer } from './vit.js';
import type { Scratch } from './layers.js';

/** A backend that owns memory and implements the whole op list over its tensors (every DeviceBackend). */
export type ComputeDevice = DeviceBackend;

/** Named views of one device allocation, in a ParamTable's layout (parameters, gradients, moments). */
export class DeviceParamTable implements Params<DeviceTensor> {
  readonly buffer: DeviceTensor; // (P)
  private readonly views = new Map<string, DeviceTensor>();

  /** `buffer` (P) given: views of it (e.g. host memory adopted by the cpu device); else a new allocation */
  constructor(readonly dev: DeviceBackend, readonly specs: readonly ParamSpec[], readonly count: number, buffer?: DeviceTensor) {
    this.buffer = buffer ?? dev.alloc([count]);
    let off = 0;
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      this.views.set(s.name, dev.view(this.buffer, off, s.shape));
      off += n;
    }
  }

  /**
   * a table of `params`' layout holding its values: on a device whose memory is host memory (cpu,
   * `adopt`) the same memory, shared with `params` without a copy; elsewhere an uploaded copy
   */
  static upload(dev: DeviceBackend, params: ParamTable): DeviceParamTable {
    if (dev.adopt) return new DeviceParamTable(dev, params.specs, params.count, dev.adopt(params.buffer, [params.count]));
    const t = new DeviceParamTable(dev, params.specs, params.count);
    dev.write(t.buffer, params.buffer);
    return t;
  }

  get(name: string): DeviceTensor {
    const v = this.views.get(name);
    if (!v) throw new VitkitError(`no parameter named ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.views.has(name);
  }

  release(): void {
    this.dev.release(this.buffer);
  }
}

/**
 * Device buffers handed out again in the same order after each reset (a forward or a training
 * step asks for the same sizes every time): one allocation per slot, grown when a request is larger.
 */
export class DeviceArena {
  private readonly bufs: DeviceTensor[] = [];
  private next = 0;

  constructor(readonly dev: DeviceBackend) {}

  reset(): void {
    this.next = 0;
  }

  take(n: number, zero = true): DeviceTensor {
    let b = this.bufs[this.next];
    if (!b || b.size < n) {
      if (b) this.dev.release(b);
      b = this.dev.alloc([Math.max(n, 1)]);
      this.bufs[this.next] = b;
    }
    this.next++;
    const v = b.size === n ? b : this.dev.view(b, 0, [n]);
    if (zero && n > 0) this.dev.fill(v, 0);
    return v;
  }

  /** the arena as the model code's allocator */
  mem(): Mem<DeviceTensor> {
    return { take: (n, zero) => this.take(n, zero), sub: (t, off, n) => this.dev.view(t, off, [n]) };
  }

  release(): void {
    for (const b of this.bufs) this.dev.release(b);
    this.bufs.length = 0;
    this.next = 0;
  }
}

function deviceScratch(dev: DeviceBackend): Scratch<DeviceTensor> & { release(): void } {
  const bufs = new Map<string, DeviceTensor>();
  const f = ((name: string, n: number): DeviceTensor => {
    let b = bufs.get(name);
    if (!b || b.size < n) {
      if (b) dev.release(b);
      b = dev.alloc([Math.max(n, 1)]);
      bufs.set(name, b);
    }
    return b.size === n ? b : dev.view(b, 0, [n]);
  }) as Scratch<DeviceTensor> & { release(): void };
  f.release = () => { for (const b of bufs.values()) dev.release(b); bufs.clear(); };
  return f;
}

/** The outputs of a device forward, still on the device (valid until the next forward of this model). */
export interface DeviceFeatures {
  layout: TokenLayout;
  B: number;
  /** (B*N, D) after the final norm */
  features: DeviceTensor;
  hidden?: DeviceTensor[];
  attentions?: DeviceTensor[];
}

export class DeviceViT {
  readonly config: ViTConfig;
  readonly params: DeviceParamTable;
  readonly core: VitCore<DeviceTensor>;
  /** buffers of inference forwards (reset at each) */
  readonly arena: DeviceArena;
  private readonly scratch: ReturnType<typeof deviceScratch>;
  private readonly constants = new Map<string, DeviceTensor>();

  /**
   * Uploads `model`'s weights to `dev` (a snapshot: later host changes need `upload()`); on the cpu
   * device (HostDevice) the weights are the host model's own memory, shared, not copied.
   */
  constructor(readonly model: VisionTransformer, readonly dev: ComputeDevice) {
    if (model.family !== 'vit') throw new VitkitError(`A device model needs the vit family; received ${model.family}`);
    const missing = OP_NAMES.filter((op) => typeof (dev as unknown as Record<string, unknown>)[op] !== 'function');
    if (missing.length) throw new VitkitError(`The ${dev.name} device lacks ops the model needs: ${missing.join(', ')}`);
    this.config = model.config;
    this.params = DeviceParamTable.upload(dev, model.params);
    this.arena = new DeviceArena(dev);
    this.scratch = deviceScratch(dev);
    const self = this;
    this.core = new VitCore<DeviceTensor>(this.config, {
      be: dev,
      params: this.params,
      scratch: this.scratch,
      constant: (key, make) => this.constant(key, make),
      resampledPos(t, prefix, mem) {
        // pos' = [prefix rows] + M (m, n) @ pos grid (n, D): the resampler is linear
        const d = dims(self.config), D = d.D, n = d.posGridH * d.posGridW, m = t.numPatches;
        const pos = self.params.get('pos_embed');
        const out = mem.take((prefix + m) * D, false); // (prefix + m, D)
        if (prefix > 0) dev.copy(mem.sub(out, 0, prefix * D), mem.sub(pos, 0, prefix * D), prefix * D);
        const M = self.core.rt.constant(`resample:${t.gridH}x${t.gridW}`, () => self.core.resampleMatrix(t));
        dev.gemm(false, false, m, D, n, 1, M, n, mem.sub(pos, prefix * D, n * D), D, 0, mem.sub(out, prefix * D, m * D), D);
        return out;
      },
    });
  }

  private constant(key: string, make: () => Float32Array): DeviceTensor {
    let t = this.constants.get(key);
    if (!t) {
      const data = make();
      t = this.dev.alloc([data.length]);
      this.dev.write(t, data);
      this.constants.set(key, t);
    }
    return t;
  }

  /** Writes the host model's current weights to the device again. */
  upload(): void {
    if (this.shared) return;
    this.dev.write(this.params.buffer, this.model.params.buffer);
  }

  /** Reads the device weights into the host model (after training on the device); nothing to do when they are shared. */
  async download(): Promise<void> {
    if (this.shared) return;
    this.model.params.buffer.set(await this.dev.read(this.params.buffer));
  }

  /** whether the device weights are the host model's memory (the cpu device) */
  get shared(): boolean {
    return this.dev.adopt !== undefined;
  }

  /** pixel_values (B, C, H, W) on the host -> a device tensor from `mem`, and its token layout */
  input(x: Tensor, mem: Mem<DeviceTensor>): { x: DeviceTensor; B: number; layout: TokenLayout } {
    const layout = checkPixelShape(this.config, x.shape);
    const t = mem.take(x.data.length, false); // (B, C, H, W)
    this.dev.write(t, x.data);
    return { x: t, B: x.shape[0]!, layout };
  }

  /** Enqueues forward_features on a device input; nothing is read back. */
  featuresOn(x: DeviceTensor, B: number, layout: TokenLayout, mem: Mem<DeviceTensor>,
    opts: { hiddenStates?: boolean; attentions?: boolean; cache?: ForwardCache<DeviceTensor> } = {}): DeviceFeatures {
    const f = this.core.features(x, B, layout, mem, opts);
    const out: DeviceFeatures = { layout, B, features: f.features };
    if (f.hidden) out.hidden = f.hidden;
    if (f.attentions) out.attentions = f.attentions;
    return out;
  }

  private async readCopy(t: DeviceTensor): Promise<Float32Array> {
    return (await this.dev.read(t)).slice(); // a copy: the arena reuses the buffer at the next forward
  }

  /**
   * One forward on the device and one read of what was asked for: the features (B, N, D), hidden
   * states and attention maps on request, and the head's outputs (pre-logits, logits, DeiT's two heads).
   */
  async forwardAll(x: Tensor, opts: { hiddenStates?: boolean; attentions?: boolean; preLogits?: boolean } = {}): Promise<{ features: FeaturesOutput; heads: HeadsOutput }> {
    this.arena.reset();
    const mem = this.arena.mem();
    const c = this.config, K = c.num_classes, D = c.embed_dim, NH = c.num_heads;
    const inp = this.input(x, mem);
    const f = this.featuresOn(inp.x, inp.B, inp.layout, mem, opts);
    const B = inp.B, N = inp.layout.N;
    const r = this.core.head(f.features, B, N, !opts.preLogits, mem);
    // every read at once: one wait for the device, not one per tensor
    const read = (t: DeviceTensor, shape: number[]) => this.readCopy(t).then((d) => new Tensor(shape, d));
    const rowShape = (w: number) => (c.global_pool === '' ? [B, N, w] : [B, w]);
    const [feat, hidden, attentions, pre, logits, cls, dist] = await Promise.all([
      read(f.features, [B, N, D]),
      f.hidden ? Promise.all(f.hidden.map((h) => read(h, [B, N, D]))) : null,
      f.attentions ? Promise.all(f.attentions.map((a) => read(a, [B, NH, N, N]))) : null,
      read(r.pre, rowShape(D)),
      r.logits ? read(r.logits, rowShape(K)) : null,
      r.cls ? read(r.cls, [B, K]) : null,
      r.dist ? read(r.dist, [B, K]) : null,
    ]);
    const features: FeaturesOutput = { features: feat };
    if (hidden) features.hiddenStates = hidden;
    if (attentions) features.attentions = attentions;
    const heads: HeadsOutput = { preLogits: pre, logits };
    if (cls) heads.clsLogits = cls;
    if (dist) heads.distLogits = dist;
    return { features, heads };
  }

  /** forward_features on the device: (B, C, H, W) -> features (B, N, D), hidden states and attentions on request. */
  async forwardFeatures(x: Tensor, opts: { hiddenStates?: boolean; attentions?: boolean } = {}): Promise<FeaturesOutput> {
    return (await this.forwardAll(x, { ...opts, preLogits: true })).features;
  }

  /** The whole forward on the device: pre-logits, logits and (DeiT) both heads. */
  async forwardHeads(x: Tensor, opts: { preLogits?: boolean } = {}): Promise<HeadsOutput> {
    return (await this.forwardAll(x, opts)).heads;
  }

  /** (B, C, H, W) -> logits (B, K) (pre-logits (B, D) without a head) */
  async forward(x: Tensor): Promise<Tensor> {
    const h = await this.forwardHeads(x);
    return h.logits ?? h.preLogits;
  }

  /** Pooled embeddings (B, D): the head input (timm's forward_head(pre_logits=True)). */
  async embed(x: Tensor): Promise<Tensor> {
    return (await this.forwardHeads(x, { preLogits: true })).preLogits;
  }

  /** Gives every device buffer of this model back. */
  release(): void {
    this.arena.release();
    this.scratch.release();
    for (const t of this.constants.values()) this.dev.release(t);
    this.constants.clear();
    this.params.release();
  }
}
