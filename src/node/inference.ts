/**
 * Inference that does not block the event loop, and the pipeline-style one-liner `classify`.
 *
 * Design: one worker_threads Worker per loaded model. It loads the checkpoint itself, decodes and
 * preprocesses images (sharp, then the PIL-exact resampler, which is plain JS and would otherwise block
 * too), and runs the forward on the native backend; the caller's thread only posts requests and gets
 * outputs back with their buffers transferred (pixels sent by the caller are copied once, then transferred,
 * so the caller's arrays stay usable). Why a worker rather than Node-API async work in the addon: the
 * kernels stay exactly the same synchronous calls (results are bit-identical to `model.forward`), the whole
 * forward (dozens of kernel calls plus the host-side glue between them) leaves the main thread, not just
 * each kernel, and the core stays free of Node-only imports: worker_threads lives here, behind src/node/.
 * The native thread pool is one per process, shared by the worker and the main thread (calls serialize).
 *
 * The worker is unref'd whenever it has no request in flight, so a program exits by itself; `close()`
 * terminates it.
 */
import { resolveModelDir } from '../hub/resolve.js';
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, expected, shapeStr } from '../errors.js';
import { Tensor } from '../tensor.js';
import { softmax, topK } from '../nn/functional.js';
import { PRESETS } from '../models/presets.js';
import type { BackendName } from '../backend/index.js';
import { checkDeviceName, type DeviceName } from '../models/runner.js';
import { medicalDefaults, type MedicalOptions } from '../io/medical.js';

// ---- the worker protocol (types only; shared with inference_worker.ts) ----

export type WorkerInput =
  | { kind: 'path'; path: string }
  | { kind: 'bytes'; bytes: Uint8Array; name?: string }
  | { kind: 'pixels'; data: Float32Array; shape: number[] };

export interface WorkerInit {
  dir: string;
  backend?: BackendName;
  device?: DeviceName;
}

export type OutputKind = 'logits' | 'pre_logits' | 'features';

export interface WorkerRequest {
  id: number;
  inputs: WorkerInput[];
  output: OutputKind;
  /** the caller's --window / --frame (io/medical.ts medicalDefaults) at the time of the request */
  medical: MedicalOptions;
}

export interface ModelInfo {
  labels: string[];
  numClasses: number;
  embedDim: number;
  imgSize: number | [number, number];
  inChans: number;
  name: string;
  format: string;
}

type ErrorInfo = { message: string; vitkit: boolean; stack?: string };

export type WorkerReply =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'fatal'; error: ErrorInfo }
  | { type: 'result'; id: number; data: Float32Array; shape: number[] }
  | { type: 'error'; id: number; error: ErrorInfo };

// ---- model resolution: the seam for Hub ids ----

/** Turns a model spec (a directory, a preset name, later a Hub id) into what the loader takes. */
export type ModelResolver = (spec: string) => Promise<string> | string;

/** Default: an existing directory (or file inside one) or a preset name, as `loadModel` takes. */
export const localModelResolver: ModelResolver = (spec) => {
  if (existsSync(spec)) return path.resolve(spec);
  if (PRESETS[spec]) return spec;
  throw new VitkitError(`Model ${spec} not found: expected a checkpoint directory (config.json + model.safetensors) or a preset name`);
};

/** The default: local directories and presets as they are, anything shaped like `org/name[@rev]` or `hf-hub:…` from the Hub cache. */
export const hubModelResolver: ModelResolver = async (spec) => localModelResolver(await resolveModelDir(spec));

let resolver: ModelResolver = hubModelResolver;

/** Plug in a resolver for specs that are not local paths (the Hub helper's `resolveModelDir(spec)`). */
export function setModelResolver(r: ModelResolver | null): void {
  resolver = r ?? hubModelResolver;
}

// ---- the session ----

/** An image for the async API: a file path, encoded bytes (JPEG/PNG/WebP/GIF), or pixel_values already preprocessed. */
export type ImageInput = string | Uint8Array | Tensor;

export interface SessionOptions {
  /** 'native' (default) or 'reference' */
  backend?: BackendName;
  /** where the forward runs: 'cpu' (default: the backend above) or 'webgpu' (the worker opens its own WebGPU device) */
  device?: DeviceName;
  /** resolves the model spec; default `setModelResolver`'s, else local directories and presets */
  resolve?: ModelResolver;
}

function toWorkerInput(img: ImageInput, i: number): { input: WorkerInput; transfer: ArrayBuffer[] } {
  if (typeof img === 'string') return { input: { kind: 'path', path: img }, transfer: [] };
  if (img instanceof Tensor) {
    if (img.shape.length !== 3 && img.shape.length !== 4) {
      throw new VitkitError(`Expected pixel_values of shape (C, H, W) or (B, C, H, W) for image ${i} but received ${shapeStr(img.shape)}`);
    }
    const bad = img.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new VitkitError(`Expected finite pixel_values for image ${i} but element ${bad} is ${img.data[bad]}`);
    const data = img.data.slice(); // the caller keeps its tensor; this copy is transferred
    return { input: { kind: 'pixels', data, shape: [...img.shape] }, transfer: [data.buffer] };
  }
  if (img instanceof Uint8Array) {
    const bytes = new Uint8Array(img.length); // a copy with its own buffer (Buffer#slice is a view, often of a shared pool)
    bytes.set(img);
    return { input: { kind: 'bytes', bytes, name: `image ${i} (${img.length} bytes)` }, transfer: [bytes.buffer] };
  }
  throw new VitkitError(`Expected a file path, a Buffer/Uint8Array of image bytes or a pixel Tensor for image ${i} but received ${img === null ? 'null' : typeof img}`);
}

function toError(e: ErrorInfo): Error {
  const err = new VitkitError(e.vitkit ? e.message : `inference worker failed: ${e.message}`);
  if (!e.vitkit && e.stack) err.cause = e.stack;
  return err;
}

/** A model loaded in its own worker thread. Every method returns a promise; none blocks the event loop. */
export class InferenceSession {
  readonly info: ModelInfo;
  readonly source: string;
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (t: Tensor) => void; reject: (e: Error) => void }>();
  private closed = false;
  private failure: Error | null = null;

  private constructor(worker: Worker, info: ModelInfo, source: string) {
    this.worker = worker;
    this.info = info;
    this.source = source;
    worker.on('message', (m: WorkerReply) => this.onReply(m));
    worker.on('error', (e) => this.fail(new VitkitError(`inference worker for ${source} crashed: ${e.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new VitkitError(`inference worker for ${source} exited (code ${code})`));
    });
    worker.unref();
  }

  /** Loads `model` (a directory or preset; Hub ids through the resolver) in a new worker. */
  static async open(model: string, opts: SessionOptions = {}): Promise<InferenceSession> {
    if (typeof model !== 'string' || model === '') throw new VitkitError(`Expected a model directory or name for model but received ${JSON.stringify(model)}`);
    const dir = await (opts.resolve ?? resolver)(model);
    const init: WorkerInit = { dir, ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.device ? { device: checkDeviceName(opts.device, 'device') } : {}) };
    const worker = new Worker(new URL('./inference_worker.js', import.meta.url), { workerData: init });
    const info = await new Promise<ModelInfo>((resolve, reject) => {
      const onMsg = (m: WorkerReply) => {
        cleanup();
        if (m.type === 'ready') resolve(m.info);
        else if (m.type === 'fatal') {
          reject(toError(m.error));
          void worker.terminate();
        } else reject(new VitkitError(`inference worker for ${model} sent ${m.type} before it was ready`));
      };
      const onErr = (e: Error) => {
        cleanup();
        reject(new VitkitError(`inference worker for ${model} failed to start: ${e.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new VitkitError(`inference worker for ${model} exited (code ${code}) before loading the model`));
      };
      const cleanup = () => {
        worker.off('message', onMsg);
        worker.off('error', onErr);
        worker.off('exit', onExit);
      };
      worker.on('message', onMsg);
      worker.on('error', onErr);
      worker.on('exit', onExit);
    });
    return new InferenceSession(worker, info, model);
  }

  private onReply(m: WorkerReply): void {
    if (m.type !== 'result' && m.type !== 'error') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.type === 'result') p.resolve(new Tensor(m.shape, m.data));
    else p.reject(toError(m.error));
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private request(images: readonly ImageInput[], output: OutputKind): Promise<Tensor> {
    if (this.closed) return Promise.reject(new VitkitError(`The inference session for ${this.source} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    if (images.length === 0) return Promise.reject(new VitkitError('Expected at least one image but received none'));
    let inputs: WorkerInput[];
    const transfer: ArrayBuffer[] = [];
    try {
      inputs = images.map((img, i) => {
        const w = toWorkerInput(img, i);
        transfer.push(...w.transfer);
        return w.input;
      });
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const id = this.nextId++;
    return new Promise<Tensor>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref(); // keep the process alive until the answer arrives
      this.worker.postMessage({ id, inputs, output, medical: medicalDefaults() } satisfies WorkerRequest, transfer);
    });
  }

  /** logits (B, K) for the images (a 4-D pixel tensor counts B images) */
  forward(images: ImageInput | readonly ImageInput[]): Promise<Tensor> {
    return this.request(Array.isArray(images) ? images : [images as ImageInput], 'logits');
  }

  /** pre-logits embeddings (B, D), the head's input */
  embed(images: ImageInput | readonly ImageInput[]): Promise<Tensor> {
    return this.request(Array.isArray(images) ? images : [images as ImageInput], 'pre_logits');
  }

  /** forward_features (B, N, D) after the final norm */
  features(images: ImageInput | readonly ImageInput[]): Promise<Tensor> {
    return this.request(Array.isArray(images) ? images : [images as ImageInput], 'features');
  }

  /** top-k classes per image */
  async classify(images: readonly ImageInput[], topKCount = 5): Promise<Classification[][]> {
    if (!Number.isInteger(topKCount) || topKCount < 1) throw expected('an integer >= 1', 'the top-k count of classify', topKCount);
    const logits = await this.forward(images);
    const [B, K] = logits.shape as [number, number];
    const probs = softmax(logits.data, B, K); // (B, K)
    const out: Classification[][] = [];
    for (let b = 0; b < B; b++) {
      const row = probs.subarray(b * K, (b + 1) * K);
      out.push(topK(row, Math.min(topKCount, K)).map((j) => ({ label: this.info.labels[j] ?? `class_${j}`, index: j, score: row[j]! })));
    }
    return out;
  }

  /** Terminates the worker; pending requests are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new VitkitError(`The inference session for ${this.source} was closed`));
    await this.worker.terminate();
  }
}

export interface Classification {
  label: string;
  index: number;
  /** the softmax probability (transformers.js' name) */
  score: number;
}

export interface ClassifyOptions extends SessionOptions {
  /** a checkpoint directory or preset name (a Hub id once a resolver is set) */
  model: string;
  /** how many classes to return per image (default 5) */
  topK?: number;
}

const sessions = new Map<string, Promise<InferenceSession>>();

/** The cached session for a model spec (one worker per model, reused by `classify` / `embedImages`). */
export function session(model: string, opts: SessionOptions = {}): Promise<InferenceSession> {
  const key = `${opts.backend ?? 'native'}\u0000${opts.device ?? 'cpu'}\u0000${model}`;
  let s = sessions.get(key);
  if (!s) {
    s = InferenceSession.open(model, opts);
    sessions.set(key, s);
    s.catch(() => sessions.delete(key)); // a failed load is not cached
  }
  return s;
}

/** Closes every session `classify` / `embedImages` opened. */
export async function closeSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map(async (p) => (await p.catch(() => null))?.close()));
}

function isBatch(image: ImageInput | readonly ImageInput[]): boolean {
  return Array.isArray(image) || (image instanceof Tensor && image.shape.length === 4);
}

/**
 * `await classify(image, { model, topK })` -> [{ label, index, score }], the top-k classes, off the
 * main thread. One image (a path, Buffer, or (C, H, W) pixel tensor) gives one list; an array of images or
 * a (B, C, H, W) tensor gives one list per image.
 */
export function classify(image: string | Uint8Array, opts: ClassifyOptions): Promise<Classification[]>;
export function classify(image: Tensor | readonly ImageInput[], opts: ClassifyOptions): Promise<Classification[] | Classification[][]>;
export async function classify(image: ImageInput | readonly ImageInput[], opts: ClassifyOptions): Promise<Classification[] | Classification[][]> {
  if (!opts || typeof opts !== 'object') throw new VitkitError('Expected an options object { model } for classify but received ' + typeof opts);
  const k = opts.topK ?? 5;
  if (!Number.isInteger(k) || k < 1) throw new VitkitError(`Expected an integer >= 1 for topK but received ${JSON.stringify(opts.topK)}`);
  const s = await session(opts.model, opts);
  const res = await s.classify(Array.isArray(image) ? image : [image as ImageInput], k);
  return isBatch(image) ? res : res[0]!;
}

/** Pre-logits embeddings (B, D) off the main thread. */
export async function embedImages(images: ImageInput | readonly ImageInput[], opts: SessionOptions & { model: string }): Promise<Tensor> {
  const s = await session(opts.model, opts);
  return s.embed(images);
}
