#include "hanul/formats/npy.h"

#include <cstring>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "hanul/base/mapped_file.h"

namespace hanul {

Status write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims = shape.size() == 1 ? fmt::format("{},", shape[0]) : fmt::format("{}", fmt::join(shape, ", "));
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims);
  // magic (6) + version (2) + header length (2) + header + '\n', padded to 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * sizeof(float));
  return write_file_atomic(path, out);
}

Result<std::vector<float>> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  HANUL_ASSIGN_OR_RETURN(auto f, MappedFile::open(path));
  const uint8_t* p = f->data();
  size_t size = f->size();
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) return Error{fmt::format("{}: not a .npy file", path)};
  size_t hlen = p[6] == 1 ? (p[8] | (p[9] << 8)) : 0;
  size_t start = 10;
  if (p[6] >= 2) {
    if (size < 12) return Error{fmt::format("{}: truncated header", path)};
    hlen = p[8] | (p[9] << 8) | (static_cast<size_t>(p[10]) << 16) | (static_cast<size_t>(p[11]) << 24);
    start = 12;
  }
  if (start + hlen > size) return Error{fmt::format("{}: header runs past the end", path)};
  std::string header(reinterpret_cast<const char*>(p + start), hlen);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    return Error{fmt::format("{}: only C-order float32 (<f4) arrays are supported", path)};
  size_t a = header.find("'shape': (");
  size_t b = a == std::string::npos ? a : header.find(')', a);
  if (b == std::string::npos) return Error{fmt::format("{}: no shape in header", path)};
  std::vector<int64_t> dims;
  int64_t n = 1;
  std::string inner = header.substr(a + 10, b - a - 10);
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
    if (i >= inner.size()) break;
    int64_t d = 0;
    size_t j = i;
    while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') {
      d = d * 10 + (inner[j] - '0');
      if (d > (int64_t{1} << 40)) return Error{fmt::format("{}: absurd dimension", path)};
      ++j;
    }
    if (j == i) return Error{fmt::format("{}: bad shape '{}'", path, inner)};
    dims.push_back(d);
    n *= d;
    if (n > (int64_t{1} << 40)) return Error{fmt::format("{}: absurd size", path)};
    i = j;
  }
  size_t data_start = start + hlen;
  if (data_start + static_cast<size_t>(n) * 4 > size)
    return Error{fmt::format("{}: data is shorter than shape {} needs", path, inner)};
  std::vector<float> out(static_cast<size_t>(n));
  std::memcpy(out.data(), p + data_start, out.size() * 4);
  if (shape) *shape = dims;
  return out;
}

}  // namespace hanul
