/**
 * What a training run (loop.ts) needs from a trainer, on either device: steps, the schedule
 * position, the state to save, weights (and EMA weights) on the host for checkpoints, and a
 * forward for validation. `cpu` is the host Trainer; `webgpu` the DeviceTrainer, whose weights
 * come back to the host only when a checkpoint is written.
 */
import type { Tensor } from '../tensor.js';
import type { Model } from '../models/model.js';
import { createModel } from '../models/registry.js';
import type { DeviceViT } from '../models/device.js';
import { ParamTable } from '../nn/params.js';
import { Trainer, type StepResult, type TrainerOptions, type TrainerState } from './trainer.js';
import { DeviceTrainer } from './device_trainer.js';

export interface RunTrainer {
  readonly stepCount: number;
  /** lr of the next step */
  readonly lr: number;
  step(x: Tensor, target: Int32Array | Float32Array): Promise<StepResult>;
  /** restores optimizer and schedule state; the model's host weights are already the resumed ones */
  loadState(s: TrainerState): void;
  /** brings the weights into the host model and returns the optimizer state (for a checkpoint) */
  sync(): Promise<TrainerState>;
  /** a host model with the EMA weights as of the last sync(), or null without EMA */
  emaModel(): Model | null;
  /** the current weights' logits for validation (EMA weights with `ema`) */
  evalForward(ema: boolean): (x: Tensor) => Promise<Tensor>;
}

export class HostRunTrainer implements RunTrainer {
  readonly trainer: Trainer;
  constructor(model: Model, opts: TrainerOptions) {
    this.trainer = new Trainer(model, opts);
  }
  get stepCount(): number { return this.trainer.stepCount; }
  get lr(): number { return this.trainer.lr; }
  async step(x: Tensor, target: Int32Array | Float32Array): Promise<StepResult> { return this.trainer.step(x, target); }
  loadState(s: TrainerState): void { this.trainer.loadState(s); }
  async sync(): Promise<TrainerState> { return this.trainer.state(); }
  emaModel(): Model | null { return this.trainer.emaModel(); }
  evalForward(ema: boolean): (x: Tensor) => Promise<Tensor> {
    const m = ema ? this.trainer.emaModel()! : this.trainer.model;
    return async (x) => m.forward(x);
  }
}

export class DeviceRunTrainer implements RunTrainer {
  readonly trainer: DeviceTrainer;
  private ema: Model | null = null;
  constructor(readonly dm: DeviceViT, opts: TrainerOptions) {
    this.trainer = new DeviceTrainer(dm, opts);
  }
  get stepCount(): number { return this.trainer.stepCount; }
  get lr(): number { return this.trainer.lr; }
  step(x: Tensor, target: Int32Array | Float32Array): Promise<StepResult> { return this.trainer.step(x, target); }
  loadState(s: TrainerState): void {
    this.dm.upload();
    this.trainer.loadState(s);
  }
  async sync(): Promise<TrainerState> {
    await this.trainer.download();
    const s = await this.trainer.state();
    if (s.ema) {
      const host = this.dm.model;
      this.ema ??= createModel(host.config, { family: host.family, params: new ParamTable(host.params.specs), backend: host.backend });
      this.ema.params.buffer.set(s.ema);
    }
    return s;
  }
  emaModel(): Model | null { return this.ema; }
  evalForward(ema: boolean): (x: Tensor) => Promise<Tensor> {
    // labels do not matter for the logits
    return async (x) => (await this.trainer.evaluate(x, new Int32Array(x.shape[0]!), { ema })).logits;
  }
}
