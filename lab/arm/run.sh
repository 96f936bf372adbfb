#!/bin/sh
# Cross-builds the lab test programs for aarch64 (the portable kernels and the thread pool, as a
# linux-arm64 addon build compiles them) and runs them under qemu-user.
# Needs: apt-get install g++-aarch64-linux-gnu qemu-user.   GEMM=1 ./run.sh also runs the (slow) gemm test.
set -e
cd "$(dirname "$0")"
R=../..
CXX=${CXX:-aarch64-linux-gnu-g++}
QEMU=${QEMU:-qemu-aarch64}
SYSROOT=${SYSROOT:-/usr/aarch64-linux-gnu}
FLAGS="-std=c++17 -O3 -fno-math-errno -pthread -Wall -Wextra -I$R/native -static"
K=$R/native/kernels
$CXX $FLAGS $R/lab/gemm/gemm_lab.cc $K/gemm.cc $K/peak.cc $K/gelu.cc $R/native/threadpool.cc -o gemm_lab_arm64
$CXX $FLAGS $R/lab/kernels/kernels_lab.cc $K/gelu.cc $K/softmax.cc $K/layernorm.cc $K/attention.cc $K/elementwise.cc \
  $K/gemm.cc $R/native/threadpool.cc -o kernels_lab_arm64
$CXX -std=c++17 -O2 -pthread -Wall -Wextra -I$R/native -static $R/lab/threadpool/stress.cc $R/native/threadpool.cc -o stress_arm64
if [ -n "$GEMM" ]; then  # slow under qemu (over 15 minutes on the 2-core dev VM)
  echo "== gemm_lab test (aarch64, qemu)"; $QEMU -L $SYSROOT ./gemm_lab_arm64 test
fi
echo "== kernels_lab test (aarch64, qemu)"; $QEMU -L $SYSROOT ./kernels_lab_arm64 test
echo "== thread-pool stress (aarch64, qemu)"; $QEMU -L $SYSROOT ./stress_arm64 --iters ${ITERS:-20000} --threads 3,4,8 --throw --seconds 30
