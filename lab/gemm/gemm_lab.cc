// Standalone test + benchmark for vk::sgemm / vk::sgemm_st / vk::fma_peak_gflops.
//   ./gemm_lab test          correctness (all transpose combos, awkward shapes, NaN/Inf, beta)
//   ./gemm_lab bench [reps]  GFLOP/s medians on 1 and 2 threads next to the measured FMA peak
// VITKIT_ISA=avx2|portable forces a lower path (see run.sh).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <time.h>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {
double fma_peak_gflops(int threads, double seconds);
}

using Clock = std::chrono::steady_clock;
static std::mt19937 rng(12345);

static void fill(std::vector<float>& v, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& x : v) x = d(rng);
}

struct Case {
  bool tA, tB;
  int M, N, K;
  float alpha, beta;
  int pad;  // extra leading-dimension padding
};

static int failures = 0;

// Runs one case with the given entry point; returns max normalized error.
static double run_case(const Case& c, bool st, bool verbose_fail = true) {
  const int M = c.M, N = c.N, K = c.K;
  const int arows = c.tA ? K : M, acols = c.tA ? M : K;
  const int brows = c.tB ? N : K, bcols = c.tB ? K : N;
  const int lda = acols + c.pad, ldb = bcols + c.pad, ldc = N + c.pad;
  std::vector<float> A((size_t)std::max(1, arows) * lda), B((size_t)std::max(1, brows) * ldb),
      C((size_t)std::max(1, M) * ldc), C0;
  fill(A);
  fill(B);
  fill(C);
  if (c.beta == 0.f) std::fill(C.begin(), C.end(), NAN);  // must not be read
  // sentinel in the padding of C
  for (int i = 0; i < M; i++)
    for (int j = N; j < ldc; j++) C[(size_t)i * ldc + j] = 777.f;
  C0 = C;
  if (st)
    vk::sgemm_st(c.tA, c.tB, M, N, K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  else
    vk::sgemm(c.tA, c.tB, M, N, K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  double maxerr = 0;
  bool bad = false;
  for (int i = 0; i < M && !bad; i++) {
    for (int j = 0; j < N; j++) {
      double s = 0, sa = 0;
      for (int k = 0; k < K; k++) {
        double a = c.tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = c.tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        s += a * b;
        sa += std::fabs(a * b);
      }
      double c0 = C0[(size_t)i * ldc + j];
      double ref = c.alpha * s + (c.beta == 0.f ? 0.0 : c.beta * c0);
      double scale = std::fabs(c.alpha) * sa + (c.beta == 0.f ? 0.0 : std::fabs(c.beta * c0)) + 1e-30;
      double got = C[(size_t)i * ldc + j];
      double e = std::fabs(got - ref) / scale;
      if (!(e <= 1e-5)) {
        if (verbose_fail)
          std::printf("  FAIL %s tA=%d tB=%d M=%d N=%d K=%d a=%g b=%g pad=%d at (%d,%d): got %g ref %g\n",
                      st ? "st" : "mt", c.tA, c.tB, M, N, K, c.alpha, c.beta, c.pad, i, j, got, ref);
        bad = true;
        break;
      }
      maxerr = std::max(maxerr, e);
    }
    for (int j = N; j < ldc && !bad; j++)
      if (C[(size_t)i * ldc + j] != 777.f) {
        std::printf("  FAIL: wrote into C padding (%d,%d)\n", i, j);
        bad = true;
      }
  }
  if (bad) failures++;
  return maxerr;
}

static void test_nan_inf() {
  for (int tA = 0; tA < 2; tA++)
    for (int tB = 0; tB < 2; tB++) {
      const int M = 37, N = 45, K = 300;
      std::vector<float> A((size_t)M * K), B((size_t)K * N), C((size_t)M * N, 0.f);
      fill(A);
      fill(B);
      // A(5, 7) = NaN -> row 5 NaN. B(11, 20) = Inf -> column 20 non-finite. Zeros elsewhere in
      // that row/col must not hide them.
      auto Aat = [&](int i, int k) -> float& { return tA ? A[(size_t)k * M + i] : A[(size_t)i * K + k]; };
      auto Bat = [&](int k, int j) -> float& { return tB ? B[(size_t)j * K + k] : B[(size_t)k * N + j]; };
      for (int k = 0; k < K; k++) Aat(9, k) = 0.f;  // row 9 all zero
      Aat(5, 7) = NAN;
      Bat(11, 20) = INFINITY;
      vk::sgemm(tA, tB, M, N, K, 1.f, A.data(), tA ? M : K, B.data(), tB ? K : N, 0.f, C.data(), N);
      bool ok = true;
      for (int j = 0; j < N; j++) ok &= std::isnan(C[(size_t)5 * N + j]);
      for (int i = 0; i < M; i++) ok &= !std::isfinite(C[(size_t)i * N + 20]);
      ok &= std::isnan(C[(size_t)9 * N + 20]);  // 0 * Inf = NaN
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
          if (i != 5 && j != 20) ok &= std::isfinite(C[(size_t)i * N + j]);
      if (!ok) {
        std::printf("  FAIL NaN/Inf propagation tA=%d tB=%d\n", tA, tB);
        failures++;
      }
    }
}

// sgemm_st from many pool threads at once, and sgemm nested inside a parallel region.
static void test_concurrent() {
  vk::set_threads(2);
  const int H = 16, M = 197, N = 197, K = 64;
  std::vector<float> A((size_t)H * M * K), B((size_t)H * N * K), C((size_t)H * M * N),
      C2((size_t)H * M * N), R((size_t)H * M * N);
  fill(A);
  fill(B);
  for (int h = 0; h < H; h++)  // serial reference through the same code
    vk::sgemm_st(false, true, M, N, K, 1.f, &A[(size_t)h * M * K], K, &B[(size_t)h * N * K], K, 0.f,
                 &R[(size_t)h * M * N], N);
  vk::parallel_for(H, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; h++) {
      vk::sgemm_st(false, true, M, N, K, 1.f, &A[h * M * K], K, &B[h * N * K], K, 0.f, &C[h * M * N], N);
      vk::sgemm(false, true, M, N, K, 1.f, &A[h * M * K], K, &B[h * N * K], K, 0.f, &C2[h * M * N], N);
    }
  });
  if (C != R || C2 != R) {
    std::printf("  FAIL concurrent sgemm_st / nested sgemm differ from serial results\n");
    failures++;
  }
}

static int test_main() {
  std::printf("isa=%s\n", vk::gemm_isa());
  const int dims[] = {0, 1, 3, 5, 13, 14, 15, 16, 17, 31, 32, 33, 64, 197};
  std::vector<Case> cases;
  const float ab[][2] = {{1.f, 0.f}, {1.f, 1.f}, {0.5f, -1.5f}, {-2.f, 0.f}, {1.f, 0.25f}};
  int n = 0;
  for (int tA = 0; tA < 2; tA++)
    for (int tB = 0; tB < 2; tB++)
      for (int M : dims)
        for (int N : dims)
          for (int K : {0, 1, 3, 5, 17, 64, 197}) {
            // thin out the cube a bit but keep every transpose combination for each shape
            if ((M * 7 + N * 3 + K) % 3 == 1 && M > 5 && N > 5) continue;
            const auto& s = ab[n++ % 5];
            cases.push_back({(bool)tA, (bool)tB, M, N, K, s[0], s[1], n % 4 == 0 ? 3 : 0});
          }
  // larger / ViT-ish shapes, K blocking, N blocking
  for (int tA = 0; tA < 2; tA++)
    for (int tB = 0; tB < 2; tB++) {
      cases.push_back({(bool)tA, (bool)tB, 197, 197, 64, 1.f, 0.f, 0});
      cases.push_back({(bool)tA, (bool)tB, 197, 64, 197, 1.f, 0.f, 0});
      cases.push_back({(bool)tA, (bool)tB, 100, 70, 3072, 1.f, 1.f, 1});
      cases.push_back({(bool)tA, (bool)tB, 45, 2100, 300, 0.7f, 0.3f, 5});
      cases.push_back({(bool)tA, (bool)tB, 300, 192, 768, 1.f, 0.f, 0});
      cases.push_back({(bool)tA, (bool)tB, 257, 100, 513, 1.f, -1.f, 2});
      // multi-threaded schedules: narrow column blocks for few row panels, several K-inner
      // column blocks, the classic (K-outer) order with the static grid
      cases.push_back({(bool)tA, (bool)tB, 20, 2000, 100, 1.f, 0.f, 1});
      cases.push_back({(bool)tA, (bool)tB, 13, 3000, 300, 1.5f, 0.5f, 0});
      cases.push_back({(bool)tA, (bool)tB, 200, 1100, 600, 1.f, 1.f, 3});
      cases.push_back({(bool)tA, (bool)tB, 600, 70, 3072, 1.f, 0.f, 0});
      cases.push_back({(bool)tA, (bool)tB, 90, 1500, 1000, -1.f, 2.f, 0});
    }
  double worst = 0;
  for (int threads : {1, 2}) {
    vk::set_threads(threads);
    for (const auto& c : cases) {
      worst = std::max(worst, run_case(c, false));
      if (threads == 1) worst = std::max(worst, run_case(c, true));
    }
  }
  vk::set_threads(2);
  test_nan_inf();
  test_concurrent();
  std::printf("%zu cases x {mt 1/2 threads, st}: max normalized error %.3g, failures %d\n",
              cases.size(), worst, failures);
  return failures ? 1 : 0;
}

// ------------------------------------------------------------------ bench
struct Shape {
  const char* name;
  bool tA, tB;
  int M, N, K;
  bool per_head;  // attention-style: sgemm_st, `heads` independent calls split over threads
};

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Stat {
  double med, best, cpu;  // wall-clock median / best, and median on process CPU time / threads
};
static double proc_cpu() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static Stat bench_shape(const Shape& s, int threads, int reps) {
  vk::set_threads(threads);
  const int heads = s.per_head ? 24 : 1;  // ViT-Ti batch 8 x 3 heads
  const int M = s.M, N = s.N, K = s.K;
  const size_t asz = (size_t)M * K, bsz = (size_t)K * N, csz = (size_t)M * N;
  std::vector<float> A(asz * heads), B(bsz * heads), C(csz * heads);
  fill(A);
  fill(B);
  const int lda = s.tA ? M : K, ldb = s.tB ? K : N;
  auto once = [&] {
    if (!s.per_head) {
      vk::sgemm(s.tA, s.tB, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), N);
    } else {
      vk::parallel_for(heads, [&](int64_t b, int64_t e) {
        for (int64_t h = b; h < e; h++)
          vk::sgemm_st(s.tA, s.tB, M, N, K, 1.f, A.data() + h * asz, lda, B.data() + h * bsz, ldb,
                       0.f, C.data() + h * csz, N);
      });
    }
  };
  const double flop = 2.0 * M * N * K * heads;
  once();
  // calibrate to ~40 ms per sample
  int iters = 1;
  for (;;) {
    auto t0 = Clock::now();
    for (int i = 0; i < iters; i++) once();
    double el = std::chrono::duration<double>(Clock::now() - t0).count();
    if (el > 0.02) {
      iters = std::max(1, (int)(iters * 0.04 / el));
      break;
    }
    iters *= 2;
  }
  std::vector<double> g, gc;
  for (int r = 0; r < reps; r++) {
    const double c0 = proc_cpu();
    auto t0 = Clock::now();
    for (int i = 0; i < iters; i++) once();
    double el = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cel = (proc_cpu() - c0) / threads;
    g.push_back(flop * iters / el * 1e-9);
    gc.push_back(flop * iters / cel * 1e-9);
  }
  return {median(g), *std::max_element(g.begin(), g.end()), median(gc)};
}

static int bench_main(int reps, const char* only) {
  std::printf("isa=%s  (medians of %d samples, ~40 ms each)\n", vk::gemm_isa(), reps);
  const int T = 1576;
  const Shape shapes[] = {
      {"Ti qkv", false, true, T, 576, 192, false},   {"Ti proj", false, true, T, 192, 192, false},
      {"Ti fc1", false, true, T, 768, 192, false},   {"Ti fc2", false, true, T, 192, 768, false},
      {"B qkv", false, true, T, 2304, 768, false},   {"B proj", false, true, T, 768, 768, false},
      {"B fc1", false, true, T, 3072, 768, false},   {"B fc2", false, true, T, 768, 3072, false},
      {"attn QK^T x24", false, true, 197, 197, 64, true},
      {"attn PV x24", false, false, 197, 64, 197, true},
      {"train fwd NT", false, true, 2176, 256, 64, false},
      {"train dX NN", false, false, 2176, 64, 256, false},
      {"train dW TN", true, false, 256, 64, 2176, false},
      {"train TT", true, true, 2176, 128, 128, false},
      {"train NN 192", false, false, 2176, 192, 192, false},
      {"train dW TN 192", true, false, 192, 192, 2176, false},
  };
  // All 1-thread runs first, then all 2-thread runs: native/threadpool.cc crashes when the pool is
  // grown again after having been shrunk (a new worker picks up a stale generation / null job).
  std::vector<const Shape*> sel;
  for (const auto& s : shapes)
    if (!only || std::strstr(s.name, only)) sel.push_back(&s);
  std::vector<Stat> g1, g2;
  double peak[3], peak_max[3];
  auto measure_peak = [&](int t) {
    vk::set_threads(t);
    std::vector<double> p;
    for (int r = 0; r < 7; r++) p.push_back(vk::fma_peak_gflops(t, 0.15));
    peak[t] = median(p);
    peak_max[t] = *std::max_element(p.begin(), p.end());
  };
  measure_peak(1);
  for (auto* s : sel) g1.push_back(bench_shape(*s, 1, reps));
  measure_peak(2);
  for (auto* s : sel) g2.push_back(bench_shape(*s, 2, reps));
  std::printf("FMA peak (median of 7 / max): 1 thread %.1f / %.1f GFLOP/s, 2 threads %.1f / %.1f GFLOP/s\n",
              peak[1], peak_max[1], peak[2], peak_max[2]);
  std::printf("%-16s %2s %2s %5s %5s %5s | %20s %6s | %20s %6s\n", "shape", "tA", "tB", "M", "N", "K",
              "1T med/best/cpu", "%peak", "2T med/best/cpu", "%peak");
  for (size_t i = 0; i < sel.size(); i++) {
    const Shape& s = *sel[i];
    std::printf("%-16s %2d %2d %5d %5d %5d | %6.1f/%6.1f/%6.1f %5.1f%% | %6.1f/%6.1f/%6.1f %5.1f%%\n",
                s.name, s.tA, s.tB, s.M, s.N, s.K, g1[i].med, g1[i].best, g1[i].cpu,
                100 * g1[i].med / peak_max[1], g2[i].med, g2[i].best, g2[i].cpu,
                100 * g2[i].med / peak_max[2]);
  }
  std::printf("GFLOP/s: med = median wall clock, best = best sample, cpu = median on process CPU time /"
              " threads\n(immune to other load, hides idle waits); %%peak = med / max FMA peak.\n");
  return 0;
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "test";
  if (mode == "test") return test_main();
  if (mode == "shape" && argc >= 8) {  // shape tA tB M N K threads [reps]
    Shape sh{"custom", argv[2][0] == '1', argv[3][0] == '1', std::atoi(argv[4]), std::atoi(argv[5]),
             std::atoi(argv[6]), false};
    const int t = std::atoi(argv[7]);
    Stat st = bench_shape(sh, t, argc > 8 ? std::atoi(argv[8]) : 7);
    std::printf("tA=%d tB=%d M=%d N=%d K=%d threads=%d: med %.1f best %.1f cpu %.1f GFLOP/s\n", sh.tA,
                sh.tB, sh.M, sh.N, sh.K, t, st.med, st.best, st.cpu);
    return 0;
  }
  if (mode == "bench") return bench_main(argc > 2 ? std::atoi(argv[2]) : 7, argc > 3 ? argv[3] : nullptr);
  std::fprintf(stderr, "usage: %s test | bench [reps] [name-filter]\n", argv[0]);
  return 2;
}
