#include "cli.hpp"

namespace tp::cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace tp::cli
