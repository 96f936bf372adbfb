/**
 * DICOM files (PS3.10) to stored pixel values and the attributes the display pipeline needs, through
 * daikon (rii-mango/Daikon, MIT): the tag parser for explicit / implicit VR, little / big endian and
 * deflated files, and its decoders for RLE Lossless, JPEG baseline / lossless, JPEG-LS and JPEG 2000
 * (all pure JavaScript). vitkit only interprets the decoded pixel words: byte order, Bits Stored within
 * Bits Allocated (PS3.5 8.1.1: the low bits; sign-extended when Pixel Representation is 1).
 *
 * Nothing here keeps patient attributes: a DicomImage carries pixel and display attributes only.
 */
import daikon from 'daikon';
import { VitkitError, expected } from '../errors.js';

/** DICOM magic: 'DICM' at byte 128 (after the 128-byte preamble). */
export function isDicomBytes(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

/** Transfer syntaxes whose pixel data daikon decodes (UID -> name). */
export const TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
};

/** Stored pixel values: Int16Array / Uint16Array for 16 bits stored little endian, else Int32Array. */
export type StoredArray = Int32Array | Int16Array | Uint16Array;

export interface DicomImage {
  rows: number;
  cols: number;
  frames: number;
  bitsAllocated: number;
  bitsStored: number;
  /** 0 unsigned, 1 two's complement */
  pixelRepresentation: 0 | 1;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  transferSyntax: string;
  modality: string;
  slope: number;
  intercept: number;
  /** the file's first WindowCenter / WindowWidth, or null */
  window: { center: number; width: number } | null;
  /** Pixel Padding Value (0028,0120) as a stored value, or null */
  padding: number | null;
  /** (frames, rows, cols) stored values: a view of the decoded 16-bit words in the common case (no copy) */
  stored: StoredArray;
}

function num(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** daikon's parse of a DICOM file's tags (the pixel data is not decoded here). */
type DaikonImage = NonNullable<ReturnType<typeof daikon.Series.parseImage>>;

function parseDicom(bytes: Uint8Array, label: string): DaikonImage {
  // daikon reads some elements from view.buffer directly: hand it a buffer of exactly these bytes
  // (a copy through Uint8Array: Buffer#slice is a view, and a small Buffer lives in Node's shared pool)
  const ab = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
    ? bytes.buffer : new Uint8Array(bytes).buffer;
  const view = new DataView(ab);
  let im: ReturnType<typeof daikon.Series.parseImage>;
  try {
    im = daikon.Series.parseImage(view);
  } catch (e) {
    throw new VitkitError(`Expected a readable DICOM file for ${label} but parsing failed: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
  }
  if (!im) throw new VitkitError(`Expected a readable DICOM file for ${label} but parsing failed`);
  return im;
}

/**
 * Number of Frames (0028,0008) of a DICOM file (1 when absent), without decoding its pixel data.
 * `bytes` may be the file's first bytes only: the count is known once the pixel data element's
 * header is reached (every attribute comes before it); null when these bytes end before that.
 */
export function dicomFrameCount(bytes: Uint8Array, label: string): number | null {
  let im: DaikonImage;
  try {
    im = parseDicom(bytes, label);
  } catch {
    return null; // a prefix cut inside an element; the whole file gives the real error
  }
  if (!im.getTag(0x7fe0, 0x0010)) return null;
  const n = im.getNumberOfFrames();
  return Number.isInteger(n) && n > 1 ? n : 1;
}

/**
 * dcmtk pads an odd-length JPEG fragment to even length with a 0xFF fill byte before EOI
 * (`FF FF D9`; ISO 10918-1 B.1.1.2 allows fill bytes before any marker), which daikon's baseline
 * decoder (pdf.js's jpg.js) refuses as marker 0xFFFF. PS3.5 A.4's usual padding is a 0x00 after
 * EOI: a copy of the file with each fragment-final `FF FF D9` (followed by an item or sequence
 * delimiter tag) as `FF D9 00`, the same length and the same image; null when there is none.
 */
function jpegFillBeforeEoiAsPadding(bytes: Uint8Array, from: number): Uint8Array | null {
  let out: Uint8Array | null = null;
  for (let i = Math.max(0, from); i + 7 <= bytes.length; i++) {
    if (bytes[i] !== 0xff || bytes[i + 1] !== 0xff || bytes[i + 2] !== 0xd9 || bytes[i + 3] !== 0xfe || bytes[i + 4] !== 0xff) continue;
    if (!((bytes[i + 5] === 0x00 || bytes[i + 5] === 0xdd) && bytes[i + 6] === 0xe0)) continue;
    out ??= new Uint8Array(bytes); // a copy (Buffer#slice would be a view of the caller's bytes)
    out[i + 1] = 0xd9;
    out[i + 2] = 0x00;
  }
  return out;
}

const JPEG_DCT = ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51'];

/** Decode a DICOM file's bytes; `label` names the file in every error. */
export function decodeDicom(bytes: Uint8Array, label: string): DicomImage {
  let im = parseDicom(bytes, label);
  const ts = im.getTransferSyntax() ?? '1.2.840.10008.1.2';
  if (JPEG_DCT.includes(ts)) {
    const at = (im.getTag(0x7fe0, 0x0010) as unknown as { offsetStart?: number } | undefined)?.offsetStart ?? 132;
    const fixed = jpegFillBeforeEoiAsPadding(bytes, at);
    if (fixed) im = parseDicom(fixed, label);
  }
  if (!TRANSFER_SYNTAXES[ts]) {
    throw new VitkitError(
      `DICOM file ${label} uses transfer syntax ${ts}, which vitkit cannot decode; supported: ${Object.values(TRANSFER_SYNTAXES).join(', ')}` +
      ` (convert it first, e.g. with dcmtk's \`dcmdjpeg\`/\`dcmconv +te\` or \`gdcmconv --raw\`)`,
    );
  }
  if (!im.hasPixelData()) throw new VitkitError(`Expected pixel data (7FE0,0010) in DICOM file ${label} but it has none`);
  const rows = im.getRows();
  const cols = im.getCols();
  const ba = im.getBitsAllocated();
  const bs = im.getBitsStored() || ba;
  const spp = daikonNumber(im.getTag(0x0028, 0x0002)) ?? 1;
  if (!(rows > 0) || !(cols > 0)) throw expected('positive Rows and Columns', `DICOM file ${label}`, `${rows} x ${cols}`);
  if (spp !== 1) throw new VitkitError(`Expected a grayscale DICOM image (Samples per Pixel 1) for ${label} but received Samples per Pixel ${spp}`);
  if (ba !== 8 && ba !== 16 && ba !== 32) throw expected('Bits Allocated 8, 16 or 32', `DICOM file ${label}`, ba);
  if (!(bs >= 1 && bs <= ba)) throw expected(`Bits Stored in 1..${ba}`, `DICOM file ${label}`, bs);
  const pi = (im.getPhotometricInterpretation() ?? 'MONOCHROME2').trim();
  if (pi !== 'MONOCHROME1' && pi !== 'MONOCHROME2') throw expected('Photometric Interpretation MONOCHROME1 or MONOCHROME2', `DICOM file ${label}`, pi);
  const frames = Math.max(1, im.getNumberOfFrames() || 1);
  const n = rows * cols * frames;
  if (n > 100_000_000) throw expected('at most 100000000 pixels', `DICOM file ${label}`, `${frames} x ${rows} x ${cols}`);
  const need = n * (ba / 8);
  const native = ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2'].includes(ts);
  // the bytes present after the pixel data element's header (daikon's own slice may run one past the end)
  const pxTag = im.getTag(0x7fe0, 0x0010) as unknown as { offsetValue?: number; value?: { byteLength?: number } } | undefined;
  const present = typeof pxTag?.offsetValue === 'number' ? Math.min(bytes.length - pxTag.offsetValue, pxTag.value?.byteLength ?? Infinity) : pxTag?.value?.byteLength;
  if (native && typeof present === 'number' && present < need) {
    throw new VitkitError(`Expected ${need} bytes of pixel data (${frames} frame(s) of ${rows} x ${cols}, ${ba} bits) in DICOM file ${label} but received ${present} (truncated file?)`);
  }
  let raw: ArrayBuffer;
  try {
    raw = im.getPixelDataBytes();
  } catch (e) {
    throw new VitkitError(`Expected decodable ${TRANSFER_SYNTAXES[ts]} pixel data in DICOM file ${label} but decoding failed: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
  }
  if (!raw || raw.byteLength < need) {
    throw new VitkitError(`Expected ${need} bytes of pixel data (${frames} frame(s) of ${rows} x ${cols}, ${ba} bits) in DICOM file ${label} but received ${raw?.byteLength ?? 0} (truncated file?)`);
  }
  const pr = im.getPixelRepresentation() === 1 ? 1 : 0;
  const dv = new DataView(raw, 0, need);
  const le = im.littleEndian;
  const shift = 32 - bs;
  let stored: StoredArray;
  if (ba === 16 && le && bs === 16) {
    // the common case (16 bits stored, little endian): the words themselves, viewed (raw is daikon's own
    // copy at offset 0): no copy, no per-word DataView call, 1 MB less to allocate per 512x512 slice
    stored = pr === 1 ? new Int16Array(raw, 0, n) : new Uint16Array(raw, 0, n); // (frames, rows, cols)
  } else {
    stored = new Int32Array(n); // (frames, rows, cols)
    for (let i = 0; i < n; i++) {
      let w = ba === 8 ? dv.getUint8(i) : ba === 16 ? dv.getUint16(2 * i, le) : dv.getUint32(4 * i, le);
      // the low Bits Stored bits; sign-extended for two's complement
      w = pr === 1 ? (w << shift) >> shift : shift === 0 ? w : w & ((1 << bs) - 1) >>> 0;
      stored[i] = w;
    }
  }
  const wc = num(im.getWindowCenter());
  const ww = num(im.getWindowWidth());
  let padding = daikonNumber(im.getTag(0x0028, 0x0120));
  if (padding !== null && pr === 1 && bs < 32) padding = (padding << (32 - bs)) >> (32 - bs); // US-encoded negative padding
  return {
    rows, cols, frames, bitsAllocated: ba, bitsStored: bs, pixelRepresentation: pr, photometric: pi, transferSyntax: ts,
    modality: (im.getModality() ?? '').trim(),
    slope: num(im.getDataScaleSlope()) ?? 1,
    intercept: num(im.getDataScaleIntercept()) ?? 0,
    window: wc !== null && ww !== null ? { center: wc, width: ww } : null,
    padding, stored,
  };
}

function daikonNumber(tag: { value: unknown[] | null } | undefined): number | null {
  const v = tag?.value?.[0];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
