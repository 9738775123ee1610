// hanul convert: a Hugging Face folder <-> GGUF, optionally quantizing.
#include <fmt/core.h>

#include "hanul/transform/convert.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {

int convert_main(int argc, char** argv) {
  CLI::App app{"Convert between a Hugging Face folder (safetensors) and GGUF, and quantize.", "convert"};
  std::string in, out, type;
  app.add_option("-m,--model", in, "input: GGUF file or Hugging Face folder")->required();
  app.add_option("-o,--output", out, "output: NAME.gguf for GGUF, anything else a Hugging Face folder")->required();
  app.add_option("--type", type, "weight type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, ...");
  if (auto code = parse(app, argc, argv)) return *code;
  ConvertOptions opts;
  if (!type.empty()) {
    opts.type = dtype_from_name(type);
    if (!opts.type) return fail("convert", fmt::format("--type: unknown type '{}'", type), kExitUsage);
  }
  if (Status s = convert_model(in, out, opts); !s.ok()) return fail("convert", s.message());
  std::printf("wrote %s\n", out.c_str());
  return kExitOk;
}

}  // namespace hanul::cli
