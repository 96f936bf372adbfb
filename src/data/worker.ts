/**
 * A data worker thread: holds the datasets (shared memory, no copy) and the pipeline, makes the
 * batches it is sent and posts them back with their buffers transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { makeBatch, type BatchJob, type Pipeline } from './batch.js';
import type { Dataset } from './dataset.js';
import { setMedicalDefaults, type MedicalOptions } from '../io/medical.js';

interface Init {
  datasets: { train: Dataset | null; val: Dataset | null };
  pipeline: Pipeline;
  /** the main thread's --window / --frame: DICOM / 16-bit images read here as they are there */
  medical: MedicalOptions;
}

const init = workerData as Init;
setMedicalDefaults(init.medical);
const port = parentPort!;

port.on('message', (msg: { id: number; job: BatchJob }) => {
  const ds = init.datasets[msg.job.split];
  if (!ds) {
    port.postMessage({ id: msg.id, error: { message: `no ${msg.job.split} dataset in this worker`, vitkit: false } });
    return;
  }
  makeBatch(ds, init.pipeline, msg.job).then(
    (b) => port.postMessage({ id: msg.id, batch: b }, [b.x.buffer as ArrayBuffer, b.y.buffer as ArrayBuffer, ...(b.soft ? [b.soft.buffer as ArrayBuffer] : [])]),
    (e: Error) => port.postMessage({ id: msg.id, error: { message: e.message, vitkit: e.name === 'VitkitError' } }),
  );
});
