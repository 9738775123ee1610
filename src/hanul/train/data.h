// Training data: text corpora tokenized into binary shards of uint32 ids
// (documents separated by EOS) with an index.json, and a reader that serves
// deterministic [B, T+1] token windows from them (issue 5, "Data").
//
// Layout of DIR after prepare_data():
//   shard_00000.bin ...  train tokens, little-endian uint32, back to back
//   val_00000.bin ...    validation tokens, same format
//   index.json           tokenizer path + hash, n_vocab, eos, shard list with
//                        token counts, totals, document and malformed counts
// Every shard but the last of a split holds exactly shard_tokens ids; a
// document may continue into the next shard (the reader sees one stream).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hanul/base/mapped_file.h"
#include "hanul/base/result.h"

namespace hanul {

class Tokenizer;

struct DataPrepareOptions {
  std::string tokenizer_path;  // recorded in index.json with its hash
  std::string out_dir;
  double val_fraction = 0.01;  // 0: no validation split
  uint64_t shard_tokens = 100'000'000;
  uint64_t seed = 0;  // of the validation split's hash
  // Special tokens written in the text ("<|im_start|>") become their ids, as
  // for chat-formatted data; off by default, so a corpus cannot inject them.
  bool parse_special = false;
  // A text document longer than this is cut at a line boundary (counted in
  // the stats) so memory stays bounded even for a file with no blank lines.
  size_t max_document_bytes = 64u << 20;
  // Called after each input file (may be empty): progress for the CLI.
  std::function<void(const std::string& file, uint64_t docs, uint64_t tokens)> on_file;
};

struct DataPrepareStats {
  uint64_t documents = 0, train_documents = 0, val_documents = 0;
  uint64_t train_tokens = 0, val_tokens = 0;
  uint64_t malformed_lines = 0;  // jsonl lines that are not an object with a string "text"
  uint64_t cut_documents = 0;    // text documents cut at max_document_bytes
  std::vector<std::string> shard_files, val_shard_files;
};

// Inputs: a file ending in .jsonl holds one JSON object per line and its
// "text" string is a document; a malformed line is counted, not fatal. Any
// other file is plain UTF-8 text whose documents are the paragraphs separated
// by blank lines (a line empty or all whitespace); a paragraph keeps its inner
// newlines and loses the trailing one. Files are read line by line, never
// whole. EOS follows every document. Validation documents are those whose
// seeded content hash is 0 modulo round(1 / val_fraction): the split does not
// depend on file order, and equal documents land on the same side.
Result<DataPrepareStats> prepare_data(const Tokenizer& tokenizer,
                                      const std::vector<std::string>& files,
                                      const DataPrepareOptions& options);

// True when the document with this text goes to the validation split.
bool is_validation_document(std::string_view text, uint64_t seed, double val_fraction);

// FNV-1a 64 of a file (or of a folder's regular files in name order), as
// "fnv1a64:<16 hex>": index.json records which tokenizer made the ids.
Result<std::string> hash_tokenizer_files(const std::string& path);

// Reads the shards of one split through memory maps. Window k (0-based) of
// an epoch is tokens [k*T, k*T + T + 1) of the concatenated stream; there are
// (total - 1) / T of them. Batch `step` holds windows step*B .. step*B + B - 1
// counted across epochs, so a run resumed at step s reads exactly what an
// uninterrupted run would. With shuffle, each epoch visits its windows in a
// seeded affine order (a*k + c mod n, a coprime to n).
class DataShards {
 public:
  struct Options {
    bool validation = false;
    bool shuffle = false;
    uint64_t seed = 0;
  };
  static Result<DataShards> open(const std::string& dir, const Options& options);
  static Result<DataShards> open(const std::string& dir) { return open(dir, Options{}); }

  uint64_t total_tokens() const { return total_; }
  int32_t n_vocab() const { return n_vocab_; }
  int32_t eos() const { return eos_; }
  uint64_t windows_per_epoch(int T) const { return T > 0 && total_ > 1 ? (total_ - 1) / T : 0; }

  // The window (0 .. windows_per_epoch(T) - 1) that global window g reads.
  uint64_t window(uint64_t g, int T) const;
  // Copies tokens [begin, begin + n) of the stream into out.
  Status read(uint64_t begin, uint64_t n, int32_t* out) const;
  // out: B * (T + 1) ids, row b = window (step * B + b).
  Status batch(uint64_t step, int B, int T, int32_t* out) const;

 private:
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<uint64_t> starts_;  // stream offset of each shard; back() = total
  uint64_t total_ = 0;
  int32_t n_vocab_ = 0, eos_ = -1;
  Options options_;
  std::string dir_;
};

}  // namespace hanul
