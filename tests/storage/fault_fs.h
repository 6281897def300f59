// FaultFs: a test RocksDB file system that counts the store's write
// operations (create, append, sync, close, rename, directory fsync), fails
// chosen ones with ENOSPC until healed, and keeps a journal of how many
// bytes of each file were synced, so a test can drop the rest as a power
// loss would. Used by the fault sweep (fault_sweep_test.cc) and the
// fatal-error test (fatal_error_test.cc); given to the store through the
// internal OpenRocksStore(options, env).
#ifndef ERASER_TESTS_STORAGE_FAULT_FS_H_
#define ERASER_TESTS_STORAGE_FAULT_FS_H_

#include <rocksdb/file_system.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

namespace eraser::storage {

enum class Op { kCreate, kAppend, kSync, kClose, kRename, kDirSync };
inline constexpr const char* kOpNames[] = {"create", "append", "sync",
                                           "close",  "rename", "dir-fsync"};
inline constexpr int kOps = 6;

// Counts the write operations, fails those from `fail_from` on until
// Heal(), and tracks how many bytes of each file were synced.
class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base)
      : FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "FaultFs"; }

  // Fails operation number `n` (0-based, counted since the start) and
  // every one after it until Heal(). -1: none.
  void FailFrom(long n) { fail_from_ = n; }
  // Fails every operation `op` on a file whose name ends with `suffix`
  // from now until Heal() (even after an earlier Heal()).
  void FailMatching(Op op, std::string suffix) {
    std::lock_guard<std::mutex> lock(mu_);
    match_op_ = static_cast<int>(op);
    match_suffix_ = std::move(suffix);
    healed_ = false;
  }
  void Heal() {
    std::lock_guard<std::mutex> lock(mu_);
    healed_ = true;
  }
  long ops() const { return ops_; }
  // The kind of the first failed operation, or -1.
  int first_failed() const { return first_failed_; }

  rocksdb::IOStatus Check(Op op, const std::string& file) {
    const long n = ops_++;
    std::lock_guard<std::mutex> lock(mu_);
    const bool matches = match_op_ == static_cast<int>(op) &&
                         file.size() >= match_suffix_.size() &&
                         file.compare(file.size() - match_suffix_.size(),
                                      match_suffix_.size(), match_suffix_) == 0;
    if (healed_ || (!matches && (fail_from_ < 0 || n < fail_from_))) return {};
    if (first_failed_ < 0) first_failed_ = static_cast<int>(op);
    return rocksdb::IOStatus::NoSpace("injected: no space left on device");
  }

  void Written(const std::string& name, uint64_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[name].size = size;
  }
  void Synced(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[name].synced = files_[name].size;
  }
  // "path synced-size" per file written through this file system.
  std::string Journal() {
    std::lock_guard<std::mutex> lock(mu_);
    std::ostringstream out;
    for (const auto& [name, f] : files_) out << name << ' ' << f.synced << '\n';
    return out.str();
  }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = Check(Op::kRename, from);
    if (!s.ok()) return s;
    s = target()->RenameFile(from, to, options, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = files_.find(from); it != files_.end()) {
        files_[to] = it->second;
        files_.erase(it);
      }
    }
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& name,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->DeleteFile(name, options, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      files_.erase(name);
    }
    return s;
  }
  rocksdb::IOStatus NewDirectory(const std::string& name,
                                 const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;

 private:
  struct File {
    uint64_t size = 0;
    uint64_t synced = 0;
  };
  std::atomic<long> ops_{0};
  std::atomic<long> fail_from_{-1};
  int match_op_ = -1;  // guarded by mu_, as match_suffix_
  std::string match_suffix_;
  std::mutex mu_;
  bool healed_ = false;
  int first_failed_ = -1;
  std::map<std::string, File> files_;

  // `file`, opened at `size`, wrapped to count and fail its operations.
  std::unique_ptr<rocksdb::FSWritableFile> Track(
      std::unique_ptr<rocksdb::FSWritableFile> file, const std::string& name,
      uint64_t size);
};

}  // namespace eraser::storage

#endif  // ERASER_TESTS_STORAGE_FAULT_FS_H_
