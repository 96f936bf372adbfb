// Node-API glue: the thin native surface. Arguments are validated in TypeScript
// (src/backend/native.ts); here we only check buffer lengths so that a bad call throws a JS
// error instead of touching memory it does not own.
#include <napi.h>

#include <string>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace {

using Napi::CallbackInfo;
using Napi::Value;

struct Args {
  const CallbackInfo& info;
  const char* fn;

  [[noreturn]] void fail(size_t i, const std::string& msg) const {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " " + msg);
  }
  // a Float32Array holding at least `need` elements (or null when nullable)
  float* f32(size_t i, int64_t need, bool nullable = false) const {
    Napi::Value v = info[i];
    if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(i, "must be a Float32Array");
    auto a = v.As<Napi::Float32Array>();
    if ((int64_t)a.ElementLength() < need)
      fail(i, "has " + std::to_string(a.ElementLength()) + " elements, expected at least " + std::to_string(need));
    return a.Data();
  }
  int64_t i64(size_t i) const {
    if (!info[i].IsNumber()) fail(i, "must be a number");
    double d = info[i].As<Napi::Number>().DoubleValue();
    if (d < 0 || d != (double)(int64_t)d) fail(i, "must be a non-negative integer");
    return (int64_t)d;
  }
  int i32(size_t i) const { return (int)i64(i); }
  float f(size_t i) const {
    if (!info[i].IsNumber()) fail(i, "must be a number");
    return info[i].As<Napi::Number>().FloatValue();
  }
  bool b(size_t i) const { return info[i].ToBoolean().Value(); }
};

Value SetThreads(const CallbackInfo& info) {
  Args a{info, "setThreads"};
  vk::set_threads(a.i32(0));
  return info.Env().Undefined();
}
Value GetThreads(const CallbackInfo& info) { return Napi::Number::New(info.Env(), vk::get_threads()); }
Value GemmIsa(const CallbackInfo& info) { return Napi::String::New(info.Env(), vk::gemm_isa()); }
// fmaPeak(threads, seconds) -> GFLOP/s
Value FmaPeak(const CallbackInfo& info) {
  Args a{info, "fmaPeak"};
  return Napi::Number::New(info.Env(), vk::fma_peak_gflops(a.i32(0), a.f(1)));
}

// gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
Value Gemm(const CallbackInfo& info) {
  Args a{info, "gemm"};
  bool ta = a.b(0), tb = a.b(1);
  int M = a.i32(2), N = a.i32(3), K = a.i32(4);
  float alpha = a.f(5);
  int lda = a.i32(7), ldb = a.i32(9), ldc = a.i32(12);
  float beta = a.f(10);
  int64_t needA = ta ? (K ? (int64_t)(K - 1) * lda + M : 0) : (M ? (int64_t)(M - 1) * lda + K : 0);
  int64_t needB = tb ? (N ? (int64_t)(N - 1) * ldb + K : 0) : (K ? (int64_t)(K - 1) * ldb + N : 0);
  int64_t needC = M ? (int64_t)(M - 1) * ldc + N : 0;
  const float* A = a.f32(6, needA);
  const float* B = a.f32(8, needB);
  float* C = a.f32(11, needC);
  vk::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return info.Env().Undefined();
}

// linearForward(out, inp, weight, bias|null, M, N, K, accumulate, act)  act: -1 none, 0 gelu, 1 gelu_tanh
Value LinearForward(const CallbackInfo& info) {
  Args a{info, "linearForward"};
  int M = a.i32(4), N = a.i32(5), K = a.i32(6);
  bool acc = a.b(7);
  if (!info[8].IsNumber()) a.fail(8, "must be a number");
  int act = info[8].As<Napi::Number>().Int32Value();
  if (act < -1 || act > 1 || (acc && act != -1)) a.fail(8, "must be -1 (none), 0 (gelu) or 1 (gelu_tanh), and -1 with accumulate");
  vk::linear_forward(a.f32(0, (int64_t)M * N), a.f32(1, (int64_t)M * K), a.f32(2, (int64_t)N * K), a.f32(3, N, true),
                     M, N, K, acc, act);
  return info.Env().Undefined();
}
// layernormForward(out, mean|null, rstd|null, inp, weight, bias, R, C, eps)
Value LayerNormForward(const CallbackInfo& info) {
  Args a{info, "layernormForward"};
  int64_t R = a.i64(6);
  int C = a.i32(7);
  vk::layernorm_forward(a.f32(0, R * C), a.f32(1, R, true), a.f32(2, R, true), a.f32(3, R * C),
                        a.f32(4, C), a.f32(5, C), R, C, a.f(8));
  return info.Env().Undefined();
}
// layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, R, C)
Value LayerNormBackward(const CallbackInfo& info) {
  Args a{info, "layernormBackward"};
  int64_t R = a.i64(8);
  int C = a.i32(9);
  vk::layernorm_backward(a.f32(0, R * C), a.f32(1, C), a.f32(2, C), a.f32(3, R * C), a.f32(4, R * C),
                         a.f32(5, C), a.f32(6, R), a.f32(7, R), R, C);
  return info.Env().Undefined();
}
// geluForward(out, inp, n, approx)
Value GeluForward(const CallbackInfo& info) {
  Args a{info, "geluForward"};
  int64_t n = a.i64(2);
  vk::gelu_forward(a.f32(0, n), a.f32(1, n), n, a.i32(3));
  return info.Env().Undefined();
}
// geluBackward(dinp, inp, dout, n, approx)
Value GeluBackward(const CallbackInfo& info) {
  Args a{info, "geluBackward"};
  int64_t n = a.i64(3);
  vk::gelu_backward(a.f32(0, n), a.f32(1, n), a.f32(2, n), n, a.i32(4));
  return info.Env().Undefined();
}
// softmaxForward(out, inp, R, C)
Value SoftmaxForward(const CallbackInfo& info) {
  Args a{info, "softmaxForward"};
  int64_t R = a.i64(2);
  int C = a.i32(3);
  vk::softmax_forward(a.f32(0, R * C), a.f32(1, R * C), R, C);
  return info.Env().Undefined();
}
// softmaxBackward(dinp, out, dout, R, C)
Value SoftmaxBackward(const CallbackInfo& info) {
  Args a{info, "softmaxBackward"};
  int64_t R = a.i64(3);
  int C = a.i32(4);
  vk::softmax_backward(a.f32(0, R * C), a.f32(1, R * C), a.f32(2, R * C), R, C);
  return info.Env().Undefined();
}
// attentionForward(out, probs|null, qkv, B, N, NH, HD, scale)
Value AttentionForward(const CallbackInfo& info) {
  Args a{info, "attentionForward"};
  int B = a.i32(3), N = a.i32(4), NH = a.i32(5), HD = a.i32(6);
  int64_t BND = (int64_t)B * N * NH * HD;
  vk::attention_forward(a.f32(0, BND), a.f32(1, (int64_t)B * NH * N * N, true), a.f32(2, 3 * BND), B, N,
                        NH, HD, a.f(7));
  return info.Env().Undefined();
}
// attentionBackward(dqkv, dout, qkv, probs, B, N, NH, HD, scale)
Value AttentionBackward(const CallbackInfo& info) {
  Args a{info, "attentionBackward"};
  int B = a.i32(4), N = a.i32(5), NH = a.i32(6), HD = a.i32(7);
  int64_t BND = (int64_t)B * N * NH * HD;
  vk::attention_backward(a.f32(0, 3 * BND), a.f32(1, BND), a.f32(2, 3 * BND), a.f32(3, (int64_t)B * NH * N * N),
                         B, N, NH, HD, a.f(8));
  return info.Env().Undefined();
}
// im2colPatches(cols, inp, B, C, H, W, P)
Value Im2colPatches(const CallbackInfo& info) {
  Args a{info, "im2colPatches"};
  int B = a.i32(2), C = a.i32(3), H = a.i32(4), W = a.i32(5), P = a.i32(6);
  if (P <= 0 || H % P || W % P) a.fail(6, "patch size must divide H and W");
  int64_t n = (int64_t)B * C * H * W;
  vk::im2col_patches(a.f32(0, n), a.f32(1, n), B, C, H, W, P);
  return info.Env().Undefined();
}
// col2imPatches(dinp, dcols, B, C, H, W, P)
Value Col2imPatches(const CallbackInfo& info) {
  Args a{info, "col2imPatches"};
  int B = a.i32(2), C = a.i32(3), H = a.i32(4), W = a.i32(5), P = a.i32(6);
  if (P <= 0 || H % P || W % P) a.fail(6, "patch size must divide H and W");
  int64_t n = (int64_t)B * C * H * W;
  vk::col2im_patches(a.f32(0, n), a.f32(1, n), B, C, H, W, P);
  return info.Env().Undefined();
}
// add(out, a, b, n)
Value Add(const CallbackInfo& info) {
  Args a{info, "add"};
  int64_t n = a.i64(3);
  vk::add_forward(a.f32(0, n), a.f32(1, n), a.f32(2, n), n);
  return info.Env().Undefined();
}
// biasAdd(out, bias, R, C)
Value BiasAdd(const CallbackInfo& info) {
  Args a{info, "biasAdd"};
  int64_t R = a.i64(2);
  int C = a.i32(3);
  vk::bias_add(a.f32(0, R * C), a.f32(1, C), R, C);
  return info.Env().Undefined();
}
// biasBackward(dbias, dout, R, C)
Value BiasBackward(const CallbackInfo& info) {
  Args a{info, "biasBackward"};
  int64_t R = a.i64(2);
  int C = a.i32(3);
  vk::bias_backward(a.f32(0, C), a.f32(1, R * C), R, C);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto set = [&](const char* name, Napi::Function::Callback fn) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  set("setThreads", SetThreads);
  set("getThreads", GetThreads);
  set("gemmIsa", GemmIsa);
  set("fmaPeak", FmaPeak);
  set("gemm", Gemm);
  set("linearForward", LinearForward);
  set("layernormForward", LayerNormForward);
  set("layernormBackward", LayerNormBackward);
  set("geluForward", GeluForward);
  set("geluBackward", GeluBackward);
  set("softmaxForward", SoftmaxForward);
  set("softmaxBackward", SoftmaxBackward);
  set("attentionForward", AttentionForward);
  set("attentionBackward", AttentionBackward);
  set("im2colPatches", Im2colPatches);
  set("col2imPatches", Col2imPatches);
  set("add", Add);
  set("biasAdd", BiasAdd);
  set("biasBackward", BiasBackward);
  return exports;
}

}  // namespace

NODE_API_MODULE(vitkit, Init)
