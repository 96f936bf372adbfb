#!/usr/bin/env node
// Writes the seed corpus fuzz/native/corpus/: for each entry of fuzz_entries.cc, a few valid calls
// (small dimensions that reach the kernels' vector bodies and edges), in its input format: entry,
// threads, the entry's numbers (bytes < 0x80 are themselves), then 1s (buffers of exactly the
// needed length, small fill values; booleans true).   node fuzz/native/make_seeds.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus');
mkdirSync(dir, { recursive: true });
const ones = (n) => Array(n).fill(1);
const MINUS1 = 0x80;  // kSpecial[0] = -1
// [name, entry index, leading bytes] (the leading bytes are read before any buffer)
const seeds = [
  ['gemm-nn', 0, [2, 0, 0, 5, 17, 33, 1, 0, 33, 17, 17]],        // threads 3, transA/B false, M N K, alpha beta, lda ldb ldc
  ['gemm-tt', 0, [0, 1, 1, 7, 9, 40, 1, 1, 7, 40, 9]],
  ['linear-gelu', 1, [1, 3, 20, 24, 0, 0]],                        // M N K, accumulate false, act 0
  ['linear-acc', 1, [0, 6, 16, 8, 1, MINUS1]],
  ['ln-fwd', 2, [1, 3, 19]],                                       // R C
  ['ln-bwd', 3, [0, 4, 33]],
  ['gelu-fwd', 4, [0, 37, 0]],                                     // n approx
  ['gelu-bwd', 5, [1, 21, 1]],
  ['softmax-fwd', 6, [0, 3, 45]],
  ['softmax-bwd', 7, [2, 2, 17]],
  ['attn-fwd', 8, [1, 1, 9, 2, 8]],                                // B N NH HD
  ['attn-bwd', 9, [0, 2, 5, 1, 16]],
  ['im2col', 10, [0, 1, 3, 8, 8, 4]],                              // B C H W P
  ['col2im', 11, [1, 2, 1, 4, 6, 2]],
  ['add', 12, [0, 19]],
  ['bias-add', 13, [0, 3, 11]],
  ['bias-bwd', 14, [1, 4, 9]],
];
for (const [name, entry, lead] of seeds) writeFileSync(path.join(dir, name), Buffer.from([entry, ...lead, ...ones(24)]));
console.log(`wrote ${seeds.length} seeds to ${dir}`);
