#include "hanul/model/config.h"

#include <cmath>
#include <numbers>
#include <variant>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/formats/gguf.h"

namespace hanul {
namespace {

using json = nlohmann::json;

// One row per numeric field: its config.json key, its GGUF key (after
// "<arch>."), and where it lives. Defaults for optional fields are applied in
// fill_defaults(). Parse and write in both formats walk this one table.
struct Field {
  const char* hf;
  const char* gguf;
  std::variant<int64_t ModelConfig::*, float ModelConfig::*> member;
  bool required;
};

const Field kFields[] = {
    {"vocab_size", "vocab_size", &ModelConfig::n_vocab, false},
    {"hidden_size", "embedding_length", &ModelConfig::n_embd, true},
    {"num_hidden_layers", "block_count", &ModelConfig::n_layer, true},
    {"num_attention_heads", "attention.head_count", &ModelConfig::n_head, true},
    {"num_key_value_heads", "attention.head_count_kv", &ModelConfig::n_head_kv, false},
    {"head_dim", "attention.key_length", &ModelConfig::head_dim, false},
    {"intermediate_size", "feed_forward_length", &ModelConfig::n_ff, true},
    {"max_position_embeddings", "context_length", &ModelConfig::n_ctx_train, false},
    {"rms_norm_eps", "attention.layer_norm_rms_epsilon", &ModelConfig::rms_eps, false},
    {"rope_theta", "rope.freq_base", &ModelConfig::rope_theta, false},
};

void fill_defaults(ModelConfig& c) {
  if (c.n_head_kv <= 0) c.n_head_kv = c.n_head;
  if (c.head_dim <= 0 && c.n_head > 0) c.head_dim = c.n_embd / c.n_head;
}

std::vector<int32_t> ids_from_json(const json& j) {
  std::vector<int32_t> ids;
  if (j.is_number_integer()) ids.push_back(j.get<int32_t>());
  if (j.is_array())
    for (const auto& e : j)
      if (e.is_number_integer()) ids.push_back(e.get<int32_t>());
  return ids;
}

}  // namespace

std::string ModelConfig::arch_name() const { return arch == Arch::kQwen2 ? "qwen2" : "llama"; }

Status ModelConfig::validate() const {
  auto bad = [](const std::string& what) { return Error{"model config: " + what}; };
  if (n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_ff <= 0 || n_vocab <= 0)
    return bad(fmt::format("n_embd {}, n_layer {}, n_head {}, n_ff {}, n_vocab {} must all be positive",
                           n_embd, n_layer, n_head, n_ff, n_vocab));
  if (n_head_kv <= 0 || n_head % n_head_kv != 0)
    return bad(fmt::format("n_head {} is not a multiple of n_head_kv {}", n_head, n_head_kv));
  if (head_dim <= 0 || head_dim % 2 != 0)
    return bad(fmt::format("head_dim {} must be positive and even", head_dim));
  if (n_embd > (1 << 20) || n_layer > 4096 || n_head > 4096 || n_ff > (1 << 22) || n_vocab > (1 << 24) ||
      head_dim > 4096)
    return bad("dimensions are implausibly large");
  if (!(rms_eps > 0) || !(rope_theta > 0)) return bad("rms_norm_eps and rope_theta must be positive");
  if (rope_scaling != RopeScalingType::kNone && !(rope_factor > 0)) return bad("rope scaling factor must be positive");
  return Status::Ok();
}

Result<ModelConfig> config_from_hf_json(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error{fmt::format("{}: not a JSON object", where)};
  ModelConfig c;
  std::string model_type = j.value("model_type", "llama");
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.hf_architecture = j["architectures"][0].get<std::string>();
  if (model_type == "qwen2") {
    c.arch = Arch::kQwen2;
    c.qkv_bias = true;
  } else if (model_type == "llama" || model_type == "mistral" || model_type == "solar") {
    c.arch = Arch::kLlama;
    c.qkv_bias = j.value("attention_bias", false);
  } else {
    return Error{fmt::format("{}: model_type '{}' is not supported (llama, mistral, qwen2)", where, model_type)};
  }
  if (c.hf_architecture.empty())
    c.hf_architecture = c.arch == Arch::kQwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  for (const Field& f : kFields) {
    if (!j.contains(f.hf) || j[f.hf].is_null()) {
      if (f.required) return Error{fmt::format("{}: missing '{}'", where, f.hf)};
      continue;
    }
    const json& v = j[f.hf];
    if (!v.is_number()) return Error{fmt::format("{}: '{}' is not a number", where, f.hf)};
    std::visit([&](auto m) { c.*m = v.get<std::remove_reference_t<decltype(c.*m)>>(); }, f.member);
  }
  c.tie_embeddings = j.value("tie_word_embeddings", false);
  if (j.contains("sliding_window") && j["sliding_window"].is_number_integer() &&
      j.value("use_sliding_window", model_type == "mistral"))
    c.sliding_window = j["sliding_window"].get<int64_t>();
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const json& rs = j["rope_scaling"];
    std::string type = rs.value("rope_type", rs.value("type", ""));
    if (type == "linear") {
      c.rope_scaling = RopeScalingType::kLinear;
    } else if (type == "llama3") {
      c.rope_scaling = RopeScalingType::kLlama3;
      c.rope_low_freq_factor = rs.value("low_freq_factor", 1.0f);
      c.rope_high_freq_factor = rs.value("high_freq_factor", 4.0f);
      c.rope_original_ctx = rs.value("original_max_position_embeddings", int64_t{8192});
    } else if (type != "default" && !type.empty()) {
      return Error{fmt::format("{}: rope_scaling type '{}' is not supported (linear, llama3)", where, type)};
    }
    c.rope_factor = rs.value("factor", 1.0f);
  }
  if (j.contains("bos_token_id")) {
    auto ids = ids_from_json(j["bos_token_id"]);
    if (!ids.empty()) c.bos_id = ids[0];
  }
  if (j.contains("eos_token_id")) c.eos_ids = ids_from_json(j["eos_token_id"]);
  c.name = j.value("_name_or_path", "");
  fill_defaults(c);
  HANUL_TRY(c.validate());
  return c;
}

Result<ModelConfig> config_from_gguf(const GgufFile& g) {
  ModelConfig c;
  auto arch = g.get_string("general.architecture");
  if (!arch) return Error{fmt::format("{}: no general.architecture", g.path())};
  if (*arch == "llama") {
    c.arch = Arch::kLlama;
    c.hf_architecture = "LlamaForCausalLM";
  } else if (*arch == "qwen2") {
    c.arch = Arch::kQwen2;
    c.hf_architecture = "Qwen2ForCausalLM";
    c.qkv_bias = true;
  } else {
    return Error{fmt::format("{}: architecture '{}' is not supported (llama, qwen2)", g.path(), *arch)};
  }
  // GGUF llama rotates adjacent pairs (Q/K were permuted at conversion);
  // qwen2 keeps the NeoX halves (llama.cpp: LLAMA_ROPE_TYPE_NEOX for qwen2).
  c.rope_layout = c.arch == Arch::kQwen2 ? RopeLayout::kHalves : RopeLayout::kPairs;
  for (const Field& f : kFields) {
    std::string key = *arch + "." + f.gguf;
    bool found = false;
    std::visit(
        [&](auto m) {
          using T = std::remove_cvref_t<decltype(c.*m)>;
          if constexpr (std::is_same_v<T, float>) {
            if (auto v = g.get_float(key)) c.*m = static_cast<float>(*v), found = true;
          } else {
            if (auto v = g.get_int(key)) c.*m = *v, found = true;
          }
        },
        f.member);
    if (!found && f.required) return Error{fmt::format("{}: missing metadata '{}'", g.path(), key)};
  }
  if (auto t = g.get_string(*arch + ".rope.scaling.type")) {
    if (*t == "linear") {
      c.rope_scaling = RopeScalingType::kLinear;
      c.rope_factor = static_cast<float>(g.get_float(*arch + ".rope.scaling.factor").value_or(1.0));
    } else if (*t != "none") {
      return Error{fmt::format("{}: rope scaling type '{}' is not supported", g.path(), *t)};
    }
  }
  if (auto f = g.get_float("hanul.rope.llama3.factor")) {
    // Written by hanul convert beside rope_freqs, so the HF config round-trips.
    c.rope_scaling = RopeScalingType::kLlama3;
    c.rope_factor = static_cast<float>(*f);
    c.rope_low_freq_factor = static_cast<float>(g.get_float("hanul.rope.llama3.low_freq_factor").value_or(1.0));
    c.rope_high_freq_factor = static_cast<float>(g.get_float("hanul.rope.llama3.high_freq_factor").value_or(4.0));
    c.rope_original_ctx = g.get_int("hanul.rope.llama3.original_context_length").value_or(8192);
  }
  if (auto rd = g.get_int(*arch + ".rope.dimension_count"); rd && c.head_dim > 0 && *rd != c.head_dim)
    return Error{fmt::format("{}: partial rotary embedding (rope.dimension_count {} < head_dim {}) is not supported",
                             g.path(), *rd, c.head_dim)};
  if (c.n_vocab <= 0) {
    if (const auto* tokens = g.get_string_array("tokenizer.ggml.tokens")) c.n_vocab = static_cast<int64_t>(tokens->size());
    if (const Tensor* t = g.find_tensor("token_embd.weight"); t && t->shape.size() == 2) c.n_vocab = t->shape[0];
  }
  c.tie_embeddings = g.find_tensor("output.weight") == nullptr;
  if (auto v = g.get_int("tokenizer.ggml.bos_token_id")) c.bos_id = static_cast<int32_t>(*v);
  if (auto v = g.get_int("tokenizer.ggml.eos_token_id")) c.eos_ids.push_back(static_cast<int32_t>(*v));
  if (auto v = g.get_int("tokenizer.ggml.eot_token_id"); v && (c.eos_ids.empty() || c.eos_ids[0] != *v))
    c.eos_ids.push_back(static_cast<int32_t>(*v));
  c.name = g.get_string("general.name").value_or("");
  fill_defaults(c);
  HANUL_TRY(c.validate());
  return c;
}

std::string config_to_hf_json(const ModelConfig& c) {
  json j;
  j["architectures"] = json::array({c.hf_architecture});
  j["model_type"] = c.arch == Arch::kQwen2 ? "qwen2" : (c.hf_architecture == "MistralForCausalLM" ? "mistral" : "llama");
  for (const Field& f : kFields) std::visit([&](auto m) { j[f.hf] = c.*m; }, f.member);
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = c.tie_embeddings;
  if (c.arch == Arch::kLlama) j["attention_bias"] = c.qkv_bias;
  j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  if (c.rope_scaling == RopeScalingType::kLinear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_factor}};
  } else if (c.rope_scaling == RopeScalingType::kLlama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_factor},
                         {"low_freq_factor", c.rope_low_freq_factor},
                         {"high_freq_factor", c.rope_high_freq_factor},
                         {"original_max_position_embeddings", c.rope_original_ctx}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (c.bos_id >= 0) j["bos_token_id"] = c.bos_id;
  if (c.eos_ids.size() == 1) j["eos_token_id"] = c.eos_ids[0];
  if (c.eos_ids.size() > 1) j["eos_token_id"] = c.eos_ids;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

void config_to_gguf(const ModelConfig& c, GgufWriter& w) {
  const std::string a = c.arch_name();
  w.set_string("general.architecture", a);
  if (!c.name.empty()) w.set_string("general.name", c.name);
  for (const Field& f : kFields) {
    std::string key = a + "." + f.gguf;
    std::visit(
        [&](auto m) {
          using T = std::remove_cvref_t<decltype(c.*m)>;
          if constexpr (std::is_same_v<T, float>)
            w.set_f32(key, c.*m);
          else
            w.set_u32(key, static_cast<uint32_t>(c.*m));
        },
        f.member);
  }
  w.set_u32(a + ".attention.value_length", static_cast<uint32_t>(c.head_dim));
  w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  if (c.rope_scaling == RopeScalingType::kLinear) {
    w.set_string(a + ".rope.scaling.type", "linear");
    w.set_f32(a + ".rope.scaling.factor", c.rope_factor);
  }
  if (c.bos_id >= 0) w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(c.bos_id));
  if (!c.eos_ids.empty()) w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(c.eos_ids[0]));
  if (c.eos_ids.size() > 1) w.set_u32("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(c.eos_ids[1]));
}

std::vector<float> rope_inv_freq(const ModelConfig& c, const float* freq_factors) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    // As transformers: 1 / base^(2i/d), computed in float32.
    float expo = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv[i] = 1.0f / std::pow(c.rope_theta, expo);
  }
  if (freq_factors) {
    for (int64_t i = 0; i < half; ++i) inv[i] /= freq_factors[i];
  } else if (c.rope_scaling == RopeScalingType::kLlama3) {
    auto factors = llama3_rope_factors(c);
    for (int64_t i = 0; i < half; ++i) inv[i] /= factors[i];
  }
  if (c.rope_scaling == RopeScalingType::kLinear)
    for (auto& f : inv) f /= c.rope_factor;
  return inv;
}

std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  // transformers _compute_llama3_parameters: long wavelengths are divided by
  // factor, short ones kept, the band between interpolated smoothly.
  const int64_t half = c.head_dim / 2;
  std::vector<float> factors(static_cast<size_t>(half), 1.0f);
  const double low_wavelen = static_cast<double>(c.rope_original_ctx) / c.rope_low_freq_factor;
  const double high_wavelen = static_cast<double>(c.rope_original_ctx) / c.rope_high_freq_factor;
  for (int64_t i = 0; i < half; ++i) {
    float expo = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    double freq = 1.0f / std::pow(c.rope_theta, expo);
    double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      factors[i] = 1.0f;
    } else if (wavelen > low_wavelen) {
      factors[i] = c.rope_factor;
    } else {
      double smooth = (c.rope_original_ctx / wavelen - c.rope_low_freq_factor) /
                      (c.rope_high_freq_factor - c.rope_low_freq_factor);
      factors[i] = static_cast<float>(1.0 / ((1 - smooth) / c.rope_factor + smooth));
    }
  }
  return factors;
}

}  // namespace hanul
