// Store::Open: the backend is chosen by the form of the path.
#include "eraser/storage/store.h"

#include <algorithm>
#include <iterator>
#include <string_view>

#include "pg_store.h"
#include "pg_url.h"
#include "rocks_store.h"

namespace eraser::storage {

bool IsPostgresLocation(const std::string& path) {
  return internal::IsPostgresUrl(path);
}

namespace {

// The value of every password in `path` (a libpq keyword/value string
// given where a directory or URL belongs: `password = value`, the value
// bare or single-quoted with backslash escapes) replaced by ***.
std::string RedactPasswords(const std::string& path) {
  constexpr std::string_view kKey = "password";
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    const std::size_t at = path.find(kKey, i);
    if (at == std::string::npos) break;
    std::size_t j = at + kKey.size();
    while (j < path.size() && path[j] == ' ') ++j;
    if (j >= path.size() || path[j] != '=') {
      out.append(path, i, j - i);
      i = j;
      continue;
    }
    ++j;
    while (j < path.size() && path[j] == ' ') ++j;
    out.append(path, i, j - i);
    out += "***";
    if (j < path.size() && path[j] == '\'') {
      for (++j; j < path.size() && path[j] != '\''; ++j) {
        if (path[j] == '\\') ++j;
      }
      ++j;  // the closing quote
    } else {
      while (j < path.size() && path[j] != ' ') ++j;
    }
    i = std::min(j, path.size());
  }
  out.append(path, std::min(i, path.size()), std::string::npos);
  return out;
}

// Whether `path` is written as a libpq keyword/value connection string
// ("host=db dbname=eraser ..."): a word of it is `keyword=` (or
// `keyword =`) for a keyword of libpq's, which a directory's name would
// hardly be.
bool IsKeywordValueString(const std::string& path) {
  static constexpr std::string_view kKeywords[] = {"host",
                                                   "hostaddr",
                                                   "port",
                                                   "dbname",
                                                   "user",
                                                   "password",
                                                   "passfile",
                                                   "service",
                                                   "options",
                                                   "sslmode",
                                                   "sslcert",
                                                   "sslkey",
                                                   "sslrootcert",
                                                   "sslpassword",
                                                   "gssencmode",
                                                   "krbsrvname",
                                                   "channel_binding",
                                                   "connect_timeout",
                                                   "application_name",
                                                   "target_session_attrs",
                                                   "requirepeer"};
  for (std::size_t eq = path.find('='); eq != std::string::npos;
       eq = path.find('=', eq + 1)) {
    std::size_t end = eq;
    while (end > 0 && path[end - 1] == ' ') --end;
    std::size_t start = end;
    while (start > 0 && path[start - 1] != ' ') --start;
    const std::string_view key(path.data() + start, end - start);
    if (std::find(std::begin(kKeywords), std::end(kKeywords), key) !=
        std::end(kKeywords)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string PrintableLocation(const std::string& path) {
  return IsPostgresLocation(path) ? internal::RedactUrl(path)
                                  : RedactPasswords(path);
}

StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (internal::IsPostgresUrl(options.path)) {
    return internal::PgStore::Open(options);
  }
  if (IsKeywordValueString(options.path)) {
    return InvalidArgumentError(
        PrintableLocation(options.path) +
        " is a libpq keyword/value string: give the database as a "
        "postgresql:// URL (postgresql://user@host:port/dbname)");
  }
  return internal::OpenRocksStore(options);
}

}  // namespace eraser::storage
