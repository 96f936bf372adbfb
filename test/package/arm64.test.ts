/**
 * The AArch64 NEON kernels (GEMM 8x12 microkernel, GELU, softmax, LayerNorm forward, add, bias add) against
 * the portable ones: test/package/arm64_kernels.cc, cross-built with Debian's aarch64-linux-gnu-g++
 * as the linux-arm64 prebuild compiles the kernels, runs under qemu-aarch64 once with the default
 * dispatch (NEON: baseline on AArch64) and once with VITKIT_ISA=portable; every value must agree.
 * With CI=true a missing cross toolchain fails (.ci/run installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
const ready = linuxX64 && has('aarch64-linux-gnu-g++') && has('qemu-aarch64');
const skip = ready || (process.env['CI'] === 'true' && linuxX64) ? false
  : 'needs aarch64-linux-gnu-g++ and qemu-aarch64 on linux-x64 (apt-get install g++-aarch64-linux-gnu qemu-user)';

function parse(out: string): { isa: string; cases: Map<string, number[]> } {
  const lines = out.trim().split('\n');
  const isa = /^isa (\w+)$/.exec(lines[0] ?? '')?.[1] ?? '';
  const cases = new Map<string, number[]>();
  for (const line of lines.slice(1)) {
    const t = line.split(' ');
    const i = t.findIndex((x) => /^[-+]?(\d+(\.\d*)?(e[-+]?\d+)?|nan|inf)$/i.test(x));
    cases.set(t.slice(0, i).join(" "), t.slice(i).map((x) => (/^[-+]?inf$/i.test(x) ? (x.startsWith("-") ? -Infinity : Infinity) : Number(x))));
  }
  return { isa, cases };
}

test('NEON kernels match the portable ones under qemu-aarch64 (GEMM, linear, GELU, softmax, LayerNorm, add, bias)',
  { skip, timeout: 300_000 }, () => {
    assert.ok(ready, 'CI=true: the arm64 cross toolchain (g++-aarch64-linux-gnu, qemu-user) is missing; .ci/run installs it');
    const gyp = JSON.parse(readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
    const sources = gyp.targets[0]!.sources.filter((s) => !s.endsWith('addon.cc')).map((s) => path.join(ROOT, s));
    const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-arm64-'));
    try {
      const exe = path.join(dir, 'arm64_kernels');
      const cc = spawnSync('aarch64-linux-gnu-g++', ['-std=c++17', '-O3', '-fno-math-errno', '-pthread', '-static',
        '-I', path.join(ROOT, 'native'), path.join(ROOT, 'test', 'package', 'arm64_kernels.cc'), ...sources, '-o', exe], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      const run = (isa: string) => {
        const r = spawnSync('qemu-aarch64', [exe], { encoding: 'utf8', env: { ...process.env, VITKIT_ISA: isa }, maxBuffer: 64 << 20 });
        assert.equal(r.status, 0, r.stderr);
        return parse(r.stdout);
      };
      const neon = run(''), portable = run('portable');
      assert.equal(neon.isa, 'neon');
      assert.equal(portable.isa, 'portable');
      assert.ok(neon.cases.size >= 110, `only ${neon.cases.size} cases`);
      assert.deepEqual([...neon.cases.keys()], [...portable.cases.keys()]);
      for (const [name, got] of neon.cases) {
        const want = portable.cases.get(name)!;
        assert.equal(got.length, want.length, name);
        for (let i = 0; i < got.length; i++) {
          const g = got[i]!, w = want[i]!;
          if (g === w) continue;  // incl. the same infinity
          if (Number.isNaN(w) || Number.isNaN(g)) {
            assert.ok(Number.isNaN(w) && Number.isNaN(g), `${name}[${i}]: neon ${g}, portable ${w}`);
            continue;
          }
          // the same math in another summation order and with FMA: ~1e-7 relative observed
          assert.ok(Math.abs(g - w) <= 2e-6 * (1 + Math.abs(w)), `${name}[${i}]: neon ${g}, portable ${w}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
