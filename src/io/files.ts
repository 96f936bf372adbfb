/**
 * File safety shared by every command:
 * - reads refuse what is not a regular file (a FIFO, /dev/zero, a directory) and stop at a size
 *   cap, so no input can hang a command or exhaust memory;
 * - writes are atomic (`<file>.tmp-<pid>-<hex>`, fsync, then rename, or link when the file must not
 *   be replaced), name the file in every error (ENOSPC included) and leave no temporary file behind;
 * - temporary files of our own naming that an interrupted vitkit process left are removed by the
 *   next run, only when the process that made them is gone.
 */
import {
  closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeSync, existsSync,
  type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { parseJsonText } from './json.js';

/** errno code plus its words: "ENOSPC (no space left on device)". */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = String(err?.message ?? e).split('\n')[0]!;
  if (!err?.code) return msg;
  // node's messages read "ENOSPC: no space left on device, write": keep the words, drop the syscall
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(msg);
  return m ? `${err.code} (${m[1]})` : err.code;
}

/** What a stat says a path is, in words. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'something that is not a regular file';
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// O_NONBLOCK: opening a FIFO that has no writer must not block; regular files ignore the flag.
const OPEN_READ = constants.O_NONBLOCK !== undefined ? constants.O_RDONLY | constants.O_NONBLOCK : 'r';

/**
 * Read a whole regular file of at most `maxBytes` bytes. `what` names it in errors
 * ("image file", "safetensors file").
 */
export function readRegularFile(file: string, what: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, OPEN_READ);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new VitkitError(`${capital(what)} ${file} does not exist (ENOENT)`);
    if (code === 'EISDIR') throw new VitkitError(`Expected a regular file for ${what} ${file} but received a directory`);
    throw new VitkitError(`Cannot read ${what} ${file}: ${errnoText(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new VitkitError(`Expected a regular file for ${what} ${file} but received ${kindOf(st)}`);
    if (st.size > maxBytes) throw new VitkitError(`Expected ${what} ${file} of at most ${maxBytes} bytes but received ${st.size} bytes`);
    // read at most size + 1 bytes: a file that grows while it is read is cut at the cap and refused
    const cap = Math.min(maxBytes, st.size) + 1;
    const buf = Buffer.allocUnsafe(cap);
    let off = 0;
    for (;;) {
      const n = readSync(fd, buf, off, Math.min(cap - off, 1 << 30), null);
      if (n === 0) break;
      off += n;
      if (off === cap) {
        if (off > maxBytes) throw new VitkitError(`Expected ${what} ${file} of at most ${maxBytes} bytes but it grew past that while being read`);
        break;
      }
    }
    return buf.subarray(0, off);
  } catch (e) {
    if (e instanceof VitkitError) throw e;
    throw new VitkitError(`Cannot read ${what} ${file}: ${errnoText(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** Caps for the small files a command reads whole: label lists, text lists, templates, JSON configs. */
export const MAX_TEXT_FILE_BYTES = 64 << 20;

/** A regular UTF-8 text file of at most `maxBytes` bytes (a FIFO, /dev/zero or a directory is refused before reading). */
export function readTextFile(file: string, what: string, maxBytes = MAX_TEXT_FILE_BYTES): string {
  return readRegularFile(file, what, maxBytes).toString('utf8');
}

/** A regular JSON file of at most `maxBytes` bytes and MAX_JSON_DEPTH levels: the parsed value, or one line naming the file. */
export function readJsonFile(file: string, what: string, maxBytes = MAX_TEXT_FILE_BYTES): unknown {
  return parseJsonText(readTextFile(file, what, maxBytes), `${what} ${file}`);
}

/**
 * `mkdir -p` with a bounded loop and a truthful error. Node's own `mkdirSync(dir, { recursive: true })`
 * spins for ever where mkdir answers ENOENT under a folder that exists (/proc/x), and names the
 * deepest folder rather than the one that failed. Here: walk up to the deepest existing folder (at
 * most the path's depth), then create each missing one once; the error names the folder mkdir refused
 * and why (EROFS: read-only file system, EACCES, ENOENT under /proc, a file in the way).
 */
export function makeDirs(dir: string, what = 'output folder'): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let cur = abs;
  for (;;) {
    let st: Stats | undefined;
    try {
      st = statSync(cur);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new VitkitError(`Cannot create ${what} ${dir}: ${cur}: ${errnoText(e)}`);
    }
    if (st) {
      if (!st.isDirectory()) throw new VitkitError(`Cannot create ${what} ${dir}: ${cur} is a file, not a folder`);
      break;
    }
    missing.push(cur);
    const up = path.dirname(cur);
    if (up === cur) break; // the root itself is missing: mkdir below reports it
    cur = up;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const d = missing[i]!;
    try {
      mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        let isDir = false;
        try { isDir = statSync(d).isDirectory(); } catch { /* vanished again */ }
        if (isDir) continue; // made by another process meanwhile
        throw new VitkitError(`Cannot create ${what} ${dir}: ${d} is a file, not a folder`);
      }
      const why = code === 'EROFS' ? 'the file system is read-only (EROFS)'
        : code === 'ENOENT' ? `${path.dirname(d)} exists but accepts no new folders (ENOENT: a virtual file system such as /proc or /sys?)`
          : errnoText(e);
      throw new VitkitError(`Cannot create ${what} ${dir}: mkdir ${d} failed: ${why}`);
    }
  }
}

/** Read the first `n` bytes of a regular file (fewer if it is shorter). */
export function readRegularFileHead(file: string, what: string, n: number): { head: Buffer; size: number } {
  let fd: number;
  try {
    fd = openSync(file, OPEN_READ);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new VitkitError(`${capital(what)} ${file} does not exist (ENOENT)`);
    throw new VitkitError(`Cannot read ${what} ${file}: ${errnoText(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new VitkitError(`Expected a regular file for ${what} ${file} but received ${kindOf(st)}`);
    const want = Math.min(n, st.size);
    const buf = Buffer.allocUnsafe(want);
    let off = 0;
    while (off < want) {
      const k = readSync(fd, buf, off, want - off, null);
      if (k === 0) break;
      off += k;
    }
    return { head: buf.subarray(0, off), size: st.size };
  } catch (e) {
    if (e instanceof VitkitError) throw e;
    throw new VitkitError(`Cannot read ${what} ${file}: ${errnoText(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** Our temporary-file naming: `<final name>.tmp-<pid>` or `<final name>.tmp-<pid>-<12 hex>`. */
const TEMP_RE = /^(.+)\.tmp-(\d+)(?:-[0-9a-f]{12})?$/;

export function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Remove `<name>.tmp-<pid>[-<hex>]` files in `dir` whose process is no longer running (what an
 * interrupted or killed vitkit left). Files of a live process, and any other name, are kept.
 * Returns the removed paths.
 */
export function cleanStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TEMP_RE.exec(n);
    if (!m) continue;
    const pid = Number(m[2]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pidAlive(pid)) continue;
    try {
      unlinkSync(path.join(dir, n));
      removed.push(path.join(dir, n));
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

export interface AtomicWriteOptions {
  /** replace an existing file (default: refuse) */
  overwrite?: boolean;
  /** names the file in errors: "PNG", "safetensors file" (default "file") */
  what?: string;
  /** the refusal message when the file exists and overwrite is off */
  refuse?: string;
}

/**
 * Write `data` to `file` atomically: a temporary file in the same folder, fsync, then rename
 * (overwrite) or hard link (no overwrite: fails instead of replacing a file that appeared meanwhile).
 * On any failure the temporary file is removed and the error names `file`.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const what = opts.what ?? 'file';
  const refuse = () => new VitkitError(opts.refuse ?? `Output ${file} already exists; pass --overwrite to replace it`);
  if (!opts.overwrite && existsSync(file)) throw refuse();
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = tempName(file);
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(tmp, 'wx');
    created = true;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (opts.overwrite) {
      renameSync(tmp, file);
      created = false;
    } else {
      try {
        linkSync(tmp, file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || existsSync(file)) throw refuse();
        renameSync(tmp, file); // filesystems without hard links
        created = false;
      }
    }
    syncDir(path.dirname(file));
  } catch (err) {
    if (err instanceof VitkitError) throw err;
    throw new VitkitError(`Cannot write ${what} ${file}: ${errnoText(err)}`);
  } finally {
    if (fd !== undefined) {
      try { closeSync(fd); } catch { /* already failing */ }
    }
    if (created) {
      try { unlinkSync(tmp); } catch { /* renamed or linked away */ }
    }
  }
}

/** Best effort: persist the rename itself (not supported on every platform). */
export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // ignore
  }
}
