// One training step of a Llama-family model in float32: the trainable
// parameters (float32 master weights, one buffer per tensor of
// for_each_tensor, STYLE 6), their gradients and AdamW moments, and the step
// itself — forward over a batch of token sequences keeping the activations,
// cross-entropy on the next tokens, backward through every layer, global-norm
// clipping and AdamW. The forward is the one of model/llama.cpp, op for op with
// the same cpu:: kernels, so its logits equal Llama::forward's bit for bit
// (tests/unit/train/test_train_step.cpp); the step equals PyTorch's
// (tests/reference/check_train_step.py).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/kernels/ref/ops_backward.h"
#include "hanul/model/weights.h"

namespace hanul {

class ThreadPool;

// One trainable tensor: its names and shape from for_each_tensor, the value,
// the gradient and AdamW's two moments, all float32 and the same size.
struct Param {
  std::string gguf_name;
  std::string hf_name;
  std::vector<int64_t> shape;
  std::vector<float> value;
  std::vector<float> grad;
  std::vector<float> m;  // AdamW exp_avg
  std::vector<float> v;  // AdamW exp_avg_sq
};

// A batch of B token sequences of the same length: B rows of n_cols ids.
// Training reads T = n_cols - 1 inputs per row and predicts the next token of
// each; a target equal to kIgnoreIndex is masked out of the loss.
struct TokenBatch {
  std::span<const int32_t> ids;  // (B, n_cols)
  int64_t n_rows = 0;            // B
  int64_t n_cols = 0;            // T + 1
};

struct StepResult {
  float loss = 0;       // mean cross-entropy over the step's (unmasked) targets
  float grad_norm = 0;  // global L2 norm before clipping
};

class TrainableModel {
 public:
  // Fresh weights: every matrix N(0, std) from a seeded generator that gives
  // the same numbers on every platform, every norm weight 1, biases 0.
  static Result<TrainableModel> init_random(const ModelConfig& cfg, uint64_t seed, float std = 0.02f);
  // A float32 copy of a loaded model's weights (any dtype the engine reads), with
  // Q/K rows in Hugging Face's layout (a GGUF llama's are un-permuted).
  // rope_freqs, when the model has it, is kept as a constant, not trained.
  static Result<TrainableModel> from_model(const Model& model);

  TrainableModel(TrainableModel&&) = default;
  TrainableModel& operator=(TrainableModel&&) = default;

  const ModelConfig& config() const { return config_; }
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  Param* find(const std::string& gguf_name);
  int64_t n_params() const;
  int64_t step() const { return step_; }
  // Restores the AdamW step count of a checkpoint (bias correction depends on it).
  void set_step(int64_t step) { step_ = step; }

  // The parameters as a Model of float32 views (for Llama::forward, saving,
  // conversion). The views stay valid while this object lives and is not moved.
  std::shared_ptr<Model> as_model() const;
  // The parameters as float32 tensors named for Hugging Face (hf_names) or GGUF,
  // views into this object, for write_safetensors.
  std::vector<Tensor> tensors(bool hf_names) const;

  // Logits (B·T, n_vocab) of the whole batch, every position: the forward
  // alone (no activations kept, no gradient).
  Result<std::vector<float>> forward(const TokenBatch& batch, ThreadPool* pool);

  // Forward and backward of one micro-batch: adds loss_scale · ∂loss/∂θ into
  // the gradients (which accumulate until apply_step) and returns the mean loss
  // of the micro-batch. For gradient accumulation over n micro-batches pass
  // loss_scale = 1/n: the result is the gradient of the mean of their means,
  // which is the gradient of the whole batch's mean when every micro-batch has
  // the same number of unmasked targets.
  Result<float> accumulate(const TokenBatch& micro, float loss_scale, ThreadPool* pool);

  // Clips the accumulated gradients to global norm max_grad_norm (<= 0: no
  // clipping), takes one AdamW step with hp, and zeroes the gradients.
  // Returns the norm before clipping.
  float apply_step(const AdamWParams& hp, float max_grad_norm);

  void zero_grad();

 private:
  TrainableModel() = default;
  void bind();  // points values_/grads_ at the Param buffers

  ModelConfig config_;
  std::vector<Param> params_;
  std::vector<float> rope_freqs_;  // (head_dim / 2) or empty
  std::vector<float> inv_freq_;    // (head_dim / 2)
  Weights values_;                 // float32 views of params_[i].value
  Weights grads_;                  // float32 views of params_[i].grad, same slots
  int64_t step_ = 0;               // AdamW steps taken
  // accumulate()'s activations and scratch, kept from step to step so that a
  // step does not allocate and fault in ~0.5 GB afresh (train_step.cpp).
  std::shared_ptr<struct TrainWorkspace> ws_;
};

// One optimizer step on a batch split into n_micro micro-batches of equal
// rows (B % n_micro == 0): accumulate each with scale 1/n_micro, then clip to
// max_grad_norm and take AdamW with hp (hp.lr is the learning rate of this step).
Result<StepResult> train_step(TrainableModel& model, const TokenBatch& batch, const AdamWParams& hp,
                              float max_grad_norm, int n_micro, ThreadPool* pool);

}  // namespace hanul
