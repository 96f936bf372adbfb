#!/usr/bin/env node
/**
 * Builds scripts/kernel-check.cc with the native kernels (every binding.gyp source but addon.cc) using a
 * prebuild target's compiler and flags, and runs it on that target: natively, or under qemu-aarch64 /
 * qemu-x86_64 with the cross sysroot (/usr/<triple>) for a cross build; musl targets link statically.
 *   node scripts/check-kernels.mjs <target> [VITKIT_ISA=portable ...]   e.g. linux-arm64-glibc
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS, compilerFor, envName, missingCompiler, which } from './prebuild.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QEMU = { x64: ['qemu-x86_64', 'x86_64-linux-gnu'], arm64: ['qemu-aarch64', 'aarch64-linux-gnu'] };

function kernelSources() {
  const gyp = JSON.parse(readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8'));
  return gyp.targets[0].sources.filter((s) => !s.endsWith('addon.cc')).map((s) => path.join(ROOT, s));
}

/** @returns {{ ok: true, summary: string } | { ok: false, why: string }} */
export function checkKernels(t, extraEnv = {}) {
  const cxx = compilerFor(t);
  if (!cxx) return { ok: false, why: `${missingCompiler(t)} not found (set ${envName(t)})` };
  let runner = [];
  if (t.arch !== process.arch) {
    const [qemu, triple] = QEMU[t.arch];
    if (!which(qemu)) return { ok: false, why: `${qemu} not found (Debian: apt-get install qemu-user)` };
    runner = t.libc === 'musl' ? [qemu] : [qemu, '-L', `/usr/${triple}`];
  }
  const dir = mkdtempSync(path.join(tmpdir(), `vitkit-kcheck-${t.id}-`));
  try {
    const exe = path.join(dir, 'kernel-check');
    const flags = ['-std=c++17', '-O3', '-fno-math-errno', '-pthread', '-I', path.join(ROOT, 'native'), ...(t.libc === 'musl' ? ['-static'] : [])];
    const cc = spawnSync(cxx, [...flags, path.join(ROOT, 'scripts', 'kernel-check.cc'), ...kernelSources(), '-o', exe], { encoding: 'utf8' });
    if (cc.status !== 0) return { ok: false, why: `${cxx} failed:\n${(cc.stderr || cc.stdout).trim().split('\n').slice(-10).join('\n')}` };
    const cmd = [...runner, exe];
    const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...extraEnv } });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    if (r.status !== 0) return { ok: false, why: `${cmd.join(' ')} exited ${r.status ?? r.signal}:\n${out}` };
    return { ok: true, summary: out.split('\n').pop() ?? '', output: out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const id = process.argv[2];
  const t = TARGETS.find((x) => x.id === id);
  if (!t) {
    console.error(`error: expected a target (${TARGETS.map((x) => x.id).join(', ')}) but received ${JSON.stringify(id ?? '')}`);
    process.exit(2);
  }
  const env = Object.fromEntries(process.argv.slice(3).map((a) => a.split('=', 2)));
  const r = checkKernels(t, env);
  console.log(r.ok ? r.output : `error: ${r.why}`);
  process.exit(r.ok ? 0 : 1);
}
