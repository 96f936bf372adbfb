// Elementwise ops. add / bias_add are memory bound: AVX-512 / AVX2 / NEON / portable (run-time dispatch),
// bias_backward sums each column in row order in double over contiguous row segments.
#include <algorithm>

#include "kernels/kernels.h"
#include "kernels/simd_math.h"
#include "threadpool.h"

namespace vk {
namespace {

using namespace simd;

void add_portable(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
// rows [r0, r1) of out (R, C) += bias
void bias_portable(float* out, const float* bias, int64_t r0, int64_t r1, int C) {
  for (int64_t r = r0; r < r1; r++) {
    float* o = out + r * C;
    for (int c = 0; c < C; c++) o[c] += bias[c];
  }
}

#if VK_SIMD_X86
VK_TARGET("avx512f") void add_avx512(float* out, const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    const __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
  }
}
VK_TARGET("avx512f") void bias_avx512(float* out, const float* bias, int64_t r0, int64_t r1,
                                                    int C) {
  const int tail = C % 16, Cv = C - tail;
  const __mmask16 k = (__mmask16)((1u << tail) - 1u);
  for (int64_t r = r0; r < r1; r++) {
    float* o = out + r * C;
    for (int c = 0; c < Cv; c += 16)
      _mm512_storeu_ps(o + c, _mm512_add_ps(_mm512_loadu_ps(o + c), _mm512_loadu_ps(bias + c)));
    if (tail)
      _mm512_mask_storeu_ps(o + Cv, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, o + Cv), _mm512_maskz_loadu_ps(k, bias + Cv)));
  }
}
VK_TARGET("avx2") void add_avx2(float* out, const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++) out[i] = a[i] + b[i];
}
VK_TARGET("avx2") void bias_avx2(float* out, const float* bias, int64_t r0, int64_t r1, int C) {
  for (int64_t r = r0; r < r1; r++) {
    float* o = out + r * C;
    int c = 0;
    for (; c + 8 <= C; c += 8)
      _mm256_storeu_ps(o + c, _mm256_add_ps(_mm256_loadu_ps(o + c), _mm256_loadu_ps(bias + c)));
    for (; c < C; c++) o[c] += bias[c];
  }
}
#endif

#if VK_NEON
void add_neon(float* out, const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    vst1q_f32(out + i, vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    vst1q_f32(out + i + 4, vaddq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4)));
  }
  for (; i < n; i++) out[i] = a[i] + b[i];
}
void bias_neon(float* out, const float* bias, int64_t r0, int64_t r1, int C) {
  for (int64_t r = r0; r < r1; r++) {
    float* o = out + r * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) vst1q_f32(o + c, vaddq_f32(vld1q_f32(o + c), vld1q_f32(bias + c)));
    for (; c < C; c++) o[c] += bias[c];
  }
}
#endif

using AddFn = void (*)(float*, const float*, const float*, int64_t);
using BiasFn = void (*)(float*, const float*, int64_t, int64_t, int);

AddFn pick_add() {
#if VK_SIMD_X86
  if (isa() == kAvx512) return add_avx512;
  if (isa() == kAvx2) return add_avx2;
#elif VK_NEON
  if (isa() == kNeon) return add_neon;
#endif
  return add_portable;
}
BiasFn pick_bias() {
#if VK_SIMD_X86
  if (isa() == kAvx512) return bias_avx512;
  if (isa() == kAvx2) return bias_avx2;
#elif VK_NEON
  if (isa() == kNeon) return bias_neon;
#endif
  return bias_portable;
}

}  // namespace

void add_forward(float* out, const float* a, const float* b, int64_t n) {
  static const AddFn fn = pick_add();
  parallel_for((n + 15) / 16, [&](int64_t b0, int64_t b1) {
    const int64_t i0 = b0 * 16, i1 = std::min<int64_t>(b1 * 16, n);
    fn(out + i0, a + i0, b + i0, i1 - i0);
  }, 1024);
}

void bias_add(float* out, const float* bias, int64_t R, int C) {
  static const BiasFn fn = pick_bias();
  parallel_for(R, [&](int64_t r0, int64_t r1) { fn(out, bias, r0, r1, C); }, 16);
}

void bias_backward(float* dbias, const float* dout, int64_t R, int C) {
  constexpr int CB = 64;
  parallel_for((C + CB - 1) / CB, [&](int64_t b0, int64_t b1) {
    double s[CB];
    for (int64_t blk = b0; blk < b1; blk++) {
      const int c0 = (int)blk * CB, nc = std::min(CB, C - c0);
      for (int j = 0; j < nc; j++) s[j] = 0.0;
      for (int64_t r = 0; r < R; r++) {
        const float* d = dout + r * C + c0;
        for (int j = 0; j < nc; j++) s[j] += d[j];
      }
      for (int j = 0; j < nc; j++) dbias[c0 + j] += (float)s[j];
    }
  }, 1);
}

}  // namespace vk
