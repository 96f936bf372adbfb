/**
 * Image decoding: any format sharp reads (JPEG, PNG, WebP, GIF first frame, TIFF, AVIF...) to
 * 8-bit interleaved pixels, with the colour conversions PIL's `Image.convert` applies, so that
 * what follows (resize, crop, normalize) sees the same bytes timm / transformers would see.
 *
 * - EXIF orientation is applied (`sharp().rotate()` with no argument), like
 *   `PIL.ImageOps.exif_transpose` (which transformers' `load_image` calls; bare PIL does not).
 * - `convert('RGB')`: grayscale is replicated to three channels; alpha is dropped without any
 *   compositing (PIL's rgba2rgb / la2rgb simply discard it); palette images are expanded.
 * - `convert('L')`: ITU-R 601-2 luma with PIL's fixed point,
 *   `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`; alpha is dropped.
 * - 16-bit inputs are reduced to 8 bits by sharp/libvips (v >> 8).
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { VitkitError, expected } from '../errors.js';

export interface RawImage {
  /** (H, W, C) interleaved, row-major */
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

function sourceName(source: string | Uint8Array, name?: string): string {
  if (name) return name;
  return typeof source === 'string' ? source : '<buffer>';
}

/** Decode `source` (a path or the encoded bytes) to 8-bit pixels with 1 (PIL 'L') or 3 (PIL 'RGB') channels. */
export async function loadImage(source: string | Uint8Array, channels: 1 | 3, name?: string): Promise<RawImage> {
  const label = sourceName(source, name);
  if (channels !== 1 && channels !== 3) throw expected('1 or 3', `the channel count of image ${label}`, channels);
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = await readFile(source);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new VitkitError(`Image file ${source} does not exist`);
      if (code === 'EISDIR') throw new VitkitError(`Expected an image file for ${source} but received a directory`);
      throw new VitkitError(`Cannot read image file ${source}: ${(e as Error).message}`);
    }
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else {
    throw expected('a file path or a Uint8Array', 'the image source', source);
  }
  if (bytes.length === 0) throw new VitkitError(`Expected an image for ${label} but received an empty file`);

  let raw: Buffer;
  let info: sharp.OutputInfo;
  try {
    const out = await sharp(bytes, { pages: 1, failOn: 'error' })
      .rotate()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    raw = out.data;
    info = out.info;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new VitkitError(`Expected a decodable image (JPEG, PNG, WebP, GIF, TIFF, AVIF) for ${label} but decoding failed: ${msg}`);
  }
  return convertPixels(new Uint8Array(raw.buffer, raw.byteOffset, raw.length), info.width, info.height, info.channels, channels);
}

/**
 * PIL-style mode conversion of interleaved 8-bit pixels with `inC` channels
 * (1 = L, 2 = LA, 3 = RGB, 4 = RGBA) to L (1) or RGB (3).
 */
export function convertPixels(src: Uint8Array, width: number, height: number, inC: number, outC: 1 | 3): RawImage {
  const n = width * height;
  if (src.length !== n * inC) throw expected(`${n * inC} bytes`, 'the decoded pixel buffer', src.length);
  if (inC === outC) return { data: src, width, height, channels: outC };
  const out = new Uint8Array(n * outC);
  if (outC === 3) {
    if (inC === 1 || inC === 2) {
      for (let i = 0, j = 0; i < n; i++, j += 3) {
        const v = src[i * inC];
        out[j] = v;
        out[j + 1] = v;
        out[j + 2] = v;
      }
    } else if (inC === 4) {
      for (let i = 0, j = 0, k = 0; i < n; i++, j += 3, k += 4) {
        out[j] = src[k];
        out[j + 1] = src[k + 1];
        out[j + 2] = src[k + 2];
      }
    } else {
      throw expected('1 to 4 channels', 'the decoded image', inC);
    }
  } else {
    if (inC === 2) {
      for (let i = 0; i < n; i++) out[i] = src[2 * i];
    } else if (inC === 3 || inC === 4) {
      for (let i = 0, k = 0; i < n; i++, k += inC) {
        out[i] = (src[k] * 19595 + src[k + 1] * 38470 + src[k + 2] * 7471 + 0x8000) >>> 16;
      }
    } else {
      throw expected('1 to 4 channels', 'the decoded image', inC);
    }
  }
  return { data: out, width, height, channels: outC };
}

/** The h x w window of img whose top-left pixel is (top, left); the window must lie inside img. */
export function cropImage(img: RawImage, top: number, left: number, h: number, w: number): RawImage {
  const C = img.channels;
  const out = new Uint8Array(w * h * C); // (h, w, C)
  for (let y = 0; y < h; y++) {
    const s = ((y + top) * img.width + left) * C;
    out.set(img.data.subarray(s, s + w * C), y * w * C);
  }
  return { data: out, width: w, height: h, channels: C };
}
