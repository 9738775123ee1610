// hanul data prepare: tokenize text corpora into uint32 shards + index.json
// for `hanul train` (src/hanul/train/data.h describes the format).
#include <filesystem>
#include <fmt/core.h>

#include "hanul/tokenizer/tokenizer.h"
#include "hanul/train/data.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {

int data_main(int argc, char** argv) {
  CLI::App app{"Training data tools.", "data"};
  app.require_subcommand(1);
  CLI::App* prep = app.add_subcommand(
      "prepare",
      "tokenize .txt (documents = blank-line-separated paragraphs) and .jsonl (a \"text\" field per line) "
      "into uint32 shards with EOS after each document, an index.json and a validation split");
  DataPrepareOptions opt;
  std::vector<std::string> files;
  prep->add_option("--tokenizer", opt.tokenizer_path, "GGUF, tokenizer.json, tokenizer.model or a model folder")
      ->required();
  prep->add_option("--out", opt.out_dir, "output folder (created)")->required();
  prep->add_option("--val-fraction", opt.val_fraction, "share of documents for validation (default 0.01)");
  prep->add_option("--shard-tokens", opt.shard_tokens, "tokens per shard (default 100000000)");
  prep->add_option("--seed", opt.seed, "seed of the validation split's hash (default 0)");
  prep->add_flag("--parse-special", opt.parse_special,
                 "special tokens written in the text (e.g. <|im_start|>) become their ids (for chat data)");
  prep->add_option("files", files, "input .txt / .jsonl files")->required();
  if (auto code = parse(app, argc, argv)) return *code;

  // A missing or unreadable input is bad usage (exit 2), found before any work.
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f, ec))
      return fail("data", fmt::format("input '{}' is not a readable file", f), kExitUsage);
  }
  auto tok = Tokenizer::load(opt.tokenizer_path);
  if (!tok.ok()) return fail("data", tok.message(), kExitUsage);
  opt.on_file = [](const std::string& f, uint64_t docs, uint64_t tokens) {
    fmt::print(stderr, "{}: {} documents, {} tokens\n", f, docs, tokens);
  };
  auto st = prepare_data(*tok, files, opt);
  if (!st.ok()) return fail("data", st.message());
  fmt::print("{}: {} documents ({} validation), {} train tokens in {} shards, {} validation tokens in {} shards",
             opt.out_dir, st->documents, st->val_documents, st->train_tokens, st->shard_files.size(),
             st->val_tokens, st->val_shard_files.size());
  if (st->malformed_lines) fmt::print(", {} malformed jsonl lines skipped", st->malformed_lines);
  if (st->cut_documents) fmt::print(", {} over-long documents cut at a line", st->cut_documents);
  fmt::print("\n");
  return kExitOk;
}

}  // namespace hanul::cli
