#include "hanul/train/train_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numbers>
#include <span>

#include <fmt/core.h>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul {
namespace {

// splitmix64 (Steele, Lea & Flood 2014) and Box-Muller: seeded normal numbers
// that do not depend on the standard library's distributions, which differ
// between implementations.
class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]: log is finite
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }

 private:
  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// Optional phase timing. With HANUL_TRAIN_PROFILE=<file> set, the phases of
// accumulate and apply_step add their wall time to a process-wide table, and each
// apply_step appends one JSON line to <file> with the seconds since the previous one
// (bench/vs_peers/train_bench --profile prints it as a table). Unset, a phase costs
// the test of one pointer.
enum Phase : int {
  kEmbed, kNorm, kMatmulFwd, kOutputFwd, kRope, kAttention, kResidual, kSwiglu, kCrossEntropy,
  kOutputBwd, kMatmulBwd, kAttentionBwd, kRopeBwd, kNormBwd, kSwigluBwd, kEmbedBwd, kZero,
  kClip, kAdamw, kNPhases
};
constexpr const char* kPhaseNames[kNPhases] = {
    "embedding", "rmsnorm", "matmul_fwd", "output_fwd", "rope", "attention", "residual_add",
    "swiglu", "cross_entropy", "output_bwd", "matmul_bwd", "attention_bwd", "rope_bwd",
    "rmsnorm_bwd", "swiglu_bwd", "embedding_bwd", "zero_fill", "clip_grad_norm", "adamw_zero_grad"};

struct PhaseClock {
  const char* path = nullptr;
  double seconds[kNPhases] = {};
  bool running = false;
  std::chrono::steady_clock::time_point begin;  // of the first accumulate since the last line
};

PhaseClock* phase_clock() {
  static PhaseClock* clock = [] {
    const char* path = std::getenv("HANUL_TRAIN_PROFILE");
    if (!path || !*path) return static_cast<PhaseClock*>(nullptr);
    auto* pc = new PhaseClock;  // lives for the process, like the environment it reads
    pc->path = path;
    return pc;
  }();
  return clock;
}

template <class Fn>
void timed(Phase ph, Fn&& fn) {
  PhaseClock* c = phase_clock();
  if (!c) {
    fn();
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!c->running) {  // a phase outside accumulate (apply_step alone) starts the line too
    c->begin = t0;
    c->running = true;
  }
  fn();
  c->seconds[ph] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Appends the line of one optimizer step and starts the next; "other" is the step's
// time outside every phase (allocation, copies, the batch checks).
void write_phase_line() {
  PhaseClock* c = phase_clock();
  if (!c || !c->running) return;
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - c->begin).count();
  double sum = 0;
  std::string line = "{\"seconds\": {";
  for (int i = 0; i < kNPhases; ++i) {
    line += fmt::format("\"{}\": {:.6f}, ", kPhaseNames[i], c->seconds[i]);
    sum += c->seconds[i];
    c->seconds[i] = 0;
  }
  line += fmt::format("\"other\": {:.6f}}}, \"total\": {:.6f}}}\n", total - sum, total);
  c->running = false;
  if (FILE* out = std::fopen(c->path, "a")) {
    std::fputs(line.c_str(), out);
    std::fclose(out);
  }
}

// The trainable slots of for_each_tensor: all but rope_freqs (a constant of the
// rope scaling) and the output projection when it is the embedding (tied).
bool is_trainable(const ModelConfig& c, const TensorSlot& s) {
  if (s.tensor == nullptr || s.hf_name.empty()) return false;  // rope_freqs has no HF name
  if (s.gguf_name == "output.weight" && c.tie_embeddings) return false;
  return true;
}

bool is_norm_weight(const std::string& gguf_name) {
  return gguf_name.find("norm.weight") != std::string::npos;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor f32_view(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  Tensor t;
  t.name = name;
  t.dtype = DType::F32;
  t.shape = shape;
  t.data = data;
  return t;
}

const float* f(const Tensor& t) { return static_cast<const float*>(t.data); }
float* g(const Tensor& t) { return static_cast<float*>(const_cast<void*>(t.data)); }

// The activations of one layer that its backward reads (shapes for N = B·T rows).
// The cheap elementwise ones are not kept but recomputed by the backward with the
// same kernels (so with the same bits): attn_norm(x_in), ffn_norm(x_mid) and
// silu(gate)·up would cost 2·n_embd + n_ff floats a token a layer.
struct LayerActs {
  std::vector<float> x_in;   // (N, n_embd) residual stream entering the layer
  std::vector<float> q;      // (N, n_head, head_dim) after rope
  std::vector<float> k;      // (N, n_head_kv, head_dim) after rope
  std::vector<float> v;      // (N, n_head_kv, head_dim)
  std::vector<float> att;    // (N, n_head, head_dim) attention output
  std::vector<float> x_mid;  // (N, n_embd) residual stream after attention
  std::vector<float> gate;   // (N, n_ff)
  std::vector<float> up;     // (N, n_ff)
};

Status check_batch(const TokenBatch& b, int64_t n_vocab) {
  if (b.n_rows <= 0 || b.n_cols < 2)
    return Error{fmt::format("train: a batch needs at least 1 row of 2 tokens, got {} x {}", b.n_rows, b.n_cols)};
  if (static_cast<int64_t>(b.ids.size()) != b.n_rows * b.n_cols)
    return Error{fmt::format("train: batch of {} x {} holds {} ids", b.n_rows, b.n_cols, b.ids.size())};
  // Every column but the last is an input (an id of the vocabulary); the last is
  // only a target and may be kIgnoreIndex (a masked position).
  for (int64_t r = 0; r < b.n_rows; ++r)
    for (int64_t c = 0; c < b.n_cols; ++c) {
      const int32_t id = b.ids[static_cast<size_t>(r * b.n_cols + c)];
      if (id >= 0 && id < n_vocab) continue;
      if (id == kIgnoreIndex && c == b.n_cols - 1) continue;
      return Error{fmt::format("train: token id {} at row {} column {} is outside the vocabulary (0..{}){}", id,
                               r, c, n_vocab - 1, id == kIgnoreIndex ? " and is an input, so it cannot be masked" : "")};
    }
  return Status::Ok();
}

}  // namespace

// The buffers of accumulate(), reused across steps (sizes only grow).
struct TrainWorkspace {
  std::vector<LayerActs> acts;
  std::vector<float> x_final, xf, dxf, dx;
  // The logits, then their gradient, then (dead after the output projection's
  // backward) the layers' scratch gradients carved from the same memory.
  std::vector<float> big;
  std::vector<int32_t> positions, targets, inputs;
};

// --- construction ----------------------------------------------------------------------

void TrainableModel::bind() {
  std::map<std::string, Param*> by_name;
  for (Param& p : params_) by_name[p.gguf_name] = &p;
  values_ = Weights{};
  grads_ = Weights{};
  Weights* both[2] = {&values_, &grads_};
  for (int which = 0; which < 2; ++which)
    for_each_tensor(config_, *both[which], [&](TensorSlot& s) {
      auto it = by_name.find(s.gguf_name);
      if (it == by_name.end()) return;
      const Param& p = *it->second;
      *s.tensor = f32_view(s.gguf_name, p.shape, which == 0 ? p.value.data() : p.grad.data());
    });
  // Tied: the output projection IS the embedding, so its gradient adds into the
  // embedding's (transformers' tie_weights shares one Parameter).
  if (config_.tie_embeddings) {
    values_.output = values_.token_embd;
    grads_.output = grads_.token_embd;
  }
  if (!rope_freqs_.empty())
    values_.rope_freqs = f32_view("rope_freqs.weight", {static_cast<int64_t>(rope_freqs_.size())}, rope_freqs_.data());
  inv_freq_ = rope_inv_freq(config_, rope_freqs_.empty() ? nullptr : rope_freqs_.data());
}

Result<TrainableModel> TrainableModel::init_random(const ModelConfig& cfg, uint64_t seed, float std) {
  HANUL_TRY(cfg.validate());
  TrainableModel m;
  m.config_ = cfg;
  NormalRng rng(seed);
  Weights scratch;
  for_each_tensor(cfg, scratch, [&](TensorSlot& s) {
    if (!is_trainable(cfg, s)) return;
    Param p{s.gguf_name, s.hf_name, s.shape, {}, {}, {}, {}};
    const int64_t n = numel(s.shape);
    p.value.resize(static_cast<size_t>(n));
    if (is_norm_weight(s.gguf_name)) {
      std::fill(p.value.begin(), p.value.end(), 1.0f);
    } else if (s.shape.size() == 1) {
      std::fill(p.value.begin(), p.value.end(), 0.0f);  // biases
    } else {
      for (float& x : p.value) x = static_cast<float>(rng.normal() * std);
    }
    p.grad.assign(static_cast<size_t>(n), 0.0f);
    p.m.assign(static_cast<size_t>(n), 0.0f);
    p.v.assign(static_cast<size_t>(n), 0.0f);
    m.params_.push_back(std::move(p));
  });
  m.bind();
  return m;
}

Result<TrainableModel> TrainableModel::from_model(const Model& model) {
  TrainableModel m;
  m.config_ = model.config;
  HANUL_TRY(m.config_.validate());
  Weights w = model.weights;  // views; for_each_tensor walks a mutable Weights
  Status status;
  for_each_tensor(m.config_, w, [&](TensorSlot& s) {
    if (!status.ok()) return;
    if (s.gguf_name == "rope_freqs.weight") {
      if (s.tensor->data) {
        auto r = to_f32(*s.tensor);
        if (!r.ok()) { status = r.status(); return; }
        m.rope_freqs_.assign(f(*r), f(*r) + r->numel());
      }
      return;
    }
    if (!is_trainable(m.config_, s)) return;
    if (!s.tensor->data) {
      status = Error{fmt::format("train: {}: tensor '{}' is missing", model.path, s.gguf_name)};
      return;
    }
    auto r = to_f32(*s.tensor);
    if (!r.ok()) {
      status = Error{fmt::format("train: {}: tensor '{}': {}", model.path, s.gguf_name, r.message())};
      return;
    }
    // A GGUF llama's Q/K rows rotate adjacent pairs: bring them back to Hugging
    // Face's halves, so a checkpoint (HF names and config) is a correct HF model.
    if (model.config.rope_layout == RopeLayout::kPairs && s.rope_permute_heads > 0)
      *r = permute_qk_rows(*r, s.rope_permute_heads, /*to_gguf=*/false);
    if (r->numel() != numel(s.shape)) {
      status = Error{fmt::format("train: {}: tensor '{}' has {} values, the config implies {}", model.path,
                                 s.gguf_name, r->numel(), numel(s.shape))};
      return;
    }
    Param p{s.gguf_name, s.hf_name, s.shape, std::vector<float>(f(*r), f(*r) + r->numel()), {}, {}, {}};
    p.grad.assign(p.value.size(), 0.0f);
    p.m.assign(p.value.size(), 0.0f);
    p.v.assign(p.value.size(), 0.0f);
    m.params_.push_back(std::move(p));
  });
  HANUL_TRY(status);
  m.config_.rope_layout = RopeLayout::kHalves;
  m.bind();
  return m;
}

Param* TrainableModel::find(const std::string& gguf_name) {
  for (Param& p : params_)
    if (p.gguf_name == gguf_name) return &p;
  return nullptr;
}

int64_t TrainableModel::n_params() const {
  int64_t n = 0;
  for (const Param& p : params_) n += static_cast<int64_t>(p.value.size());
  return n;
}

std::shared_ptr<Model> TrainableModel::as_model() const {
  auto m = std::make_shared<Model>();
  m->config = config_;
  m->weights = values_;
  m->path = "<trainable>";
  m->format = "f32";
  return m;
}

std::vector<Tensor> TrainableModel::tensors(bool hf_names) const {
  std::vector<Tensor> out;
  for (const Param& p : params_) out.push_back(f32_view(hf_names ? p.hf_name : p.gguf_name, p.shape, p.value.data()));
  if (!hf_names && !rope_freqs_.empty())
    out.push_back(f32_view("rope_freqs.weight", {static_cast<int64_t>(rope_freqs_.size())}, rope_freqs_.data()));
  return out;
}

void TrainableModel::zero_grad() {
  for (Param& p : params_) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

// --- forward and backward ----------------------------------------------------------------

namespace {

struct Shape {
  int64_t B, T, N, E, qd, kvd, F, V, hd;
  int n_head, n_head_kv;
};

// cpu::rmsnorm, cpu::swiglu and the residual add take no pool (inference runs them on
// a few rows); a step runs them on every token, so they are split over the pool here.
// Rows and elements are computed independently of where a split falls (swiglu's
// tail does its vector lanes' operations), so the bits are those of one call.
void rmsnorm_split(float* out, const float* x, const float* weight, int64_t rows, int64_t n,
                   float eps, ThreadPool* pool) {
  parallel_for(pool, rows, 32, [&](int64_t r0, int64_t r1) {
    cpu::rmsnorm(out + r0 * n, x + r0 * n, weight, r1 - r0, n, eps);
  });
}
void swiglu_split(float* out, const float* gate, const float* up, int64_t n, ThreadPool* pool) {
  parallel_for(pool, n, 1 << 14, [&](int64_t i0, int64_t i1) {
    cpu::swiglu(out + i0, gate + i0, up + i0, i1 - i0);
  });
}
void add_split(float* x, const float* y, int64_t n, ThreadPool* pool) {
  parallel_for(pool, n, 1 << 14, [&](int64_t i0, int64_t i1) {
    cpu::add(x + i0, x + i0, y + i0, i1 - i0);
  });
}

// Runs fn(b, inner) for the batch's B sequences. With a sequence for every thread, a
// sequence per task in one parallel region, fn's kernel inline (inner = null): one
// region for the batch instead of one per sequence, each with a few head tasks that
// the threads then waited on together (15M step: attention 0.050 -> 0.038 s, its
// backward 0.110 -> 0.082 s). A smaller batch keeps the pool inside each call.
template <class Fn>
void for_each_sequence(int64_t B, ThreadPool* pool, Fn&& fn) {
  if (pool && B >= pool->n_threads()) {
    parallel_for(pool, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) fn(b, nullptr);
    });
  } else {
    for (int64_t b = 0; b < B; ++b) fn(b, pool);
  }
}

}  // namespace

// The forward of model/llama.cpp (Llama::forward) for B sequences of T tokens
// each at positions 0..T-1, op for op with the same kernels; with `acts` it
// keeps what the backward reads. Returns logits (N, V) in `logits`.
static void forward_pass(const ModelConfig& c, const Weights& w, const std::vector<float>& inv_freq,
                         const TokenBatch& batch, ThreadPool* pool, std::vector<LayerActs>* acts,
                         std::vector<float>& x_final, std::vector<float>& xf, std::vector<float>& logits,
                         std::vector<int32_t>& positions) {
  const int64_t B = batch.n_rows, T = batch.n_cols - 1, N = B * T;
  const int64_t E = c.n_embd, hd = c.head_dim, qd = c.n_head * hd, kvd = c.n_head_kv * hd, F = c.n_ff,
                V = c.n_vocab;
  const int n_head = static_cast<int>(c.n_head), n_head_kv = static_cast<int>(c.n_head_kv);
  positions.resize(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) positions[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);

  std::vector<float> x(static_cast<size_t>(N * E));  // (N, n_embd) the residual stream
  timed(kEmbed, [&] {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const int32_t id = batch.ids[static_cast<size_t>(b * batch.n_cols + t)];
        std::memcpy(&x[static_cast<size_t>((b * T + t) * E)], f(w.token_embd) + id * E, sizeof(float) * E);
      }
  });

  LayerActs tmp;  // without `acts`, one set of buffers reused by every layer
  std::vector<float> proj(static_cast<size_t>(N * E));  // (N, n_embd) a block's output
  std::vector<float> xn(static_cast<size_t>(N * E));    // (N, n_embd) attn_norm(x), then ffn_norm(x)
  std::vector<float> act(static_cast<size_t>(N * F));   // (N, n_ff) silu(gate) * up
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w.layers[static_cast<size_t>(il)];
    LayerActs& A = acts ? (*acts)[static_cast<size_t>(il)] : tmp;
    if (acts) A.x_in = x;
    A.q.resize(static_cast<size_t>(N * qd));
    A.k.resize(static_cast<size_t>(N * kvd));
    A.v.resize(static_cast<size_t>(N * kvd));
    A.att.resize(static_cast<size_t>(N * qd));
    A.gate.resize(static_cast<size_t>(N * F));
    A.up.resize(static_cast<size_t>(N * F));

    // Attention block: x = x + Wo · attention(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))
    timed(kNorm, [&] { rmsnorm_split(xn.data(), x.data(), f(L.attn_norm), N, E, c.rms_eps, pool); });
    timed(kMatmulFwd, [&] {
      cpu::matmul(xn.data(), N, E, L.wq.data, DType::F32, qd, L.bq.data ? f(L.bq) : nullptr, A.q.data(), pool);
      cpu::matmul(xn.data(), N, E, L.wk.data, DType::F32, kvd, L.bk.data ? f(L.bk) : nullptr, A.k.data(), pool);
      cpu::matmul(xn.data(), N, E, L.wv.data, DType::F32, kvd, L.bv.data ? f(L.bv) : nullptr, A.v.data(), pool);
    });
    timed(kRope, [&] {
      cpu::rope(A.q.data(), N, n_head, static_cast<int>(hd), positions.data(), inv_freq.data(), c.rope_layout);
      cpu::rope(A.k.data(), N, n_head_kv, static_cast<int>(hd), positions.data(), inv_freq.data(), c.rope_layout);
    });
    timed(kAttention, [&] {
      for_each_sequence(B, pool, [&](int64_t b, ThreadPool* inner) {
        cpu::attention(&A.att[b * T * qd], &A.q[b * T * qd], T, &A.k[b * T * kvd], &A.v[b * T * kvd], T, n_head,
                       n_head_kv, static_cast<int>(hd), 0, scale, inner);
      });
    });
    timed(kMatmulFwd,
          [&] { cpu::matmul(A.att.data(), N, qd, L.wo.data, DType::F32, E, nullptr, proj.data(), pool); });
    timed(kResidual, [&] {
      add_split(x.data(), proj.data(), N * E, pool);
      if (acts) A.x_mid = x;
    });

    // Feed-forward block (SwiGLU): x = x + W_down · (silu(W_gate·n(x)) * W_up·n(x))
    timed(kNorm, [&] { rmsnorm_split(xn.data(), x.data(), f(L.ffn_norm), N, E, c.rms_eps, pool); });
    timed(kMatmulFwd, [&] {
      cpu::matmul(xn.data(), N, E, L.w_gate.data, DType::F32, F, nullptr, A.gate.data(), pool);
      cpu::matmul(xn.data(), N, E, L.w_up.data, DType::F32, F, nullptr, A.up.data(), pool);
    });
    timed(kSwiglu, [&] { swiglu_split(act.data(), A.gate.data(), A.up.data(), N * F, pool); });
    timed(kMatmulFwd,
          [&] { cpu::matmul(act.data(), N, F, L.w_down.data, DType::F32, E, nullptr, proj.data(), pool); });
    timed(kResidual, [&] {
      add_split(x.data(), proj.data(), N * E, pool);
    });
  }
  x_final = std::move(x);
  xf.resize(x_final.size());  // (N, n_embd) output_norm(x_final)
  timed(kNorm, [&] { rmsnorm_split(xf.data(), x_final.data(), f(w.output_norm), N, E, c.rms_eps, pool); });
  logits.resize(static_cast<size_t>(N * V));  // (N, n_vocab)
  timed(kOutputFwd,
        [&] { cpu::matmul(xf.data(), N, E, w.output.data, DType::F32, V, nullptr, logits.data(), pool); });
}

Result<std::vector<float>> TrainableModel::forward(const TokenBatch& batch, ThreadPool* pool) {
  HANUL_TRY(check_batch(batch, config_.n_vocab));
  std::vector<float> x_final, xf, logits;
  std::vector<int32_t> positions;
  forward_pass(config_, values_, inv_freq_, batch, pool, nullptr, x_final, xf, logits, positions);
  return logits;
}

Result<float> TrainableModel::accumulate(const TokenBatch& batch, float loss_scale, ThreadPool* pool) {
  HANUL_TRY(check_batch(batch, config_.n_vocab));
  const ModelConfig& c = config_;
  const Weights& w = values_;
  const Weights& gw = grads_;
  const int64_t B = batch.n_rows, T = batch.n_cols - 1, N = B * T;
  const int64_t E = c.n_embd, hd = c.head_dim, qd = c.n_head * hd, kvd = c.n_head_kv * hd, F = c.n_ff,
                V = c.n_vocab;
  const int n_head = static_cast<int>(c.n_head), n_head_kv = static_cast<int>(c.n_head_kv);

  if (PhaseClock* pc = phase_clock(); pc && !pc->running) {  // the step's line starts here
    pc->begin = std::chrono::steady_clock::now();
    pc->running = true;
  }
  if (!ws_) ws_ = std::make_shared<TrainWorkspace>();
  TrainWorkspace& ws = *ws_;
  ws.acts.resize(static_cast<size_t>(c.n_layer));
  std::vector<LayerActs>& acts = ws.acts;
  std::vector<float>& x_final = ws.x_final;
  std::vector<float>& xf = ws.xf;
  std::vector<float>& logits = ws.big;
  std::vector<int32_t>& positions = ws.positions;
  forward_pass(c, w, inv_freq_, batch, pool, &acts, x_final, xf, logits, positions);

  // Cross-entropy on the next tokens: the target of input (b, t) is ids[b, t + 1].
  std::vector<int32_t>& targets = ws.targets;
  std::vector<int32_t>& inputs = ws.inputs;
  targets.resize(static_cast<size_t>(N));
  inputs.resize(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      targets[static_cast<size_t>(b * T + t)] = batch.ids[static_cast<size_t>(b * batch.n_cols + t + 1)];
      inputs[static_cast<size_t>(b * T + t)] = batch.ids[static_cast<size_t>(b * batch.n_cols + t)];
    }
  // The gradient is written over the logits, which nothing reads again: (N, n_vocab)
  // is the step's largest buffer, and one of it is enough.
  float loss = 0;
  timed(kCrossEntropy,
        [&] { loss = cpu::cross_entropy_in_place(logits.data(), targets.data(), N, V, loss_scale, pool); });
  std::vector<float>& dlogits = logits;  // (N, n_vocab) from here on

  // Backward, in the reverse order of forward_pass. Every *_backward accumulates,
  // so the scratch gradients are zeroed before each use; dx, the gradient of the
  // residual stream, collects both branches of each residual add.
  std::vector<float>& dxf = ws.dxf;  // (N, n_embd)
  dxf.assign(static_cast<size_t>(N * E), 0.0f);
  timed(kOutputBwd, [&] {
    cpu::matmul_backward(dxf.data(), g(gw.output), nullptr, dlogits.data(), xf.data(), f(w.output), N, E, V, pool);
  });
  std::vector<float>& dx = ws.dx;  // (N, n_embd)
  dx.assign(static_cast<size_t>(N * E), 0.0f);
  timed(kNormBwd, [&] {
    cpu::rmsnorm_backward(dx.data(), g(gw.output_norm), dxf.data(), x_final.data(), f(w.output_norm), N, E,
                          c.rms_eps, pool);
  });

  // The layers' scratch lives in the logits' memory, which nothing reads again;
  // every buffer is written (or zeroed) before it is read.
  const int64_t scratch = N * (2 * E + 4 * F + 2 * qd + 2 * kvd);
  if (static_cast<int64_t>(ws.big.size()) < scratch) ws.big.resize(static_cast<size_t>(scratch));
  int64_t used = 0;
  auto carve = [&](int64_t n) {
    std::span<float> s(ws.big.data() + used, static_cast<size_t>(n));
    used += n;
    return s;
  };
  std::span<float> dxn = carve(N * E);    // (N, n_embd) gradient of a normed input
  std::span<float> xn = carve(N * E);     // (N, n_embd) a normed input, recomputed
  std::span<float> act = carve(N * F);    // (N, n_ff) silu(gate) * up, recomputed
  std::span<float> dact = carve(N * F);   // (N, n_ff)
  std::span<float> dgate = carve(N * F);  // (N, n_ff)
  std::span<float> dup = carve(N * F);    // (N, n_ff)
  std::span<float> datt = carve(N * qd);  // (N, n_head, head_dim)
  std::span<float> dq = carve(N * qd);    // (N, n_head, head_dim)
  std::span<float> dk = carve(N * kvd);   // (N, n_head_kv, head_dim)
  std::span<float> dv = carve(N * kvd);   // (N, n_head_kv, head_dim)
  auto zero = [pool](std::span<float> a) {
    timed(kZero, [&] {
      parallel_for(pool, static_cast<int64_t>(a.size()), 1 << 15,
                   [&](int64_t i0, int64_t i1) { std::fill(a.begin() + i0, a.begin() + i1, 0.0f); });
    });
  };
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (int64_t il = c.n_layer - 1; il >= 0; --il) {
    const LayerWeights& L = w.layers[static_cast<size_t>(il)];
    const LayerWeights& G = gw.layers[static_cast<size_t>(il)];
    const LayerActs& A = acts[static_cast<size_t>(il)];

    // Feed-forward block, backward.
    timed(kSwiglu, [&] { swiglu_split(act.data(), A.gate.data(), A.up.data(), N * F, pool); });
    zero(dact);
    timed(kMatmulBwd, [&] {
      cpu::matmul_backward(dact.data(), g(G.w_down), nullptr, dx.data(), act.data(), f(L.w_down), N, F, E, pool);
    });
    zero(dgate);
    zero(dup);
    timed(kSwigluBwd, [&] {
      cpu::swiglu_backward(dgate.data(), dup.data(), dact.data(), A.gate.data(), A.up.data(), N * F, pool);
    });
    timed(kNorm, [&] { rmsnorm_split(xn.data(), A.x_mid.data(), f(L.ffn_norm), N, E, c.rms_eps, pool); });
    zero(dxn);
    timed(kMatmulBwd, [&] {
      cpu::matmul_backward(dxn.data(), g(G.w_gate), nullptr, dgate.data(), xn.data(), f(L.w_gate), N, E, F, pool);
      cpu::matmul_backward(dxn.data(), g(G.w_up), nullptr, dup.data(), xn.data(), f(L.w_up), N, E, F, pool);
    });
    timed(kNormBwd, [&] {
      cpu::rmsnorm_backward(dx.data(), g(G.ffn_norm), dxn.data(), A.x_mid.data(), f(L.ffn_norm), N, E, c.rms_eps,
                            pool);
    });

    // Attention block, backward.
    zero(datt);
    timed(kMatmulBwd, [&] {
      cpu::matmul_backward(datt.data(), g(G.wo), nullptr, dx.data(), A.att.data(), f(L.wo), N, qd, E, pool);
    });
    zero(dq);
    zero(dk);
    zero(dv);
    timed(kAttentionBwd, [&] {
      for_each_sequence(B, pool, [&](int64_t b, ThreadPool* inner) {
        cpu::attention_backward(&dq[b * T * qd], &dk[b * T * kvd], &dv[b * T * kvd], &datt[b * T * qd],
                                &A.q[b * T * qd], T, &A.k[b * T * kvd], &A.v[b * T * kvd], T, n_head, n_head_kv,
                                static_cast<int>(hd), 0, scale, inner);
      });
    });
    timed(kRopeBwd, [&] {
      cpu::rope_backward(dq.data(), N, n_head, static_cast<int>(hd), positions.data(), inv_freq_.data(),
                         c.rope_layout);
      cpu::rope_backward(dk.data(), N, n_head_kv, static_cast<int>(hd), positions.data(), inv_freq_.data(),
                         c.rope_layout);
    });
    timed(kNorm, [&] { rmsnorm_split(xn.data(), A.x_in.data(), f(L.attn_norm), N, E, c.rms_eps, pool); });
    zero(dxn);
    timed(kMatmulBwd, [&] {
      cpu::matmul_backward(dxn.data(), g(G.wq), G.bq.data ? g(G.bq) : nullptr, dq.data(), xn.data(), f(L.wq), N,
                           E, qd, pool);
      cpu::matmul_backward(dxn.data(), g(G.wk), G.bk.data ? g(G.bk) : nullptr, dk.data(), xn.data(), f(L.wk), N,
                           E, kvd, pool);
      cpu::matmul_backward(dxn.data(), g(G.wv), G.bv.data ? g(G.bv) : nullptr, dv.data(), xn.data(), f(L.wv), N,
                           E, kvd, pool);
    });
    timed(kNormBwd, [&] {
      cpu::rmsnorm_backward(dx.data(), g(G.attn_norm), dxn.data(), A.x_in.data(), f(L.attn_norm), N, E,
                            c.rms_eps, pool);
    });
  }
  timed(kEmbedBwd, [&] { cpu::embedding_backward(g(gw.token_embd), dx.data(), inputs.data(), N, E); });
  return loss;
}

float TrainableModel::apply_step(const AdamWParams& hp, float max_grad_norm) {
  std::vector<GradSpan> spans;
  for (Param& p : params_) spans.push_back({p.grad.data(), static_cast<int64_t>(p.grad.size())});
  const int n = static_cast<int>(spans.size());
  // The process-wide pool (train_step.h's apply_step takes none); the results do not
  // depend on its size.
  ThreadPool* pool = &default_pool();
  // clip_grad_norm_, AdamW and zero_grad: the norm in one pass over the gradients, then
  // the clipping factor, the update and the zeroing in one more (cpu::adamw_step), with
  // the bits of the three done one after the other.
  float norm = 0, scale = 1.0f;
  timed(kClip, [&] {
    norm = cpu::grad_norm(spans.data(), n, pool);
    if (max_grad_norm > 0) scale = cpu::clip_scale(norm, max_grad_norm);
  });
  ++step_;
  timed(kAdamw, [&] {
    for (Param& p : params_)
      cpu::adamw_step(p.value.data(), p.grad.data(), p.m.data(), p.v.data(),
                      static_cast<int64_t>(p.value.size()), hp, step_, scale, pool);
  });
  write_phase_line();
  return norm;
}

Result<StepResult> train_step(TrainableModel& model, const TokenBatch& batch, const AdamWParams& hp,
                              float max_grad_norm, int n_micro, ThreadPool* pool) {
  if (n_micro <= 0 || batch.n_rows % n_micro != 0)
    return Error{fmt::format("train: a batch of {} rows does not split into {} equal micro-batches", batch.n_rows,
                             n_micro)};
  HANUL_TRY(check_batch(batch, model.config().n_vocab));
  const int64_t rows = batch.n_rows / n_micro;
  StepResult r;
  for (int i = 0; i < n_micro; ++i) {
    TokenBatch micro{batch.ids.subspan(static_cast<size_t>(i * rows * batch.n_cols),
                                       static_cast<size_t>(rows * batch.n_cols)),
                     rows, batch.n_cols};
    auto loss = model.accumulate(micro, 1.0f / static_cast<float>(n_micro), pool);
    if (!loss.ok()) {
      model.zero_grad();
      return loss.status();
    }
    r.loss += *loss / static_cast<float>(n_micro);
  }
  r.grad_norm = model.apply_step(hp, max_grad_norm);
  return r;
}

}  // namespace hanul
