#include "tp/server/http.hpp"

#include <algorithm>

namespace tp::server {

namespace {
protocol::MessageId id_of(const std::string& id) {
  protocol::MessageId out{};
  std::copy_n(id.begin(), std::min(id.size(), out.size()), out.begin());
  return out;
}
}  // namespace

HttpBody decode_http_body(ByteView body) {
  HttpBody out;
  auto elements = protocol::split_message_array(body);
  if (!elements) {
    out.error = elements.error().message;
    return out;
  }
  out.frames.reserve(elements.value().size());
  for (ByteView frame : elements.value()) {
    auto m = protocol::decode_message(frame);
    if (!m) {
      out.error = m.error().message;
      out.frames.clear();
      return out;
    }
    out.frames.push_back({frame, id_of(m.value().id), !m.value().is<protocol::Ack>()});
  }
  return out;
}

SentFrame classify_sent_frame(ByteView frame) {
  SentFrame out;
  auto view = protocol::peek_relay_frame(frame);
  if (view && view->type != protocol::MessageType::ack) {  // a relayed update: no decode needed
    out.id = protocol::message_id_chars(frame);
    return out;
  }
  auto m = protocol::decode_message(frame);
  if (m && m.value().is<protocol::Ack>()) {
    out.id = id_of(m.value().id);  // over the ack's canonical encoding (base spec 1.8)
    out.is_ack = true;
    out.answers = m.value().get<protocol::Ack>()->message_id;
    return out;
  }
  out.id = protocol::message_id_chars(frame);
  return out;
}

}  // namespace tp::server
