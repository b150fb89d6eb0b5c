// Document-access decisions (spec section 2.3), on JSON values exactly as tokens carry them.
#include "tp/token/access.hpp"

#include <algorithm>

namespace tp::token {
namespace {

using nlohmann::json;

// A usable entry's pattern, or nullptr for a malformed entry (which then matches nothing).
const std::string* pattern_of(const json& entry) {
  if (!entry.is_object()) return nullptr;
  auto it = entry.find("pattern");
  if (it == entry.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

bool is_exclusion(const std::string& pattern) { return !pattern.empty() && pattern[0] == '!'; }

// Permissions of an inclusion entry; nullptr when absent or not an array.
const json* permissions_of(const json& entry) {
  auto it = entry.find("permissions");
  if (it == entry.end() || !it->is_array()) return nullptr;
  return &*it;
}

bool any_exclusion_matches(const json& list, std::string_view document) {
  for (const json& e : list) {
    const std::string* p = pattern_of(e);
    if (p && is_exclusion(*p) && matches_pattern(std::string_view(*p).substr(1), document))
      return true;
  }
  return false;
}

const json& access_of(const json& payload) {
  static const json kNull;
  if (!payload.is_object()) return kNull;
  auto it = payload.find("documentAccess");
  return it == payload.end() ? kNull : *it;
}

}  // namespace

bool matches_pattern(std::string_view pattern, std::string_view doc) {
  // Without '*' a pattern is a literal name. Otherwise it is a glob anchored at both ends in
  // which each '*' matches any run of bytes; `*` and `prefix/*` are special cases of it.
  if (pattern.find('*') == std::string_view::npos) return pattern == doc;
  std::size_t p = 0, d = 0, star = std::string_view::npos, mark = 0;
  while (d < doc.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = d;
    } else if (p < pattern.size() && pattern[p] == doc[d]) {
      ++p;
      ++d;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      d = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

// Calls `f(permission)` for each permission string of each inclusion entry matching `document`,
// in list order, until `f` returns true. (Callers check exclusions first.)
template <class F>
bool any_granted(const json& list, std::string_view document, F f) {
  for (const json& e : list) {
    const std::string* p = pattern_of(e);
    if (!p || is_exclusion(*p) || !matches_pattern(*p, document)) continue;
    const json* perms = permissions_of(e);
    if (!perms) continue;
    for (const json& perm : *perms) {
      if (perm.is_string() && f(perm.get_ref<const std::string&>())) return true;
    }
  }
  return false;
}

}  // namespace

bool access_has_permission(const json& list, std::string_view document, std::string_view permission,
                           const PermissionOptions& options) {
  if (list.is_null() || list.is_discarded()) return options.allow_missing_document_access;
  if (!list.is_array()) return false;
  if (any_exclusion_matches(list, document)) return false;
  return any_granted(list, document,
                     [&](const std::string& s) { return s == permission || s == "admin"; });
}

std::vector<std::string> access_permissions(const json& list, std::string_view document) {
  std::vector<std::string> out;
  if (!list.is_array() || any_exclusion_matches(list, document)) return out;
  any_granted(list, document, [&](const std::string& s) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    return false;
  });
  return out;
}

bool has_document_permission(const json& payload, std::string_view document,
                             std::string_view permission, const PermissionOptions& options) {
  return access_has_permission(access_of(payload), document, permission, options);
}

std::vector<std::string> get_document_permissions(const json& payload, std::string_view document) {
  return access_permissions(access_of(payload), document);
}

// ---- builder ---------------------------------------------------------------------------------

DocumentAccessBuilder& DocumentAccessBuilder::allow(std::string pattern, Perms permissions) {
  list_.push_back(json{{"pattern", std::move(pattern)}, {"permissions", std::move(permissions)}});
  return *this;
}
DocumentAccessBuilder& DocumentAccessBuilder::deny(const std::string& pattern) {
  return allow("!" + pattern, {"read", "write", "comment", "suggest", "admin"});
}
DocumentAccessBuilder& DocumentAccessBuilder::allow_all(Perms permissions) {
  return allow("*", std::move(permissions));
}
DocumentAccessBuilder& DocumentAccessBuilder::read_only(std::string pattern) {
  return allow(std::move(pattern), {"read"});
}
DocumentAccessBuilder& DocumentAccessBuilder::write(std::string pattern) {
  return allow(std::move(pattern), {"read", "write"});
}
DocumentAccessBuilder& DocumentAccessBuilder::full_access(std::string pattern) {
  return allow(std::move(pattern), {"read", "write", "comment", "suggest"});
}
DocumentAccessBuilder& DocumentAccessBuilder::admin(std::string pattern) {
  return allow(std::move(pattern), {"admin"});
}
DocumentAccessBuilder& DocumentAccessBuilder::comment_only(std::string pattern) {
  return allow(std::move(pattern), {"read", "comment"});
}
DocumentAccessBuilder& DocumentAccessBuilder::suggest_only(std::string pattern) {
  return allow(std::move(pattern), {"read", "comment", "suggest"});
}
DocumentAccessBuilder& DocumentAccessBuilder::own_documents(const std::string& user_id,
                                                            Perms permissions) {
  return allow(user_id + "/*", std::move(permissions));
}

}  // namespace tp::token
