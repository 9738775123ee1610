#include "hanul/generate/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace hanul {

namespace {

bool higher(const TokenCandidate& a, const TokenCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

Candidates Candidates::from_logits(std::span<const float> logits) {
  Candidates c;
  c.data.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == -INFINITY || std::isnan(logits[i])) continue;
    c.data.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
  }
  return c;
}

void Candidates::sort() {
  if (sorted) return;
  std::sort(data.begin(), data.end(), higher);
  sorted = true;
}

void Candidates::softmax() {
  sort();
  if (data.empty()) return;
  // Accumulate in double: with 128k candidates a float sum loses the tail's mass.
  const double max_logit = data[0].logit;
  double sum = 0.0;
  for (auto& t : data) sum += std::exp(double(t.logit) - max_logit);
  for (auto& t : data) t.p = float(std::exp(double(t.logit) - max_logit) / sum);
}

namespace sampling {

void logit_bias(Candidates& c, const std::map<int32_t, float>& bias) {
  if (bias.empty()) return;
  for (auto& t : c.data) {
    auto it = bias.find(t.id);
    if (it != bias.end()) t.logit += it->second;
  }
  // A bias of -inf bans a token: drop it so later filters never count it.
  std::erase_if(c.data, [](const TokenCandidate& t) { return t.logit == -INFINITY; });
  c.sorted = false;
}

void penalties(Candidates& c, std::span<const int32_t> recent, float repeat, float freq,
               float presence) {
  if (recent.empty() || (repeat == 1.0f && freq == 0.0f && presence == 0.0f)) return;
  std::unordered_map<int32_t, int> count;
  for (int32_t id : recent) ++count[id];
  for (auto& t : c.data) {
    auto it = count.find(t.id);
    if (it == count.end()) continue;
    // Dividing a negative logit would raise it; llama.cpp and transformers' repetition
    // penalty multiply those instead.
    if (t.logit <= 0) {
      t.logit *= repeat;
    } else {
      t.logit /= repeat;
    }
    t.logit -= float(it->second) * freq + float(it->second > 0) * presence;
  }
  c.sorted = false;
}

void top_k(Candidates& c, int32_t k, size_t min_keep) {
  if (k <= 0) return;
  size_t keep = std::max(size_t(k), min_keep);
  if (keep >= c.data.size()) return;
  if (!c.sorted) {
    std::partial_sort(c.data.begin(), c.data.begin() + keep, c.data.end(), higher);
  }
  c.data.resize(keep);
  c.sorted = true;
}

void typical(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.data.empty()) return;
  c.softmax();
  double entropy = 0.0;
  for (const auto& t : c.data) {
    if (t.p > 0) entropy -= double(t.p) * std::log(double(t.p));
  }
  std::vector<double> shifted(c.data.size());
  for (size_t i = 0; i < c.data.size(); ++i) {
    shifted[i] = std::fabs(-std::log(double(c.data[i].p)) - entropy);
  }
  std::vector<size_t> order(c.data.size());
  std::iota(order.begin(), order.end(), 0);
  // stable: equal scores keep the logit order, so runs are reproducible.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return shifted[a] < shifted[b]; });
  double cum = 0.0;
  size_t last = order.size();
  for (size_t i = 0; i < order.size(); ++i) {
    cum += c.data[order[i]].p;
    // llama.cpp: stop once the mass *exceeds* p (top-p stops at >= p).
    if (cum > p && i + 1 >= min_keep) {
      last = i + 1;
      break;
    }
  }
  std::vector<TokenCandidate> kept;
  kept.reserve(last);
  for (size_t i = 0; i < last; ++i) kept.push_back(c.data[order[i]]);
  c.data = std::move(kept);
  c.sorted = false;
}

void top_p(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.data.empty()) return;
  c.softmax();
  double cum = 0.0;
  size_t last = c.data.size();
  for (size_t i = 0; i < c.data.size(); ++i) {
    cum += c.data[i].p;
    if (cum >= p && i + 1 >= min_keep) {
      last = i + 1;
      break;
    }
  }
  c.data.resize(last);
}

void min_p(Candidates& c, float p, size_t min_keep) {
  if (p <= 0.0f || c.data.empty()) return;
  c.sort();
  // p_i >= p * p_max  <=>  logit_i >= logit_max + log(p), as llama.cpp compares.
  const float min_logit = c.data[0].logit + std::log(p);
  size_t i = 1;
  for (; i < c.data.size(); ++i) {
    if (c.data[i].logit < min_logit && i >= min_keep) break;
  }
  c.data.resize(i);
}

void temperature(Candidates& c, float t) {
  if (c.data.empty()) return;
  if (t <= 0.0f) {
    c.sort();
    c.data.resize(1);
    return;
  }
  for (auto& x : c.data) x.logit /= t;
}

int32_t draw(Candidates& c, double u) {
  if (c.data.empty()) return -1;
  c.softmax();
  double cum = 0.0;
  const double target = u;
  for (const auto& t : c.data) {
    cum += t.p;
    if (target < cum) return t.id;
  }
  return c.data.back().id;  // u rounding past the float sum of p
}

}  // namespace sampling

Sampler::Sampler(SamplerParams params) : params_(std::move(params)), rng_(params_.seed) {}

Candidates Sampler::filter(std::span<const float> logits, std::span<const int32_t> history) const {
  const SamplerParams& P = params_;
  Candidates c = Candidates::from_logits(logits);
  sampling::logit_bias(c, P.logit_bias);
  if (P.repeat_last_n != 0) {
    size_t n = P.repeat_last_n < 0 ? history.size()
                                   : std::min(history.size(), size_t(P.repeat_last_n));
    sampling::penalties(c, history.subspan(history.size() - n), P.repeat_penalty,
                        P.frequency_penalty, P.presence_penalty);
  }
  if (P.temperature <= 0.0f) {
    // Greedy: the filters below all keep the highest logit, so skip them.
    sampling::temperature(c, 0.0f);
    return c;
  }
  sampling::top_k(c, P.top_k, P.min_keep);
  sampling::typical(c, P.typical_p, P.min_keep);
  sampling::top_p(c, P.top_p, P.min_keep);
  sampling::min_p(c, P.min_p, P.min_keep);
  sampling::temperature(c, P.temperature);
  return c;
}

double Sampler::uniform() {
  // 53 bits from two 32-bit draws: the same on every platform, unlike
  // std::uniform_real_distribution whose algorithm the standard leaves open.
  uint64_t a = rng_() >> 5, b = rng_() >> 6;  // 27 + 26 bits
  return (double(a) * 67108864.0 + double(b)) / 9007199254740992.0;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  Candidates c = filter(logits, history);
  if (c.data.empty()) return -1;
  if (c.data.size() == 1) return c.data[0].id;
  return sampling::draw(c, uniform());
}

}  // namespace hanul
