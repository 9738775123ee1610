#include "hanul/train/train_config.h"

#include <fmt/core.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <variant>

#include "hanul/base/mapped_file.h"

namespace hanul {
namespace {

using json = nlohmann::json;

// A key of the table: where its value lives in TrainConfig.
using Member = std::variant<std::string TrainConfig::*, int64_t TrainConfig::*, int TrainConfig::*,
                            uint64_t TrainConfig::*, double TrainConfig::*, bool TrainConfig::*>;

struct Field {
  TrainConfigKey key;
  Member member;
};

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      {{"data", "training data folder (from `hanul data prepare`)"}, &TrainConfig::data},
      {{"out", "run folder: checkpoint/, metrics.jsonl, loss.svg"}, &TrainConfig::out},
      {{"tokenizer", "tokenizer to ship with the model (default: the one the data was made with)"},
       &TrainConfig::tokenizer},
      {{"init", "start from this model's weights (GGUF, safetensors, folder) instead of random ones"},
       &TrainConfig::init},
      {{"dim", "model width (n_embd)"}, &TrainConfig::dim},
      {{"n_layers", "transformer blocks"}, &TrainConfig::n_layers},
      {{"n_heads", "attention heads"}, &TrainConfig::n_heads},
      {{"n_kv_heads", "key/value heads (GQA); 0: n_heads"}, &TrainConfig::n_kv_heads},
      {{"ffn_dim", "SwiGLU hidden size"}, &TrainConfig::ffn_dim},
      {{"context", "the model's context length (n_ctx_train); 0: seq_len"}, &TrainConfig::context},
      {{"rope_theta", "RoPE base"}, &TrainConfig::rope_theta},
      {{"rms_eps", "RMSNorm epsilon"}, &TrainConfig::rms_eps},
      {{"tie_embeddings", "output projection shares the embedding (true/false)"}, &TrainConfig::tie_embeddings},
      {{"init_std", "standard deviation of the random initial weights"}, &TrainConfig::init_std},
      {{"batch_size", "sequences per optimizer step, over all ranks"}, &TrainConfig::batch_size},
      {{"seq_len", "tokens per sequence"}, &TrainConfig::seq_len},
      {{"grad_accum", "micro-batches per step on each rank (gradient accumulation)"}, &TrainConfig::grad_accum},
      {{"shuffle", "visit the data windows in a seeded order each epoch (true/false)"}, &TrainConfig::shuffle},
      {{"steps", "optimizer steps in all"}, &TrainConfig::steps},
      {{"warmup_steps", "linear warm-up steps"}, &TrainConfig::warmup_steps},
      {{"lr", "peak learning rate"}, &TrainConfig::lr},
      {{"min_lr", "learning rate at the end of the cosine decay"}, &TrainConfig::min_lr},
      {{"weight_decay", "AdamW decoupled weight decay"}, &TrainConfig::weight_decay},
      {{"beta1", "AdamW beta1"}, &TrainConfig::beta1},
      {{"beta2", "AdamW beta2"}, &TrainConfig::beta2},
      {{"adam_eps", "AdamW epsilon"}, &TrainConfig::adam_eps},
      {{"grad_clip", "clip gradients to this global norm; 0: no clipping"}, &TrainConfig::grad_clip},
      {{"seed", "seed of the initial weights and the data order"}, &TrainConfig::seed},
      {{"matmul_precision",
        "fp32, or bf16: matmul products in bf16, weights and optimizer float32 (needs AVX512_BF16)"},
       &TrainConfig::matmul_precision},
      {{"checkpoint_every", "save a checkpoint every N steps (and at the end)"}, &TrainConfig::checkpoint_every},
      {{"eval_every", "validation loss every N steps (and at the end); 0: only at the end"},
       &TrainConfig::eval_every},
      {{"eval_batches", "validation batches per evaluation"}, &TrainConfig::eval_batches},
      {{"threads", "worker threads; 0: all cores (the result does not depend on it)"}, &TrainConfig::threads},
  };
  return kFields;
}

const Field* find_field(const std::string& key) {
  for (const Field& f : fields())
    if (key == f.key.name) return &f;
  return nullptr;
}

Status unknown_key(const std::string& key, const std::string& where) {
  std::string names;
  for (const Field& f : fields()) names += (names.empty() ? "" : ", ") + std::string(f.key.name);
  return Error{fmt::format("{}unknown key '{}' (known: {})", where, key, names)};
}

template <typename T>
Status parse_integer(const std::string& key, const std::string& text, T& out) {
  errno = 0;
  char* end = nullptr;
  const bool is_unsigned = std::is_unsigned_v<T>;
  if (text.empty() || (is_unsigned && text[0] == '-'))
    return Error{fmt::format("'{}' must be a{} integer, got '{}'", key, is_unsigned ? " non-negative" : "n", text)};
  const long long v = is_unsigned ? static_cast<long long>(std::strtoull(text.c_str(), &end, 10))
                                  : std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || errno == ERANGE)
    return Error{fmt::format("'{}' must be an integer, got '{}'", key, text)};
  if constexpr (std::is_same_v<T, int>) {
    if (v < INT32_MIN || v > INT32_MAX) return Error{fmt::format("'{}' is out of range: {}", key, text)};
  }
  out = static_cast<T>(v);
  return Status::Ok();
}

Status set_from_text(TrainConfig& cfg, const Field& f, const std::string& key, const std::string& text) {
  return std::visit(
      [&](auto member) -> Status {
        using T = std::remove_reference_t<decltype(cfg.*member)>;
        T& slot = cfg.*member;
        if constexpr (std::is_same_v<T, std::string>) {
          slot = text;
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, bool>) {
          if (text == "true" || text == "1" || text == "yes" || text == "on") slot = true;
          else if (text == "false" || text == "0" || text == "no" || text == "off") slot = false;
          else return Error{fmt::format("'{}' must be true or false, got '{}'", key, text)};
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, double>) {
          errno = 0;
          char* end = nullptr;
          const double v = std::strtod(text.c_str(), &end);
          if (text.empty() || end == text.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
            return Error{fmt::format("'{}' must be a number, got '{}'", key, text)};
          slot = v;
          return Status::Ok();
        } else {
          return parse_integer(key, text, slot);
        }
      },
      f.member);
}

// A JSON value as the text a flag would carry.
Result<std::string> json_scalar_text(const std::string& key, const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return fmt::format("{:.17g}", v.get<double>());
  return Error{fmt::format("'{}' must be a string, number or boolean, got {}", key, v.dump())};
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// One YAML scalar: a quoted string (no escapes beyond \" and \\ in double
// quotes, '' in single quotes) or a plain one with an optional " #" comment.
Result<std::string> yaml_scalar(const std::string& raw, const std::string& where) {
  std::string v = trim(raw);
  if (v.empty()) return Error{fmt::format("{}: a value is missing (nested mappings are not supported)", where)};
  if (v[0] == '"' || v[0] == '\'') {
    const char q = v[0];
    std::string out;
    size_t i = 1;
    for (; i < v.size(); ++i) {
      if (q == '"' && v[i] == '\\' && i + 1 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\')) {
        out += v[++i];
      } else if (q == '\'' && v[i] == '\'' && i + 1 < v.size() && v[i + 1] == '\'') {
        out += '\'';
        ++i;
      } else if (v[i] == q) {
        break;
      } else {
        out += v[i];
      }
    }
    if (i >= v.size()) return Error{fmt::format("{}: unterminated quoted string", where)};
    const std::string rest = trim(v.substr(i + 1));
    if (!rest.empty() && rest[0] != '#') return Error{fmt::format("{}: text after the quoted string", where)};
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == '#' && i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
      v = trim(v.substr(0, i));
      break;
    }
  if (v[0] == '[' || v[0] == '{' || v[0] == '&' || v[0] == '*' || v[0] == '|' || v[0] == '>')
    return Error{fmt::format("{}: only plain scalars are supported, got '{}'", where, v)};
  return v;
}

Status load_yaml(TrainConfig& cfg, const std::string& text, const std::string& path) {
  size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    const std::string where = fmt::format("{}:{}", path, line_no);
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t == "---") continue;
    if (line[0] == ' ' || line[0] == '\t')
      return Error{fmt::format("{}: indented line: only a flat mapping of key: value is supported", where)};
    const size_t colon = t.find(':');
    if (colon == std::string::npos) return Error{fmt::format("{}: expected 'key: value', got '{}'", where, t)};
    const std::string key = trim(t.substr(0, colon));
    HANUL_ASSIGN_OR_RETURN(std::string value, yaml_scalar(t.substr(colon + 1), where));
    const Field* f = find_field(key);
    if (f == nullptr) return unknown_key(key, where + ": ");
    if (auto st = set_from_text(cfg, *f, key, value); !st.ok()) return Error{where + ": " + st.message()};
  }
  return Status::Ok();
}

Status load_json_object(TrainConfig& cfg, const json& j, const std::string& where) {
  if (!j.is_object()) return Error{fmt::format("{}: the config must be a JSON object", where)};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Field* f = find_field(it.key());
    if (f == nullptr) return unknown_key(it.key(), where + ": ");
    auto text = json_scalar_text(it.key(), it.value());
    if (!text.ok()) return Error{where + ": " + text.message()};
    if (auto st = set_from_text(cfg, *f, it.key(), *text); !st.ok()) return Error{where + ": " + st.message()};
  }
  return Status::Ok();
}

}  // namespace

const std::vector<TrainConfigKey>& train_config_keys() {
  static const std::vector<TrainConfigKey> kKeys = [] {
    std::vector<TrainConfigKey> keys;
    for (const Field& f : fields()) keys.push_back(f.key);
    return keys;
  }();
  return kKeys;
}

Status set_train_config_key(TrainConfig& cfg, const std::string& key, const std::string& text) {
  const Field* f = find_field(key);
  if (f == nullptr) return unknown_key(key, "train: ");
  return set_from_text(cfg, *f, key, text);
}

Status load_train_config_file(TrainConfig& cfg, const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  const std::string t = trim(text);
  if (!t.empty() && t[0] == '{') {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Error{fmt::format("{}: not valid JSON", path)};
    return load_json_object(cfg, j, path);
  }
  return load_yaml(cfg, text, path);
}

std::string train_config_to_json(const TrainConfig& cfg) {
  json j = json::object();
  for (const Field& f : fields())
    std::visit([&](auto member) { j[f.key.name] = cfg.*member; }, f.member);
  return j.dump(2) + "\n";
}

Result<TrainConfig> parse_train_config_json(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error{fmt::format("{}: not valid JSON", where)};
  TrainConfig cfg;
  HANUL_TRY(load_json_object(cfg, j, where));
  return cfg;
}

Status validate_train_config(const TrainConfig& c, int n_ranks) {
  auto positive = [](const char* key, int64_t v) -> Status {
    if (v <= 0) return Error{fmt::format("train: '{}' must be positive, got {}", key, v)};
    return Status::Ok();
  };
  if (c.data.empty()) return Error{"train: no data: give --data (a folder from `hanul data prepare`)"};
  if (c.out.empty()) return Error{"train: no run folder: give --out"};
  if (c.init.empty()) {
    HANUL_TRY(positive("dim", c.dim));
    HANUL_TRY(positive("n_layers", c.n_layers));
    HANUL_TRY(positive("n_heads", c.n_heads));
    HANUL_TRY(positive("ffn_dim", c.ffn_dim));
    if (c.dim % c.n_heads != 0)
      return Error{fmt::format("train: dim {} is not a multiple of n_heads {}", c.dim, c.n_heads)};
    if ((c.dim / c.n_heads) % 2 != 0)
      return Error{fmt::format("train: the head size dim / n_heads = {} must be even for RoPE", c.dim / c.n_heads)};
    const int64_t kv = c.n_kv_heads == 0 ? c.n_heads : c.n_kv_heads;
    if (kv <= 0 || c.n_heads % kv != 0)
      return Error{fmt::format("train: n_heads {} is not a multiple of n_kv_heads {}", c.n_heads, kv)};
    if (!(c.init_std > 0)) return Error{"train: 'init_std' must be positive"};
  }
  HANUL_TRY(positive("batch_size", c.batch_size));
  HANUL_TRY(positive("seq_len", c.seq_len));
  HANUL_TRY(positive("grad_accum", c.grad_accum));
  HANUL_TRY(positive("steps", c.steps));
  HANUL_TRY(positive("checkpoint_every", c.checkpoint_every));
  HANUL_TRY(positive("eval_batches", c.eval_batches));
  if (c.context < 0) return Error{"train: 'context' must be >= 0"};
  if (c.eval_every < 0) return Error{"train: 'eval_every' must be >= 0"};
  if (c.threads < 0) return Error{"train: 'threads' must be >= 0"};
  if (c.matmul_precision != "fp32" && c.matmul_precision != "bf16")
    return Error{fmt::format("train: 'matmul_precision' must be fp32 or bf16, got '{}'", c.matmul_precision)};
  if (c.batch_size % (static_cast<int64_t>(n_ranks) * c.grad_accum) != 0)
    return Error{fmt::format(
        "train: batch_size {} does not split over {} rank(s) x grad_accum {} (it must be a multiple of {})",
        c.batch_size, n_ranks, c.grad_accum, n_ranks * c.grad_accum)};
  if (c.warmup_steps < 0 || c.warmup_steps > c.steps)
    return Error{fmt::format("train: warmup_steps {} must be within 0..steps ({})", c.warmup_steps, c.steps)};
  if (!(c.lr > 0) || c.min_lr < 0 || c.min_lr > c.lr)
    return Error{fmt::format("train: need lr > 0 and 0 <= min_lr <= lr, got lr {} min_lr {}", c.lr, c.min_lr)};
  if (c.beta1 < 0 || c.beta1 >= 1 || c.beta2 < 0 || c.beta2 >= 1 || !(c.adam_eps > 0) || c.weight_decay < 0)
    return Error{"train: need 0 <= beta1, beta2 < 1, adam_eps > 0 and weight_decay >= 0"};
  return Status::Ok();
}

ModelConfig model_config_for(const TrainConfig& t, int64_t n_vocab, int32_t bos_id, int32_t eos_id) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.hf_architecture = "LlamaForCausalLM";
  c.name = "hanul";
  c.n_vocab = n_vocab;
  c.n_embd = t.dim;
  c.n_layer = t.n_layers;
  c.n_head = t.n_heads;
  c.n_head_kv = t.n_kv_heads == 0 ? t.n_heads : t.n_kv_heads;
  c.head_dim = t.dim / t.n_heads;
  c.n_ff = t.ffn_dim;
  c.n_ctx_train = t.context > 0 ? t.context : t.seq_len;
  c.rms_eps = static_cast<float>(t.rms_eps);
  c.rope_theta = static_cast<float>(t.rope_theta);
  c.tie_embeddings = t.tie_embeddings;
  c.rope_layout = RopeLayout::kHalves;  // Hugging Face's layout: the checkpoint is an HF model
  c.bos_id = bos_id;
  if (eos_id >= 0) c.eos_ids = {eos_id};
  return c;
}

}  // namespace hanul
