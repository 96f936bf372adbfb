/**
 * The batch loader: turns an epoch (or the validation set) into batch jobs and runs them ahead of
 * the training step, on worker threads (`workers` > 0) or inline (`workers` 0). Batches come back
 * in order; up to `prefetch` jobs are in flight, so a worker prepares the next batches while the
 * main thread trains. Every batch is a pure function of its job, so the result does not depend on
 * the number of workers.
 */
import { Worker } from 'node:worker_threads';
import { VitkitError } from '../errors.js';
import { makeBatch, type Batch, type BatchJob, type Pipeline } from './batch.js';
import type { Dataset } from './dataset.js';
import type { AugmentSpec } from './augment.js';
import { batchRng, epochRng, permutation } from './rng.js';
import { medicalDefaults } from '../io/medical.js';

export interface LoaderOptions {
  train: Dataset | null;
  val: Dataset | null;
  pipeline: Pipeline;
  /** worker threads; 0 makes batches on the main thread */
  workers: number;
  /** jobs in flight (default 2 per worker, at least 2) */
  prefetch?: number;
  /** called once per unreadable image that was skipped */
  onSkip?: (file: string) => void;
}

interface Pending {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
}

/** The sample order of an epoch: a seeded permutation, or 0..n-1 without shuffling. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  if (!shuffle) return Int32Array.from({ length: n }, (_, i) => i);
  return permutation(n, epochRng(seed, epoch));
}

/** Batch index lists of an epoch (the last batch may be smaller). */
export function epochBatches(n: number, batchSize: number, seed: number, epoch: number, shuffle: boolean): Int32Array[] {
  const order = epochOrder(n, seed, epoch, shuffle);
  const out: Int32Array[] = [];
  for (let s = 0; s < n; s += batchSize) out.push(order.slice(s, Math.min(n, s + batchSize)));
  return out;
}

export class BatchLoader {
  private readonly opts: LoaderOptions;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private rr = 0;
  private readonly skippedSeen = new Set<string>();
  private closed = false;

  constructor(opts: LoaderOptions) {
    this.opts = opts;
    for (let w = 0; w < opts.workers; w++) {
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { datasets: { train: opts.train, val: opts.val }, pipeline: opts.pipeline, medical: medicalDefaults() }, // the main thread's --window / --frame
      });
      worker.on('message', (m: { id: number; batch?: Batch; error?: { message: string; vitkit: boolean } }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(m.error.vitkit ? new VitkitError(m.error.message) : new Error(m.error.message));
        else p.resolve(m.batch!);
      });
      worker.on('error', (e) => this.failAll(e));
      this.workers.push(worker);
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private submit(job: BatchJob): Promise<Batch> {
    if (this.closed) return Promise.reject(new Error('BatchLoader is closed'));
    if (this.workers.length === 0) {
      const ds = job.split === 'train' ? this.opts.train : this.opts.val;
      return makeBatch(ds!, this.opts.pipeline, job);
    }
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise<Batch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, job });
    });
  }

  /** Run jobs with read-ahead, yielding batches in job order. */
  async *run(jobs: BatchJob[]): AsyncGenerator<Batch> {
    const depth = Math.max(2, this.opts.prefetch ?? 2 * Math.max(1, this.workers.length));
    const inflight: Promise<Batch>[] = [];
    let next = 0;
    const push = () => {
      const p = this.submit(jobs[next++]!);
      p.catch(() => {}); // observed when awaited; never an unhandled rejection if the consumer stops early
      inflight.push(p);
    };
    while (next < jobs.length && inflight.length < depth) push();
    while (inflight.length) {
      const b = await inflight.shift()!;
      if (next < jobs.length) push();
      for (const f of b.skipped) {
        if (!this.skippedSeen.has(f)) {
          this.skippedSeen.add(f);
          this.opts.onSkip?.(f);
        }
      }
      yield b;
    }
  }

  /** The training batches of `epoch` from batch `start` on. */
  trainEpoch(epoch: number, o: { batchSize: number; seed: number; shuffle: boolean; augment: AugmentSpec | null; start?: number }): AsyncGenerator<Batch> {
    const ds = this.opts.train;
    if (!ds) throw new Error('BatchLoader has no training set');
    const batches = epochBatches(ds.n, o.batchSize, o.seed, epoch, o.shuffle);
    const jobs: BatchJob[] = [];
    for (let b = o.start ?? 0; b < batches.length; b++) {
      jobs.push({ split: 'train', indices: batches[b]!, augment: o.augment, seed: batchRng(o.seed, epoch, b).state });
    }
    return this.run(jobs);
  }

  /** The validation set in order, with the eval transform. */
  evalBatches(batchSize: number): AsyncGenerator<Batch> {
    const ds = this.opts.val;
    if (!ds) throw new Error('BatchLoader has no validation set');
    const jobs: BatchJob[] = [];
    for (let s = 0; s < ds.n; s += batchSize) {
      jobs.push({ split: 'val', indices: Int32Array.from({ length: Math.min(batchSize, ds.n - s) }, (_, k) => s + k), augment: null, seed: 0 });
    }
    return this.run(jobs);
  }

  /** The validation set's name, for messages. */
  get valName(): string {
    return this.opts.val?.name ?? 'the validation set';
  }

  /** How many distinct images were skipped as unreadable so far. */
  get skippedCount(): number {
    return this.skippedSeen.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('BatchLoader closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
