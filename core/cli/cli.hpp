#pragma once
#include <vector>

namespace tp::cli {

struct Command {
  const char* name;
  const char* help;
  int (*run)(int argc, char** argv);
};

// Each cmd_*.cpp adds itself with a static Registrar so files never touch each other.
std::vector<Command>& commands();
struct Registrar {
  explicit Registrar(Command c) { commands().push_back(c); }
};

}  // namespace tp::cli
