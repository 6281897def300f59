#include "eraser/serve/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

namespace eraser::serve {
namespace {

constexpr std::string_view kPrefix = "sha256:";

std::string Hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 15];
  }
  return out;
}

std::string RawSha256(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 64 hex digits -> 32 raw bytes; false if malformed.
bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() != 2 * SHA256_DIGEST_LENGTH) return false;
  out->clear();
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexValue(hex[i]);
    const int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
  }
  return true;
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

}  // namespace

std::string HashToken(std::string_view token) {
  const std::string raw = RawSha256(token);
  return std::string(kPrefix) +
         Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

StatusOr<std::string> NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return InternalError("OpenSSL's RAND_bytes failed");
  }
  return Hex(bytes, sizeof(bytes));
}

StatusOr<Principal> ParseScopes(std::string_view scopes) {
  Principal p;
  for (std::string_view scope : Split(scopes, ',')) {
    constexpr std::string_view kOwner = "delete:owner:";
    if (scope == "admin") {
      p.admin = true;
    } else if (scope == "infer") {
      p.infer = true;
    } else if (scope == "delete") {
      p.delete_any = true;
    } else if (scope.substr(0, kOwner.size()) == kOwner &&
               scope.size() > kOwner.size() &&
               scope.size() <= kOwner.size() + 19 &&
               scope.find_first_not_of("0123456789", kOwner.size()) ==
                   std::string_view::npos) {
      p.owners.insert(std::stoull(std::string(scope.substr(kOwner.size()))));
    } else {
      return InvalidArgumentError(
          "unknown scope '" + std::string(scope) +
          "' (expected infer, delete, delete:owner:<id> or admin)");
    }
  }
  return p;
}

StatusOr<TokenFile> TokenFile::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read the token file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

StatusOr<TokenFile> TokenFile::Parse(std::string_view text,
                                     const std::string& path) {
  TokenFile file;
  std::size_t line_number = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    auto fail = [&](const std::string& why) {
      return InvalidArgumentError(path + ":" + std::to_string(line_number) +
                                  ": " + why);
    };
    std::vector<std::string_view> fields;
    for (std::string_view f : Split(line.substr(first), ' ')) {
      if (!f.empty()) fields.push_back(f);
    }
    if (fields.size() < 2 || fields.size() > 3) {
      return fail("expected 'sha256:<hex> <scopes> [name]'");
    }
    Entry e;
    if (fields[0].substr(0, kPrefix.size()) != kPrefix ||
        !FromHex(fields[0].substr(kPrefix.size()), &e.hash)) {
      return fail(
          "the token must be stored as sha256: and 64 hex digits (make one "
          "with 'eraser token'); a plain token is refused");
    }
    StatusOr<Principal> principal = ParseScopes(fields[1]);
    if (!principal.ok()) return fail(principal.status().message());
    e.principal = std::move(principal).value();
    e.principal.name = fields.size() == 3
                           ? std::string(fields[2])
                           : "line " + std::to_string(line_number);
    for (const Entry& other : file.entries_) {
      if (other.hash == e.hash) return fail("the same token appears twice");
    }
    file.entries_.push_back(std::move(e));
  }
  // A file without a token would refuse every request but health; more
  // likely it is being rewritten, or the wrong file (at SIGHUP the old
  // tokens stay).
  if (file.entries_.empty()) {
    return InvalidArgumentError(path + " holds no token");
  }
  return file;
}

const Principal* TokenFile::Find(std::string_view token) const {
  const std::string hash = RawSha256(token);
  const Principal* found = nullptr;
  for (const Entry& e : entries_) {
    // Every line is compared: no early exit.
    if (CRYPTO_memcmp(e.hash.data(), hash.data(), hash.size()) == 0) {
      found = &e.principal;
    }
  }
  return found;
}

StatusOr<std::unique_ptr<Authenticator>> Authenticator::Open(std::string path) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(path)));
  RETURN_IF_ERROR(auth->Reload());
  return auth;
}

Status Authenticator::Reload() {
  ASSIGN_OR_RETURN(TokenFile file, TokenFile::Load(path_));
  auto tokens = std::make_shared<const TokenFile>(std::move(file));
  MutexLock lock(&mu_);
  tokens_ = std::move(tokens);
  return OkStatus();
}

std::shared_ptr<const TokenFile> Authenticator::tokens() const {
  MutexLock lock(&mu_);
  return tokens_;
}

}  // namespace eraser::serve
