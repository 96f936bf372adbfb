/**
 * Getting a WebGPU device for the tests. On a machine without a GPU, Dawn runs on SwiftShader's
 * Vulkan (Debian's chromium package ships it): VK_ICD_FILENAMES is pointed at it when unset and
 * present. Where no adapter can be had, the tests skip and say why — except with CI=true, where
 * that is a failure (CI installs chromium and libvulkan1).
 */
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { createWebGpuBackend, type WebGpuBackend } from '../../src/backend/webgpu/index.js';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export function defaultEnv(): void {
  if (!process.env['VK_ICD_FILENAMES'] && existsSync(SWIFTSHADER_ICD)) process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
  // Vulkan's loader complains on stderr without it
  process.env['XDG_RUNTIME_DIR'] ??= '/tmp';
}

export interface GpuSetup {
  dev: WebGpuBackend | null;
  /** why there is no device */
  reason: string;
}

export async function getTestDevice(): Promise<GpuSetup> {
  defaultEnv();
  try {
    return { dev: await createWebGpuBackend(), reason: '' };
  } catch (e) {
    const reason = `no WebGPU device: ${(e as Error).message}`;
    if (process.env['CI'] === 'true') {
      test('a WebGPU device is available on CI', () => { throw new Error(reason); });
    }
    return { dev: null, reason };
  }
}
