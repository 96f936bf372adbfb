/** The addon lookup: a source build first, then the package's prebuild for this platform and libc, else one clear line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addonPath } from '../../src/backend/addon_path.js';
import { VitkitError } from '../../src/errors.js';

const libc = process.platform === 'linux' && existsSync('/etc/alpine-release') ? 'musl' : 'glibc';

function fakeRoot(files: string[]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'vitkit-addon-'));
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'vitkit-fake-root' }));
  for (const f of files) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), '');
  }
  return root;
}

test('addonPath: the prebuild for this platform, arch and libc; a source build wins over it', () => {
  const tuple = `${process.platform}-${process.arch}`;
  const other = libc === 'glibc' ? 'musl' : 'glibc';
  const root = fakeRoot([`prebuilds/${tuple}/vitkit.napi.${other}.node`, `prebuilds/${tuple}/vitkit.napi.${libc}.node`, 'prebuilds/plan9-mips/vitkit.napi.node']);
  try {
    assert.equal(addonPath(root), path.join(root, 'prebuilds', tuple, `vitkit.napi.${libc}.node`));
    mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    writeFileSync(path.join(root, 'build', 'Release', 'vitkit.node'), '');
    assert.equal(addonPath(root), path.join(root, 'build', 'Release', 'vitkit.node'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('addonPath: nothing for this machine is one VitkitError line naming the root, the target and the way out', () => {
  const other = libc === 'glibc' ? 'musl' : 'glibc';
  const root = fakeRoot([`prebuilds/${process.platform}-${process.arch}/vitkit.napi.${other}.node`]);
  try {
    assert.throws(() => addonPath(root), (e: unknown) => {
      assert.ok(e instanceof VitkitError);
      assert.ok(!e.message.includes('\n'), e.message);
      assert.ok(e.message.includes(root));
      assert.match(e.message, new RegExp(`platform=${process.platform} arch=${process.arch} .*libc=${libc}`));
      assert.match(e.message, /npm rebuild vitkit/);
      return true;
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
