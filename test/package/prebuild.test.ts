/**
 * The prebuilt binaries: the arm64 one is cross-built with Debian's aarch64-linux-gnu-g++, is an
 * aarch64 ELF needing no newer glibc / libstdc++ than the x64 one, and the same compiler's kernels
 * pass scripts/kernel-check.cc under qemu-aarch64. The x64 one is checked in consumer.test.ts.
 * With CI=true a missing cross toolchain fails (.ci/run installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers.js';
import { ELF_MACHINE, GLIBC_MAX, GLIBCXX_MAX, cmp, elfMachine, newestVersions } from './elf.js';

const PREBUILD = path.join(ROOT, 'scripts', 'prebuild.mjs');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const crossReady = process.platform === 'linux' && process.arch === 'x64' && has('aarch64-linux-gnu-g++') && has('qemu-aarch64');
const skipArm = crossReady ? false
  : process.env['CI'] === 'true' && process.platform === 'linux' && process.arch === 'x64' ? false
    : 'needs aarch64-linux-gnu-g++ and qemu-aarch64 on linux-x64 (apt-get install g++-aarch64-linux-gnu qemu-user)';

test('linux-arm64-glibc prebuild: cross-built, aarch64 ELF, glibc <= 2.29 / GLIBCXX <= 3.4.30, kernels pass under qemu-aarch64',
  { skip: skipArm, timeout: 300_000 }, () => {
    assert.ok(crossReady, 'CI=true: the arm64 cross toolchain (g++-aarch64-linux-gnu, qemu-user) is missing; .ci/run installs it');
    const r = spawnSync(process.execPath, [PREBUILD, '--targets', 'linux-arm64-glibc', '--strict'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /prebuild linux-arm64-glibc: prebuilds\/linux-arm64\/vitkit\.napi\.glibc\.node .*kernel check isa neon, threads 3: ok/);
    const file = path.join(ROOT, 'prebuilds', 'linux-arm64', 'vitkit.napi.glibc.node');
    assert.equal(elfMachine(file), ELF_MACHINE.arm64);
    const v = newestVersions(file);
    assert.ok(v['GLIBC'] && cmp(v['GLIBC'], GLIBC_MAX) <= 0, `needs GLIBC_${v['GLIBC']?.join('.')}`);
    assert.ok(!v['GLIBCXX'] || cmp(v['GLIBCXX'], GLIBCXX_MAX) <= 0, `needs GLIBCXX_${v['GLIBCXX']?.join('.')}`);
  });

test('prebuild script: an unknown target is a usage error (exit 2) naming the known ones', () => {
  const r = spawnSync(process.execPath, [PREBUILD, '--targets', 'linux-mips-glibc'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'error: unknown prebuild target "linux-mips-glibc"; expected one of linux-x64-glibc, linux-arm64-glibc, linux-x64-musl, linux-arm64-musl');
});

test('prebuild script --strict: a target without its compiler fails the build instead of being skipped', () => {
  const r = spawnSync(process.execPath, [PREBUILD, '--targets', 'linux-x64-musl', '--strict', '--no-check'], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, VITKIT_CXX_LINUX_X64_MUSL: '/nonexistent/x86_64-linux-musl-g++' },
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /prebuild linux-x64-musl: error: \/nonexistent\/x86_64-linux-musl-g\+\+ not found/);
  assert.match(r.stderr, /error: 1 of 1 prebuild targets did not build; a published package needs them all/);
  assert.ok(!existsSync(path.join(ROOT, 'prebuilds', 'linux-x64', 'vitkit.napi.musl.node')));
});
