// Store::Open: the backend is chosen by the form of the path.
#include "eraser/storage/store.h"

#include "pg_store.h"
#include "rocks_store.h"

namespace eraser::storage {

bool IsPostgresLocation(const std::string& path) {
  return internal::IsPostgresUrl(path);
}

std::string PrintableLocation(const std::string& path) {
  return IsPostgresLocation(path) ? internal::RedactUrl(path) : path;
}

StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (internal::IsPostgresUrl(options.path)) {
    return internal::PgStore::Open(options);
  }
  return internal::OpenRocksStore(options);
}

}  // namespace eraser::storage
