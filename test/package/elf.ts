/** What a prebuilt .node needs from the system: its ELF machine and the newest symbol versions it binds. */
import { spawnSync } from 'node:child_process';
import { openSync, readSync, closeSync } from 'node:fs';

export const ELF_MACHINE = { x64: 62, arm64: 183 } as const;

export function elfMachine(file: string): number {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  return b.readUInt32BE(0) === 0x7f454c46 ? b.readUInt16LE(18) : -1;
}

/** the newest version of each symbol family it needs (GLIBC, GLIBCXX, CXXABI), from `objdump -T` */
export function newestVersions(file: string): Record<string, number[]> {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`objdump -T ${file} failed: ${r.stderr}`);
  const newest: Record<string, number[]> = {};
  for (const m of r.stdout.matchAll(/\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)/g)) {
    const v = m[2]!.split('.').map(Number);
    const cur = newest[m[1]!];
    if (!cur || cmp(v, cur) > 0) newest[m[1]!] = v;
  }
  return newest;
}

export function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** glibc >= 2.29 and GCC 12's libstdc++ (Debian 12, Ubuntu 22.04, Fedora 36 and later) */
export const GLIBC_MAX = [2, 29];
export const GLIBCXX_MAX = [3, 4, 30];
