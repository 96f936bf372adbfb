/**
 * The Hub client against a local fake Hub (test/hub/fake_hub.ts): no network at all. Each test gets a fresh
 * cache directory; request counts come from the server's own log.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FakeHub, gitBlobSha1, sha256 } from './fake_hub.js';
import { tmp } from '../helpers.js';
import { downloadModel, resolveModelDir, parseHubSpec, type HubOptions } from '../../src/hub/resolve.js';
import { hubCacheDir, hubEndpoint, hubToken, repoFolderName } from '../../src/hub/cache.js';
import { normalizeEtag, resolveUrl } from '../../src/hub/download.js';
import { VitkitError } from '../../src/errors.js';

const TIMM_CFG = JSON.stringify({ architecture: 'vit_tiny_patch16_224', num_classes: 10, pretrained_cfg: { mean: [0.5, 0.5, 0.5] } });
const HF_CFG = JSON.stringify({ model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: 192 });

/** deterministic bytes standing in for weights (the downloader never parses them) */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const WEIGHTS = bytes(3_000_000, 7); // (3 MB) several reads' worth, so a connection can drop in the middle

let hub: FakeHub;
let cache: string;
let warnings: string[];

function opts(extra: HubOptions = {}): HubOptions {
  return {
    cacheDir: cache, endpoint: hub.endpoint, env: { HF_HOME: path.join(cache, 'home') }, progress: false,
    warn: (l) => warnings.push(l), ...extra,
  };
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof VitkitError, `expected a VitkitError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `expected one line: ${e.message}`);
    return e.message;
  }
  assert.fail(`expected a rejection matching ${re}`);
}

function repoDir(repoId: string): string {
  return path.join(cache, repoFolderName(repoId));
}

before(async () => {
  hub = await new FakeHub().start();
});
after(async () => {
  await hub.stop();
});
beforeEach(() => {
  cache = tmp();
  warnings = [];
  hub.clearLog();
  hub.faults = {};
});

test('fresh download: huggingface_hub cache layout (blobs by etag, relative symlinks, refs/main)', async () => {
  const commit = hub.commit('acme/tiny', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS, 'README.md': 'x' });
  const m = await downloadModel('acme/tiny', opts());
  assert.equal(m.commit, commit);
  assert.equal(m.layout, 'timm');
  assert.deepEqual(m.files, ['config.json', 'model.safetensors']);
  const root = repoDir('acme/tiny');
  assert.equal(path.basename(root), 'models--acme--tiny');
  assert.equal(m.dir, path.join(root, 'snapshots', commit));
  assert.equal(readFileSync(path.join(root, 'refs', 'main'), 'utf8'), commit);
  // small file: named by its git blob sha1 (the ETag); LFS file: by its sha256 (X-Linked-Etag)
  const cfgEtag = gitBlobSha1(Buffer.from(TIMM_CFG));
  const wEtag = sha256(WEIGHTS);
  assert.deepEqual(readdirSync(path.join(root, 'blobs')).sort(), [cfgEtag, wEtag].sort());
  for (const [file, etag] of [['config.json', cfgEtag], ['model.safetensors', wEtag]] as const) {
    const p = path.join(m.dir, file);
    assert.ok(lstatSync(p).isSymbolicLink(), `${file} is a symlink`);
    assert.equal(readlinkSync(p), `../../blobs/${etag}`);
  }
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
  assert.ok(!existsSync(path.join(m.dir, 'README.md')), 'only the files the layout needs');
  // HEAD+GET per file; the large one via the CDN redirect
  assert.deepEqual(hub.requests().map((r) => `${r.server} ${r.method} ${r.path.replace(/\?.*/, '')}`), [
    'hub HEAD /acme/tiny/resolve/main/config.json',
    `hub GET /acme/tiny/resolve/${commit}/config.json`,
    `hub HEAD /acme/tiny/resolve/${commit}/model.safetensors`, // 302: its Location is where the GET goes
    `cdn GET /lfs/${wEtag}`,
  ]);
  assert.ok(!readdirSync(path.join(root, 'blobs')).some((f) => f.endsWith('.incomplete')));
});

test('second run: one metadata request, nothing downloaded again', async () => {
  const commit = hub.commit('acme/again', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  await downloadModel('acme/again', opts());
  hub.clearLog();
  const m = await downloadModel('acme/again', opts());
  assert.equal(m.commit, commit);
  assert.deepEqual(hub.requests().map((r) => `${r.method} ${r.path}`), ['HEAD /acme/again/resolve/main/config.json']);
  // a commit pin needs no request at all
  hub.clearLog();
  await downloadModel('acme/again', opts({ revision: commit }));
  assert.equal(hub.requests().length, 0);
});

test('a model Python downloaded is used: offline with no request, online with the metadata request only', async () => {
  const commit = hub.commit('acme/py', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  // the cache as huggingface_hub's hf_hub_download leaves it
  const root = repoDir('acme/py');
  const snap = path.join(root, 'snapshots', commit);
  mkdirSync(path.join(root, 'blobs'), { recursive: true });
  mkdirSync(snap, { recursive: true });
  mkdirSync(path.join(root, 'refs'));
  writeFileSync(path.join(root, 'refs', 'main'), commit);
  for (const [f, data, etag] of [['config.json', Buffer.from(TIMM_CFG), gitBlobSha1(Buffer.from(TIMM_CFG))], ['model.safetensors', WEIGHTS, sha256(WEIGHTS)]] as const) {
    writeFileSync(path.join(root, 'blobs', etag), data);
    symlinkSync(`../../blobs/${etag}`, path.join(snap, f));
  }
  const off = await downloadModel('acme/py', opts({ offline: true }));
  assert.equal(off.dir, snap);
  assert.equal(hub.requests().length, 0);
  const off2 = await resolveModelDir('acme/py', opts({ env: { HF_HOME: path.join(cache, 'home'), HF_HUB_OFFLINE: '1' } }));
  assert.equal(off2, snap, 'HF_HUB_OFFLINE=1 from the environment');
  assert.equal(hub.requests().length, 0);
  const on = await downloadModel('acme/py', opts());
  assert.equal(on.dir, snap);
  assert.deepEqual(hub.requests().map((r) => r.method), ['HEAD']);
});

test('offline without a cache: a clear error, no request', async () => {
  hub.commit('acme/nocache', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  await rejects(downloadModel('acme/nocache', opts({ offline: true })), /acme\/nocache@main is not in the Hugging Face cache .*HF_HUB_OFFLINE=1/);
  assert.equal(hub.requests().length, 0);
});

test('offline with a snapshot that lacks the weights names the missing file', async () => {
  hub.commit('acme/half', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  await downloadModel('acme/half', opts());
  const m = await downloadModel('acme/half', opts({ offline: true }));
  // remove the weights' pointer: the snapshot is now half there
  const { unlinkSync } = await import('node:fs');
  unlinkSync(path.join(m.dir, 'model.safetensors'));
  await rejects(downloadModel('acme/half', opts({ offline: true })), /model\.safetensors of acme\/half@main is not in the cache .*HF_HUB_OFFLINE=1/);
});

test('revision pinning: @branch and @commit', async () => {
  const c1 = hub.commit('acme/revs', { 'config.json': TIMM_CFG, 'model.safetensors': bytes(5000, 1) }, { branch: 'v1' });
  const c2 = hub.commit('acme/revs', { 'config.json': TIMM_CFG, 'model.safetensors': bytes(5000, 2) }, { branch: 'main' });
  const main = await downloadModel('acme/revs', opts());
  const v1 = await downloadModel('acme/revs', opts({ revision: 'v1' }));
  assert.equal(main.commit, c2);
  assert.equal(v1.commit, c1);
  assert.ok(readFileSync(path.join(v1.dir, 'model.safetensors')).equals(bytes(5000, 1)));
  assert.ok(readFileSync(path.join(main.dir, 'model.safetensors')).equals(bytes(5000, 2)));
  assert.equal(readFileSync(path.join(repoDir('acme/revs'), 'refs', 'v1'), 'utf8'), c1);
  assert.equal(readFileSync(path.join(repoDir('acme/revs'), 'refs', 'main'), 'utf8'), c2);
  // the same config.json at two commits is one blob
  assert.equal(readdirSync(path.join(repoDir('acme/revs'), 'blobs')).length, 3);
  // @commit through the spec parser; a commit gets no refs/ entry
  const fresh = tmp();
  const dir = await resolveModelDir(`acme/revs@${c1}`, opts({ cacheDir: fresh }));
  assert.equal(dir, path.join(fresh, 'models--acme--revs', 'snapshots', c1));
  assert.ok(!existsSync(path.join(fresh, 'models--acme--revs', 'refs')));
  hub.clearLog();
  await resolveModelDir(`acme/revs@${c1}`, opts({ cacheDir: fresh }));
  assert.equal(hub.requests().length, 0, 'a cached commit needs no request');
  await rejects(downloadModel('acme/revs', opts({ revision: 'v9' })), /Revision "v9" not found in acme\/revs .*config\.json.*HF_HUB_OFFLINE=1/);
});

test('a revision with a slash is URL-encoded and stored under refs/ as huggingface_hub does', async () => {
  const c = hub.commit('acme/pr', { 'config.json': TIMM_CFG, 'model.safetensors': bytes(100, 3) }, { branch: 'refs/pr/1' });
  const m = await downloadModel('acme/pr', opts({ revision: 'refs/pr/1' }));
  assert.equal(m.commit, c);
  assert.equal(hub.requests()[0]!.path, '/acme/pr/resolve/refs%2Fpr%2F1/config.json');
  assert.equal(readFileSync(path.join(repoDir('acme/pr'), 'refs', 'refs', 'pr', '1'), 'utf8'), c);
});

test('interrupted download resumes with a Range request in the same call', async () => {
  hub.commit('acme/drop', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  hub.faults = { dropAfter: { bytes: 1_000_000, times: 1 } };
  const m = await downloadModel('acme/drop', opts());
  const cdn = hub.requests('cdn');
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0]!.range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]!.range ?? '')?.[1]);
  // the server sent 1,000,000 bytes before dropping; on a loaded machine some of them may still be in flight
  // when the socket dies, so the client resumes at what it actually received: more than 0, at most 1,000,000
  assert.ok(resumedAt > 0 && resumedAt <= 1_000_000, `resumed at ${cdn[1]!.range}`);
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
});

test('a download that keeps failing leaves only .incomplete; the next run resumes it', async () => {
  hub.commit('acme/flaky', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  hub.faults = { dropAfter: { bytes: 1_200_000, times: 100 } };
  await rejects(downloadModel('acme/flaky', opts({ retries: 0 })), /Download of model\.safetensors of acme\/flaky .*broke off at \d+ of 3000000 bytes.*again to resume/);
  const blobs = path.join(repoDir('acme/flaky'), 'blobs');
  const etag = sha256(WEIGHTS);
  assert.ok(!existsSync(path.join(blobs, etag)), 'no partial file under the final name');
  const partial = readFileSync(path.join(blobs, `${etag}.incomplete`));
  assert.ok(partial.length > 0 && partial.length < WEIGHTS.length);
  assert.ok(partial.equals(WEIGHTS.subarray(0, partial.length)));
  const snap = readdirSync(path.join(repoDir('acme/flaky'), 'snapshots'))[0]!;
  assert.ok(!existsSync(path.join(repoDir('acme/flaky'), 'snapshots', snap, 'model.safetensors')));
  hub.faults = {};
  hub.clearLog();
  const m = await downloadModel('acme/flaky', opts());
  assert.deepEqual(hub.requests('cdn').map((r) => r.range), [`bytes=${partial.length}-`]);
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
  assert.ok(!existsSync(path.join(blobs, `${etag}.incomplete`)));
});

test('a server that ignores Range: the download restarts cleanly', async () => {
  hub.commit('acme/norange', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  hub.faults = { dropAfter: { bytes: 1_000_000, times: 1 }, ignoreRange: true };
  const m = await downloadModel('acme/norange', opts());
  assert.equal(hub.requests('cdn').length, 2);
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
});

test('corrupted content (sha256 of an LFS file differs from its etag) is rejected and deleted', async () => {
  hub.commit('acme/bad', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  hub.faults = { corrupt: true };
  const etag = sha256(WEIGHTS);
  await rejects(downloadModel('acme/bad', opts()), new RegExp(`model\\.safetensors of acme/bad is corrupt: sha256 [0-9a-f]{64} but the Hub's etag is ${etag}`));
  const blobs = path.join(repoDir('acme/bad'), 'blobs');
  assert.deepEqual(readdirSync(blobs).filter((f) => f.startsWith(etag)), []);
  hub.faults = {};
  const m = await downloadModel('acme/bad', opts());
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
});

test('401, 404 and missing files: one line naming repo and file, with HF_HUB_OFFLINE=1', async () => {
  hub.commit('acme/private', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS }, { token: 'hf_secret' });
  await rejects(downloadModel('acme/private', opts()), /config\.json of acme\/private@main .*\(401\).*set HF_TOKEN; set HF_HUB_OFFLINE=1 to use the local cache/);
  await rejects(downloadModel('acme/private', opts({ token: 'hf_wrong' })), /Repository acme\/private not found .*config\.json.*HF_HUB_OFFLINE=1/);
  await rejects(downloadModel('nobody/nothing', opts()), /nothing.*\(401\)/);
  hub.commit('acme/noweights', { 'config.json': TIMM_CFG });
  await rejects(downloadModel('acme/noweights', opts()), /File model\.safetensors not found in acme\/noweights@main .*HF_HUB_OFFLINE=1/);
  hub.commit('acme/empty', { 'README.md': 'hi' });
  await rejects(downloadModel('acme/empty', opts()), /acme\/empty@main has neither config\.json nor open_clip_config\.json/);
});

test('HF_TOKEN is sent as a Bearer token to the Hub and never to the CDN', async () => {
  hub.commit('acme/secret', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS }, { token: 'hf_abc' });
  const m = await downloadModel('acme/secret', opts({ env: { HF_HOME: path.join(cache, 'home'), HF_TOKEN: 'hf_abc' } }));
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
  assert.equal(hub.requests('hub').length, 3);
  assert.ok(hub.requests('hub').every((r) => r.auth === 'Bearer hf_abc'));
  assert.ok(hub.requests('cdn').length === 1 && hub.requests('cdn').every((r) => r.auth === undefined));
});

test('pickle-only and sharded repositories are refused with the reason', async () => {
  hub.commit('acme/pickle', { 'config.json': TIMM_CFG, 'pytorch_model.bin': bytes(100, 4) });
  await rejects(downloadModel('acme/pickle', opts()), /acme\/pickle@main has only pytorch_model\.bin \(pickle\) and no model\.safetensors/);
  assert.ok(!hub.requests('cdn').length, 'the pickle was not downloaded');
  hub.commit('acme/sharded', { 'config.json': HF_CFG, 'model.safetensors.index.json': '{}' });
  await rejects(downloadModel('acme/sharded', opts()), /sharded checkpoint \(model\.safetensors\.index\.json\)/);
});

test('transformers layout: preprocessor_config.json when present; CLIP gets its tokenizer files', async () => {
  hub.commit('acme/hfvit', { 'config.json': HF_CFG, 'model.safetensors': bytes(1000, 5), 'preprocessor_config.json': '{"do_resize": true}' });
  const m = await downloadModel('acme/hfvit', opts());
  assert.equal(m.layout, 'hf');
  assert.deepEqual(m.files, ['config.json', 'model.safetensors', 'preprocessor_config.json']);
  assert.ok(!hub.requests().some((r) => r.path.includes('tokenizer')), 'no tokenizer probes for a plain ViT');
  hub.commit('acme/hfclip', {
    'config.json': JSON.stringify({ model_type: 'clip', architectures: ['CLIPModel'] }), 'model.safetensors': bytes(1000, 6),
    'tokenizer.json': '{}', 'vocab.json': '{}', 'merges.txt': '#version: 0.2', 'special_tokens_map.json': '',
  });
  const c = await downloadModel('acme/hfclip', opts());
  assert.deepEqual(c.files, ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json']);
  assert.equal(readFileSync(path.join(c.dir, 'special_tokens_map.json'), 'utf8'), '', 'an empty file downloads too');
  // the absent optional files are recorded in .no_exist/<commit>/ and not asked for again
  assert.ok(existsSync(path.join(repoDir('acme/hfclip'), '.no_exist', c.commit, 'preprocessor_config.json')));
  hub.clearLog();
  await downloadModel('acme/hfclip', opts());
  assert.equal(hub.requests().length, 1);
});

test('open_clip layout when there is no config.json (or when asked for)', async () => {
  const commit = hub.commit('acme/oc', { 'open_clip_config.json': '{"model_cfg": {}}', 'open_clip_model.safetensors': bytes(2000, 8) });
  const m = await downloadModel('acme/oc', opts());
  assert.equal(m.layout, 'open_clip');
  assert.deepEqual(m.files, ['open_clip_config.json', 'open_clip_model.safetensors']);
  assert.ok(existsSync(path.join(repoDir('acme/oc'), '.no_exist', commit, 'config.json')));
  hub.clearLog();
  await downloadModel('acme/oc', opts());
  assert.equal(hub.requests().length, 1, 'only config.json at main is asked again');
  const both = hub.commit('acme/both', {
    'config.json': JSON.stringify({ model_type: 'clip' }), 'model.safetensors': bytes(10, 1),
    'open_clip_config.json': '{}', 'open_clip_model.safetensors': bytes(10, 2),
  });
  const oc = await downloadModel('acme/both', opts({ layout: 'open_clip' }));
  assert.equal(oc.commit, both);
  assert.deepEqual(oc.files, ['open_clip_config.json', 'open_clip_model.safetensors']);
  const hf = await downloadModel('acme/both', opts());
  assert.equal(hf.layout, 'hf');
  hub.commit('acme/ocpickle', { 'open_clip_config.json': '{}', 'open_clip_pytorch_model.bin': bytes(10, 3) });
  await rejects(downloadModel('acme/ocpickle', opts()), /only open_clip_pytorch_model\.bin \(pickle\)/);
});

test('a renamed repository: the relative redirect is followed', async () => {
  hub.commit('acme/new-name', { 'config.json': TIMM_CFG, 'model.safetensors': bytes(100, 9) });
  hub.rename('acme/old-name', 'acme/new-name');
  const m = await downloadModel('acme/old-name', opts());
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(bytes(100, 9)));
  assert.ok(m.dir.includes('models--acme--old-name'), 'cached under the name asked for, as huggingface_hub does');
});

test('a large file redirected to a relative CDN path: metadata from the Hub\'s answer, bytes from the path', async () => {
  const commit = hub.commit('acme/relcdn', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  hub.faults = { relativeLfs: true };
  const m = await downloadModel('acme/relcdn', opts());
  assert.equal(m.commit, commit);
  assert.ok(readFileSync(path.join(m.dir, 'model.safetensors')).equals(WEIGHTS));
  assert.equal(readlinkSync(path.join(m.dir, 'model.safetensors')), `../../blobs/${sha256(WEIGHTS)}`, 'named by X-Linked-Etag, not the CDN\'s ETag');
  assert.deepEqual(hub.requests('cdn').map((r) => r.method), ['HEAD', 'GET']);
});

test('two downloads of one blob at once: one fetches, the other waits for it; a dead process\'s lock is taken over', async () => {
  hub.commit('acme/race', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  const [a, b] = await Promise.all([downloadModel('acme/race', opts()), downloadModel('acme/race', opts())]);
  assert.equal(a.dir, b.dir);
  assert.equal(hub.requests('cdn').length, 1);
  assert.ok(readFileSync(path.join(a.dir, 'model.safetensors')).equals(WEIGHTS));
  const locks = path.join(cache, '.locks', 'models--acme--race');
  assert.deepEqual(readdirSync(locks), [], 'locks are released');
  hub.commit('acme/stale', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  mkdirSync(path.join(cache, '.locks', 'models--acme--stale'), { recursive: true });
  writeFileSync(path.join(cache, '.locks', 'models--acme--stale', `${sha256(WEIGHTS)}.vitkit-lock`), '2147483646');
  const c = await downloadModel('acme/stale', opts());
  assert.ok(readFileSync(path.join(c.dir, 'model.safetensors')).equals(WEIGHTS));
});

test('network failure: one clear line without a cache; the cached snapshot with one', async () => {
  hub.commit('acme/net', { 'config.json': TIMM_CFG, 'model.safetensors': WEIGHTS });
  const dead = 'http://127.0.0.1:9'; // discard port: nothing listens
  await rejects(downloadModel('acme/net', opts({ endpoint: dead })), /Could not reach http:\/\/127\.0\.0\.1:9 for config\.json of acme\/net@main: .*HF_HUB_OFFLINE=1/);
  const m = await downloadModel('acme/net', opts());
  const again = await downloadModel('acme/net', opts({ endpoint: dead }));
  assert.equal(again.dir, m.dir);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /warning: Could not reach .* using the cached snapshot/);
  // unreachable with a half-cached snapshot: the missing file and the reason, not HF_HUB_OFFLINE
  const { unlinkSync } = await import('node:fs');
  unlinkSync(path.join(m.dir, 'model.safetensors'));
  await rejects(downloadModel('acme/net', opts({ endpoint: dead })), /model\.safetensors of acme\/net@main is not in the cache .* and http:\/\/127\.0\.0\.1:9 cannot be reached$/);
});

test('resolveModelDir passes local paths and preset names through; parses hf-hub: and @revision', async () => {
  assert.equal(await resolveModelDir(cache, opts()), cache);
  assert.equal(await resolveModelDir('vit_tiny_patch16_224', opts()), 'vit_tiny_patch16_224');
  assert.equal(await resolveModelDir('no_such_preset', opts()), 'no_such_preset');
  assert.equal(hub.requests().length, 0);
  assert.deepEqual(parseHubSpec('timm/vit_tiny_patch16_224.augreg_in21k'), { repoId: 'timm/vit_tiny_patch16_224.augreg_in21k', revision: 'main' });
  assert.deepEqual(parseHubSpec('hf-hub:timm/vit_small@v1.0'), { repoId: 'timm/vit_small', revision: 'v1.0' });
  assert.deepEqual(parseHubSpec('org/name@refs/pr/3'), { repoId: 'org/name', revision: 'refs/pr/3' });
  for (const notHub of ['./dir', '/abs/path', 'a/b/c', 'vit_tiny', 'org--x/y', 'org/na..me', 'org/name@', 'model.json']) {
    assert.equal(parseHubSpec(notHub), null, notHub);
  }
  assert.throws(() => parseHubSpec('hf-hub:justname'), /Expected hf-hub:<org>\/<name>\[@revision\] for --model but received "hf-hub:justname"/);
  hub.commit('timm/prefixed', { 'config.json': TIMM_CFG, 'model.safetensors': bytes(10, 10) });
  assert.match(await resolveModelDir('hf-hub:timm/prefixed', opts()), /models--timm--prefixed\/snapshots\/[0-9a-f]{40}$/);
});

test('environment: cache directory, endpoint, token, etag normalisation, URLs', () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  assert.equal(hubCacheDir({ HF_HOME: '/h' }), path.join('/h', 'hub'));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'huggingface', 'hub'));
  assert.match(hubCacheDir({}), /\.cache\/huggingface\/hub$/);
  assert.equal(hubEndpoint({}), 'https://huggingface.co');
  assert.equal(hubEndpoint({ HF_ENDPOINT: 'http://mirror.local/' }), 'http://mirror.local');
  const home = tmp();
  assert.equal(hubToken({ HF_HOME: home }), undefined);
  writeFileSync(path.join(home, 'token'), 'hf_fromfile\n');
  assert.equal(hubToken({ HF_HOME: home }), 'hf_fromfile');
  assert.equal(hubToken({ HF_HOME: home, HF_TOKEN: 'hf_env' }), 'hf_env');
  assert.equal(normalizeEtag('"abc"'), 'abc');
  assert.equal(normalizeEtag('W/"abc"'), 'abc');
  assert.equal(normalizeEtag(null), undefined);
  assert.equal(resolveUrl('http://h', 'o/n', 'refs/pr/1', 'sub dir/a.json'), 'http://h/o/n/resolve/refs%2Fpr%2F1/sub%20dir/a.json');
});
