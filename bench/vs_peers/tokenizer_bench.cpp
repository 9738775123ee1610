// Encode throughput of one tokenizer on a text file, single thread: every
// line is encoded on its own (as HF tokenizers' encode_batch of the lines
// does), the timing covers encode only (the file is read and split first).
// Prints one JSON line: MB/s of the best of --repeat runs, the token count
// and an FNV-1a checksum of all ids, so that the driver
// (bench/vs_peers/tokenizer_bench.py) can check both sides gave the same ids.
//
//   tokenizer_bench tokenizer.json text.txt [repeat]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hanul/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tokenizer_bench TOKENIZER TEXT [repeat]\n");
    return 2;
  }
  const int repeat = argc > 3 ? std::atoi(argv[3]) : 3;
  auto tok = hanul::Tokenizer::load(argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", tok.message().c_str());
    return 1;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    lines.emplace_back(text.data() + pos, e - pos);
    pos = e + 1;
  }
  double best = 1e30;
  uint64_t checksum = 0;
  size_t tokens = 0;
  for (int r = 0; r < repeat; ++r) {
    uint64_t h = 1469598103934665603ull;
    size_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::string_view line : lines) {
      const std::vector<int32_t> ids = tok->encode(line, false, true);
      n += ids.size();
      for (int32_t id : ids) h = (h ^ static_cast<uint32_t>(id)) * 1099511628211ull;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    checksum = h;
    tokens = n;
  }
  std::printf("{\"mb_s\": %.3f, \"seconds\": %.4f, \"bytes\": %zu, \"lines\": %zu, \"tokens\": %zu, "
              "\"checksum\": %llu}\n",
              static_cast<double>(text.size()) / 1e6 / best, best, text.size(), lines.size(), tokens,
              static_cast<unsigned long long>(checksum));
  return 0;
}
