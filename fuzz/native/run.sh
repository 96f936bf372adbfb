#!/usr/bin/env bash
# Builds the libFuzzer target fuzz/native/fuzz_entries.cc (clang++ with -fsanitize=fuzzer,address,
# undefined; Debian: apt-get install clang) into fuzz/native/out/ and runs it:
#   fuzz/native/run.sh [seconds]     fuzz for that long (default 60), seeded from fuzz/native/corpus
#   fuzz/native/run.sh --replay      run each committed input once (the seed corpus and the
#                                    regressions/ of past findings) and stop: a quick check
# New interesting inputs go to fuzz/native/out/corpus (the committed corpus is not modified); a
# crash leaves its input as fuzz/native/out/crash-* and exits non-zero. A finding, once fixed,
# gets its input in fuzz/native/regressions/ and a test.
set -euo pipefail
cd "$(dirname "$0")/../.."
CXX=${CLANGXX:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz:native: $CXX not found (apt-get install clang)"; exit 1; }
out=fuzz/native/out  # (not build/: node-gyp rebuild empties that)
mkdir -p "$out/corpus"
srcs=(fuzz/native/fuzz_entries.cc native/threadpool.cc)
for s in $(node -p "JSON.parse(require('fs').readFileSync('binding.gyp','utf8')).targets[0].sources.filter(s=>s.includes('/kernels/')).join('\n')"); do
  srcs+=("$s")
done
exe=$out/fuzz_entries
if [[ ! -x $exe ]] || [[ -n $(find native fuzz/native -newer "$exe" -name '*.cc' -o -newer "$exe" -name '*.h' | head -1) ]]; then
  echo "fuzz:native: building $exe"
  "$CXX" -std=c++17 -O1 -g -fno-math-errno -pthread -Inative \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "${srcs[@]}" -o "$exe.tmp" && mv "$exe.tmp" "$exe"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
limits=(-timeout=60 -rss_limit_mb=2048 -malloc_limit_mb=512 -artifact_prefix="$out/")
if [[ "${1:-}" == "--replay" ]]; then
  shopt -s nullglob
  inputs=(fuzz/native/corpus/* fuzz/native/regressions/*)
  "$exe" "${limits[@]}" "${inputs[@]}" 2>&1 | tail -3
  echo "fuzz:native: replayed ${#inputs[@]} inputs"
else
  secs=${1:-60}
  dirs=("$out/corpus" fuzz/native/corpus)
  [[ -d fuzz/native/regressions ]] && dirs+=(fuzz/native/regressions)
  "$exe" "${limits[@]}" -max_total_time="$secs" -print_final_stats=1 "${dirs[@]}" 2>&1 |
    grep -v -e '^#[0-9]*.*\(NEW\|REDUCE\|pulse\)' -e '# Uses: ' -e 'recommended dictionary' | tail -20
fi
