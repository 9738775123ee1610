// The subcommand table. A subcommand is `int NAME_main(int argc, char** argv)`
// in tools/hanul/NAME.cpp; argv[0] is the subcommand's name. Exit codes: 0 ok,
// 1 the work failed, 2 bad usage (flags, missing file).
#pragma once

#include <vector>

namespace hanul::cli {

struct Command {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);
};

const std::vector<Command>& commands();

}  // namespace hanul::cli
