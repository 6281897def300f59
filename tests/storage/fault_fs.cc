#include "fault_fs.h"

#include <filesystem>
#include <system_error>

namespace eraser::storage {
namespace {

// Returns a failed IOStatus from the enclosing function.
#define RETURN_IO(expr)                      \
  do {                                       \
    rocksdb::IOStatus io_status_ = (expr);   \
    if (!io_status_.ok()) return io_status_; \
  } while (false)

class FaultFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultFile(std::unique_ptr<rocksdb::FSWritableFile> file, FaultFs* fs,
            std::string name, uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(file)),
        fs_(fs),
        name_(std::move(name)),
        size_(size) {
    fs_->Written(name_, size_);
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kAppend, name_));
    RETURN_IO(target()->Append(data, options, dbg));
    return Grew(data.size());
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kAppend, name_));
    RETURN_IO(target()->Append(data, options, info, dbg));
    return Grew(data.size());
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kAppend, name_));
    RETURN_IO(target()->PositionedAppend(data, offset, options, dbg));
    size_ = std::max<uint64_t>(size_, offset + data.size());
    fs_->Written(name_, size_);
    return {};
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kAppend, name_));
    RETURN_IO(target()->PositionedAppend(data, offset, options, info, dbg));
    size_ = std::max<uint64_t>(size_, offset + data.size());
    fs_->Written(name_, size_);
    return {};
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    RETURN_IO(target()->Truncate(size, options, dbg));
    size_ = size;
    fs_->Written(name_, size_);
    return {};
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kSync, name_));
    RETURN_IO(target()->Sync(options, dbg));
    fs_->Synced(name_);
    return {};
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kSync, name_));
    RETURN_IO(target()->Fsync(options, dbg));
    fs_->Synced(name_);
    return {};
  }
  // A range sync promises nothing about the rest of the file: counted,
  // never treated as synced.
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kSync, name_));
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    RETURN_IO(fs_->Check(Op::kClose, name_));
    return target()->Close(options, dbg);
  }

 private:
  rocksdb::IOStatus Grew(std::size_t n) {
    size_ += n;
    fs_->Written(name_, size_);
    return {};
  }

  FaultFs* fs_;
  std::string name_;
  uint64_t size_;
};

class FaultDir : public rocksdb::FSDirectoryWrapper {
 public:
  FaultDir(std::unique_ptr<rocksdb::FSDirectory> dir, FaultFs* fs)
      : FSDirectoryWrapper(std::move(dir)), fs_(fs) {}
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(Op::kDirSync, "");
    return s.ok() ? FSDirectoryWrapper::Fsync(options, dbg) : s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(
      const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg,
      const rocksdb::DirFsyncOptions& dir_options) override {
    rocksdb::IOStatus s = fs_->Check(Op::kDirSync, "");
    return s.ok() ? FSDirectoryWrapper::FsyncWithDirOptions(options, dbg,
                                                            dir_options)
                  : s;
  }

 private:
  FaultFs* fs_;
};

}  // namespace

std::unique_ptr<rocksdb::FSWritableFile> FaultFs::Track(
    std::unique_ptr<rocksdb::FSWritableFile> file, const std::string& name,
    uint64_t size) {
  return std::make_unique<FaultFile>(std::move(file), this, name, size);
}

rocksdb::IOStatus FaultFs::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = Check(Op::kCreate, name);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->NewWritableFile(name, options, &file, dbg);
  if (s.ok()) *result = Track(std::move(file), name, 0);
  return s;
}

rocksdb::IOStatus FaultFs::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = Check(Op::kCreate, name);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReopenWritableFile(name, options, &file, dbg);
  if (!s.ok()) return s;
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(name, ec);
  {
    // What was there before this process is on disk.
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.count(name) == 0) files_[name] = {ec ? 0 : size, ec ? 0 : size};
  }
  *result = Track(std::move(file), name, ec ? 0 : size);
  return s;
}

rocksdb::IOStatus FaultFs::ReuseWritableFile(
    const std::string& name, const std::string& old_name,
    const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = Check(Op::kCreate, name);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReuseWritableFile(name, old_name, options, &file, dbg);
  if (s.ok()) *result = Track(std::move(file), name, 0);
  return s;
}

rocksdb::IOStatus FaultFs::NewDirectory(
    const std::string& name, const rocksdb::IOOptions& options,
    std::unique_ptr<rocksdb::FSDirectory>* result,
    rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, options, &dir, dbg);
  if (s.ok()) *result = std::make_unique<FaultDir>(std::move(dir), this);
  return s;
}

}  // namespace eraser::storage
