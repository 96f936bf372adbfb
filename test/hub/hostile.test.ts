/**
 * A hostile Hub (a loopback node:http server, no network): every name and size the server supplies is
 * checked before it reaches the file system. ETags that climb out of the cache, declared sizes beyond
 * the caps or the free space, bodies longer than declared, a body cut and then no reconnect, JSON
 * bombs in config.json, and a file listing with names that escape the target folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, readdirSync, statfsSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { downloadModel } from '../../src/hub/resolve.js';
import { VitkitError } from '../../src/errors.js';
import { tmp } from '../helpers.js';

const COMMIT = 'c'.repeat(40);
const SHA1 = 'a'.repeat(40);

type Handler = (q: http.IncomingMessage, r: http.ServerResponse) => void;

async function serve(handler: Handler): Promise<{ endpoint: string; gets: string[]; close: () => Promise<void> }> {
  const gets: string[] = [];
  const s = http.createServer((q, r) => {
    if (q.method === 'GET') gets.push(q.url ?? '');
    handler(q, r);
  });
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  return {
    endpoint: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    gets,
    close: async () => { s.closeAllConnections(); await new Promise<void>((ok) => s.close(() => ok())); },
  };
}

/** every file under dir, relative */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p).map((f) => path.join(e.name, f)));
    else out.push(e.name);
  }
  return out;
}

async function refused(fn: () => Promise<unknown>, re: RegExp): Promise<string> {
  let msg = '';
  await assert.rejects(fn, (e: Error) => {
    msg = e.message;
    return e instanceof VitkitError && re.test(e.message) && !e.message.includes('\n');
  });
  return msg;
}

const opts = (endpoint: string, cacheDir: string) => ({ endpoint, cacheDir, token: false as const, progress: false, retries: 1, offline: false, env: {} });

test('an ETag that climbs out of the cache ("../../../x") is refused before anything is written', async () => {
  const root = tmp();
  const cacheDir = path.join(root, 'cache');
  const srv = await serve((q, r) => {
    r.writeHead(200, { etag: '"../../../escaped"', 'x-repo-commit': COMMIT, 'content-length': 2 });
    r.end(q.method === 'HEAD' ? undefined : '{}');
  });
  try {
    await refused(() => downloadModel('org/evil', opts(srv.endpoint, cacheDir)), /Expected an ETag of 40 or 64 hex characters .* but received "\.\.\/\.\.\/\.\.\/escaped"/);
    assert.equal(srv.gets.length, 0, 'no GET after a bad ETag');
    assert.deepEqual(walk(root).filter((f) => !f.startsWith(path.join('cache', 'models--org--evil', 'refs'))), []);
    assert.equal(existsSync(path.join(root, 'escaped')), false);
  } finally { await srv.close(); }
});

test('other ETags that are no hash: absolute, NUL, backslashes, too short or long, not hex', async () => {
  for (const bad of ['/etc/passwd', 'a\\..\\..\\x', 'abc', 'g'.repeat(40), 'a'.repeat(41), 'A'.repeat(40)]) {
    const cacheDir = tmp();
    const srv = await serve((q, r) => {
      r.writeHead(200, { etag: `"${bad}"`, 'x-repo-commit': COMMIT, 'content-length': 2 });
      r.end(q.method === 'HEAD' ? undefined : '{}');
    });
    try {
      await refused(() => downloadModel('org/evil', opts(srv.endpoint, cacheDir)), /Expected an ETag of 40 or 64 hex characters/);
      assert.equal(srv.gets.length, 0, bad);
    } finally { await srv.close(); }
  }
});

test('a declared size over the cap (a 10 TB config.json, 10 TB of weights) is refused before the GET', async () => {
  for (const [file, size] of [['config.json', 300e6], ['config.json', 10e12], ['model.safetensors', 10e12]] as const) {
    const cacheDir = tmp();
    const srv = await serve((q, r) => {
      if (q.url!.endsWith('/config.json') && file !== 'config.json') {
        const body = JSON.stringify({ architecture: 'vit_tiny_patch16_224' });
        r.writeHead(200, { etag: `"${SHA1}"`, 'x-repo-commit': COMMIT, 'content-length': body.length });
        return void r.end(q.method === 'HEAD' ? undefined : body);
      }
      if (q.url!.endsWith(`/${file}`)) {
        r.writeHead(q.method === 'HEAD' ? 200 : 500, { etag: `"${'b'.repeat(64)}"`, 'x-repo-commit': COMMIT, 'x-linked-size': String(size), 'content-length': 0 });
        return void r.end();
      }
      r.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': COMMIT, 'content-length': 0 });
      r.end();
    });
    try {
      await refused(() => downloadModel('org/big', opts(srv.endpoint, cacheDir)), new RegExp(`Expected ${file.replace('.', '\\.')} of org/big@\\w+ of at most \\d+ bytes but .* declares ${size} bytes`));
      assert.equal(srv.gets.filter((g) => g.endsWith(file)).length, 0);
    } finally { await srv.close(); }
  }
});

test('a declared size beyond the free space is refused in one line naming both', async () => {
  const cacheDir = tmp();
  const st = statfsSync(cacheDir);
  const size = Number(st.bavail) * Number(st.bsize) + 1e9; // 1 GB more than is free (under the 1 TiB cap on this machine's tmp)
  if (size > 2 ** 40) return; // a disk with over 1 TiB free: the cap refuses first (tested above)
  const srv = await serve((q, r) => {
    if (q.url!.endsWith('/config.json')) {
      const body = JSON.stringify({ architecture: 'vit_tiny_patch16_224' });
      r.writeHead(200, { etag: `"${SHA1}"`, 'x-repo-commit': COMMIT, 'content-length': body.length });
      return void r.end(q.method === 'HEAD' ? undefined : body);
    }
    r.writeHead(q.method === 'HEAD' ? 200 : 500, { etag: `"${'b'.repeat(64)}"`, 'x-repo-commit': COMMIT, 'x-linked-size': String(size), 'content-length': 0 });
    r.end();
  });
  try {
    await refused(() => downloadModel('org/big', opts(srv.endpoint, cacheDir)), /Not enough free space for model\.safetensors of org\/big: it needs [\d.]+ GB but .* has [\d.]+ GB free/);
    assert.equal(srv.gets.filter((g) => g.endsWith('model.safetensors')).length, 0);
  } finally { await srv.close(); }
});

test('a body longer than declared, or an undeclared body past the cap, is cut off and deleted', async () => {
  for (const mode of ['longer', 'chunked-json'] as const) {
    const cacheDir = tmp();
    const srv = await serve((q, r) => {
      if (mode === 'longer') {
        if (q.url!.endsWith('/config.json')) {
          const body = JSON.stringify({ architecture: 'vit_tiny_patch16_224' });
          r.writeHead(200, { etag: `"${SHA1}"`, 'x-repo-commit': COMMIT, 'content-length': body.length });
          return void r.end(q.method === 'HEAD' ? undefined : body);
        }
        // declares 100 bytes, streams 1 MB without a Content-Length
        if (q.method === 'HEAD') { r.writeHead(200, { etag: `"${'b'.repeat(64)}"`, 'x-repo-commit': COMMIT, 'x-linked-size': '100', 'content-length': 0 }); return void r.end(); }
        r.writeHead(200, { 'transfer-encoding': 'chunked' });
        for (let i = 0; i < 16; i++) r.write(Buffer.alloc(65536, 1));
        return void r.end();
      }
      // config.json with no size at all: 80 MB of JSON whitespace in chunks
      if (q.method === 'HEAD') { r.writeHead(200, { etag: `"${SHA1}"`, 'x-repo-commit': COMMIT }); return void r.end(); }
      r.writeHead(200, { 'transfer-encoding': 'chunked' });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      let n = 0;
      const more = (): void => {
        while (n < 80) { n++; if (!r.write(chunk)) { r.once('drain', more); return; } }
        r.end();
      };
      r.on('error', () => undefined);
      more();
    });
    try {
      const re = mode === 'longer' ? /sent more than the 100 bytes it declared for model\.safetensors of org\/long; the partial file was deleted/
        : /Expected config\.json of org\/long of at most 67108864 bytes but .* sent more; the partial file was deleted/;
      await refused(() => downloadModel('org/long', opts(srv.endpoint, cacheDir)), re);
      const left = walk(cacheDir).filter((f) => f.includes('blobs') && !f.endsWith(mode === 'longer' ? SHA1 : '\0'));
      assert.deepEqual(left, [], `${mode}: nothing but the good config.json left in blobs/`);
    } finally { await srv.close(); }
  }
});

test('a body cut mid-download and no reconnect: "broke off at N of M bytes", not "Could not reach"; only .incomplete is left', async () => {
  const cacheDir = tmp();
  const size = 1 << 20;
  let srv: Awaited<ReturnType<typeof serve>> | undefined;
  srv = await serve((q, r) => {
    if (q.url!.endsWith('/config.json')) {
      const body = JSON.stringify({ architecture: 'vit_tiny_patch16_224' });
      r.writeHead(200, { etag: `"${SHA1}"`, 'x-repo-commit': COMMIT, 'content-length': body.length });
      return void r.end(q.method === 'HEAD' ? undefined : body);
    }
    if (q.method === 'HEAD') { r.writeHead(200, { etag: `"${'b'.repeat(64)}"`, 'x-repo-commit': COMMIT, 'x-linked-size': String(size), 'content-length': 0 }); return void r.end(); }
    r.writeHead(200, { 'content-length': size });
    // half the body, then the connection and the server go away
    r.write(Buffer.alloc(size >> 1, 7), () => setTimeout(() => { void srv!.close(); }, 20));
  });
  const msg = await refused(() => downloadModel('org/cut', opts(srv!.endpoint, cacheDir)), /Download of model\.safetensors of org\/cut from .* broke off at 524288 of 1048576 bytes/);
  assert.doesNotMatch(msg, /Could not reach/);
  const blobs = walk(path.join(cacheDir, 'models--org--cut', 'blobs'));
  assert.deepEqual(blobs.filter((f) => f !== `${SHA1}`), [`${'b'.repeat(64)}.incomplete`]);
  assert.equal(existsSync(path.join(cacheDir, 'models--org--cut', 'snapshots', COMMIT, 'model.safetensors')), false);
});

test('a config.json nested 200,000 deep is one clear line, not a stack overflow', async () => {
  const cacheDir = tmp();
  const body = '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000);
  const srv = await serve((q, r) => {
    r.writeHead(200, { etag: `"${SHA1}"`, 'x-repo-commit': COMMIT, 'content-length': body.length });
    r.end(q.method === 'HEAD' ? undefined : body);
  });
  try {
    await refused(() => downloadModel('org/deep', opts(srv.endpoint, cacheDir)), /config\.json.* nested at most 256 levels deep/);
  } finally { await srv.close(); }
});
