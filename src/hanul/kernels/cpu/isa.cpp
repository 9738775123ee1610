// Which instruction set the CPU kernels use: detected once, cappable for tests.
#include <algorithm>
#include <atomic>

#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {
namespace {

Isa detect() {
#if defined(HANUL_X86)
  __builtin_cpu_init();
  // The AVX-512 table also uses the 256-bit VNNI forms (vpdpbusd on ymm), which need VL.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return Isa::kAvx2;
#endif
  return Isa::kScalar;
}

std::atomic<int> g_cap{static_cast<int>(Isa::kAvx512)};

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() {
  return static_cast<Isa>(std::min(static_cast<int>(detected_isa()), g_cap.load(std::memory_order_relaxed)));
}

void set_max_isa(Isa isa) { g_cap.store(static_cast<int>(isa), std::memory_order_relaxed); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

namespace simd {
const Kernels& kernels() {
  switch (active_isa()) {
#if defined(HANUL_X86)
    case Isa::kAvx512: return kAvx512;
    case Isa::kAvx2: return kAvx2;
#endif
    default: return kScalar;
  }
}
}  // namespace simd

}  // namespace hanul::cpu
