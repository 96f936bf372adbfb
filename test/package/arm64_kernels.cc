// The kernels on many shapes (GEMM, linear, GELU, softmax, LayerNorm, add, bias; vector bodies, tails, GEMM edges and K blocks, transposes, strides,
// alpha / beta, NaN / -inf rows), printed one case per line ("name v0 v1 ..."), so that two runs
// can be compared: arm64.test.ts cross-builds it for aarch64 and runs it under qemu-aarch64 with
// the NEON kernels and with VITKIT_ISA=portable. The first line names the ISA the dispatcher picked.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "threadpool.h"

static std::mt19937 gen(42);
static std::vector<float> rnd(size_t n, float scale = 1.f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(gen);
  return v;
}
static void emit(const std::string& name, const float* v, size_t n) {
  std::printf("%s", name.c_str());
  for (size_t i = 0; i < n; i++) std::printf(" %.9g", v[i]);
  std::printf("\n");
}

int main() {
  vk::set_threads(1);
  std::printf("isa %s\n", vk::gemm_isa());
  // GEMM: C (M, N) = alpha op(A) op(B) + beta C, with padded leading dimensions
  struct G { int M, N, K, pad, threads; float alpha, beta; };
  const G gs[] = {{1, 1, 1, 0, 1, 1.f, 0.f},    {7, 13, 5, 0, 1, 1.f, 0.f},   {8, 12, 256, 0, 1, 1.f, 0.f},
                  {9, 25, 300, 3, 1, 1.f, 0.f}, {17, 37, 64, 1, 1, 1.5f, 0.5f}, {64, 100, 70, 0, 3, 1.f, 1.f},
                  {3, 200, 9, 2, 1, -1.f, 0.f}};
  for (const G& g : gs)
    for (int t = 0; t < 4; t++) {
      const bool ta = t & 1, tb = t & 2;
      vk::set_threads(g.threads);
      const int lda = (ta ? g.M : g.K) + g.pad, ldb = (tb ? g.K : g.N) + g.pad, ldc = g.N + g.pad;
      auto A = rnd((size_t)(ta ? g.K : g.M) * lda);  // (M, K) or (K, M), row stride lda
      auto B = rnd((size_t)(tb ? g.N : g.K) * ldb);  // (K, N) or (N, K), row stride ldb
      auto C = rnd((size_t)g.M * ldc);               // (M, N), row stride ldc
      vk::sgemm(ta, tb, g.M, g.N, g.K, g.alpha, A.data(), lda, B.data(), ldb, g.beta, C.data(), ldc);
      emit("gemm " + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K) + " t" +
               std::to_string(t),
           C.data(), C.size());
      vk::set_threads(1);
    }
  // linear + bias + GELU (erf, tanh)
  for (int act = -1; act <= 1; act++) {
    const int M = 10, N = 30, K = 40;
    auto X = rnd((size_t)M * K), W = rnd((size_t)N * K), b = rnd(N);  // (M, K), (N, K), (N)
    std::vector<float> Y((size_t)M * N);                               // (M, N)
    vk::linear_forward(Y.data(), X.data(), W.data(), b.data(), M, N, K, false, act);
    emit("linear act" + std::to_string(act), Y.data(), Y.size());
  }
  // GELU forward and backward (erf, tanh), incl. tails, huge |x|, +-inf and NaN
  for (int n : {1, 3, 4, 5, 8, 9, 37, 1000}) {
    auto x = rnd(n, 6.f), g = rnd(n);  // (n), (n)
    if (n >= 9) {
      x[0] = 20.f, x[1] = -20.f, x[2] = INFINITY, x[3] = -INFINITY, x[4] = NAN, x[5] = 1e-30f, x[6] = -0.f;
    }
    std::vector<float> y(n);  // (n)
    for (int approx = 0; approx <= 1; approx++) {
      vk::gelu_forward(y.data(), x.data(), n, approx);
      emit("gelu n" + std::to_string(n) + " approx" + std::to_string(approx), y.data(), n);
      vk::gelu_backward(y.data(), x.data(), g.data(), n, approx);
      emit("gelu grad n" + std::to_string(n) + " approx" + std::to_string(approx), y.data(), n);
    }
  }
  // softmax rows, incl. a row with -inf entries and one with a NaN
  for (int C : {1, 3, 4, 5, 7, 8, 9, 16, 17, 197}) {
    auto X = rnd((size_t)2 * C, 10.f);  // (2, C)
    std::vector<float> Y(X.size());     // (2, C)
    vk::softmax_forward(Y.data(), X.data(), 2, C);
    emit("softmax C" + std::to_string(C), Y.data(), Y.size());
    if (C > 2) {
      X[1] = -INFINITY;
      X[C + C / 2] = NAN;
      vk::softmax_forward(Y.data(), X.data(), 2, C);
      emit("softmax special C" + std::to_string(C), Y.data(), Y.size());
    }
  }
  // LayerNorm forward (with mean and rstd)
  for (int C : {1, 3, 4, 7, 8, 9, 17, 197, 768}) {
    const int R = 3;
    auto X = rnd((size_t)R * C, 3.f), w = rnd(C), b = rnd(C);  // (R, C), (C), (C)
    for (auto& x : X) x += 2.f;                                 // a mean away from 0
    std::vector<float> Y((size_t)R * C), mean(R), rstd(R);      // (R, C), (R), (R)
    vk::layernorm_forward(Y.data(), mean.data(), rstd.data(), X.data(), w.data(), b.data(), R, C, 1e-6f);
    emit("layernorm C" + std::to_string(C), Y.data(), Y.size());
    emit("layernorm mean C" + std::to_string(C), mean.data(), R);
    emit("layernorm rstd C" + std::to_string(C), rstd.data(), R);
  }
  // add, bias add
  for (int n : {1, 7, 8, 9, 37, 1000}) {
    auto a = rnd(n), b = rnd(n);  // (n), (n)
    std::vector<float> y(n);      // (n)
    vk::add_forward(y.data(), a.data(), b.data(), n);
    emit("add n" + std::to_string(n), y.data(), n);
  }
  for (int C : {1, 3, 5, 19}) {
    auto y = rnd((size_t)3 * C), b = rnd(C);  // (3, C), (C)
    vk::bias_add(y.data(), b.data(), 3, C);
    emit("biasAdd C" + std::to_string(C), y.data(), y.size());
  }
  return 0;
}
