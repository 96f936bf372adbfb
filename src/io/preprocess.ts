/**
 * Preprocessing from image files or encoded bytes: decodes with sharp (io/image.ts), then the math
 * of preprocess_pixels.ts (re-exported here), which holds the timm / transformers semantics.
 */
import { expected } from '../errors.js';
import { loadImage } from './image.js';
import type { RawImage } from './pixels.js';
import { checkConfig, geometry, toPixelValues, type PreprocessConfig } from './preprocess_pixels.js';

export * from './preprocess_pixels.js';

/** One image file (or encoded bytes) to normalized pixel_values (C, H, W). */
export async function preprocessImage(source: string | Uint8Array, cfg: PreprocessConfig, name?: string): Promise<Float32Array> {
  checkConfig(cfg);
  const img = await loadImage(source, cfg.channels, name);
  return toPixelValues(geometry(img, cfg), cfg);
}

/** Several image files to (B, C, H, W). */
export async function preprocessBatch(sources: string[], cfg: PreprocessConfig): Promise<Float32Array> {
  checkConfig(cfg);
  if (!Array.isArray(sources) || sources.length === 0) throw expected('a non-empty list of image files', 'the batch', sources);
  const per = cfg.channels * cfg.height * cfg.width;
  const out = new Float32Array(sources.length * per);
  const imgs = await Promise.all(sources.map((s) => loadImage(s, cfg.channels)));
  imgs.forEach((img, b) => toPixelValues(geometry(img, cfg), cfg, out, b * per));
  return out;
}

/** The preprocessed image as 8-bit RGB (H, W, 3) before normalization (for overlays). */
export async function preprocessForDisplay(source: string | Uint8Array, cfg: PreprocessConfig): Promise<RawImage> {
  checkConfig(cfg);
  const img = geometry(await loadImage(source, cfg.channels), cfg);
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img.data[i];
  return { data: out, width: img.width, height: img.height, channels: 3 };
}
