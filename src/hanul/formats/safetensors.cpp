// safetensors reader and writer, following the Rust reference (huggingface/safetensors,
// safetensors/src/tensor.rs): u64 header length N (at most 100 MB), N bytes of UTF-8 JSON,
// then the data; data_offsets are relative to byte 8 + N. The reference reader demands that
// the tensors tile the data exactly; hanul also accepts gaps but refuses overlaps. The writer
// produces what the reference produces: tensors sorted by descending dtype rank then name,
// compact JSON with "__metadata__" first, padded with spaces to a multiple of 8 bytes.
#include "hanul/formats/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include <fmt/core.h>
#include <nlohmann/json.hpp>


namespace hanul {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // MAX_HEADER_SIZE in tensor.rs

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

struct StDtype {
  std::string_view name;
  DType dtype;
  int rank;  // position in the reference's Dtype enum ("increasing alignment order")
};

// The dtypes hanul maps to its own; BOOL, U8, U16, U32, U64 and F8_* have no DType yet.
constexpr StDtype kStDtypes[] = {
    {"I8", DType::I8, 2},    {"I16", DType::I16, 5}, {"F16", DType::F16, 7},
    {"BF16", DType::BF16, 8}, {"I32", DType::I32, 9}, {"F32", DType::F32, 11},
    {"F64", DType::F64, 12}, {"I64", DType::I64, 13},
};

const StDtype* st_dtype(std::string_view name) {
  for (const auto& d : kStDtypes)
    if (d.name == name) return &d;
  return nullptr;
}

const StDtype* st_dtype(DType t) {
  for (const auto& d : kStDtypes)
    if (d.dtype == t) return &d;
  return nullptr;
}

// Bytes of a tensor; false when the product overflows int64.
bool checked_nbytes(const std::vector<int64_t>& shape, int64_t elem_size, uint64_t* out) {
  uint64_t n = 1;
  const uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (int64_t d : shape) {
    uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && n > kMax / u) return false;
    n *= u;
  }
  if (n != 0 && n > kMax / static_cast<uint64_t>(elem_size)) return false;
  *out = n * static_cast<uint64_t>(elem_size);
  return true;
}

}  // namespace

class SafetensorsReader {
 public:
  static Result<SafetensorsFile> read(std::shared_ptr<MappedFile> file);
};

Result<SafetensorsFile> SafetensorsReader::read(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  auto fail = [&](std::string what) {
    return Error{fmt::format("{}: safetensors: {}", path, what)};
  };
  const size_t size = file->size();
  if (size < 8) return fail(fmt::format("file is {} bytes, too short for the header length", size));
  uint64_t n = 0;
  std::memcpy(&n, file->data(), 8);
  if (n > kMaxHeaderBytes)
    return fail(fmt::format("header length {} is over the 100 MB limit (not a safetensors file?)",
                            n));
  if (n > size - 8)
    return fail(fmt::format("header length {} runs past the end of the file ({} bytes)", n, size));
  const char* hb = reinterpret_cast<const char*>(file->data() + 8);
  json header = json::parse(hb, hb + n, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return fail("header is not valid JSON");
  if (!header.is_object()) return fail("header is not a JSON object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = size - data_start;
  SafetensorsFile out;
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return fail("__metadata__ is not an object of strings");
      for (auto& [k, v] : entry.items()) {
        if (!v.is_string()) return fail(fmt::format("__metadata__ value '{}' is not a string", k));
        out.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) return fail(fmt::format("entry for tensor '{}' is not an object", name));
    auto dt = entry.find("dtype");
    auto sh = entry.find("shape");
    auto off = entry.find("data_offsets");
    if (dt == entry.end() || !dt->is_string() || sh == entry.end() || !sh->is_array() ||
        off == entry.end() || !off->is_array() || off->size() != 2)
      return fail(fmt::format("tensor '{}' needs a dtype string, a shape array and two "
                              "data_offsets",
                              name));
    const std::string dtype_str = dt->get<std::string>();
    const StDtype* d = st_dtype(dtype_str);
    if (!d)
      return fail(fmt::format("tensor '{}' has dtype {}, which hanul does not support (it reads "
                              "F32 F16 BF16 F64 I8 I16 I32 I64)",
                              name, dtype_str));
    Tensor t;
    t.name = name;
    t.dtype = d->dtype;
    for (const auto& x : *sh) {
      if (!x.is_number_unsigned() ||
          x.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return fail(fmt::format("tensor '{}' has a shape entry that is not a size: {}", name,
                                x.dump()));
      t.shape.push_back(static_cast<int64_t>(x.get<uint64_t>()));
    }
    // Tensor::rows() divides by the last dim; an empty tensor with more than one dim and a
    // last dim of 0 has no use in a model and is refused rather than special-cased downstream.
    if (t.shape.size() > 1 && t.shape.back() == 0)
      return fail(fmt::format("tensor '{}' has shape {}: empty tensors of rank > 1 with a last "
                              "dim of 0 are not supported",
                              name, t.shape_str()));
    uint64_t nbytes = 0;
    if (!checked_nbytes(t.shape, dtype_info(d->dtype)->type_size, &nbytes))
      return fail(fmt::format("tensor '{}' with shape {} is too large (size overflows)", name,
                              t.shape_str()));
    const json& b = (*off)[0];
    const json& e = (*off)[1];
    if (!b.is_number_unsigned() || !e.is_number_unsigned())
      return fail(fmt::format("tensor '{}' has data_offsets that are not byte offsets", name));
    const uint64_t begin = b.get<uint64_t>(), end = e.get<uint64_t>();
    if (end < begin || end > data_size)
      return fail(fmt::format("tensor '{}' has data_offsets [{}, {}] outside the {} data bytes "
                              "(truncated file?)",
                              name, begin, end, data_size));
    if (end - begin != nbytes)
      return fail(fmt::format("tensor '{}' of dtype {} and shape {} needs {} bytes but its "
                              "data_offsets [{}, {}] span {}",
                              name, dtype_str, t.shape_str(), nbytes, begin, end, end - begin));
    t.data = file->data() + data_start + begin;
    t.owner = std::shared_ptr<const void>(file, t.data);
    ranges.push_back({begin, end, out.tensors_.size()});
    out.tensors_.push_back(std::move(t));
  }
  // In file order, like the reference's Metadata (sorted by data_offsets).
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t k = 1; k < ranges.size(); ++k) {
    if (ranges[k - 1].end > ranges[k].begin)
      return fail(fmt::format("tensors '{}' and '{}' overlap",
                              out.tensors_[ranges[k - 1].index].name,
                              out.tensors_[ranges[k].index].name));
  }
  std::vector<Tensor> ordered;
  ordered.reserve(ranges.size());
  for (const Range& r : ranges) ordered.push_back(std::move(out.tensors_[r.index]));
  out.tensors_ = std::move(ordered);
  out.file_ = std::move(file);
  return out;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  return SafetensorsReader::read(std::move(file));
}

const std::string& SafetensorsFile::path() const {
  static const std::string kEmpty;
  return file_ ? file_->path() : kEmpty;
}

const Tensor* SafetensorsDir::find_tensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<SafetensorsDir> SafetensorsDir::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return Error{fmt::format("{}: not a directory (expected a Hugging Face model folder)", dir)};
  SafetensorsDir out;
  out.dir_ = dir;
  const fs::path root(dir);
  if (fs::exists(root / "config.json", ec)) {
    HANUL_ASSIGN_OR_RETURN(out.config_json_, read_text_file((root / "config.json").string()));
  }

  const fs::path index_path = root / "model.safetensors.index.json";
  std::vector<std::pair<std::string, std::string>> weight_map;  // tensor -> shard file
  std::vector<std::string> shards;
  if (fs::exists(index_path, ec)) {
    const std::string ipath = index_path.string();
    HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(ipath));
    json index = json::parse(text, nullptr, false);
    if (index.is_discarded() || !index.is_object())
      return Error{fmt::format("{}: not a valid JSON object", ipath)};
    auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object())
      return Error{fmt::format("{}: has no \"weight_map\" object", ipath)};
    std::set<std::string> seen;
    for (auto& [name, file] : wm->items()) {
      if (!file.is_string())
        return Error{fmt::format("{}: weight_map entry '{}' is not a file name", ipath, name)};
      std::string f = file.get<std::string>();
      // A shard must sit beside the index: no paths that could reach outside the folder.
      if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos ||
          f.find('\\') != std::string::npos || f.find('\0') != std::string::npos)
        return Error{fmt::format("{}: weight_map entry '{}' names '{}', which is not a plain file "
                                 "name in the folder",
                                 ipath, name, f)};
      if (seen.insert(f).second) shards.push_back(f);
      weight_map.emplace_back(name, f);
    }
    std::sort(shards.begin(), shards.end());
  } else if (fs::exists(root / "model.safetensors", ec)) {
    shards.push_back("model.safetensors");
  } else {
    return Error{fmt::format("{}: no model.safetensors or model.safetensors.index.json", dir)};
  }

  std::map<std::string, size_t> shard_of;  // tensor name -> position in files_
  for (const std::string& s : shards) {
    HANUL_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open((root / s).string()));
    for (const Tensor& t : f.tensors()) {
      if (out.index_.count(t.name))
        return Error{fmt::format("{}: tensor '{}' is also in another shard", (root / s).string(),
                                 t.name)};
      out.index_.emplace(t.name, out.tensors_.size());
      out.tensors_.push_back(t);
      shard_of[t.name] = out.files_.size();
    }
    out.files_.push_back(std::move(f));
  }
  for (const auto& [name, file] : weight_map) {
    auto it = shard_of.find(name);
    if (it == shard_of.end() || fs::path(out.files_[it->second].path()).filename() != file)
      return Error{fmt::format("{}: the index puts tensor '{}' in {}, which does not hold it",
                               index_path.string(), name, file)};
  }
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  auto fail = [&](std::string what) {
    return Error{fmt::format("{}: safetensors writer: {}", path, what)};
  };
  std::vector<const Tensor*> order;
  std::set<std::string_view> names;
  for (const Tensor& t : tensors) {
    if (!st_dtype(t.dtype))
      return fail(fmt::format("tensor '{}' has dtype {}, which safetensors cannot hold (only F32 "
                              "F16 BF16 F64 I8 I16 I32 I64)",
                              t.name, dtype_name(t.dtype)));
    if (t.name == "__metadata__") return fail("a tensor may not be named __metadata__");
    if (!names.insert(t.name).second) return fail(fmt::format("duplicate tensor '{}'", t.name));
    for (int64_t d : t.shape)
      if (d < 0) return fail(fmt::format("tensor '{}' has shape {}", t.name, t.shape_str()));
    if (!t.data && t.nbytes() > 0) return fail(fmt::format("tensor '{}' has no data", t.name));
    order.push_back(&t);
  }
  // The reference's prepare(): descending dtype (alignment) rank, then name, so that every
  // tensor's data is aligned to its element size once the header is padded to 8 bytes.
  std::sort(order.begin(), order.end(), [](const Tensor* a, const Tensor* b) {
    int ra = st_dtype(a->dtype)->rank, rb = st_dtype(b->dtype)->rank;
    return ra != rb ? ra > rb : a->name < b->name;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Tensor* t : order) {
    const uint64_t nbytes = static_cast<uint64_t>(t->nbytes());
    nlohmann::ordered_json e;
    e["dtype"] = st_dtype(t->dtype)->name;
    e["shape"] = t->shape;
    e["data_offsets"] = {offset, offset + nbytes};
    header[t->name] = std::move(e);
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {  // names and metadata must be UTF-8 in JSON
    return fail("a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  HANUL_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::create(path));
  const uint64_t n = text.size();
  HANUL_TRY(w->write(&n, 8));
  HANUL_TRY(w->write(text.data(), text.size()));
  for (const Tensor* t : order) HANUL_TRY(w->write(t->data, static_cast<size_t>(t->nbytes())));
  return w->commit();
}

Status write_safetensors_dir(const std::string& dir, const std::vector<Tensor>& tensors,
                             int64_t max_shard_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create folder: {}", dir, ec.message())};
  const fs::path root(dir);
  // transformers' save_pretrained writes {"format": "pt"}; some readers look for it.
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  // Greedy split in the given order, as huggingface_hub's split_state_dict_into_shards does.
  std::vector<std::vector<Tensor>> shards(1);
  int64_t shard_bytes = 0, total = 0;
  for (const Tensor& t : tensors) {
    const int64_t nb = t.nbytes();
    if (!shards.back().empty() && shard_bytes + nb > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += nb;
    total += nb;
  }
  const fs::path index_path = root / "model.safetensors.index.json";
  if (shards.size() == 1) {
    HANUL_TRY(write_safetensors((root / "model.safetensors").string(), tensors, meta));
    // A stale index would make readers ignore the file just written.
    fs::remove(index_path, ec);
    return Status::Ok();
  }
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name =
        fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    HANUL_TRY(write_safetensors((root / name).string(), shards[i], meta));
    for (const Tensor& t : shards[i]) weight_map[t.name] = name;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  // Written last, so a folder with an index always has all its shards.
  return write_file_atomic(index_path.string(), index.dump(2) + "\n");
}

}  // namespace hanul
