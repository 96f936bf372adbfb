/**
 * Inference on a chosen device, for the commands and the API: `cpu` runs the host model (native
 * kernels), `webgpu` the same model code on a WebGPU device (DeviceViT). Both answer the same
 * question — one forward, the features and the head's outputs that were asked for — asynchronously.
 * The WebGPU device is opened once per process and shared; `closeDevices()` gives it back.
 */
import { VitkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import type { Model } from './model.js';
import type { FeaturesOutput, HeadsOutput, VisionTransformer } from './vit.js';
import { DeviceViT, type ComputeDevice } from './device.js';
import { createWebGpuBackend } from '../backend/webgpu/index.js';

export const DEVICE_NAMES = ['cpu', 'webgpu'] as const;
export type DeviceName = (typeof DEVICE_NAMES)[number];

export interface ForwardAllOptions {
  hiddenStates?: boolean;
  attentions?: boolean;
  /** skip the classifier: the heads hold pre-logits only */
  preLogits?: boolean;
}

/** One model on one device. */
export interface Runner {
  readonly device: DeviceName;
  readonly model: Model;
  /** the model on the device (null on cpu) */
  readonly deviceModel: DeviceViT | null;
  /** one forward: features (B, N, D) (+ hidden states, attentions) and the heads' outputs */
  forwardAll(x: Tensor, opts?: ForwardAllOptions): Promise<{ features: FeaturesOutput; heads: HeadsOutput }>;
  /** logits (B, K), or pre-logits (B, D) for a model without a head */
  forward(x: Tensor): Promise<Tensor>;
  /** the head input (B, D): embeddings */
  embed(x: Tensor): Promise<Tensor>;
  /** gives device memory back (the device stays open for other models) */
  release(): void;
}

let webgpu: Promise<ComputeDevice> | null = null;

/** The process's WebGPU device (opened on first use; a clear error where `webgpu` or an adapter is missing). */
export async function webgpuDevice(): Promise<ComputeDevice> {
  webgpu ??= createWebGpuBackend() as unknown as Promise<ComputeDevice>;
  try {
    return await webgpu;
  } catch (e) {
    webgpu = null;
    throw e;
  }
}

/** Gives the process's devices back, so that it exits promptly. */
export async function closeDevices(): Promise<void> {
  if (!webgpu) return;
  const p = webgpu;
  webgpu = null;
  try { (await p).dispose(); } catch { /* it never opened */ }
}

export function checkDeviceName(name: string, option = '--device'): DeviceName {
  if (!(DEVICE_NAMES as readonly string[]).includes(name)) {
    throw new VitkitError(`Expected ${option} to be one of ${DEVICE_NAMES.join(', ')} but received ${JSON.stringify(name)}`);
  }
  return name as DeviceName;
}

class HostRunner implements Runner {
  readonly device = 'cpu' as const;
  readonly deviceModel = null;
  constructor(readonly model: Model) {}
  async forwardAll(x: Tensor, opts: ForwardAllOptions = {}): Promise<{ features: FeaturesOutput; heads: HeadsOutput }> {
    const f = this.model.forwardFeatures(x, { ...(opts.hiddenStates ? { hiddenStates: true } : {}), ...(opts.attentions ? { attentions: true } : {}) });
    return { features: f, heads: this.model.forwardHeads(f.features, opts.preLogits ? { preLogits: true } : {}) };
  }
  async forward(x: Tensor): Promise<Tensor> {
    return this.model.forward(x);
  }
  async embed(x: Tensor): Promise<Tensor> {
    return this.model.forwardHead(this.model.forwardFeatures(x).features, { preLogits: true });
  }
  release(): void {}
}

class DeviceRunner implements Runner {
  readonly device = 'webgpu' as const;
  constructor(readonly model: Model, readonly dm: DeviceViT) {}
  get deviceModel(): DeviceViT { return this.dm; }
  forwardAll(x: Tensor, opts: ForwardAllOptions = {}): Promise<{ features: FeaturesOutput; heads: HeadsOutput }> {
    return this.dm.forwardAll(x, opts);
  }
  forward(x: Tensor): Promise<Tensor> {
    return this.dm.forward(x);
  }
  embed(x: Tensor): Promise<Tensor> {
    return this.dm.embed(x);
  }
  release(): void {
    this.dm.release();
  }
}

/** A runner for `model` on `device` (uploads the weights to a GPU). */
export async function runnerFor(model: Model, device: DeviceName = 'cpu'): Promise<Runner> {
  if (device === 'cpu') return new HostRunner(model);
  if (model.family !== 'vit') throw new VitkitError(`--device webgpu runs the ViT family; this model is ${model.family}`);
  return new DeviceRunner(model, new DeviceViT(model as VisionTransformer, await webgpuDevice()));
}
