#include "hanul/train/checkpoint.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "hanul/base/mapped_file.h"
#include "hanul/formats/safetensors.h"
#include "hanul/model/config.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kFormat = "hanul-checkpoint";
constexpr int kVersion = 1;
constexpr std::array<const char*, 4> kFiles = {"model.safetensors", "config.json",
                                               "optimizer.safetensors", "train_config.json"};

// 64-bit FNV-1a (Fowler/Noll/Vo, draft-eastlake-fnv) of a whole file: catches
// truncation and bit rot; not a defence against a deliberate forgery.
Result<uint64_t> fnv1a_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("checkpoint: cannot open {}", path)};
  uint64_t h = 0xcbf29ce484222325ull;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      h ^= static_cast<uint8_t>(buf[static_cast<size_t>(i)]);
      h *= 0x100000001b3ull;
    }
  }
  if (in.bad()) return Error{fmt::format("checkpoint: reading {} failed", path)};
  return h;
}

// fsync a file or a folder, so the rename that publishes it comes after its data on disk.
Status fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return Error{fmt::format("checkpoint: cannot open {} to sync: {}", path, std::strerror(errno))};
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    return Error{fmt::format("checkpoint: fsync of {} failed: {}", path, std::strerror(err))};
  return Status::Ok();
}

std::string clean_dir(const std::string& dir) {
  std::string d = fs::path(dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

// Atomically replaces `dir` by `tmp` (both in the same parent). Linux: one
// renameat2(RENAME_EXCHANGE), after which tmp holds the old checkpoint.
// Elsewhere, or on a filesystem without exchange: dir -> dir.old, tmp -> dir,
// which leaves a window where only dir.old exists (load names it in its error).
Status publish(const std::string& tmp, const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (std::rename(tmp.c_str(), dir.c_str()) != 0)
      return Error{
          fmt::format("checkpoint: rename {} -> {} failed: {}", tmp, dir, std::strerror(errno))};
    return Status::Ok();
  }
#if defined(__linux__) && defined(RENAME_EXCHANGE)
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp, ec);  // the previous checkpoint; a failure here only leaves litter
    return Status::Ok();
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    return Error{
        fmt::format("checkpoint: exchanging {} and {} failed: {}", tmp, dir, std::strerror(errno))};
#endif
  const std::string old = dir + ".old";
  fs::remove_all(old, ec);
  if (std::rename(dir.c_str(), old.c_str()) != 0)
    return Error{
        fmt::format("checkpoint: rename {} -> {} failed: {}", dir, old, std::strerror(errno))};
  if (std::rename(tmp.c_str(), dir.c_str()) != 0)
    return Error{
        fmt::format("checkpoint: rename {} -> {} failed: {}", tmp, dir, std::strerror(errno))};
  fs::remove_all(old, ec);
  return Status::Ok();
}

Tensor f32_view(std::string name, const std::vector<int64_t>& shape,
                const std::vector<float>& data) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = DType::F32;
  t.shape = shape;
  t.data = data.data();
  return t;
}


// Copies tensor `name` of `file` into dst after checking its dtype and shape.
Status copy_tensor(const std::map<std::string, const Tensor*>& by_name, const std::string& file,
                   const std::string& name, const std::vector<int64_t>& shape,
                   std::vector<float>& dst) {
  auto it = by_name.find(name);
  if (it == by_name.end())
    return Error{fmt::format("checkpoint: {} has no tensor '{}'", file, name)};
  const Tensor& t = *it->second;
  if (t.dtype != DType::F32)
    return Error{fmt::format("checkpoint: {}: tensor '{}' is dtype {}, expected F32", file, name,
                             static_cast<int>(t.dtype))};
  if (t.shape != shape) {
    Tensor want;
    want.shape = shape;
    return Error{fmt::format("checkpoint: {}: tensor '{}' has shape {}, the config implies {}",
                             file, name, t.shape_str(), want.shape_str())};
  }
  if (dst.size() != static_cast<size_t>(t.numel()))
    return Error{fmt::format("checkpoint: {}: tensor '{}' size mismatch", file, name)};
  std::memcpy(dst.data(), t.data, dst.size() * sizeof(float));
  return Status::Ok();
}

}  // namespace

Status save_checkpoint(const std::string& dir_in, const TrainableModel& model,
                       const TrainState& state) {
  const std::string dir = clean_dir(dir_in);
  if (!json::accept(state.config_json))
    return Error{fmt::format("checkpoint: the run config for {} is not valid JSON", dir)};
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);  // an interrupted earlier save
  if (!fs::create_directories(tmp, ec) && ec)
    return Error{fmt::format("checkpoint: cannot create {}: {}", tmp, ec.message())};

  HANUL_TRY(write_safetensors(tmp + "/model.safetensors", model.tensors(true), {{"format", "pt"}}));
  std::vector<Tensor> opt;
  for (const Param& p : model.params()) {
    opt.push_back(f32_view(p.hf_name + ".exp_avg", p.shape, p.m));
    opt.push_back(f32_view(p.hf_name + ".exp_avg_sq", p.shape, p.v));
  }
  HANUL_TRY(write_safetensors(tmp + "/optimizer.safetensors", opt));
  HANUL_TRY(write_file_atomic(tmp + "/config.json", config_to_hf_json(model.config())));
  HANUL_TRY(write_file_atomic(tmp + "/train_config.json", state.config_json));
  std::vector<std::string> names(kFiles.begin(), kFiles.end());
  for (const auto& [name, contents] : state.extra_files) {
    if (name.empty() || name.find('/') != std::string::npos || name == "manifest.json" ||
        std::find(names.begin(), names.end(), name) != names.end())
      return Error{fmt::format("checkpoint: extra file name '{}' is not allowed", name)};
    HANUL_TRY(write_file_atomic(tmp + "/" + name, contents));
    names.push_back(name);
  }

  json files = json::object();
  for (const std::string& f : names) {
    const std::string path = tmp + "/" + f;
    HANUL_TRY(fsync_path(path));
    HANUL_ASSIGN_OR_RETURN(uint64_t h, fnv1a_file(path));
    files[f] = {{"bytes", static_cast<int64_t>(fs::file_size(path, ec))}, {"fnv1a64", hex64(h)}};
    if (ec) return Error{fmt::format("checkpoint: cannot stat {}: {}", path, ec.message())};
  }
  json manifest = {{"format", kFormat},
                   {"version", kVersion},
                   {"step", model.step()},
                   {"data_position", state.data_position},
                   {"rng", {{"seed", state.rng_seed}, {"counter", state.rng_counter}}},
                   {"files", files}};
  // Written last: a folder with a manifest has all of its files.
  HANUL_TRY(write_file_atomic(tmp + "/manifest.json", manifest.dump(2) + "\n"));
  HANUL_TRY(fsync_path(tmp + "/manifest.json"));
  HANUL_TRY(fsync_path(tmp));
  HANUL_TRY(publish(tmp, dir));
  const std::string parent = fs::path(dir).parent_path().string();
  return fsync_path(parent.empty() ? "." : parent);
}

Result<Checkpoint> load_checkpoint(const std::string& dir_in) {
  const std::string dir = clean_dir(dir_in);
  std::error_code ec;
  if (!fs::exists(dir + "/manifest.json", ec)) {
    std::string hint;
    if (fs::exists(dir + ".old", ec))
      hint = fmt::format(" ({}.old holds the previous checkpoint)", dir);
    return Error{
        fmt::format("checkpoint: {} has no manifest.json: not a checkpoint, or its save did not "
                    "finish{}",
                    dir, hint)};
  }
  HANUL_ASSIGN_OR_RETURN(std::string manifest_text, read_text_file(dir + "/manifest.json"));
  json m = json::parse(manifest_text, nullptr, false);
  if (m.is_discarded() || !m.is_object())
    return Error{fmt::format("checkpoint: {}/manifest.json is not valid JSON", dir)};
  if (m.value("format", "") != kFormat || m.value("version", 0) != kVersion)
    return Error{fmt::format("checkpoint: {}/manifest.json is not a {} version {} manifest", dir,
                             kFormat, kVersion)};
  int64_t step = 0;
  TrainState state;
  try {
    step = m.at("step").get<int64_t>();
    state.data_position = m.at("data_position").get<int64_t>();
    state.rng_seed = m.at("rng").at("seed").get<uint64_t>();
    state.rng_counter = m.at("rng").at("counter").get<uint64_t>();
    const json& files = m.at("files");
    for (const char* f : kFiles)
      if (!files.contains(f))
        return Error{fmt::format("checkpoint: {}/manifest.json does not list {}", dir, f)};
    for (auto it = files.begin(); it != files.end(); ++it) {
      const std::string& f = it.key();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        return Error{fmt::format("checkpoint: {}/manifest.json lists a file '{}' outside the folder", dir, f)};
      const std::string path = dir + "/" + f;
      const int64_t want = files.at(f).at("bytes").get<int64_t>();
      const std::string want_hash = files.at(f).at("fnv1a64").get<std::string>();
      if (!fs::exists(path, ec)) return Error{fmt::format("checkpoint: {} is missing", path)};
      const auto have = static_cast<int64_t>(fs::file_size(path, ec));
      if (ec) return Error{fmt::format("checkpoint: cannot stat {}: {}", path, ec.message())};
      if (have != want)
        return Error{
            fmt::format("checkpoint: {} has {} bytes, the manifest says {} (truncated or replaced)",
                        path, have, want)};
      HANUL_ASSIGN_OR_RETURN(uint64_t h, fnv1a_file(path));
      if (hex64(h) != want_hash)
        return Error{fmt::format("checkpoint: {} has checksum {}, the manifest says {} (corrupt)",
                                 path, hex64(h), want_hash)};
    }
  } catch (const json::exception& e) {
    return Error{fmt::format("checkpoint: {}/manifest.json: {}", dir, e.what())};
  }
  if (step < 0)
    return Error{fmt::format("checkpoint: {}/manifest.json: negative step {}", dir, step)};
  HANUL_ASSIGN_OR_RETURN(state.config_json, read_text_file(dir + "/train_config.json"));
  HANUL_ASSIGN_OR_RETURN(std::string config_text, read_text_file(dir + "/config.json"));
  HANUL_ASSIGN_OR_RETURN(ModelConfig cfg, config_from_hf_json(config_text, dir + "/config.json"));
  // Zero std: the values are all overwritten below, only the layout is needed.
  HANUL_ASSIGN_OR_RETURN(TrainableModel model, TrainableModel::init_random(cfg, 0, 0.0f));

  HANUL_ASSIGN_OR_RETURN(SafetensorsFile weights,
                         SafetensorsFile::open(dir + "/model.safetensors"));
  HANUL_ASSIGN_OR_RETURN(SafetensorsFile optim,
                         SafetensorsFile::open(dir + "/optimizer.safetensors"));
  std::map<std::string, const Tensor*> w_by_name, o_by_name;
  for (const Tensor& t : weights.tensors()) w_by_name[t.name] = &t;
  for (const Tensor& t : optim.tensors()) o_by_name[t.name] = &t;
  if (w_by_name.size() != model.params().size())
    return Error{
        fmt::format("checkpoint: {}/model.safetensors holds {} tensors, the config implies {}", dir,
                    w_by_name.size(), model.params().size())};
  if (o_by_name.size() != 2 * model.params().size())
    return Error{fmt::format("checkpoint: {}/optimizer.safetensors holds {} tensors, expected {}",
                             dir, o_by_name.size(), 2 * model.params().size())};
  const std::string wf = dir + "/model.safetensors", of = dir + "/optimizer.safetensors";
  for (Param& p : model.params()) {
    HANUL_TRY(copy_tensor(w_by_name, wf, p.hf_name, p.shape, p.value));
    HANUL_TRY(copy_tensor(o_by_name, of, p.hf_name + ".exp_avg", p.shape, p.m));
    HANUL_TRY(copy_tensor(o_by_name, of, p.hf_name + ".exp_avg_sq", p.shape, p.v));
  }
  model.set_step(step);
  return Checkpoint{std::move(model), std::move(state)};
}

}  // namespace hanul
