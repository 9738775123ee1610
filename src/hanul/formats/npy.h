// NumPy .npy (format version 1.0): float32 arrays for --logits and --dump,
// the form the Python reference scripts read directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hanul/base/result.h"

namespace hanul {

// Writes a little-endian float32 array of the given shape (C order), atomically.
Status write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// Reads a float32 (<f4, C order) .npy written by us or by numpy.
Result<std::vector<float>> read_npy_f32(const std::string& path, std::vector<int64_t>* shape);

}  // namespace hanul
