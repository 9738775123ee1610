// Token ids for the train tests: a fixed LCG, so batches are the same on every
// platform and standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hanul::testing {

inline std::vector<int32_t> random_ids(int64_t n, int64_t n_vocab, uint32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint32_t s = seed;
  for (int32_t& id : ids) {
    s = s * 1664525u + 1013904223u;
    id = static_cast<int32_t>((s >> 8) % static_cast<uint32_t>(n_vocab));
  }
  return ids;
}

}  // namespace hanul::testing
