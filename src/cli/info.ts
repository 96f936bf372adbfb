import { Command } from 'commander';
import { loadModel } from '../checkpoint/checkpoint.js';
import { existsSync } from 'node:fs';
import { dims, imgHW, resolveConfig, type ViTConfig } from '../models/config.js';
import { vitMacs, vitParamSpecs } from '../models/vit.js';
import { PRESETS, getPreset, presetConfig } from '../models/presets.js';
import { preprocessFromTimm } from '../io/preprocess.js';
import { UsageError, VitkitError } from '../errors.js';
import { loadAddon, nativeThreads } from '../backend/native.js';
import { listAdapters, type AdapterListing } from '../backend/webgpu/index.js';

/** Configuration, parameter count and GMACs per image, and how the cost grows with image size. */
export function describeModel(source: string): Record<string, unknown> {
  // a preset needs no weights to be described: build its config only (vit_large would allocate 1.2 GB)
  // (timm.create_model(name): the registration's kwargs plus the default tag's num_classes and input size)
  const isPreset = !existsSync(source) && source in PRESETS;
  const lm = isPreset
    ? (() => {
      const config = presetConfig(source);
      return { name: source, format: 'preset', config, params: 0, preprocess: preprocessFromTimm({ ...getPreset(source).pretrained_cfg }, imgHW(config), config.in_chans) };
    })()
    : (() => { const m = loadModel(source); return { name: m.name, format: m.format, config: m.model.config, params: m.model.numParams, preprocess: m.preprocess }; })();
  const c = lm.config, d = dims(c);
  const params = vitParamSpecs(c).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const [h, w] = imgHW(c);
  const sizes = h === w ? [h, ...[224, 384, 448, 512].filter((s) => s !== h && s % c.patch_size === 0)] : [h];
  const scaling = sizes
    .sort((a, b) => a - b)
    .map((s) => {
      const cs: ViTConfig = resolveConfig({ ...c, img_size: h === w ? s : [h, w] });
      return { img_size: s, tokens: dims(cs).N, gmacs: vitMacs(cs) / 1e9 };
    });
  return {
    name: lm.name, format: lm.format, config: c, tokens: d.N, params,
    gmacs: vitMacs(c) / 1e9, preprocess: lm.preprocess, scaling,
  };
}

/** the adapter limits `info --devices` shows */
export const DEVICE_LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const;

export interface CpuDevice { device: 'cpu'; isa: string | null; threads: number }
export interface WebGpuDevice {
  device: 'webgpu';
  /** the adapter's description (or vendor and architecture) */
  name: string;
  vendor: string;
  architecture: string;
  /** adapter.info.device */
  id: string;
  description: string;
  backend: string;
  fallback: boolean;
  f16: boolean;
  limits: Record<(typeof DEVICE_LIMITS)[number], number | null>;
}
export interface DeviceReport {
  devices: (CpuDevice | WebGpuDevice)[];
  /** one line per cause of a missing device (no addon, no `webgpu` package, no adapter) */
  notes: string[];
}

/**
 * What `--device` can be here: cpu (the native kernels' ISA and thread count) and each WebGPU
 * adapter. Never throws for a missing device: the cause goes into `notes`.
 */
export async function describeDevices(list: () => Promise<AdapterListing[]> = listAdapters): Promise<DeviceReport> {
  const notes: string[] = [];
  let isa: string | null = null;
  try {
    isa = loadAddon().gemmIsa();
  } catch (e) {
    notes.push(`cpu: the native addon is not available, the plain-TypeScript reference runs instead (${(e as Error).message.split('\n')[0]})`);
  }
  const devices: (CpuDevice | WebGpuDevice)[] = [{ device: 'cpu', isa, threads: isa === null ? 1 : nativeThreads() }];
  let adapters: AdapterListing[] = [];
  try {
    adapters = await list();
    if (adapters.length === 0) {
      notes.push('webgpu: no WebGPU adapter was found (no GPU driver; on Linux without a GPU, install chromium and libvulkan1 and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)');
    }
  } catch (e) {
    if (!(e instanceof VitkitError)) throw e;
    notes.push(`webgpu: ${e.message}`);
  }
  for (const a of adapters) {
    const limits = Object.fromEntries(DEVICE_LIMITS.map((k) => [k, a.limits[k] ?? null])) as WebGpuDevice['limits'];
    devices.push({
      device: 'webgpu', name: a.name, vendor: a.vendor, architecture: a.architecture, id: a.device, description: a.description,
      backend: a.backend, fallback: a.fallback, f16: a.f16, limits,
    });
  }
  return { devices, notes };
}

function printDevices(r: DeviceReport): void {
  console.log('devices (for --device):');
  for (const d of r.devices) {
    if (d.device === 'cpu') {
      console.log(`  cpu      ${d.isa === null ? 'plain-TypeScript reference' : `native ${d.isa} kernels`}, ${d.threads} thread${d.threads === 1 ? '' : 's'}`);
      continue;
    }
    const what = [d.vendor && `vendor ${d.vendor}`, d.architecture && `architecture ${d.architecture}`, d.id && `device ${d.id}`,
      `backend ${d.backend}`, d.fallback ? 'software fallback' : ''].filter(Boolean).join(', ');
    console.log(`  webgpu   ${d.name} (${what})`);
    console.log(`           ${DEVICE_LIMITS.map((k) => `${k} ${d.limits[k] ?? '?'}`).join(', ')}`);
    console.log(`           shader-f16 ${d.f16 ? 'yes' : 'no'}`);
  }
  for (const n of r.notes) console.log(n);
}

export function infoCommand(): Command {
  return new Command('info')
    .description('print the configuration, parameter count and GMACs per image of a preset or checkpoint; with --devices, the devices --device can use')
    .argument('[model]', 'preset name (e.g. vit_base_patch16_224) or checkpoint directory')
    .option('--devices', 'list the devices: cpu (native ISA, threads) and each WebGPU adapter (limits, shader-f16)')
    .option('--json', 'print one JSON object')
    .action(async (source: string | undefined, o: { json?: boolean; devices?: boolean }) => {
      if (o.devices) {
        if (source !== undefined) throw new UsageError('info: pass either a model or --devices, not both');
        const r = await describeDevices();
        if (o.json) console.log(JSON.stringify(r));
        else printDevices(r);
        return;
      }
      if (source === undefined) throw new UsageError("info: missing argument 'model' (a preset name or checkpoint directory), or pass --devices");
      const info = describeModel(source);
      if (o.json) {
        console.log(JSON.stringify(info));
        return;
      }
      const c = info['config'] as ViTConfig;
      console.log(`${info['name']} (${info['format']})`);
      for (const [k, v] of Object.entries(c)) console.log(`  ${k.padEnd(19)} ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`);
      console.log(`  ${'tokens'.padEnd(19)} ${info['tokens']}`);
      console.log(`params: ${((info['params'] as number) / 1e6).toFixed(2)}M (${(info['params'] as number).toLocaleString('en-US')})`);
      console.log(`GMACs per image: ${(info['gmacs'] as number).toFixed(2)}`);
      console.log('cost by image size (attention grows with the square of the token count):');
      for (const s of info['scaling'] as { img_size: number; tokens: number; gmacs: number }[]) {
        console.log(`  ${String(s.img_size).padStart(4)} px  ${String(s.tokens).padStart(5)} tokens  ${s.gmacs.toFixed(2).padStart(8)} GMACs`);
      }
    });
}
