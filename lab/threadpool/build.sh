#!/bin/sh
# Builds the thread-pool stress test in three variants:
#   stress        -O2, as the addon compiles the pool
#   stress_yield  -DVK_POOL_RACE_YIELD: a yield() between reading the ticket and claiming it,
#                 which widens the window a late worker needs (the issue-7 race hung within 20 calls)
#   stress_tsan   -fsanitize=thread
# Usage: ./build.sh [path/to/threadpool.cc]   (default: the shipped native/threadpool.cc)
set -e
cd "$(dirname "$0")"
R=../..
POOL=${1:-$R/native/threadpool.cc}
CXX=${CXX:-g++}
FLAGS="-std=c++17 -pthread -Wall -Wextra -I$R/native"
$CXX $FLAGS -O2 stress.cc "$POOL" -o stress
$CXX $FLAGS -O2 -DVK_POOL_RACE_YIELD stress.cc "$POOL" -o stress_yield
$CXX $FLAGS -O1 -g -fsanitize=thread stress.cc "$POOL" -o stress_tsan
