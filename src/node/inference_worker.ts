/**
 * The inference worker thread (see inference.ts): loads one model, then serves requests one at a time:
 * decode + preprocess images (sharp and the resampler run here, not on the caller's thread; DICOM /
 * 16-bit images with the window and frame each request carries from the caller), run the
 * forward on the native backend, post the output back with its buffer transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel, type LoadedModel } from '../checkpoint/checkpoint.js';
import { preprocessImage } from '../io/preprocess.js';
import type { MedicalOptions } from '../io/medical.js';
import { getBackend, type BackendName } from '../backend/index.js';
import { Tensor } from '../tensor.js';
import { runnerFor, type Runner } from '../models/runner.js';
import { imgHW } from '../models/config.js';
import { VitkitError, shapeStr } from '../errors.js';
import type { WorkerInit, WorkerRequest, WorkerReply, WorkerInput } from './inference.js';

const init = workerData as WorkerInit;
const port = parentPort!;

function errorReply(e: unknown): { message: string; vitkit: boolean; stack?: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  return { message: err.message, vitkit: err instanceof VitkitError || err.name === 'VitkitError', ...(err.stack ? { stack: err.stack } : {}) };
}

let loaded: LoadedModel;
let runner: Runner;
try {
  const backend = getBackend(init.backend as BackendName | undefined);
  loaded = loadModel(init.dir, { backend });
  runner = await runnerFor(loaded.model, init.device ?? 'cpu');
  const c = loaded.model.config;
  const ready: WorkerReply = {
    type: 'ready',
    info: { labels: loaded.labels, numClasses: c.num_classes, embedDim: c.embed_dim, imgSize: c.img_size, inChans: c.in_chans, name: loaded.name, format: loaded.format },
  };
  port.postMessage(ready);
} catch (e) {
  port.postMessage({ type: 'fatal', error: errorReply(e) } satisfies WorkerReply);
  process.exit(0);
}

/** inputs -> pixel_values (B, C, S, S) */
async function pixelsOf(inputs: WorkerInput[], medical: MedicalOptions): Promise<Tensor> {
  const { in_chans: C } = loaded.model.config;
  const [SH, SW] = imgHW(loaded.model.config);
  const per = C * SH * SW;
  let B = 0;
  for (const inp of inputs) B += inp.kind === 'pixels' ? (inp.shape.length === 4 ? inp.shape[0]! : 1) : 1;
  const out = new Float32Array(B * per); // (B, C, S, S)
  let b = 0;
  for (const inp of inputs) {
    if (inp.kind === 'pixels') {
      const shape = inp.shape;
      const n = shape.length === 4 ? shape[0]! : 1;
      const chw = shape.slice(-3);
      if (chw[0] !== C || chw[1] !== SH || chw[2] !== SW) {
        throw new VitkitError(`Expected pixel_values of shape (B, ${C}, ${SH}, ${SW}) or (${C}, ${SH}, ${SW}) for this model but received ${shapeStr(shape)}`);
      }
      out.set(inp.data, b * per);
      b += n;
    } else {
      const px = await preprocessImage(inp.kind === 'path' ? inp.path : inp.bytes, loaded.preprocess, inp.kind === 'path' ? inp.path : inp.name, medical);
      out.set(px, b * per);
      b += 1;
    }
  }
  return new Tensor([B, C, SH, SW], out);
}

async function serve(req: WorkerRequest): Promise<void> {
  try {
    const x = await pixelsOf(req.inputs, req.medical); // the caller's window, not this thread's (unset) defaults
    let y: Tensor;
    if (req.output === 'logits') y = await runner.forward(x);
    else if (req.output === 'pre_logits') y = await runner.embed(x);
    else y = (await runner.forwardAll(x, { preLogits: true })).features.features;
    const data = y.data.slice(); // never transfer a buffer the model may reuse
    port.postMessage({ type: 'result', id: req.id, data, shape: [...y.shape] } satisfies WorkerReply, [data.buffer]);
  } catch (e) {
    port.postMessage({ type: 'error', id: req.id, error: errorReply(e) } satisfies WorkerReply);
  }
}

// one request at a time, in arrival order (the forward is synchronous; this bounds memory too)
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => serve(req));
});
