// hanul: the command-line front door. Each subcommand lives in its own file
// (tools/hanul/<name>.cpp) and registers itself in the table below.
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/hanul/commands.h"

namespace {

void print_usage() {
  std::fprintf(stderr, "usage: hanul <command> [options]\n\ncommands:\n");
  for (const auto& c : hanul::cli::commands()) std::fprintf(stderr, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(stderr, "\nhanul <command> --help shows the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : hanul::cli::commands()) {
    if (!std::strcmp(argv[1], c.name)) return c.main(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "hanul: unknown command '%s'\n\n", argv[1]);
  print_usage();
  return 2;
}
