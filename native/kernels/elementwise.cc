#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

void add_forward(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = a[i] + b[i];
  }, 16384);
}

void bias_add(float* out, const float* bias, int64_t R, int C) {
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      float* o = out + r * C;
      for (int c = 0; c < C; c++) o[c] += bias[c];
    }
  }, 16);
}

void bias_backward(float* dbias, const float* dout, int64_t R, int C) {
  parallel_for(C, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      double s = 0;
      for (int64_t r = 0; r < R; r++) s += dout[r * C + c];
      dbias[c] += (float)s;
    }
  }, 16);
}

}  // namespace vk
