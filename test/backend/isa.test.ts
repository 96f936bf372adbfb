/**
 * Run-time ISA detection (native/platform.h: CPUID + XGETBV): the kernel set the addon picks is
 * the best one /proc/cpuinfo's flags allow (the kernel lists avx2 / avx512f only where it saves
 * their register state too), and VITKIT_ISA caps it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT } from '../helpers.js';

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

function isaWith(env: Record<string, string>): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    "import { loadAddon } from './dist/src/backend/native.js'; console.log(loadAddon().gemmIsa())"],
  { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('the dispatcher picks the best ISA that /proc/cpuinfo lists', { skip: linuxX64 ? false : 'linux-x64 only' }, () => {
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
  assert.ok(line, 'no flags line in /proc/cpuinfo');
  const flags = new Set(line.split(':')[1]!.trim().split(/\s+/));
  const avx2 = flags.has('avx') && flags.has('avx2') && flags.has('fma');
  const expected = avx2 && flags.has('avx512f') ? 'avx512' : avx2 ? 'avx2' : 'portable';
  assert.equal(isaWith({ VITKIT_ISA: '' }), expected);
  assert.equal(isaWith({ VITKIT_ISA: 'portable' }), 'portable');
  assert.equal(isaWith({ VITKIT_ISA: 'avx2' }), expected === 'portable' ? 'portable' : 'avx2');
});
