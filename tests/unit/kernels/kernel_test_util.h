// Helpers shared by the kernel tests: uniform random floats, and running a
// test body once per instruction set the machine has (capping the dispatch
// with cpu::set_max_isa, then lifting the cap).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "hanul/kernels/cpu/ops.h"

namespace hanul {

inline std::vector<float> random_floats(std::mt19937& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// body() or body(cpu::Isa), once per instruction set from scalar up to the detected one.
template <class F>
void for_each_isa(F body) {
  for (int i = 0; i <= static_cast<int>(cpu::detected_isa()); ++i) {
    const auto isa = static_cast<cpu::Isa>(i);
    SCOPED_TRACE(cpu::isa_name(isa));
    cpu::set_max_isa(isa);
    if constexpr (std::is_invocable_v<F, cpu::Isa>)
      body(isa);
    else
      body();
  }
  cpu::set_max_isa(cpu::Isa::kAvx512);
}

}  // namespace hanul
