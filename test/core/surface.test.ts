/**
 * The public surface: index.ts is `export * from './core.js'` plus the Node-only additions, so the
 * two cannot drift. Checked on the emitted declarations with the TypeScript compiler (types and
 * values alike): the Node entry exports every name in public_names.txt (the surface as it was
 * before index.ts re-exported the core: none may be lost) and every name the core exports; at
 * run time each of the core's values is the very same binding in the Node entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers.js';

const DIST = path.join(ROOT, 'dist', 'src');

/** names exported by each declaration file (types, interfaces, values), through every re-export */
function exportNames(...files: string[]): Map<string, Set<string>> {
  const prog = ts.createProgram(files, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true, skipLibCheck: true });
  const checker = prog.getTypeChecker();
  const out = new Map<string, Set<string>>();
  for (const f of files) {
    const sf = prog.getSourceFile(f);
    assert.ok(sf, `${f} not in the program`);
    const sym = checker.getSymbolAtLocation(sf);
    assert.ok(sym, `${f} is not a module`);
    out.set(f, new Set(checker.getExportsOfModule(sym).map((s) => s.name)));
  }
  return out;
}

test('the Node entry keeps every public name and exports everything the core does (types included)', () => {
  const index = path.join(DIST, 'index.d.ts'), core = path.join(DIST, 'core.d.ts');
  for (const f of [index, core]) assert.ok(existsSync(f), `${f} missing: run tsc`);
  const names = exportNames(index, core);
  const idx = names.get(index)!, cor = names.get(core)!;
  const baseline = readFileSync(path.join(ROOT, 'test', 'core', 'public_names.txt'), 'utf8').split('\n').filter((l) => l.trim());
  assert.ok(baseline.length > 200, 'the baseline list is the whole surface');
  const lost = baseline.filter((n) => !idx.has(n));
  assert.deepEqual(lost, [], `names the public surface lost: ${lost.join(', ')}`);
  const notReexported = [...cor].filter((n) => !idx.has(n));
  assert.deepEqual(notReexported, [], `core names missing from the Node entry: ${notReexported.join(', ')}`);
  // the names the work adds to both entries
  for (const n of ['loadModelFromBytes', 'CheckpointBytes', 'BytesLoadOptions', 'LoadedModel', 'configFromHf', 'loadStateDict']) {
    assert.ok(cor.has(n) && idx.has(n), n);
  }
  // and the Node-only ones stay out of the core
  for (const n of ['loadModel', 'readSafetensors', 'loadImage', 'runCli', 'imagenetLabels', 'checkConfigAgainstWeights']) {
    assert.ok(idx.has(n) && !cor.has(n), n);
  }
});

test('at run time every value of the core is the same binding in the Node entry', async () => {
  const core = (await import('../../src/core.js')) as Record<string, unknown>;
  const index = (await import('../../src/index.js')) as Record<string, unknown>;
  const keys = Object.keys(core);
  assert.ok(keys.length > 80);
  const differ = keys.filter((k) => index[k] !== core[k]);
  assert.deepEqual(differ, [], `the Node entry's ${differ.join(', ')} differ from the core's`);
  assert.equal(typeof index['loadModelFromBytes'], 'function');
});
