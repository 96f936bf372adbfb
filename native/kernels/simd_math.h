// Vectorized transcendental helpers (exp, exact-erf GELU, tanh GELU) with run-time ISA dispatch.
//
// Every helper exists in three flavours that compute the same algorithm:
//   *_512   AVX-512F + FMA  (16 lanes)   functions tagged target("avx512f,fma")
//   *_256   AVX2 + FMA      (8 lanes)    functions tagged target("avx2,fma")
//   *_neon  AArch64 NEON    (4 lanes)    (baseline ISA: no target attribute)
//   *_s     portable scalar C++ (no FMA assumed; ARM / old x86 / VITKIT_ISA=portable); exp from libm
// Callers write one function per ISA tagged with the same target attribute (so these inline) and
// pick one with simd::isa(), which honours VITKIT_ISA=avx2|portable exactly like gemm.cc.
//
// exp(x)  Cephes expf: x = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), e^r by the Cephes
//         degree-7 polynomial 1 + r + r^2 P(r) (~1 ulp), times 2^n applied as 2^(n>>1) 2^(n-(n>>1))
//         so that results overflow to +inf and underflow gradually to 0 correctly.
//         x is clamped to [-120, 89] first: exp(-inf) = 0, exp(+inf) = +inf, NaN -> NaN.
// erf     For GELU = x Phi(x), Phi(x) = 1 - erfc(z)/2 (x >= 0) or erfc(z)/2 (x < 0), z = |x|/sqrt2,
//         with the Numerical Recipes (2nd ed., sec. 6.2, "erfcc") Chebyshev fit
//           erfc(z) = t exp(-z^2 - 1.26551223 + t (1.00002368 + ... + t 0.17087277)), t = 1/(1+z/2)
//         whose relative error is < 1.2e-7 for all z >= 0 (checked against mpmath: 1.05e-7 on
//         [0, 10.5]); it is the same fit the TypeScript reference backend uses. Computing erfc
//         (not 1 + erf) keeps Phi relatively accurate in the negative tail. z^2 is split exactly
//         into hi + lo with an FMA (a double product in the scalar path) computed from x itself
//         (z^2 = (|x|/2)|x|, as z = |x|/sqrt2 is already rounded), and exp(-hi + c - lo) is
//         range-reduced on hi exactly, so the tail keeps full float accuracy up to z = 10.5, where
//         erfc underflows to 0 (|x| is clamped at 14.85: GELU(-inf) = -inf * 0 = NaN as before,
//         GELU(+inf) = +inf).
// tanh    GELU_tanh = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi)(x + 0.044715 x^3):
//         no cancellation for any u.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "platform.h"  // VK_X86 (honours VITKIT_NO_X86), VK_TARGET, CPU checks

#if VK_X86
#define VK_SIMD_X86 1
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports false -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define VK_SIMD_X86 0
#endif

namespace vk {
namespace simd {

enum Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3 };

inline Isa detect_isa() {
  const char* env = std::getenv("VITKIT_ISA");
  int cap = 2;  // 2 avx512, 1 avx2, 0 portable: the highest allowed
  if (env) {
    if (!std::strcmp(env, "portable")) cap = 0;
    else if (!std::strcmp(env, "avx2")) cap = 1;
  }
#if VK_SIMD_X86
  if (cap >= 2 && cpu_has_avx512f()) return kAvx512;
  if (cap >= 1 && cpu_has_avx2_fma()) return kAvx2;
#elif VK_NEON
  if (cap >= 1) return kNeon;  // baseline on AArch64
#else
  (void)cap;
#endif
  return kPortable;
}

inline Isa isa() {
  static const Isa i = detect_isa();
  return i;
}

// ---- constants ----
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;       // 355/512: n * kLn2Hi is exact for |n| < 2^15
constexpr float kLn2Lo = -2.12194440e-4f;    // ln2 - kLn2Hi
constexpr float kExpLo = -120.f, kExpHi = 89.f;  // 2^n with n in [-174, 129] via two normal factors
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kTanhC = 0.044715f;
constexpr float kErfXMax = 14.85f;  // |x| clamp: z = |x|/sqrt2 <= 10.5, erfc(10.5) = 1e-49 -> 0
// Numerical Recipes erfcc coefficients, c0 + t (c1 + t (c2 + ... + t c9))
constexpr float kE0 = -1.26551223f, kE1 = 1.00002368f, kE2 = 0.37409196f, kE3 = 0.09678418f,
                kE4 = -0.18628806f, kE5 = 0.27886807f, kE6 = -1.13520398f, kE7 = 1.48851587f,
                kE8 = -0.82215223f, kE9 = 0.17087277f;

// ---------------------------------------------------------------------------------------------
// Portable scalar
// ---------------------------------------------------------------------------------------------
// The scalar path leaves exp to the C library (glibc / libm expf: < 1 ulp, handles -inf, NaN,
// overflow and subnormals); GCC cannot vectorize the branch-free polynomial version at plain -O3
// (trapping math), so the library call is the faster portable choice.
// exp(a + b) for a large, b a small correction: exp(a) exp(b), a and b both exact inputs.
inline float exp2p_s(float a, float b) { return std::exp(a) * std::exp(b); }

inline float exp_s(float x) { return std::exp(x); }

// Phi(x) = P(X <= x), X ~ N(0, 1)
inline float phi_s(float x) {
  float ax = std::fabs(x);
  ax = ax > kErfXMax ? kErfXMax : ax;  // NaN stays NaN
  const float z = ax * kInvSqrt2;
  const float t = 1.f / (1.f + 0.5f * z);
  float c = kE9;
  c = c * t + kE8;
  c = c * t + kE7;
  c = c * t + kE6;
  c = c * t + kE5;
  c = c * t + kE4;
  c = c * t + kE3;
  c = c * t + kE2;
  c = c * t + kE1;
  c = c * t + kE0;
  // z^2 = x^2/2 from x itself (z is rounded), split exactly into hi + lo in double
  const double zz = 0.5 * (double)ax * ax;
  const float hi = (float)zz, lo = (float)(zz - (double)hi);
  const float y = t * exp2p_s(-hi, c - lo);  // erfc(z)
  return x >= 0.f ? 1.f - 0.5f * y : 0.5f * y;
}

// Phi for a block of n <= 16 values, in phases (arithmetic / libm exp / select) so that the
// independent dependency chains of the block overlap; same math as phi_s.
inline void phi_block_s(float* phi, const float* x, int n) {
  float ta[16];
  double ea[16];
  for (int i = 0; i < n; i++) {
    float ax = std::fabs(x[i]);
    ax = ax > kErfXMax ? kErfXMax : ax;
    const float z = ax * kInvSqrt2;
    const float t = 1.f / (1.f + 0.5f * z);
    float c = kE9;
    c = c * t + kE8;
    c = c * t + kE7;
    c = c * t + kE6;
    c = c * t + kE5;
    c = c * t + kE4;
    c = c * t + kE3;
    c = c * t + kE2;
    c = c * t + kE1;
    c = c * t + kE0;
    ta[i] = 0.5f * t;
    ea[i] = (double)c - 0.5 * (double)ax * ax;  // x^2/2 exact in double
  }
  for (int i = 0; i < n; i++) ea[i] = std::exp(ea[i]);  // one double exp per value
  for (int i = 0; i < n; i++) {
    const float hy = (float)(ta[i] * ea[i]);
    phi[i] = x[i] >= 0.f ? 1.f - hy : hy;
  }
}

// exp(-x^2 / 2) / sqrt(2 pi)
inline float pdf_s(float x) {
  double xx = 0.5 * (double)x * x;
  xx = xx > -kExpLo ? -kExpLo : xx;  // huge |x|: exp(-120) = 0, and no inf - inf
  const float hi = (float)xx, lo = (float)(xx - (double)hi);
  return exp2p_s(-hi, -lo) * kInvSqrt2Pi;
}

inline float gelu_erf_s(float x) { return x * phi_s(x); }
inline float gelu_erf_grad_s(float x) { return phi_s(x) + x * pdf_s(x); }
inline float gelu_tanh_s(float x) {
  const float u = kSqrt2OverPi * (x + kTanhC * x * x * x);
  return x / (1.f + exp_s(-2.f * u));
}
inline float gelu_tanh_grad_s(float x) {
  const float u = kSqrt2OverPi * (x + kTanhC * x * x * x);
  const float e = exp_s(-2.f * u);
  const float s = 1.f / (1.f + e);
  const float du = kSqrt2OverPi * (1.f + 3.f * kTanhC * x * x);
  const float oms = std::fmin(e * s, 1.f);  // 1 - s without cancellation
  return s + 2.f * x * s * oms * du;
}

#if VK_SIMD_X86
// ---------------------------------------------------------------------------------------------
// AVX-512F + FMA
// ---------------------------------------------------------------------------------------------
#define VK_AVX512_INLINE VK_TARGET_INLINE("avx512f,fma")

// p(r) 2^n; scalef scales with gradual underflow / overflow to inf for any n
VK_AVX512_INLINE __m512 exp_finish_512(__m512 r, __m512 n) {
  __m512 p = _mm512_set1_ps(kP0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(y, n);
}

// exp(a + b), a large, b a small correction, a + b in [-170, 88] (no clamping: callers guarantee
// the range; NaN propagates)
VK_AVX512_INLINE __m512 exp2p_nc_512(__m512 a, __m512 b) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(a, b), _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), a);
  r = _mm512_add_ps(r, b);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  return exp_finish_512(r, n);
}

VK_AVX512_INLINE __m512 exp_512(__m512 x) {
  // clamp (NaN is returned by max/min as their second operand, so it propagates)
  const __m512 s = _mm512_min_ps(_mm512_set1_ps(kExpHi), _mm512_max_ps(_mm512_set1_ps(kExpLo), x));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(s, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), s);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  return exp_finish_512(r, n);
}

// returns Phi(x); also z (|x|/sqrt2 clamped) for reuse
VK_AVX512_INLINE __m512 phi_512(__m512 x) {
  const __m512 ax = _mm512_min_ps(_mm512_set1_ps(kErfXMax), _mm512_abs_ps(x));
  const __m512 z = _mm512_mul_ps(ax, _mm512_set1_ps(kInvSqrt2));
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 den = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, one);
  // t = 1 / den: rcp14 + one Newton step (~2^-27 relative)
  __m512 t = _mm512_rcp14_ps(den);
  t = _mm512_fmadd_ps(t, _mm512_fnmadd_ps(den, t, one), t);
  __m512 c = _mm512_set1_ps(kE9);
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE8));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE7));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE6));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE5));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE4));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE3));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE2));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE1));
  c = _mm512_fmadd_ps(c, t, _mm512_set1_ps(kE0));
  // z^2 = x^2/2 = (x/2) x, from x itself (z is rounded); hi + lo exactly. Clamped like z.
  const __m512 h = _mm512_mul_ps(_mm512_set1_ps(0.5f), ax);
  const __m512 hi = _mm512_mul_ps(h, ax);
  const __m512 lo = _mm512_fmsub_ps(h, ax, hi);
  // hi + lo <= 110.3, c in [-1.27, 0]: exp argument in [-111.6, 0], no clamp needed
  const __m512 ht = _mm512_mul_ps(_mm512_set1_ps(0.5f), t);
  const __m512 hy = _mm512_mul_ps(ht, exp2p_nc_512(_mm512_sub_ps(_mm512_setzero_ps(), hi), _mm512_sub_ps(c, lo)));
  const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  return _mm512_mask_blend_ps(pos, hy, _mm512_sub_ps(one, hy));
}

VK_AVX512_INLINE __m512 pdf_512(__m512 x) {
  const __m512 h = _mm512_mul_ps(_mm512_set1_ps(0.5f), x);  // exact
  const __m512 hi = _mm512_mul_ps(h, x);
  const __m512 lo = _mm512_fmsub_ps(h, x, hi);
  // clamp so that huge |x| gives exp(-120) = 0 (and inf gives 0, not NaN from inf - inf)
  const __m512 hc = _mm512_min_ps(_mm512_set1_ps(-kExpLo), hi);
  const __m512 lc = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(hi, hc, _CMP_EQ_OQ), lo);
  return _mm512_mul_ps(exp2p_nc_512(_mm512_sub_ps(_mm512_setzero_ps(), hc), _mm512_sub_ps(_mm512_setzero_ps(), lc)),
                       _mm512_set1_ps(kInvSqrt2Pi));
}

VK_AVX512_INLINE __m512 gelu_erf_512(__m512 x) { return _mm512_mul_ps(x, phi_512(x)); }
VK_AVX512_INLINE __m512 gelu_erf_grad_512(__m512 x) { return _mm512_fmadd_ps(x, pdf_512(x), phi_512(x)); }

VK_AVX512_INLINE __m512 tanh_u_512(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  return _mm512_mul_ps(_mm512_set1_ps(kSqrt2OverPi), _mm512_fmadd_ps(_mm512_set1_ps(kTanhC), x3, x));
}
VK_AVX512_INLINE __m512 gelu_tanh_512(__m512 x) {
  const __m512 e = exp_512(_mm512_mul_ps(_mm512_set1_ps(-2.f), tanh_u_512(x)));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}
VK_AVX512_INLINE __m512 gelu_tanh_grad_512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 e = exp_512(_mm512_mul_ps(_mm512_set1_ps(-2.f), tanh_u_512(x)));
  const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, e));
  const __m512 du = _mm512_mul_ps(_mm512_set1_ps(kSqrt2OverPi),
                                  _mm512_fmadd_ps(_mm512_set1_ps(3.f * kTanhC), _mm512_mul_ps(x, x), one));
  // 1 - s = e s without cancellation (e = inf, s = 0: NaN -> min picks 1)
  const __m512 oms = _mm512_min_ps(_mm512_mul_ps(e, s), one);
  const __m512 g = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(2.f), x), s),
                                 _mm512_mul_ps(oms, du));
  return _mm512_add_ps(s, g);
}

VK_AVX512_INLINE float hsum_512(__m512 v) { return _mm512_reduce_add_ps(v); }
VK_AVX512_INLINE float hmax_512(__m512 v) { return _mm512_reduce_max_ps(v); }
VK_AVX512_INLINE __mmask16 tail_mask_512(int n) { return (__mmask16)((1u << n) - 1u); }

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA
// ---------------------------------------------------------------------------------------------
#define VK_AVX2_INLINE VK_TARGET_INLINE("avx2,fma")

VK_AVX2_INLINE __m256 exp_finish_256(__m256 r, __m256 n) {
  __m256 p = _mm256_set1_ps(kP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i b = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23));
  return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

VK_AVX2_INLINE __m256 exp2p_256(__m256 a, __m256 b) {
  const __m256 lo = _mm256_set1_ps(kExpLo), hi = _mm256_set1_ps(kExpHi);
  __m256 s = _mm256_add_ps(a, b);
  s = _mm256_min_ps(hi, _mm256_max_ps(lo, s));
  a = _mm256_min_ps(_mm256_set1_ps(kExpHi + 2.f), _mm256_max_ps(_mm256_set1_ps(kExpLo - 2.f), a));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(s, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), a);
  r = _mm256_add_ps(r, b);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  return exp_finish_256(r, n);
}

VK_AVX2_INLINE __m256 exp_256(__m256 x) {
  const __m256 s = _mm256_min_ps(_mm256_set1_ps(kExpHi), _mm256_max_ps(_mm256_set1_ps(kExpLo), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(s, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), s);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  return exp_finish_256(r, n);
}

VK_AVX2_INLINE __m256 abs_256(__m256 x) {
  return _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
}

VK_AVX2_INLINE __m256 phi_256(__m256 x) {
  const __m256 ax = _mm256_min_ps(_mm256_set1_ps(kErfXMax), abs_256(x));
  const __m256 z = _mm256_mul_ps(ax, _mm256_set1_ps(kInvSqrt2));
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 den = _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, one);
  // t = 1 / den: rcp (12 bits) + two Newton steps
  __m256 t = _mm256_rcp_ps(den);
  t = _mm256_fmadd_ps(t, _mm256_fnmadd_ps(den, t, one), t);
  t = _mm256_fmadd_ps(t, _mm256_fnmadd_ps(den, t, one), t);
  __m256 c = _mm256_set1_ps(kE9);
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE8));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE7));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE6));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE5));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE4));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE3));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE2));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE1));
  c = _mm256_fmadd_ps(c, t, _mm256_set1_ps(kE0));
  // z^2 = x^2/2 = (|x|/2) |x| from x itself (z is rounded); hi + lo exactly
  const __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), ax);
  const __m256 hi = _mm256_mul_ps(h, ax);
  const __m256 lo = _mm256_fmsub_ps(h, ax, hi);
  const __m256 y = _mm256_mul_ps(t, exp2p_256(_mm256_sub_ps(_mm256_setzero_ps(), hi), _mm256_sub_ps(c, lo)));
  const __m256 hy = _mm256_mul_ps(_mm256_set1_ps(0.5f), y);
  const __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_blendv_ps(hy, _mm256_sub_ps(one, hy), pos);
}

VK_AVX2_INLINE __m256 pdf_256(__m256 x) {
  const __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
  const __m256 hi = _mm256_mul_ps(h, x);
  const __m256 lo = _mm256_fmsub_ps(h, x, hi);
  // clamp so that huge |x| gives exp(-120) = 0 (and inf gives 0, not NaN from inf - inf)
  const __m256 hc = _mm256_min_ps(_mm256_set1_ps(-kExpLo), hi);
  const __m256 lc = _mm256_and_ps(_mm256_cmp_ps(hi, hc, _CMP_EQ_OQ), lo);
  return _mm256_mul_ps(exp2p_256(_mm256_sub_ps(_mm256_setzero_ps(), hc), _mm256_sub_ps(_mm256_setzero_ps(), lc)),
                       _mm256_set1_ps(kInvSqrt2Pi));
}

VK_AVX2_INLINE __m256 gelu_erf_256(__m256 x) { return _mm256_mul_ps(x, phi_256(x)); }
VK_AVX2_INLINE __m256 gelu_erf_grad_256(__m256 x) { return _mm256_fmadd_ps(x, pdf_256(x), phi_256(x)); }

VK_AVX2_INLINE __m256 tanh_u_256(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  return _mm256_mul_ps(_mm256_set1_ps(kSqrt2OverPi), _mm256_fmadd_ps(_mm256_set1_ps(kTanhC), x3, x));
}
VK_AVX2_INLINE __m256 gelu_tanh_256(__m256 x) {
  const __m256 e = exp_256(_mm256_mul_ps(_mm256_set1_ps(-2.f), tanh_u_256(x)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}
VK_AVX2_INLINE __m256 gelu_tanh_grad_256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 e = exp_256(_mm256_mul_ps(_mm256_set1_ps(-2.f), tanh_u_256(x)));
  const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
  const __m256 du = _mm256_mul_ps(_mm256_set1_ps(kSqrt2OverPi),
                                  _mm256_fmadd_ps(_mm256_set1_ps(3.f * kTanhC), _mm256_mul_ps(x, x), one));
  const __m256 oms = _mm256_min_ps(_mm256_mul_ps(e, s), one);
  const __m256 g = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.f), x), s),
                                 _mm256_mul_ps(oms, du));
  return _mm256_add_ps(s, g);
}

VK_AVX2_INLINE float hsum_256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
VK_AVX2_INLINE float hmax_256(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// lanes < n all-ones (0 <= n <= 8)
VK_AVX2_INLINE __m256i tail_mask_256(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif  // VK_SIMD_X86

#if VK_NEON
// ---------------------------------------------------------------------------------------------
// AArch64 NEON (the same algorithms as the AVX2 versions, 4 lanes; vfmaq_f32(a, b, c) = a + b c)
// ---------------------------------------------------------------------------------------------
inline float32x4_t exp_finish_neon(float32x4_t r, float32x4_t n) {
  float32x4_t p = vdupq_n_f32(kP0);
  p = vfmaq_f32(vdupq_n_f32(kP1), p, r);
  p = vfmaq_f32(vdupq_n_f32(kP2), p, r);
  p = vfmaq_f32(vdupq_n_f32(kP3), p, r);
  p = vfmaq_f32(vdupq_n_f32(kP4), p, r);
  p = vfmaq_f32(vdupq_n_f32(kP5), p, r);
  const float32x4_t y = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.f));
  const int32x4_t ni = vcvtnq_s32_f32(n);
  const int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
  const int32x4_t b = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, b), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, b), 23));
  return vmulq_f32(vmulq_f32(y, s1), s2);
}
// x clamped to [kExpLo, kExpHi] (NaN stays NaN: vmaxq / vminq propagate it)
inline float32x4_t exp_neon(float32x4_t x) {
  const float32x4_t s = vminq_f32(vdupq_n_f32(kExpHi), vmaxq_f32(vdupq_n_f32(kExpLo), x));
  const float32x4_t n = vrndnq_f32(vmulq_f32(s, vdupq_n_f32(kLog2e)));
  float32x4_t r = vfmsq_f32(s, n, vdupq_n_f32(kLn2Hi));
  r = vfmsq_f32(r, n, vdupq_n_f32(kLn2Lo));
  return exp_finish_neon(r, n);
}
// exp(a + b), a large and b a small correction, range-reduced on a exactly (as exp2p_256)
inline float32x4_t exp2p_neon(float32x4_t a, float32x4_t b) {
  float32x4_t s = vaddq_f32(a, b);
  s = vminq_f32(vdupq_n_f32(kExpHi), vmaxq_f32(vdupq_n_f32(kExpLo), s));
  a = vminq_f32(vdupq_n_f32(kExpHi + 2.f), vmaxq_f32(vdupq_n_f32(kExpLo - 2.f), a));
  const float32x4_t n = vrndnq_f32(vmulq_f32(s, vdupq_n_f32(kLog2e)));
  float32x4_t r = vfmsq_f32(a, n, vdupq_n_f32(kLn2Hi));
  r = vaddq_f32(r, b);
  r = vfmsq_f32(r, n, vdupq_n_f32(kLn2Lo));
  return exp_finish_neon(r, n);
}
inline float32x4_t phi_neon(float32x4_t x) {
  const float32x4_t ax = vminq_f32(vdupq_n_f32(kErfXMax), vabsq_f32(x));
  const float32x4_t z = vmulq_f32(ax, vdupq_n_f32(kInvSqrt2));
  const float32x4_t one = vdupq_n_f32(1.f);
  const float32x4_t t = vdivq_f32(one, vfmaq_f32(one, vdupq_n_f32(0.5f), z));
  float32x4_t c = vdupq_n_f32(kE9);
  c = vfmaq_f32(vdupq_n_f32(kE8), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE7), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE6), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE5), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE4), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE3), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE2), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE1), c, t);
  c = vfmaq_f32(vdupq_n_f32(kE0), c, t);
  // z^2 = (|x|/2) |x| = hi + lo exactly
  const float32x4_t h = vmulq_f32(vdupq_n_f32(0.5f), ax);
  const float32x4_t hi = vmulq_f32(h, ax);
  const float32x4_t lo = vnegq_f32(vfmsq_f32(hi, h, ax));  // h ax - hi
  const float32x4_t y = vmulq_f32(t, exp2p_neon(vnegq_f32(hi), vsubq_f32(c, lo)));
  const float32x4_t hy = vmulq_f32(vdupq_n_f32(0.5f), y);
  return vbslq_f32(vcgeq_f32(x, vdupq_n_f32(0.f)), vsubq_f32(one, hy), hy);
}
inline float32x4_t pdf_neon(float32x4_t x) {
  const float32x4_t h = vmulq_f32(vdupq_n_f32(0.5f), x);
  const float32x4_t hi = vmulq_f32(h, x);
  const float32x4_t lo = vnegq_f32(vfmsq_f32(hi, h, x));
  const float32x4_t hc = vminq_f32(vdupq_n_f32(-kExpLo), hi);
  const float32x4_t lc = vreinterpretq_f32_u32(vandq_u32(vceqq_f32(hi, hc), vreinterpretq_u32_f32(lo)));
  return vmulq_f32(exp2p_neon(vnegq_f32(hc), vnegq_f32(lc)), vdupq_n_f32(kInvSqrt2Pi));
}
inline float32x4_t gelu_erf_neon(float32x4_t x) { return vmulq_f32(x, phi_neon(x)); }
inline float32x4_t gelu_erf_grad_neon(float32x4_t x) { return vfmaq_f32(phi_neon(x), x, pdf_neon(x)); }
inline float32x4_t tanh_u_neon(float32x4_t x) {
  const float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
  return vmulq_f32(vdupq_n_f32(kSqrt2OverPi), vfmaq_f32(x, vdupq_n_f32(kTanhC), x3));
}
inline float32x4_t gelu_tanh_neon(float32x4_t x) {
  const float32x4_t e = exp_neon(vmulq_f32(vdupq_n_f32(-2.f), tanh_u_neon(x)));
  return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.f), e));
}
inline float32x4_t gelu_tanh_grad_neon(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.f);
  const float32x4_t e = exp_neon(vmulq_f32(vdupq_n_f32(-2.f), tanh_u_neon(x)));
  const float32x4_t s = vdivq_f32(one, vaddq_f32(one, e));
  const float32x4_t du = vmulq_f32(vdupq_n_f32(kSqrt2OverPi), vfmaq_f32(one, vdupq_n_f32(3.f * kTanhC), vmulq_f32(x, x)));
  // 1 - s without cancellation; e = inf gives inf * 0 = NaN, and min(NaN, 1) = 1 as in the x86 and
  // scalar paths (vminnmq, not vminq, which would propagate the NaN)
  const float32x4_t oms = vminnmq_f32(vmulq_f32(e, s), one);
  const float32x4_t g = vmulq_f32(vmulq_f32(vmulq_f32(vdupq_n_f32(2.f), x), s), vmulq_f32(oms, du));
  return vaddq_f32(s, g);
}
inline float hsum_neon(float32x4_t v) { return vaddvq_f32(v); }
inline float hmax_neon(float32x4_t v) { return vmaxvq_f32(v); }
#endif  // VK_NEON

}  // namespace simd
}  // namespace vk
