// Row softmax with max subtraction. A row holding NaN gives NaN; a row of all -inf gives NaN (as
// torch); a row holding +inf gives NaN (inf - inf), like the TypeScript reference.
// Vectorized (AVX-512 / AVX2 / NEON / portable, run-time dispatch) with the exp of simd_math.h (~1 ulp,
// exp(-inf) = 0, exp(NaN) = NaN). out may alias inp (attention runs it in place).
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/simd_math.h"
#include "threadpool.h"

namespace vk {
namespace {

using namespace simd;

void softmax_row_portable(float* out, const float* inp, int C) {
  float m = -INFINITY;
  for (int i = 0; i < C; i++) m = (inp[i] > m || std::isnan(inp[i])) ? inp[i] : m;
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 partial sums, like the vector paths
  for (int i = 0; i < C; i++) {
    const float e = exp_s(inp[i] - m);
    out[i] = e;
    acc[i & 7] += e;
  }
  const float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  const float inv = 1.f / s;
  for (int i = 0; i < C; i++) out[i] *= inv;
}

#if VK_SIMD_X86
VK_TARGET("avx512f,fma") void softmax_row_avx512(float* out, const float* inp, int C) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 mx0 = ninf, mx1 = ninf;
  __mmask16 nan = 0;
  int i = 0;
  for (; i + 32 <= C; i += 32) {
    const __m512 a = _mm512_loadu_ps(inp + i), b = _mm512_loadu_ps(inp + i + 16);
    nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
    mx0 = _mm512_max_ps(mx0, a);
    mx1 = _mm512_max_ps(mx1, b);
  }
  for (; i < C; i += 16) {
    const __mmask16 k = tail_mask_512(C - i < 16 ? C - i : 16);
    const __m512 a = _mm512_mask_loadu_ps(ninf, k, inp + i);
    nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    mx0 = _mm512_max_ps(mx0, a);
  }
  const float m = nan ? NAN : hmax_512(_mm512_max_ps(mx0, mx1));
  const __m512 vm = _mm512_set1_ps(m);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  for (i = 0; i + 32 <= C; i += 32) {
    const __m512 a = exp_512(_mm512_sub_ps(_mm512_loadu_ps(inp + i), vm));
    const __m512 b = exp_512(_mm512_sub_ps(_mm512_loadu_ps(inp + i + 16), vm));
    _mm512_storeu_ps(out + i, a);
    _mm512_storeu_ps(out + i + 16, b);
    s0 = _mm512_add_ps(s0, a);
    s1 = _mm512_add_ps(s1, b);
  }
  for (; i < C; i += 16) {
    const __mmask16 k = tail_mask_512(C - i < 16 ? C - i : 16);
    const __m512 a = exp_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, inp + i), vm));
    _mm512_mask_storeu_ps(out + i, k, a);
    s0 = _mm512_add_ps(s0, _mm512_maskz_mov_ps(k, a));
  }
  const __m512 inv = _mm512_set1_ps(1.f / hsum_512(_mm512_add_ps(s0, s1)));
  for (i = 0; i + 16 <= C; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(out + i), inv));
  if (i < C) {
    const __mmask16 k = tail_mask_512(C - i);
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, out + i), inv));
  }
}

VK_TARGET("avx2,fma") void softmax_row_avx2(float* out, const float* inp, int C) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 mx0 = ninf, mx1 = ninf, nan = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= C; i += 16) {
    const __m256 a = _mm256_loadu_ps(inp + i), b = _mm256_loadu_ps(inp + i + 8);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
    mx0 = _mm256_max_ps(mx0, a);
    mx1 = _mm256_max_ps(mx1, b);
  }
  for (; i < C; i += 8) {
    const __m256i k = tail_mask_256(C - i < 8 ? C - i : 8);
    const __m256 a = _mm256_blendv_ps(ninf, _mm256_maskload_ps(inp + i, k), _mm256_castsi256_ps(k));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    mx0 = _mm256_max_ps(mx0, a);
  }
  const float m = _mm256_movemask_ps(nan) ? NAN : hmax_256(_mm256_max_ps(mx0, mx1));
  const __m256 vm = _mm256_set1_ps(m);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (i = 0; i + 16 <= C; i += 16) {
    const __m256 a = exp_256(_mm256_sub_ps(_mm256_loadu_ps(inp + i), vm));
    const __m256 b = exp_256(_mm256_sub_ps(_mm256_loadu_ps(inp + i + 8), vm));
    _mm256_storeu_ps(out + i, a);
    _mm256_storeu_ps(out + i + 8, b);
    s0 = _mm256_add_ps(s0, a);
    s1 = _mm256_add_ps(s1, b);
  }
  for (; i < C; i += 8) {
    const __m256i k = tail_mask_256(C - i < 8 ? C - i : 8);
    const __m256 a = exp_256(_mm256_sub_ps(_mm256_maskload_ps(inp + i, k), vm));
    _mm256_maskstore_ps(out + i, k, a);
    s0 = _mm256_add_ps(s0, _mm256_and_ps(a, _mm256_castsi256_ps(k)));
  }
  const __m256 inv = _mm256_set1_ps(1.f / hsum_256(_mm256_add_ps(s0, s1)));
  for (i = 0; i + 8 <= C; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inv));
  if (i < C) {
    const __m256i k = tail_mask_256(C - i);
    _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(_mm256_maskload_ps(out + i, k), inv));
  }
}
#endif

#if VK_NEON
// the AVX2 algorithm on 4 lanes: max (any NaN -> NaN row), exp(x - max) with 8 partial sums, scale
void softmax_row_neon(float* out, const float* inp, int C) {
  const float32x4_t ninf = vdupq_n_f32(-INFINITY);
  float32x4_t mx0 = ninf, mx1 = ninf;
  uint32x4_t nan = vdupq_n_u32(0);
  int i = 0;
  for (; i + 8 <= C; i += 8) {
    const float32x4_t a = vld1q_f32(inp + i), b = vld1q_f32(inp + i + 4);
    nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(a, a)));
    nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(b, b)));
    mx0 = vmaxnmq_f32(mx0, a);
    mx1 = vmaxnmq_f32(mx1, b);
  }
  float m = hmax_neon(vmaxnmq_f32(mx0, mx1));
  bool any_nan = vmaxvq_u32(nan) != 0;
  for (; i < C; i++) {
    if (std::isnan(inp[i])) any_nan = true;
    else if (inp[i] > m) m = inp[i];
  }
  if (any_nan) m = NAN;
  const float32x4_t vm = vdupq_n_f32(m);
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = vdupq_n_f32(0.f);
  for (i = 0; i + 8 <= C; i += 8) {
    const float32x4_t a = exp_neon(vsubq_f32(vld1q_f32(inp + i), vm));
    const float32x4_t b = exp_neon(vsubq_f32(vld1q_f32(inp + i + 4), vm));
    vst1q_f32(out + i, a);
    vst1q_f32(out + i + 4, b);
    s0 = vaddq_f32(s0, a);
    s1 = vaddq_f32(s1, b);
  }
  if (i < C) {  // the tail through one padded vector (the same exp as the body)
    float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int n = C - i;
    for (int j = 0; j < n; j++) t[j] = inp[i + j];
    for (int h = 0; h < n; h += 4) {
      float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(t + h), vm));
      vst1q_f32(t + h, e);
    }
    for (int j = n; j < 8; j++) t[j] = 0.f;
    for (int j = 0; j < n; j++) out[i + j] = t[j];
    s0 = vaddq_f32(s0, vld1q_f32(t));
    s1 = vaddq_f32(s1, vld1q_f32(t + 4));
  }
  const float32x4_t inv = vdupq_n_f32(1.f / hsum_neon(vaddq_f32(s0, s1)));
  for (i = 0; i + 4 <= C; i += 4) vst1q_f32(out + i, vmulq_f32(vld1q_f32(out + i), inv));
  const float invs = vgetq_lane_f32(inv, 0);
  for (; i < C; i++) out[i] *= invs;
}
#endif

using RowFn = void (*)(float*, const float*, int);

RowFn pick() {
#if VK_SIMD_X86
  if (isa() == kAvx512) return softmax_row_avx512;
  if (isa() == kAvx2) return softmax_row_avx2;
#elif VK_NEON
  if (isa() == kNeon) return softmax_row_neon;
#endif
  return softmax_row_portable;
}

}  // namespace

// one row, single-threaded; out may equal inp (used by attention.cc)
void softmax_row(float* out, const float* inp, int C) {
  static const RowFn fn = pick();
  fn(out, inp, C);
}

void softmax_forward(float* out, const float* inp, int64_t R, int C) {
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) softmax_row(out + r * C, inp + r * C, C);
  }, 8);
}

// dinp (R, C) = out * (dout - rowsum(dout * out)), out the softmax output
void softmax_backward(float* dinp, const float* out, const float* dout, int64_t R, int C) {
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* y = out + r * C;
      const float* g = dout + r * C;
      float* d = dinp + r * C;
      double dot = 0;
      for (int i = 0; i < C; i++) dot += (double)g[i] * y[i];
      const float fd = (float)dot;
      for (int i = 0; i < C; i++) d[i] = y[i] * (g[i] - fd);
    }
  }, 8);
}

}  // namespace vk
