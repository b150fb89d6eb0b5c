// Document-access patterns carried in Teleportal tokens (spec section 2.3).
//
// A token's `documentAccess` is a list of {pattern, permissions[]}. Patterns: exact names, `*`,
// `prefix/*`, and globs where only `*` is special (it matches any run of bytes, `/` included).
// An entry whose pattern starts with `!` is an exclusion and wins over every inclusion.
// `admin` in an inclusion's permissions grants any permission.
//
// Deliberate difference from the reference: a payload without `documentAccess` (absent or
// null) is DENIED by has_document_permission unless `allow_missing_document_access` is set
// (the reference fails open there while getDocumentPermissions fails closed).
// Malformed entries (not an object, non-string pattern, non-array permissions) never throw:
// they match nothing. Non-string items inside a permissions array are ignored.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tp::token {

struct PermissionOptions {
  // true restores the reference's fail-open: no documentAccess at all grants everything.
  bool allow_missing_document_access = false;
};

// Glob match of one pattern (without the leading `!`) against a document name.
bool matches_pattern(std::string_view pattern, std::string_view document);

// On a token payload (a JSON object with a `documentAccess` member).
bool has_document_permission(const nlohmann::json& payload, std::string_view document,
                             std::string_view permission, const PermissionOptions& options = {});
std::vector<std::string> get_document_permissions(const nlohmann::json& payload,
                                                  std::string_view document);

// The same on the `documentAccess` value itself; null (or a discarded value) means "missing".
bool access_has_permission(const nlohmann::json& document_access, std::string_view document,
                           std::string_view permission, const PermissionOptions& options = {});
std::vector<std::string> access_permissions(const nlohmann::json& document_access,
                                            std::string_view document);

// Builds documentAccess lists (Teleportal's DocumentAccessBuilder); each call appends one entry.
class DocumentAccessBuilder {
 public:
  using Perms = std::vector<std::string>;
  DocumentAccessBuilder& allow(std::string pattern, Perms permissions);
  DocumentAccessBuilder& deny(const std::string& pattern);  // `!pattern`, all five permissions
  DocumentAccessBuilder& deny_document(const std::string& name) { return deny(name); }
  DocumentAccessBuilder& allow_all(Perms permissions = {"read", "write", "comment", "suggest"});
  DocumentAccessBuilder& read_only(std::string pattern);
  DocumentAccessBuilder& write(std::string pattern);
  DocumentAccessBuilder& full_access(std::string pattern);
  DocumentAccessBuilder& admin(std::string pattern);
  DocumentAccessBuilder& comment_only(std::string pattern);
  DocumentAccessBuilder& suggest_only(std::string pattern);
  DocumentAccessBuilder& own_documents(const std::string& user_id,
                                       Perms permissions = {"read", "write", "comment", "suggest",
                                                            "admin"});
  nlohmann::json build() const { return list_; }

 private:
  nlohmann::json list_ = nlohmann::json::array();
};

}  // namespace tp::token
