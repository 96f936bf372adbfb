/**
 * Bombs and hangs in file arguments and output folders: every file a command reads whole is a regular
 * file under a size cap (no /dev/zero read for ever, no bad_alloc), JSON has a nesting cap (no stack
 * overflow), every mkdir loop is bounded with a truthful error (/proc, a read-only file system, a file
 * in the way), and saveCheckpoint refuses before it writes anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, tmp, vitkit, assertUserError } from '../helpers.js';
import { makeDirs, readJsonFile, readTextFile } from '../../src/io/files.js';
import { parseJsonObject } from '../../src/checkpoint/checkpoint_core.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { initWeights, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { VitkitError } from '../../src/errors.js';

/** a CLI run with a wall-clock limit: a hang fails the test instead of stalling the suite */
function bounded(args: string[], seconds = 30): { code: number | null; err: string; out: string; signal: NodeJS.Signals | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: seconds * 1000, env: { ...process.env, VITKIT_THREADS: '1' } });
  return { code: r.status, err: r.stderr, out: r.stdout, signal: r.signal };
}

const DEEP = '['.repeat(200_000) + ']'.repeat(200_000);

test('zeroshot --labels-file /dev/zero and tokenize -f /dev/zero: refused in one line, at once', () => {
  for (const args of [['zeroshot', '-m', 'nowhere', '--labels-file', '/dev/zero', 'x.png'], ['tokenize', '-f', '/dev/zero']]) {
    const t0 = Date.now();
    const r = bounded(args, 20);
    assert.equal(r.signal, null, `${args[0]} hung`);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^error: Expected a regular file for --(labels-file|file) \/dev\/zero but received a character device\n$/);
    assert.ok(Date.now() - t0 < 15_000);
  }
});

test('a labels file or texts file over the cap is refused before it is read', () => {
  const d = tmp();
  const big = path.join(d, 'big.txt');
  writeFileSync(big, '');
  spawnSync('truncate', ['-s', String((64 << 20) + 1), big]);
  const r = bounded(['zeroshot', '-m', 'nowhere', '--labels-file', big, 'x.png']);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /Expected --labels-file .*big\.txt of at most 67108864 bytes but received 67108865 bytes/);
});

test('a JSON array 200,000 deep: one line naming the file, no stack overflow', () => {
  const d = tmp();
  const f = path.join(d, 'deep.json');
  writeFileSync(f, DEEP);
  const r = bounded(['tokenize', '-f', f]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /^error: Expected --file .*deep\.json nested at most 256 levels deep but it goes deeper \(at character 256\)\n$/);
  assert.throws(() => readJsonFile(f, 'config'), (e: Error) => e instanceof VitkitError && /nested at most 256/.test(e.message));
  assert.throws(() => parseJsonObject('{"a":' + DEEP + '}', 'config.json'), /config\.json nested at most 256 levels deep/);
  // brackets inside strings do not count; 256 levels still parse
  assert.deepEqual(parseJsonObject('{"a":"[[[[{{{{\\"[["}', 'x'), { a: '[[[[{{{{"[[' });
  const ok = '['.repeat(255) + ']'.repeat(255);
  assert.doesNotThrow(() => parseJsonObject(`{"a":${ok}}`, 'x'));
  assert.equal(readTextFile(f, 'texts').length, DEEP.length);
});

test('train --out /proc/vitkit_run ends at once with the folder mkdir refused (Node\'s recursive mkdir spins there)', () => {
  const r = bounded(['train', '--model', 'vit_tiny_patch16_224', '--data', 'mnist', '--img-size', '28', '--patch-size', '7', '--epochs', '1', '--out', '/proc/vitkit_run'], 60);
  assert.equal(r.signal, null, 'train --out /proc/vitkit_run hung');
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /error: Cannot create run folder \/proc\/vitkit_run: mkdir \/proc\/vitkit_run failed: \/proc exists but accepts no new folders/);
});

test('makeDirs: nested folders, an existing folder, a file in the way, /proc deep, each bounded', () => {
  const d = tmp();
  makeDirs(path.join(d, 'a', 'b', 'c'));
  assert.ok(existsSync(path.join(d, 'a', 'b', 'c')));
  makeDirs(path.join(d, 'a', 'b')); // exists: nothing to do
  writeFileSync(path.join(d, 'f'), 'x');
  assert.throws(() => makeDirs(path.join(d, 'f', 'g')), (e: Error) => e instanceof VitkitError && /Cannot create output folder .*f\/g: .*\/f is a file, not a folder/.test(e.message));
  assert.throws(() => makeDirs('/proc/vitkit_x/y/z', 'run folder'), /Cannot create run folder \/proc\/vitkit_x\/y\/z: mkdir \/proc\/vitkit_x failed/);
});

test('a read-only file system: EROFS named, not a misleading ENOENT', (t) => {
  const d = tmp();
  mkdirSync(path.join(d, 'ro'));
  const script = `import('${path.join(ROOT, 'dist', 'src', 'io', 'files.js')}').then((m) => { try { m.makeDirs(process.argv[1] + '/run/sub', 'run folder'); console.log('made'); } catch (e) { console.log(e.message); } })`;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o ro tmpfs "$0" && "${process.execPath}" -e "$1" "$0"`, path.join(d, 'ro'), script], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0 || /Operation not permitted|not found|cannot/.test(r.stderr)) {
    t.skip(`needs unshare -m and mount (a private mount namespace) to make a read-only file system: ${r.stderr.trim().split('\n')[0] ?? r.error}`);
    return;
  }
  assert.match(r.stdout, /Cannot create run folder .*\/ro\/run\/sub: mkdir .*\/ro\/run failed: the file system is read-only \(EROFS\)/);
});

test('saveCheckpoint refuses before writing anything (config.json present, model.safetensors absent)', () => {
  const d = tmp();
  writeFileSync(path.join(d, 'config.json'), '{}');
  const m = new VisionTransformer(resolveConfig({ img_size: 16, patch_size: 8, in_chans: 3, num_classes: 2, embed_dim: 16, depth: 1, num_heads: 2 }));
  initWeights(m, 1);
  assert.throws(() => saveCheckpoint(d, m, { name: 'vit_custom', pretrainedCfg: {} }), /Refusing to overwrite .*config\.json/);
  assert.deepEqual(readdirSync(d), ['config.json']);
  // labels of the wrong length are refused before the weights are written
  const e = tmp();
  assert.throws(() => saveCheckpoint(e, m, { name: 'vit_custom', pretrainedCfg: {}, labels: ['a', 'b', 'c'] }));
  assert.deepEqual(readdirSync(e), []);
});

test('the CLI readers share the caps: a FIFO given as --file is refused without blocking', () => {
  const d = tmp();
  const fifo = path.join(d, 'pipe');
  const mk = spawnSync('mkfifo', [fifo]);
  if (mk.status !== 0) return;
  assertUserError(vitkit('tokenize', '-f', fifo), /Expected a regular file for --file .*pipe but received a FIFO \(named pipe\)/);
});
