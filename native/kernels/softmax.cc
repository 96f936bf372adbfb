// Row softmax with max subtraction. A row holding NaN gives NaN; a row of all -inf gives NaN (as torch).
#include <cmath>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

void softmax_row(float* out, const float* inp, int C) {
  float m = -INFINITY;
  for (int i = 0; i < C; i++) m = (inp[i] > m || std::isnan(inp[i])) ? inp[i] : m;
  float s = 0.f;
  for (int i = 0; i < C; i++) {
    const float e = std::exp(inp[i] - m);
    out[i] = e;
    s += e;
  }
  const float inv = 1.f / s;
  for (int i = 0; i < C; i++) out[i] *= inv;
}

void softmax_forward(float* out, const float* inp, int64_t R, int C) {
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) softmax_row(out + r * C, inp + r * C, C);
  }, 8);
}

}  // namespace vk
