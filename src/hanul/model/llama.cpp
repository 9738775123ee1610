#include "hanul/model/llama.h"

#include <cmath>

#include <fmt/core.h>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {

std::vector<float> widen(const Tensor& t) {
  if (!t.data) return {};
  std::vector<float> out(static_cast<size_t>(t.numel()));
  Status s = dequantize_row(t.dtype, t.data, out.data(), t.numel());
  (void)s;  // 1-D norm/bias tensors are float types, checked at load
  return out;
}

}  // namespace

Llama::Llama(std::shared_ptr<const Model> model, ThreadPool* pool) : model_(std::move(model)), pool_(pool) {
  const ModelConfig& c = model_->config;
  const Weights& w = model_->weights;
  std::vector<float> freq_factors = widen(w.rope_freqs);
  inv_freq_ = rope_inv_freq(c, freq_factors.empty() ? nullptr : freq_factors.data());
  for (const LayerWeights& l : w.layers)
    layers_f32_.push_back({widen(l.attn_norm), widen(l.ffn_norm), widen(l.bq), widen(l.bk), widen(l.bv)});
  output_norm_ = widen(w.output_norm);
}

Status Llama::forward(std::span<const SeqTokens> batch, KvCache& cache, std::vector<float>& logits) {
  const ModelConfig& c = model_->config;
  const Weights& w = model_->weights;
  const int64_t n_embd = c.n_embd, n_head = c.n_head, n_head_kv = c.n_head_kv, hd = c.head_dim;
  const int64_t q_dim = n_head * hd, kv_dim = n_head_kv * hd, n_ff = c.n_ff, n_vocab = c.n_vocab;

  // Flatten the batch: token t of the batch belongs to seq_of[t] at positions[t].
  int64_t T = 0;
  for (const SeqTokens& s : batch) {
    if (s.seq < 0 || s.seq >= cache.n_seq())
      return Error{fmt::format("forward: sequence slot {} is outside the cache's {} slots", s.seq, cache.n_seq())};
    if (s.tokens.empty()) return Error{fmt::format("forward: sequence {} has no tokens", s.seq)};
    if (cache.seq_len(s.seq) + static_cast<int64_t>(s.tokens.size()) > cache.n_ctx())
      return Error{fmt::format("forward: sequence {} would reach {} tokens, past the context size {}", s.seq,
                               cache.seq_len(s.seq) + static_cast<int64_t>(s.tokens.size()), cache.n_ctx())};
    for (int32_t id : s.tokens)
      if (id < 0 || id >= n_vocab)
        return Error{fmt::format("forward: token id {} is outside the vocabulary (0..{})", id, n_vocab - 1)};
    T += static_cast<int64_t>(s.tokens.size());
  }
  for (size_t i = 0; i < batch.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (batch[i].seq == batch[j].seq)
        return Error{fmt::format("forward: sequence slot {} appears twice in one batch", batch[i].seq)};

  std::vector<int32_t> positions(static_cast<size_t>(T));
  {
    int64_t t = 0;
    for (const SeqTokens& s : batch)
      for (size_t i = 0; i < s.tokens.size(); ++i) positions[static_cast<size_t>(t++)] =
          static_cast<int32_t>(cache.seq_len(s.seq) + static_cast<int64_t>(i));
  }
  auto cb = [&](const char* name, int il, const float* data, int64_t rows, int64_t cols) {
    if (trace_) trace_(name, il, data, rows, cols);
  };

  // Buffers, each with its shape.
  std::vector<float> x(static_cast<size_t>(T * n_embd));     // (T, n_embd) the residual stream
  std::vector<float> xn(static_cast<size_t>(T * n_embd));    // (T, n_embd) normed input of a block
  std::vector<float> q(static_cast<size_t>(T * q_dim));      // (T, n_head, head_dim)
  std::vector<float> k(static_cast<size_t>(T * kv_dim));     // (T, n_head_kv, head_dim)
  std::vector<float> v(static_cast<size_t>(T * kv_dim));     // (T, n_head_kv, head_dim)
  std::vector<float> att(static_cast<size_t>(T * q_dim));    // (T, n_head, head_dim) attention output
  std::vector<float> proj(static_cast<size_t>(T * n_embd));  // (T, n_embd) a block's output
  std::vector<float> gate(static_cast<size_t>(T * n_ff));    // (T, n_ff)
  std::vector<float> up(static_cast<size_t>(T * n_ff));      // (T, n_ff)
  std::vector<float> act(static_cast<size_t>(T * n_ff));     // (T, n_ff) silu(gate) * up

  // Token embeddings: one row of token_embd per token, widened to float32.
  const Tensor& emb = w.token_embd;
  {
    int64_t t = 0;
    for (const SeqTokens& s : batch)
      for (int32_t id : s.tokens) {
        HANUL_TRY(dequantize_row(emb.dtype, emb.bytes() + id * emb.row_stride(), &x[t * n_embd], n_embd));
        ++t;
      }
  }
  cb("inp_embd", -1, x.data(), T, n_embd);

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w.layers[static_cast<size_t>(il)];
    const LayerF32& L32 = layers_f32_[static_cast<size_t>(il)];
    const int ili = static_cast<int>(il);

    // Attention block: x = x + Wo · attention(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))
    cpu::rmsnorm(xn.data(), x.data(), L32.attn_norm.data(), T, n_embd, c.rms_eps);
    cb("attn_norm", ili, xn.data(), T, n_embd);
    cpu::matmul(xn.data(), T, n_embd, L.wq.data, L.wq.dtype, q_dim, L32.bq.empty() ? nullptr : L32.bq.data(),
                q.data(), pool_);
    cpu::matmul(xn.data(), T, n_embd, L.wk.data, L.wk.dtype, kv_dim, L32.bk.empty() ? nullptr : L32.bk.data(),
                k.data(), pool_);
    cpu::matmul(xn.data(), T, n_embd, L.wv.data, L.wv.dtype, kv_dim, L32.bv.empty() ? nullptr : L32.bv.data(),
                v.data(), pool_);
    cpu::rope(q.data(), T, static_cast<int>(n_head), static_cast<int>(hd), positions.data(), inv_freq_.data(),
              c.rope_layout);
    cpu::rope(k.data(), T, static_cast<int>(n_head_kv), static_cast<int>(hd), positions.data(), inv_freq_.data(),
              c.rope_layout);
    cb("Qcur", ili, q.data(), T, q_dim);
    cb("Kcur", ili, k.data(), T, kv_dim);
    cb("Vcur", ili, v.data(), T, kv_dim);

    int64_t t0 = 0;
    for (const SeqTokens& s : batch) {
      const int64_t n = static_cast<int64_t>(s.tokens.size()), pos0 = cache.seq_len(s.seq);
      float* kc = cache.k(il, s.seq);  // (n_ctx, n_head_kv, head_dim)
      float* vc = cache.v(il, s.seq);
      std::copy_n(&k[t0 * kv_dim], n * kv_dim, kc + pos0 * kv_dim);
      std::copy_n(&v[t0 * kv_dim], n * kv_dim, vc + pos0 * kv_dim);
      cpu::attention(&att[t0 * q_dim], &q[t0 * q_dim], n, kc, vc, pos0 + n, static_cast<int>(n_head),
                     static_cast<int>(n_head_kv), static_cast<int>(hd), pos0, scale, pool_);
      t0 += n;
    }
    cb("kqv_out", ili, att.data(), T, q_dim);
    cpu::matmul(att.data(), T, q_dim, L.wo.data, L.wo.dtype, n_embd, nullptr, proj.data(), pool_);
    cb("attn_out", ili, proj.data(), T, n_embd);
    for (int64_t i = 0; i < T * n_embd; ++i) x[i] += proj[i];
    cb("ffn_inp", ili, x.data(), T, n_embd);

    // Feed-forward block (SwiGLU): x = x + W_down · (silu(W_gate·n(x)) * W_up·n(x))
    cpu::rmsnorm(xn.data(), x.data(), L32.ffn_norm.data(), T, n_embd, c.rms_eps);
    cb("ffn_norm", ili, xn.data(), T, n_embd);
    cpu::matmul(xn.data(), T, n_embd, L.w_gate.data, L.w_gate.dtype, n_ff, nullptr, gate.data(), pool_);
    cpu::matmul(xn.data(), T, n_embd, L.w_up.data, L.w_up.dtype, n_ff, nullptr, up.data(), pool_);
    cpu::swiglu(act.data(), gate.data(), up.data(), T * n_ff);
    cb("ffn_act", ili, act.data(), T, n_ff);
    cpu::matmul(act.data(), T, n_ff, L.w_down.data, L.w_down.dtype, n_embd, nullptr, proj.data(), pool_);
    cb("ffn_out", ili, proj.data(), T, n_embd);
    for (int64_t i = 0; i < T * n_embd; ++i) x[i] += proj[i];
    cb("l_out", ili, x.data(), T, n_embd);
  }
  for (const SeqTokens& s : batch) cache.set_seq_len(s.seq, cache.seq_len(s.seq) + static_cast<int64_t>(s.tokens.size()));

  // Only the rows whose logits were asked for go through the final norm and
  // the output projection (the largest matmul for small models).
  std::vector<int64_t> rows;
  {
    int64_t t = 0;
    for (const SeqTokens& s : batch) {
      const int64_t n = static_cast<int64_t>(s.tokens.size());
      for (int64_t i = s.all_logits ? 0 : n - 1; i < n; ++i) rows.push_back(t + i);
      t += n;
    }
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<float> xr(static_cast<size_t>(R * n_embd));  // (R, n_embd) the rows asked for
  for (int64_t r = 0; r < R; ++r) std::copy_n(&x[rows[r] * n_embd], n_embd, &xn[r * n_embd]);
  cpu::rmsnorm(xr.data(), xn.data(), output_norm_.data(), R, n_embd, c.rms_eps);
  cb("result_norm", -1, xr.data(), R, n_embd);
  logits.resize(static_cast<size_t>(R * n_vocab));
  cpu::matmul(xr.data(), R, n_embd, w.output.data, w.output.dtype, n_vocab, nullptr, logits.data(), pool_);
  cb("result_output", -1, logits.data(), R, n_vocab);
  return Status::Ok();
}

}  // namespace hanul
