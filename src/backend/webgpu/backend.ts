/// <reference types="@webgpu/types" />
/**
 * The WebGPU implementation of DeviceBackend (device.ts).
 *
 * Memory: every tensor is a view (element offset + shape) of a pooled GPUBuffer; `release`
 * returns the buffer to a size-class pool. Work: every op encodes one or more compute
 * dispatches into one open compute pass of one command encoder; nothing is submitted until the
 * host needs data (`read`, `sync`), writes data (`write` submits what precedes it, to keep queue
 * order) or calls `flush`. So a whole forward or training step between transfers is one
 * submission. Parameters travel in 256-byte slots of a uniform arena written once per submission;
 * element offsets of views are parameters too, and bindings start at 256-byte aligned offsets, so
 * views may start anywhere. Pipelines are cached per kernel and aliasing pattern.
 */
import { VitkitError } from '../../errors.js';
import type { DeviceBackend, DeviceCapabilities, DeviceDType, DeviceTensor } from '../device.js';
import { shapeSize } from '../device.js';
import * as K from './kernels.js';
import type { KernelDef } from './kernels.js';

// GPUBufferUsage / GPUMapMode values (the WebGPU spec's constants; Node has no globals for them)
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_UNIFORM = 0x0040;
const USAGE_STORAGE = 0x0080;
const MAP_READ = 0x0001;

const SLOT = 256; // bytes per dispatch's uniforms (minUniformBufferOffsetAlignment is at most 256)
const ARENA_SLOTS = 256; // dispatches per uniform buffer chunk
const ALIGN = 256; // storage bindings start at multiples of this (minStorageBufferOffsetAlignment <= 256)
const NORM_PARTIALS = 256; // workgroups of the first norm pass

interface Allocation {
  buffer: GPUBuffer;
  bytes: number;
  released: boolean;
}

class GpuTensor implements DeviceTensor {
  readonly backend = 'webgpu';
  constructor(
    readonly owner: WebGpuBackend,
    readonly alloc: Allocation,
    readonly shape: readonly number[],
    readonly dtype: DeviceDType,
    readonly offset: number,
    readonly size: number,
    readonly root: boolean,
  ) {}
}

interface ArenaChunk {
  buffer: GPUBuffer;
  host: ArrayBuffer;
}

/** round a byte size up to its pool size class: powers of two up to 64 MiB, then 16 MiB steps */
function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, bytes);
  if (b <= 64 << 20) return 2 ** Math.ceil(Math.log2(b));
  return Math.ceil(b / (16 << 20)) * (16 << 20);
}

function isDim(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

export interface WebGpuInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** a software adapter (adapter.info.isFallbackAdapter: SwiftShader) */
  fallback: boolean;
}

export class WebGpuBackend implements DeviceBackend {
  readonly name = 'webgpu';
  readonly capabilities: DeviceCapabilities;
  readonly info: WebGpuInfo;
  private device: GPUDevice | null;
  /** the GPU entry point the device came from (Dawn's instance lives for the whole process: index.ts) */
  private gpu: unknown;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly live = new Set<Allocation>();
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly arena: ArenaChunk[] = [];
  private arenaUsed = 0; // slots used in this submission
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dummyF32: GPUBuffer;
  private dummyI32: GPUBuffer;
  private normPartials: GpuTensor;
  private readonly errors: string[] = [];
  private readonly maxBinding: number;
  private readonly maxBuffer: number;
  /** submissions so far (for tests and the benchmark) */
  submissions = 0;
  /** dispatches so far */
  dispatches = 0;

  /**
   * Use createWebGpuBackend (index.ts). `device` is a GPUDevice; it is typed unknown so that the
   * published declarations need no WebGPU types.
   */
  constructor(gpuDevice: unknown, gpu: unknown, info: WebGpuInfo) {
    const device = gpuDevice as GPUDevice;
    this.device = device;
    this.gpu = gpu;
    this.info = info;
    this.maxBinding = device.limits.maxStorageBufferBindingSize;
    this.maxBuffer = device.limits.maxBufferSize;
    this.capabilities = { f16: false, maxElements: Math.floor(this.maxBuffer / 4) };
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => { this.errors.push(ev.error.message.split('\n')[0] ?? 'unknown error'); };
    this.dummyF32 = device.createBuffer({ size: 16, usage: USAGE_STORAGE });
    this.dummyI32 = device.createBuffer({ size: 16, usage: USAGE_STORAGE });
    this.normPartials = this.alloc([NORM_PARTIALS]) as GpuTensor;
  }

  private get dev(): GPUDevice {
    if (!this.device) throw new VitkitError('The WebGPU backend was disposed; create a new one');
    return this.device;
  }

  // ---- memory ---------------------------------------------------------------------------------

  alloc(shape: readonly number[], dtype: DeviceDType = 'f32'): DeviceTensor {
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new VitkitError(`Expected a shape of non-negative integers for webgpu alloc but received (${shape.join(', ')})`);
    }
    if (dtype === 'f16') throw new VitkitError('webgpu alloc: f16 tensors are not supported by this backend (capabilities.f16 is false); use f32');
    if (dtype !== 'f32' && dtype !== 'i32') throw new VitkitError(`Expected dtype f32 or i32 for webgpu alloc but received ${String(dtype)}`);
    const size = shapeSize(shape);
    const bytes = sizeClass(size * 4);
    if (bytes > this.maxBuffer) {
      throw new VitkitError(`webgpu alloc of (${shape.join(', ')}) needs ${size * 4} bytes, over this device's maxBufferSize ${this.maxBuffer}`);
    }
    const free = this.pool.get(bytes);
    const buffer = free?.pop() ?? this.dev.createBuffer({ size: bytes, usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
    const a: Allocation = { buffer, bytes, released: false };
    this.live.add(a);
    return new GpuTensor(this, a, [...shape], dtype, 0, size, true);
  }

  view(t: DeviceTensor, offset: number, shape: readonly number[]): DeviceTensor {
    const g = this.own(t, 'view', 't');
    const size = shapeSize(shape);
    if (!Number.isInteger(offset) || offset < 0 || !shape.every((d) => Number.isInteger(d) && d >= 0) || offset + size > g.size) {
      throw new VitkitError(`webgpu view: offset ${offset} and shape (${shape.join(', ')}) do not fit in a tensor of ${g.size} elements`);
    }
    return new GpuTensor(this, g.alloc, [...shape], g.dtype, g.offset + offset, size, false);
  }

  write(t: DeviceTensor, data: Float32Array | Int32Array): void {
    const g = this.own(t, 'write', 't');
    const wantInt = g.dtype === 'i32';
    if (wantInt !== (data instanceof Int32Array)) {
      throw new VitkitError(`webgpu write: a ${g.dtype} tensor takes ${wantInt ? 'an Int32Array' : 'a Float32Array'}, received ${data.constructor.name}`);
    }
    if (data.length !== g.size) {
      throw new VitkitError(`webgpu write: tensor (${g.shape.join(', ')}) has ${g.size} elements but the data has ${data.length}`);
    }
    if (g.size === 0) return;
    // queue.writeBuffer runs on the queue timeline: submit what was enqueued before it first
    if (this.encoder) this.flush();
    this.dev.queue.writeBuffer(g.alloc.buffer, g.offset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  async read(t: DeviceTensor): Promise<Float32Array> {
    const g = this.own(t, 'read', 't');
    if (g.dtype !== 'f32') throw new VitkitError(`webgpu read: tensor is ${g.dtype}; use readInt`);
    return new Float32Array(await this.readBytes(g));
  }

  async readInt(t: DeviceTensor): Promise<Int32Array> {
    const g = this.own(t, 'readInt', 't');
    if (g.dtype !== 'i32') throw new VitkitError(`webgpu readInt: tensor is ${g.dtype}; use read`);
    return new Int32Array(await this.readBytes(g));
  }

  private async readBytes(g: GpuTensor): Promise<ArrayBuffer> {
    const bytes = g.size * 4;
    if (bytes === 0) {
      await this.sync();
      return new ArrayBuffer(0);
    }
    const cls = sizeClass(bytes);
    const staging = this.stagingPool.get(cls)?.pop() ?? this.dev.createBuffer({ size: cls, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    this.endPass();
    this.encoderOpen().copyBufferToBuffer(g.alloc.buffer, g.offset * 4, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(MAP_READ, 0, bytes);
    } catch (e) {
      this.throwErrors();
      throw new VitkitError(`webgpu read failed: ${(e as Error).message.split('\n')[0]}`);
    }
    const out = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    if (this.device) {
      const list = this.stagingPool.get(cls) ?? [];
      list.push(staging);
      this.stagingPool.set(cls, list);
    } else {
      staging.destroy();
    }
    this.throwErrors();
    return out;
  }

  release(t: DeviceTensor): void {
    const g = this.own(t, 'release', 't');
    if (!g.root) throw new VitkitError('webgpu release takes the tensor that alloc returned, not a view of it');
    if (g.alloc.released) return;
    g.alloc.released = true;
    this.live.delete(g.alloc);
    // later commands are queued after earlier ones, so the buffer may be reused at once
    const list = this.pool.get(g.alloc.bytes) ?? [];
    list.push(g.alloc.buffer);
    this.pool.set(g.alloc.bytes, list);
  }

  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const q = this.dev.queue;
    const used = this.arenaUsed;
    for (let c = 0; c * ARENA_SLOTS < used; c++) {
      const n = Math.min(ARENA_SLOTS, used - c * ARENA_SLOTS);
      q.writeBuffer(this.arena[c]!.buffer, 0, this.arena[c]!.host, 0, n * SLOT);
    }
    q.submit([this.encoder.finish()]);
    this.encoder = null;
    this.arenaUsed = 0;
    this.submissions++;
  }

  async sync(): Promise<void> {
    this.flush();
    await this.dev.queue.onSubmittedWorkDone();
    this.throwErrors();
  }

  dispose(): void {
    if (!this.device) return;
    try {
      this.flush();
    } catch {
      // a failed submission must not stop the teardown
    }
    for (const list of [...this.pool.values(), ...this.stagingPool.values()]) for (const b of list) b.destroy();
    for (const a of this.live) a.buffer.destroy();
    for (const c of this.arena) c.buffer.destroy();
    this.pool.clear();
    this.stagingPool.clear();
    this.live.clear();
    this.arena.length = 0;
    this.pipelines.clear();
    this.dummyF32.destroy();
    this.dummyI32.destroy();
    this.device.onuncapturederror = null;
    this.device.destroy();
    this.device = null;
    this.gpu = null;
  }

  /** whether dispose() has run */
  get disposed(): boolean {
    return this.device === null && this.gpu === null;
  }

  private throwErrors(): void {
    if (this.errors.length === 0) return;
    const first = this.errors[0]!;
    const more = this.errors.length - 1;
    this.errors.length = 0;
    throw new VitkitError(`WebGPU reported an error: ${first}${more ? ` (and ${more} more)` : ''}`);
  }

  // ---- dispatch machinery ---------------------------------------------------------------------

  private own(t: DeviceTensor | null, op: string, arg: string): GpuTensor {
    if (!(t instanceof GpuTensor)) {
      throw new VitkitError(`webgpu ${op}: ${arg} is ${t === null ? 'null' : `a tensor of backend ${String((t as { backend?: unknown })?.backend)}`}, expected a tensor allocated by this webgpu backend`);
    }
    if (t.owner !== this) throw new VitkitError(`webgpu ${op}: ${arg} belongs to another webgpu backend instance`);
    if (t.alloc.released) throw new VitkitError(`webgpu ${op}: ${arg} was released`);
    return t;
  }

  /** checks an f32 argument holds at least `n` elements */
  private arg(op: string, name: string, t: DeviceTensor, n: number, what: string, dtype: DeviceDType = 'f32'): GpuTensor {
    const g = this.own(t, op, name);
    if (g.dtype !== dtype) throw new VitkitError(`webgpu ${op}: ${name} is ${g.dtype}, expected ${dtype}`);
    if (g.size < n) throw new VitkitError(`webgpu ${op}: ${name} has ${g.size} elements, expected at least ${n} (${what})`);
    return g;
  }

  private dims(op: string, dims: Record<string, number>): void {
    for (const [k, v] of Object.entries(dims)) {
      if (!isDim(v)) throw new VitkitError(`webgpu ${op}: expected ${k} to be a non-negative 32-bit integer but received ${v}`);
    }
  }

  private encoderOpen(): GPUCommandEncoder {
    this.encoder ??= this.dev.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private pipeline(k: KernelDef, slots: number[]): GPUComputePipeline {
    const key = `${k.name}|${slots.join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.dev.createShaderModule({ code: K.buildShader(k, slots), label: k.name });
      p = this.dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k.name });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Encodes one dispatch of kernel `k`: args in the kernel's order (`used` elements each; null
   * binds a dummy buffer the kernel does not touch), params by name, `groups` workgroups
   * (folded into 2-D past 65535 when `fold`).
   */
  private dispatch(k: KernelDef, args: { t: GpuTensor | null; used: number }[], params: Record<string, number>,
    groups: number, fold = true, groupsY = 1): void {
    if (groups === 0 || groupsY === 0) return;
    // bindings: one per distinct buffer, covering every view of it
    const bufs: GPUBuffer[] = [];
    const ranges: { lo: number; hi: number }[] = [];
    const slots: number[] = [];
    const elemOff: number[] = [];
    args.forEach((a, i) => {
      const buffer = a.t ? a.t.alloc.buffer : (k.args[i]!.int ? this.dummyI32 : this.dummyF32);
      const lo = a.t ? a.t.offset * 4 : 0;
      const hi = a.t ? lo + Math.max(1, a.used) * 4 : 16;
      let s = bufs.indexOf(buffer);
      if (s < 0) {
        s = bufs.length;
        bufs.push(buffer);
        ranges.push({ lo, hi });
      } else {
        const r = ranges[s]!;
        if (k.args[i]!.int !== k.args[slots.indexOf(s + 1)]!.int) {
          throw new VitkitError(`webgpu ${k.name}: ${k.args[i]!.name} shares a buffer with an argument of another dtype`);
        }
        r.lo = Math.min(r.lo, lo);
        r.hi = Math.max(r.hi, hi);
      }
      slots.push(s + 1);
    });
    const starts = ranges.map((r) => Math.floor(r.lo / ALIGN) * ALIGN);
    args.forEach((a, i) => { elemOff.push(a.t ? (a.t.offset * 4 - starts[slots[i]! - 1]!) / 4 : 0); });
    const entries: GPUBindGroupEntry[] = [];
    for (let s = 0; s < bufs.length; s++) {
      const size = Math.min(ranges[s]!.hi, bufs[s]!.size) - starts[s]!;
      if (size > this.maxBinding) {
        throw new VitkitError(`webgpu ${k.name}: one argument spans ${size} bytes, over this device's maxStorageBufferBindingSize ${this.maxBinding}`);
      }
      entries.push({ binding: s + 1, resource: { buffer: bufs[s]!, offset: starts[s]!, size: Math.ceil(size / 4) * 4 } });
    }
    // uniforms
    const slot = this.arenaUsed++;
    const chunkIdx = Math.floor(slot / ARENA_SLOTS);
    if (chunkIdx >= this.arena.length) {
      this.arena.push({ buffer: this.dev.createBuffer({ size: ARENA_SLOTS * SLOT, usage: USAGE_UNIFORM | USAGE_COPY_DST }), host: new ArrayBuffer(ARENA_SLOTS * SLOT) });
    }
    const chunk = this.arena[chunkIdx]!;
    const byteOff = (slot % ARENA_SLOTS) * SLOT;
    const u32 = new Uint32Array(chunk.host, byteOff, SLOT / 4);
    const i32 = new Int32Array(chunk.host, byteOff, SLOT / 4);
    const f32 = new Float32Array(chunk.host, byteOff, SLOT / 4);
    const fields = K.uniformFields(k);
    fields.forEach((f, i) => {
      const v = i < args.length ? elemOff[i]! : params[f.name];
      if (v === undefined) throw new Error(`internal: kernel ${k.name} parameter ${f.name} missing`);
      if (f.type === 'u32') u32[i] = v;
      else if (f.type === 'i32') i32[i] = v;
      else f32[i] = v;
    });
    const uniformBytes = Math.ceil((fields.length * 4) / 16) * 16;
    entries.push({ binding: 0, resource: { buffer: chunk.buffer, offset: byteOff, size: uniformBytes } });
    const pipe = this.pipeline(k, slots);
    const bg = this.dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    if (!this.pass) this.pass = this.encoderOpen().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bg);
    let gx = groups, gy = groupsY;
    if (fold && groups > 65535) {
      gx = 65535;
      gy = Math.ceil(groups / 65535);
    }
    if (gx > 65535 || gy > 65535) throw new VitkitError(`webgpu ${k.name}: the problem is too large for one dispatch (${groups} x ${groupsY} workgroups)`);
    this.pass.dispatchWorkgroups(gx, gy);
    this.dispatches++;
  }

  /** a scratch tensor for one op, returned to the pool once encoded (later work is queued after it) */
  private scratch(n: number): GpuTensor {
    return this.alloc([n]) as GpuTensor;
  }

  // ---- ops ------------------------------------------------------------------------------------

  gemm(transA: boolean, transB: boolean, M: number, N: number, K_: number, alpha: number,
    A: DeviceTensor, lda: number, B: DeviceTensor, ldb: number, beta: number, C: DeviceTensor, ldc: number): void {
    const op = 'gemm';
    this.dims(op, { M, N, K: K_, lda, ldb, ldc });
    if (lda < (transA ? M : K_) || ldb < (transB ? K_ : N) || ldc < N) {
      throw new VitkitError(`webgpu gemm: leading dimensions (lda ${lda}, ldb ${ldb}, ldc ${ldc}) too small for M ${M}, N ${N}, K ${K_}`);
    }
    if (M === 0 || N === 0) return;
    const needA = K_ === 0 ? 0 : transA ? (K_ - 1) * lda + M : (M - 1) * lda + K_;
    const needB = K_ === 0 ? 0 : transB ? (N - 1) * ldb + K_ : (K_ - 1) * ldb + N;
    const needC = (M - 1) * ldc + N;
    const a = this.arg(op, 'A', A, needA, 'op(A) (M, K) with lda');
    const b = this.arg(op, 'B', B, needB, 'op(B) (K, N) with ldb');
    const c = this.arg(op, 'C', C, needC, 'C (M, N) with ldc');
    this.gemmDispatch(a, needA, b, needB, c, needC, null, M, N, K_, lda, ldb, ldc, transA, transB, alpha, beta, -1);
  }

  private gemmDispatch(a: GpuTensor, needA: number, b: GpuTensor, needB: number, c: GpuTensor, needC: number, bias: GpuTensor | null,
    M: number, N: number, K_: number, lda: number, ldb: number, ldc: number, transA: boolean, transB: boolean,
    alpha: number, beta: number, act: number): void {
    const gx = Math.ceil(N / 64), gy = Math.ceil(M / 64);
    this.dispatch(K.GEMM, [{ t: a, used: needA }, { t: b, used: needB }, { t: c, used: needC }, { t: bias, used: N }], {
      M, N, K: K_, lda, ldb, ldc, transA: transA ? 1 : 0, transB: transB ? 1 : 0, alpha, beta, hasBias: bias ? 1 : 0, act,
    }, gx, false, gy);
  }

  linearForward(out: DeviceTensor, inp: DeviceTensor, weight: DeviceTensor, bias: DeviceTensor | null,
    M: number, N: number, K_: number, accumulate: boolean, act: number): void {
    const op = 'linearForward';
    this.dims(op, { M, N, K: K_ });
    if (act !== -1 && act !== 0 && act !== 1) throw new VitkitError(`webgpu linearForward: expected act -1, 0 or 1 but received ${act}`);
    if (accumulate && act !== -1) throw new VitkitError('webgpu linearForward: accumulate needs act -1 (no activation on a residual)');
    const o = this.arg(op, 'out', out, M * N, 'M*N');
    const x = this.arg(op, 'inp', inp, M * K_, 'M*K');
    const w = this.arg(op, 'weight', weight, N * K_, 'N*K');
    const bb = bias ? this.arg(op, 'bias', bias, N, 'N') : null;
    if (M === 0 || N === 0) return;
    this.gemmDispatch(x, M * K_, w, N * K_, o, M * N, bb, M, N, K_, K_, K_, N, false, true, 1, accumulate ? 1 : 0, act);
  }

  layernormForward(out: DeviceTensor, mean: DeviceTensor | null, rstd: DeviceTensor | null, inp: DeviceTensor,
    weight: DeviceTensor, bias: DeviceTensor, R: number, C: number, eps: number): void {
    const op = 'layernormForward';
    this.dims(op, { R, C });
    const o = this.arg(op, 'out', out, R * C, 'R*C');
    const mu = mean ? this.arg(op, 'mean', mean, R, 'R') : null;
    const rs = rstd ? this.arg(op, 'rstd', rstd, R, 'R') : null;
    if ((mean === null) !== (rstd === null)) throw new VitkitError('webgpu layernormForward: pass both mean and rstd, or neither');
    const x = this.arg(op, 'inp', inp, R * C, 'R*C');
    const w = this.arg(op, 'weight', weight, C, 'C');
    const b = this.arg(op, 'bias', bias, C, 'C');
    if (C === 0) return;
    this.dispatch(K.LN_FWD, [{ t: o, used: R * C }, { t: mu, used: R }, { t: rs, used: R }, { t: x, used: R * C }, { t: w, used: C }, { t: b, used: C }],
      { R, C, eps, saveStats: mu ? 1 : 0 }, R);
  }

  layernormBackward(dinp: DeviceTensor, dweight: DeviceTensor, dbias: DeviceTensor, dout: DeviceTensor,
    inp: DeviceTensor, weight: DeviceTensor, mean: DeviceTensor, rstd: DeviceTensor, R: number, C: number): void {
    const op = 'layernormBackward';
    this.dims(op, { R, C });
    const dx = this.arg(op, 'dinp', dinp, R * C, 'R*C');
    const dw = this.arg(op, 'dweight', dweight, C, 'C');
    const db = this.arg(op, 'dbias', dbias, C, 'C');
    const g = this.arg(op, 'dout', dout, R * C, 'R*C');
    const x = this.arg(op, 'inp', inp, R * C, 'R*C');
    const w = this.arg(op, 'weight', weight, C, 'C');
    const mu = this.arg(op, 'mean', mean, R, 'R');
    const rs = this.arg(op, 'rstd', rstd, R, 'R');
    if (R === 0 || C === 0) return;
    this.dispatch(K.LN_BWD_ROWS, [{ t: dx, used: R * C }, { t: g, used: R * C }, { t: x, used: R * C }, { t: w, used: C }, { t: mu, used: R }, { t: rs, used: R }],
      { R, C }, R);
    this.dispatch(K.LN_BWD_COLS, [{ t: dw, used: C }, { t: db, used: C }, { t: g, used: R * C }, { t: x, used: R * C }, { t: mu, used: R }, { t: rs, used: R }],
      { R, C }, Math.ceil(C / 16), false);
  }

  private elementwise(k: KernelDef, args: { t: GpuTensor | null; used: number }[], n: number, params: Record<string, number> = {}): void {
    if (n === 0) return;
    this.dispatch(k, args, { n, ...params }, Math.ceil(n / 256));
  }

  geluForward(out: DeviceTensor, inp: DeviceTensor, n: number, approx: number): void {
    const op = 'geluForward';
    this.dims(op, { n });
    this.approx(op, approx);
    this.elementwise(K.GELU_FWD, [{ t: this.arg(op, 'out', out, n, 'n'), used: n }, { t: this.arg(op, 'inp', inp, n, 'n'), used: n }], n, { approx });
  }

  geluBackward(dinp: DeviceTensor, inp: DeviceTensor, dout: DeviceTensor, n: number, approx: number): void {
    const op = 'geluBackward';
    this.dims(op, { n });
    this.approx(op, approx);
    this.elementwise(K.GELU_BWD, [{ t: this.arg(op, 'dinp', dinp, n, 'n'), used: n }, { t: this.arg(op, 'inp', inp, n, 'n'), used: n },
      { t: this.arg(op, 'dout', dout, n, 'n'), used: n }], n, { approx });
  }

  private approx(op: string, approx: number): void {
    if (approx !== 0 && approx !== 1) throw new VitkitError(`webgpu ${op}: expected approx 0 (erf) or 1 (tanh) but received ${approx}`);
  }

  softmaxForward(out: DeviceTensor, inp: DeviceTensor, R: number, C: number): void {
    const op = 'softmaxForward';
    this.dims(op, { R, C });
    const o = this.arg(op, 'out', out, R * C, 'R*C');
    const x = this.arg(op, 'inp', inp, R * C, 'R*C');
    if (C === 0) return;
    this.dispatch(K.SOFTMAX_FWD, [{ t: o, used: R * C }, { t: x, used: R * C }], { R, C }, R);
  }

  softmaxBackward(dinp: DeviceTensor, out: DeviceTensor, dout: DeviceTensor, R: number, C: number): void {
    const op = 'softmaxBackward';
    this.dims(op, { R, C });
    const dx = this.arg(op, 'dinp', dinp, R * C, 'R*C');
    const o = this.arg(op, 'out', out, R * C, 'R*C');
    const g = this.arg(op, 'dout', dout, R * C, 'R*C');
    if (C === 0) return;
    this.dispatch(K.SOFTMAX_BWD, [{ t: dx, used: R * C }, { t: o, used: R * C }, { t: g, used: R * C }], { R, C }, R);
  }

  private attnDims(op: string, B: number, N: number, NH: number, HD: number, scale: number, maxHD: number): void {
    this.dims(op, { B, N, NH, HD });
    if (HD > maxHD) throw new VitkitError(`webgpu ${op}: head dim ${HD} is over the supported ${maxHD}`);
    if (!Number.isFinite(scale)) throw new VitkitError(`webgpu ${op}: expected a finite scale but received ${scale}`);
  }

  attentionForward(out: DeviceTensor, probs: DeviceTensor | null, qkv: DeviceTensor,
    B: number, N: number, NH: number, HD: number, scale: number, causal = false): void {
    const op = 'attentionForward';
    this.attnDims(op, B, N, NH, HD, scale, probs ? 512 : 128);
    const D = NH * HD;
    const o = this.arg(op, 'out', out, B * N * D, 'B*N*D');
    const pr = probs ? this.arg(op, 'probs', probs, B * NH * N * N, 'B*NH*N*N') : null;
    const x = this.arg(op, 'qkv', qkv, B * N * 3 * D, 'B*N*3D');
    if (B * N * D === 0) return;
    const params = { B, N, NH, HD, scale, causal: causal ? 1 : 0 };
    if (pr) {
      this.dispatch(K.ATTN_PROBS, [{ t: o, used: B * N * D }, { t: pr, used: B * NH * N * N }, { t: x, used: B * N * 3 * D }], params, B * NH * N);
    } else {
      const qblocks = Math.ceil(N / 64);
      this.dispatch(K.ATTN_FLASH, [{ t: o, used: B * N * D }, { t: x, used: B * N * 3 * D }], { ...params, qblocks }, B * NH * qblocks);
    }
  }

  attentionBackward(dqkv: DeviceTensor, dout: DeviceTensor, qkv: DeviceTensor, probs: DeviceTensor,
    B: number, N: number, NH: number, HD: number, scale: number, causal = false): void {
    const op = 'attentionBackward';
    this.attnDims(op, B, N, NH, HD, scale, 512);
    const D = NH * HD;
    const dx = this.arg(op, 'dqkv', dqkv, B * N * 3 * D, 'B*N*3D');
    const g = this.arg(op, 'dout', dout, B * N * D, 'B*N*D');
    const x = this.arg(op, 'qkv', qkv, B * N * 3 * D, 'B*N*3D');
    const pr = this.arg(op, 'probs', probs, B * NH * N * N, 'B*NH*N*N');
    if (B * N * D === 0) return;
    const ds = this.scratch(B * NH * N * N); // (B, NH, N, N)
    const args = [{ t: dx, used: B * N * 3 * D }, { t: ds, used: B * NH * N * N }, { t: g, used: B * N * D },
      { t: x, used: B * N * 3 * D }, { t: pr, used: B * NH * N * N }];
    const params = { B, N, NH, HD, scale, causal: causal ? 1 : 0 };
    this.dispatch(K.ATTN_BWD_Q, args, params, B * NH * N);
    this.dispatch(K.ATTN_BWD_KV, args, params, B * NH * N);
    this.release(ds);
  }

  private patchDims(op: string, B: number, C: number, H: number, W: number, P: number): void {
    this.dims(op, { B, C, H, W, P });
    if (P === 0 || H % P !== 0 || W % P !== 0) {
      throw new VitkitError(`webgpu ${op}: image ${H}x${W} is not a whole number of ${P}x${P} patches`);
    }
  }

  im2colPatches(cols: DeviceTensor, inp: DeviceTensor, B: number, C: number, H: number, W: number, P: number): void {
    const op = 'im2colPatches';
    this.patchDims(op, B, C, H, W, P);
    const n = B * C * H * W;
    this.elementwise(K.IM2COL, [{ t: this.arg(op, 'cols', cols, n, 'B*GH*GW*C*P*P'), used: n }, { t: this.arg(op, 'inp', inp, n, 'B*C*H*W'), used: n }],
      n, { C, H, W, P });
  }

  col2imPatches(dinp: DeviceTensor, dcols: DeviceTensor, B: number, C: number, H: number, W: number, P: number): void {
    const op = 'col2imPatches';
    this.patchDims(op, B, C, H, W, P);
    const n = B * C * H * W;
    this.elementwise(K.COL2IM, [{ t: this.arg(op, 'dinp', dinp, n, 'B*C*H*W'), used: n }, { t: this.arg(op, 'dcols', dcols, n, 'B*GH*GW*C*P*P'), used: n }],
      n, { C, H, W, P });
  }

  /** out (n) = erf(inp (n)) with the GELU kernels' erf (not part of the op list; for its accuracy test) */
  erf(out: DeviceTensor, inp: DeviceTensor, n: number): void {
    this.dims('erf', { n });
    this.elementwise(K.ERF, [{ t: this.arg('erf', 'out', out, n, 'n'), used: n }, { t: this.arg('erf', 'inp', inp, n, 'n'), used: n }], n);
  }

  add(out: DeviceTensor, a: DeviceTensor, b: DeviceTensor, n: number): void {
    const op = 'add';
    this.dims(op, { n });
    this.elementwise(K.ADD, [{ t: this.arg(op, 'out', out, n, 'n'), used: n }, { t: this.arg(op, 'a', a, n, 'n'), used: n },
      { t: this.arg(op, 'b', b, n, 'n'), used: n }], n);
  }

  biasAdd(out: DeviceTensor, bias: DeviceTensor, R: number, C: number): void {
    const op = 'biasAdd';
    this.dims(op, { R, C });
    const o = this.arg(op, 'out', out, R * C, 'R*C');
    const b = this.arg(op, 'bias', bias, C, 'C');
    this.elementwise(K.BIAS_ADD, [{ t: o, used: R * C }, { t: b, used: C }], R * C, { C });
  }

  biasBackward(dbias: DeviceTensor, dout: DeviceTensor, R: number, C: number): void {
    const op = 'biasBackward';
    this.dims(op, { R, C });
    const db = this.arg(op, 'dbias', dbias, C, 'C');
    const g = this.arg(op, 'dout', dout, R * C, 'R*C');
    if (C === 0) return;
    this.dispatch(K.BIAS_BWD, [{ t: db, used: C }, { t: g, used: R * C }], { R, C }, Math.ceil(C / 16), false);
  }

  /** throws when two views of one allocation overlap in the ranges [off, off + n) an op touches */
  private disjoint(op: string, a: GpuTensor, an: string, aLo: number, aN: number, b: GpuTensor, bn: string, bLo: number, bN: number): void {
    if (a.alloc !== b.alloc || aN === 0 || bN === 0) return;
    const a0 = a.offset + aLo, b0 = b.offset + bLo;
    if (a0 < b0 + bN && b0 < a0 + aN) throw new VitkitError(`webgpu ${op}: ${an} and ${bn} overlap (views of one allocation must be disjoint here)`);
  }

  copyRows(out: DeviceTensor, inp: DeviceTensor, B: number, outN: number, outOff: number, inN: number, inOff: number,
    count: number, C: number, accumulate: boolean): void {
    const op = 'copyRows';
    this.dims(op, { B, outN, outOff, inN, inOff, count, C });
    if (outN > 0 && outOff + count > outN) {
      throw new VitkitError(`webgpu copyRows: rows ${outOff}..${outOff + count - 1} do not fit in outN ${outN} rows per image`);
    }
    const rows = (N: number, off: number) => (B === 0 || count === 0 ? 0 : (N > 0 ? (B - 1) * N : 0) + off + count);
    const needOut = rows(outN, outOff) * C, needInp = rows(inN, inOff) * C;
    const o = this.arg(op, 'out', out, needOut, 'rows (B-1)*outN + outOff + count of C');
    const x = this.arg(op, 'inp', inp, needInp, 'rows (B-1)*inN + inOff + count of C');
    if (needOut === 0 || C === 0) return;
    this.disjoint(op, o, 'out', 0, needOut, x, 'inp', 0, needInp);
    const reduce = outN === 0 ? 1 : 0;
    const n = (reduce ? 1 : B) * count * C;
    this.elementwise(K.COPY_ROWS, [{ t: o, used: needOut }, { t: x, used: needInp }], n,
      { B, outN, outOff, inN, inOff, count, C, acc: accumulate ? 1 : 0, reduce });
  }

  meanRows(out: DeviceTensor, inp: DeviceTensor, B: number, N: number, off: number, count: number, C: number): void {
    const op = 'meanRows';
    this.dims(op, { B, N, off, count, C });
    if (off + count > N) throw new VitkitError(`webgpu meanRows: rows ${off}..${off + count - 1} do not fit in N ${N}`);
    const o = this.arg(op, 'out', out, B * C, 'B*C');
    const x = this.arg(op, 'inp', inp, B * N * C, 'B*N*C');
    this.elementwise(K.MEAN_ROWS, [{ t: o, used: B * C }, { t: x, used: B * N * C }], B * C, { N, off, count, C });
  }

  meanRowsBackward(dinp: DeviceTensor, dout: DeviceTensor, B: number, N: number, off: number, count: number, C: number): void {
    const op = 'meanRowsBackward';
    this.dims(op, { B, N, off, count, C });
    if (off + count > N) throw new VitkitError(`webgpu meanRowsBackward: rows ${off}..${off + count - 1} do not fit in N ${N}`);
    const dx = this.arg(op, 'dinp', dinp, B * N * C, 'B*N*C');
    const g = this.arg(op, 'dout', dout, B * C, 'B*C');
    this.elementwise(K.MEAN_ROWS_BWD, [{ t: dx, used: B * N * C }, { t: g, used: B * C }], B * count * C, { N, off, count, C });
  }

  mulColumnsAdd(out: DeviceTensor, inp: DeviceTensor, gamma: DeviceTensor, R: number, C: number): void {
    const op = 'mulColumnsAdd';
    this.dims(op, { R, C });
    const o = this.arg(op, 'out', out, R * C, 'R*C');
    const x = this.arg(op, 'inp', inp, R * C, 'R*C');
    const g = this.arg(op, 'gamma', gamma, C, 'C');
    this.elementwise(K.MULCOL_ADD, [{ t: o, used: R * C }, { t: x, used: R * C }, { t: g, used: C }], R * C, { C });
  }

  mulColumnsBackward(dinp: DeviceTensor, dgamma: DeviceTensor, dout: DeviceTensor, inp: DeviceTensor, gamma: DeviceTensor,
    R: number, C: number): void {
    const op = 'mulColumnsBackward';
    this.dims(op, { R, C });
    const dx = this.arg(op, 'dinp', dinp, R * C, 'R*C');
    const dg = this.arg(op, 'dgamma', dgamma, C, 'C');
    const g = this.arg(op, 'dout', dout, R * C, 'R*C');
    const x = this.arg(op, 'inp', inp, R * C, 'R*C');
    const gm = this.arg(op, 'gamma', gamma, C, 'C');
    if (R === 0 || C === 0) return;
    // dgamma first: it reads dout, which dinp may overwrite in place
    this.dispatch(K.MULCOL_BWD_DG, [{ t: dg, used: C }, { t: g, used: R * C }, { t: x, used: R * C }], { R, C }, Math.ceil(C / 16), false);
    this.elementwise(K.MULCOL_BWD_DINP, [{ t: dx, used: R * C }, { t: g, used: R * C }, { t: gm, used: C }], R * C, { C });
  }

  private kind(op: string, kind: number): void {
    if (kind !== 0 && kind !== 1 && kind !== 2 && kind !== 3) {
      throw new VitkitError(`webgpu ${op}: expected kind 0 (GELU erf), 1 (GELU tanh), 2 (QuickGELU) or 3 (SiLU) but received ${kind}`);
    }
  }

  actForward(out: DeviceTensor, inp: DeviceTensor, n: number, kind: number): void {
    const op = 'actForward';
    this.dims(op, { n });
    this.kind(op, kind);
    this.elementwise(K.ACT_FWD, [{ t: this.arg(op, 'out', out, n, 'n'), used: n }, { t: this.arg(op, 'inp', inp, n, 'n'), used: n }], n, { kind });
  }

  actBackward(dinp: DeviceTensor, inp: DeviceTensor, dout: DeviceTensor, n: number, kind: number): void {
    const op = 'actBackward';
    this.dims(op, { n });
    this.kind(op, kind);
    this.elementwise(K.ACT_BWD, [{ t: this.arg(op, 'dinp', dinp, n, 'n'), used: n }, { t: this.arg(op, 'inp', inp, n, 'n'), used: n },
      { t: this.arg(op, 'dout', dout, n, 'n'), used: n }], n, { kind });
  }

  gluForward(out: DeviceTensor, inp: DeviceTensor, R: number, Hh: number, kind: number): void {
    const op = 'gluForward';
    this.dims(op, { R, Hh });
    this.kind(op, kind);
    const o = this.arg(op, 'out', out, R * Hh, 'R*Hh');
    const x = this.arg(op, 'inp', inp, R * 2 * Hh, 'R*2Hh');
    this.elementwise(K.GLU_FWD, [{ t: o, used: R * Hh }, { t: x, used: R * 2 * Hh }], R * Hh, { Hh, kind });
  }

  gluBackward(dinp: DeviceTensor, inp: DeviceTensor, dout: DeviceTensor, R: number, Hh: number, kind: number): void {
    const op = 'gluBackward';
    this.dims(op, { R, Hh });
    this.kind(op, kind);
    const dx = this.arg(op, 'dinp', dinp, R * 2 * Hh, 'R*2Hh');
    const x = this.arg(op, 'inp', inp, R * 2 * Hh, 'R*2Hh');
    const g = this.arg(op, 'dout', dout, R * Hh, 'R*Hh');
    this.elementwise(K.GLU_BWD, [{ t: dx, used: R * 2 * Hh }, { t: x, used: R * 2 * Hh }, { t: g, used: R * Hh }], R * Hh, { Hh, kind });
  }

  axpby(out: DeviceTensor, a: DeviceTensor, b: DeviceTensor, alpha: number, beta: number, n: number): void {
    const op = 'axpby';
    this.dims(op, { n });
    this.elementwise(K.AXPBY, [{ t: this.arg(op, 'out', out, n, 'n'), used: n }, { t: this.arg(op, 'a', a, n, 'n'), used: n },
      { t: this.arg(op, 'b', b, n, 'n'), used: n }], n, { alpha, beta });
  }

  private crossAttnArgs(op: string, B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void {
    this.dims(op, { B, Nq, Nk, NH, HD });
    if (HD > 512) throw new VitkitError(`webgpu ${op}: head dim ${HD} is over the supported 512`);
    if (!Number.isFinite(scale)) throw new VitkitError(`webgpu ${op}: expected a finite scale but received ${scale}`);
  }

  crossAttentionForward(out: DeviceTensor, probs: DeviceTensor | null, q: DeviceTensor, kv: DeviceTensor,
    B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void {
    const op = 'crossAttentionForward';
    this.crossAttnArgs(op, B, Nq, Nk, NH, HD, scale);
    const D = NH * HD, np = B * NH * Nq * Nk;
    const o = this.arg(op, 'out', out, B * Nq * D, 'B*Nq*D');
    const pr = probs ? this.arg(op, 'probs', probs, np, 'B*NH*Nq*Nk') : null;
    const x = this.arg(op, 'q', q, B * Nq * D, 'B*Nq*D');
    const y = this.arg(op, 'kv', kv, B * Nk * 2 * D, 'B*Nk*2D');
    if (B * Nq * D === 0) return;
    const p = pr ?? this.scratch(Math.max(1, np)); // (B, NH, Nq, Nk)
    this.dispatch(K.XATTN_FWD, [{ t: o, used: B * Nq * D }, { t: p, used: np }, { t: x, used: B * Nq * D }, { t: y, used: B * Nk * 2 * D }],
      { B, Nq, Nk, NH, HD, scale }, B * NH * Nq);
    if (!pr) this.release(p);
  }

  crossAttentionBackward(dq: DeviceTensor, dkv: DeviceTensor, dout: DeviceTensor, q: DeviceTensor, kv: DeviceTensor,
    probs: DeviceTensor, B: number, Nq: number, Nk: number, NH: number, HD: number, scale: number): void {
    const op = 'crossAttentionBackward';
    this.crossAttnArgs(op, B, Nq, Nk, NH, HD, scale);
    const D = NH * HD, np = B * NH * Nq * Nk;
    const gq = this.arg(op, 'dq', dq, B * Nq * D, 'B*Nq*D');
    const gkv = this.arg(op, 'dkv', dkv, B * Nk * 2 * D, 'B*Nk*2D');
    const g = this.arg(op, 'dout', dout, B * Nq * D, 'B*Nq*D');
    const x = this.arg(op, 'q', q, B * Nq * D, 'B*Nq*D');
    const y = this.arg(op, 'kv', kv, B * Nk * 2 * D, 'B*Nk*2D');
    const pr = this.arg(op, 'probs', probs, np, 'B*NH*Nq*Nk');
    if (D === 0 || B === 0) return;
    this.disjoint(op, gq, 'dq', 0, B * Nq * D, gkv, 'dkv', 0, B * Nk * 2 * D);
    if (Nk === 0) { this.fillRange(gq, B * Nq * D); return; }
    if (Nq === 0) { this.fillRange(gkv, B * Nk * 2 * D); return; }
    const ds = this.scratch(np); // (B, NH, Nq, Nk)
    const params = { B, Nq, Nk, NH, HD, scale };
    this.dispatch(K.XATTN_BWD_Q, [{ t: gq, used: B * Nq * D }, { t: ds, used: np }, { t: g, used: B * Nq * D }, { t: y, used: B * Nk * 2 * D },
      { t: pr, used: np }], params, B * NH * Nq);
    this.dispatch(K.XATTN_BWD_KV, [{ t: gkv, used: B * Nk * 2 * D }, { t: ds, used: np }, { t: g, used: B * Nq * D }, { t: x, used: B * Nq * D },
      { t: pr, used: np }], params, B * NH * Nk);
    this.release(ds);
  }

  /** t[0, n) = 0 */
  private fillRange(t: GpuTensor, n: number): void {
    this.elementwise(K.FILL, [{ t, used: n }], n, { value: 0 });
  }

  scale(out: DeviceTensor, inp: DeviceTensor, alpha: number, n: number): void {
    const op = 'scale';
    this.dims(op, { n });
    this.elementwise(K.SCALE, [{ t: this.arg(op, 'out', out, n, 'n'), used: n }, { t: this.arg(op, 'inp', inp, n, 'n'), used: n }], n, { alpha });
  }

  emaUpdate(ema: DeviceTensor, p: DeviceTensor, decay: number, n: number): void {
    const op = 'emaUpdate';
    this.dims(op, { n });
    this.elementwise(K.EMA, [{ t: this.arg(op, 'ema', ema, n, 'n'), used: n }, { t: this.arg(op, 'p', p, n, 'n'), used: n }], n,
      { decay, omd: 1 - decay });
  }

  copy(dst: DeviceTensor, src: DeviceTensor, n: number): void {
    const op = 'copy';
    this.dims(op, { n });
    const d = this.own(dst, op, 'dst'), s = this.own(src, op, 'src');
    if (d.dtype !== s.dtype) throw new VitkitError(`webgpu copy: dst is ${d.dtype} but src is ${s.dtype}`);
    this.arg(op, 'dst', dst, n, 'n', d.dtype);
    this.arg(op, 'src', src, n, 'n', s.dtype);
    if (n === 0) return;
    if (d.alloc === s.alloc && d.offset < s.offset + n && s.offset < d.offset + n) {
      throw new VitkitError('webgpu copy: dst and src overlap');
    }
    if (d.alloc === s.alloc) {
      // copyBufferToBuffer rejects a buffer copied onto itself: a kernel does it
      this.elementwise(d.dtype === 'i32' ? K.COPY_I32 : K.COPY, [{ t: d, used: n }, { t: s, used: n }], n);
      return;
    }
    // a buffer-to-buffer copy needs no pipeline and keeps bit patterns (i32 too)
    this.endPass();
    this.encoderOpen().copyBufferToBuffer(s.alloc.buffer, s.offset * 4, d.alloc.buffer, d.offset * 4, n * 4);
  }

  fill(t: DeviceTensor, value: number): void {
    const g = this.arg('fill', 't', t, 0, '');
    this.elementwise(K.FILL, [{ t: g, used: g.size }], g.size, { value });
  }

  private ceArgs(op: string, logits: DeviceTensor, targets: DeviceTensor, B: number, K_: number, labelSmoothing: number) {
    this.dims(op, { B, K: K_ });
    if (B === 0 || K_ === 0) throw new VitkitError(`webgpu ${op}: needs a non-empty batch and class count (B ${B}, K ${K_})`);
    if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new VitkitError(`webgpu ${op}: expected labelSmoothing in [0, 1] but received ${labelSmoothing}`);
    return { x: this.arg(op, 'logits', logits, B * K_, 'B*K'), y: this.arg(op, 'targets', targets, B, 'B', 'i32') };
  }

  crossEntropyForward(loss: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K_: number, labelSmoothing: number): void {
    const op = 'crossEntropyForward';
    const { x, y } = this.ceArgs(op, logits, targets, B, K_, labelSmoothing);
    const l = this.arg(op, 'loss', loss, 1, '1');
    this.dispatch(K.CE_FWD, [{ t: l, used: 1 }, { t: x, used: B * K_ }, { t: y, used: B }], { B, K: K_, smoothing: labelSmoothing }, 1);
  }

  crossEntropyBackward(dlogits: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K_: number, labelSmoothing: number): void {
    const op = 'crossEntropyBackward';
    const { x, y } = this.ceArgs(op, logits, targets, B, K_, labelSmoothing);
    const d = this.arg(op, 'dlogits', dlogits, B * K_, 'B*K');
    this.dispatch(K.CE_BWD, [{ t: d, used: B * K_ }, { t: x, used: B * K_ }, { t: y, used: B }], { B, K: K_, smoothing: labelSmoothing }, B);
  }

  private softCeArgs(op: string, logits: DeviceTensor, targets: DeviceTensor, B: number, K_: number, labelSmoothing: number) {
    this.dims(op, { B, K: K_ });
    if (B === 0 || K_ === 0) throw new VitkitError(`webgpu ${op}: needs a non-empty batch and class count (B ${B}, K ${K_})`);
    if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new VitkitError(`webgpu ${op}: expected labelSmoothing in [0, 1] but received ${labelSmoothing}`);
    return { x: this.arg(op, 'logits', logits, B * K_, 'B*K'), t: this.arg(op, 'targets', targets, B * K_, 'B*K') };
  }

  softCrossEntropyForward(loss: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K_: number, labelSmoothing: number): void {
    const op = 'softCrossEntropyForward';
    const { x, t } = this.softCeArgs(op, logits, targets, B, K_, labelSmoothing);
    const l = this.arg(op, 'loss', loss, 1, '1');
    this.dispatch(K.SOFT_CE_FWD, [{ t: l, used: 1 }, { t: x, used: B * K_ }, { t, used: B * K_ }], { B, K: K_, smoothing: labelSmoothing }, 1);
  }

  softCrossEntropyBackward(dlogits: DeviceTensor, logits: DeviceTensor, targets: DeviceTensor, B: number, K_: number, labelSmoothing: number): void {
    const op = 'softCrossEntropyBackward';
    const { x, t } = this.softCeArgs(op, logits, targets, B, K_, labelSmoothing);
    const d = this.arg(op, 'dlogits', dlogits, B * K_, 'B*K');
    this.dispatch(K.SOFT_CE_BWD, [{ t: d, used: B * K_ }, { t: x, used: B * K_ }, { t, used: B * K_ }], { B, K: K_, smoothing: labelSmoothing }, B);
  }

  argmaxRows(out: DeviceTensor, inp: DeviceTensor, R: number, C: number): void {
    const op = 'argmaxRows';
    this.dims(op, { R, C });
    if (C === 0) throw new VitkitError(`webgpu ${op}: needs at least one column (C ${C})`);
    const o = this.arg(op, 'out', out, R, 'R', 'i32'), x = this.arg(op, 'inp', inp, R * C, 'R*C');
    this.elementwise(K.ARGMAX_ROWS, [{ t: o, used: R }, { t: x, used: R * C }], R, { C });
  }

  adamw(params: DeviceTensor, grads: DeviceTensor, expAvg: DeviceTensor, expAvgSq: DeviceTensor, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: DeviceTensor | null = null): void {
    const op = 'adamw';
    this.dims(op, { n });
    if (!Number.isInteger(step) || step < 1) throw new VitkitError(`webgpu adamw: expected a 1-based integer step but received ${step}`);
    if (!(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0) || !(weightDecay >= 0)) {
      throw new VitkitError(`webgpu adamw: expected lr >= 0, betas in [0, 1), eps >= 0, weightDecay >= 0 but received lr ${lr}, betas [${beta1}, ${beta2}], eps ${eps}, weightDecay ${weightDecay}`);
    }
    const p = this.arg(op, 'params', params, n, 'n');
    const g = this.arg(op, 'grads', grads, n, 'n');
    const m = this.arg(op, 'expAvg', expAvg, n, 'n');
    const v = this.arg(op, 'expAvgSq', expAvgSq, n, 'n');
    const sc = gradScale ? this.arg(op, 'gradScale', gradScale, 1, '1') : null;
    const bc1 = 1 - beta1 ** step;
    this.elementwise(K.ADAMW, [{ t: p, used: n }, { t: g, used: n }, { t: m, used: n }, { t: v, used: n }, { t: sc, used: 1 }], n, {
      decay: 1 - lr * weightDecay, hasDecay: weightDecay !== 0 ? 1 : 0, omb1: 1 - beta1, b2: beta2, omb2: 1 - beta2,
      stepSize: lr / bc1, bc2sqrt: Math.sqrt(1 - beta2 ** step), eps, hasScale: sc ? 1 : 0,
    });
  }

  gradNorm(norm: DeviceTensor, grads: DeviceTensor, n: number): void {
    const op = 'gradNorm';
    this.dims(op, { n });
    const out = this.arg(op, 'norm', norm, 1, '1');
    const g = this.arg(op, 'grads', grads, n, 'n');
    const groups = Math.max(1, Math.min(NORM_PARTIALS, Math.ceil(n / 128)));
    this.dispatch(K.SUMSQ_PARTIAL, [{ t: this.normPartials, used: groups }, { t: g, used: n }], { n, stride: groups * 128 }, groups, false);
    this.dispatch(K.NORM_FINAL, [{ t: out, used: 1 }, { t: this.normPartials, used: groups }], { count: groups }, 1);
  }

  clipGradNorm(grads: DeviceTensor, norm: DeviceTensor, n: number, maxNorm: number): void {
    const op = 'clipGradNorm';
    if (!(maxNorm > 0)) throw new VitkitError(`webgpu clipGradNorm: expected maxNorm > 0 but received ${maxNorm}`);
    this.gradNorm(norm, grads, n);
    const g = this.arg(op, 'grads', grads, n, 'n');
    const nm = this.arg(op, 'norm', norm, 1, '1');
    this.elementwise(K.CLIP_SCALE, [{ t: g, used: n }, { t: nm, used: 1 }], n, { maxNorm });
  }
}
