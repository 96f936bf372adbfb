/**
 * Preprocessing from image files or encoded bytes: decodes with sharp (io/image.ts), then the math
 * of preprocess_pixels.ts (re-exported here), which holds the timm / transformers semantics.
 * DICOM and 16-bit grayscale PNG / TIFF are windowed to floats in [0, 1] and reach the model
 * without an 8-bit step (io/medical.ts).
 */
import { VitkitError, expected } from '../errors.js';
import { loadImage, MAX_IMAGE_BYTES } from './image.js';
import { readRegularFile } from './files.js';
import { FRAME_MARK, grayTo8bit, grayToPixelValues, loadMedical, medicalDefaults, parseFrameRef, type GrayImage, type MedicalOptions } from './medical.js';
import type { RawImage } from './pixels.js';
import { checkConfig, geometry, toPixelValues, type PreprocessConfig } from './preprocess_pixels.js';

export * from './preprocess_pixels.js';

/** The bytes of an image source and the medical options for it (a `<file>#frame=<k>` picks frame k). */
function readSource(source: string | Uint8Array, opts?: MedicalOptions): { bytes: Uint8Array; opts: MedicalOptions | undefined } | null {
  if (typeof source === 'string') {
    const ref = parseFrameRef(source); // `<file>#frame=<k>`: that frame
    const o = ref.frame !== undefined ? { ...(opts ?? medicalDefaults()), frame: ref.frame } : opts;
    return { bytes: readRegularFile(ref.file, 'image file', MAX_IMAGE_BYTES), opts: o };
  }
  if (source instanceof Uint8Array) return { bytes: source, opts };
  return null; // loadImage reports the bad source
}

async function medicalOf(source: string | Uint8Array, name: string | undefined, opts?: MedicalOptions): Promise<{ g: GrayImage; label: string } | null> {
  const label = name ?? (typeof source === 'string' ? source : '<buffer>');
  const r = readSource(source, opts);
  if (!r) return null;
  const g = await loadMedical(r.bytes, label, r.opts);
  return g ? { g, label } : null;
}

function oneFrame(m: { g: GrayImage; label: string }): number {
  if (m.g.frames !== 1) {
    throw new VitkitError(`${m.label} has ${m.g.frames} frames; this reads one image per source: name one as ${m.label}${FRAME_MARK}k (k in 0..${m.g.frames - 1}) or pass --frame k (the CLI's commands expand a multi-frame file into its frames; \`vitkit run --image\` takes them all)`);
  }
  return 0;
}

/**
 * One image file (a `<file>#frame=<k>` for one frame of a multi-frame DICOM file) or encoded bytes
 * to normalized pixel_values (C, H, W). `opts` overrides the process-wide --window / --frame.
 */
export async function preprocessImage(source: string | Uint8Array, cfg: PreprocessConfig, name?: string, opts?: MedicalOptions): Promise<Float32Array> {
  checkConfig(cfg);
  const m = await medicalOf(source, name, opts);
  if (m) return grayToPixelValues(m.g, oneFrame(m), cfg);
  const img = await loadImage(source, cfg.channels, name);
  return toPixelValues(geometry(img, cfg), cfg);
}

/**
 * One image file decoded for the training / eval batches (data/batch.ts), read once: a DICOM or
 * 16-bit gray PNG / TIFF (one frame) as its windowed float gray image, exactly what preprocessImage
 * resizes; any other image as loadImage's 8-bit pixels with `channels` channels.
 */
export async function decodeImage(source: string, channels: 1 | 3, opts?: MedicalOptions): Promise<{ gray: GrayImage } | { u8: RawImage }> {
  const r = readSource(source, opts)!;
  const g = await loadMedical(r.bytes, source, r.opts);
  if (g) {
    oneFrame({ g, label: source });
    return { gray: g };
  }
  return { u8: await loadImage(r.bytes, channels, source) };
}

/**
 * Every image of a file to (F, C, H, W): F = 1 for ordinary images, the frames of a multi-frame
 * DICOM file (or the one --frame picks). `opts` overrides the process-wide --window / --frame.
 */
export async function preprocessFrames(source: string | Uint8Array, cfg: PreprocessConfig, name?: string, opts?: MedicalOptions): Promise<{ data: Float32Array; frames: number }> {
  checkConfig(cfg);
  const m = await medicalOf(source, name, opts);
  if (!m) return { data: await preprocessImage(source, cfg, name, opts), frames: 1 };
  const per = cfg.channels * cfg.height * cfg.width;
  const out = new Float32Array(m.g.frames * per); // (F, C, H, W)
  for (let f = 0; f < m.g.frames; f++) grayToPixelValues(m.g, f, cfg, out, f * per);
  return { data: out, frames: m.g.frames };
}

/** Several image files to (B, C, H, W). */
export async function preprocessBatch(sources: string[], cfg: PreprocessConfig): Promise<Float32Array> {
  checkConfig(cfg);
  if (!Array.isArray(sources) || sources.length === 0) throw expected('a non-empty list of image files', 'the batch', sources);
  const per = cfg.channels * cfg.height * cfg.width;
  const out = new Float32Array(sources.length * per);
  const px = await Promise.all(sources.map((s) => preprocessImage(s, cfg)));
  px.forEach((p, b) => out.set(p, b * per));
  return out;
}

/** The preprocessed image as 8-bit RGB (H, W, 3) before normalization (for overlays). */
export async function preprocessForDisplay(source: string | Uint8Array, cfg: PreprocessConfig): Promise<RawImage> {
  checkConfig(cfg);
  const m = await medicalOf(source, undefined);
  let img: RawImage;
  if (m) {
    const gray = { ...cfg, channels: 1 as const, mean: [0], std: [1], doNormalize: false };
    const g = grayToPixelValues(m.g, oneFrame(m), gray); // (1, H, W) in [0, 1]
    img = grayTo8bit({ data: g, width: cfg.width, height: cfg.height, frames: 1 }, 0, 3);
    return img;
  }
  img = geometry(await loadImage(source, cfg.channels), cfg);
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img.data[i];
  return { data: out, width: img.width, height: img.height, channels: 3 };
}
