// hanul info: what a model file holds — architecture, shapes, dtypes,
// parameter count and size.
#include <cstdio>
#include <map>

#include <fmt/core.h>

#include "hanul/model/weights.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {

int info_main(int argc, char** argv) {
  CLI::App app{"Print a model's architecture, shapes, dtypes, parameter count and file size.", "info"};
  std::string model_path;
  bool tensors = false;
  app.add_option("-m,--model", model_path, "GGUF file or Hugging Face folder (default: the model in models/)");
  app.add_flag("--tensors", tensors, "list every tensor");
  if (auto code = parse(app, argc, argv)) return *code;
  if (model_path.empty()) model_path = default_model_path();
  auto loaded = load_model(model_path);
  if (!loaded.ok()) return fail("info", loaded.message(), kExitUsage);
  Model& m = **loaded;
  const ModelConfig& c = m.config;

  int64_t params = 0, bytes = 0;
  std::map<std::string, int> dtype_counts;
  std::vector<std::string> lines;
  for_each_tensor(c, m.weights, [&](TensorSlot& s) {
    if (!s.tensor->data || (s.gguf_name == "output.weight" && c.tie_embeddings)) return;
    params += s.tensor->numel();
    bytes += s.tensor->nbytes();
    dtype_counts[std::string(dtype_name(s.tensor->dtype))]++;
    if (tensors)
      lines.push_back(fmt::format("  {:<40} {:<6} {}", m.format == "gguf" ? s.gguf_name : s.hf_name,
                                  dtype_name(s.tensor->dtype), s.tensor->shape_str()));
  });
  std::string dtypes;
  for (const auto& [name, n] : dtype_counts) dtypes += fmt::format("{}{} x{}", dtypes.empty() ? "" : ", ", name, n);
  const char* scaling[] = {"none", "linear", "llama3"};
  std::printf("%s", fmt::format(
      "model        {}\n"
      "format       {}\n"
      "architecture {} ({})\n"
      "n_vocab      {}\nn_embd       {}\nn_layer      {}\nn_head       {}\nn_head_kv    {}\n"
      "head_dim     {}\nn_ff         {}\nn_ctx_train  {}\n"
      "rope         theta {}, scaling {} (factor {}), layout {}\n"
      "rms_eps      {}\n"
      "tied output  {}\n"
      "qkv bias     {}\n"
      "tensors      {}\n"
      "parameters   {} ({:.2f} M)\n"
      "weights      {:.2f} MiB ({:.2f} bits per weight)\n"
      "file size    {:.2f} MiB\n",
      m.path, m.format, c.arch_name(), c.hf_architecture, c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv,
      c.head_dim, c.n_ff, c.n_ctx_train, c.rope_theta, scaling[static_cast<int>(c.rope_scaling)], c.rope_factor,
      c.rope_layout == RopeLayout::kPairs ? "pairs (GGUF)" : "halves (HF)", c.rms_eps, c.tie_embeddings ? "yes" : "no",
      c.qkv_bias ? "yes" : "no", dtypes, params, params / 1e6, bytes / 1048576.0,
      params ? 8.0 * bytes / params : 0.0, m.file_bytes / 1048576.0).c_str());
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return kExitOk;
}

}  // namespace hanul::cli
