// JSON rendering of decoded frames for the CLI and tests, in the shape of the vectors' `decoded`
// objects: {type, document (null for ack), encrypted, payload{...}, [rpcMethod, requestType,
// originalRequestId], id}; bytes as {"$hex"}, other special values as in lib0/any.hpp.
#pragma once
#include <nlohmann/json.hpp>

#include "tp/protocol/envelope.hpp"
#include "tp/protocol/message.hpp"

namespace tp::protocol {

nlohmann::ordered_json message_to_json(const Message& m);
nlohmann::ordered_json envelope_to_json(const ContentEncryptedEnvelope& e);
// {"error": code, "message": top-level message, "causes": [inner messages...]}
nlohmann::ordered_json error_to_json(const Error& e);

}  // namespace tp::protocol
