// The operator CLI's command table and argument parser. Each command describes itself once, in
// a Spec; the parser, the usage line and --help are all generated from it.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tp::cli {

// `--name VALUE` or `--name=VALUE`; a flag (`value` null) is just `--name`.
struct Option {
  const char* name;   // without the leading --
  const char* value;  // placeholder in usage and help (e.g. "SECONDS"); nullptr for a flag
  const char* help;
  std::optional<std::string> fallback = std::nullopt;  // the default: shown, and Args::get's
  bool required = false;
  const char* either = nullptr;  // with required: this option or that one, never both
};

struct Argument {
  const char* name;  // placeholder, e.g. "TOKEN"
  const char* help;
  bool required = true;
  bool repeated = false;
};

struct Spec {
  const char* path;     // the words after `teleportal`, e.g. "token verify"
  const char* summary;  // one line: in the parent's command list and under the usage line
  std::vector<Argument> arguments;
  std::vector<Option> options;
  const char* details = nullptr;  // output and exit codes, printed last by --help
};

struct Args {
  const Spec* spec = nullptr;
  std::map<std::string, std::string> given;  // options as given (a flag maps to "")
  std::vector<std::string> positional;
  int exit_code = -1;  // >= 0: --help was printed or the arguments were refused; return it

  bool has(const std::string& name) const { return given.count(name) > 0; }
  std::string get(const std::string& name) const;  // given value, else the default, else ""
};

// Options before `--` (anywhere among the arguments), positional arguments after it or between
// options. `--help`/`-h` prints the help to stdout (exit 0); a refusal prints one line plus the
// usage line to stderr (exit 2).
Args parse(const Spec& spec, int argc, char** argv);
// For checks beyond the Spec (a number that is not one, bad JSON): same output, returns 2.
int usage_error(const Spec& spec, const std::string& message);
std::string usage_line(const Spec& spec);
std::string help_text(const Spec& spec);

// ---- commands -----------------------------------------------------------------------------------
struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // the arguments after the command's name
};
// The leaf command described by `spec`: named by the last word of its path.
Command command(const Spec& spec, int (*run)(int argc, char** argv));

// Top-level commands. Each cmd_*.cpp adds itself with a static Registrar so files never touch
// each other.
std::vector<Command>& commands();
struct Registrar {
  explicit Registrar(Command c) { commands().push_back(c); }
};

// Runs the subcommand named by argv[0]. `path` is "" for the top level. Without arguments it
// lists the commands to stderr (exit 2); with --help/-h to stdout (exit 0).
int dispatch(const char* path, const char* summary, std::vector<Command> subcommands, int argc,
             char** argv);

}  // namespace tp::cli
