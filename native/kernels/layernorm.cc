// LayerNorm over the last dim, as torch.nn.functional.layer_norm (biased variance, eps inside sqrt).
#include <cmath>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t R, int C, float eps) {
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* x = inp + r * C;
      double s = 0;
      for (int i = 0; i < C; i++) s += x[i];
      const float m = (float)(s / C);
      double v = 0;
      for (int i = 0; i < C; i++) {
        const double d = (double)x[i] - m;
        v += d * d;
      }
      const float rs = (float)(1.0 / std::sqrt(v / C + (double)eps));
      float* o = out + r * C;
      for (int i = 0; i < C; i++) o[i] = (x[i] - m) * rs * weight[i] + bias[i];
      if (mean) mean[r] = m;
      if (rstd) rstd[r] = rs;
    }
  }, 16);
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t R, int C) {
  // dinp rows are independent; dweight/dbias are reduced over rows afterwards (serially per column
  // block) so that the result does not depend on the thread count.
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* x = inp + r * C;
      const float* g = dout + r * C;
      const float m = mean[r], rs = rstd[r];
      double sg = 0, sgx = 0;
      for (int i = 0; i < C; i++) {
        const float xh = (x[i] - m) * rs;
        const float gw = g[i] * weight[i];
        sg += gw;
        sgx += (double)gw * xh;
      }
      const float mg = (float)(sg / C), mgx = (float)(sgx / C);
      float* d = dinp + r * C;
      for (int i = 0; i < C; i++) {
        const float xh = (x[i] - m) * rs;
        d[i] += (g[i] * weight[i] - mg - xh * mgx) * rs;
      }
    }
  }, 16);
  parallel_for(C, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      double dw = 0, db = 0;
      for (int64_t r = 0; r < R; r++) {
        const float g = dout[r * C + c];
        dw += (double)g * ((inp[r * C + c] - mean[r]) * rstd[r]);
        db += g;
      }
      dweight[c] += (float)dw;
      dbias[c] += (float)db;
    }
  }, 8);
}

}  // namespace vk
