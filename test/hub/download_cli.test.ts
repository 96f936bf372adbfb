/**
 * `vitkit download` as huggingface-cli download: --include / --exclude glob patterns over the
 * repository's file list, --local-dir (atomic copies, the overwrite rule), --token; a hostile file
 * list is refused; SIGTERM and SIGINT mid-download leave no file under a final name and no lock.
 * Against the local stand-in Hub (test/hub/fake_hub.ts, loopback only). The CLI runs in a child process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { FakeHub } from './fake_hub.js';
import { BIN, tmp } from '../helpers.js';
import { filterFiles, globToRegExp, unsafeRepoPath } from '../../src/hub/download.js';

let hub: FakeHub;
let commit = '';
const WEIGHTS = Buffer.from(Uint8Array.from({ length: 3 << 20 }, (_, i) => (i * 7) & 0xff));
const FILES: Record<string, Buffer | string> = {
  'config.json': JSON.stringify({ architecture: 'vit_tiny_patch16_224' }),
  'model.safetensors': WEIGHTS,
  'pytorch_model.bin': 'pickle',
  'README.md': '# card',
  'onnx/model.onnx': 'onnx bytes',
  'onnx/config.json': '{}',
};

function cleanEnv(env: Record<string, string>): Record<string, string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_') && k !== 'HUGGING_FACE_HUB_TOKEN')) as Record<string, string>;
  return { ...clean, VITKIT_THREADS: '1', ...env };
}

function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: cleanEnv(env), encoding: 'utf8' }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

before(async () => {
  hub = await new FakeHub().start();
  commit = hub.commit('org/repo', FILES);
  hub.commit('org/private', { 'config.json': '{"architecture": "x"}' }, { token: 'hf_secret' });
});
after(async () => {
  await hub.stop();
});

test('globs as huggingface_hub matches them (fnmatch: * spans /; a trailing / means the folder)', () => {
  const names = Object.keys(FILES);
  assert.deepEqual(filterFiles(names, ['*.json']), ['config.json', 'onnx/config.json']);
  assert.deepEqual(filterFiles(names, ['*.json', '*.safetensors'], ['onnx/*']), ['config.json', 'model.safetensors']);
  assert.deepEqual(filterFiles(names, ['onnx/']), ['onnx/model.onnx', 'onnx/config.json']);
  assert.deepEqual(filterFiles(names, [], ['*.bin', '*.md', 'onnx/*']), ['config.json', 'model.safetensors']);
  assert.deepEqual(filterFiles(names, ['[cm]*.json']), ['config.json']);
  assert.equal(globToRegExp('a.b').test('axb'), false);
});

test('file names from a listing: .., absolute, NUL, backslash, drive letters refused', () => {
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\u0000b', 'a\\..\\..\\x', 'C:/x', 'a//b', './a', '', 'x'.repeat(1001)]) {
    assert.notEqual(unsafeRepoPath(bad), null, JSON.stringify(bad));
  }
  for (const ok of ['config.json', 'onnx/model.onnx', 'a..b/c', '.gitattributes']) assert.equal(unsafeRepoPath(ok), null, ok);
});

test('download --include/--exclude fetches only the matching files, at the listing\'s commit', async () => {
  const home = tmp();
  const r = await cli({ HF_HOME: home, HF_ENDPOINT: hub.endpoint }, 'download', 'org/repo', '--include', '*.json', '*.safetensors', '--exclude', 'onnx/*', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { commit: string; dir: string; files: string[] };
  assert.equal(j.commit, commit);
  assert.deepEqual(j.files, ['config.json', 'model.safetensors']);
  assert.deepEqual(readdirSync(j.dir).sort(), ['config.json', 'model.safetensors']);
  assert.deepEqual(readFileSync(path.join(j.dir, 'model.safetensors')), WEIGHTS);
  const none = await cli({ HF_HOME: home, HF_ENDPOINT: hub.endpoint }, 'download', 'org/repo', '--include', '*.gguf');
  assert.equal(none.code, 1);
  assert.match(none.err, /^error: No file of org\/repo@main matches --include \["\*\.gguf"\]/);
});

test('download --local-dir copies the files there, refuses to replace them without --overwrite', async () => {
  const home = tmp();
  const local = path.join(tmp(), 'model');
  const env = { HF_HOME: home, HF_ENDPOINT: hub.endpoint };
  const r = await cli(env, 'download', 'org/repo', '--include', 'onnx/', '--local-dir', local);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), local);
  assert.equal(readFileSync(path.join(local, 'onnx', 'model.onnx'), 'utf8'), 'onnx bytes');
  writeFileSync(path.join(local, 'onnx', 'config.json'), 'mine');
  const again = await cli(env, 'download', 'org/repo', '--include', 'onnx/', '--local-dir', local);
  assert.equal(again.code, 1);
  assert.match(again.err, /^error: Output .*onnx\/model\.onnx already exists; pass --overwrite to replace it\n$/);
  assert.equal(readFileSync(path.join(local, 'onnx', 'config.json'), 'utf8'), 'mine');
  const forced = await cli(env, 'download', 'org/repo', '--include', 'onnx/', '--local-dir', local, '--overwrite');
  assert.equal(forced.code, 0, forced.err);
  assert.equal(readFileSync(path.join(local, 'onnx', 'config.json'), 'utf8'), '{}');
  assert.deepEqual(readdirSync(path.join(local, 'onnx')).sort(), ['config.json', 'model.onnx'], 'no temporary file left');
});

test('download --token reaches a private repository; without it, the 401 line', async () => {
  const env = { HF_HOME: tmp(), HF_ENDPOINT: hub.endpoint };
  const no = await cli(env, 'download', 'org/private', '--include', '*.json');
  assert.equal(no.code, 1);
  assert.match(no.err, /needs a token/);
  const yes = await cli(env, 'download', 'org/private', '--include', '*.json', '--token', 'hf_secret');
  assert.equal(yes.code, 0, yes.err);
});

test('a listing with a name that climbs out is refused before any file is fetched', async () => {
  const gets: string[] = [];
  const srv = http.createServer((q, r) => {
    gets.push(q.url ?? '');
    const body = JSON.stringify({ sha: 'c'.repeat(40), siblings: [{ rfilename: 'config.json' }, { rfilename: '../../../../tmp/evil' }] });
    r.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    r.end(body);
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  try {
    const home = tmp();
    const r = await cli({ HF_HOME: home, HF_ENDPOINT: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` }, 'download', 'org/evil', '--include', '*');
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: http:\/\/127\.0\.0\.1:\d+ listed a file name with a "\.\." segment in the file list of org\/evil@main: "\\"\.\.\/\.\.\/\.\.\/\.\.\/tmp\/evil\\""; refusing/);
    assert.deepEqual(gets.filter((g) => g.includes('/resolve/')), []);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((ok) => srv.close(() => ok()));
  }
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`${sig} mid-download: exit ${sig === 'SIGTERM' ? 143 : 130}, no file under a final name, no lock; the next run resumes`, async () => {
    const home = tmp();
    const env = { HF_HOME: home, HF_ENDPOINT: hub.endpoint };
    hub.faults = { slowMs: 100 }; // 3 MiB at 640 KiB/s: ~5 s
    const repo = path.join(home, 'hub', 'models--org--repo');
    const child = spawn(process.execPath, [BIN, 'download', 'org/repo'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const blobs = path.join(repo, 'blobs');
    for (let i = 0; i < 100; i++) { // wait for bytes to arrive
      await new Promise((r) => setTimeout(r, 100));
      if (existsSync(blobs) && readdirSync(blobs).some((f) => f.endsWith('.incomplete'))) break;
    }
    await new Promise((r) => setTimeout(r, 300));
    child.kill(sig);
    const code = await new Promise<number | null>((ok) => child.on('exit', (c) => ok(c)));
    hub.faults = {};
    assert.equal(code, sig === 'SIGTERM' ? 143 : 130, err);
    assert.match(err, new RegExp(`download of org/repo stopped by ${sig}; run it again to resume`));
    const sha = readdirSync(blobs).filter((f) => /^[0-9a-f]{64}/.test(f));
    assert.equal(sha.length, 1);
    assert.match(sha[0]!, /\.incomplete$/, 'the weights only as .incomplete');
    assert.equal(existsSync(path.join(repo, 'snapshots', commit, 'model.safetensors')), false);
    const locks = path.join(home, 'hub', '.locks', 'models--org--repo');
    assert.deepEqual(existsSync(locks) ? readdirSync(locks) : [], [], 'no lock left');
    hub.clearLog();
    const again = await cli(env, 'download', 'org/repo');
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(readFileSync(path.join(repo, 'snapshots', commit, 'model.safetensors')), WEIGHTS);
    assert.ok(hub.requests('cdn').some((q) => q.range !== undefined && q.range !== 'bytes=0-'), 'resumed with a Range request');
  });
}

test('--local-dir under a file: one line', async () => {
  const d = tmp();
  writeFileSync(path.join(d, 'f'), 'x');
  mkdirSync(path.join(d, 'ok'));
  const r = await cli({ HF_HOME: tmp(), HF_ENDPOINT: hub.endpoint }, 'download', 'org/repo', '--include', 'README.md', '--local-dir', path.join(d, 'f', 'sub'));
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: Cannot create --local-dir folder .*f\/sub: .*\/f is a file, not a folder\n$/);
});
