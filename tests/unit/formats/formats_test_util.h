// Helpers shared by the formats tests: temp paths, raw file bytes, random tensors.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "hanul/tensor/tensor.h"

namespace hanul::testing_util {

// A path in the temp dir unique to this process (tests may run in parallel under ctest).
inline std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("hanul_formats_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A tensor of the given shape filled with seeded random bytes (any bit pattern is a valid
// payload for the file formats, which never interpret the data).
inline Tensor make_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                          uint32_t seed) {
  Tensor t = Tensor::allocate(std::move(name), dtype, std::move(shape));
  std::mt19937 rng(seed);
  auto* p = static_cast<uint8_t*>(t.mutable_data());
  for (int64_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  return t;
}

}  // namespace hanul::testing_util
