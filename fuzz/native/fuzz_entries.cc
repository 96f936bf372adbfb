// libFuzzer target on the native boundary: the argument validation of every addon entry
// (native/entries.h, the same code addon.cc runs under N-API) and, when it accepts, the kernels,
// fed arbitrary dimensions, scalars and buffer lengths. Each buffer is its own allocation of
// exactly the length the input chose, so AddressSanitizer reports any read or write past what the
// validation let through; UBSan (no recovery) any overflow or bad shift; libFuzzer's malloc and
// RSS limits any scratch allocation that the dimensions blow up.
//
// Input: byte 0 picks the entry, byte 1 the thread count (1..4); then each argument the entry
// reads takes bytes in order (missing bytes read as 0):
//   number   1 byte s: s < 0x80 -> s; s < 0xf0 -> kSpecial[(s - 0x80) % n]; else 8 more bytes, a raw double
//   bool     1 byte, bit 0
//   buffer   1 byte s: 0 absent (null), 1 exactly the length needed, 2 one short, 3 one more, 4 empty,
//            else a length given by a number (as above; capped at kMaxLen); then 1 byte: the fill
//            (0 zeros, 1 small values, 2 with NaN / Inf / huge / subnormal)
// Rejected calls (what the addon turns into a JS RangeError / TypeError) return normally.
//   build and run: fuzz/native/run.sh [seconds]  (npm run fuzz:native)
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "entries.h"

namespace {

struct Rejected {};

// floats per buffer (1 MiB): also bounds the work of an accepted call (a GEMM's M N K <= 2^27)
constexpr int64_t kMaxLen = int64_t(1) << 18;

const double kSpecial[] = {
    -1, -0.5, 0.5, 1.5, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 197, 255, 256, 257,
    511, 512, 513, 1023, 1024, 1025, 4095, 4096, 65535, 65536, 46340, 46341, 1 << 20,
    2147483647.0, 2147483648.0, 4294967295.0, 4294967296.0, 9007199254740991.0, 9007199254740992.0,
    1e300, -1e300, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
    std::numeric_limits<double>::quiet_NaN(), 3e-39, 1e-45, -0.0};

struct FuzzArgs : vk::entry::ArgChecks<FuzzArgs> {
  const uint8_t* p;
  size_t n;
  std::vector<void*> owned;

  FuzzArgs(const uint8_t* d, size_t sz, const char* f) : ArgChecks(f), p(d), n(sz) {}
  ~FuzzArgs() {
    for (void* q : owned) std::free(q);
  }
  uint8_t byte() {
    if (!n) return 0;
    n--;
    return *p++;
  }
  double raw_number() {
    const uint8_t s = byte();
    if (s < 0x80) return s;
    if (s < 0xf0) return kSpecial[(s - 0x80) % (sizeof kSpecial / sizeof kSpecial[0])];
    uint8_t b[8];
    for (auto& x : b) x = byte();
    double d;
    std::memcpy(&d, b, 8);
    return d;
  }

  [[noreturn]] void fail(size_t, const char*, const std::string&) { throw Rejected{}; }
  [[noreturn]] void reject(const std::string&) { throw Rejected{}; }
  double number(size_t, const char*) { return raw_number(); }
  float f(size_t i, const char* name) { return (float)number(i, name); }
  bool b(size_t, const char*, bool = false) { return byte() & 1; }
  float* f32(size_t, const char*, int64_t need, bool nullable = false) {
    const uint8_t s = byte();
    int64_t len;
    switch (s) {
      case 0:
        if (nullable) return nullptr;
        throw Rejected{};  // "must be a Float32Array"
      case 1: len = need; break;
      case 2: len = need - 1; break;
      case 3: len = need + 1; break;
      case 4: len = 0; break;
      default: {
        const double d = raw_number();
        len = d >= 0 && d <= (double)kMaxLen ? (int64_t)d : kMaxLen;
      }
    }
    if (len < 0 || len > kMaxLen) len = kMaxLen;  // a typed array this harness can afford
    if (len < need) throw Rejected{};             // "has L elements, expected at least need"
    // exactly len floats (1 byte for 0, so the pointer is unique and not dereferenceable)
    float* buf = static_cast<float*>(std::malloc(len ? (size_t)len * sizeof(float) : 1));
    if (!buf) throw std::bad_alloc();
    owned.push_back(buf);
    const uint8_t fill = byte() % 3;
    uint32_t x = 0x9e3779b9u ^ (uint32_t)len;
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 3e38f, -3e38f, 1e-40f, 0.f, -0.f};
    for (int64_t i = 0; i < len; i++) {
      x = x * 1664525u + 1013904223u;
      if (fill == 0) buf[i] = 0.f;
      else if (fill == 1 || (x >> 29) != 0) buf[i] = ((float)(x >> 8) / 16777216.f - 0.5f) * 4.f;
      else buf[i] = specials[(x >> 8) % 8];
    }
    return buf;
  }
};

using Entry = void (*)(FuzzArgs&);
struct Named {
  const char* name;
  Entry fn;
};
const Named kEntries[] = {
    {"gemm", vk::entry::gemm<FuzzArgs>},
    {"linearForward", vk::entry::linear_forward<FuzzArgs>},
    {"layernormForward", vk::entry::layernorm_forward<FuzzArgs>},
    {"layernormBackward", vk::entry::layernorm_backward<FuzzArgs>},
    {"geluForward", vk::entry::gelu_forward<FuzzArgs>},
    {"geluBackward", vk::entry::gelu_backward<FuzzArgs>},
    {"softmaxForward", vk::entry::softmax_forward<FuzzArgs>},
    {"softmaxBackward", vk::entry::softmax_backward<FuzzArgs>},
    {"attentionForward", vk::entry::attention_forward<FuzzArgs>},
    {"attentionBackward", vk::entry::attention_backward<FuzzArgs>},
    {"im2colPatches", vk::entry::im2col_patches<FuzzArgs>},
    {"col2imPatches", vk::entry::col2im_patches<FuzzArgs>},
    {"add", vk::entry::add<FuzzArgs>},
    {"biasAdd", vk::entry::bias_add<FuzzArgs>},
    {"biasBackward", vk::entry::bias_backward<FuzzArgs>},
};
constexpr size_t kNumEntries = sizeof kEntries / sizeof kEntries[0];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Named& e = kEntries[data[0] % kNumEntries];
  vk::set_threads(1 + data[1] % 4);
  FuzzArgs a(data + 2, size - 2, e.name);
  try {
    e.fn(a);
  } catch (const Rejected&) {
  } catch (const std::bad_alloc&) {  // the addon reports it as "out of memory"
  }
  return 0;
}
