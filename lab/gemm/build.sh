#!/bin/sh
# Builds the lab binary exactly like the addon compiles the kernels: plain -O3, no -m flags.
set -e
cd "$(dirname "$0")"
R=../..
${CXX:-g++} -std=c++17 -O3 -fno-math-errno -pthread -Wall -Wextra -I$R/native \
  gemm_lab.cc $R/native/kernels/gemm.cc $R/native/kernels/peak.cc $R/native/kernels/gelu.cc $R/native/threadpool.cc \
  -o gemm_lab
