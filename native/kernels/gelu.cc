// GELU: exact x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch.nn.functional.gelu(approximate=...).
// Vectorized with run-time dispatch (AVX-512 / AVX2 / NEON / portable); the math and its accuracy are
// described in simd_math.h (erfc fit with relative error < 1.2e-7, exp ~1 ulp).
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/simd_math.h"
#include "threadpool.h"

namespace vk {
namespace {

using namespace simd;

// op: 0 erf forward, 1 tanh forward (y = f(x)); 2 erf backward, 3 tanh backward (y = g * f'(x))
void gelu_portable(float* y, const float* x, const float* g, int64_t n, int op) {
  switch (op) {
    case 0:
      for (int64_t i = 0; i < n; i += 16) {
        const int m = (int)std::min<int64_t>(16, n - i);
        float phi[16];
        phi_block_s(phi, x + i, m);
        for (int j = 0; j < m; j++) y[i + j] = x[i + j] * phi[j];
      }
      break;
    case 1: for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh_s(x[i]); break;
    case 2: for (int64_t i = 0; i < n; i++) y[i] = g[i] * gelu_erf_grad_s(x[i]); break;
    default: for (int64_t i = 0; i < n; i++) y[i] = g[i] * gelu_tanh_grad_s(x[i]); break;
  }
}

#if VK_SIMD_X86
template <int OP>
VK_AVX512_INLINE __m512 op_512(__m512 v, __m512 gv) {
  if (OP == 0) return gelu_erf_512(v);
  if (OP == 1) return gelu_tanh_512(v);
  if (OP == 2) return _mm512_mul_ps(gv, gelu_erf_grad_512(v));
  return _mm512_mul_ps(gv, gelu_tanh_grad_512(v));
}
template <int OP>
VK_AVX2_INLINE __m256 op_256(__m256 v, __m256 gv) {
  if (OP == 0) return gelu_erf_256(v);
  if (OP == 1) return gelu_tanh_256(v);
  if (OP == 2) return _mm256_mul_ps(gv, gelu_erf_grad_256(v));
  return _mm256_mul_ps(gv, gelu_tanh_grad_256(v));
}

template <int OP>
VK_TARGET("avx512f,fma") void gelu_avx512_t(float* y, const float* x, const float* g,
                                                           int64_t n) {
#define f op_512<OP>
  const __m512 one = _mm512_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    const __m512 ga = OP >= 2 ? _mm512_loadu_ps(g + i) : one;
    const __m512 gb = OP >= 2 ? _mm512_loadu_ps(g + i + 16) : one;
    _mm512_storeu_ps(y + i, f(a, ga));
    _mm512_storeu_ps(y + i + 16, f(b, gb));
  }
  for (; i < n; i += 16) {
    const int r = (int)std::min<int64_t>(16, n - i);
    const __mmask16 m = tail_mask_512(r);
    const __m512 a = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 ga = OP >= 2 ? _mm512_maskz_loadu_ps(m, g + i) : one;
    _mm512_mask_storeu_ps(y + i, m, f(a, ga));
  }
#undef f
}

template <int OP>
VK_TARGET("avx2,fma") void gelu_avx2_t(float* y, const float* x, const float* g, int64_t n) {
#define f op_256<OP>
  const __m256 one = _mm256_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    const __m256 ga = OP >= 2 ? _mm256_loadu_ps(g + i) : one;
    const __m256 gb = OP >= 2 ? _mm256_loadu_ps(g + i + 8) : one;
    _mm256_storeu_ps(y + i, f(a, ga));
    _mm256_storeu_ps(y + i + 8, f(b, gb));
  }
  for (; i < n; i += 8) {
    const int r = (int)std::min<int64_t>(8, n - i);
    const __m256i m = tail_mask_256(r);
    const __m256 a = _mm256_maskload_ps(x + i, m);
    const __m256 ga = OP >= 2 ? _mm256_maskload_ps(g + i, m) : one;
    _mm256_maskstore_ps(y + i, m, f(a, ga));
  }
#undef f
}

VK_TARGET("avx512f,fma") void gelu_avx512(float* y, const float* x, const float* g,
                                                         int64_t n, int op) {
  switch (op) {
    case 0: gelu_avx512_t<0>(y, x, g, n); break;
    case 1: gelu_avx512_t<1>(y, x, g, n); break;
    case 2: gelu_avx512_t<2>(y, x, g, n); break;
    default: gelu_avx512_t<3>(y, x, g, n); break;
  }
}
VK_TARGET("avx2,fma") void gelu_avx2(float* y, const float* x, const float* g, int64_t n,
                                                    int op) {
  switch (op) {
    case 0: gelu_avx2_t<0>(y, x, g, n); break;
    case 1: gelu_avx2_t<1>(y, x, g, n); break;
    case 2: gelu_avx2_t<2>(y, x, g, n); break;
    default: gelu_avx2_t<3>(y, x, g, n); break;
  }
}
#endif

#if VK_NEON
template <int OP>
inline float32x4_t op_neon(float32x4_t v, float32x4_t gv) {
  if (OP == 0) return gelu_erf_neon(v);
  if (OP == 1) return gelu_tanh_neon(v);
  if (OP == 2) return vmulq_f32(gv, gelu_erf_grad_neon(v));
  return vmulq_f32(gv, gelu_tanh_grad_neon(v));
}
template <int OP>
void gelu_neon_t(float* y, const float* x, const float* g, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
    const float32x4_t ga = OP >= 2 ? vld1q_f32(g + i) : one, gb = OP >= 2 ? vld1q_f32(g + i + 4) : one;
    vst1q_f32(y + i, op_neon<OP>(a, ga));
    vst1q_f32(y + i + 4, op_neon<OP>(b, gb));
  }
  for (; i < n; i += 4) {  // the tail through one padded vector
    const int r = (int)std::min<int64_t>(4, n - i);
    float tx[4] = {0, 0, 0, 0}, tg[4] = {1, 1, 1, 1}, ty[4];
    for (int j = 0; j < r; j++) {
      tx[j] = x[i + j];
      if (OP >= 2) tg[j] = g[i + j];
    }
    vst1q_f32(ty, op_neon<OP>(vld1q_f32(tx), vld1q_f32(tg)));
    for (int j = 0; j < r; j++) y[i + j] = ty[j];
  }
}
void gelu_neon(float* y, const float* x, const float* g, int64_t n, int op) {
  switch (op) {
    case 0: gelu_neon_t<0>(y, x, g, n); break;
    case 1: gelu_neon_t<1>(y, x, g, n); break;
    case 2: gelu_neon_t<2>(y, x, g, n); break;
    default: gelu_neon_t<3>(y, x, g, n); break;
  }
}
#endif

using GeluFn = void (*)(float*, const float*, const float*, int64_t, int);

GeluFn pick() {
#if VK_SIMD_X86
  if (isa() == kAvx512) return gelu_avx512;
  if (isa() == kAvx2) return gelu_avx2;
#elif VK_NEON
  if (isa() == kNeon) return gelu_neon;
#endif
  return gelu_portable;
}

void run(float* y, const float* x, const float* g, int64_t n, int op) {
  static const GeluFn fn = pick();
  // chunks of whole cache lines so threads never share one
  parallel_for((n + 15) / 16, [&](int64_t b, int64_t e) {
    const int64_t i0 = b * 16, i1 = std::min<int64_t>(e * 16, n);
    fn(y + i0, x + i0, g ? g + i0 : nullptr, i1 - i0, op);
  }, 1024);
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n, int approx) {
  run(out, inp, nullptr, n, approx == 0 ? 0 : 1);
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, int approx) {
  run(dinp, inp, dout, n, approx == 0 ? 2 : 3);
}

}  // namespace vk
