/**
 * Inference on a chosen device, for the commands and the API: the model's computation on device
 * tensors (DeviceViT) over the device the device table opens (src/backend/devices.ts) — the host
 * kernels as the cpu device, or WebGPU. Every runner answers the same question — one forward, the
 * features and the head's outputs that were asked for — asynchronously.
 */
import { VitkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import type { Model } from './model.js';
import type { FeaturesOutput, HeadsOutput, VisionTransformer } from './vit.js';
import { DeviceViT } from './device.js';
import { openDevice, type Device, type DeviceKind, type DeviceName } from '../backend/devices.js';

export { DEVICE_NAMES, checkDeviceName, closeDevices, webgpuDevice, openDevice, type DeviceName, type DeviceKind, type Device } from '../backend/devices.js';

export interface ForwardAllOptions {
  hiddenStates?: boolean;
  attentions?: boolean;
  /** skip the classifier: the heads hold pre-logits only */
  preLogits?: boolean;
}

/** One model on one device. */
export interface Runner {
  /** the device it runs on (`auto` resolved) */
  readonly device: DeviceKind;
  /** one line naming the device (and adapter or kernels), for logs and metrics */
  readonly description: string;
  readonly model: Model;
  /** the model on the device (on cpu: the host model's own memory) */
  readonly deviceModel: DeviceViT;
  /** one forward: features (B, N, D) (+ hidden states, attentions) and the heads' outputs */
  forwardAll(x: Tensor, opts?: ForwardAllOptions): Promise<{ features: FeaturesOutput; heads: HeadsOutput }>;
  /** logits (B, K), or pre-logits (B, D) for a model without a head */
  forward(x: Tensor): Promise<Tensor>;
  /** the head input (B, D): embeddings */
  embed(x: Tensor): Promise<Tensor>;
  /** gives device memory back (the device stays open for other models) */
  release(): void;
}

class DeviceRunner implements Runner {
  readonly device: DeviceKind;
  readonly description: string;
  constructor(readonly model: Model, readonly deviceModel: DeviceViT, d: Device) {
    this.device = d.kind;
    this.description = d.description;
  }
  forwardAll(x: Tensor, opts: ForwardAllOptions = {}): Promise<{ features: FeaturesOutput; heads: HeadsOutput }> {
    return this.deviceModel.forwardAll(x, opts);
  }
  forward(x: Tensor): Promise<Tensor> {
    return this.deviceModel.forward(x);
  }
  embed(x: Tensor): Promise<Tensor> {
    return this.deviceModel.embed(x);
  }
  release(): void {
    this.deviceModel.release();
  }
}

/** A runner for `model` on `device` (on webgpu: uploads the weights; on cpu: shares them). */
export async function runnerFor(model: Model, device: DeviceName = 'cpu'): Promise<Runner> {
  if (model.family !== 'vit') throw new VitkitError(`A runner needs the vit family; this model is ${model.family}`);
  const d = await openDevice(device, model.backend);
  return new DeviceRunner(model, new DeviceViT(model as VisionTransformer, d.compute), d);
}
