#!/bin/sh
# Runs every variant at 3, 4 and 8 threads; exits non-zero on the first failure or hang.
set -e
cd "$(dirname "$0")"
./build.sh "$@"
echo "== plain";        ./stress --iters ${ITERS:-300000} --threads 3,4,8 --throw
echo "== yield window"; ./stress_yield --iters ${ITERS_YIELD:-20000} --threads 3,4,8 --throw
echo "== tsan";         ./stress_tsan --iters ${ITERS_TSAN:-5000} --threads 3,4,8 --throw --seconds 60
