/**
 * Decoded 8-bit pixels and the pixel operations on them that need no decoder (no sharp, no file):
 * PIL-style mode conversion and cropping. io/image.ts decodes files into these.
 */
import { expected } from '../errors.js';

export interface RawImage {
  /** (H, W, C) interleaved, row-major */
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
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
