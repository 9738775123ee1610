// The Llama-family forward pass (Llama 2/3, Mistral, SOLAR, Qwen2): one call
// runs a batch of sequences of different lengths through the model, appending
// their keys and values to the cache. Generation, evaluation, serving and
// training all call this one forward pass.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/model/kv_cache.h"
#include "hanul/model/weights.h"

namespace hanul {

class ThreadPool;

// One sequence of a batch: its cache slot and the tokens to append to it.
struct SeqTokens {
  int seq = 0;
  std::vector<int32_t> tokens;
  bool all_logits = false;  // logits of every token, or only of the last
};

// Called with every named intermediate (STYLE 3): name, layer (-1 outside the
// layers), data [rows, cols] float32. `hanul run --dump DIR` writes them as .npy.
using TraceFn = std::function<void(const char* name, int il, const float* data, int64_t rows, int64_t cols)>;

class Llama {
 public:
  Llama(std::shared_ptr<const Model> model, ThreadPool* pool);

  const ModelConfig& config() const { return model_->config; }

  // Runs the batch. `logits` receives, sequence after sequence in batch order,
  // n_vocab floats per requested position (see SeqTokens::all_logits).
  Status forward(std::span<const SeqTokens> batch, KvCache& cache, std::vector<float>& logits);

  void set_trace(TraceFn fn) { trace_ = std::move(fn); }

 private:
  std::shared_ptr<const Model> model_;
  ThreadPool* pool_;
  TraceFn trace_;
  std::vector<float> inv_freq_;  // (head_dim / 2)
  // 1-D weights widened to float32 once: norms and biases are tiny.
  struct LayerF32 {
    std::vector<float> attn_norm, ffn_norm, bq, bk, bv;
  };
  std::vector<LayerF32> layers_f32_;
  std::vector<float> output_norm_;
};

}  // namespace hanul
