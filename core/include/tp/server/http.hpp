// The byte work of the HTTP/SSE transport (extensions spec section 4): what a POST body holds and
// what a frame the server sends to an HTTP client is. The routes, streams and waiting live in the
// host (wasm/src/http.js); every decision about bytes is made here.
#pragma once
#include <string>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/protocol/message.hpp"

namespace tp::server {

// One frame of a POST body: a view into the body, its message id (what the server's ack or NACK
// names) and whether the poster waits for that answer (every frame but an ack: the server answers
// each decodable non-ack frame, except a permission-denied one).
struct HttpFrame {
  ByteView frame;
  protocol::MessageId id{};
  bool needs_answer = false;
};

// A POST body: a message array (base spec 1.7) whose every element is a decodable Teleportal
// message. `error` is empty when the body is valid (an empty body is an empty array); otherwise it
// says why (the reference's decode error text, e.g. "Failed to decode update message: Invalid
// version" for a YJSping element) and `frames` is empty: nothing of the body is processed.
struct HttpBody {
  std::vector<HttpFrame> frames;
  std::string error;
};
HttpBody decode_http_body(ByteView body);

// A frame the server sends to an HTTP client: its message id (the SSE event id) and, for an ack or
// NACK, the id of the message it answers.
struct SentFrame {
  protocol::MessageId id{};
  bool is_ack = false;
  std::string answers;  // is_ack: the acked message id
};
SentFrame classify_sent_frame(ByteView frame);

}  // namespace tp::server
