#include "tools/hanul/cli_util.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <fmt/core.h>

namespace hanul::cli {

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "hanul %s: %s\n(run 'hanul %s --help' for the options)\n", app.get_name().c_str(), e.what(),
                 app.get_name().c_str());
    return kExitUsage;
  }
  return std::nullopt;
}

std::string default_model_path() {
  if (const char* env = std::getenv("HANUL_MODEL"); env && *env) return env;
  // The binary lives in <repo>/build/bin; the default model in <repo>/models.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> roots;
  if (!ec) roots = {exe.parent_path().parent_path().parent_path(), exe.parent_path().parent_path()};
  roots.push_back(std::filesystem::current_path(ec));
  for (const auto& root : roots) {
    auto p = root / "models" / "default.gguf";
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  return "models/default.gguf";
}

Result<std::vector<std::vector<int32_t>>> parse_token_lists(const std::string& text) {
  std::vector<std::vector<int32_t>> lists(1);
  std::string cur;
  auto flush = [&]() -> Status {
    if (cur.empty()) return Status::Ok();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(cur.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
      return Error{fmt::format("'{}' is not a token id", cur)};
    lists.back().push_back(static_cast<int32_t>(v));
    cur.clear();
    return Status::Ok();
  };
  for (char ch : text) {
    if (ch == ',' || ch == ' ') {
      HANUL_TRY(flush());
    } else if (ch == ';') {
      HANUL_TRY(flush());
      lists.emplace_back();
    } else {
      cur.push_back(ch);
    }
  }
  HANUL_TRY(flush());
  for (const auto& l : lists)
    if (l.empty()) return Error{"an empty prompt in --prompt-tokens (use at least one id per prompt)"};
  return lists;
}

int fail(const std::string& command, const std::string& message, int code) {
  // Library errors often name their layer already ("data: ..."): say it once.
  const bool named = message.rfind(command + ": ", 0) == 0;
  std::fprintf(stderr, "hanul %s\n", (named ? message : command + ": " + message).c_str());
  return code;
}

}  // namespace hanul::cli
