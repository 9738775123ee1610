// hanul's side of bench/vs_peers/bench_llama_cpp.py: the same two figures that
// llama.cpp's llama-bench prints, measured the same way (examples/llama-bench):
//   pp N  — one forward pass over a prompt of N tokens into an empty cache;
//   tg N  — N single-token forward passes, one after another, into an empty cache.
// Each figure is tokens / second over `-r` repetitions after one warm-up run,
// printed as mean and standard deviation. Token ids are arbitrary (random with
// a fixed seed): the speed of a forward pass does not depend on them.
//
//   hanul_bench -m model.gguf -p 128 -n 64 -t 2 -r 3
// prints lines like
//   pp128 t=2 1234.5 +- 6.7 tok/s
//   tg64 t=2 56.7 +- 0.8 tok/s
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/model/kv_cache.h"
#include "hanul/model/llama.h"
#include "hanul/model/weights.h"

namespace hanul {
namespace {

struct Args {
  std::string model;
  int n_prompt = 128, n_gen = 64, threads = 2, reps = 3;
};

int usage(const char* msg) {
  std::fprintf(stderr, "hanul_bench: %s\nusage: hanul_bench -m MODEL [-p 128] [-n 64] [-t 2] [-r 3]\n", msg);
  return 2;
}

using Clock = std::chrono::steady_clock;

// Seconds for one pp run (n_gen == 0) or one tg run (n_prompt == 0).
Result<double> run_once(Llama& llama, const ModelConfig& cfg, int n_prompt, int n_gen, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(cfg.n_vocab - 1));
  KvCache cache(cfg, 1, n_prompt + n_gen);
  std::vector<float> logits;
  const auto t0 = Clock::now();
  if (n_prompt > 0) {
    SeqTokens s{0, {}, false};
    for (int i = 0; i < n_prompt; ++i) s.tokens.push_back(tok(rng));
    if (Status st = llama.forward({&s, 1}, cache, logits); !st.ok()) return st;
  }
  for (int i = 0; i < n_gen; ++i) {
    SeqTokens s{0, {tok(rng)}, false};
    if (Status st = llama.forward({&s, 1}, cache, logits); !st.ok()) return st;
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int bench(const Args& a) {
  auto model = load_model(a.model);
  if (!model.ok()) return usage(model.message().c_str());
  const ModelConfig& cfg = (*model)->config;
  ThreadPool pool(a.threads);
  Llama llama(*model, &pool);
  std::mt19937 rng(1234);
  struct Test { const char* name; int n_prompt, n_gen; };
  for (const Test& t : {Test{"pp", a.n_prompt, 0}, Test{"tg", 0, a.n_gen}}) {
    const int n = t.n_prompt + t.n_gen;
    if (n == 0) continue;
    std::vector<double> tps;
    for (int r = 0; r < a.reps + 1; ++r) {  // run 0 warms caches and page faults
      auto sec = run_once(llama, cfg, t.n_prompt, t.n_gen, rng);
      if (!sec.ok()) return usage(sec.message().c_str());
      if (r > 0) tps.push_back(n / *sec);
    }
    double mean = 0, var = 0;
    for (double v : tps) mean += v;
    mean /= tps.size();
    for (double v : tps) var += (v - mean) * (v - mean);
    const double sd = tps.size() > 1 ? std::sqrt(var / (tps.size() - 1)) : 0.0;
    std::printf("%s%d t=%d %.2f +- %.2f tok/s\n", t.name, n, a.threads, mean, sd);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace hanul

int main(int argc, char** argv) {
  hanul::Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (i + 1 >= argc) return hanul::usage(("flag " + f + " needs a value").c_str());
    const char* v = argv[++i];
    if (f == "-m") a.model = v;
    else if (f == "-p") a.n_prompt = std::atoi(v);
    else if (f == "-n") a.n_gen = std::atoi(v);
    else if (f == "-t") a.threads = std::atoi(v);
    else if (f == "-r") a.reps = std::atoi(v);
    else return hanul::usage(("unknown flag " + f).c_str());
  }
  if (a.model.empty()) return hanul::usage("-m MODEL is required");
  if (a.n_prompt < 0 || a.n_gen < 0 || a.threads < 1 || a.reps < 1) return hanul::usage("bad number");
  return hanul::bench(a);
}
