// Microkernel-only throughput with L1/L2-resident operands (isolates the AVX-512 14x32 kernel).
// usage: ukr_bench [kc panels]; time is this thread's CPU time, so other load on the machine
// does not show up as slowness.
#include "../../native/kernels/gemm.cc"
#include <time.h>
#include <cstdio>
#include <vector>

static double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char** argv) {
  using namespace vk;
  std::vector<std::pair<int, int>> cfg;
  if (argc > 2) cfg.push_back({std::atoi(argv[1]), std::atoi(argv[2])});
  else
    for (int kc : {64, 192, 256})
      for (int p : {1, 6, 18}) cfg.push_back({kc, p});
  for (auto [kc, ncol] : cfg) {
    std::vector<float> a(A5_MR * A5_AS + 64, 0.5f);
    float* B = (float*)std::aligned_alloc(64, sizeof(float) * kc * 32 * ncol);
    for (int i = 0; i < kc * 32 * ncol; i++) B[i] = 0.25f;
    std::vector<float> C(14 * 32 * ncol);
    const int reps = 100000 / ncol / (kc / 64);
    double best = 0;
    for (int w = 0; w < 5; w++) {
      const double t0 = cpu_now();
      for (int r = 0; r < reps; r++)
        for (int q = 0; q < ncol; q++)
          ukr_avx512<14, 2, false>(kc, a.data(), A5_AS, B + q * kc * 32, C.data() + q * 32, 32 * ncol, 1.f,
                                   0.f, 32);
      best = std::max(best, 2.0 * 14 * 32 * kc * ncol * reps / (cpu_now() - t0) * 1e-9);
    }
    std::printf("kc=%3d panels=%2d: %.1f GFLOP/s (best of 5, CPU time)\n", kc, ncol, best);
    std::free(B);
  }
}
