// Store::Open: the backend is chosen by the form of the path.
#include "eraser/storage/store.h"

#include <algorithm>
#include <iterator>
#include <string_view>

#include "pg_store.h"
#include "rocks_store.h"

namespace eraser::storage {

bool IsPostgresLocation(const std::string& path) {
  return internal::IsPostgresUrl(path);
}

namespace {

// The value of every `password=` in `path` replaced by ***: a libpq
// keyword/value string given where a directory or URL belongs.
std::string RedactPasswords(std::string path) {
  constexpr std::string_view kKey = "password=";
  for (std::size_t at = path.find(kKey); at != std::string::npos;
       at = path.find(kKey, at + kKey.size())) {
    const std::size_t value = at + kKey.size();
    const std::size_t end = path.find(' ', value);
    path.replace(value, (end == std::string::npos ? path.size() : end) - value,
                 "***");
  }
  return path;
}

// Whether `path` starts as a libpq keyword/value connection string does
// ("host=db dbname=eraser ..."), not as a directory could be named.
bool IsKeywordValueString(const std::string& path) {
  static constexpr std::string_view kKeywords[] = {"host",
                                                   "hostaddr",
                                                   "port",
                                                   "dbname",
                                                   "user",
                                                   "password",
                                                   "service",
                                                   "sslmode",
                                                   "connect_timeout",
                                                   "application_name",
                                                   "options",
                                                   "target_session_attrs"};
  const std::size_t start = path.find_first_not_of(' ');
  const std::size_t eq = path.find('=');
  if (start == std::string::npos || eq == std::string::npos || eq <= start) {
    return false;
  }
  std::string_view key(path.data() + start, eq - start);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  return std::find(std::begin(kKeywords), std::end(kKeywords), key) !=
         std::end(kKeywords);
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
