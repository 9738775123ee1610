// hanul template: a conversation through a model's own chat template, printed
// as the exact prompt the model would see (what transformers'
// apply_chat_template(..., tokenize=False) returns).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/formats/gguf.h"
#include "hanul/tokenizer/chat_template.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {
namespace {

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("cannot open '{}'", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// [{"role": "...", "content": "..."}, ...]
Result<std::vector<ChatMessage>> read_conversation(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(std::string text, read_text(path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return Error{fmt::format("'{}' is not valid JSON: {}", path, e.what())};
  }
  if (!j.is_array()) return Error{fmt::format("'{}' must be a JSON list of {{\"role\", \"content\"}} objects", path)};
  std::vector<ChatMessage> messages;
  for (size_t k = 0; k < j.size(); ++k) {
    const auto& m = j[k];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return Error{fmt::format("'{}': message {} needs a string \"role\" and a string \"content\"", path, k)};
    }
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return messages;
}

// BOS/EOS text for the template: the GGUF's tokenizer.ggml.{bos,eos}_token_id
// pieces, or tokenizer_config.json's bos_token / eos_token (a string or an
// AddedToken object with "content").
void find_special_tokens(const std::string& model, ChatTemplateInputs& in) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (model.ends_with(".gguf")) {
    auto g = GgufFile::open(model);
    if (!g.ok()) return;
    const auto* tokens = g->get_string_array("tokenizer.ggml.tokens");
    auto piece = [&](const char* key) -> std::string {
      auto id = g->get_int(key);
      if (!tokens || !id || *id < 0 || static_cast<size_t>(*id) >= tokens->size()) return {};
      return (*tokens)[static_cast<size_t>(*id)];
    };
    in.bos_token = piece("tokenizer.ggml.bos_token_id");
    in.eos_token = piece("tokenizer.ggml.eos_token_id");
    return;
  }
  fs::path config = fs::is_directory(model, ec) ? fs::path(model) / "tokenizer_config.json"
                                                : fs::path(model).parent_path() / "tokenizer_config.json";
  if (fs::path(model).filename() == "tokenizer_config.json") config = model;
  auto text = read_text(config.string());
  if (!text.ok()) return;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return;
  auto token = [&](const char* key) -> std::string {
    if (!j.contains(key)) return {};
    const auto& t = j[key];
    if (t.is_string()) return t.get<std::string>();
    if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
    return {};
  };
  in.bos_token = token("bos_token");
  in.eos_token = token("eos_token");
}

}  // namespace

int template_main(int argc, char** argv) {
  CLI::App app{"Render a conversation (a JSON list of {\"role\", \"content\"}) with a model's chat template.",
               "template"};
  std::string model, conversation, bos, eos;
  bool no_generation_prompt = false;
  bool have_bos = false, have_eos = false;
  app.add_option("-m,--model", model,
                 "GGUF, model folder, tokenizer_config.json, or a template file (.jinja or plain text)")
      ->required();
  app.add_option("conversation", conversation, "conversation.json")->required();
  app.add_flag("--no-generation-prompt", no_generation_prompt, "do not open an assistant turn at the end");
  auto* bos_opt = app.add_option("--bos", bos, "BOS text (default: the model's)");
  auto* eos_opt = app.add_option("--eos", eos, "EOS text (default: the model's)");
  if (auto code = parse(app, argc, argv)) return *code;
  have_bos = bos_opt->count() > 0;
  have_eos = eos_opt->count() > 0;

  auto messages = read_conversation(conversation);
  if (!messages.ok()) return fail("template", messages.message(), kExitUsage);

  std::error_code ec;
  if (!std::filesystem::exists(model, ec)) return fail("template", fmt::format("'{}' does not exist", model), kExitUsage);
  std::string source;
  const bool is_model = std::filesystem::is_directory(model, ec) || model.ends_with(".gguf") ||
                        model.ends_with(".json") || model.ends_with(".safetensors") || model.ends_with(".model");
  ChatTemplateInputs inputs;
  if (is_model) {
    auto found = find_chat_template(model);
    if (!found.ok()) return fail("template", found.message(), kExitUsage);
    if (*found) {
      source = **found;
    } else {
      std::fprintf(stderr, "hanul template: '%s' has no chat template; using ChatML\n", model.c_str());
      source = fallback_chat_template();
    }
    find_special_tokens(model, inputs);
  } else {
    auto text = read_text(model);
    if (!text.ok()) return fail("template", text.message(), kExitUsage);
    source = *text;
  }
  if (have_bos) inputs.bos_token = bos;
  if (have_eos) inputs.eos_token = eos;
  inputs.add_generation_prompt = !no_generation_prompt;

  auto tmpl = ChatTemplate::parse(source);
  if (!tmpl.ok()) return fail("template", tmpl.message(), kExitFailed);
  auto out = tmpl->render(*messages, inputs);
  if (!out.ok()) return fail("template", out.message(), kExitFailed);
  std::fwrite(out->data(), 1, out->size(), stdout);
  return kExitOk;
}

}  // namespace hanul::cli
