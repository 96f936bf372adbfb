// Patch embedding as im2col: a Conv2d with kernel = stride = P becomes cols @ weight^T, where
// weight (D, C, P, P) is read as (D, C*P*P).
#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

void im2col_patches(float* cols, const float* inp, int B, int C, int H, int W, int P) {
  const int GH = H / P, GW = W / P, KK = C * P * P;
  parallel_for((int64_t)B * GH, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int b = (int)(r / GH), gy = (int)(r % GH);
      for (int gx = 0; gx < GW; gx++) {
        float* col = cols + ((int64_t)b * GH * GW + (int64_t)gy * GW + gx) * KK;
        for (int c = 0; c < C; c++)
          for (int ky = 0; ky < P; ky++) {
            const float* src = inp + (((int64_t)b * C + c) * H + gy * P + ky) * W + gx * P;
            float* dst = col + (c * P + ky) * P;
            for (int kx = 0; kx < P; kx++) dst[kx] = src[kx];
          }
      }
    }
  });
}

void col2im_patches(float* dinp, const float* dcols, int B, int C, int H, int W, int P) {
  const int GH = H / P, GW = W / P, KK = C * P * P;
  parallel_for((int64_t)B * GH, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int b = (int)(r / GH), gy = (int)(r % GH);
      for (int gx = 0; gx < GW; gx++) {
        const float* col = dcols + ((int64_t)b * GH * GW + (int64_t)gy * GW + gx) * KK;
        for (int c = 0; c < C; c++)
          for (int ky = 0; ky < P; ky++) {
            float* dst = dinp + (((int64_t)b * C + c) * H + gy * P + ky) * W + gx * P;
            const float* src = col + (c * P + ky) * P;
            for (int kx = 0; kx < P; kx++) dst[kx] += src[kx];
          }
      }
    }
  });
}

}  // namespace vk
