/**
 * A host backend (native or reference) as a DeviceBackend: tensors are views of host
 * Float32Arrays / Int32Arrays, `write` copies in, `read` resolves to the memory itself (zero-copy,
 * valid until the next op that writes the tensor), and each op runs at once on the host backend.
 * So the device model code (models/device.ts, train/trainer.ts) runs on the CPU with the
 * same kernels, in the same order, as the host model: `--device cpu`.
 */
import { VitkitError } from '../errors.js';
import type { Backend } from './backend.js';
import type { DeviceBackend, DeviceCapabilities, DeviceDType, DeviceTensor, ThreadControl } from './device.js';
import { shapeSize } from './device.js';
import { OP_NAMES, type Ops } from './ops.js';

class HostTensor implements DeviceTensor {
  constructor(
    readonly backend: string,
    readonly owner: HostDevice,
    readonly data: Float32Array | Int32Array,
    readonly shape: readonly number[],
    readonly dtype: DeviceDType,
    readonly offset: number,
  ) {}
  get size(): number {
    return this.data.length;
  }
}

type HostOps = Ops<DeviceTensor>;

// the op methods are installed by the constructor from OP_NAMES (each unwraps its tensor arguments)
export interface HostDevice extends HostOps {}

export class HostDevice implements DeviceBackend {
  readonly name: string;
  readonly capabilities: DeviceCapabilities = { f16: false, maxElements: 2 ** 31 - 1 };
  readonly threads?: ThreadControl;

  constructor(readonly host: Backend) {
    this.name = host.name;
    if (host.threads) this.threads = host.threads;
    const self = this as unknown as Record<string, unknown>;
    for (const op of OP_NAMES) {
      const fn = (host as unknown as Record<string, (...a: unknown[]) => unknown>)[op];
      if (typeof fn !== 'function') throw new VitkitError(`Backend ${host.name} has no op ${op}`);
      self[op] = (...args: unknown[]) => fn.apply(host, args.map((a) => (a instanceof HostTensor ? this.f32(a, op) : a)));
    }
  }

  private own(t: DeviceTensor, op: string): HostTensor {
    if (!(t instanceof HostTensor) || t.owner !== this) {
      throw new VitkitError(`${this.name} ${op}: expected a tensor of this ${this.name} device but received one of backend ${String((t as { backend?: unknown })?.backend)}`);
    }
    return t;
  }

  private f32(t: DeviceTensor, op: string): Float32Array {
    const h = this.own(t, op);
    if (!(h.data instanceof Float32Array)) throw new VitkitError(`${this.name} ${op}: expected an f32 tensor but received ${h.dtype}`);
    return h.data;
  }

  /** the host memory of a tensor (no copy) */
  data(t: DeviceTensor): Float32Array {
    return this.f32(t, 'data');
  }

  alloc(shape: readonly number[], dtype: DeviceDType = 'f32'): DeviceTensor {
    if (dtype === 'f16') throw new VitkitError(`The ${this.name} device has no f16 tensors`);
    const n = shapeSize(shape);
    if (!Number.isSafeInteger(n) || n < 0 || n > this.capabilities.maxElements) {
      throw new VitkitError(`${this.name} alloc: expected a shape of at most ${this.capabilities.maxElements} elements but received (${shape.join(', ')})`);
    }
    return new HostTensor(this.name, this, dtype === 'i32' ? new Int32Array(n) : new Float32Array(n), [...shape], dtype, 0);
  }

  view(t: DeviceTensor, offset: number, shape: readonly number[]): DeviceTensor {
    const h = this.own(t, 'view'), n = shapeSize(shape);
    if (!(Number.isInteger(offset) && offset >= 0 && offset + n <= h.data.length)) {
      throw new VitkitError(`${this.name} view: elements [${offset}, ${offset + n}) are outside a tensor of ${h.data.length}`);
    }
    return new HostTensor(this.name, this, h.data.subarray(offset, offset + n), [...shape], h.dtype, h.offset + offset);
  }

  write(t: DeviceTensor, data: Float32Array | Int32Array): void {
    const h = this.own(t, 'write');
    if (data.length !== h.data.length) throw new VitkitError(`${this.name} write: the tensor has ${h.data.length} elements but the data ${data.length}`);
    if ((h.data instanceof Int32Array) !== (data instanceof Int32Array)) throw new VitkitError(`${this.name} write: the data type does not match the tensor's ${h.dtype}`);
    h.data.set(data as never);
  }

  async read(t: DeviceTensor): Promise<Float32Array> {
    return this.f32(t, 'read');
  }

  async readInt(t: DeviceTensor): Promise<Int32Array> {
    const h = this.own(t, 'readInt');
    if (!(h.data instanceof Int32Array)) throw new VitkitError(`${this.name} readInt: expected an i32 tensor but received ${h.dtype}`);
    return h.data;
  }

  /** a tensor over `data` itself (no copy): the cpu device shares a host model's weights */
  adopt(data: Float32Array, shape: readonly number[]): DeviceTensor {
    if (shapeSize(shape) !== data.length) throw new VitkitError(`${this.name} adopt: shape (${shape.join(', ')}) does not hold the ${data.length} values given`);
    return new HostTensor(this.name, this, data, [...shape], 'f32', 0);
  }

  release(): void {}
  flush(): void {}
  async sync(): Promise<void> {}
  dispose(): void {}

  copy(dst: DeviceTensor, src: DeviceTensor, n: number): void {
    const d = this.own(dst, 'copy'), s = this.own(src, 'copy');
    if (d.data.length < n || s.data.length < n) throw new VitkitError(`${this.name} copy: ${n} elements asked for tensors of ${d.data.length} and ${s.data.length}`);
    d.data.set(s.data.subarray(0, n) as never);
  }

  fill(t: DeviceTensor, value: number): void {
    this.own(t, 'fill').data.fill(value);
  }

  crossEntropyForward(loss: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void {
    const y = this.labels(targets, B, K, 'crossEntropyForward');
    const losses = new Float32Array(B), dl = new Float32Array(B * K); // (B), (B, K)
    const total = y ? this.host.crossEntropyForward(losses, dl, this.f32(logits, 'crossEntropyForward'), y, null, B, K, labelSmoothing, 1 / B) : NaN;
    this.f32(loss, 'crossEntropyForward')[0] = total / B;
  }

  crossEntropyBackward(dlogits: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void {
    const y = this.labels(targets, B, K, 'crossEntropyBackward');
    const d = this.f32(dlogits, 'crossEntropyBackward');
    if (!y) { d.fill(NaN, 0, B * K); return; }
    this.host.crossEntropyForward(new Float32Array(B), d, this.f32(logits, 'crossEntropyBackward'), y, null, B, K, labelSmoothing, 1 / B);
  }

  softCrossEntropyForward(loss: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void {
    const op = 'softCrossEntropyForward';
    const t = this.soft(targets, B, K, op);
    const losses = new Float32Array(B), dl = new Float32Array(B * K); // (B), (B, K)
    const total = this.host.crossEntropyForward(losses, dl, this.f32(logits, op), null, t, B, K, labelSmoothing, 1 / B);
    this.f32(loss, op)[0] = total / B;
  }

  softCrossEntropyBackward(dlogits: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K: number, labelSmoothing: number): void {
    const op = 'softCrossEntropyBackward';
    const t = this.soft(targets, B, K, op);
    this.host.crossEntropyForward(new Float32Array(B), this.f32(dlogits, op).subarray(0, B * K), this.f32(logits, op), null, t, B, K, labelSmoothing, 1 / B);
  }

  /** the soft targets (B, K) */
  private soft(t: DeviceTensor, B: number, K: number, op: string): Float32Array {
    const d = this.f32(t, op);
    if (d.length < B * K) throw new VitkitError(`${this.name} ${op}: targets have ${d.length} elements, expected at least ${B * K} (B*K)`);
    return d.subarray(0, B * K);
  }

  argmaxRows(out: DeviceTensor, inp: DeviceTensor, R: number, C: number): void {
    const h = this.own(out, 'argmaxRows');
    if (!(h.data instanceof Int32Array)) throw new VitkitError(`${this.name} argmaxRows: out must be an i32 tensor but is ${h.dtype}`);
    const x = this.f32(inp, 'argmaxRows');
    if (h.data.length < R || x.length < R * C) throw new VitkitError(`${this.name} argmaxRows: expected out of at least ${R} and inp of at least ${R * C} elements but received ${h.data.length} and ${x.length}`);
    for (let r = 0; r < R; r++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (x[r * C + c]! > x[r * C + best]!) best = c;
      h.data[r] = best;
    }
  }

  /** the labels (B), or null when one is outside [0, K) (the loss is then NaN, as the device op says) */
  private labels(t: DeviceTensor, B: number, K: number, op: string): Int32Array | null {
    const h = this.own(t, op);
    if (!(h.data instanceof Int32Array)) throw new VitkitError(`${this.name} ${op}: targets must be an i32 tensor`);
    const y = h.data.subarray(0, B);
    for (let b = 0; b < B; b++) if (!(y[b]! >= 0 && y[b]! < K)) return null;
    return y;
  }

  adamw(params: DeviceTensor, grads: DeviceTensor, expAvg: DeviceTensor, expAvgSq: DeviceTensor, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale?: DeviceTensor | null): void {
    let g = this.f32(grads, 'adamw');
    if (gradScale) {
      const s = this.f32(gradScale, 'adamw')[0]!;
      if (s !== 1) { const scaled = new Float32Array(n); this.host.scale(scaled, g, s, n); g = scaled; } // (n)
    }
    this.host.adamwStep(this.f32(params, 'adamw'), g, this.f32(expAvg, 'adamw'), this.f32(expAvgSq, 'adamw'), n, lr, beta1, beta2, eps, weightDecay, step);
  }

  gradNorm(norm: DeviceTensor, grads: DeviceTensor, n: number): void {
    this.f32(norm, 'gradNorm')[0] = Math.sqrt(this.host.sumSquares(this.f32(grads, 'gradNorm'), n));
  }

  clipGradNorm(grads: DeviceTensor, norm: DeviceTensor, n: number, maxNorm: number): void {
    const g = this.f32(grads, 'clipGradNorm');
    const v = Math.sqrt(this.host.sumSquares(g, n));
    this.f32(norm, 'clipGradNorm')[0] = v;
    const coef = maxNorm / (v + 1e-6);
    if (!(coef >= 1)) this.host.scale(g, g, Math.fround(coef), n);
  }
}
