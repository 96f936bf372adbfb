/**
 * A plain clone has no ../shared (the PyTorch reference tensors): every test file that reads it must
 * still load, so its tests skip with one line instead of the file crashing at module scope (an ENOENT
 * before the skip check made `npm test` red in a fresh clone). Each such file is loaded with
 * VITKIT_SHARED=/nonexistent and a name filter that selects none of its tests: only module scope runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers.js';

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

test('every test file that reads ../shared loads without it (module scope reads nothing from it)', () => {
  const files = testFiles(path.join(ROOT, 'dist', 'test'))
    .filter((f) => /REFS|SHARED|CLIP_DIR|refsSkip|needRefs|skipClip/.test(readFileSync(f, 'utf8')) && !f.endsWith('plain_clone.test.js'));
  assert.ok(files.length > 10, `expected the parity test files, found ${files.length}`);
  const crashed: string[] = [];
  for (const f of files) {
    const env: NodeJS.ProcessEnv = { ...process.env, VITKIT_SHARED: '/nonexistent', CI: 'false' };
    delete env['NODE_TEST_CONTEXT']; // else the child reports to this runner's protocol and always exits 0
    const r = spawnSync(process.execPath, ['--test', '--test-name-pattern=^__no_test_has_this_name__$', f], {
      encoding: 'utf8', timeout: 120_000,
      env,
    });
    if (r.status !== 0) crashed.push(`${path.relative(ROOT, f)}: ${(/Error[^\n]*/.exec(r.stdout + r.stderr) ?? ['exit ' + r.status])[0]}`);
  }
  assert.deepEqual(crashed, []);
});
