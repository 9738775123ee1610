// hanul tokenize / hanul detokenize: text to token ids and back with a
// model's own tokenizer (GGUF, tokenizer.json, tokenizer.model or a folder).
// No BOS/EOS unless --add-special, as llama.cpp's test vectors expect.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include <fmt/core.h>

#include "hanul/base/utf8.h"
#include "hanul/tokenizer/tokenizer.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {
namespace {

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// Shows a piece so that spaces, newlines and partial UTF-8 are visible.
std::string show_piece(const std::string& p) {
  const bool utf8 = utf8_is_valid(p);
  std::string out;
  for (unsigned char c : p) {
    if (c >= 0x80 && !utf8) {  // part of a character: show the byte
      out += fmt::format("\\x{:02x}", c);
      continue;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\'') out += "\\'";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

int tokenize_main(int argc, char** argv) {
  CLI::App app{"Turn text into token ids with a model's tokenizer. Reads stdin when TEXT is missing or '-'.",
               "tokenize"};
  std::string model_path, text;
  bool ids_only = false, add_special = false, parse_special = false, no_newline = false;
  app.add_option("-m,--model", model_path, "GGUF, tokenizer.json, tokenizer.model or a model folder")->required();
  app.add_option("text", text, "the text (default: stdin)");
  app.add_flag("--ids", ids_only, "print only the ids, space-separated on one line");
  app.add_flag("--add-special", add_special, "add BOS/EOS as the tokenizer's config asks");
  app.add_flag("--parse-special", parse_special, "turn control-token text such as <|eot_id|> into its id");
  app.add_flag("--no-trailing-newline", no_newline, "drop one trailing newline of stdin input");
  if (auto code = parse(app, argc, argv)) return *code;
  if (text.empty() || text == "-") {
    text = read_stdin();
    if (no_newline && !text.empty() && text.back() == '\n') text.pop_back();
  }
  auto tok = Tokenizer::load(model_path);
  if (!tok.ok()) return fail("tokenize", tok.message(), kExitUsage);
  const std::vector<int32_t> ids = tok->encode(text, add_special, parse_special);
  std::string out;
  if (ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? " " : "", ids[i]);
    out += "\n";
  } else {
    for (int32_t id : ids) out += fmt::format("{:>7} '{}'\n", id, show_piece(tok->token_to_piece(id, true)));
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int detokenize_main(int argc, char** argv) {
  CLI::App app{"Turn token ids back into text. Ids are separated by spaces or commas; stdin when none are given.",
               "detokenize"};
  std::string model_path;
  std::vector<std::string> args;
  bool special = false;
  app.add_option("-m,--model", model_path, "GGUF, tokenizer.json, tokenizer.model or a model folder")->required();
  app.add_option("ids", args, "token ids");
  app.add_flag("--special", special, "print the text of control tokens (<s>, <|eot_id|>) too");
  if (auto code = parse(app, argc, argv)) return *code;
  std::string joined;
  if (args.empty()) {
    joined = read_stdin();
  } else {
    for (const auto& a : args) joined += a + " ";
  }
  for (char& c : joined) {
    if (c == ',' || c == '[' || c == ']' || c == '\n' || c == '\t') c = ' ';
  }
  auto tok = Tokenizer::load(model_path);
  if (!tok.ok()) return fail("detokenize", tok.message(), kExitUsage);
  std::vector<int32_t> ids;
  std::istringstream in(joined);
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long v = std::strtol(word.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v >= tok->n_vocab()) {
      return fail("detokenize", fmt::format("'{}' is not a token id of this tokenizer (0..{})", word,
                                            tok->n_vocab() - 1), kExitUsage);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  const std::string text = tok->decode(ids, special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return kExitOk;
}

}  // namespace hanul::cli
