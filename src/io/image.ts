/**
 * Image decoding: the raster formats JPEG, PNG, WebP, GIF (first frame), TIFF and AVIF to
 * 8-bit interleaved pixels, with the colour conversions PIL's `Image.convert` applies, so that
 * what follows (resize, crop, normalize) sees the same bytes timm / transformers would see.
 *
 * - EXIF orientation is applied (`sharp().rotate()` with no argument), like
 *   `PIL.ImageOps.exif_transpose` (which transformers' `load_image` calls; bare PIL does not).
 * - `convert('RGB')`: grayscale is replicated to three channels; alpha is dropped without any
 *   compositing (PIL's rgba2rgb / la2rgb simply discard it); palette images are expanded.
 * - `convert('L')`: ITU-R 601-2 luma with PIL's fixed point,
 *   `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`; alpha is dropped.
 * - 16-bit colour inputs are reduced to 8 bits by sharp/libvips (v >> 8); DICOM and 16-bit grayscale
 *   PNG/TIFF are windowed first (io/medical.ts); preprocess.ts takes them to the model without 8 bits.
 *
 * Bounds: only regular files of at most MAX_IMAGE_BYTES are read (a FIFO or /dev/zero is refused
 * at once); only the raster formats above are decoded, recognised by their content, not their
 * name. SVG, PDF and the other formats libvips could render are refused: a 122-byte SVG can ask
 * for a 15000 x 15000 render. An image of more than MAX_INPUT_PIXELS pixels is refused before it
 * is decoded (sharp's limitInputPixels), and so is one whose sides are further apart than
 * MAX_ASPECT_RATIO (a 97 KB PNG of 10,000,000 x 10 is inside the pixel cap, but resizing its short side
 * to the model's input makes a row of 2 x 10^8 pixels) or whose decoded bytes exceed
 * MAX_DECODED_BYTES or half the free memory.
 */
import { freemem } from 'node:os';
import sharp from 'sharp';
import { VitkitError, expected } from '../errors.js';
import { readRegularFile } from './files.js';
import { convertPixels, type RawImage } from './pixels.js';
import { FRAME_MARK, grayTo8bit, loadMedical, medicalDefaults, parseFrameRef } from './medical.js';

/** File extensions of the images every command reads (folders are searched for these). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.dcm'];
/** The formats decoded, as sharp's metadata names them (AVIF is 'heif' with AV1 compression). */
export const IMAGE_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'];
/** Largest image file read. */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;
/** Largest image decoded, in pixels (width x height): 10000 x 10000. */
export const MAX_INPUT_PIXELS = 100_000_000;
/** Longest side over shortest side: wider than any panorama a classifier is given (a 360-degree strip is ~10:1). */
export const MAX_ASPECT_RATIO = 100;
/** Largest decoded raster (width x height x channels x bytes per sample): 1 GiB. */
export const MAX_DECODED_BYTES = 1 << 30;
const FORMAT_LIST = 'JPEG, PNG, WebP, GIF, TIFF, AVIF';
/** bytes per sample of libvips' band formats (sharp's metadata().depth) */
const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

export type { RawImage } from './pixels.js';
export { convertPixels, cropImage } from './pixels.js';

function sourceName(source: string | Uint8Array, name?: string): string {
  if (name) return name;
  return typeof source === 'string' ? source : '<buffer>';
}

/**
 * Refuse, from the header alone, an image whose decoding or resizing would take unbounded memory: more
 * than MAX_INPUT_PIXELS pixels, sides further apart than MAX_ASPECT_RATIO, a decoded raster over
 * MAX_DECODED_BYTES or half the free memory.
 */
export function checkDecodable(label: string, meta: Pick<sharp.Metadata, 'width' | 'height' | 'channels' | 'depth'>): void {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!(w >= 1 && h >= 1)) throw new VitkitError(`Expected an image with at least 1 x 1 pixels for ${label} but its header says ${w} x ${h}`);
  const px = w * h;
  if (px > MAX_INPUT_PIXELS) {
    throw expected(`an image of at most ${MAX_INPUT_PIXELS} pixels`, label, `${w} x ${h} = ${px} pixels`);
  }
  const ratio = Math.max(w, h) / Math.min(w, h);
  if (ratio > MAX_ASPECT_RATIO) {
    throw expected(`an image whose sides are at most ${MAX_ASPECT_RATIO}:1 apart`, label, `${w} x ${h} (${Math.round(ratio)}:1)`);
  }
  const bytesPerSample = SAMPLE_BYTES[String(meta.depth ?? 'uchar')] ?? 8;
  const decoded = px * Math.max(3, meta.channels ?? 3) * bytesPerSample;
  const budget = Math.min(MAX_DECODED_BYTES, Math.floor(freemem() / 2));
  if (decoded > budget) {
    throw expected(`an image that decodes to at most ${budget} bytes (${budget === MAX_DECODED_BYTES ? 'the cap' : 'half the free memory'})`, label,
      `${w} x ${h} x ${meta.channels ?? 3} channels = ${decoded} bytes`);
  }
}

/** Decode `source` (a path or the encoded bytes) to 8-bit pixels with 1 (PIL 'L') or 3 (PIL 'RGB') channels. */
export async function loadImage(source: string | Uint8Array, channels: 1 | 3, name?: string): Promise<RawImage> {
  const label = sourceName(source, name);
  if (channels !== 1 && channels !== 3) throw expected('1 or 3', `the channel count of image ${label}`, channels);
  let bytes: Uint8Array;
  let frame: number | undefined;
  if (typeof source === 'string') {
    const ref = parseFrameRef(source); // `<file>#frame=<k>`: frame k of a multi-frame DICOM file
    frame = ref.frame;
    bytes = readRegularFile(ref.file, 'image file', MAX_IMAGE_BYTES);
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else {
    throw expected('a file path or a Uint8Array', 'the image source', source);
  }
  if (bytes.length === 0) throw new VitkitError(`Expected an image for ${label} but received an empty file`);

  if (bytes.length > MAX_IMAGE_BYTES) throw expected(`an image of at most ${MAX_IMAGE_BYTES} bytes`, label, `${bytes.length} bytes`);
  // DICOM and 16-bit gray PNG/TIFF: windowed (io/medical.ts), here quantised to 8 bits (preprocess.ts keeps floats)
  const med = await loadMedical(bytes, label, frame === undefined ? medicalDefaults() : { ...medicalDefaults(), frame });
  if (med && med.frames !== 1) throw new VitkitError(`${label} has ${med.frames} frames; name one as ${label}${FRAME_MARK}k (k in 0..${med.frames - 1}) or pass --frame k`);
  if (med) return grayTo8bit(med, 0, channels);
  const opts: sharp.SharpOptions = { pages: 1, failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS };
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { ...opts, limitInputPixels: false }).metadata(); // the header only: the format is checked first
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new VitkitError(`Expected a decodable image (${FORMAT_LIST}) for ${label} but decoding failed: ${msg}`);
  }
  const fmt = String(meta.format ?? 'unknown');
  if (!IMAGE_FORMATS.includes(fmt) || (fmt === 'heif' && meta.compression !== 'av1')) {
    const what = fmt === 'heif' ? `HEIF with ${meta.compression ?? 'unknown'} compression` : fmt.toUpperCase();
    throw new VitkitError(`Expected a raster image (${FORMAT_LIST}) for ${label} but received ${what}${fmt === 'svg' ? ' (vector images are not rendered)' : ''}`);
  }
  checkDecodable(label, meta);
  let raw: Buffer;
  let info: sharp.OutputInfo;
  try {
    const out = await sharp(bytes, opts)
      .rotate()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    raw = out.data;
    info = out.info;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new VitkitError(`Expected a decodable image (${FORMAT_LIST}) for ${label} but decoding failed: ${msg}`);
  }
  return convertPixels(new Uint8Array(raw.buffer, raw.byteOffset, raw.length), info.width, info.height, info.channels, channels);
}
