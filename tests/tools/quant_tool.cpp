// quant_tool: the bridge from tests/reference/check_quants.py to hanul's
// quantize_row / dequantize_row. Files are raw little-endian arrays.
//   quant_tool quantize   TYPE in.f32 out.bin   (float32 -> TYPE blocks)
//   quant_tool dequantize TYPE in.bin out.f32   (TYPE blocks -> float32)
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "hanul/tensor/dtype.h"
#include "hanul/tensor/quantize.h"

namespace {

bool read_file(const char* path, std::vector<char>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

bool write_file(const char* path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  return static_cast<bool>(f);
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "quant_tool: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return fail("usage: quant_tool quantize|dequantize TYPE IN OUT");
  const std::string mode = argv[1];
  auto type = hanul::dtype_from_name(argv[2]);
  if (!type) return fail(std::string("unknown type ") + argv[2]);
  const auto info = *hanul::dtype_info(*type);
  std::vector<char> in;
  if (!read_file(argv[3], &in)) return fail(std::string("cannot read ") + argv[3]);

  if (mode == "quantize") {
    const int64_t n = static_cast<int64_t>(in.size() / sizeof(float));
    if (n % info.block_size != 0) return fail("element count is not a multiple of the block");
    std::vector<char> out(static_cast<size_t>(hanul::row_bytes(*type, n)));
    auto st = hanul::quantize_row(*type, reinterpret_cast<const float*>(in.data()), out.data(), n);
    if (!st.ok()) return fail(st.message());
    return write_file(argv[4], out.data(), out.size()) ? 0 : fail("cannot write output");
  }
  if (mode == "dequantize") {
    if (in.size() % static_cast<size_t>(info.type_size) != 0)
      return fail("input is not a whole number of blocks");
    const int64_t n = static_cast<int64_t>(in.size()) / info.type_size * info.block_size;
    std::vector<float> out(static_cast<size_t>(n));
    // std::vector<char> storage is new'd, so aligned enough for every block type.
    auto st = hanul::dequantize_row(*type, in.data(), out.data(), n);
    if (!st.ok()) return fail(st.message());
    return write_file(argv[4], out.data(), out.size() * sizeof(float)) ? 0 : fail("cannot write");
  }
  return fail("unknown mode " + mode);
}
