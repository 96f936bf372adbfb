// Measured fp32 FMA peak: every thread runs independent FMA chains in registers with the widest
// ISA available (AVX-512F, AVX2+FMA, or portable scalar code) for about `seconds`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "threadpool.h"

#include "platform.h"  // VITKIT_NO_X86 builds only the portable code on x86

#define VK_PEAK_X86 VK_X86

namespace vk {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kBatch = 1 << 16;  // inner iterations between clock reads

// Each returns the number of FMAs (scalar lanes) done; `sink` keeps the work alive.
#if VK_PEAK_X86
VK_TARGET("avx512f,fma") int64_t burn_avx512(int64_t iters, float* sink) {
  // 16 independent chains: covers 4-cycle latency x 2 FMA ports with room to spare.
  __m512 acc[16];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps((float)i);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float v[16];
  _mm512_store_ps(v, s);
  for (int i = 0; i < 16; i++) *sink += v[i];
  return iters * 16 * 16;
}

VK_TARGET("avx2,fma") int64_t burn_avx2(int64_t iters, float* sink) {
  __m256 acc[12];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float v[8];
  _mm256_store_ps(v, s);
  for (int i = 0; i < 8; i++) *sink += v[i];
  return iters * 12 * 8;
}
#endif

int64_t burn_portable(int64_t iters, float* sink) {
  float acc[32];
  const float a = 0.999999f, b = 1e-6f;
  for (int i = 0; i < 32; i++) acc[i] = (float)i;
  for (int64_t it = 0; it < iters; it++) {
    for (int i = 0; i < 32; i++) acc[i] = acc[i] * a + b;
  }
  for (int i = 0; i < 32; i++) *sink += acc[i];
  return iters * 32;
}

using BurnFn = int64_t (*)(int64_t, float*);

BurnFn pick_burn() {
#if VK_PEAK_X86
  if (cpu_has_avx512f()) return burn_avx512;
  if (cpu_has_avx2_fma()) return burn_avx2;
#endif
  return burn_portable;
}

}  // namespace

double fma_peak_gflops(int threads, double seconds) {
  threads = std::max(1, threads);
  if (!(seconds > 0)) seconds = 0.1;
  const BurnFn burn = pick_burn();
  const int nt = std::max(1, std::min(threads, get_threads()));
  std::vector<int64_t> fmas(nt, 0);
  std::vector<double> secs(nt, 0.0);
  volatile float sink_all = 0;
  const auto w0 = Clock::now();
  parallel_run(nt, [&](int t, int) {
    float sink = 0;
    burn(4 * kBatch, &sink);  // warm-up (clock ramp, AVX-512 license) outside the timed window
    int64_t n = 0;
    const auto t0 = Clock::now();
    double el = 0;
    do {
      n += burn(kBatch, &sink);
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < seconds);
    fmas[t] = n;
    secs[t] = el;
    sink_all = sink_all + sink;
  });
  const double wall = std::chrono::duration<double>(Clock::now() - w0).count();
  double gflops = 0, total = 0, longest = 0;
  for (int t = 0; t < nt; t++) {
    gflops += 2.0 * (double)fmas[t] / secs[t] * 1e-9;  // sum of per-thread rates
    total += 2.0 * (double)fmas[t];
    longest = std::max(longest, secs[t]);
  }
  // If the threads did not overlap (e.g. called from inside a parallel region, where the pool
  // runs them one after another), report what was really achieved per unit of wall time.
  if (wall > 1.5 * longest) gflops = total / wall * 1e-9;
  return gflops;
}

}  // namespace vk
