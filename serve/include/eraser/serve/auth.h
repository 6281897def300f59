// Access control for `eraser serve`: bearer tokens from a token file,
// stored hashed, with scopes.
//
// The token file holds one token per line, never the token itself:
//
//   # comments and blank lines are ignored
//   sha256:<64 hex digits> <scope>[,<scope>...] [name]
//
// Scopes:
//   infer              inference (/v1/infer, /v2/models/.../infer)
//   delete:owner:<id>  request deletion of owner <id>'s data, and read the
//                      status of that owner's deletion requests only
//   delete             request deletion of any sample or owner, read any
//                      deletion's status
//   admin              everything: drain, and the certificate details
//                      (affected shards, watermark, model versions)
//
// `eraser token` makes a token and prints the line to add. A request
// carries `Authorization: Bearer <token>`; the token's SHA-256 is compared
// with every line in constant time (CRYPTO_memcmp, no early exit), so the
// time taken says nothing about which line nearly matched.
#ifndef ERASER_SERVE_AUTH_H_
#define ERASER_SERVE_AUTH_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/mutex.h"
#include "eraser/common/statusor.h"

namespace eraser::serve {

// What a token may do.
struct Principal {
  std::string name;  // for logs; never the token
  bool admin = false;
  bool infer = false;
  bool delete_any = false;
  std::set<uint64_t> owners;  // delete:owner:<id>

  bool MayInfer() const { return admin || infer; }
  bool MayDeleteSample() const { return admin || delete_any; }
  bool MayDeleteOwner(uint64_t owner) const {
    return admin || delete_any || owners.count(owner) > 0;
  }
};

class TokenFile {
 public:
  // kInvalidArgument naming the line for a malformed line, an unknown scope
  // or a repeated hash; kNotFound if the file cannot be read.
  static StatusOr<TokenFile> Load(const std::string& path);
  static StatusOr<TokenFile> Parse(std::string_view text,
                                   const std::string& path);

  // The principal of `token`, or null. Constant time in the token's
  // content: every line's hash is compared.
  const Principal* Find(std::string_view token) const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string hash;  // 32 raw bytes
    Principal principal;
  };
  std::vector<Entry> entries_;
};

// "sha256:" + the hex SHA-256 of `token`: the form stored in the file.
std::string HashToken(std::string_view token);
// A new random token: 32 bytes from OpenSSL's RAND_bytes, hex.
StatusOr<std::string> NewToken();
// The scopes of a comma-separated list; kInvalidArgument naming a bad one.
StatusOr<Principal> ParseScopes(std::string_view scopes);

// The token file in force, replaced as a whole by Reload (SIGHUP).
class Authenticator {
 public:
  static StatusOr<std::unique_ptr<Authenticator>> Open(std::string path);
  // Reads the file again; on error the previous tokens stay in force.
  Status Reload() EXCLUDES(mu_);
  std::shared_ptr<const TokenFile> tokens() const EXCLUDES(mu_);
  const std::string& path() const { return path_; }

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}
  const std::string path_;
  mutable Mutex mu_;
  std::shared_ptr<const TokenFile> tokens_ GUARDED_BY(mu_);
};

}  // namespace eraser::serve

#endif  // ERASER_SERVE_AUTH_H_
