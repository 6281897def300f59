// RocksDB's lock on a data directory, held without opening the store: what
// `eraser train --rebuild` holds while it deletes a directory, so that it
// never deletes one a store (a running eraser serve, or another store in
// this process) has open.
#ifndef ERASER_STORAGE_DATA_DIR_LOCK_H_
#define ERASER_STORAGE_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "eraser/common/statusor.h"

namespace eraser::storage {

class DataDirLock {
 public:
  virtual ~DataDirLock() = default;  // releases the lock
};

// Takes the lock on data directory `dir` (its LOCK file, created if
// missing), as an open store holds it. kFailedPrecondition when a store in
// this process or another has the directory open; kInvalidArgument for a
// LOCK file that cannot be opened (no permission).
StatusOr<std::unique_ptr<DataDirLock>> LockDataDir(const std::string& dir);

}  // namespace eraser::storage

#endif  // ERASER_STORAGE_DATA_DIR_LOCK_H_
