// Compiler and CPU portability in one place: GCC / Clang (Linux, macOS, MinGW) and MSVC.
//
//   VK_X86            1 when x86-64 SIMD code is compiled (x86-64 and not VITKIT_NO_X86)
//   VK_NEON           1 when AArch64 NEON code is compiled (AArch64 and not VITKIT_NO_NEON)
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
#include <intrin.h>  // __cpuidex, _xgetbv
#else
#include <cpuid.h>  // __get_cpuid_max, __cpuid_count (GCC, Clang)
#endif
#else
#define VK_X86 0
#endif

// AArch64: NEON (Advanced SIMD) is part of the base ISA, so it needs no run-time CPU check;
// VITKIT_ISA=portable still picks the portable kernels. VITKIT_NO_NEON compiles it out. GCC/Clang
// only (__aarch64__; clang-cl defines it too): MSVC's ARM64 arm_neon.h lacks some of the *_n_
// intrinsics used, so an MSVC ARM64 build keeps the portable kernels.
#if defined(__aarch64__) && !defined(VITKIT_NO_NEON)
#define VK_NEON 1
#include <arm_neon.h>
#else
#define VK_NEON 0
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define VK_MSVC 1
// the kernels carry GCC pragmas (unroll, diagnostic) that MSVC ignores: no C4068 for each
#pragma warning(disable : 4068)
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
// CPUID and XGETBV directly (no __builtin_cpu_supports: that reads libgcc's __cpu_model, which
// musl / zig / compiler-rt toolchains lack). A feature counts only when the CPU has it AND the
// OS saves its register state on a context switch (XCR0), else its instructions fault.
namespace detail {
// regs = {eax, ebx, ecx, edx} of CPUID(leaf, sub); all zero for a leaf above the maximum
inline void cpuid(unsigned leaf, unsigned sub, unsigned regs[4]) {
  regs[0] = regs[1] = regs[2] = regs[3] = 0;
#if VK_MSVC
  int r[4];
  __cpuidex(r, 0, 0);
  if ((unsigned)r[0] < leaf) return;
  __cpuidex(r, (int)leaf, (int)sub);
  for (int i = 0; i < 4; i++) regs[i] = (unsigned)r[i];
#else
  if (__get_cpuid_max(0, nullptr) < leaf) return;
  __cpuid_count(leaf, sub, regs[0], regs[1], regs[2], regs[3]);
#endif
}
inline bool bit(unsigned reg, int b) { return (reg >> b) & 1u; }
// XCR0, the OS-enabled state components; 0 unless the OS has set CR4.OSXSAVE (CPUID.1:ECX[27])
inline unsigned long long xcr0() {
  unsigned r[4];
  cpuid(1, 0, r);
  if (!bit(r[2], 27)) return 0;
#if VK_MSVC
  return _xgetbv(0);
#else
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));  // no -mxsave needed, unlike _xgetbv
  return ((unsigned long long)hi << 32) | lo;
#endif
}
constexpr unsigned long long kXcr0Avx = 0x6;      // XMM (bit 1) | YMM (bit 2)
constexpr unsigned long long kXcr0Avx512 = 0xe6;  // + opmask (5) | ZMM_Hi256 (6) | Hi16_ZMM (7)
inline bool os_saves(unsigned long long mask) { return (xcr0() & mask) == mask; }
}  // namespace detail

// AVX + AVX2 + FMA, with the OS saving YMM state
inline bool cpu_has_avx2_fma() {
  unsigned l1[4], l7[4];
  detail::cpuid(1, 0, l1);
  detail::cpuid(7, 0, l7);
  return detail::bit(l1[2], 28) /* AVX */ && detail::bit(l1[2], 12) /* FMA */ &&
         detail::bit(l7[1], 5) /* AVX2 */ && detail::os_saves(detail::kXcr0Avx);
}
// the above + AVX-512F, with the OS saving opmask and ZMM state
inline bool cpu_has_avx512f() {
  unsigned l7[4];
  detail::cpuid(7, 0, l7);
  return cpu_has_avx2_fma() && detail::bit(l7[1], 16) /* AVX512F */ &&
         detail::os_saves(detail::kXcr0Avx512);
}
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
