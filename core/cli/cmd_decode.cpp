// `teleportal decode <hex>` (or hex on stdin): prints a frame as JSON, or a JSON error + exit 1.
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

int run(int argc, char** argv) {
  std::string hex;
  if (argc >= 1) {
    for (int i = 0; i < argc; ++i) hex += argv[i];
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

const tp::cli::Registrar r({"decode", "decode a frame given as hex (argument or stdin) to JSON", &run});

}  // namespace
