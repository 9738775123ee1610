// Shared helpers for the tokenizer tests: fixture paths and llama.cpp's
// .inp/.out vector files (tests/test-tokenizer-0.cpp format).
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace hanul::testing {

inline std::string tokenizer_fixture(const std::string& name) {
  return std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct VectorCase {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: cases separated by "\n__ggml_vocab_test__\n" (the file ends with it);
// .out: one line of space-separated ids per case.
inline std::vector<VectorCase> read_vectors(const std::string& inp_path, const std::string& out_path) {
  const std::string inp = read_all(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VectorCase> cases;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t e = inp.find(sep, pos);
    if (e == std::string::npos) break;
    cases.push_back({inp.substr(pos, e - pos), {}});
    pos = e + sep.size();
  }
  std::ifstream out(out_path);
  std::string line;
  for (size_t i = 0; i < cases.size() && std::getline(out, line); ++i) {
    std::istringstream ls(line);
    int32_t id;
    while (ls >> id) cases[i].ids.push_back(id);
  }
  return cases;
}

}  // namespace hanul::testing
