/**
 * A bounded run of the mutation fuzzer (fuzz/fuzz.ts) over the committed corpus: every mutated
 * safetensors file, config, image and checkpoint directory either loads or is refused with a
 * one-line VitkitError; nothing loaded yields a non-finite output. VITKIT_FUZZ_SECONDS and
 * VITKIT_FUZZ_SEED change the budget (default 10 s) and the seed (default 1); `npm run fuzz` runs longer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CORPUS, TARGETS, mutateBytes, mutateJson, runFuzz } from '../../fuzz/fuzz.js';
import { mulberry32 } from '../../src/data/rng.js';

test('mutations are reproducible from the seed', () => {
  const src = new Uint8Array(64).map((_, i) => i);
  const a = mutateBytes(mulberry32(9), src), b = mutateBytes(mulberry32(9), src);
  assert.deepEqual(a, b);
  assert.deepEqual(mutateJson(mulberry32(4), { depth: 2, x: [1] }), mutateJson(mulberry32(4), { depth: 2, x: [1] }));
});

test('fuzz: every input loads or throws a VitkitError, never a non-finite output', { timeout: 120_000 }, async () => {
  const seconds = Number(process.env['VITKIT_FUZZ_SECONDS'] ?? 10);
  const seed = Number(process.env['VITKIT_FUZZ_SEED'] ?? 1);
  const r = await runFuzz({ seconds, seed, corpus: CORPUS });
  for (const t of TARGETS) assert.ok(r.iterations[t] > 10, `target ${t} ran ${r.iterations[t]} times`);
  assert.ok(r.refused > 0 && r.loaded > 0, `loaded ${r.loaded}, refused ${r.refused}`);
  assert.deepEqual(r.findings.map((f) => `${f.target} #${f.iteration} (seed ${seed}, from ${f.name}): ${f.problem}`), []);
});
