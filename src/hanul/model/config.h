// ModelConfig: the shape and hyper-parameters of a Llama-family model, read
// from a Hugging Face config.json or from GGUF metadata and written back to
// either. One table of fields (config.cpp) drives all four directions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/kernels/ref/ops.h"  // RopeLayout

namespace hanul {

class GgufFile;
class GgufWriter;

// The families whose forward pass hanul runs. Mistral and SOLAR are the llama
// architecture (GGUF says "llama" for both); Qwen2 adds q/k/v biases.
enum class Arch { kLlama, kQwen2 };

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string hf_architecture;   // "LlamaForCausalLM", "MistralForCausalLM", ...
  std::string name;              // general.name / _name_or_path, informative
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_ctx_train = 2048;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScalingType rope_scaling = RopeScalingType::kNone;
  float rope_factor = 1.0f;            // linear and llama3
  float rope_low_freq_factor = 1.0f;   // llama3
  float rope_high_freq_factor = 4.0f;  // llama3
  int64_t rope_original_ctx = 8192;    // llama3 original_max_position_embeddings
  int64_t sliding_window = 0;          // Mistral; 0 = none (not applied yet)
  bool tie_embeddings = false;
  bool qkv_bias = false;
  // HF checkpoints rotate halves of a head; GGUF llama files permute Q/K rows
  // so that adjacent pairs rotate (llama.cpp convert_hf_to_gguf.py, permute()).
  RopeLayout rope_layout = RopeLayout::kHalves;
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;

  std::string arch_name() const;  // GGUF general.architecture: "llama" or "qwen2"
  Status validate() const;        // shapes that make sense, positive counts
};

Result<ModelConfig> config_from_hf_json(const std::string& json_text, const std::string& where);
Result<ModelConfig> config_from_gguf(const GgufFile& gguf);
std::string config_to_hf_json(const ModelConfig& cfg);
void config_to_gguf(const ModelConfig& cfg, GgufWriter& w);

// The rotary inverse frequencies, head_dim / 2 of them, with the config's
// scaling applied (transformers modeling_rope_utils.py). freq_factors, when
// given (GGUF rope_freqs.weight), divide them as llama.cpp does.
std::vector<float> rope_inv_freq(const ModelConfig& cfg, const float* freq_factors = nullptr);

// llama3 scaling expressed as GGUF's rope_freqs factors (what convert writes).
std::vector<float> llama3_rope_factors(const ModelConfig& cfg);

}  // namespace hanul
