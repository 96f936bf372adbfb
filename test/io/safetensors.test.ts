import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { VitkitError } from '../../src/errors.js';
import { REFS, needRefs } from '../helpers.js';
import {
  f32ToBf16Bits,
  f32ToF16Bits,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from '../../src/io/safetensors.js';

/** dist/test/io/safetensors.test.js -> repo root. */
const tmp = mkdtempSync(join(tmpdir(), 'vitkit-st-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Build a raw file: u64 LE length, header text (object is JSON-encoded), data bytes. */
function raw(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header instanceof Uint8Array ? header : new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Little-endian u16 words as bytes. */
function u16le(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 2);
  const dv = new DataView(b.buffer);
  words.forEach((w, i) => dv.setUint16(i * 2, w, true));
  return b;
}

/** Write bytes to tmp/<name> and read them back, so errors name a real path. */
function readBytes(name: string, bytes: Uint8Array) {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return readSafetensors(p);
}

function throwsVitkit(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VitkitError, `expected VitkitError, got ${String(err)}`);
    assert.doesNotMatch(err.message, /\n/);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('safetensors round trip', () => {
  test('F32 / F16 / BF16 / I64 / I32 with metadata', () => {
    const f = new Float32Array([0, 1, -2, 0.5, 3.25, -0.0078125]); // all exact in f16 and bf16
    const bytes = serializeSafetensors(
      {
        'z.f32': { shape: [2, 3], data: f },
        'a.f16': { dtype: 'F16', shape: [3, 2], data: f },
        'm.bf16': { dtype: 'BF16', shape: [6], data: f },
        ids: { shape: [3], data: new BigInt64Array([0n, -5n, 9007199254740993n]) },
        i32: { shape: [2], data: new Int32Array([-7, 2147483647]) },
        empty: { shape: [0, 4], data: new Float32Array(0) },
      },
      { format: 'pt', note: 'héllo' },
    );
    const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(hlen % 8, 0);
    const st = parseSafetensors(bytes, 'mem.safetensors');
    assert.deepEqual(st.keys(), ['a.f16', 'empty', 'i32', 'ids', 'm.bf16', 'z.f32']);
    assert.deepEqual(st.metadata, { format: 'pt', note: 'héllo' });
    assert.deepEqual(st.f32('z.f32'), { shape: [2, 3], data: f });
    assert.deepEqual(st.f32('a.f16'), { shape: [3, 2], data: f });
    assert.deepEqual(st.f32('m.bf16').data, f);
    assert.deepEqual(st.i64('ids'), { shape: [3], data: new BigInt64Array([0n, -5n, 9007199254740993n]) });
    assert.deepEqual(st.i64('i32').data, new BigInt64Array([-7n, 2147483647n]));
    assert.deepEqual(st.f32('empty'), { shape: [0, 4], data: new Float32Array(0) });
    assert.equal(st.entry('a.f16').dtype, 'F16');
    assert.equal(st.entry('a.f16').begin, 8 + hlen); // sorted first, contiguous from 0
    assert.ok(st.has('ids') && !st.has('nope'));
    // Offsets are contiguous in key order.
    let end = 8 + hlen;
    for (const k of st.keys()) {
      const e = st.entry(k);
      assert.equal(e.begin, end);
      end = e.end;
    }
    assert.equal(end, bytes.length);
  });

  test('f32() returns a copy that later buffer writes do not affect', () => {
    const bytes = serializeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
    const st = parseSafetensors(bytes);
    const { data } = st.f32('w');
    bytes.fill(0, st.entry('w').begin);
    assert.deepEqual(data, new Float32Array([1, 2]));
    assert.deepEqual(st.f32('w').data, new Float32Array([0, 0]));
  });

  test('f32() on integers and i64() on floats throw naming the tensor', () => {
    const st = parseSafetensors(
      serializeSafetensors({ ids: { shape: [1], data: new BigInt64Array([1n]) }, w: { shape: [1], data: new Float32Array([1]) } }),
      'x.safetensors',
    );
    throwsVitkit(() => st.f32('ids'), /float dtype/, /"ids"/, /x\.safetensors/, /received I64/);
    throwsVitkit(() => st.i64('w'), /integer dtype/, /"w"/, /received F32/);
    throwsVitkit(() => st.entry('missing.weight'), /"missing\.weight"/, /x\.safetensors/);
  });

  test('rejects bad tensors on serialize', () => {
    throwsVitkit(() => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }), /"w"/, /4 elements/, /received 3 elements/);
    throwsVitkit(() => serializeSafetensors({ w: { dtype: 'I64', shape: [1], data: new Float32Array(1) } }), /BigInt64Array/, /Float32Array/);
    throwsVitkit(() => serializeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } }), /reserved/);
  });
});

describe('dtype conversions', () => {
  test('F16 bit patterns decode exactly', () => {
    const words = [0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0x3555, 0x0000, 0x8000, 0x7e00, 0xfe01];
    const want = [1, -2, Infinity, -Infinity, 2 ** -24, -(2 ** -24), 1023 * 2 ** -24, 2 ** -14, 65504, 0.333251953125, 0, -0, NaN, NaN];
    const st = parseSafetensors(raw({ h: { dtype: 'F16', shape: [words.length], data_offsets: [0, words.length * 2] } }, u16le(words)));
    const got = st.f32('h').data;
    want.forEach((w, i) => assert.ok(Object.is(got[i], w), `0x${words[i]!.toString(16)}: ${got[i]} != ${w}`));
  });

  test('BF16 bit patterns decode by shifting into the high half', () => {
    const words = [0x3f80, 0xc000, 0x7f80, 0xff80, 0x0001, 0x4049, 0x8000, 0x7fc0];
    const want = [1, -2, Infinity, -Infinity, 2 ** -133, 3.140625, -0, NaN];
    const st = parseSafetensors(raw({ b: { dtype: 'BF16', shape: [2, 4], data_offsets: [0, 16] } }, u16le(words)));
    const got = st.f32('b');
    assert.deepEqual(got.shape, [2, 4]);
    want.forEach((w, i) => assert.ok(Object.is(got.data[i], w), `0x${words[i]!.toString(16)}: ${got.data[i]} != ${w}`));
  });

  test('F64 rounds to nearest float32, integers widen', () => {
    const d = new Float64Array([1 + 2 ** -30, 0.1, -1e300, NaN]);
    const i16 = new Int16Array([-32768, 7]);
    const data = new Uint8Array([...new Uint8Array(d.buffer), ...new Uint8Array(i16.buffer), 0xff, 1, 0]);
    const st = parseSafetensors(
      raw(
        {
          d: { dtype: 'F64', shape: [4], data_offsets: [0, 32] },
          s: { dtype: 'I16', shape: [2], data_offsets: [32, 36] },
          u: { dtype: 'U8', shape: [1], data_offsets: [36, 37] },
          b: { dtype: 'BOOL', shape: [2], data_offsets: [37, 39] },
        },
        data,
      ),
    );
    const f = st.f32('d').data;
    assert.equal(f[0], 1);
    assert.equal(f[1], Math.fround(0.1));
    assert.equal(f[2], -Infinity);
    assert.ok(Number.isNaN(f[3]));
    assert.deepEqual(st.i64('s').data, new BigInt64Array([-32768n, 7n]));
    assert.deepEqual(st.i64('u').data, new BigInt64Array([255n]));
    assert.deepEqual(st.i64('b').data, new BigInt64Array([1n, 0n]));
  });

  test('F16 encoding rounds to nearest even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01], [-0, 0x8000], [1e-10, 0],
    ];
    for (const [v, bits] of cases) assert.equal(f32ToF16Bits(v), bits, `${v}`);
    assert.equal(f32ToF16Bits(NaN) & 0x7e00, 0x7e00);
  });

  test('BF16 encoding rounds to nearest even', () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -20, 0x3f81], [-2, 0xc000],
      [3.4028234663852886e38, 0x7f80], [-0, 0x8000], [Infinity, 0x7f80],
    ];
    for (const [v, bits] of cases) assert.equal(f32ToBf16Bits(v), bits, `${v}`);
    assert.equal(f32ToBf16Bits(NaN) & 0x7fc0, 0x7fc0);
  });

  test('NaN survives an F16 / BF16 round trip', () => {
    const data = new Float32Array([NaN, 1]);
    const st = parseSafetensors(
      serializeSafetensors({ h: { dtype: 'F16', shape: [2], data }, b: { dtype: 'BF16', shape: [2], data } }),
    );
    for (const k of ['h', 'b']) {
      const d = st.f32(k).data;
      assert.ok(Number.isNaN(d[0]), k);
      assert.equal(d[1], 1);
    }
  });
});

describe('reference file', () => {
  test('timm vit_tiny model.safetensors', (t) => {
    const p = join(REFS, 'timm_vit_tiny', 'model.safetensors');
    if (!needRefs(t, p)) return;
    const st = readSafetensors(p);
    assert.equal(st.keys().length, 152);
    assert.deepEqual(st.entry('pos_embed').shape, [1, 197, 192]);
    const pe = st.f32('pos_embed');
    assert.equal(pe.data.length, 197 * 192);
    assert.ok(pe.data.every(Number.isFinite));
  });
});

describe('header validation', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);

  test('file shorter than 8 bytes', () => {
    throwsVitkit(() => readBytes('short.safetensors', new Uint8Array(5)), /short\.safetensors/, /at least 8 bytes/, /received 5 bytes/);
  });

  test('header length larger than the file or absurd', () => {
    throwsVitkit(() => readBytes('hlen.safetensors', raw(ok, eight, 1000n)), /hlen\.safetensors/, /at most \d+ bytes/, /received 1000 bytes/, /truncated/);
    throwsVitkit(() => readBytes('huge.safetensors', raw(ok, eight, 2n ** 62n)), /huge\.safetensors/, /at most 100000000 bytes/, /received 4611686018427387904/);
  });

  test('header not UTF-8 JSON or not an object', () => {
    throwsVitkit(() => readBytes('utf.safetensors', raw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))), /utf\.safetensors/, /UTF-8/, /not valid UTF-8/);
    throwsVitkit(() => readBytes('json.safetensors', raw('{"w": ')), /json\.safetensors/, /JSON header/, /invalid JSON/);
    throwsVitkit(() => readBytes('arr.safetensors', raw('[1, 2]')), /arr\.safetensors/, /JSON object header/, /received array \[1, 2\]/);
    throwsVitkit(() => readBytes('null.safetensors', raw('null')), /JSON object header/, /received null/);
  });

  test('trailing-space padding is accepted', () => {
    const st = readBytes('pad.safetensors', raw(JSON.stringify(ok) + '     ', eight));
    assert.deepEqual(st.f32('w').data, new Float32Array(2));
  });

  test('entry missing fields or of wrong types', () => {
    throwsVitkit(() => readBytes('e1.safetensors', raw({ w: 3 })), /e1\.safetensors/, /"w"/, /object with dtype, shape and data_offsets/, /received 3/);
    throwsVitkit(() => readBytes('e2.safetensors', raw({ w: { shape: [2], data_offsets: [0, 8] } }, eight)), /"w"/, /dtype string/, /received undefined/);
    throwsVitkit(() => readBytes('e3.safetensors', raw({ w: { dtype: 'F32', data_offsets: [0, 8] } }, eight)), /"w"/, /shape array/, /received undefined/);
    throwsVitkit(() => readBytes('e4.safetensors', raw({ w: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, eight)), /"w"/, /shape array/, /received "2"/);
    throwsVitkit(() => readBytes('e5.safetensors', raw({ w: { dtype: 'F32', shape: [2] } }, eight)), /e5\.safetensors/, /"w"/, /data_offsets/, /received undefined/);
    throwsVitkit(() => readBytes('e6.safetensors', raw({ w: { dtype: 'F32', shape: [2], data_offsets: ['0', 8] } }, eight)), /"w"/, /data_offsets/, /received \["0", 8\]/);
  });

  test('unknown dtype', () => {
    throwsVitkit(() => readBytes('dt.safetensors', raw({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, eight)), /dt\.safetensors/, /"w"/, /dtype of F64, F32/, /received "F8_E4M3"/);
  });

  test('negative or non-integer shape dims', () => {
    throwsVitkit(() => readBytes('neg.safetensors', raw({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, eight)), /neg\.safetensors/, /"w"/, /non-negative integers/, /received \[2, -1\]/);
    throwsVitkit(() => readBytes('frac.safetensors', raw({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, eight)), /"w"/, /received \[1\.5\]/);
  });

  test('data_offsets out of order or past the end (truncated)', () => {
    throwsVitkit(() => readBytes('ord.safetensors', raw({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, eight)), /ord\.safetensors/, /"w"/, /begin <= end/, /received \[8, 4\]/);
    const header = { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } };
    const full = raw(header, new Uint8Array(16));
    throwsVitkit(() => readBytes('trunc.safetensors', full.subarray(0, full.length - 6)), /trunc\.safetensors is truncated/, /"w"/, new RegExp(`needs ${full.length} bytes, has ${full.length - 6}`));
  });

  test('shape x dtype size differs from byte length', () => {
    throwsVitkit(() => readBytes('size.safetensors', raw({ w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, eight)), /size\.safetensors/, /"w"/, /Expected 12 bytes/, /shape \[2, 3\] x F16/, /received 8 bytes/);
  });

  test('overlapping tensors', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] }, // empty tensors never overlap
    };
    throwsVitkit(() => readBytes('ovl.safetensors', raw(header, new Uint8Array(12))), /ovl\.safetensors/, /"b"/, /"a"/, /at or after 8/, /received overlapping data_offsets \[4, 12\]/);
  });

  test('offsets must tile the data section: gaps, a late start, trailing bytes', () => {
    const gap = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    throwsVitkit(() => readBytes('gap.safetensors', raw(gap, new Uint8Array(12))), /gap\.safetensors/, /"b"/, /beginning at 4/, /"a"/, /gap of 4 bytes/);
    const late = { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } };
    throwsVitkit(() => readBytes('late.safetensors', raw(late, new Uint8Array(8))), /"a"/, /beginning at 0/, /start of the data section/);
    throwsVitkit(() => readBytes('trail.safetensors', raw(ok, new Uint8Array(9))), /trail\.safetensors/, /data section of 8 bytes/, /received 9 bytes/, /1 trailing bytes/);
    // an empty tensor sits where the running offset is, as in the reference implementation
    const empty = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, e: { dtype: 'F32', shape: [0], data_offsets: [2, 2] } };
    throwsVitkit(() => readBytes('emp.safetensors', raw(empty, new Uint8Array(4))), /"e"|"a"/);
    const emptyOk = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } };
    assert.deepEqual(readBytes('empok.safetensors', raw(emptyOk, new Uint8Array(4))).keys(), ['a', 'e']);
    // a file with only empty tensors (or none) has no data section
    assert.deepEqual(readBytes('none.safetensors', raw({})).keys(), []);
  });

  test('a header length short by 1-7 bytes or a byte inserted in the header is refused', () => {
    const good = serializeSafetensors({ w: { shape: [3], data: new Float32Array([1, 2, 3]) }, v: { shape: [2], data: new Float32Array([4, 5]) } });
    const hlen = Number(new DataView(good.buffer).getBigUint64(0, true));
    for (let k = 1; k <= 7; k++) {
      const b = new Uint8Array(good);
      new DataView(b.buffer).setBigUint64(0, BigInt(hlen - k), true);
      // JSON.parse still accepts the header when k only eats padding; the shifted data must not load
      throwsVitkit(() => parseSafetensors(b, `short${k}`), new RegExp(`short${k}`), /trailing bytes|tile|JSON/);
    }
    // one byte inserted at each position of the header (length unchanged): never loads silently
    for (let at = 8; at < 8 + hlen; at++) {
      const b = new Uint8Array(good.length + 1);
      b.set(good.subarray(0, at), 0);
      b[at] = 0x20;
      b.set(good.subarray(at), at + 1);
      throwsVitkit(() => parseSafetensors(b, `ins${at}`), new RegExp(`ins${at}`));
    }
  });

  test('deeply nested header values give a named error, not a stack overflow', () => {
    const deep = '['.repeat(100000) + ']'.repeat(100000);
    const text = `{"w": {"dtype": "F32", "shape": ${deep}, "data_offsets": [0, 8]}}`;
    throwsVitkit(() => readBytes('deep.safetensors', raw(text, eight)), /deep\.safetensors/, /"w"/, /shape of non-negative integers/, /\[\[\[\[\.\.\.\]\]\]\]/);
    const deepOff = `{"w": {"dtype": "F32", "shape": [2], "data_offsets": [${deep}, 8]}}`;
    throwsVitkit(() => readBytes('deep2.safetensors', raw(deepOff, eight)), /deep2\.safetensors/, /data_offsets/);
    const deepMeta = `{"__metadata__": {"a": ${deep}}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}`;
    throwsVitkit(() => readBytes('deep3.safetensors', raw(deepMeta, eight)), /deep3\.safetensors/, /__metadata__ key "a"/);
  });

  test('non-regular files are refused: a directory, a FIFO, /dev/zero', (t) => {
    throwsVitkit(() => readSafetensors(tmp), /regular file/, /directory/);
    if (existsSync('/dev/zero')) throwsVitkit(() => readSafetensors('/dev/zero'), /\/dev\/zero/, /regular file/, /character device/);
    const fifo = join(tmp, 'pipe.safetensors');
    const r = spawnSync('mkfifo', [fifo]);
    if (r.status !== 0) { t.diagnostic('mkfifo unavailable'); return; }
    throwsVitkit(() => readSafetensors(fifo), /pipe\.safetensors/, /FIFO/);
  });

  test('__metadata__ values must be strings', () => {
    throwsVitkit(() => readBytes('meta.safetensors', raw({ __metadata__: { epoch: 3 }, ...ok }, eight)), /meta\.safetensors/, /__metadata__ key "epoch"/, /received 3 of type number/);
    throwsVitkit(() => readBytes('meta2.safetensors', raw({ __metadata__: ['x'], ...ok }, eight)), /__metadata__/, /received array/);
  });

  test('missing file', () => {
    throwsVitkit(() => readSafetensors(join(tmp, 'nope.safetensors')), /nope\.safetensors/, /ENOENT/);
  });
});

describe('writeSafetensors', () => {
  test('writes atomically and refuses to overwrite without opts.overwrite', () => {
    const dir = mkdtempSync(join(tmp, 'w-'));
    const p = join(dir, 'model.safetensors');
    const t1 = { w: { shape: [3], data: new Float32Array([1, 2, 3]) } };
    writeSafetensors(p, t1, { step: '1' });
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    const first = readFileSync(p);
    assert.deepEqual(readSafetensors(p).f32('w').data, new Float32Array([1, 2, 3]));

    throwsVitkit(() => writeSafetensors(p, { w: { shape: [1], data: new Float32Array([9]) } }), /overwrite/, new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.deepEqual(readFileSync(p), first);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);

    writeSafetensors(p, { w: { dtype: 'BF16', shape: [1], data: new Float32Array([9]) } }, undefined, { overwrite: true });
    const st = readSafetensors(p);
    assert.deepEqual(st.metadata, {});
    assert.equal(st.entry('w').dtype, 'BF16');
    assert.deepEqual(st.f32('w').data, new Float32Array([9]));
    assert.equal(readdirSync(dir).filter((f) => f.includes('.tmp-')).length, 0);
  });

  test('a failed serialize leaves nothing behind', () => {
    const dir = mkdtempSync(join(tmp, 'f-'));
    throwsVitkit(() => writeSafetensors(join(dir, 'bad.safetensors'), { w: { shape: [2], data: new Float32Array(1) } }), /"w"/);
    assert.deepEqual(readdirSync(dir), []);
  });
});
