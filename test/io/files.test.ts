/**
 * One atomic writer (issue 16 §1): every file vitkit writes goes through src/io/files.ts, so every
 * temporary name is tempName's (or, for a resumable download, partialName's) and cleanStaleTemps
 * recognises whatever a killed writer left. Writers are killed for real: a child process whose
 * rename/link (the commit) is replaced by SIGKILL dies with its temporary file written and not yet
 * committed, exactly as `kill -9` between the write and the rename would leave it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { VitkitError } from '../../src/errors.js';
import {
  cleanStaleTemps, commitTemp, copyFileAtomic, listTemps, partialName, tempName, writeFileAtomic, writeThroughTemp,
} from '../../src/io/files.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { writeEmbeddings } from '../../src/embed/embed.js';
import { RepoCache } from '../../src/hub/cache.js';
import { ROOT, tmp } from '../helpers.js';

const DIST_SRC = path.join(ROOT, 'dist', 'src');

function rejectsWith(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof VitkitError, `expected VitkitError, got ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, re);
    return true;
  };
}

/** the writers, each as a line of a child's script (`m(name)` imports dist/src/<name>.js) with the file it makes */
const WRITERS: { kind: string; file: string; call: (dir: string) => string; dir?: string }[] = [
  { kind: 'writeFileAtomic (new file: link)', file: 'a.json', call: (d) => `(await m('io/files')).writeFileAtomic(${J(d, 'a.json')}, '{"new":1}')` },
  { kind: 'writeFileAtomic (overwrite: rename)', file: 'old.txt', call: (d) => `(await m('io/files')).writeFileAtomic(${J(d, 'old.txt')}, 'new', { overwrite: true })` },
  { kind: 'copyFileAtomic', file: 'old.txt', call: (d) => `(await m('io/files')).copyFileAtomic(${J(d, 'src.bin')}, ${J(d, 'old.txt')}, { overwrite: true })` },
  { kind: 'writeSafetensors', file: 'w.safetensors', call: (d) => `(await m('io/safetensors')).writeSafetensors(${J(d, 'w.safetensors')}, { x: { shape: [2], data: new Float32Array([1, 2]) } })` },
  { kind: 'writeEmbeddings (jsonl)', file: 'e.jsonl', call: (d) => `(await m('embed/embed')).writeEmbeddings(${J(d, 'e.jsonl')}, ['a'], new Float32Array([1, 0]), 2, { model: 'm', normalized: true })` },
  { kind: 'Hub cache ref', file: 'main', dir: 'refs', call: (d) => `new (await m('hub/cache')).RepoCache(${J(d, 'hub')}, 'org/name').writeRef('main', '${'c'.repeat(40)}')` },
  { kind: 'Hub cache pointer (symlink)', file: 'config.json', dir: `snapshots/${'c'.repeat(40)}`, call: (d) => `new (await m('hub/cache')).RepoCache(${J(d, 'hub')}, 'org/name').linkPointer('${'c'.repeat(40)}', 'config.json', 'e1')` },
];

function J(...parts: string[]): string {
  return JSON.stringify(path.join(...parts));
}

/** Run `call` in a child whose every commit (rename, link) kills it with SIGKILL. */
function killedAtCommit(call: string): ReturnType<typeof spawnSync> {
  const script = `import fs from 'node:fs';
    import { syncBuiltinESMExports } from 'node:module';
    const die = () => process.kill(process.pid, 'SIGKILL');
    fs.renameSync = die; fs.linkSync = die; syncBuiltinESMExports();
    const m = (n) => import(${JSON.stringify(DIST_SRC)} + '/' + n + '.js');
    ${call};
    console.log('committed');`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
}

/** a folder with a previous version of old.txt, a source for copies and a Hub repo folder with a blob */
function workFolder(): { d: string; repo: string } {
  const d = tmp();
  writeFileSync(path.join(d, 'old.txt'), 'old');
  writeFileSync(path.join(d, 'src.bin'), 'copied bytes');
  const repo = path.join(d, 'hub', 'models--org--name');
  mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  writeFileSync(path.join(repo, 'blobs', 'e1'), '{"blob":1}');
  return { d, repo };
}

test('a temp left by each kind of killed writer is recognised as stale and removed by the cleaner; the previous file is intact', () => {
  for (const w of WRITERS) {
    const { d, repo } = workFolder();
    const dir = w.dir ? path.join(repo, w.dir) : d;
    const r = killedAtCommit(w.call(d));
    assert.equal(r.signal, 'SIGKILL', `${w.kind}: the child must die at the commit (stdout ${String(r.stdout)}, stderr ${String(r.stderr)})`);
    const left = listTemps(dir);
    assert.equal(left.length, 1, `${w.kind}: one temporary file left in ${dir}: ${readdirSync(dir).join(', ')}`);
    const t = left[0]!;
    assert.equal(t.kind, 'temp', w.kind);
    assert.equal(t.final, path.join(dir, w.file), w.kind);
    assert.equal(t.stale, true, `${w.kind}: its process (${t.pid}) is gone`);
    assert.ok(lstatSync(t.path).isFile() || lstatSync(t.path).isSymbolicLink(), w.kind);
    // the final name is untouched: the previous version, or nothing
    if (w.file === 'old.txt') assert.equal(readFileSync(path.join(d, 'old.txt'), 'utf8'), 'old', w.kind);
    else assert.ok(!existsSync(path.join(dir, w.file)), `${w.kind}: no file under the final name`);
    assert.deepEqual(cleanStaleTemps(dir), [t.path], w.kind);
    assert.deepEqual(listTemps(dir), [], w.kind);
  }
});

test('the Hub cache cleans what a killed pointer writer left before it links again', () => {
  const { d, repo } = workFolder();
  const commit = 'c'.repeat(40);
  assert.equal(killedAtCommit(WRITERS[6]!.call(d)).signal, 'SIGKILL');
  const snap = path.join(repo, 'snapshots', commit);
  assert.equal(listTemps(snap).length, 1);
  const pointer = new RepoCache(path.join(d, 'hub'), 'org/name').linkPointer(commit, 'config.json', 'e1');
  assert.deepEqual(readdirSync(snap), ['config.json']);
  assert.equal(readlinkSync(pointer), path.join('..', '..', 'blobs', 'e1'));
  assert.equal(readFileSync(pointer, 'utf8'), '{"blob":1}');
});

test('a killed download leaves only its .incomplete partial: recognised, kept for the next run to resume', () => {
  const d = tmp();
  const blob = path.join(d, 'abc');
  const r = killedAtCommit(`const f = await m('io/files');
    f.makeDirs(${JSON.stringify(d)});
    fs.writeFileSync(f.partialName(${JSON.stringify(blob)}), 'partial bytes');
    f.commitTemp(f.partialName(${JSON.stringify(blob)}), ${JSON.stringify(blob)}, { overwrite: true })`);
  assert.equal(r.signal, 'SIGKILL', String(r.stderr));
  assert.deepEqual(listTemps(d), [{ path: partialName(blob), final: blob, kind: 'partial', stale: false }]);
  assert.deepEqual(cleanStaleTemps(d), []);
  assert.equal(readFileSync(partialName(blob), 'utf8'), 'partial bytes');
  // the next run commits it under the final name, leaving nothing else
  commitTemp(partialName(blob), blob, { overwrite: true });
  assert.deepEqual(readdirSync(d), ['abc']);
});

test('each writer leaves no temporary file on success', async () => {
  const { d, repo } = workFolder();
  const commit = 'c'.repeat(40);
  writeFileAtomic(path.join(d, 'a.json'), '{}');
  writeFileAtomic(path.join(d, 'old.txt'), 'new', { overwrite: true });
  copyFileAtomic(path.join(d, 'src.bin'), path.join(d, 'copy.bin'));
  writeThroughTemp(path.join(d, 'through.txt'), {}, (t) => writeFileSync(t, 'via fill', { flag: 'wx' }));
  writeSafetensors(path.join(d, 'w.safetensors'), { x: { shape: [2], data: new Float32Array([1, 2]) } });
  writeEmbeddings(path.join(d, 'e.jsonl'), ['a'], new Float32Array([1, 0]), 2, { model: 'm', normalized: true });
  writeEmbeddings(path.join(d, 'e.safetensors'), ['a'], new Float32Array([1, 0]), 2, { model: 'm', normalized: true });
  const cache = new RepoCache(path.join(d, 'hub'), 'org/name');
  cache.writeRef('main', commit);
  cache.markNoExist(commit, 'missing.json');
  cache.linkPointer(commit, 'config.json', 'e1');
  assert.deepEqual(readdirSync(d).sort(), ['a.json', 'copy.bin', 'e.jsonl', 'e.safetensors', 'hub', 'old.txt', 'src.bin', 'through.txt', 'w.safetensors']);
  for (const sub of ['', 'blobs', 'refs', `snapshots/${commit}`, `.no_exist/${commit}`]) {
    assert.deepEqual(listTemps(path.join(repo, sub)), [], sub);
  }
  assert.deepEqual(readdirSync(path.join(repo, 'refs')), ['main']);
  assert.equal(readFileSync(path.join(repo, 'refs', 'main'), 'utf8'), commit);
  assert.equal(readFileSync(path.join(d, 'old.txt'), 'utf8'), 'new');
  assert.equal(readFileSync(path.join(d, 'copy.bin'), 'utf8'), 'copied bytes');
  assert.equal(readFileSync(path.join(d, 'through.txt'), 'utf8'), 'via fill');
  assert.deepEqual([...readSafetensors(path.join(d, 'w.safetensors')).f32('x').data], [1, 2]);
  assert.equal(readFileSync(path.join(d, 'e.jsonl'), 'utf8'), '{"name":"a","embedding":[1,0]}\n');
});

test('every file vitkit writes goes through src/io/files.ts (no second temp-and-rename anywhere in src/)', () => {
  // the fs calls that make or commit a file; src/io/files.ts alone may use them, plus the fill of a
  // writeThroughTemp (the Hub pointer's symlink, or its copy where symlinks are not allowed)
  const BANNED = new Set(['renameSync', 'writeFileSync', 'appendFileSync', 'createWriteStream', 'linkSync', 'copyFileSync', 'symlinkSync',
    'rename', 'writeFile', 'appendFile', 'copyFile', 'link', 'symlink', 'cp', 'cpSync']);
  const ALLOWED: Record<string, string[]> = { 'src/hub/cache.ts': ['symlinkSync', 'copyFileSync'] };
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) { walk(p); continue; }
      if (!e.name.endsWith('.ts')) continue;
      const rel = path.relative(ROOT, p).split(path.sep).join('/');
      if (rel === 'src/io/files.ts') continue;
      const text = readFileSync(p, 'utf8');
      assert.doesNotMatch(text, /import\s+(\*\s+as\s+)?\w+\s+from\s+'(node:)?fs(\/promises)?'/, `${rel}: import named fs functions, so this check sees them`);
      for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(?:node:)?fs(?:\/promises)?'/g)) {
        for (const name of m[1]!.split(',').map((s) => s.trim().split(/\s+as\s+/)[0]!).filter(Boolean)) {
          if (BANNED.has(name) && !(ALLOWED[rel] ?? []).includes(name)) found.push(`${rel}: ${name}`);
        }
      }
      if (/\.toFile\(/.test(text)) found.push(`${rel}: sharp's toFile`);
      if (/\.tmp\b|\.tmp-/.test(text.replace(/^\s*(\*|\/\/).*$/gm, ''))) found.push(`${rel}: a temporary name of its own`);
    }
  };
  walk(path.join(ROOT, 'src'));
  assert.deepEqual(found, []);
});

test('a write into a missing or read-only folder is refused with an error naming the file; the previous file is intact', () => {
  const d = tmp();
  assert.throws(() => writeFileAtomic(path.join(d, 'no', 'such', 'x.png'), 'x', { what: 'PNG' }),
    rejectsWith(/^Cannot write PNG .*\/no\/such\/x\.png: its folder .*\/no\/such does not exist \(ENOENT\)$/));
  assert.throws(() => copyFileAtomic(path.join(d, 'nothing'), path.join(d, 'no', 'y.bin')), rejectsWith(/^Cannot write file .*\/no\/y\.bin: its folder .* does not exist/));
  writeFileSync(path.join(d, 'afile'), '');
  assert.throws(() => writeFileAtomic(path.join(d, 'afile', 'z.json'), '{}', { what: 'config' }), rejectsWith(/^Cannot write config .*afile\/z\.json: .*afile is not a folder \(ENOTDIR\)$/));
  assert.deepEqual(readdirSync(d), ['afile']);

  // read-only: a folder of mode 555, written by an unprivileged user (root ignores the mode)
  const ro = path.join(d, 'ro');
  mkdirSync(ro);
  writeFileSync(path.join(ro, 'keep.json'), 'previous');
  chmodSync(ro, 0o555);
  const asRoot = process.getuid?.() === 0;
  chmodSync(d, 0o755); // mkdtemp's 0700 would stop the unprivileged child at d itself
  const script = `const f = await import(${JSON.stringify(path.join(DIST_SRC, 'io', 'files.js'))});
    const s = await import(${JSON.stringify(path.join(DIST_SRC, 'io', 'safetensors.js'))});
    for (const fn of [
      () => f.writeFileAtomic(${J(ro, 'keep.json')}, 'new', { overwrite: true, what: 'checkpoint config' }),
      () => f.copyFileAtomic(${J(d, 'afile')}, ${J(ro, 'copy.bin')}),
      () => s.writeSafetensors(${J(ro, 'w.safetensors')}, { x: { shape: [1], data: new Float32Array(1) } }),
    ]) { try { fn(); console.log('wrote'); } catch (e) { console.log(e.name + ': ' + e.message); } }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  assert.match(lines[0]!, /^VitkitError: Cannot write checkpoint config .*\/ro\/keep\.json: its folder .*\/ro is not writable: EACCES \(permission denied\)$/);
  assert.match(lines[1]!, /^VitkitError: Cannot write file .*\/ro\/copy\.bin: its folder .*\/ro is not writable: EACCES/);
  assert.match(lines[2]!, /^VitkitError: Cannot write safetensors file .*\/ro\/w\.safetensors: its folder .*\/ro is not writable: EACCES/);
  assert.deepEqual(readdirSync(ro), ['keep.json']);
  assert.equal(readFileSync(path.join(ro, 'keep.json'), 'utf8'), 'previous');
  chmodSync(ro, 0o755);
});

test('a write that fails midway leaves the previous file and no temporary file', () => {
  const d = tmp();
  const f = path.join(d, 'model.json');
  writeFileSync(f, 'previous');
  let tmpSeen = '';
  assert.throws(() => writeThroughTemp(f, { overwrite: true, what: 'checkpoint config' }, (t) => {
    tmpSeen = t;
    writeFileSync(t, 'half of the n', { flag: 'wx' });
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }), rejectsWith(/^Cannot write checkpoint config .*model\.json: ENOSPC \(no space left on device\)$/));
  assert.match(path.basename(tmpSeen), /^model\.json\.tmp-\d+-[0-9a-f]{12}$/);
  assert.equal(readFileSync(f, 'utf8'), 'previous');
  assert.deepEqual(readdirSync(d), ['model.json']);
  // the commit refusing (a file that appeared meanwhile, no overwrite) removes the temp and keeps that file
  const g = path.join(d, 'late.json');
  const t = tempName(g);
  writeFileSync(t, 'ours');
  writeFileSync(g, 'theirs');
  assert.throws(() => commitTemp(t, g), rejectsWith(/late\.json already exists; pass --overwrite/));
  assert.equal(readFileSync(g, 'utf8'), 'theirs');
  assert.deepEqual(readdirSync(d).sort(), ['late.json', 'model.json']);
});
