// `teleportal decode [HEX...]` (or hex on stdin): prints a frame as JSON, or a JSON error + exit 1.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "cli.hpp"
#include "tp/common/bytes.hpp"
#include "tp/protocol/json.hpp"
#include "tp/protocol/message.hpp"

namespace {

void print(const nlohmann::ordered_json& j) {
  // Invalid UTF-8 cannot occur in decoded strings, but never abort on output.
  std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

int fail(const std::string& code, const std::string& message) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["error"] = code;
  j["message"] = message;
  print(j);
  return 1;
}

const tp::cli::Spec kDecode{
    "decode",
    "decode a Teleportal frame given as hex (arguments or stdin) to JSON",
    {{"HEX",
      "the frame as hex digits, optionally 0x-prefixed; several arguments are joined; "
      "without any, stdin is read",
      false, true}},
    {},
    "Prints the decoded frame as one JSON object (exit 0), or {\"error\": CODE, \"message\": ...} "
    "(exit 1)."};

int run(int argc, char** argv) {
  tp::cli::Args args = tp::cli::parse(kDecode, argc, argv);
  if (args.exit_code >= 0) return args.exit_code;
  std::string hex;
  if (!args.positional.empty()) {
    for (const std::string& part : args.positional) hex += part;
  } else {
    hex.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::size_t a = hex.find_first_not_of(" \t\r\n");
  std::size_t b = hex.find_last_not_of(" \t\r\n");
  hex = a == std::string::npos ? std::string() : hex.substr(a, b - a + 1);
  if (hex.size() >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex = hex.substr(2);
  std::optional<tp::Bytes> bytes = tp::from_hex(hex);
  if (!bytes) return fail("bad_hex", "Input is not a hex string");

  if (tp::protocol::is_ping_message(*bytes)) {
    print({{"type", "ping"}});
    return 0;
  }
  if (tp::protocol::is_pong_message(*bytes)) {
    print({{"type", "pong"}});
    return 0;
  }
  tp::Result<tp::protocol::Message> m = tp::protocol::decode_message(*bytes);
  if (!m) {
    print(tp::protocol::error_to_json(m.error()));
    return 1;
  }
  print(tp::protocol::message_to_json(m.value()));
  return 0;
}

const tp::cli::Registrar r(tp::cli::command(kDecode, &run));

}  // namespace
