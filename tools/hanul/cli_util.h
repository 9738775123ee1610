// Shared pieces of the subcommands: flag parsing with hanul's exit codes,
// the default model, lists of token ids.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hanul/base/result.h"

namespace hanul::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Parses argv into app. Returns an exit code when the command should stop
// here (--help: 0; a bad flag: the message and 2), nullopt to go on.
std::optional<int> parse(CLI::App& app, int argc, char** argv);

// The model to use when -m is not given: $HANUL_MODEL, else the default model
// shipped in the repository's models/ folder.
std::string default_model_path();

// "1,15043,3186" -> ids; several prompts separated by ';'.
Result<std::vector<std::vector<int32_t>>> parse_token_lists(const std::string& text);

// Prints "hanul <command>: <message>" to stderr and returns `code`.
int fail(const std::string& command, const std::string& message, int code = kExitFailed);

}  // namespace hanul::cli
