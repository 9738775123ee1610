// hanul tokenizer train: learn a byte-level BPE (GPT-2 style) from text files
// and write a Hugging Face tokenizer.json that both hanul and HF tokenizers
// load and encode identically.
//
//   hanul tokenizer train --vocab-size 32000 --special '<|endoftext|>' -o tokenizer.json a.txt b.txt
//
// 'encode' encodes many texts in one process: each input line is a JSON
// string (so a text may hold newlines), each output line its ids. The
// reference check (tests/reference/check_tokenizers.py) and the speed bench
// use it; 'hanul tokenize' is the one-text form.
//
//   hanul tokenizer encode -m tokenizer.json texts.jsonl > ids.txt
//
// 'export' writes a model's tokenizer (a GGUF's tokenizer.ggml.*, a folder's
// tokenizer.json / tokenizer.model) as a Hugging Face tokenizer.json +
// tokenizer_config.json, with the HF pre-tokenizer for its family.
//
//   hanul tokenizer export -m ggml-vocab-mpt.gguf -o mpt-hf/
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/tokenizer/bpe_trainer.h"
#include "hanul/tokenizer/tokenizer_export.h"
#include "hanul/tokenizer/tokenizer.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {
namespace {

Status write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  if (!out) return Error{fmt::format("cannot create '{}'", path)};
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) return Error{fmt::format("cannot write '{}'", path)};
  return Status::Ok();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int encode_lines(const std::string& model_path, const std::string& lines_path, bool raw, bool add_special,
                 bool parse_special, bool with_decode) {
  auto tok = Tokenizer::load(model_path);
  if (!tok.ok()) return fail("tokenizer encode", tok.message(), kExitUsage);
  std::ifstream in(lines_path, std::ios::binary);
  std::string line, out;
  size_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  size_t bytes = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string text = line;
    if (!raw) {
      try {
        text = nlohmann::json::parse(line).get<std::string>();
      } catch (const std::exception& e) {
        return fail("tokenizer encode", fmt::format("{}:{}: not a JSON string: {}", lines_path, n, e.what()),
                    kExitUsage);
      }
    }
    bytes += text.size();
    const std::vector<int32_t> ids = tok->encode(text, add_special, parse_special);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ' ';
      out += std::to_string(ids[i]);
    }
    if (with_decode) {
      out += '\t';
      // Invalid UTF-8 (a token that is part of a character) shows as U+FFFD.
      out += nlohmann::json(tok->decode(ids, true)).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    }
    out += '\n';
  }
  const double s = seconds_since(t0);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fprintf(stderr, "hanul tokenizer encode: %zu lines, %.2f MB in %.3f s (%.2f MB/s, parsing included)\n", n,
               static_cast<double>(bytes) / 1e6, s, static_cast<double>(bytes) / 1e6 / s);
  return kExitOk;
}

int export_tokenizer(const std::string& model_path, const std::string& out_dir) {
  auto src = load_tokenizer_for_export(model_path);
  if (!src.ok()) return fail("tokenizer export", src.message(), kExitUsage);
  if (!*src) return fail("tokenizer export", fmt::format("'{}' carries no tokenizer", model_path), kExitUsage);
  const Status st = write_hf_tokenizer(**src, out_dir);
  if (!st.ok()) return fail("tokenizer export", st.message());
  std::fprintf(stderr, "hanul tokenizer export: %d tokens -> %s/tokenizer.json, tokenizer_config.json\n",
               (*src)->model.vocab.n_tokens(), out_dir.c_str());
  return kExitOk;
}

}  // namespace

int tokenizer_main(int argc, char** argv) {
  CLI::App app{"Tokenizer tools. 'train' learns a byte-level BPE from text files and writes tokenizer.json.",
               "tokenizer"};
  app.require_subcommand(1);
  CLI::App* train = app.add_subcommand("train", "learn a byte-level BPE (GPT-2 pre-tokenizer) from text files");
  int vocab_size = 0;
  int64_t min_frequency = 1;
  std::vector<std::string> specials, corpus;
  std::string out_path, merges_path, vocab_path;
  train->add_option("--vocab-size", vocab_size, "tokens in all: special tokens + 256 bytes + merges")->required();
  train->add_option("--special", specials, "a special token (repeatable), e.g. <|endoftext|>; ids 0, 1, ...");
  train->add_option("--min-frequency", min_frequency, "ignore words seen fewer times (default 1)");
  train->add_option("-o,--output", out_path, "tokenizer.json to write")->required();
  train->add_option("--merges-txt", merges_path, "also write GPT-2 style merges.txt");
  train->add_option("--vocab-json", vocab_path, "also write GPT-2 style vocab.json");
  train->add_option("corpus", corpus, "text files (UTF-8)")->required()->check(CLI::ExistingFile);
  CLI::App* enc = app.add_subcommand("encode", "encode JSON-string lines, one line of ids per input line");
  std::string model_path, lines_path;
  bool parse_special = false, add_special = false, raw_lines = false, with_decode = false;
  enc->add_option("-m,--model", model_path, "GGUF, tokenizer.json, tokenizer.model or a model folder")->required();
  enc->add_option("lines", lines_path, "file of JSON strings, one a line")->required()->check(CLI::ExistingFile);
  enc->add_flag("--raw", raw_lines, "lines are plain text, not JSON strings");
  enc->add_flag("--parse-special", parse_special, "turn control-token text into its id");
  enc->add_flag("--add-special", add_special, "add BOS/EOS as the tokenizer's config asks");
  enc->add_flag("--decode", with_decode, "after the ids, a tab and decode(ids) as a JSON string");
  CLI::App* exp =
      app.add_subcommand("export", "write a model's tokenizer as HF tokenizer.json + tokenizer_config.json");
  std::string export_model, export_dir;
  exp->add_option("-m,--model", export_model, "GGUF, tokenizer.json, tokenizer.model or a model folder")->required();
  exp->add_option("-o,--output", export_dir, "folder to write (created if missing)")->required();
  if (auto code = parse(app, argc, argv)) return *code;
  if (exp->parsed()) return export_tokenizer(export_model, export_dir);
  if (enc->parsed()) return encode_lines(model_path, lines_path, raw_lines, add_special, parse_special, with_decode);

  BpeTrainOptions options;
  options.vocab_size = vocab_size;
  options.special_tokens = specials;
  options.min_word_frequency = min_frequency;
  auto trainer = BpeTrainer::create(options);
  if (!trainer.ok()) return fail("tokenizer train", trainer.message(), kExitUsage);

  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& path : corpus) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("tokenizer train", fmt::format("cannot open '{}'", path));
    std::stringstream ss;
    ss << in.rdbuf();
    trainer->add_text(ss.str());
  }
  const double t_count = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  auto result = trainer->train();
  if (!result.ok()) return fail("tokenizer train", result.message());
  const double t_merge = seconds_since(t1);
  std::fprintf(stderr,
               "hanul tokenizer train: %.1f MB, %zu distinct words (%.2f s); %zu merges, %zu tokens (%.2f s)\n",
               static_cast<double>(trainer->bytes_seen()) / 1e6, trainer->distinct_words(), t_count,
               result->merges.size(), result->tokens.size(), t_merge);
  if (result->tokens.size() < static_cast<size_t>(vocab_size)) {
    std::fprintf(stderr, "hanul tokenizer train: the corpus ran out of pairs before %d tokens\n", vocab_size);
  }
  Status st = write_file(out_path, bpe_tokenizer_json(*result));
  if (st.ok() && !merges_path.empty()) st = write_file(merges_path, bpe_merges_txt(*result));
  if (st.ok() && !vocab_path.empty()) st = write_file(vocab_path, bpe_vocab_json(*result));
  if (!st.ok()) return fail("tokenizer train", st.message());
  return kExitOk;
}

}  // namespace hanul::cli
