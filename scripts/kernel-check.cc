// A small check of the native kernels as a prebuilt binary's compiler built them, run on the target
// (under qemu-aarch64 for an arm64 cross build): GEMM (the multi-block path, K > 197), fused linear +
// GELU, GELU, softmax and LayerNorm against double-precision references, on 3 threads.
// Built and run by scripts/check-kernels.mjs; prints the ISA the dispatcher picked and "ok" or the failures.
// the references need no speed; GCC 12 for aarch64 hits an internal error vectorizing them
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-vectorize")
#endif
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "threadpool.h"

static int failures = 0;

static void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want, double tol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); i++) {
    double d = std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i]));
    if (!(d <= worst)) { worst = d; at = i; }  // NaN counts as worst
  }
  bool ok = worst <= tol;
  std::printf("%-28s max rel err %.3g (at %zu) %s\n", what, worst, at, ok ? "ok" : "FAIL");
  if (!ok) failures++;
}

static double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

int main() {
  vk::set_threads(3);
  std::mt19937 gen(1234);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto rnd = [&](size_t n) { std::vector<float> v(n); for (auto& x : v) x = u(gen); return v; };

  // C (M, N) = A (M, K) @ W (N, K)^T, K above one cache block
  const int M = 37, N = 70, K = 301;
  auto A = rnd((size_t)M * K), W = rnd((size_t)N * K), bias = rnd(N);  // (M, K), (N, K), (N)
  std::vector<float> C((size_t)M * N);                                  // (M, N)
  std::vector<double> ref((size_t)M * N), refg((size_t)M * N);          // (M, N)
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)A[(size_t)i * K + k] * W[(size_t)j * K + k];
      ref[(size_t)i * N + j] = s;
      refg[(size_t)i * N + j] = gelu(s + bias[j]);
    }
  vk::sgemm(false, true, M, N, K, 1.f, A.data(), K, W.data(), K, 0.f, C.data(), N);
  expect_close("sgemm A @ W^T (37x70x301)", C, ref, 1e-5);
  vk::linear_forward(C.data(), A.data(), W.data(), bias.data(), M, N, K, false, 0);
  expect_close("linear + bias + GELU", C, refg, 1e-5);

  // GELU (exact), softmax and LayerNorm over (R, Cn)
  const int R = 13, Cn = 197;
  auto X = rnd((size_t)R * Cn);  // (R, Cn)
  for (auto& x : X) x *= 6.f;
  std::vector<float> Y(X.size());           // (R, Cn)
  std::vector<double> want(X.size());       // (R, Cn)
  for (size_t i = 0; i < X.size(); i++) want[i] = gelu(X[i]);
  vk::gelu_forward(Y.data(), X.data(), (int64_t)X.size(), 0);
  expect_close("gelu (erf)", Y, want, 1e-5);

  for (int r = 0; r < R; r++) {
    double mx = -1e30, s = 0;
    for (int c = 0; c < Cn; c++) mx = std::fmax(mx, X[(size_t)r * Cn + c]);
    for (int c = 0; c < Cn; c++) s += std::exp(X[(size_t)r * Cn + c] - mx);
    for (int c = 0; c < Cn; c++) want[(size_t)r * Cn + c] = std::exp(X[(size_t)r * Cn + c] - mx) / s;
  }
  vk::softmax_forward(Y.data(), X.data(), R, Cn);
  expect_close("softmax (13x197)", Y, want, 1e-5);

  auto g = rnd(Cn), b = rnd(Cn);  // (Cn), (Cn)
  for (int r = 0; r < R; r++) {
    double m = 0, v = 0;
    for (int c = 0; c < Cn; c++) m += X[(size_t)r * Cn + c];
    m /= Cn;
    for (int c = 0; c < Cn; c++) v += (X[(size_t)r * Cn + c] - m) * (X[(size_t)r * Cn + c] - m);
    double rs = 1.0 / std::sqrt(v / Cn + 1e-6);
    for (int c = 0; c < Cn; c++) want[(size_t)r * Cn + c] = (X[(size_t)r * Cn + c] - m) * rs * g[c] + b[c];
  }
  vk::layernorm_forward(Y.data(), nullptr, nullptr, X.data(), g.data(), b.data(), R, Cn, 1e-6f);
  expect_close("layernorm (13x197)", Y, want, 1e-5);

  std::printf("isa %s, threads %d: %s\n", vk::gemm_isa(), vk::get_threads(), failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
