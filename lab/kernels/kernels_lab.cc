// Standalone accuracy test + benchmark for the non-GEMM kernels (gelu, softmax, layernorm,
// attention, elementwise) and the simd_math.h helpers. Not shipped.
//   ./kernels_lab test           accuracy sweeps + special values (dispatched path, and every exp /
//                                GELU flavour the CPU supports, directly)
//   ./kernels_lab bench [reps]   ms (min of reps) on 1 and 2 threads, ViT-Ti/16 batch-8 shapes
// VITKIT_ISA=avx2|portable forces a lower dispatched path (see run.sh).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/simd_math.h"
#include "threadpool.h"

using namespace vk;
using Clock = std::chrono::steady_clock;
static int failures = 0;
static void check(bool ok, const char* what) {
  if (!ok) {
    failures++;
    std::printf("FAIL: %s\n", what);
  }
}

// ---- ulp distance between floats ----
static int64_t ord(float f) {
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i < 0 ? (int64_t)INT32_MIN - i : i;
}
static int64_t ulps(float a, float b) { return std::llabs(ord(a) - ord(b)); }

// ---- flavours applied to an array ----
using ArrFn = std::function<void(float*, const float*, int64_t)>;
struct Flavour {
  const char* name;
  ArrFn exp, gelu, gelu_grad, gelu_tanh, gelu_tanh_grad;
};

#if VK_SIMD_X86
#define VK_DEF512(NAME, EXPR)                                                                  \
  __attribute__((target("avx512f,fma"))) static void NAME(float* y, const float* x, int64_t n) { \
    int64_t i = 0;                                                                             \
    for (; i + 16 <= n; i += 16) {                                                             \
      __m512 v = _mm512_loadu_ps(x + i);                                                       \
      _mm512_storeu_ps(y + i, EXPR);                                                           \
    }                                                                                          \
    for (; i < n; i++) {                                                                       \
      float t[16] = {x[i]}, o[16];                                                             \
      __m512 v = _mm512_loadu_ps(t);                                                           \
      _mm512_storeu_ps(o, EXPR);                                                               \
      y[i] = o[0];                                                                             \
    }                                                                                          \
  }
#define VK_DEF256(NAME, EXPR)                                                                 \
  __attribute__((target("avx2,fma"))) static void NAME(float* y, const float* x, int64_t n) { \
    int64_t i = 0;                                                                            \
    for (; i + 8 <= n; i += 8) {                                                              \
      __m256 v = _mm256_loadu_ps(x + i);                                                      \
      _mm256_storeu_ps(y + i, EXPR);                                                          \
    }                                                                                         \
    for (; i < n; i++) {                                                                      \
      float t[8] = {x[i]}, o[8];                                                              \
      __m256 v = _mm256_loadu_ps(t);                                                          \
      _mm256_storeu_ps(o, EXPR);                                                              \
      y[i] = o[0];                                                                            \
    }                                                                                         \
  }
VK_DEF512(exp512, simd::exp_512(v))
VK_DEF512(gelu512, simd::gelu_erf_512(v))
VK_DEF512(gelug512, simd::gelu_erf_grad_512(v))
VK_DEF512(gelut512, simd::gelu_tanh_512(v))
VK_DEF512(gelutg512, simd::gelu_tanh_grad_512(v))
VK_DEF256(exp256, simd::exp_256(v))
VK_DEF256(gelu256, simd::gelu_erf_256(v))
VK_DEF256(gelug256, simd::gelu_erf_grad_256(v))
VK_DEF256(gelut256, simd::gelu_tanh_256(v))
VK_DEF256(gelutg256, simd::gelu_tanh_grad_256(v))
#endif
#define VK_DEFS(NAME, F) \
  static void NAME(float* y, const float* x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = F(x[i]); }
VK_DEFS(exps, simd::exp_s)
VK_DEFS(gelus, simd::gelu_erf_s)
VK_DEFS(gelugs, simd::gelu_erf_grad_s)
VK_DEFS(geluts, simd::gelu_tanh_s)
VK_DEFS(gelutgs, simd::gelu_tanh_grad_s)

static std::vector<Flavour> flavours() {
  std::vector<Flavour> f;
  f.push_back({"dispatched", nullptr,
               [](float* y, const float* x, int64_t n) { gelu_forward(y, x, n, 0); },
               [](float* y, const float* x, int64_t n) {
                 std::vector<float> g(n, 1.f);
                 gelu_backward(y, x, g.data(), n, 0);
               },
               [](float* y, const float* x, int64_t n) { gelu_forward(y, x, n, 1); },
               [](float* y, const float* x, int64_t n) {
                 std::vector<float> g(n, 1.f);
                 gelu_backward(y, x, g.data(), n, 1);
               }});
#if VK_SIMD_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
    f.push_back({"avx512", exp512, gelu512, gelug512, gelut512, gelutg512});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    f.push_back({"avx2", exp256, gelu256, gelug256, gelut256, gelutg256});
#endif
  f.push_back({"scalar", exps, gelus, gelugs, geluts, gelutgs});
  return f;
}

// ---- double-precision truths ----
static double gelu_true(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
static double gelu_grad_true(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
}
// 0.5 x (1 + tanh u) = x / (1 + e^-2u), written without cancellation
static double gelu_tanh_true(double x) {
  const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
  return x / (1 + std::exp(-2 * u));
}
static double gelu_tanh_grad_true(double x) {
  const double c = std::sqrt(2 / M_PI), u = c * (x + 0.044715 * x * x * x), e = std::exp(-2 * u);
  const double s = 1 / (1 + e), oms = std::isinf(e) ? 1.0 : e / (1 + e);
  return s + 2 * x * s * oms * c * (1 + 3 * 0.044715 * x * x);
}
// float32 formula with std::erf, as the previous native kernel / PyTorch compute it
static float gelu_float_ref(float x) { return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f)); }

static std::vector<float> sweep() {
  std::vector<float> xs;
  for (float x = -10.f; x <= 10.f; x += 1.f / 4096) xs.push_back(x);  // 81921 points
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-16.f, 16.f);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (int i = 0; i < 200000; i++) xs.push_back(u(rng));
  for (int i = 0; i < 200000; i++) xs.push_back(nd(rng));
  for (float x = 1e-30f; x < 1e-2f; x *= 1.37f) { xs.push_back(x); xs.push_back(-x); }
  return xs;
}

// err stats: rel vs truth where |truth| >= tiny (normal range), and abs err / max(1, |truth|)
struct Stat {
  double rel = 0, absn = 0;
  float at_rel = 0, at_abs = 0;
  void add(float x, float got, double want) {
    const double e = std::fabs((double)got - want);
    if (std::fabs(want) >= 1e-30) {
      const double r = e / std::fabs(want);
      if (r > rel) { rel = r; at_rel = x; }
    }
    const double a = e / std::max(1.0, std::fabs(want));
    if (a > absn) { absn = a; at_abs = x; }
  }
};

static void test_math() {
  const std::vector<float> xs = sweep();
  const int64_t n = (int64_t)xs.size();
  std::vector<float> y(n);
  // float std::erf formula vs truth, for context
  {
    Stat s;
    for (int64_t i = 0; i < n; i++) s.add(xs[i], gelu_float_ref(xs[i]), gelu_true(xs[i]));
    std::printf("  [context] float 0.5x(1+std::erf) vs truth: max rel %.3g (x=%g), max abs/max(1,|y|) %.3g\n",
                s.rel, s.at_rel, s.absn);
  }
  for (const Flavour& f : flavours()) {
    if (f.exp) {
      std::vector<float> ex;
      for (float x = -104.f; x <= 88.7f; x += 1.f / 512) ex.push_back(x);
      std::mt19937 rng(3);
      std::uniform_real_distribution<float> u(-87.f, 0.f);
      for (int i = 0; i < 200000; i++) ex.push_back(u(rng));
      std::vector<float> ey(ex.size());
      f.exp(ey.data(), ex.data(), (int64_t)ex.size());
      int64_t mu = 0;
      float at = 0;
      for (size_t i = 0; i < ex.size(); i++) {
        const float want = (float)std::exp((double)ex[i]);
        if (want < 1.17549435e-38f) continue;  // subnormal results: absolute error only
        const int64_t u1 = ulps(ey[i], want);
        if (u1 > mu) { mu = u1; at = ex[i]; }
      }
      const float sp[] = {-INFINITY, INFINITY, NAN, -200.f, 200.f, 89.f, -104.f, 0.f, -0.f};
      float so[9];
      f.exp(so, sp, 9);
      std::printf("  %-10s exp  max %lld ulp (x=%g) on [-104, 88.7]; exp(-inf)=%g exp(inf)=%g exp(nan)=%g exp(-200)=%g exp(200)=%g exp(89)=%g exp(0)=%g\n",
                  f.name, (long long)mu, at, so[0], so[1], so[2], so[3], so[4], so[5], so[7]);
      check(mu <= 2, "exp within 2 ulp");
      check(so[0] == 0.f && so[1] == INFINITY && std::isnan(so[2]) && so[3] == 0.f && so[4] == INFINITY &&
                so[5] == INFINITY && so[7] == 1.f && so[8] == 1.f,
            "exp special values");
    }
    struct Op {
      const char* name;
      const ArrFn& fn;
      double (*truth)(double);
      double tol_rel, tol_abs;
    } ops[] = {{"gelu", f.gelu, gelu_true, 1e-6, 2e-7},
               {"gelu'", f.gelu_grad, gelu_grad_true, 5e-6, 5e-7},
               {"geluT", f.gelu_tanh, gelu_tanh_true, 1e-6, 2e-7},
               {"geluT'", f.gelu_tanh_grad, gelu_tanh_grad_true, 5e-6, 5e-7}};
    for (const Op& op : ops) {
      op.fn(y.data(), xs.data(), n);
      Stat s, sf;
      int64_t mu = 0;
      float mu_at = 0;
      for (int64_t i = 0; i < n; i++) {
        const double want = op.truth(xs[i]);
        s.add(xs[i], y[i], want);
        if (std::fabs(want) >= 1.17549435e-38) {
          const int64_t u1 = ulps(y[i], (float)want);
          if (u1 > mu) { mu = u1; mu_at = xs[i]; }
        }
        if (op.truth == gelu_true) {
          const float fr = gelu_float_ref(xs[i]);
          sf.add(xs[i], y[i], fr);
        }
      }
      // rel error is judged where |truth| > 1e-30; in the deep negative tail values are ~e^-x^2/2
      std::printf("  %-10s %-6s vs double truth: max rel %.3g (x=%g), max %lld ulp (x=%g), max abs/max(1,|y|) %.3g",
                  f.name, op.name, s.rel, s.at_rel, (long long)mu, mu_at, s.absn);
      if (op.truth == gelu_true) std::printf("; vs float std::erf formula: abs/max(1,|y|) %.3g", sf.absn);
      std::printf("\n");
      check(s.rel <= op.tol_rel || op.truth != gelu_true, "exact gelu rel accuracy (derivatives: zero crossings; tanh: float rounding of u amplified by |u|)");
      check(s.absn <= op.tol_abs, "abs accuracy");
    }
    // special values for exact GELU
    const float sp[] = {NAN, INFINITY, -INFINITY, 0.f, -0.f, 1e30f, -1e30f, 14.f, -14.f, -13.f};
    float so[10];
    f.gelu(so, sp, 10);
    std::printf("  %-10s gelu(nan)=%g gelu(inf)=%g gelu(-inf)=%g gelu(-0)=%g gelu(1e30)=%g gelu(-1e30)=%g gelu(-14)=%g gelu(-13)=%g\n",
                f.name, so[0], so[1], so[2], so[4], so[5], so[6], so[8], so[9]);
    float sg[10];
    f.gelu_grad(sg, sp, 10);
    std::printf("  %-10s gelu'(nan)=%g gelu'(inf)=%g gelu'(-inf)=%g gelu'(1e30)=%g gelu'(-1e30)=%g gelu'(14)=%g\n", f.name, sg[0],
                sg[1], sg[2], sg[5], sg[6], sg[7]);
    check(std::isnan(sg[0]) && sg[5] == 1.f && sg[6] == 0.f && sg[7] == 1.f, "gelu' special values");
    check(std::isnan(so[0]) && so[1] == INFINITY && std::isnan(so[2]) && so[3] == 0.f && std::signbit(so[4]) &&
              so[5] == 1e30f && so[6] == 0.f && std::signbit(so[6]) && so[7] == 14.f,
          "gelu special values");
  }
}

// ---- dispatched kernels vs double references ----
static std::vector<float> randv(size_t n, uint32_t seed, float sd = 1.f, float mean = 0.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

static void softmax_ref(float* out, const float* in, int C) {
  double m = -INFINITY;
  for (int i = 0; i < C; i++) m = (in[i] > m || std::isnan(in[i])) ? in[i] : m;
  double s = 0;
  std::vector<double> e(C);
  for (int i = 0; i < C; i++) s += (e[i] = std::exp((double)in[i] - m));
  for (int i = 0; i < C; i++) out[i] = (float)(e[i] / s);
}

static bool same_nonfinite(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return true;
}

static void test_kernels() {
  // softmax incl. NaN / -inf / +inf / all -inf rows
  for (int C : {1, 5, 13, 16, 17, 31, 197, 1000}) {
    const int R = 6;
    std::vector<float> x = randv((size_t)R * C, 10 + C, 4.f), y(x.size()), w(x.size());
    x[1 * C + 0] = NAN;
    x[2 * C + C / 2] = -INFINITY;
    x[3 * C + C - 1] = INFINITY;
    for (int i = 0; i < C; i++) x[4 * C + i] = -INFINITY;
    x[5 * C + 0] = -1e30f;
    softmax_forward(y.data(), x.data(), R, C);
    double err = 0;
    bool nf = true;
    for (int r = 0; r < R; r++) softmax_ref(w.data() + r * C, x.data() + r * C, C);
    for (size_t i = 0; i < y.size(); i++) {
      nf &= same_nonfinite(y[i], w[i]);
      if (std::isfinite(w[i])) err = std::max(err, (double)std::fabs(y[i] - w[i]));
    }
    std::printf("  softmax C=%-4d max abs err %.3g, NaN/Inf placement %s\n", C, err, nf ? "ok" : "WRONG");
    check(err < 1e-6 && nf, "softmax");
  }
  // layernorm vs double
  for (int C : {7, 37, 192, 384, 768, 1000}) {
    const int R = 50;
    std::vector<float> x = randv((size_t)R * C, 20 + C, 3.f, 5.f), w = randv(C, 21), b = randv(C, 22),
                       y((size_t)R * C), m(R), rs(R);
    layernorm_forward(y.data(), m.data(), rs.data(), x.data(), w.data(), b.data(), R, C, 1e-6f);
    double err = 0;
    for (int r = 0; r < R; r++) {
      double s = 0, v = 0;
      for (int i = 0; i < C; i++) s += x[r * C + i];
      s /= C;
      for (int i = 0; i < C; i++) v += (x[r * C + i] - s) * (x[r * C + i] - s);
      const double rstd = 1 / std::sqrt(v / C + 1e-6);
      for (int i = 0; i < C; i++)
        err = std::max(err, std::fabs(y[r * C + i] - ((x[r * C + i] - s) * rstd * w[i] + b[i])) /
                                std::max(1.0, std::fabs((x[r * C + i] - s) * rstd * w[i] + b[i])));
    }
    std::printf("  layernorm C=%-4d (mean 5, sd 3) max err %.3g\n", C, err);
    check(err < 2e-6, "layernorm");
  }
  // attention vs double reference, with and without probs, odd sizes
  struct AC { int B, N, NH, HD; } acs[] = {{2, 197, 3, 64}, {1, 5, 2, 3}, {3, 17, 4, 16}, {1, 50, 3, 64}};
  for (const AC& c : acs) {
    const int D = c.NH * c.HD;
    std::vector<float> qkv = randv((size_t)c.B * c.N * 3 * D, 31, 1.5f), out((size_t)c.B * c.N * D),
                       out2(out.size(), NAN), probs((size_t)c.B * c.NH * c.N * c.N);
    const float scale = 1.f / std::sqrt((float)c.HD);
    attention_forward(out.data(), probs.data(), qkv.data(), c.B, c.N, c.NH, c.HD, scale);
    attention_forward(out2.data(), nullptr, qkv.data(), c.B, c.N, c.NH, c.HD, scale);
    double err = 0, perr = 0, d12 = 0;
    std::vector<double> s(c.N), o(c.HD);
    for (int b = 0; b < c.B; b++)
      for (int h = 0; h < c.NH; h++)
        for (int i = 0; i < c.N; i++) {
          const float* q = &qkv[((size_t)b * c.N + i) * 3 * D + h * c.HD];
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j < c.N; j++) {
            const float* k = &qkv[((size_t)b * c.N + j) * 3 * D + D + h * c.HD];
            double d = 0;
            for (int e = 0; e < c.HD; e++) d += (double)q[e] * k[e];
            s[j] = d * scale;
            mx = std::max(mx, s[j]);
          }
          for (int j = 0; j < c.N; j++) sum += (s[j] = std::exp(s[j] - mx));
          std::fill(o.begin(), o.end(), 0.0);
          for (int j = 0; j < c.N; j++) {
            s[j] /= sum;
            perr = std::max(perr, std::fabs(s[j] - probs[(((size_t)b * c.NH + h) * c.N + i) * c.N + j]));
            const float* v = &qkv[((size_t)b * c.N + j) * 3 * D + 2 * D + h * c.HD];
            for (int e = 0; e < c.HD; e++) o[e] += s[j] * v[e];
          }
          for (int e = 0; e < c.HD; e++) {
            const size_t at = ((size_t)b * c.N + i) * D + h * c.HD + e;
            err = std::max(err, std::fabs(o[e] - out[at]));
            d12 = std::max(d12, (double)std::fabs(out[at] - out2[at]));
          }
        }
    std::printf("  attention B=%d N=%d NH=%d HD=%d: out max err %.3g, probs max err %.3g, probs=null differs by %.3g\n",
                c.B, c.N, c.NH, c.HD, err, perr, d12);
    check(err < 2e-5 && perr < 1e-6 && d12 == 0, "attention");
  }
}

// ---- bench ----
template <class F>
static double time_ms(F f, int reps) {
  f();
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

static void bench(int reps) {
  // ViT-Ti/16, batch 8, per forward (12 blocks): the call counts the model makes
  const int B = 8, N = 197, NH = 3, HD = 64, D = NH * HD, depth = 12;
  const int64_t BN = (int64_t)B * N;
  std::vector<float> h = randv(BN * 4 * D, 1, 2.f), g(BN * 4 * D), qkv = randv(BN * 3 * D, 2, 1.5f),
                     o(BN * D), ln = randv(BN * D, 3), w = randv(4 * D, 4), b = randv(4 * D, 5),
                     a2(BN * D), m(BN), rs(BN), sm = randv((size_t)B * NH * N * N, 6, 3.f);
  for (int t : {1, 2}) {
    set_threads(t);
    // one call per block on a (BN, 4D) tensor, as the model does; plus an L2-resident chunk
    const double gelu = time_ms([&] { gelu_forward(g.data(), h.data(), BN * 4 * D, 0); }, reps) * depth;
    const double gelut = time_ms([&] { gelu_forward(g.data(), h.data(), BN * 4 * D, 1); }, reps) * depth;
    const double gelub = time_ms([&] { gelu_backward(g.data(), h.data(), h.data(), BN * 4 * D, 0); }, reps) * depth;
    const int64_t nc = 32768;
    const double geluc = time_ms([&] { for (int k = 0; k < 64; k++) gelu_forward(g.data(), h.data(), nc, 0); }, reps);
    std::printf("threads=%d  gelu(erf) on an L2-resident chunk: %.2f ns/element\n", t, geluc * 1e6 / (64.0 * nc));
    const double attn = time_ms([&] { attention_forward(o.data(), nullptr, qkv.data(), B, N, NH, HD, 0.125f); }, reps) * depth;
    const double attnp = time_ms([&] { attention_forward(o.data(), sm.data(), qkv.data(), B, N, NH, HD, 0.125f); }, reps) * depth;
    std::vector<float> smo(sm.size());
    const double soft = time_ms([&] { softmax_forward(smo.data(), sm.data(), (int64_t)B * NH * N, N); }, reps) * depth;
    const double lnf = time_ms([&] { layernorm_forward(a2.data(), m.data(), rs.data(), ln.data(), w.data(), b.data(), BN, D, 1e-6f); }, reps) * (2 * depth + 1);
    const double add = time_ms([&] { add_forward(a2.data(), ln.data(), o.data(), BN * D); }, reps) * 2 * depth;
    const double bias = (time_ms([&] { bias_add(qkv.data(), b.data(), BN, 3 * D); }, reps) +
                         time_ms([&] { bias_add(h.data(), b.data(), BN, 4 * D); }, reps) +
                         2 * time_ms([&] { bias_add(o.data(), b.data(), BN, D); }, reps)) * depth;
    std::printf("threads=%d  per batch-8 forward (ms, min of %d): gelu(erf) %.2f  gelu(tanh) %.2f  gelu_backward %.2f  "
                "attention %.2f (with probs %.2f)  softmax(BxNHxN rows) %.2f  layernorm %.2f  add %.2f  biasAdd %.2f\n",
                t, reps, gelu, gelut, gelub, attn, attnp, soft, lnf, add, bias);
  }
}

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "test";
  const char* env = std::getenv("VITKIT_ISA");
  std::printf("dispatched ISA: %s (VITKIT_ISA=%s), gemm %s\n",
              simd::isa() == simd::kAvx512 ? "avx512" : simd::isa() == simd::kAvx2 ? "avx2" : "portable",
              env ? env : "", gemm_isa());
  if (mode == "test") {
    set_threads(2);
    test_math();
    test_kernels();
    std::printf(failures ? "%d FAILURES\n" : "all ok\n", failures);
    return failures ? 1 : 0;
  }
  bench(argc > 2 ? std::atoi(argv[2]) : 7);
  return 0;
}
