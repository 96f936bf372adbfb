/**
 * File safety shared by every command:
 * - reads refuse what is not a regular file (a FIFO, /dev/zero, a directory) and stop at a size
 *   cap, so no input can hang a command or exhaust memory;
 * - writes are atomic (`<file>.tmp-<pid>-<hex>`, fsync, then rename, or link when the file must not
 *   be replaced), name the file in every error (ENOSPC included) and leave no temporary file behind;
 * - every writer goes through these helpers (writeFileAtomic, copyFileAtomic, writeThroughTemp for
 *   other kinds of file, commitTemp for a streamed one), so every temporary name is tempName's
 *   (a resumable download's is partialName's);
 * - temporary files of our own naming that an interrupted vitkit process left are removed by the
 *   next run (cleanStaleTemps), only when the process that made them is gone.
 */
import {
  closeSync, constants, copyFileSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeSync, existsSync,
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

/**
 * Our temporary-file naming: `<final name>.tmp-<pid>` or `<final name>.tmp-<pid>-<12 hex>`, made by
 * tempName and by nothing else. The one other name a vitkit writer leaves is a resumable partial
 * download, `<final name>.incomplete` (partialName; Hugging Face's cache convention, so huggingface_hub
 * and vitkit resume each other's downloads).
 */
const TEMP_RE = /^(.+)\.tmp-(\d+)(?:-[0-9a-f]{12})?$/;
const PARTIAL_SUFFIX = '.incomplete';

/** A fresh temporary name beside `file` (same folder, so the commit is a rename): `<file>.tmp-<pid>-<12 hex>`. */
export function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Where a streamed download of `file` that may be resumed by a later process collects its bytes. */
export function partialName(file: string): string {
  return file + PARTIAL_SUFFIX;
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

/** A file in a folder that one of vitkit's writers made and has not (yet) committed under its final name. */
export interface LeftoverTemp {
  path: string;
  /** the final name it was to become */
  final: string;
  /** temp: `.tmp-<pid>[-<hex>]`; partial: a resumable `.incomplete` download */
  kind: 'temp' | 'partial';
  /** the writer's process id (temps only) */
  pid?: number;
  /** a temp whose process is gone: nothing will ever commit it */
  stale: boolean;
}

/** Every temporary or partial file of our naming in `dir` (an unreadable or missing folder has none). */
export function listTemps(dir: string): LeftoverTemp[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: LeftoverTemp[] = [];
  for (const n of names) {
    const p = path.join(dir, n);
    const m = TEMP_RE.exec(n);
    if (m) {
      const pid = Number(m[2]);
      const valid = Number.isSafeInteger(pid) && pid > 0;
      out.push({ path: p, final: path.join(dir, m[1]!), kind: 'temp', pid, stale: valid && !pidAlive(pid) });
    } else if (n.endsWith(PARTIAL_SUFFIX) && n.length > PARTIAL_SUFFIX.length) {
      out.push({ path: p, final: path.join(dir, n.slice(0, -PARTIAL_SUFFIX.length)), kind: 'partial', stale: false });
    }
  }
  return out;
}

/**
 * Remove `<name>.tmp-<pid>[-<hex>]` files in `dir` whose process is no longer running (what an
 * interrupted or killed vitkit left). Files of a live process, and any other name, are kept; so are
 * `.incomplete` partial downloads, which the next download resumes. Returns the removed paths.
 */
export function cleanStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  for (const t of listTemps(dir)) {
    if (t.kind !== 'temp' || !t.stale) continue;
    try {
      unlinkSync(t.path);
      removed.push(t.path);
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

function refusal(file: string, opts: AtomicWriteOptions): VitkitError {
  return new VitkitError(opts.refuse ?? `Output ${file} already exists; pass --overwrite to replace it`);
}

/** The error for a failed write of `file`, naming it; a missing or unwritable folder is said in words. */
function writeError(file: string, what: string, e: unknown): VitkitError {
  if (e instanceof VitkitError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const dir = path.dirname(file);
  const why = code === 'ENOENT' && !existsSync(dir) ? `its folder ${dir} does not exist (ENOENT)`
    : code === 'ENOTDIR' ? `${dir} is not a folder (ENOTDIR)`
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `its folder ${dir} is not writable: ${errnoText(e)}`
        : errnoText(e);
  return new VitkitError(`Cannot write ${what} ${file}: ${why}`);
}

/**
 * Commit a finished temporary file (tempName or partialName, fsynced by its writer) under its final
 * name: rename (overwrite) or hard link (no overwrite: fails instead of replacing a file that
 * appeared meanwhile), then persist the folder. The temporary file is gone afterwards, on failure too;
 * the error names `file`, and a file already there is untouched unless it is replaced whole.
 */
export function commitTemp(tmp: string, file: string, opts: AtomicWriteOptions = {}): void {
  let pending = true;
  try {
    if (opts.overwrite) {
      renameSync(tmp, file);
      pending = false;
    } else {
      try {
        linkSync(tmp, file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || existsSync(file)) throw refusal(file, opts);
        renameSync(tmp, file); // filesystems without hard links
        pending = false;
      }
    }
    syncDir(path.dirname(file));
  } catch (err) {
    throw writeError(file, opts.what ?? 'file', err);
  } finally {
    if (pending) {
      try { unlinkSync(tmp); } catch { /* linked: the final name holds it now */ }
    }
  }
}

/**
 * Make `file` through a fresh temporary file beside it: `fill(tmp)` creates and writes the temporary
 * file (durably: fsync it), then it is committed (commitTemp). On any failure nothing is left under
 * either name and the error names `file`. Without overwrite, an existing file is refused first.
 */
export function writeThroughTemp(file: string, opts: AtomicWriteOptions, fill: (tmp: string) => void): void {
  if (!opts.overwrite && existsSync(file)) throw refusal(file, opts);
  const tmp = tempName(file);
  try {
    fill(tmp);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw writeError(file, opts.what ?? 'file', err);
  }
  commitTemp(tmp, file, opts);
}

/** fsync a file by name (what a writer that did not hold the descriptor calls before commitTemp). */
export function syncFile(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write `data` to `file` atomically: a temporary file in the same folder, fsync, then rename
 * (overwrite) or hard link (no overwrite: fails instead of replacing a file that appeared meanwhile).
 * On any failure the temporary file is removed and the error names `file`.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  writeThroughTemp(file, opts, (tmp) => {
    const fd = openSync(tmp, 'wx');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** Copy `src` to `file` atomically (temporary copy, fsync, commit); errors name `file`. */
export function copyFileAtomic(src: string, file: string, opts: AtomicWriteOptions = {}): void {
  writeThroughTemp(file, opts, (tmp) => {
    copyFileSync(src, tmp, constants.COPYFILE_EXCL);
    syncFile(tmp);
  });
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
