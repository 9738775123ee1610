#include "tools/hanul/generate_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/generate/grammar.h"
#include "hanul/generate/json_schema.h"

namespace hanul::cli {

void add_generate_flags(CLI::App& app, GenerateFlags& f, float default_temp) {
  SamplerParams& s = f.sampling;
  s.temperature = default_temp;
  app.add_option("--temp", s.temperature, "temperature; 0 is greedy")->capture_default_str()->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--seed", f.seed, "random seed; -1: a new one each run (default)")->check(CLI::Range(int64_t{-1}, int64_t{UINT32_MAX}));
  app.add_option("--top-k", s.top_k, "keep the k most likely tokens; 0: off")->capture_default_str()->check(CLI::Range(0, 1 << 30));
  app.add_option("--top-p", s.top_p, "nucleus: keep the most likely tokens up to this mass; 1: off")->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--min-p", s.min_p, "keep tokens with p >= min-p * p(most likely); 0: off")->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--typical", s.typical_p, "locally typical sampling mass; 1: off")->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--repeat-penalty", s.repeat_penalty, "penalty of recent tokens; 1: off")->capture_default_str()->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--repeat-last-n", s.repeat_last_n, "how many recent tokens the penalties see; -1: all, 0: off")->capture_default_str()->check(CLI::Range(-1, 1 << 30));
  app.add_option("--presence-penalty", s.presence_penalty, "subtracted once from the logit of every recent token")->capture_default_str();
  app.add_option("--frequency-penalty", s.frequency_penalty, "subtracted per occurrence of a recent token")->capture_default_str();
  app.add_option("--logit-bias", f.logit_bias, "ID(+|-)BIAS, e.g. 15043+1 or 2-inf (bans id 2); repeatable");
  app.add_option("-r,--reverse-prompt,--stop", f.stops, "stop when this text appears (it is not printed); repeatable");
  app.add_option("--grammar-file", f.grammar_file, "constrain the output to this GBNF grammar")->check(CLI::ExistingFile);
  app.add_option("--json-schema", f.json_schema_file, "constrain the output to JSON valid for this schema file")->check(CLI::ExistingFile);
  app.add_flag("--ignore-eos", f.ignore_eos, "keep generating past end-of-generation tokens");
}

Result<std::pair<int32_t, float>> parse_logit_bias(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 10 || i == text.size() || (text[i] != '+' && text[i] != '-'))
    return Error{fmt::format("--logit-bias '{}': expected ID+BIAS or ID-BIAS, e.g. 15043+1 or 2-inf", text)};
  long long id = std::strtoll(text.substr(0, i).c_str(), nullptr, 10);
  if (id > INT32_MAX) return Error{fmt::format("--logit-bias '{}': {} is not a token id", text, id)};
  const std::string num = text.substr(i);  // with its sign
  char* end = nullptr;
  errno = 0;
  float bias = std::strtof(num.c_str(), &end);
  if (end == num.c_str() || *end != '\0' || std::isnan(bias))
    return Error{fmt::format("--logit-bias '{}': '{}' is not a number", text, num.substr(1))};
  return std::make_pair(static_cast<int32_t>(id), bias);
}

Result<SamplerParams> sampler_params(const GenerateFlags& f) {
  SamplerParams p = f.sampling;
  p.seed = f.seed >= 0 ? static_cast<uint32_t>(f.seed) : std::random_device{}();
  for (const auto& b : f.logit_bias) {
    HANUL_ASSIGN_OR_RETURN(auto kv, parse_logit_bias(b));
    p.logit_bias[kv.first] += kv.second;
  }
  return p;
}

namespace {

Result<std::string> read_text(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{} {}: cannot open the file", flag, path)};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<GenerateOptions> generate_options(const GenerateFlags& f) {
  GenerateOptions opt;
  opt.stops = f.stops;
  for (const auto& s : opt.stops)
    if (s.empty()) return Error{"--stop / --reverse-prompt: an empty stop string would stop at once"};
  opt.ignore_eos = f.ignore_eos;
  if (!f.grammar_file.empty() && !f.json_schema_file.empty())
    return Error{"give either --grammar-file or --json-schema, not both"};
  std::string gbnf;
  if (!f.grammar_file.empty()) {
    HANUL_ASSIGN_OR_RETURN(gbnf, read_text("--grammar-file", f.grammar_file));
  } else if (!f.json_schema_file.empty()) {
    HANUL_ASSIGN_OR_RETURN(std::string text, read_text("--json-schema", f.json_schema_file));
    auto schema = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) return Error{fmt::format("--json-schema {}: not valid JSON", f.json_schema_file)};
    auto g = json_schema_to_grammar(schema);
    if (!g.ok()) return Error{fmt::format("--json-schema {}: {}", f.json_schema_file, g.message())};
    gbnf = std::move(g).value();
  }
  if (!gbnf.empty()) {
    auto g = Grammar::parse(gbnf);
    if (!g.ok()) {
      const std::string& file = f.grammar_file.empty() ? f.json_schema_file : f.grammar_file;
      return Error{fmt::format("{}: {}", file, g.message())};
    }
    opt.grammar = std::make_shared<const Grammar>(std::move(g).value());
  }
  return opt;
}

}  // namespace hanul::cli
