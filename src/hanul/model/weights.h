// The tensors of a Llama-family model and the one list that names them
// (STYLE 6): for_each_tensor() walks every weight with its GGUF name, its
// Hugging Face name and its expected shape, and drives loading from either
// format, saving to either, and conversion.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/model/config.h"
#include "hanul/tensor/tensor.h"

namespace hanul {

struct LayerWeights {
  Tensor attn_norm;            // (n_embd)
  Tensor wq;                   // (n_head * head_dim, n_embd)
  Tensor wk;                   // (n_head_kv * head_dim, n_embd)
  Tensor wv;                   // (n_head_kv * head_dim, n_embd)
  Tensor bq, bk, bv;           // (n_head * head_dim), (n_head_kv * head_dim) x2; Qwen2 only
  Tensor wo;                   // (n_embd, n_head * head_dim)
  Tensor ffn_norm;             // (n_embd)
  Tensor w_gate;               // (n_ff, n_embd)
  Tensor w_up;                 // (n_ff, n_embd)
  Tensor w_down;               // (n_embd, n_ff)
};

struct Weights {
  Tensor token_embd;           // (n_vocab, n_embd)
  std::vector<LayerWeights> layers;
  Tensor output_norm;          // (n_embd)
  Tensor output;               // (n_vocab, n_embd); a view of token_embd when tied
  Tensor rope_freqs;           // (head_dim / 2); optional (GGUF llama3 scaling)
};

struct TensorSlot {
  std::string gguf_name;       // "blk.3.attn_q.weight"
  std::string hf_name;         // "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // row-major, outermost first
  Tensor* tensor;
  bool optional;               // may be absent (tied output, rope_freqs)
  int rope_permute_heads;      // > 0: Q/K rows to (un)permute between HF and GGUF llama
};

// Walks every tensor slot of `w` for a model of shape `cfg`, in file order.
// Sizes w.layers to cfg.n_layer first.
void for_each_tensor(const ModelConfig& cfg, Weights& w, const std::function<void(TensorSlot&)>& fn);

// A model: config, weights (views) and whatever keeps the bytes alive.
struct Model {
  ModelConfig config;
  Weights weights;
  std::string path;
  std::string format;                  // "gguf" or "safetensors"
  std::shared_ptr<const void> source;  // the GgufFile / SafetensorsDir
  int64_t file_bytes = 0;
};

// Loads a GGUF file or a Hugging Face folder (config.json + *.safetensors).
// Tensors stay views into the mmap'd files.
Result<std::shared_ptr<Model>> load_model(const std::string& path);

// Reorders the rows of a Q or K weight between the Hugging Face layout (each
// head's rotary halves) and GGUF llama's (adjacent pairs), as llama.cpp's
// convert_hf_to_gguf.py permute() does. Works on any dtype: rows are whole.
Tensor permute_qk_rows(const Tensor& t, int n_heads, bool to_gguf);

}  // namespace hanul
