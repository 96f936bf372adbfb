// Compiler and CPU portability in one place: GCC / Clang (Linux, macOS, MinGW) and MSVC.
//
//   VK_X86            1 when x86-64 SIMD code is compiled (x86-64 and not VITKIT_NO_X86)
//   VK_TARGET(isa)    per-function ISA on GCC/Clang (__attribute__((target))); empty on MSVC,
//                     which compiles any intrinsic in any function
//   VK_TARGET_INLINE(isa)  the same, force-inlined
//   vk::cpu_has_avx2_fma(), vk::cpu_has_avx512f()  run-time CPU (and OS state-saving) checks
//   vk::prefetch(p), vk::cpu_relax(), vk::aligned_malloc / aligned_free
//
// VITKIT_NO_X86 (a build switch, e.g. -DVITKIT_NO_X86) compiles every x86 path out, leaving the
// portable code an ARM build runs: the kernel tests then check the portable path on x86.
#pragma once
#include <cstddef>
#include <cstdlib>
#if defined(_WIN32)
#include <malloc.h>  // _aligned_malloc
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(VITKIT_NO_X86)
#define VK_X86 1
#include <immintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif
#else
#define VK_X86 0
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define VK_MSVC 1
#define VK_TARGET(isa)
#define VK_TARGET_INLINE(isa) __forceinline
#define VK_RESTRICT __restrict
#else
#define VK_MSVC 0
#define VK_TARGET(isa) __attribute__((target(isa)))
#define VK_TARGET_INLINE(isa) __attribute__((target(isa), always_inline)) inline
#define VK_RESTRICT __restrict__
#endif

namespace vk {

#if VK_X86
#if VK_MSVC
namespace detail {
inline bool cpuid_bit(int leaf, int sub, int reg, int bit) {
  int r[4];
  __cpuidex(r, leaf, sub);
  return (r[reg] >> bit) & 1;
}
// the OS saves the given XCR0 state bits (XMM|YMM = 0x6, + opmask|ZMM = 0xe0)
inline bool os_saves(unsigned long long mask) {
  if (!cpuid_bit(1, 0, 2, 27)) return false;  // OSXSAVE
  return (_xgetbv(0) & mask) == mask;
}
}  // namespace detail
inline bool cpu_has_avx2_fma() {
  return detail::cpuid_bit(1, 0, 2, 12) /* FMA */ && detail::cpuid_bit(7, 0, 1, 5) /* AVX2 */ &&
         detail::os_saves(0x6);
}
inline bool cpu_has_avx512f() {
  return cpu_has_avx2_fma() && detail::cpuid_bit(7, 0, 1, 16) /* AVX512F */ && detail::os_saves(0xe6);
}
#else
// GCC and Clang check the OS's XSAVE state for these features too
inline bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
inline bool cpu_has_avx512f() { return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f"); }
#endif
#else
inline bool cpu_has_avx2_fma() { return false; }
inline bool cpu_has_avx512f() { return false; }
#endif

inline void prefetch(const void* p) {
#if VK_MSVC
#if VK_X86
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
#else
  (void)p;
#endif
#else
  __builtin_prefetch(p, 0, 2);
#endif
}

inline void cpu_relax() {
#if VK_X86
  _mm_pause();
#elif defined(__aarch64__) && !VK_MSVC
  asm volatile("yield");
#elif defined(_M_ARM64)
  __yield();
#endif
}

// 64-byte (or any power-of-two) aligned allocation; nullptr on failure
inline void* aligned_malloc(size_t align, size_t bytes) {
#if defined(_WIN32)
  return _aligned_malloc(bytes, align);
#else
  bytes = (bytes + align - 1) / align * align;  // std::aligned_alloc wants a multiple of align
  return std::aligned_alloc(align, bytes);
#endif
}
inline void aligned_free(void* p) {
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

}  // namespace vk
