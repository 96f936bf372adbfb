/**
 * A strict ESM TypeScript consumer compiled against the packed tarball with TypeScript 5.x (the
 * devDependency `typescript`) and 7.x (`typescript7`, an npm alias of typescript@7), with no Node
 * types of vitkit's own in the way: vitkit's declaration files must not need `@types/node` (they
 * named `NodeJS.ProcessEnv`, which TypeScript 7's `tsc --strict` refused). Errors in the dependencies'
 * declarations (sharp's need @types/node, which a consumer installs) are not vitkit's and are ignored.
 * It also imports the engine's internals from `vitkit/internal`, and must fail to import one from `vitkit`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers.js';

const CONSUMER = `import { classify, downloadModel, hubCacheDir, type Classification } from 'vitkit';
import { Tensor } from 'vitkit/core';
import { HostDevice, OP_NAMES, type Ops } from 'vitkit/internal';
// @ts-expect-error the engine's internals are not in the public entry (issue 16)
import { VitCore } from 'vitkit';
const ops: Ops<Float32Array> | undefined = undefined;
console.log(OP_NAMES.length, typeof HostDevice, ops, typeof VitCore);
const top: Classification[] = await classify('cat.png', { model: 'timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k', topK: 3 });
const s: number = top[0]!.score;
const t = new Tensor([1, 2], new Float32Array(2));
console.log(s, t.shape, hubCacheDir({ HF_HOME: '/x' }), typeof downloadModel);
`;

test('a strict ESM consumer compiles against the packed tarball with TypeScript 5 and 7, no error in vitkit\'s declarations', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'vitkit-tsc-'));
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  const proj = path.join(work, 'proj');
  mkdirSync(path.join(proj, 'node_modules'), { recursive: true });
  const untar = spawnSync('tar', ['xzf', path.join(work, tgz), '-C', work]);
  assert.equal(untar.status, 0);
  cpSync(path.join(work, 'package'), path.join(proj, 'node_modules', 'vitkit'), { recursive: true });
  // the dependencies' declarations, copied (a symlink would resolve @types/node from this checkout)
  for (const d of ['sharp', 'commander', 'cli-progress']) cpSync(path.join(ROOT, 'node_modules', d), path.join(proj, 'node_modules', d), { recursive: true, dereference: true });
  writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  writeFileSync(path.join(proj, 'index.ts'), CONSUMER);
  writeFileSync(path.join(proj, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: [], skipLibCheck: false },
    files: ['index.ts'],
  }));
  const compilers = [['5', path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')], ['7', path.join(ROOT, 'node_modules', 'typescript7', 'bin', 'tsc')]] as const;
  for (const [major, tsc] of compilers) {
    assert.ok(existsSync(tsc), `TypeScript ${major} (${tsc}) is a devDependency`);
    const v = spawnSync(process.execPath, [tsc, '--version'], { encoding: 'utf8' });
    assert.match(v.stdout, new RegExp(`Version ${major}\\.`));
    const r = spawnSync(process.execPath, [tsc, '-p', proj], { cwd: proj, encoding: 'utf8' });
    const lines = (r.stdout + r.stderr).split('\n').filter((l) => /error TS/.test(l));
    const ours = lines.filter((l) => l.startsWith('node_modules/vitkit/') || l.startsWith('index.ts'));
    assert.deepEqual(ours, [], `TypeScript ${major}: errors in vitkit's declarations or the consumer`);
  }
});
