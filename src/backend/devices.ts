/**
 * The device table: the one place that knows the names users give to `--device` and `device:`
 * (`cpu`, `webgpu`, `auto`), opens the device a name stands for, describes it in one line, and owns
 * the process's WebGPU device and its lifetime. Every consumer (runners, the trainer, explain, the
 * CLI) asks `openDevice` and computes on the ComputeDevice it returns; none branches on the name.
 *
 *   cpu     the host backend (native kernels, or the plain-TypeScript reference) as a device
 *           (HostDevice: zero-copy, the host model's own memory)
 *   webgpu  the process's WebGPU device (opened on first use, shared; `closeDevices()` gives it back)
 *   auto    webgpu when a hardware adapter exists, else cpu. A software adapter (SwiftShader,
 *           `isFallbackAdapter`) is slower than the CPU kernels, so auto passes it over unless
 *           VITKIT_WEBGPU_ALLOW_FALLBACK=1 (for tests on machines without a GPU).
 */
import { VitkitError } from '../errors.js';
import type { Backend } from './backend.js';
import type { DeviceBackend } from './device.js';
import { HostDevice } from './host_device.js';
import { getBackend } from './select.js';
import { createWebGpuBackend, describeAdapter } from './webgpu/index.js';
import type { WebGpuBackend } from './webgpu/backend.js';

export const DEVICE_NAMES = ['cpu', 'webgpu', 'auto'] as const;
/** what a user may ask for */
export type DeviceName = (typeof DEVICE_NAMES)[number];
/** what a device is once opened (`auto` resolves to one of these) */
export type DeviceKind = Exclude<DeviceName, 'auto'>;

/** An opened device: what to compute on, and how to say which it is. */
export interface Device {
  readonly kind: DeviceKind;
  readonly compute: DeviceBackend;
  /** one line for logs and metrics, e.g. "cpu (native avx512 kernels, 2 threads)" */
  readonly description: string;
}

export function checkDeviceName(name: string, option = '--device'): DeviceName {
  if (!(DEVICE_NAMES as readonly string[]).includes(name)) {
    throw new VitkitError(`Expected ${option} to be one of ${DEVICE_NAMES.join(', ')} but received ${JSON.stringify(name)}`);
  }
  return name as DeviceName;
}

let webgpu: Promise<WebGpuBackend> | null = null;

/** The process's WebGPU device (opened on first use; a clear error where `webgpu` or an adapter is missing). */
export async function webgpuDevice(): Promise<DeviceBackend> {
  return openWebGpu();
}

async function openWebGpu(): Promise<WebGpuBackend> {
  webgpu ??= createWebGpuBackend();
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

/** "native avx512 kernels, 2 threads" / "plain-TypeScript reference kernels" */
function describeHost(host: Backend): string {
  const isa = (host as { gemmIsa?: () => string }).gemmIsa?.();
  const kernels = host.name === 'reference' ? 'plain-TypeScript reference kernels' : `${host.name}${isa ? ` ${isa}` : ''} kernels`;
  const t = host.threads?.getThreads();
  return t === undefined ? kernels : `${kernels}, ${t} thread${t === 1 ? '' : 's'}`;
}

const hostDevices = new WeakMap<Backend, HostDevice>();

/** The cpu device over a host backend (one per backend object). */
export function cpuDevice(host: Backend = getBackend()): HostDevice {
  let d = hostDevices.get(host);
  if (!d) {
    d = new HostDevice(host);
    hostDevices.set(host, d);
  }
  return d;
}

function cpu(host: Backend | undefined, note = ''): Device {
  const h = host ?? getBackend();
  return { kind: 'cpu', compute: cpuDevice(h), description: `cpu (${describeHost(h)})${note}` };
}

/** The cpu device over `host`, for the computations that run on the host backend directly (one line describes it). */
export function hostDevice(host?: Backend): Device {
  return cpu(host);
}

type DeviceListener = (d: Device, role?: string) => void;
const listeners = new Set<DeviceListener>();

/**
 * Calls `fn` with every device a computation is about to run on (each `openDevice`, and each
 * `announceDevice` of a host computation); the CLI prints each once. Returns the
 * function that removes the listener.
 */
export function onDevice(fn: DeviceListener): () => void {
  listeners.add(fn);
  return () => { listeners.delete(fn); };
}

/**
 * Tells the listeners that a computation runs on `d` (openDevice does this itself); `role` names
 * the part of a model that runs there when the parts run on different devices ("the text tower").
 */
export function announceDevice(d: Device, role?: string): Device {
  for (const fn of listeners) fn(d, role);
  return d;
}

function allowFallback(): boolean {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  return env?.['VITKIT_WEBGPU_ALLOW_FALLBACK'] === '1';
}

/**
 * Opens the device `name` stands for. `host` is the host backend the cpu device runs on (a
 * model's `backend`; default: the process's). `auto` never fails: where WebGPU cannot be had, it
 * is cpu, and the description says why.
 */
export async function openDevice(name: DeviceName = 'cpu', host?: Backend): Promise<Device> {
  return announceDevice(await resolveDevice(checkDeviceName(name, 'device'), host));
}

async function resolveDevice(name: DeviceName, host: Backend | undefined): Promise<Device> {
  if (name === 'cpu') return cpu(host);
  if (name === 'webgpu') {
    const g = await openWebGpu();
    return { kind: 'webgpu', compute: g, description: `webgpu (${describeAdapter(g.info)})` };
  }
  const opened = webgpu !== null; // another consumer's device stays open whatever auto decides
  let g: WebGpuBackend;
  try {
    g = await openWebGpu();
  } catch (e) {
    if (!(e instanceof VitkitError)) throw e;
    // the reason without the set-up advice that `--device webgpu` gives: auto did not ask for WebGPU
    const why = e.message.replace(/^--device webgpu(: | needs )/, (_m, s: string) => (s === ': ' ? '' : 'webgpu needs ')).replace(/ \(.*$/, '');
    return cpu(host, `; auto: ${why}`);
  }
  if (g.info.fallback && !allowFallback()) {
    if (!opened) await closeDevices(); // opened only to look at the adapter: give it back
    return cpu(host, `; auto: the only WebGPU adapter is a software fallback (${g.info.description || g.info.device}), slower than the CPU`);
  }
  return { kind: 'webgpu', compute: g, description: `webgpu (${describeAdapter(g.info)})` };
}
