/**
 * The public surface: index.ts is `export * from './core.js'` plus the Node-only additions, so the
 * two cannot drift. Checked on the emitted declarations with the TypeScript compiler (types and
 * values alike): the Node entry exports exactly the names in public_names.txt (the reviewed list:
 * a name added or lost is a change to review there) and every name the core exports; at run time
 * each of the core's values is the very same binding in the Node entry. The engine's internals are
 * the internal entry's (internal.ts, `vitkit/internal`): exactly internal_names.txt, none of them
 * public.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers.js';

const DIST = path.join(ROOT, 'dist', 'src');

function nameList(file: string): string[] {
  return readFileSync(path.join(ROOT, 'test', 'core', file), 'utf8').split('\n').filter((l) => l.trim());
}

/** a and b as sets: what only a has, what only b has */
function setDiff(a: Iterable<string>, b: Iterable<string>): { onlyA: string[]; onlyB: string[] } {
  const A = new Set(a), B = new Set(b);
  return { onlyA: [...A].filter((n) => !B.has(n)).sort(), onlyB: [...B].filter((n) => !A.has(n)).sort() };
}

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

test('the Node entry exports exactly the reviewed public names and everything the core does (types included)', () => {
  const index = path.join(DIST, 'index.d.ts'), core = path.join(DIST, 'core.d.ts');
  for (const f of [index, core]) assert.ok(existsSync(f), `${f} missing: run tsc`);
  const names = exportNames(index, core);
  const idx = names.get(index)!, cor = names.get(core)!;
  const baseline = nameList('public_names.txt');
  assert.ok(baseline.length > 200, 'the baseline list is the whole surface');
  assert.deepEqual([...baseline].sort(), baseline, 'public_names.txt is sorted');
  const { onlyA: lost, onlyB: added } = setDiff(baseline, idx);
  assert.deepEqual(lost, [], `names the public surface lost: ${lost.join(', ')}`);
  assert.deepEqual(added, [], `public names not in the reviewed list (add them to test/core/public_names.txt, or export them from internal.ts): ${added.join(', ')}`);
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

test('the engine\'s internals are the internal entry\'s alone: exactly internal_names.txt, none of them in the public entries', () => {
  const index = path.join(DIST, 'index.d.ts'), core = path.join(DIST, 'core.d.ts'), internal = path.join(DIST, 'internal.d.ts');
  for (const f of [index, core, internal]) assert.ok(existsSync(f), `${f} missing: run tsc`);
  const names = exportNames(index, core, internal);
  const listed = nameList('internal_names.txt');
  assert.deepEqual([...listed].sort(), listed, 'internal_names.txt is sorted');
  const { onlyA: missing, onlyB: unlisted } = setDiff(listed, names.get(internal)!);
  assert.deepEqual(missing, [], `internal names the internal entry lacks: ${missing.join(', ')}`);
  assert.deepEqual(unlisted, [], `internal names not in test/core/internal_names.txt: ${unlisted.join(', ')}`);
  // the names issue 16 names, and the rest of the engine, are not public
  for (const n of ['HostDevice', 'OP_NAMES', 'Ops', 'DeviceArena', 'DeviceParamTable', 'VitCore', 'vitBackward', 'VitRuntime', 'hostMem', 'Mem', 'Params']) {
    assert.ok(listed.includes(n), `${n} is internal`);
  }
  const leaked = listed.filter((n) => names.get(index)!.has(n) || names.get(core)!.has(n));
  assert.deepEqual(leaked, [], `internal names still exported by vitkit or vitkit/core: ${leaked.join(', ')}`);
  assert.deepEqual(listed.filter((n) => nameList('public_names.txt').includes(n)), [], 'a name is in both lists');
  // what a user still needs of the device layer stays public
  for (const n of ['ComputeDevice', 'runnerFor', 'webgpuDevice', 'closeDevices', 'checkDeviceName', 'DEVICE_NAMES', 'DeviceName', 'Runner']) {
    assert.ok(names.get(index)!.has(n) && names.get(core)!.has(n), n);
  }
});

test('package.json exports the internal entry as ./internal (types and default), beside ./core', async () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  assert.deepEqual(pkg.exports['./internal'], { types: './dist/src/internal.d.ts', default: './dist/src/internal.js' });
  const internal = (await import('../../src/internal.js')) as Record<string, unknown>;
  const index = (await import('../../src/index.js')) as Record<string, unknown>;
  const values = Object.keys(internal);
  assert.ok(values.length >= 15, `internal values: ${values.join(', ')}`);
  for (const k of values) {
    assert.notEqual(internal[k], undefined, k);
    assert.ok(!(k in index), `${k} is both internal and public at run time`);
  }
  assert.equal(typeof internal['HostDevice'], 'function');
  assert.ok(Array.isArray(internal['OP_NAMES']) && (internal['OP_NAMES'] as unknown[]).length > 10);
});
