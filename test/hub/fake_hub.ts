/**
 * A local stand-in for the Hugging Face Hub (node:http, no network): `/{repo}/resolve/{revision}/{file}`
 * answered as huggingface.co answers it, and a CDN on another port for large files.
 *
 * - small files: 200 with ETag "<git blob sha1>", Content-Length, X-Repo-Commit;
 * - LFS files (.safetensors/.bin/.pt): 302 to the CDN (absolute URL, another origin) with
 *   X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit; the CDN honours Range (206 + Content-Range);
 * - errors with X-Error-Code as the Hub sends them: 401 RepoNotFound without a token, 404 RepoNotFound,
 *   RevisionNotFound, EntryNotFound (with X-Repo-Commit);
 * - renamed repositories: 307 with a relative Location;
 * - the file list `/api/models/{repo}/revision/{revision}` ({"sha", "siblings": [{"rfilename"}]}) as
 *   huggingface_hub's snapshot_download reads it;
 * - faults: drop the connection after N bytes, corrupt a byte, ignore Range, send the body slowly.
 * Every request is logged (method, server, path, Range, Authorization).
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range: string | undefined;
  auth: string | undefined;
}

interface Repo {
  commits: Map<string, Map<string, Buffer>>;
  refs: Map<string, string>;
  token: string | undefined;
}

export interface Faults {
  /** the CDN closes the connection after this many bytes of the body, `times` times */
  dropAfter?: { bytes: number; times: number };
  /** the CDN flips one byte of every file it serves */
  corrupt?: boolean;
  /** the CDN answers 200 with the whole file to Range requests */
  ignoreRange?: boolean;
  /** large files redirect to a relative CDN-like path on the Hub's own host instead of the other origin */
  relativeLfs?: boolean;
  /** the CDN sends 64 KiB every this many milliseconds */
  slowMs?: number;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function gitBlobSha1(b: Buffer): string {
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

function isLfs(file: string): boolean {
  return /\.(safetensors|bin|pt)$/.test(file);
}

export class FakeHub {
  readonly log: LoggedRequest[] = [];
  faults: Faults = {};
  private readonly repos = new Map<string, Repo>();
  private readonly renamed = new Map<string, string>();
  private readonly blobs = new Map<string, Buffer>();
  private hub!: http.Server;
  private cdn!: http.Server;
  endpoint = '';
  cdnOrigin = '';
  private commitSeq = 0;

  async start(): Promise<this> {
    this.hub = http.createServer((q, r) => this.onHub(q, r));
    this.cdn = http.createServer((q, r) => this.onCdn(q, r));
    for (const s of [this.hub, this.cdn]) await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
    this.endpoint = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnOrigin = `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    }
  }

  /** Add a commit to `repo` and point `branch` at it; returns the commit hash. */
  commit(repoId: string, files: Record<string, Buffer | string>, opts: { branch?: string; token?: string } = {}): string {
    let repo = this.repos.get(repoId);
    if (!repo) {
      repo = { commits: new Map(), refs: new Map(), token: opts.token };
      this.repos.set(repoId, repo);
    }
    const commit = createHash('sha1').update(`${repoId}#${this.commitSeq++}`).digest('hex');
    const m = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(files)) {
      const b = typeof v === 'string' ? Buffer.from(v) : v;
      m.set(k, b);
      this.blobs.set(sha256(b), b);
    }
    repo.commits.set(commit, m);
    repo.refs.set(opts.branch ?? 'main', commit);
    return commit;
  }

  rename(from: string, to: string): void {
    this.renamed.set(from, to);
  }

  requests(server?: 'hub' | 'cdn'): LoggedRequest[] {
    return server ? this.log.filter((r) => r.server === server) : this.log;
  }

  clearLog(): void {
    this.log.length = 0;
  }

  private record(server: 'hub' | 'cdn', q: http.IncomingMessage): void {
    this.log.push({
      server, method: q.method ?? '?', path: q.url ?? '',
      range: q.headers.range, auth: q.headers.authorization,
    });
  }

  private fail(r: http.ServerResponse, status: number, code: string | undefined, commit?: string): void {
    const body = JSON.stringify({ error: code ?? 'error' });
    r.writeHead(status, {
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
      ...(code ? { 'x-error-code': code } : {}), ...(commit ? { 'x-repo-commit': commit } : {}),
    });
    r.end(body);
  }

  private onHub(q: http.IncomingMessage, r: http.ServerResponse): void {
    if (q.url?.startsWith('/lfs/')) return this.onCdn(q, r); // the CDN-like path on this host
    this.record('hub', q);
    const list = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/?]+)/.exec(q.url ?? '');
    if (list) {
      const repo = this.repos.get(list[1]!);
      const authorized = !repo?.token || q.headers.authorization === `Bearer ${repo.token}`;
      if (!repo || !authorized) return this.fail(r, q.headers.authorization ? 404 : 401, 'RepoNotFound');
      const rev = decodeURIComponent(list[2]!);
      const commit = repo.commits.has(rev) ? rev : repo.refs.get(rev);
      if (!commit) return this.fail(r, 404, 'RevisionNotFound');
      const body = JSON.stringify({ id: list[1], sha: commit, siblings: [...repo.commits.get(commit)!.keys()].map((rfilename) => ({ rfilename })) });
      r.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void r.end(body);
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(q.url ?? '');
    if (!m) return this.fail(r, 404, undefined);
    const [, repoId, revEnc, fileEnc] = m as unknown as [string, string, string, string];
    const to = this.renamed.get(repoId);
    if (to) {
      r.writeHead(307, { location: `/${to}/resolve/${revEnc}/${fileEnc}`, 'content-length': 0 });
      return void r.end();
    }
    const revision = decodeURIComponent(revEnc);
    const file = fileEnc.split('/').map(decodeURIComponent).join('/');
    const repo = this.repos.get(repoId);
    const authorized = !repo?.token || q.headers.authorization === `Bearer ${repo.token}`;
    if (!repo || !authorized) return this.fail(r, q.headers.authorization ? 404 : 401, 'RepoNotFound');
    const commit = repo.commits.has(revision) ? revision : repo.refs.get(revision);
    if (!commit) return this.fail(r, 404, 'RevisionNotFound');
    const data = repo.commits.get(commit)!.get(file);
    if (!data) return this.fail(r, 404, 'EntryNotFound', commit);
    if (isLfs(file)) {
      const sum = sha256(data);
      r.writeHead(302, {
        location: `${this.faults.relativeLfs ? '' : this.cdnOrigin}/lfs/${sum}?expires=1`, 'x-repo-commit': commit,
        'x-linked-etag': `"${sum}"`, 'x-linked-size': data.length, etag: `"${gitBlobSha1(Buffer.from(`oid sha256:${sum}`))}"`,
        'content-length': 0,
      });
      return void r.end();
    }
    r.writeHead(200, { etag: `"${gitBlobSha1(data)}"`, 'x-repo-commit': commit, 'content-length': data.length, 'content-type': 'application/octet-stream' });
    r.end(q.method === 'HEAD' ? undefined : data);
  }

  private onCdn(q: http.IncomingMessage, r: http.ServerResponse): void {
    this.record('cdn', q);
    const m = /^\/lfs\/([0-9a-f]{64})/.exec(q.url ?? '');
    let data = m ? this.blobs.get(m[1]!) : undefined;
    if (!data) return this.fail(r, 404, undefined);
    if (this.faults.corrupt) {
      data = Buffer.from(data);
      data[data.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    if (range && !this.faults.ignoreRange) {
      start = Number(range[1]);
      if (start >= data.length) {
        r.writeHead(416, { 'content-range': `bytes */${data.length}`, 'content-length': 0 });
        return void r.end();
      }
      r.writeHead(206, { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'content-length': data.length - start });
    } else {
      r.writeHead(200, { 'content-length': data.length, etag: '"cdn-md5-not-the-sha"' });
    }
    if (q.method === 'HEAD') return void r.end();
    const body = data.subarray(start);
    const drop = this.faults.dropAfter;
    if (drop && drop.times > 0 && body.length > drop.bytes) {
      drop.times--;
      r.write(body.subarray(0, drop.bytes), () => setTimeout(() => r.socket?.destroy(), 20));
      return;
    }
    if (this.faults.slowMs) {
      let off = 0;
      const tick = (): void => {
        if (r.destroyed) return;
        if (off >= body.length) return void r.end();
        r.write(body.subarray(off, off + 65536));
        off += 65536;
        setTimeout(tick, this.faults.slowMs);
      };
      return tick();
    }
    r.end(body);
  }
}
