#include "hanul/transform/convert.h"

#include <filesystem>

#include <fmt/core.h>

#include "hanul/base/log.h"
#include "hanul/base/mapped_file.h"
#include "hanul/formats/gguf.h"
#include "hanul/formats/safetensors.h"
#include "hanul/model/weights.h"
#include "hanul/tensor/quantize.h"
#include "hanul/tokenizer/tokenizer_export.h"

namespace hanul {
namespace {

// llama.cpp's llama_ftype for general.file_type (llama.h), by weight dtype.
int file_type_of(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 12;  // Q3_K_M
    case DType::Q4_K: return 15;  // Q4_K_M
    case DType::Q5_K: return 17;  // Q5_K_M
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default: return -1;
  }
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace

DType weight_dtype_for(DType want, int64_t cols) {
  DType t = want;
  if (cols % block_size(t) != 0) {
    switch (want) {
      case DType::Q4_K: t = DType::Q5_0; break;
      case DType::Q5_K: t = DType::Q5_1; break;
      case DType::Q6_K: t = DType::Q8_0; break;
      default: t = DType::F16; break;
    }
  }
  if (cols % block_size(t) != 0) t = DType::F16;
  return t;
}

Status convert_model(const std::string& in, const std::string& out, const ConvertOptions& opts) {
  HANUL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, load_model(in));
  const bool to_gguf = out.size() >= 5 && out.compare(out.size() - 5, 5, ".gguf") == 0;
  if (opts.type && !can_quantize(*opts.type))
    return Error{fmt::format("convert: cannot write dtype {}", dtype_name(*opts.type))};
  if (!to_gguf && opts.type && !is_float(*opts.type))
    return Error{fmt::format("convert: safetensors holds F32, F16 or BF16 weights, not {}; write a .gguf",
                             dtype_name(*opts.type))};

  ModelConfig cfg = model->config;
  // GGUF llama rotates adjacent pairs; HF folders (and qwen2 anywhere) halves.
  const RopeLayout out_layout = to_gguf && cfg.arch == Arch::kLlama ? RopeLayout::kPairs : RopeLayout::kHalves;
  const bool permute = cfg.rope_layout != out_layout;

  std::vector<Tensor> tensors;
  Status status;
  int n_fallback = 0;
  Weights weights = model->weights;
  for_each_tensor(cfg, weights, [&](TensorSlot& s) {
    if (!status.ok() || !s.tensor->data) return;
    if (s.optional && s.gguf_name == "output.weight" && cfg.tie_embeddings) return;
    const std::string& name = to_gguf ? s.gguf_name : s.hf_name;
    if (name.empty()) return;  // rope_freqs has no HF tensor: the config carries it
    Tensor t = *s.tensor;
    t.name = name;
    if (permute && s.rope_permute_heads > 0) t = permute_qk_rows(t, s.rope_permute_heads, to_gguf);
    DType want = t.dtype;
    if (t.shape.size() == 1) {
      // GGUF keeps norms and biases F32 as llama.cpp does; a HF folder takes
      // the asked float type, so F16 -> GGUF -> F16 round-trips exactly.
      want = to_gguf ? DType::F32 : opts.type ? *opts.type : is_float(t.dtype) ? t.dtype : DType::F32;
    } else if (opts.type) {
      want = weight_dtype_for(*opts.type, t.cols());
      if (want != *opts.type) ++n_fallback;
    } else if (!to_gguf && !is_float(t.dtype)) {
      want = DType::F32;
    }
    auto converted = to_dtype(t, want);
    if (!converted.ok()) {
      status = converted.error();
      return;
    }
    tensors.push_back(std::move(converted).value());
  });
  HANUL_TRY(status);
  if (n_fallback > 0)
    log_warn("convert: {} tensors have rows that are not whole {} blocks and were written in a fall-back type",
             n_fallback, dtype_name(*opts.type));

  // The tokenizer travels with the weights (issue 2): GGUF metadata from
  // the folder's tokenizer.json / tokenizer.model, tokenizer.json +
  // tokenizer_config.json from the GGUF's vocabulary. A model without one
  // still converts; `hanul run` then takes ids only.
  std::optional<TokenizerExport> tok;
  if (!(to_gguf && model->format == "gguf")) {
    auto loaded = load_tokenizer_for_export(in);
    if (!loaded.ok()) return Error{fmt::format("convert: the tokenizer of '{}': {}", in, loaded.message())};
    tok = std::move(loaded).value();
    if (!tok) log_warn("convert: '{}' has no tokenizer; '{}' will have none either", in, out);
  }

  if (to_gguf) {
    GgufWriter w;
    config_to_gguf(cfg, w);
    if (model->format == "gguf") {
      // GGUF -> GGUF keeps the embedded vocabulary, merges and chat template as they are.
      const auto& src = *std::static_pointer_cast<const GgufFile>(model->source);
      for (const auto& [key, value] : src.metadata())
        if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
    } else if (tok) {
      if (tok->model.vocab.n_tokens() > cfg.n_vocab)
        log_warn("convert: the tokenizer has {} tokens but the model only {} embedding rows",
                 tok->model.vocab.n_tokens(), cfg.n_vocab);
      HANUL_TRY(write_gguf_tokenizer(*tok, w, cfg.n_vocab));
    }
    if (cfg.rope_scaling == RopeScalingType::kLlama3) {
      // llama.cpp carries llama3 scaling as a rope_freqs tensor; hanul also
      // keeps the parameters so the HF config can be written back exactly.
      if (!model->weights.rope_freqs.data) {  // else for_each_tensor copied it already
        std::vector<float> factors = llama3_rope_factors(cfg);
        Tensor rf = Tensor::allocate("rope_freqs.weight", DType::F32, {static_cast<int64_t>(factors.size())});
        std::copy(factors.begin(), factors.end(), static_cast<float*>(rf.mutable_data()));
        tensors.push_back(rf);
      }
      w.set_f32("hanul.rope.llama3.factor", cfg.rope_factor);
      w.set_f32("hanul.rope.llama3.low_freq_factor", cfg.rope_low_freq_factor);
      w.set_f32("hanul.rope.llama3.high_freq_factor", cfg.rope_high_freq_factor);
      w.set_u32("hanul.rope.llama3.original_context_length", static_cast<uint32_t>(cfg.rope_original_ctx));
    }
    DType main = opts.type ? *opts.type : model->weights.layers.empty() ? DType::F32 : model->weights.layers[0].wq.dtype;
    if (int ft = file_type_of(main); ft >= 0) w.set_u32("general.file_type", static_cast<uint32_t>(ft));
    w.set_u32("general.quantization_version", 2);
    for (const Tensor& t : tensors) w.add_tensor(t);
    return w.write(out);
  }

  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Error{fmt::format("convert: cannot create folder {}: {}", out, ec.message())};
  cfg.rope_layout = RopeLayout::kHalves;
  HANUL_TRY(write_safetensors_dir(out, tensors));
  if (tok && model->format == "gguf") {
    HANUL_TRY(write_hf_tokenizer(*tok, out));
  } else if (tok) {
    // Folder -> folder: the tokenizer files as they are (nothing is lost).
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                             "special_tokens_map.json", "chat_template.jinja"}) {
      const std::filesystem::path from = std::filesystem::path(in) / name;
      if (!std::filesystem::exists(from, ec)) continue;
      std::filesystem::copy_file(from, std::filesystem::path(out) / name,
                                 std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) return Error{fmt::format("convert: cannot copy {} to {}: {}", from.string(), out, ec.message())};
    }
  }
  return write_file_atomic(out + "/config.json", config_to_hf_json(cfg));
}

}  // namespace hanul
