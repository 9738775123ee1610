// Token samplers as llama.cpp and transformers offer them, applied in one stated order.
//
// The chain is llama.cpp's default (common/sampling.cpp, common_sampler_init: logit bias is
// added to the chain before the configurable samplers, whose default order is penalties, dry,
// top-k, typical, top-p, min-p, xtc, temperature, then dist):
//
//   logit bias -> penalties -> top-k -> typical -> top-p -> min-p -> temperature -> sample
//
// Each filter keeps at least min_keep candidates (llama.cpp's min_keep; transformers'
// min_tokens_to_keep). temperature <= 0 is greedy: the argmax after bias and penalties.
//
//   Sampler s({.temperature = 0.7f, .top_p = 0.9f, .seed = 42});
//   int32_t id = s.sample(logits, history);   // history: prompt + generated ids so far
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <vector>

namespace hanul {

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float typical_p = 1.0f;       // >= 1: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;   // how many recent ids the penalties look at; -1: all, 0: off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  std::map<int32_t, float> logit_bias;  // id -> added to its logit (-INFINITY bans it)
  uint32_t seed = 0;
  size_t min_keep = 1;
};

// One candidate of the distribution being filtered. p is valid after softmax().
struct TokenCandidate {
  int32_t id;
  float logit;
  float p;
};

// The candidates left after the filters so far. `sorted`: by logit, descending, ties by id.
struct Candidates {
  std::vector<TokenCandidate> data;
  bool sorted = false;

  // Every id of logits, dropping those at -inf (masked by a grammar or a bias).
  static Candidates from_logits(std::span<const float> logits);
  void sort();     // by logit descending; equal logits by ascending id, so runs are reproducible
  void softmax();  // sorts, then fills p (sums to 1 over data)
};

// The filters one by one, so they can be used and tested alone. Each mirrors the llama.cpp
// sampler of the same name (src/llama-sampling.cpp); differences are noted where they are.
namespace sampling {

void logit_bias(Candidates& c, const std::map<int32_t, float>& bias);
// Repetition (CTRL paper, with llama.cpp / transformers' fix for negative logits: divide a
// positive logit by `repeat`, multiply a non-positive one), then OpenAI's frequency/presence
// penalties: logit -= count * freq + (count > 0) * presence. `recent`: the ids looked at.
void penalties(Candidates& c, std::span<const int32_t> recent, float repeat, float freq,
               float presence);
// Keeps the k highest logits, exactly k even when the k-th logit ties with the next ones (as
// llama.cpp; transformers' TopKLogitsWarper keeps every tie). Ties break toward the lower id.
void top_k(Candidates& c, int32_t k, size_t min_keep);
// Locally typical sampling (Meister et al. 2022): keep the tokens whose -log p is closest to
// the entropy until their mass exceeds p.
void typical(Candidates& c, float p, size_t min_keep);
// Nucleus: the smallest prefix (by probability) whose mass is >= p.
void top_p(Candidates& c, float p, size_t min_keep);
// Keeps the tokens with p >= min_p * p_max.
void min_p(Candidates& c, float p, size_t min_keep);
// Divides logits by t; t <= 0 keeps only the highest logit (llama.cpp's temp sampler).
void temperature(Candidates& c, float t);
// Draws from softmax(logits) with u uniform in [0, 1).
int32_t draw(Candidates& c, double u);

}  // namespace sampling

class Sampler {
 public:
  explicit Sampler(SamplerParams params = {});

  // The next id for these logits (n_vocab floats) given the ids so far (prompt and generated;
  // the penalties look at the last repeat_last_n of them). Returns -1 only when every logit
  // is -inf. Same params and seed -> same sequence of draws.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // The candidates that survive the filters, before the draw (for tests and logprobs).
  Candidates filter(std::span<const float> logits, std::span<const int32_t> history) const;

  void reseed(uint32_t seed) { rng_.seed(seed); }
  const SamplerParams& params() const { return params_; }

 private:
  double uniform();  // [0, 1) with 53 random bits

  SamplerParams params_;
  std::mt19937 rng_;
};

}  // namespace hanul
