#include "hanul/train/data.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/tokenizer/tokenizer.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

// splitmix64's finaliser: spreads the FNV bits so "mod k" is uniform.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27; x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Status hash_file_into(const std::string& path, uint64_t& h) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("data: cannot open '{}': {}", path, std::strerror(errno))};
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = fnv1a(h, buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return Error{fmt::format("data: read error in '{}'", path)};
  return Status::Ok();
}

// One split's shard files: ids are buffered and written through an
// AtomicFileWriter, so a killed run never leaves a half shard under its name.
class ShardSink {
 public:
  ShardSink(std::string dir, std::string prefix, uint64_t shard_tokens)
      : dir_(std::move(dir)), prefix_(std::move(prefix)), shard_tokens_(shard_tokens) {}

  Status push(int32_t id) {
    if (!writer_) {
      std::string name = fmt::format("{}_{:05d}.bin", prefix_, files_.size());
      HANUL_ASSIGN_OR_RETURN(writer_, AtomicFileWriter::create((fs::path(dir_) / name).string()));
      files_.push_back({name, 0});
    }
    const uint32_t v = static_cast<uint32_t>(id);
    uint8_t le[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
    buf_.insert(buf_.end(), le, le + 4);
    ++files_.back().second;
    ++total_;
    if (buf_.size() >= (4u << 20)) HANUL_TRY(flush());
    if (files_.back().second == shard_tokens_) return close_shard();
    return Status::Ok();
  }
  Status finish() { return writer_ ? close_shard() : Status::Ok(); }
  const std::vector<std::pair<std::string, uint64_t>>& files() const { return files_; }
  uint64_t total() const { return total_; }

 private:
  Status flush() {
    HANUL_TRY(writer_->write(buf_.data(), buf_.size()));
    buf_.clear();
    return Status::Ok();
  }
  Status close_shard() {
    HANUL_TRY(flush());
    HANUL_TRY(writer_->commit());
    writer_.reset();
    return Status::Ok();
  }
  std::string dir_, prefix_;
  uint64_t shard_tokens_;
  std::unique_ptr<AtomicFileWriter> writer_;
  std::vector<uint8_t> buf_;
  std::vector<std::pair<std::string, uint64_t>> files_;
  uint64_t total_ = 0;
};

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(),
                     [](unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; });
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

json shards_json(const ShardSink& sink) {
  json arr = json::array();
  for (const auto& [name, n] : sink.files()) arr.push_back({{"file", name}, {"tokens", n}});
  return arr;
}

}  // namespace

bool is_validation_document(std::string_view text, uint64_t seed, double val_fraction) {
  if (!(val_fraction > 0)) return false;
  const uint64_t k = std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(1.0 / val_fraction)));
  const uint64_t h = mix64(fnv1a(kFnvOffset ^ mix64(seed), text.data(), text.size()));
  return h % k == 0;
}

Result<std::string> hash_tokenizer_files(const std::string& path) {
  uint64_t h = kFnvOffset;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file()) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      h = fnv1a(h, n.data(), n.size());
      HANUL_TRY(hash_file_into((fs::path(path) / n).string(), h));
    }
  } else {
    HANUL_TRY(hash_file_into(path, h));
  }
  return fmt::format("fnv1a64:{:016x}", h);
}

Result<DataPrepareStats> prepare_data(const Tokenizer& tok, const std::vector<std::string>& files,
                                      const DataPrepareOptions& opt) {
  if (files.empty()) return Error{"data: no input files"};
  if (opt.shard_tokens == 0) return Error{"data: --shard-tokens must be at least 1"};
  if (!(opt.val_fraction >= 0 && opt.val_fraction < 1))
    return Error{fmt::format("data: --val-fraction {} is not in [0, 1)", opt.val_fraction)};
  if (tok.eos() < 0) return Error{"data: the tokenizer has no EOS token to separate documents"};
  // Check every input before writing anything, so a typo fails at once.
  for (const auto& f : files) {
    std::ifstream probe(f, std::ios::binary);
    if (!probe || fs::is_directory(f))
      return Error{fmt::format("data: cannot read input '{}': {}", f,
                               fs::is_directory(f) ? "is a directory" : std::strerror(errno))};
  }
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return Error{fmt::format("data: cannot create '{}': {}", opt.out_dir, ec.message())};
  HANUL_ASSIGN_OR_RETURN(std::string tok_hash, hash_tokenizer_files(opt.tokenizer_path));

  DataPrepareStats st;
  ShardSink train(opt.out_dir, "shard", opt.shard_tokens), val(opt.out_dir, "val", opt.shard_tokens);
  const int32_t eos = tok.eos();
  auto emit = [&](const std::string& text) -> Status {
    const bool is_val = is_validation_document(text, opt.seed, opt.val_fraction);
    ShardSink& sink = is_val ? val : train;
    for (int32_t id : tok.encode(text, /*add_special=*/false, opt.parse_special))
      HANUL_TRY(sink.push(id));
    HANUL_TRY(sink.push(eos));
    ++st.documents;
    ++(is_val ? st.val_documents : st.train_documents);
    return Status::Ok();
  };

  json inputs = json::array();
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{fmt::format("data: cannot read input '{}': {}", path, std::strerror(errno))};
    const uint64_t docs0 = st.documents, tokens0 = train.total() + val.total(), bad0 = st.malformed_lines;
    std::string line;
    const bool jsonl = ends_with(path, ".jsonl");
    if (jsonl) {
      uint64_t lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        if (is_blank(line)) continue;
        json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
          ++st.malformed_lines;
          continue;
        }
        HANUL_TRY(emit(j["text"].get_ref<const std::string&>()));
      }
    } else {
      std::string doc;
      bool have = false;
      while (std::getline(in, line)) {
        if (is_blank(line)) {
          if (have) HANUL_TRY(emit(doc));
          doc.clear();
          have = false;
          continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (have && doc.size() + 1 + line.size() > opt.max_document_bytes) {
          HANUL_TRY(emit(doc));  // too long to hold: cut at this line boundary
          ++st.cut_documents;
          doc.clear();
          have = false;
        }
        if (have) doc += '\n';
        doc += line;
        have = true;
      }
      if (have) HANUL_TRY(emit(doc));
    }
    if (in.bad()) return Error{fmt::format("data: read error in '{}'", path)};
    const uint64_t docs = st.documents - docs0, tokens = train.total() + val.total() - tokens0;
    inputs.push_back({{"path", path}, {"documents", docs}, {"tokens", tokens},
                      {"malformed_lines", st.malformed_lines - bad0}});
    if (opt.on_file) opt.on_file(path, docs, tokens);
  }
  HANUL_TRY(train.finish());
  HANUL_TRY(val.finish());
  st.train_tokens = train.total();
  st.val_tokens = val.total();
  for (const auto& f : train.files()) st.shard_files.push_back(f.first);
  for (const auto& f : val.files()) st.val_shard_files.push_back(f.first);

  json index = {
      {"format", "hanul-data-1"},
      {"dtype", "uint32-le"},
      {"tokenizer", {{"path", opt.tokenizer_path}, {"hash", tok_hash}}},
      {"n_vocab", tok.n_vocab()},
      {"eos", eos},
      {"seed", opt.seed},
      {"val_fraction", opt.val_fraction},
      {"shard_tokens", opt.shard_tokens},
      {"documents", st.documents},
      {"malformed_lines", st.malformed_lines},
      {"cut_documents", st.cut_documents},
      {"inputs", inputs},
      {"train", {{"tokens", st.train_tokens}, {"documents", st.train_documents}, {"shards", shards_json(train)}}},
      {"val", {{"tokens", st.val_tokens}, {"documents", st.val_documents}, {"shards", shards_json(val)}}},
  };
  // index.json last: its presence means every shard it names is complete.
  HANUL_TRY(write_file_atomic((fs::path(opt.out_dir) / "index.json").string(), index.dump(2) + "\n"));
  return st;
}

Result<DataShards> DataShards::open(const std::string& dir, const Options& options) {
  const std::string index_path = (fs::path(dir) / "index.json").string();
  HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(index_path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error{fmt::format("data: '{}' is not JSON", index_path)};
  DataShards d;
  d.options_ = options;
  d.dir_ = dir;
  const char* split = options.validation ? "val" : "train";
  try {
    d.n_vocab_ = j.at("n_vocab").get<int32_t>();
    d.eos_ = j.at("eos").get<int32_t>();
    for (const auto& s : j.at(split).at("shards")) {
      const std::string name = s.at("file").get<std::string>();
      const uint64_t n = s.at("tokens").get<uint64_t>();
      if (name.find('/') != std::string::npos || name.find("..") != std::string::npos)
        return Error{fmt::format("data: {}: shard name '{}' leaves the folder", index_path, name)};
      HANUL_ASSIGN_OR_RETURN(auto mf, MappedFile::open((fs::path(dir) / name).string()));
      if (mf->size() != n * 4)
        return Error{fmt::format("data: shard '{}' has {} bytes but index.json says {} tokens ({} bytes)",
                                 mf->path(), mf->size(), n, n * 4)};
      d.starts_.push_back(d.total_);
      d.total_ += n;
      d.files_.push_back(std::move(mf));
    }
  } catch (const json::exception& e) {
    return Error{fmt::format("data: {}: {}", index_path, e.what())};
  }
  d.starts_.push_back(d.total_);
  return d;
}

Status DataShards::read(uint64_t begin, uint64_t n, int32_t* out) const {
  if (begin > total_ || n > total_ - begin)
    return Error{fmt::format("data: tokens [{}, {}) are past the end of '{}' ({} tokens)", begin, begin + n,
                             dir_, total_)};
  size_t f = std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1;
  while (n > 0) {
    while (f + 1 < starts_.size() && begin >= starts_[f + 1]) ++f;
    const uint64_t off = begin - starts_[f], take = std::min(n, starts_[f + 1] - begin);
    const uint8_t* p = files_[f]->data() + off * 4;
    for (uint64_t i = 0; i < take; ++i, p += 4) {
      const uint32_t v = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
      if (v >= static_cast<uint32_t>(n_vocab_))
        return Error{fmt::format("data: token {} at {} of '{}' is not below n_vocab {}", v, begin + i,
                                 files_[f]->path(), n_vocab_)};
      *out++ = static_cast<int32_t>(v);
    }
    begin += take;
    n -= take;
  }
  return Status::Ok();
}

uint64_t DataShards::window(uint64_t g, int T) const {
  const uint64_t nw = windows_per_epoch(T);
  if (nw == 0) return 0;
  const uint64_t epoch = g / nw, k = g % nw;
  if (!options_.shuffle || nw == 1) return k;
  // Affine permutation per epoch: a coprime to nw makes k -> a*k + c a bijection.
  uint64_t a = mix64(options_.seed ^ (epoch * 2 + 1)) % nw;
  while (std::gcd(a, nw) != 1) a = (a + 1) % nw;
  const uint64_t c = mix64(options_.seed + epoch) % nw;
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * k + c) % nw);
}

Status DataShards::batch(uint64_t step, int B, int T, int32_t* out) const {
  if (B <= 0 || T <= 0) return Error{fmt::format("data: batch {} x {} is empty", B, T)};
  const uint64_t nw = windows_per_epoch(T);
  if (nw == 0)
    return Error{fmt::format("data: '{}' has {} tokens, too few for one window of {}", dir_, total_, T + 1)};
  for (int b = 0; b < B; ++b) {
    const uint64_t k = window(step * static_cast<uint64_t>(B) + b, T);
    HANUL_TRY(read(k * T, static_cast<uint64_t>(T) + 1, out + static_cast<size_t>(b) * (T + 1)));
  }
  return Status::Ok();
}

}  // namespace hanul
