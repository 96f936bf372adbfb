/**
 * safetensors read and write (https://huggingface.co/docs/safetensors): the files; parsing and
 * serialization from bytes are in safetensors_bytes.ts (re-exported here).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON (maybe space-padded), then the
 * byte buffer that every `data_offsets: [begin, end]` is relative to. Every malformed header is
 * reported as a one-line VitkitError naming the file (and tensor) with expected versus received.
 */
import { existsSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { readRegularFile, readRegularFileHead, writeFileAtomic } from './files.js';
import { VitkitError } from '../errors.js';
import { MAX_HEADER_BYTES, parseSafetensors, parseSafetensorsHeader, serializeSafetensors, type SafetensorsFile, type StEntry, type StTensorIn } from './safetensors_bytes.js';

export * from './safetensors_bytes.js';

/** Read a whole .safetensors file synchronously and validate its header. Only regular files are read. */
export function readSafetensors(path: string): SafetensorsFile {
  const buf = readRegularFile(path, 'safetensors file', MAX_FILE_BYTES);
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

/**
 * The validated header of a .safetensors file, reading only its first 8 + N bytes: names, dtypes
 * and shapes, to check a config against before anything is allocated.
 */
export function readSafetensorsHeader(path: string): { entries: Map<string, StEntry>; metadata: Record<string, string>; size: number } {
  const { head, size } = readRegularFileHead(path, 'safetensors file', 8);
  let need = 8;
  if (head.length === 8) {
    const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (n64 <= BigInt(MAX_HEADER_BYTES)) need = Math.min(size, 8 + Number(n64));
  }
  const full = need > 8 ? readRegularFileHead(path, 'safetensors file', need).head : head;
  const h = parseSafetensorsHeader(new Uint8Array(full.buffer, full.byteOffset, full.byteLength), size, path);
  return { entries: h.entries, metadata: h.metadata, size };
}

/** Largest file read into memory whole. */
export const MAX_FILE_BYTES = Math.min(bufferConstants.MAX_LENGTH, 2 ** 40);

/**
 * Atomic write: serialize, write `<path>.tmp-<pid>-<random>` in the same directory, fsync, then move
 * it over `path`. Without `opts.overwrite` an existing file is refused (and never clobbered by a race).
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, StTensorIn>,
  metadata?: Record<string, string>,
  opts: { overwrite?: boolean } = {},
): void {
  const refuse = `Refusing to overwrite existing file ${path}: pass { overwrite: true } to replace it`;
  if (!opts.overwrite && existsSync(path)) throw new VitkitError(refuse);
  const bytes = serializeSafetensors(tensors, metadata);
  writeFileAtomic(path, bytes, { overwrite: opts.overwrite ?? false, what: 'safetensors file', refuse });
}
