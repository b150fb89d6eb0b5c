// Argument parsing, usage lines and --help for every command, all generated from its Spec.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cli.hpp"

namespace tp::cli {

namespace {

constexpr std::size_t kWidth = 100;

std::string program(const char* path) {
  return *path ? std::string("teleportal ") + path : std::string("teleportal");
}

const Option* find_option(const Spec& spec, const std::string& name) {
  for (const Option& o : spec.options) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

std::string option_words(const Option& o) {
  return std::string("--") + o.name + (o.value ? std::string(" ") + o.value : std::string());
}

bool first_of_pair(const Spec& spec, const Option& o) {
  const Option* other = o.either ? find_option(spec, o.either) : nullptr;
  return !other || &o < other;
}

// Two columns: `left` padded to `indent`, `right` wrapped to kWidth with a hanging indent
// (indent 0: `right` alone, as a wrapped paragraph). A '\n' in `right` starts a new line.
void append_row(std::string& out, const std::string& left, const std::string& right,
                std::size_t indent) {
  std::string line = indent ? "  " + left : left;
  if (indent && line.size() + 2 > indent) {
    out += line + "\n";
    line.clear();
  }
  line.resize(indent, ' ');
  bool first_word = true;
  std::size_t start = 0;
  while (start <= right.size()) {
    std::size_t end = std::min(right.find(' ', start), right.find('\n', start));
    if (end == std::string::npos) end = right.size();
    std::string word = right.substr(start, end - start);
    if (!first_word && line.size() + 1 + word.size() > kWidth) {
      out += line + "\n";
      line.assign(indent, ' ');
      first_word = true;
    }
    line += (first_word ? "" : " ") + word;
    first_word = false;
    if (end < right.size() && right[end] == '\n') {
      out += line + "\n";
      line.assign(indent, ' ');
      first_word = true;
    }
    start = end + 1;
  }
  out += line + "\n";
}

// Required options and argument counts, once everything is read.
std::string check(const Spec& spec, const Args& a) {
  for (const Option& o : spec.options) {
    if (!o.required || !first_of_pair(spec, o)) continue;
    if (o.either) {
      bool mine = a.has(o.name), other = a.has(o.either);
      if (mine && other) return std::string("give only one of --") + o.name + " or --" + o.either;
      if (!mine && !other) return std::string("missing --") + o.name + " or --" + o.either;
    } else if (!a.has(o.name)) {
      return "missing " + option_words(o);
    }
  }
  std::size_t i = 0;
  bool repeated = false;
  for (const Argument& arg : spec.arguments) {
    repeated |= arg.repeated;
    if (i >= a.positional.size()) {
      if (arg.required) return std::string("missing ") + arg.name;
      continue;
    }
    i += arg.repeated ? a.positional.size() - i : 1;
  }
  if (i < a.positional.size() && !repeated) {
    return "unexpected argument '" + a.positional[i] + "'";
  }
  return {};
}

}  // namespace

std::string Args::get(const std::string& name) const {
  auto it = given.find(name);
  if (it != given.end()) return it->second;
  const Option* o = spec ? find_option(*spec, name) : nullptr;
  return o && o->fallback ? *o->fallback : std::string();
}

std::string usage_line(const Spec& spec) {
  std::string out = "usage: " + program(spec.path);
  bool optional = false;
  for (const Option& o : spec.options) {
    if (!o.required) {
      optional = true;
      continue;
    }
    if (!first_of_pair(spec, o)) continue;
    out += " " + option_words(o);
    if (const Option* other = o.either ? find_option(spec, o.either) : nullptr) {
      out += "|" + option_words(*other);
    }
  }
  if (optional) out += " [options]";
  for (const Argument& arg : spec.arguments) {
    std::string word = std::string(arg.name) + (arg.repeated ? "..." : "");
    out += " " + (arg.required ? word : "[" + word + "]");
  }
  return out;
}

std::string help_text(const Spec& spec) {
  std::string out = usage_line(spec) + "\n\n" + spec.summary + "\n";
  std::size_t indent = std::strlen("-h, --help") + 6;  // two spaces before a cell, four after
  for (const Argument& arg : spec.arguments) indent = std::max(indent, std::strlen(arg.name) + 6);
  for (const Option& o : spec.options) indent = std::max(indent, option_words(o).size() + 6);
  indent = std::min<std::size_t>(indent, 28);
  if (!spec.arguments.empty()) {
    out += "\narguments:\n";
    for (const Argument& arg : spec.arguments) {
      std::string help = arg.help;
      if (!arg.required) help += " (optional)";
      append_row(out, arg.name, help, indent);
    }
  }
  out += "\noptions:\n";
  for (const Option& o : spec.options) {
    std::string help = o.help;
    if (o.required) {
      help += o.either ? std::string(" (this or --") + o.either + " is required)" : " (required)";
    }
    if (o.fallback) help += " (default: " + (o.fallback->empty() ? "\"\"" : *o.fallback) + ")";
    append_row(out, option_words(o), help, indent);
  }
  append_row(out, "-h, --help", "show this help and exit", indent);
  if (!spec.arguments.empty()) {
    append_row(out, "--", "end of options: what follows is positional, even if it starts with -",
               indent);
  }
  if (spec.details) {
    out += "\n";
    append_row(out, "", spec.details, 0);
  }
  return out;
}

int usage_error(const Spec& spec, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n%s (see --help)\n", program(spec.path).c_str(), message.c_str(),
               usage_line(spec).c_str());
  return 2;
}

Args parse(const Spec& spec, int argc, char** argv) {
  Args a;
  a.spec = &spec;
  for (int i = 0; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(help_text(spec).c_str(), stdout);
      a.exit_code = 0;
      return a;
    }
  }
  bool options_ended = false;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (options_ended || s.size() < 2 || s[0] != '-') {
      a.positional.push_back(s);
      continue;
    }
    if (s == "--") {
      options_ended = true;
      continue;
    }
    std::size_t eq = s.find('=');
    std::string name = s.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const Option* o = s[1] == '-' ? find_option(spec, name) : nullptr;
    if (!o) {
      a.exit_code = usage_error(spec, "unknown option " + s.substr(0, eq));
      return a;
    }
    if (!o->value) {
      if (eq != std::string::npos) {
        a.exit_code = usage_error(spec, "--" + name + " takes no value");
        return a;
      }
      a.given[name] = "";
    } else if (eq != std::string::npos) {
      a.given[name] = s.substr(eq + 1);
    } else if (i + 1 < argc) {
      a.given[name] = argv[++i];
    } else {
      a.exit_code = usage_error(spec, "missing value for " + option_words(*o));
      return a;
    }
  }
  std::string problem = check(spec, a);
  if (!problem.empty()) a.exit_code = usage_error(spec, problem);
  return a;
}

// ---- commands -----------------------------------------------------------------------------------

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

Command command(const Spec& spec, int (*run)(int argc, char** argv)) {
  const char* space = std::strrchr(spec.path, ' ');
  return Command{space ? space + 1 : spec.path, spec.summary, run};
}

int dispatch(const char* path, const char* summary, std::vector<Command> subcommands, int argc,
             char** argv) {
  std::sort(subcommands.begin(), subcommands.end(),
            [](const Command& a, const Command& b) { return std::strcmp(a.name, b.name) < 0; });
  std::string usage = "usage: " + program(path) + " <command> [arguments]";
  if (argc >= 1) {
    for (const Command& c : subcommands) {
      if (std::strcmp(argv[0], c.name) == 0) return c.run(argc - 1, argv + 1);
    }
  }
  bool help = argc >= 1 && (std::strcmp(argv[0], "--help") == 0 || std::strcmp(argv[0], "-h") == 0);
  if (argc >= 1 && !help) {
    std::fprintf(stderr, "%s: unknown command '%s'\n%s (see --help)\n", program(path).c_str(),
                 argv[0], usage.c_str());
    return 2;
  }
  std::string out = usage + "\n\n" + summary + "\n\ncommands:\n";
  std::size_t indent = 4;
  for (const Command& c : subcommands) indent = std::max(indent, std::strlen(c.name) + 6);
  for (const Command& c : subcommands) append_row(out, c.name, c.summary, indent);
  out += "\n'" + program(path) + " <command> --help' describes a command.\n";
  std::fputs(out.c_str(), help ? stdout : stderr);
  return help ? 0 : 2;
}

}  // namespace tp::cli
