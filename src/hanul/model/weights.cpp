#include "hanul/model/weights.h"

#include <cstring>
#include <filesystem>

#include <fmt/core.h>

#include "hanul/formats/gguf.h"
#include "hanul/formats/safetensors.h"

namespace hanul {

void for_each_tensor(const ModelConfig& c, Weights& w, const std::function<void(TensorSlot&)>& fn) {
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  const bool llama = c.arch == Arch::kLlama;
  auto visit = [&](std::string gguf, std::string hf, std::vector<int64_t> shape, Tensor* t, bool optional,
                   int permute_heads = 0) {
    TensorSlot s{std::move(gguf), std::move(hf), std::move(shape), t, optional, permute_heads};
    fn(s);
  };
  visit("token_embd.weight", "model.embed_tokens.weight", {c.n_vocab, c.n_embd}, &w.token_embd, false);
  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string b = fmt::format("blk.{}.", il), h = fmt::format("model.layers.{}.", il);
    visit(b + "attn_norm.weight", h + "input_layernorm.weight", {c.n_embd}, &l.attn_norm, false);
    visit(b + "attn_q.weight", h + "self_attn.q_proj.weight", {q_dim, c.n_embd}, &l.wq, false,
          llama ? static_cast<int>(c.n_head) : 0);
    visit(b + "attn_k.weight", h + "self_attn.k_proj.weight", {kv_dim, c.n_embd}, &l.wk, false,
          llama ? static_cast<int>(c.n_head_kv) : 0);
    visit(b + "attn_v.weight", h + "self_attn.v_proj.weight", {kv_dim, c.n_embd}, &l.wv, false);
    if (c.qkv_bias) {
      visit(b + "attn_q.bias", h + "self_attn.q_proj.bias", {q_dim}, &l.bq, false, llama ? static_cast<int>(c.n_head) : 0);
      visit(b + "attn_k.bias", h + "self_attn.k_proj.bias", {kv_dim}, &l.bk, false,
            llama ? static_cast<int>(c.n_head_kv) : 0);
      visit(b + "attn_v.bias", h + "self_attn.v_proj.bias", {kv_dim}, &l.bv, false);
    }
    visit(b + "attn_output.weight", h + "self_attn.o_proj.weight", {c.n_embd, q_dim}, &l.wo, false);
    visit(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {c.n_embd}, &l.ffn_norm, false);
    visit(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {c.n_ff, c.n_embd}, &l.w_gate, false);
    visit(b + "ffn_up.weight", h + "mlp.up_proj.weight", {c.n_ff, c.n_embd}, &l.w_up, false);
    visit(b + "ffn_down.weight", h + "mlp.down_proj.weight", {c.n_embd, c.n_ff}, &l.w_down, false);
  }
  visit("output_norm.weight", "model.norm.weight", {c.n_embd}, &w.output_norm, false);
  visit("output.weight", "lm_head.weight", {c.n_vocab, c.n_embd}, &w.output, c.tie_embeddings);
  visit("rope_freqs.weight", "", {c.head_dim / 2}, &w.rope_freqs, true);
}

Tensor permute_qk_rows(const Tensor& t, int n_heads, bool to_gguf) {
  const int64_t rows = t.shape[0];
  const int64_t hd = rows / n_heads, half = hd / 2;
  const int64_t stride = t.shape.size() == 1 ? row_bytes(t.dtype, 1) : t.row_stride();
  Tensor out = Tensor::allocate(t.name, t.dtype, t.shape);
  auto* dst = static_cast<uint8_t*>(out.mutable_data());
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        int64_t gguf_row = h * hd + i * 2 + j, hf_row = h * hd + j * half + i;
        int64_t from = to_gguf ? hf_row : gguf_row, to = to_gguf ? gguf_row : hf_row;
        std::memcpy(dst + to * stride, t.bytes() + from * stride, static_cast<size_t>(stride));
      }
  return out;
}

namespace {

// Binds every slot to the tensor `find(name)` returns and checks its shape.
template <class Find>
Status bind_tensors(Model& m, bool hf_names, Find find) {
  Status status;
  for_each_tensor(m.config, m.weights, [&](TensorSlot& s) {
    if (!status.ok()) return;
    const std::string& name = hf_names ? s.hf_name : s.gguf_name;
    const Tensor* t = name.empty() ? nullptr : find(name);
    if (!t) {
      if (!s.optional) status = Error{fmt::format("{}: tensor '{}' is missing", m.path, name)};
      return;
    }
    if (t->shape != s.shape) {
      Tensor want;
      want.shape = s.shape;
      status = Error{fmt::format("{}: tensor '{}' has shape {} but the config implies {}", m.path, name,
                                 t->shape_str(), want.shape_str())};
      return;
    }
    *s.tensor = *t;
  });
  HANUL_TRY(status);
  if (m.config.tie_embeddings || !m.weights.output.data) m.weights.output = m.weights.token_embd;
  if (m.weights.rope_freqs.data && m.weights.rope_freqs.dtype != DType::F32)
    return Error{fmt::format("{}: rope_freqs.weight must be F32", m.path)};
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<Model>> load_model(const std::string& path) {
  auto m = std::make_shared<Model>();
  m->path = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    HANUL_ASSIGN_OR_RETURN(SafetensorsDir dir, SafetensorsDir::open(path));
    if (dir.config_json().empty()) return Error{fmt::format("{}: no config.json", path)};
    HANUL_ASSIGN_OR_RETURN(m->config, config_from_hf_json(dir.config_json(), path + "/config.json"));
    // Older checkpoints leave num_key_value_heads etc. out; the tensors decide vocab.
    if (const Tensor* e = dir.find_tensor("model.embed_tokens.weight"); e && e->shape.size() == 2)
      m->config.n_vocab = e->shape[0];
    if (!dir.find_tensor("lm_head.weight")) m->config.tie_embeddings = true;
    auto shared = std::make_shared<SafetensorsDir>(std::move(dir));
    for (const auto& e : std::filesystem::directory_iterator(path, ec))
      if (e.path().extension() == ".safetensors") m->file_bytes += static_cast<int64_t>(e.file_size(ec));
    m->format = "safetensors";
    HANUL_TRY(bind_tensors(*m, true, [&](const std::string& n) { return shared->find_tensor(n); }));
    m->source = shared;
    return m;
  }
  HANUL_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::open(path));
  HANUL_ASSIGN_OR_RETURN(m->config, config_from_gguf(gguf));
  auto shared = std::make_shared<GgufFile>(std::move(gguf));
  m->file_bytes = static_cast<int64_t>(shared->file_size());
  m->format = "gguf";
  HANUL_TRY(bind_tensors(*m, false, [&](const std::string& n) { return shared->find_tensor(n); }));
  m->source = shared;
  return m;
}

}  // namespace hanul
