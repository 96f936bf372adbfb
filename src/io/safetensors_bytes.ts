/**
 * safetensors parsing and serialization from bytes (https://huggingface.co/docs/safetensors): no file
 * I/O, so this runs in a browser too; io/safetensors.ts adds reading and writing files.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON (maybe space-padded), then the
 * byte buffer that every `data_offsets: [begin, end]` is relative to. Every malformed header is
 * reported as a one-line VitkitError naming the file (and tensor) with expected versus received.
 */
import { VitkitError, brief, describe } from '../errors.js';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor's header entry; begin/end are absolute byte offsets of its data in the file buffer. */
export interface StEntry {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F64', 'F32', 'F16', 'BF16']);
const DTYPES = Object.keys(DTYPE_SIZE) as DType[];

/** Headers larger than this are treated as corrupt rather than allocated. */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function tensorIn(name: string, path: string): string {
  return `tensor ${JSON.stringify(name)} in safetensors file ${path}`;
}

/** `Expected <what> for <name> but received <received>` with a preformatted received value. */
function bad(what: string, name: string, received: string): VitkitError {
  return new VitkitError(`Expected ${what} for ${name} but received ${received}`);
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `array ${describe(v)}`;
  if (typeof v === 'object') return 'an object';
  return describe(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A parsed safetensors buffer: header entries plus lazy, copying dtype conversions. */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Absolute offset of the data section (8 + header length). */
  readonly dataStart: number;
  private readonly buf: Uint8Array;
  private readonly entries: Map<string, StEntry>;

  /** Use parseSafetensors / readSafetensors; this validates nothing. */
  constructor(path: string, buf: Uint8Array, dataStart: number, entries: Map<string, StEntry>, metadata: Record<string, string>) {
    this.path = path;
    this.buf = buf;
    this.dataStart = dataStart;
    this.entries = entries;
    this.metadata = metadata;
  }

  /** Tensor names in header order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): StEntry {
    const e = this.entries.get(name);
    if (!e) {
      throw new VitkitError(
        `Expected a tensor named ${JSON.stringify(name)} in safetensors file ${this.path} but received none (${this.entries.size} tensors${nearby(name, this.keys())})`,
      );
    }
    return { dtype: e.dtype, shape: [...e.shape], begin: e.begin, end: e.end };
  }

  /** A copy of the tensor's raw little-endian bytes. */
  bytes(name: string): Uint8Array {
    const e = this.entry(name);
    return this.buf.slice(e.begin, e.end);
  }

  /** Float tensor as float32: F32 copied, F16 / BF16 exact, F64 rounded to nearest. Throws for integer dtypes. */
  f32(name: string): { shape: number[]; data: Float32Array } {
    const e = this.entry(name);
    if (!FLOAT_DTYPES.has(e.dtype)) {
      throw bad('a float dtype (F64, F32, F16, BF16)', tensorIn(name, this.path), `${e.dtype}; use i64() for integer tensors`);
    }
    const n = (e.end - e.begin) / DTYPE_SIZE[e.dtype];
    // bytes: [n * size] fresh copy, 0-aligned, so typed views over it are always aligned.
    const bytes = this.buf.slice(e.begin, e.end);
    const dv = new DataView(bytes.buffer, 0, bytes.byteLength);
    let data: Float32Array;
    switch (e.dtype) {
      case 'F32':
        if (LITTLE_ENDIAN_HOST) {
          data = new Float32Array(bytes.buffer, 0, n);
        } else {
          data = new Float32Array(n);
          for (let i = 0; i < n; i++) data[i] = dv.getFloat32(i * 4, true);
        }
        break;
      case 'F16': {
        data = new Float32Array(n);
        const table = f16Table();
        for (let i = 0; i < n; i++) data[i] = table[dv.getUint16(i * 2, true)]!;
        break;
      }
      case 'BF16': {
        data = new Float32Array(n);
        const bits = new Uint32Array(data.buffer); // [n] same storage as data
        for (let i = 0; i < n; i++) bits[i] = dv.getUint16(i * 2, true) << 16;
        break;
      }
      default: {
        // F64
        data = new Float32Array(n);
        if (LITTLE_ENDIAN_HOST) data.set(new Float64Array(bytes.buffer, 0, n));
        else for (let i = 0; i < n; i++) data[i] = dv.getFloat64(i * 8, true);
        break;
      }
    }
    return { shape: [...e.shape], data };
  }

  /** Integer tensor as BigInt64Array: I64 copied, I32 / I16 / I8 / U8 / BOOL widened. Throws for float dtypes. */
  i64(name: string): { shape: number[]; data: BigInt64Array } {
    const e = this.entry(name);
    if (FLOAT_DTYPES.has(e.dtype)) {
      throw bad('an integer dtype (I64, I32, I16, I8, U8, BOOL)', tensorIn(name, this.path), `${e.dtype}; use f32() for float tensors`);
    }
    const size = DTYPE_SIZE[e.dtype];
    const n = (e.end - e.begin) / size;
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + e.begin, e.end - e.begin);
    const data = new BigInt64Array(n); // [n]
    for (let i = 0; i < n; i++) {
      switch (e.dtype) {
        case 'I64': data[i] = dv.getBigInt64(i * 8, true); break;
        case 'I32': data[i] = BigInt(dv.getInt32(i * 4, true)); break;
        case 'I16': data[i] = BigInt(dv.getInt16(i * 2, true)); break;
        case 'I8': data[i] = BigInt(dv.getInt8(i)); break;
        default: data[i] = BigInt(dv.getUint8(i)); break; // U8, BOOL
      }
    }
    return { shape: [...e.shape], data };
  }
}

function nearby(name: string, keys: string[]): string {
  const tail = name.split('.').pop() ?? name;
  const similar = keys.filter((k) => k.endsWith(`.${tail}`) || k === tail).slice(0, 3);
  return similar.length ? `; similar: ${similar.join(', ')}` : '';
}

let F16_TABLE: Float32Array | undefined;

/** Exact float32 value of every binary16 bit pattern (subnormals, ±inf, NaN included). [65536] */
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToNumber(h);
  F16_TABLE = t;
  return t;
}

/** binary16 bits -> number (exact). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> binary16 bits, round to nearest even; overflow gives ±inf, NaN stays a quiet NaN. */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000; // implicit leading one, 24 significant bits
    const shift = 14 - e; // 14..24
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent rounds up to inf correctly
  return sign | h;
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
export function f32ToBf16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Parse and validate a safetensors buffer. `path` only names the source in errors. */
export function parseSafetensors(buf: Uint8Array, path = '<buffer>'): SafetensorsFile {
  const { entries, metadata, dataStart } = guard(path, () => parseHeader(buf, buf.length, path));
  return new SafetensorsFile(path, buf, dataStart, entries, metadata);
}

/**
 * Any RangeError or TypeError from the engine while reading a hostile file ("offset is out of
 * bounds", "Invalid typed array length", "Maximum call stack size exceeded") becomes a VitkitError
 * that names the file.
 */
function guard<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof VitkitError) throw err;
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new VitkitError(`Expected a well-formed safetensors file for ${path} but reading it failed: ${msg}`);
  }
}

interface ParsedHeader {
  entries: Map<string, StEntry>;
  metadata: Record<string, string>;
  dataStart: number;
}

/**
 * Validate the header in `buf` (which holds at least the 8 + N header bytes) of a file of
 * `fileLen` bytes, with the checks of the reference implementation (safetensors' Rust
 * `SafeTensors::deserialize` / `validate`): a JSON object starting with '{'; each tensor's byte
 * length equal to shape x dtype size; and the tensors' data_offsets, sorted, tiling the data
 * region exactly: the first begins at 0, each begins where the previous ends, and the last ends at
 * the end of the file (no gap, no overlap, no trailing bytes). A header length off by a few bytes
 * or a byte inserted into the header shifts every tensor, and fails here instead of loading garbage.
 */
function parseHeader(buf: Uint8Array, fileLen: number, path: string): ParsedHeader {
  const file = `safetensors file ${path}`;
  if (fileLen < 8) throw bad('at least 8 bytes (the u64 header length)', file, `${fileLen} bytes`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw bad(`a header length of at most ${MAX_HEADER_BYTES} bytes`, file, `${n64} bytes (corrupt or not a safetensors file)`);
  }
  const n = Number(n64);
  if (8 + n > fileLen) {
    throw bad(`a header length of at most ${fileLen - 8} bytes (file size ${fileLen} minus 8)`, file, `${n} bytes (truncated or not a safetensors file)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw bad('a UTF-8 JSON header', file, 'bytes that are not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw bad('a UTF-8 JSON header', file, `invalid JSON (${msg})`);
  }
  if (!isPlainObject(header)) throw bad('a JSON object header', file, jsonType(header));
  if (!text.startsWith('{')) throw bad("a JSON header starting with '{'", file, `a header starting with ${JSON.stringify(text.slice(0, 1))}`);

  const dataStart = 8 + n;
  const dataLen = fileLen - dataStart;
  let metadata: Record<string, string> = {};
  const entries = new Map<string, StEntry>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(raw, file);
      continue;
    }
    entries.set(name, parseEntry(name, raw, path, dataStart, dataLen, fileLen));
  }

  // Overlap: sort non-empty tensors by begin; each must start at or after the previous one's end.
  const spans = [...entries].filter(([, e]) => e.end > e.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1]!;
    const [name, e] = spans[i]!;
    if (e.begin < prev.end) {
      throw bad(
        `data_offsets starting at or after ${prev.end - dataStart} (the end of tensor ${JSON.stringify(prevName)})`,
        tensorIn(name, path),
        `overlapping data_offsets [${e.begin - dataStart}, ${e.end - dataStart}]`,
      );
    }
  }
  // Tiling: all tensors (empty ones too), sorted by (begin, end), are contiguous from offset 0.
  const all = [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  let prevName: string | null = null;
  for (const [name, e] of all) {
    const b = e.begin - dataStart;
    if (b !== at) {
      const after = prevName === null ? 'the start of the data section' : `the end of tensor ${JSON.stringify(prevName)}`;
      throw bad(
        `data_offsets beginning at ${at} (${after}; tensors must tile the data section)`,
        tensorIn(name, path),
        `[${b}, ${e.end - dataStart}] (${b > at ? `a gap of ${b - at} bytes` : 'an overlap'}; a wrong header length or an edited header shifts every tensor)`,
      );
    }
    at = e.end - dataStart;
    prevName = name;
  }
  if (at !== dataLen) {
    throw bad(
      `a data section of ${at} bytes (the end of the last tensor${prevName === null ? '' : `, ${JSON.stringify(prevName)}`})`,
      file,
      `${dataLen} bytes after the header (${dataLen - at} trailing bytes; a wrong header length or an edited header shifts every tensor)`,
    );
  }
  return { entries, metadata, dataStart };
}

function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (!isPlainObject(raw)) throw bad('__metadata__ to be an object of strings', file, jsonType(raw));
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw bad(`a string value for __metadata__ key ${JSON.stringify(k)}`, file, jsonType(v));
  }
  return Object.fromEntries(Object.entries(raw)) as Record<string, string>;
}

function parseEntry(name: string, raw: unknown, path: string, dataStart: number, dataLen: number, fileLen: number): StEntry {
  const where = tensorIn(name, path);
  if (!isPlainObject(raw)) throw bad('an object with dtype, shape and data_offsets', where, jsonType(raw));
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== 'string') throw bad('a dtype string', where, jsonType(dtype));
  if (!(DTYPES as string[]).includes(dtype)) throw bad(`a dtype of ${DTYPES.join(', ')}`, where, describe(dtype));
  if (!Array.isArray(shape)) throw bad('a shape array of non-negative integers', where, jsonType(shape));
  if (!shape.every(isCount)) throw bad('a shape of non-negative integers', where, brief(shape));
  if (!Array.isArray(offsets) || offsets.length !== 2) throw bad('data_offsets [begin, end]', where, jsonType(offsets));
  const [b, e] = offsets as unknown[];
  if (!isCount(b) || !isCount(e) || b > e) {
    throw bad('data_offsets [begin, end] of integers with 0 <= begin <= end', where, brief(offsets));
  }
  if (e > dataLen) {
    throw new VitkitError(
      `Safetensors file ${path} is truncated: tensor ${JSON.stringify(name)} (data_offsets [${b}, ${e}]) needs ${dataStart + e} bytes, has ${fileLen}`,
    );
  }
  const size = DTYPE_SIZE[dtype as DType];
  const want = (shape as number[]).reduce((p, d) => p * d, 1) * size;
  if (want !== e - b) {
    throw bad(
      `${want} bytes (shape [${shape.join(', ')}] x ${dtype} ${size} bytes)`,
      where,
      `${e - b} bytes (data_offsets [${b}, ${e}])`,
    );
  }
  return { dtype: dtype as DType, shape: [...(shape as number[])], begin: dataStart + b, end: dataStart + e };
}

/**
 * The validated header of a safetensors file from its first bytes `head` (8 + N of them, or fewer
 * when the file is shorter) and the whole file's length `fileLen`: names, dtypes and shapes.
 */
export function parseSafetensorsHeader(head: Uint8Array, fileLen: number, path = '<buffer>'): { entries: Map<string, StEntry>; metadata: Record<string, string> } {
  const h = guard(path, () => parseHeader(head, fileLen, path));
  return { entries: h.entries, metadata: h.metadata };
}

export interface StTensorIn {
  /** Stored dtype; defaults to F32 / I64 / I32 from the data. F16 / BF16 round F32 data to nearest even. */
  dtype?: 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';
  shape: readonly number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

function defaultDtype(data: StTensorIn['data']): 'F32' | 'I64' | 'I32' {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof BigInt64Array) return 'I64';
  return 'I32';
}

function arrayKind(data: unknown): string {
  return isPlainObject(data) && data.constructor ? data.constructor.name : describe(data);
}

/** Serialize: keys sorted, offsets contiguous, header space-padded to a multiple of 8. */
export function serializeSafetensors(tensors: Record<string, StTensorIn>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw bad(`a string value for __metadata__ key ${JSON.stringify(k)}`, 'serializeSafetensors', jsonType(v));
    }
    header['__metadata__'] = { ...metadata };
  }
  const plan: { name: string; dtype: NonNullable<StTensorIn['dtype']>; t: StTensorIn; offset: number; bytes: number }[] = [];
  let offset = 0;
  for (const name of names) {
    const where = `tensor ${JSON.stringify(name)} in serializeSafetensors`;
    if (name === '__metadata__') throw bad('a tensor name other than the reserved "__metadata__"', where, '"__metadata__"');
    const t = tensors[name]!;
    const dtype = t.dtype ?? defaultDtype(t.data);
    const needs = dtype === 'I64' ? BigInt64Array : dtype === 'I32' ? Int32Array : Float32Array;
    if (!(t.data instanceof needs)) throw bad(`a ${needs.name} for dtype ${dtype}`, where, arrayKind(t.data));
    if (!t.shape.every((d) => isCount(d))) throw bad('a shape of non-negative integers', where, `[${t.shape.join(', ')}]`);
    const n = t.shape.reduce((p, d) => p * d, 1);
    if (t.data.length !== n) throw bad(`${n} elements (shape [${t.shape.join(', ')}])`, where, `${t.data.length} elements`);
    const bytes = n * DTYPE_SIZE[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    plan.push({ name, dtype, t, offset, bytes });
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const hlen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + hlen + offset); // [u64 len | header padded | data]
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hlen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + hlen);
  const base = 8 + hlen;
  for (const { dtype, t, offset: o } of plan) {
    const p = base + o;
    const n = t.data.length;
    if (LITTLE_ENDIAN_HOST && (dtype === 'F32' || dtype === 'I64' || dtype === 'I32')) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
      continue;
    }
    switch (dtype) {
      case 'F32': {
        const d = t.data as Float32Array;
        for (let i = 0; i < n; i++) dv.setFloat32(p + i * 4, d[i]!, true);
        break;
      }
      case 'F16': {
        const d = t.data as Float32Array;
        for (let i = 0; i < n; i++) dv.setUint16(p + i * 2, f32ToF16Bits(d[i]!), true);
        break;
      }
      case 'BF16': {
        const d = t.data as Float32Array;
        for (let i = 0; i < n; i++) dv.setUint16(p + i * 2, f32ToBf16Bits(d[i]!), true);
        break;
      }
      case 'I64': {
        const d = t.data as BigInt64Array;
        for (let i = 0; i < n; i++) dv.setBigInt64(p + i * 8, d[i]!, true);
        break;
      }
      case 'I32': {
        const d = t.data as Int32Array;
        for (let i = 0; i < n; i++) dv.setInt32(p + i * 4, d[i]!, true);
        break;
      }
    }
  }
  return out;
}
