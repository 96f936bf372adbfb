#!/bin/sh
# Full lab run: build, test every ISA path (plus a build with all x86 code compiled out, as on
# ARM), then benchmark the dispatched path. Usage: ./run.sh [samples per shape]
set -e
cd "$(dirname "$0")"
./build.sh
for isa in "" avx2 portable; do
  echo "== VITKIT_ISA=${isa:-(default)}"
  VITKIT_ISA=$isa ./gemm_lab test
done
echo "== built with -DVITKIT_NO_X86"
R=../..
${CXX:-g++} -std=c++17 -O3 -fno-math-errno -pthread -DVITKIT_NO_X86 -I$R/native gemm_lab.cc \
  $R/native/kernels/gemm.cc $R/native/kernels/peak.cc $R/native/kernels/gelu.cc $R/native/threadpool.cc -o gemm_lab_nox86
./gemm_lab_nox86 test
./gemm_lab bench "${1:-7}"
