/// <reference types="@webgpu/types" />
/**
 * Getting a WebGPU device: `navigator.gpu` in a browser (or any runtime that has it), else Node's
 * optional peer package `webgpu` (Dawn), imported only when a WebGPU backend is asked for, so CPU
 * users never load (or install) it.
 *
 * Process hygiene: one Dawn instance per process (see `dawn` below); `dispose()` destroys a
 * backend's device and buffers, and a process exits by itself when its work is done, with or
 * without `dispose()` (test/webgpu/process.test.ts checks both, and measures the CPU use of an
 * idle process holding a device).
 */
import { VitkitError } from '../../errors.js';
import { WebGpuBackend, type WebGpuInfo } from './backend.js';

export { WebGpuBackend } from './backend.js';

export const WEBGPU_MISSING = '--device webgpu needs the optional package `webgpu` (npm install webgpu)';

interface DawnModule {
  create(flags: string[]): GPU;
}

/**
 * The process's one Dawn instance. It is never dropped: when Dawn's instance is collected while
 * its devices are (measured with webgpu 0.6.2: dropping it with its device, destroyed or not,
 * made the process abort, segfault or hang at exit in 9 runs out of 9), so it lives as long as
 * the process, and holding it does not keep the process alive.
 */
let dawn: GPU | undefined;

/** Calls fn with the process's stderr (descriptor 2) captured: [fn's result, the text written meanwhile]. */
type Capture = <T>(fn: () => T) => [T, string];
/** the native addon's captureStderr, where it has one (Node with Dawn); else Dawn's lines stay on stderr */
let capture: Capture | undefined;
/** the first line of each message Dawn logged during adapter discovery, in order ("vkCreateInstance failed with ...") */
const dawnLog: string[] = [];

/** Dawn's log text split into its messages' first lines ("Warning: x\n    at ...": "x") and the other text. */
function splitDawnLog(text: string): { messages: string[]; other: string } {
  const messages: string[] = [];
  let other = '';
  let inMessage = false;
  for (const line of text.split('\n').slice(0, -1)) {
    const m = /^(?:Warning|Error|Info|Debug): (.*)$/.exec(line);
    if (m) { messages.push(m[1]!); inMessage = true; continue; }
    if (inMessage && (line === '' || /^\s/.test(line))) continue; // the message's source line, its blank end
    inMessage = false;
    other += `${line}\n`;
  }
  const tail = text.slice(text.lastIndexOf('\n') + 1);
  return { messages, other: other + tail };
}

/** gpu.requestAdapter, with Dawn's discovery messages kept off stderr (see dawnCapture). */
async function requestAdapter(gpu: GPU, options?: GPURequestAdapterOptions): Promise<GPUAdapter | null> {
  if (gpu !== dawn || !capture) return gpu.requestAdapter(options);
  const [r, text] = capture((): { p: Promise<GPUAdapter | null> } | { e: unknown } => {
    try { return { p: gpu.requestAdapter(options) }; } catch (e) { return { e }; }
  });
  const { messages, other } = splitDawnLog(text);
  for (const m of messages) if (!dawnLog.includes(m)) dawnLog.push(m);
  if (other) (globalThis as { process?: { stderr: { write(s: string): unknown } } }).process?.stderr.write(other);
  if ('e' in r) throw r.e;
  return r.p;
}

/** The GPU entry point: navigator.gpu where present, else the process's Dawn instance from the `webgpu` package. */
async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (dawn) return dawn;
  // Vulkan's loader warns on stderr at every start without XDG_RUNTIME_DIR (Node only; browsers have navigator.gpu)
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  if (env && !env['XDG_RUNTIME_DIR']) env['XDG_RUNTIME_DIR'] = '/tmp';
  let mod: DawnModule;
  try {
    const name = 'webgpu'; // a variable, so that bundlers and tsc do not resolve the optional package
    mod = (await import(name)) as DawnModule;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new VitkitError(WEBGPU_MISSING);
    throw new VitkitError(`The optional package \`webgpu\` is installed but could not be loaded (${(e as Error).message.split('\n')[0]})`);
  }
  capture ??= await dawnCapture(env);
  dawn ??= mod.create([]);
  return dawn;
}

/**
 * Dawn writes its warnings with fprintf(stderr) (dawn::WarningLog in Dawn's src/utils/log.cc; the
 * Vulkan loader's "Found no drivers!" arrives there through Dawn's instance-creation messenger,
 * the failed vkCreateInstance through InstanceBase::ConsumedErrorAndWarnOnce), and neither the
 * `webgpu` package's create() flags (backend, adapter, validate, verbose, enable-/disable-dawn-features)
 * nor any Dawn toggle turns that off: the logging callback that would is an instance-descriptor
 * field dawn.node does not set. So adapter discovery (synchronous inside requestAdapter) runs with
 * descriptor 2 captured by the native addon; Dawn's messages are kept for `--device webgpu`'s
 * error, anything else written meanwhile goes on to stderr. VITKIT_DAWN_LOG=1 lets them through.
 */
async function dawnCapture(env: Record<string, string | undefined> | undefined): Promise<Capture | undefined> {
  if (env?.['VITKIT_DAWN_LOG'] === '1') return undefined;
  try {
    const loader = '../native.js'; // a variable: the core never bundles the addon loader
    const { loadAddon } = (await import(loader)) as typeof import('../native.js');
    const c = loadAddon().captureStderr;
    return c ? (<T>(fn: () => T) => c(fn) as [T, string]) : undefined;
  } catch {
    return undefined; // no native addon on this machine: Dawn's lines stay on stderr
  }
}

export interface WebGpuOptions {
  powerPreference?: 'low-power' | 'high-performance';
  /** a GPU entry point (a `GPU` object) to use instead of navigator.gpu / the `webgpu` package */
  gpu?: unknown;
}

/**
 * A WebGPU backend on the adapter the platform picks (highest limits it offers for storage
 * bindings and workgroup memory). Throws a VitkitError when no adapter can be had.
 */
export async function createWebGpuBackend(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu = (opts.gpu as GPU | undefined) ?? (await getGpu());
  const adapter = await requestAdapter(gpu, opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) {
    const dawnSays = dawnLog.length ? `Dawn: ${dawnLog.join('; ').slice(0, 300)}; ` : '';
    throw new VitkitError(`--device webgpu: no WebGPU adapter was found (${dawnSays}no GPU driver; on Linux without a GPU, install chromium and libvulkan1 `
      + 'and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)');
  }
  const lim = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
    },
  });
  const i = adapter.info;
  const fallback = Boolean((i as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  return new WebGpuBackend(device, gpu, { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, fallback });
}

export interface AdapterListing {
  /** the adapter's description (or vendor and architecture where there is none) */
  name: string;
  vendor: string;
  architecture: string;
  /** adapter.info.device (a driver's device name or id; may be empty) */
  device: string;
  /** adapter.info.description (may be empty) */
  description: string;
  /** the driver backend, where the implementation says (Dawn: from its description), else 'webgpu' */
  backend: string;
  /** a software (fallback) adapter such as SwiftShader */
  fallback: boolean;
  /** `shader-f16` is available */
  f16: boolean;
  limits: Record<string, number>;
}

function backendOf(info: Pick<GPUAdapterInfo, 'description' | 'architecture' | 'device'>): string {
  const text = `${info.description} ${info.architecture} ${info.device}`.toLowerCase();
  for (const b of ['vulkan', 'metal', 'd3d12', 'd3d11', 'opengl']) if (text.includes(b)) return b;
  if (text.includes('swiftshader')) return 'vulkan (swiftshader)';
  return 'webgpu';
}

/** One line for an opened adapter: "SwiftShader driver 5.0.0, vulkan (swiftshader), software fallback" */
export function describeAdapter(info: WebGpuInfo): string {
  const name = info.description || `${info.vendor} ${info.architecture}`.trim() || info.device || 'unknown adapter';
  return [name, backendOf(info), info.fallback ? 'software fallback' : ''].filter(Boolean).join(', ');
}

/**
 * The adapters this platform offers (for `vitkit info --devices`): at most one per power
 * preference and the fallback adapter, deduplicated. An empty list when WebGPU is there but has
 * no adapter; a VitkitError when the `webgpu` package is missing in Node.
 */
export async function listAdapters(opts: { gpu?: unknown } = {}): Promise<AdapterListing[]> {
  const gpu = (opts.gpu as GPU | undefined) ?? (await getGpu());
  const out: AdapterListing[] = [];
  const seen = new Set<string>();
  const asks: GPURequestAdapterOptions[] = [{ powerPreference: 'high-performance' }, { powerPreference: 'low-power' }, { forceFallbackAdapter: true }];
  for (const ask of asks) {
    const a = await requestAdapter(gpu, ask);
    if (!a) continue;
    const i = a.info;
    const limits: Record<string, number> = {};
    for (const k in a.limits) {
      const v = (a.limits as unknown as Record<string, unknown>)[k];
      if (typeof v === 'number') limits[k] = v;
    }
    const listing: AdapterListing = {
      name: i.description || `${i.vendor} ${i.architecture}`.trim() || 'unknown adapter',
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      backend: backendOf(i),
      fallback: Boolean((i as { isFallbackAdapter?: boolean }).isFallbackAdapter),
      f16: a.features.has('shader-f16'),
      limits,
    };
    const key = JSON.stringify([listing.name, listing.vendor, listing.architecture, i.device, listing.fallback]);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(listing);
  }
  return out;
}
