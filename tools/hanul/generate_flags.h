// The sampling and constraint flags that `hanul run` and `hanul chat` share, with llama.cpp's
// names (tools/main/README.md): --temp --seed --top-k --top-p --min-p --typical
// --repeat-penalty --repeat-last-n --presence-penalty --frequency-penalty --logit-bias
// -r/--reverse-prompt --stop --grammar-file --json-schema --ignore-eos.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/generate/generator.h"
#include "hanul/generate/sampler.h"

namespace hanul::cli {

struct GenerateFlags {
  SamplerParams sampling;
  int64_t seed = -1;  // -1: a random seed
  std::vector<std::string> logit_bias;
  std::vector<std::string> stops;
  std::string grammar_file, json_schema_file;
  bool ignore_eos = false;
};

// Adds the flags to app; `default_temp` is the command's default temperature.
void add_generate_flags(CLI::App& app, GenerateFlags& flags, float default_temp);

// The sampler parameters (seed resolved) and the generation options (stop strings, grammar
// compiled from --grammar-file or --json-schema). Errors name the flag and the file.
Result<SamplerParams> sampler_params(const GenerateFlags& flags);
Result<GenerateOptions> generate_options(const GenerateFlags& flags);

// "15043+1.5", "15043-1", "2-inf" -> id, bias.
Result<std::pair<int32_t, float>> parse_logit_bias(const std::string& text);

}  // namespace hanul::cli
