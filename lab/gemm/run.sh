#!/bin/sh
# Full lab run: build, test every ISA path, then benchmark the dispatched path.
set -e
cd "$(dirname "$0")"
./build.sh
for isa in "" avx2 portable; do
  echo "== VITKIT_ISA=${isa:-(default)}"
  VITKIT_ISA=$isa ./gemm_lab test
done
./gemm_lab bench "${1:-7}"
