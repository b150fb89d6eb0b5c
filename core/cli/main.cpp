// `teleportal`: operator CLI. Commands live in core/cli/cmd_*.cpp and register themselves.
#include "cli.hpp"

int main(int argc, char** argv) {
  return tp::cli::dispatch("",
                           "Teleportal operator CLI: frames, tokens, permissions, server metrics.",
                           tp::cli::commands(), argc - 1, argv + 1);
}
