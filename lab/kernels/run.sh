#!/bin/sh
# Full lab run: build, test every ISA path, then benchmark each dispatched path.
set -e
cd "$(dirname "$0")"
./build.sh
for isa in "" avx2 portable; do
  echo "== VITKIT_ISA=${isa:-(default)}"
  VITKIT_ISA=$isa ./kernels_lab test
done
for isa in "" avx2 portable; do
  echo "== bench VITKIT_ISA=${isa:-(default)}"
  VITKIT_ISA=$isa ./kernels_lab bench "${1:-7}"
done
