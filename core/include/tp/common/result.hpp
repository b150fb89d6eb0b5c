// Errors are data inside the core: a stable code plus a message for humans.
// They become exceptions, result objects or exit codes only at the edges (wasm/, CLI).
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace tp {

struct Error {
  std::string code;     // stable, snake_case, part of the interface (e.g. "truncated")
  std::string message;  // clear English, may include details
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}   // NOLINT: implicit on purpose

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

inline Error make_error(std::string code, std::string message) {
  return Error{std::move(code), std::move(message)};
}

}  // namespace tp
