// hanul's side of bench_train_pytorch.py: times train_step (forward + backward +
// clip + AdamW, float32) of a randomly initialised Llama of a given shape on
// random token ids, and prints one JSON line: tokens/s and peak RSS.
//   train_bench --dim 288 --layers 6 --heads 6 --ffn 768 --vocab 32000 --seq 256 --batch 8
//               [--tied 1] [--steps 3] [--warmup 1] [-t 2] [--profile 1] [--bf16 1]
// --bf16 1: the GEMM's products in bf16 (cpu::MatmulPrecision::kBf16, float32 weights,
// gradients and AdamW state as always); refused where the CPU has no AVX512_BF16.
// --profile 1: where a step's time goes — train_step.cpp's phase timing
// (HANUL_TRAIN_PROFILE, pointed at a file in the temp directory) for the timed
// steps, averaged, as a table on stderr and "profile_s" (seconds a step) in the JSON.
#include <sys/resource.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/train/train_step.h"

using namespace hanul;

namespace {

// The "name": seconds pairs of the "seconds" object of each line train_step.cpp
// wrote, lines from `skip` on, summed; the order of the first line kept.
std::vector<std::pair<std::string, double>> read_profile(const std::string& path, int skip, int* lines) {
  std::vector<std::pair<std::string, double>> sums;
  std::ifstream in(path);
  std::string line;
  *lines = 0;
  for (int i = 0; std::getline(in, line); ++i) {
    if (i < skip) continue;
    ++*lines;
    size_t pos = line.find("{\"seconds\": {");
    if (pos == std::string::npos) continue;
    pos += 13;
    size_t slot = 0;
    for (;;) {
      const size_t q0 = line.find('"', pos);
      if (q0 == std::string::npos) break;
      const size_t q1 = line.find('"', q0 + 1);
      const std::string name = line.substr(q0 + 1, q1 - q0 - 1);
      const double v = std::strtod(line.c_str() + q1 + 2, nullptr);
      if (slot == sums.size()) sums.emplace_back(name, 0.0);
      sums[slot++].second += v;
      pos = line.find_first_of(",}", q1 + 2);
      if (pos == std::string::npos || line[pos] == '}') {
        // the end of "seconds": then "total"
        const size_t t = line.find("\"total\": ", pos);
        if (t != std::string::npos) {
          if (slot == sums.size()) sums.emplace_back("total", 0.0);
          sums[slot++].second += std::strtod(line.c_str() + t + 9, nullptr);
        }
        break;
      }
    }
  }
  return sums;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t dim = 288, layers = 6, heads = 6, ffn = 768, vocab = 32000, seq = 256, batch = 8;
  int steps = 3, warmup = 1, threads = 2, tied = 1, profile = 0, bf16 = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long long v = std::atoll(argv[i + 1]);
    if (a == "--dim") dim = v;
    else if (a == "--layers") layers = v;
    else if (a == "--heads") heads = v;
    else if (a == "--ffn") ffn = v;
    else if (a == "--vocab") vocab = v;
    else if (a == "--seq") seq = v;
    else if (a == "--batch") batch = v;
    else if (a == "--steps") steps = static_cast<int>(v);
    else if (a == "--warmup") warmup = static_cast<int>(v);
    else if (a == "--tied") tied = static_cast<int>(v);
    else if (a == "-t") threads = static_cast<int>(v);
    else if (a == "--profile") profile = static_cast<int>(v);
    else if (a == "--bf16") bf16 = static_cast<int>(v);
    else {
      std::fprintf(stderr, "train_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (bf16 && !cpu::set_matmul_precision(cpu::MatmulPrecision::kBf16)) {
    std::fprintf(stderr, "train_bench: --bf16 1 needs AVX512_BF16, which this CPU (%s) lacks\n",
                 cpu::isa_name(cpu::active_isa()));
    return 1;
  }
  ModelConfig c;
  c.n_vocab = vocab;
  c.n_embd = dim;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_head_kv = heads;
  c.head_dim = dim / heads;
  c.n_ff = ffn;
  c.n_ctx_train = seq;
  c.tie_embeddings = tied != 0;
  auto model = TrainableModel::init_random(c, 1, 0.02f);
  if (!model.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", model.message().c_str());
    return 1;
  }
  // Before the first train_step, which reads the variable once.
  const std::string profile_path =
      (std::filesystem::temp_directory_path() /
       ("hanul_train_bench_profile." + std::to_string(getpid()) + ".jsonl"))
          .string();
  if (profile) {
    std::remove(profile_path.c_str());
    setenv("HANUL_TRAIN_PROFILE", profile_path.c_str(), 1);
  }
  set_default_threads(threads);
  ThreadPool* pool = &default_pool();
  std::mt19937 rng(7);
  std::vector<int32_t> ids(static_cast<size_t>(batch * (seq + 1)));
  AdamWParams hp;
  hp.lr = 1e-4;
  hp.weight_decay = 0.1;
  double seconds = 0;
  float loss = 0;
  for (int s = 0; s < warmup + steps; ++s) {
    for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    const auto t0 = std::chrono::steady_clock::now();
    auto r = train_step(*model, {ids, batch, seq + 1}, hp, 1.0f, 1, pool);
    const auto t1 = std::chrono::steady_clock::now();
    if (!r.ok()) {
      std::fprintf(stderr, "train_bench: %s\n", r.message().c_str());
      return 1;
    }
    loss = r->loss;
    if (s >= warmup) seconds += std::chrono::duration<double>(t1 - t0).count();
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double tokens = static_cast<double>(steps) * static_cast<double>(batch * seq);
  std::string profile_json;
  if (profile) {
    int lines = 0;
    auto sums = read_profile(profile_path, warmup, &lines);
    std::remove(profile_path.c_str());
    double total = 0;
    for (const auto& [name, s] : sums)
      if (name == "total") total = s;
    std::fprintf(stderr, "phase             s/step   share\n");
    profile_json = ", \"profile_s\": {";
    for (size_t i = 0; i < sums.size(); ++i) {
      const double per = lines ? sums[i].second / lines : 0;
      std::fprintf(stderr, "%-16s %7.4f  %5.1f%%\n", sums[i].first.c_str(), per,
                   total > 0 ? 100 * sums[i].second / total : 0.0);
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s\"%s\": %.4f", i ? ", " : "", sums[i].first.c_str(), per);
      profile_json += buf;
    }
    profile_json += "}";
  }
  std::printf("{\"impl\": \"hanul\", \"params\": %lld, \"threads\": %d, \"steps\": %d, \"tokens_per_s\": %.1f, "
              "\"s_per_step\": %.4f, \"peak_rss_mb\": %.1f, \"last_loss\": %.4f%s}\n",
              static_cast<long long>(model->n_params()), threads, steps, tokens / seconds, seconds / steps,
              static_cast<double>(ru.ru_maxrss) / 1024.0, loss, profile_json.c_str());
  return 0;
}
