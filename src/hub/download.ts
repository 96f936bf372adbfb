/**
 * Downloading one file of a Hub repository into the shared cache, with huggingface_hub's semantics
 * (file_download.py): a HEAD request on {endpoint}/{repo}/resolve/{revision}/{file} gives the commit
 * (X-Repo-Commit), the etag (X-Linked-Etag before ETag; W/ and quotes stripped) and the size
 * (X-Linked-Size before Content-Length). Only relative redirects are followed for it (renamed repos); the
 * absolute redirect of a large file to its CDN is not, its headers are the metadata. The GET follows every
 * redirect and never sends the token to another origin. Bytes go to blobs/{etag}.incomplete, resumed with
 * a Range request after a dropped connection (within the call, and by the next call), checked against the
 * size and, for LFS files whose etag is the sha256 of the content, against the sha256, then renamed to
 * blobs/{etag}: a partial file never has a final name.
 *
 * Why not @huggingface/hub: its downloadFileToCacheDir asks the paths-info API instead of the resolve
 * headers, names the snapshot by the file's last commit rather than the revision's commit, writes no
 * refs/<revision>, has no HF_HUB_OFFLINE, no resume and no checksum, so a cache it writes is not the one
 * Python reads. The protocol is small enough to speak on Node's fetch.
 */
import { createHash } from 'node:crypto';
import { createReadStream, openSync, closeSync, writeSync, readFileSync, unlinkSync, statSync, statfsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { VitkitError } from '../errors.js';
import { RepoCache, fileSize, removeIfPresent } from './cache.js';
import { commitTemp, makeDirs, partialName, syncFile } from '../io/files.js';
import { parseJsonText } from '../io/json.js';

export interface HttpOptions {
  endpoint: string;
  token?: string | undefined;
  /** seconds for the metadata request and for any pause in a download (HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT) */
  etagTimeout?: number;
  downloadTimeout?: number;
  /** a progress bar on stderr; default: stderr is a TTY and the file is over 1 MiB */
  progress?: boolean;
  /** attempts per file when the connection drops mid-download (each resumes where the last stopped) */
  retries?: number;
  /** the most bytes one file may have, whatever the server declares (default: maxFileBytes(file)) */
  maxBytes?: number;
}

/** ETags name blobs/<etag> in the cache: a git blob sha1 (40 hex) or an LFS sha256 (64 hex), nothing else. */
export const ETAG_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** configs, tokenizer files and other small files: tokenizer.json of the largest vocabularies is ~20 MB */
export const MAX_SMALL_FILE_BYTES = 64 << 20;
/** weights: larger than any single safetensors file vitkit can load into memory */
export const MAX_WEIGHTS_BYTES = 2 ** 40;
/** left free on the cache's file system after a download */
const FREE_SPACE_MARGIN = 64 << 20;

/** The cap on one file's size: weights (.safetensors, .bin, .pt) up to 1 TiB, every other file 64 MiB. */
export function maxFileBytes(file: string): number {
  return /\.(safetensors|bin|pt|pth|onnx|gguf)$/i.test(file) ? MAX_WEIGHTS_BYTES : MAX_SMALL_FILE_BYTES;
}

/** A server-supplied value, abbreviated and quoted for an error message. */
function shown(v: string): string {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
}

/** bytes free to this user on the file system holding `dir`, or undefined where statfs is unavailable */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

function gb(n: number): string {
  return `${(n / 1e9).toFixed(n < 1e9 ? 3 : 1)} GB`;
}

export interface FileMetadata {
  commit: string;
  etag: string;
  size: number | undefined;
  /** where the bytes are: the CDN URL a large file redirects to, else the resolve URL */
  location: string;
}

export const OFFLINE_HINT = 'set HF_HUB_OFFLINE=1 to use the local cache';

/** The Hub's error classes, from X-Error-Code or the status. */
export class HubHttpError extends VitkitError {
  constructor(message: string, readonly status: number, readonly code: string | undefined) {
    super(message);
  }
}

/** fetch failed before an HTTP status: DNS, refused connection, reset, timeout. */
export class HubNetworkError extends VitkitError {}

export function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.trim().replace(/^W\//, '').replace(/^"+|"+$/g, '') || undefined;
}

export function resolveUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

function userAgent(): string {
  return `vitkit/0.1.0; node/${process.versions.node}`;
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}

async function send(url: string, init: RequestInit, what: string, endpoint: string): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: 'manual' });
  } catch (e) {
    throw new HubNetworkError(`Could not reach ${endpoint} for ${what}: ${causeOf(e)}; ${OFFLINE_HINT}`);
  }
}

function headersFor(url: string, http: HttpOptions, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'user-agent': userAgent(), 'accept-encoding': 'identity', ...extra };
  // the token goes to the endpoint only, never to the CDN a large file redirects to
  if (http.token && new URL(url).origin === new URL(http.endpoint).origin) h['authorization'] = `Bearer ${http.token}`;
  return h;
}

/** One line for a failed response, naming the repository and file. */
function httpError(res: Response, repoId: string, revision: string, file: string, http: HttpOptions): HubHttpError {
  const code = res.headers.get('x-error-code') ?? undefined;
  const where = `${file} of ${repoId}@${revision} (${http.endpoint})`;
  let msg: string;
  if (code === 'GatedRepo' || res.status === 403) {
    msg = `Access to ${repoId} is restricted (403${code ? ` ${code}` : ''}) while fetching ${where}: accept its conditions on the Hub and set HF_TOKEN`;
  } else if (res.status === 401) {
    msg = http.token
      ? `The Hub refused the token in HF_TOKEN for ${where} (401): the repository is private, gated or does not exist`
      : `The Hub needs a token for ${where} (401): the repository is private, gated or does not exist; set HF_TOKEN`;
  } else if (code === 'RepoNotFound') {
    msg = `Repository ${repoId} not found on ${http.endpoint} (404 while fetching ${file})`;
  } else if (code === 'RevisionNotFound') {
    msg = `Revision ${JSON.stringify(revision)} not found in ${repoId} (404 while fetching ${file})`;
  } else if (res.status === 404) {
    msg = `File ${file} not found in ${repoId}@${revision} (404 from ${http.endpoint})`;
  } else {
    msg = `The Hub answered ${res.status} ${res.statusText} for ${where}`;
  }
  return new HubHttpError(`${msg}; ${OFFLINE_HINT}`, res.status, code);
}

/**
 * HEAD resolve/{revision}/{file}: commit, etag and size, or null where the file (only the file) does not
 * exist at that revision — then `missingAt` is the commit the Hub reported, if any.
 */
export async function fileMetadata(
  repoId: string, revision: string, file: string, http: HttpOptions,
): Promise<{ meta: FileMetadata | null; missingAt?: string | undefined }> {
  let url = resolveUrl(http.endpoint, repoId, revision, file);
  const what = `${file} of ${repoId}@${revision}`;
  let hub: Response | undefined; // the last answer that carried X-Repo-Commit: the Hub's own, not a CDN's
  for (let hop = 0; ; hop++) {
    const res = await send(url, { method: 'HEAD', headers: headersFor(url, http), signal: AbortSignal.timeout((http.etagTimeout ?? 10) * 1000) }, what, http.endpoint);
    if (res.headers.get('x-repo-commit')) hub = res;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location && !/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(location) && hop < 10) {
      url = new URL(location, url).toString(); // relative: a renamed repository, or a CDN path on the same host
      continue;
    }
    if (res.status === 404 && (res.headers.get('x-error-code') ?? 'EntryNotFound') === 'EntryNotFound') {
      return { meta: null, missingAt: res.headers.get('x-repo-commit') ?? undefined };
    }
    if (res.status >= 400 || (res.status >= 300 && !location)) throw httpError(res, repoId, revision, file, http);
    const src = hub ?? res;
    const commit = src.headers.get('x-repo-commit');
    const etag = normalizeEtag(src.headers.get('x-linked-etag') ?? src.headers.get('etag'));
    if (!commit) throw new VitkitError(`The server at ${http.endpoint} sent no X-Repo-Commit header for ${what}: is HF_ENDPOINT a Hugging Face Hub?`);
    if (!etag) throw new VitkitError(`The server at ${http.endpoint} sent no ETag for ${what}: cannot name the file in the cache`);
    // the etag names a file in the cache: anything but a hash could climb out of it ("../../x")
    if (!ETAG_RE.test(etag)) throw new VitkitError(`Expected an ETag of 40 or 64 hex characters from ${http.endpoint} for ${what} but received ${shown(etag)}; refusing to name a cache file after it`);
    const sizeHeader = src.headers.get('x-linked-size') ?? (res.status < 300 ? res.headers.get('content-length') : null);
    const size = sizeHeader !== null && /^\d{1,16}$/.test(sizeHeader.trim()) ? Number(sizeHeader.trim()) : undefined;
    const cap = http.maxBytes ?? maxFileBytes(file);
    if (size !== undefined && size > cap) {
      throw new VitkitError(`Expected ${what} of at most ${cap} bytes but ${http.endpoint} declares ${size} bytes; refusing to download it`);
    }
    // as huggingface_hub does: download straight from the redirect target (one hop fewer, and the exact
    // version the metadata describes even if the branch moves in between); a small file at the commit
    const at = res.status >= 300 && location ? new URL(location, url).toString()
      : src !== res ? url
        : url.replace(`/resolve/${encodeURIComponent(revision)}/`, `/resolve/${commit}/`);
    return { meta: { commit, etag, size, location: at } };
  }
}

/**
 * Files this process must not leave behind if it is stopped (SIGINT/SIGTERM): its lock files. Temporary
 * files (src/io/files.ts) are written and committed synchronously, so no signal handler runs between the
 * two. A blob's `.incomplete` (partialName) is not one of them: it never has a final name and the next
 * run resumes it.
 */
export const inFlight = new Set<string>();

/** Remove every in-flight lock and temporary file (a signal handler's last act before exiting). */
export function removeInFlight(): void {
  for (const f of inFlight) {
    try { removeIfPresent(f); } catch { /* best effort on the way out */ }
  }
  inFlight.clear();
}

/** Where a blob may be in flight by another vitkit process: wait for it (an exclusive-create lock file with our pid). */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  makeDirs(path.dirname(lock), 'Hugging Face cache folder');
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      inFlight.add(lock);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      try { holder = Number(readFileSync(lock, 'utf8')); } catch { /* vanished or being written */ }
      let alive = true;
      if (Number.isInteger(holder) && holder > 0) {
        try { process.kill(holder, 0); } catch (k) { alive = (k as NodeJS.ErrnoException).code === 'EPERM'; }
      } else {
        try { alive = Date.now() - statSync(lock).mtimeMs < 10_000; } catch { alive = false; }
      }
      if (!alive) { removeIfPresent(lock); continue; }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    removeIfPresent(lock);
    inFlight.delete(lock);
  }
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** Download a file's bytes from meta.location into blobs/{etag} (resuming any blobs/{etag}.incomplete) and verify them. */
export async function downloadBlob(cache: RepoCache, file: string, revision: string, meta: FileMetadata, http: HttpOptions): Promise<void> {
  const url = meta.location;
  const blob = cache.blobPath(meta.etag);
  await withLock(cache.lockPath(meta.etag), async () => {
    if (fileSize(blob) >= 0) return; // another process finished it while we waited
    makeDirs(path.dirname(blob), 'Hugging Face cache folder');
    const incomplete = partialName(blob);
    const what = `${file} of ${cache.repoId}`;
    const retries = http.retries ?? 5;
    const showBar = http.progress ?? (process.stderr.isTTY === true && (meta.size ?? 0) > 1 << 20);
    // the most bytes this file may take: the declared size, never more than the cap or the free space
    const cap = http.maxBytes ?? maxFileBytes(file);
    const free = freeBytes(path.dirname(blob));
    const need = (meta.size ?? 0) - Math.max(0, fileSize(incomplete));
    if (free !== undefined && need > free - FREE_SPACE_MARGIN) {
      throw new VitkitError(`Not enough free space for ${what}: it needs ${gb(need)} but ${path.dirname(blob)} has ${gb(Math.max(0, free))} free; free some space or set HF_HUB_CACHE to another disk`);
    }
    const limit = Math.min(meta.size ?? cap, cap);
    let bar: cliProgress.SingleBar | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        const existing = fileSize(incomplete);
        let have = Math.max(0, existing);
        if (meta.size !== undefined && have > meta.size) { removeIfPresent(incomplete); have = 0; }
        if (existing >= 0 && have === meta.size) break; // complete already: verify below
        let res: Response;
        try {
          res = await get(url, have, http, what);
        } catch (e) {
          // after a break: the reconnect failing is part of the broken download, not an unreachable Hub
          if (attempt === 0 || !(e instanceof HubNetworkError)) throw e;
          if (attempt >= retries) throw brokeOff(what, http, have, meta.size, e.message.replace(/^.*: ([^:;]+);.*$/, '$1'));
          await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
          continue;
        }
        if (res.status === 416 && have > 0) { // our partial file is no prefix of the current one: restart
          await res.body?.cancel();
          removeIfPresent(incomplete);
          continue;
        }
        if (res.status !== 200 && res.status !== 206) {
          await res.body?.cancel();
          throw httpError(res, cache.repoId, revision, file, http);
        }
        if (res.status === 206) {
          const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
          if (!m || Number(m[1]) !== have) { // a range we did not ask for: start over
            await res.body?.cancel();
            removeIfPresent(incomplete);
            if (attempt >= retries) throw new VitkitError(`The server sent a wrong range for ${what}; ${OFFLINE_HINT}`);
            continue;
          }
        } else {
          have = 0; // 200: the whole file, whatever we asked
        }
        if (showBar && !bar && meta.size !== undefined) {
          bar = new cliProgress.SingleBar({
            stream: process.stderr, hideCursor: true, clearOnComplete: true,
            format: `${file} [{bar}] {percentage}% | {done}/{whole} MB`,
          }, cliProgress.Presets.shades_classic);
          bar.start(meta.size, have, { done: mb(have), whole: mb(meta.size) });
        }
        const fh = await open(incomplete, have > 0 ? 'a' : 'w');
        let dropped: unknown;
        try {
          const body = res.body;
          if (!body) throw new Error('empty body');
          const idle = http.downloadTimeout ?? 10;
          const reader = body.getReader();
          for (;;) {
            const next = await readWithTimeout(reader, idle * 1000);
            if (next.done) break;
            if (have + next.value.length > limit) {
              await reader.cancel().catch(() => undefined);
              throw new OverSize();
            }
            await fh.write(next.value);
            have += next.value.length;
            bar?.update(have, { done: mb(have) });
          }
        } catch (e) {
          dropped = e;
        } finally {
          await fh.close();
        }
        if (dropped instanceof OverSize) {
          removeIfPresent(incomplete);
          throw new VitkitError(meta.size !== undefined && meta.size <= cap
            ? `${http.endpoint} sent more than the ${meta.size} bytes it declared for ${what}; the partial file was deleted`
            : `Expected ${what} of at most ${cap} bytes but ${http.endpoint} sent more; the partial file was deleted`);
        }
        if (dropped === undefined) break;
        if (attempt >= retries) throw brokeOff(what, http, have, meta.size, causeOf(dropped));
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt))); // back off, then resume
      }
    } finally {
      bar?.stop();
    }
    const got = fileSize(incomplete);
    if (meta.size !== undefined && got !== meta.size) {
      removeIfPresent(incomplete);
      throw new VitkitError(`Download of ${what} has ${got} bytes but the Hub announced ${meta.size}; the partial file was deleted, run the command again`);
    }
    if (/^[0-9a-f]{64}$/.test(meta.etag)) { // LFS: the etag is the content's sha256
      const sum = await sha256File(incomplete);
      if (sum !== meta.etag) {
        unlinkSync(incomplete);
        throw new VitkitError(`Download of ${what} is corrupt: sha256 ${sum} but the Hub's etag is ${meta.etag}; the file was deleted, run the command again`);
      }
    }
    syncFile(incomplete);
    commitTemp(incomplete, blob, { overwrite: true, what: `Hugging Face cache blob for ${what}` });
  });
}

class OverSize extends Error {}

function brokeOff(what: string, http: HttpOptions, have: number, size: number | undefined, cause: string): VitkitError {
  return new VitkitError(`Download of ${what} from ${http.endpoint} broke off at ${have} of ${size ?? '?'} bytes (${cause}); `
    + `the partial file is kept as .incomplete (never used as the file): run the command again to resume, or ${OFFLINE_HINT}`);
}

async function readWithTimeout(reader: { read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>; cancel(): Promise<void> }, ms: number): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error('timed out'); e.name = 'TimeoutError';
      reject(e);
      void reader.cancel().catch(() => undefined);
    }, ms);
  });
  try {
    return await Promise.race([reader.read(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET following every redirect (up to 10), Range from `from` when resuming. */
async function get(url: string, from: number, http: HttpOptions, what: string): Promise<Response> {
  const extra: Record<string, string> = from > 0 ? { range: `bytes=${from}-` } : {};
  for (let hop = 0; hop <= 10; hop++) {
    // the timeout covers the wait for the response headers only; a stalled body is caught by readWithTimeout
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), (http.downloadTimeout ?? 10) * 1000);
    let res: Response;
    try {
      res = await send(url, { method: 'GET', headers: headersFor(url, http, extra), signal: ctl.signal }, what, http.endpoint);
    } finally {
      clearTimeout(timer);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url).toString();
      continue;
    }
    return res;
  }
  throw new VitkitError(`Too many redirects for ${what} from ${http.endpoint}`);
}

/** the most bytes of a repository listing: 16 MiB is ~100,000 file names */
const MAX_LISTING_BYTES = 16 << 20;

/**
 * A file name from a server's listing, checked before it names anything on disk: relative, no `..` or `.`
 * segment, no empty segment, no NUL or other control character, no backslash (a separator on Windows),
 * no drive letter, at most 1,000 characters. Returns the reason it is refused, or null.
 */
export function unsafeRepoPath(name: unknown): string | null {
  if (typeof name !== 'string') return `not a string (${typeof name})`;
  if (name.length === 0 || name.length > 1000) return `${name.length} characters (expected 1 to 1000)`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a control character (NUL included)';
  if (name.includes('\\')) return 'a backslash';
  if (name.startsWith('/')) return 'an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter';
  const parts = name.split('/');
  if (parts.some((p) => p === '..')) return 'a ".." segment';
  if (parts.some((p) => p === '.' || p === '')) return 'an empty or "." segment';
  return null;
}

/**
 * The files of a repository at a revision, as huggingface_hub's snapshot_download lists them:
 * GET {endpoint}/api/models/{repo}/revision/{revision} -> {"sha", "siblings": [{"rfilename"}]}. The body
 * is capped (16 MiB), the commit must be 40 hex characters and every name must pass unsafeRepoPath.
 */
export async function listRepoFiles(repoId: string, revision: string, http: HttpOptions): Promise<{ commit: string; files: string[] }> {
  const url = `${http.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}`;
  const what = `the file list of ${repoId}@${revision}`;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), (http.etagTimeout ?? 10) * 1000);
  let text: string;
  try {
    const res = await send(url, { method: 'GET', headers: headersFor(url, http), signal: ctl.signal }, what, http.endpoint);
    if (res.status !== 200) {
      await res.body?.cancel();
      throw httpError(res, repoId, revision, '(file list)', http);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > MAX_LISTING_BYTES) {
      await res.body?.cancel();
      throw new VitkitError(`Expected ${what} of at most ${MAX_LISTING_BYTES} bytes but ${http.endpoint} declares ${declared} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    const reader = res.body!.getReader();
    try {
      for (;;) {
        const next = await reader.read();
        if (next.done) break;
        n += next.value.length;
        if (n > MAX_LISTING_BYTES) {
          await reader.cancel().catch(() => undefined);
          throw new VitkitError(`Expected ${what} of at most ${MAX_LISTING_BYTES} bytes but ${http.endpoint} sent more`);
        }
        chunks.push(next.value);
      }
    } catch (e) {
      if (e instanceof VitkitError) throw e;
      throw new VitkitError(`Download of ${what} from ${http.endpoint} broke off after ${n} bytes (${causeOf(e)}); ${OFFLINE_HINT}`);
    }
    text = Buffer.concat(chunks).toString('utf8');
  } finally {
    clearTimeout(timer);
  }
  const v = parseJsonText(text, what);
  const o = (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  const commit = o['sha'];
  if (typeof commit !== 'string' || !/^[0-9a-f]{40}$/.test(commit)) {
    throw new VitkitError(`Expected a commit of 40 hex characters as "sha" in ${what} from ${http.endpoint} but received ${shown(JSON.stringify(commit) ?? 'nothing')}`);
  }
  const siblings = o['siblings'];
  if (!Array.isArray(siblings)) throw new VitkitError(`Expected a "siblings" array in ${what} from ${http.endpoint} but received ${shown(JSON.stringify(siblings) ?? 'nothing')}`);
  if (siblings.length > 100_000) throw new VitkitError(`Expected at most 100000 files in ${what} but received ${siblings.length}`);
  const files: string[] = [];
  for (const s of siblings) {
    const name = (typeof s === 'object' && s !== null ? (s as Record<string, unknown>)['rfilename'] : undefined);
    const bad = unsafeRepoPath(name);
    if (bad) throw new VitkitError(`${http.endpoint} listed a file name with ${bad} in ${what}: ${shown(String(JSON.stringify(name)))}; refusing to download from this listing`);
    files.push(name as string);
  }
  return { commit, files };
}

/**
 * huggingface_hub's allow_patterns / ignore_patterns (fnmatch): `*` matches any characters, `/`
 * included; `?` one character; `[abc]`, `[!abc]` a class; a pattern ending in `/` matches what is under
 * that folder.
 */
export function globToRegExp(pattern: string): RegExp {
  const p = pattern.endsWith('/') ? `${pattern}*` : pattern;
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = p.slice(i + 1, end);
      const neg = body.startsWith('!');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** the files that match any of `include` (all when none) and none of `exclude` */
export function filterFiles(files: readonly string[], include: readonly string[] = [], exclude: readonly string[] = []): string[] {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return files.filter((f) => (inc.length === 0 || inc.some((r) => r.test(f))) && !exc.some((r) => r.test(f)));
}
