// `teleportal`: operator CLI. Subcommands live in core/cli/cmd_*.cpp and register in kCommands.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: teleportal <command> [args]\n");
    for (const auto& c : tp::cli::commands()) std::fprintf(stderr, "  %-12s %s\n", c.name, c.help);
    return 2;
  }
  for (const auto& c : tp::cli::commands()) {
    if (std::strcmp(argv[1], c.name) == 0) return c.run(argc - 2, argv + 2);
  }
  std::fprintf(stderr, "teleportal: unknown command '%s'\n", argv[1]);
  return 2;
}
