// Open, close, status conversion, encodings, meta and audit.
#include "rocks_store.h"

#include <rocksdb/env.h>
#include <rocksdb/iterator.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "coding.h"
#include "eraser/storage/data_dir_lock.h"

namespace eraser::storage {
namespace internal {
namespace {

constexpr const char* kFamilyNames[RocksStore::kNumFamilies] = {
    "default",  // rocksdb::kDefaultColumnFamilyName
    "samples",     "sample_index", "owners", "deletions",
    "checkpoints", "meta",         "audit"};

constexpr char kFormatKey[] = "storage_format";
constexpr char kFormatVersion[] = "1";
constexpr char kConfigPrefix[] = "config/";

// Every RocksDB error reaches the write gate, the background ones too: a
// failed flush, compaction or write-ahead-log append closes the gate as a
// failed foreground write does, and no write goes to RocksDB until the
// next write has resumed it (after a failed compaction only) or reopened
// the database (after anything else; RocksStore::Writable). A write after
// a background I/O error trips an assertion in Debian's RocksDB (built
// with assertions) instead of returning the error; that aborted `eraser
// serve` on a full disk.
//
// RocksDB's automatic recovery is off: the store recovers itself, at its
// next write, so that the write that finds space again is the one that
// recovers. With the automatic recovery on, RocksDB answers that write
// "busy" until its own recovery thread notices the space (seconds later),
// and its recovery flush can wait for ever (Writable).
class GateListener final : public rocksdb::EventListener {
 public:
  explicit GateListener(std::shared_ptr<WriteGate> gate)
      : gate_(std::move(gate)) {}

  // Called with RocksDB's own mutex held: only marks the gate.
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                         rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    // A failed compaction touched neither the log nor the memtables:
    // Resume() recovers from it. Anything else needs a reopen (Writable).
    gate_->Close(
        FromRocks(*error, std::string("background ") + ReasonName(reason)),
        /*resumable=*/reason == rocksdb::BackgroundErrorReason::kCompaction &&
            error->severity() <= rocksdb::Status::Severity::kSoftError);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

 private:
  static const char* ReasonName(rocksdb::BackgroundErrorReason reason) {
    switch (reason) {
      case rocksdb::BackgroundErrorReason::kFlush:
        return "flush";
      case rocksdb::BackgroundErrorReason::kCompaction:
        return "compaction";
      case rocksdb::BackgroundErrorReason::kWriteCallback:
        return "write";
      case rocksdb::BackgroundErrorReason::kMemTable:
        return "memtable";
      default:
        return "error";
    }
  }

  const std::shared_ptr<WriteGate> gate_;
};

// RocksDB's warnings and errors on stderr, instead of its LOG file in the
// data directory: on a full disk a failed LOG write followed by another
// aborts the process inside Debian's RocksDB (built with assertions), from
// a background flush that nothing else can stop.
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    // A record's first line: some carry a dump of many more (the version
    // edits of a manifest write that failed on a full disk), which would
    // bury eraser's own line about the error.
    if (char* newline = std::strchr(line, '\n'); newline != nullptr) {
      std::fprintf(stderr, "rocksdb: %.*s [...]\n",
                   static_cast<int>(newline - line), line);
      return;
    }
    std::fprintf(stderr, "rocksdb: %s\n", line);
  }
};

}  // namespace

Status FromRocks(const rocksdb::Status& status, std::string_view context) {
  if (status.ok()) return OkStatus();
  std::string message(context);
  message += ": ";
  message += status.ToString();
  if (status.IsNotFound()) return NotFoundError(std::move(message));
  // A quota (EDQUOT) is a full disk for this store; RocksDB names only
  // ENOSPC NoSpace.
  if (status.IsNoSpace() ||
      (status.IsIOError() &&
       message.find("Disk quota exceeded") != std::string::npos)) {
    return ResourceExhaustedError(message + " (the disk is full)");
  }
  if (status.IsCorruption()) return DataLossError(std::move(message));
  if (status.IsInvalidArgument()) {
    return InvalidArgumentError(std::move(message));
  }
  // The LOCK file held by another process (or another store of this one):
  // "Resource temporarily unavailable", "lock hold by current process".
  // Other errors on it (no permission) are the path's.
  if (status.IsIOError() && message.find("/LOCK") != std::string::npos) {
    if (message.find("temporarily unavailable") != std::string::npos ||
        message.find("lock hold by current process") != std::string::npos) {
      return FailedPreconditionError(
          message + " (is another eraser process using this data directory?)");
    }
    return InvalidArgumentError(message);
  }
  if (status.IsBusy() || status.IsTimedOut() || status.IsTryAgain()) {
    return UnavailableError(std::move(message));
  }
  return InternalError(std::move(message));
}

std::string SampleKey(ShardId shard, uint32_t slice, SampleId id) {
  std::string key;
  PutU32(&key, shard.value());
  PutU32(&key, slice);
  PutU64(&key, id.value());
  return key;
}

std::string ShardPrefix(ShardId shard) {
  std::string key;
  PutU32(&key, shard.value());
  return key;
}

std::string U64Key(uint64_t v) {
  std::string key;
  PutU64(&key, v);
  return key;
}

std::string OwnerKey(OwnerId owner, SampleId id) {
  std::string key;
  PutU64(&key, owner.value());
  PutU64(&key, id.value());
  return key;
}

std::string CheckpointKey(ShardId shard, uint32_t slice) {
  std::string key;
  PutU32(&key, shard.value());
  PutU32(&key, slice);
  return key;
}

void WriteGate::WriteFailed(Status why, bool resumable) {
  MutexLock lock(&mu_);
  failed_ = true;
  reopen_ = reopen_ || !resumable;
  ++closes_;
  ++failures_;
  last_ = std::move(why);
}

void WriteGate::Close(Status why, bool resumable) {
  MutexLock lock(&mu_);
  failed_ = true;
  reopen_ = reopen_ || !resumable;
  ++closes_;
  last_ = std::move(why);
}

bool WriteGate::closed(uint64_t* closes) const {
  MutexLock lock(&mu_);
  if (closes != nullptr) *closes = closes_;
  return failed_;
}

bool WriteGate::needs_reopen() const {
  MutexLock lock(&mu_);
  return reopen_;
}

bool WriteGate::Opened(uint64_t closes) {
  MutexLock lock(&mu_);
  if (closes != closes_ || reopen_) return false;
  failed_ = false;
  ++resumes_;
  return true;
}

Status WriteGate::last() const {
  MutexLock lock(&mu_);
  return last_;
}

void WriteGate::Refused() {
  MutexLock lock(&mu_);
  ++failures_;
}

void WriteGate::Reopening() {
  MutexLock lock(&mu_);
  failed_ = false;
  reopen_ = false;
  last_ = OkStatus();
}

void WriteGate::Reopened() {
  MutexLock lock(&mu_);
  // Every reopen follows an error: it is how the store resumes writing.
  ++reopens_;
  ++resumes_;
}

void WriteGate::Counts(uint64_t* failures, uint64_t* resumes,
                       uint64_t* reopens) const {
  MutexLock lock(&mu_);
  *failures = failures_;
  *resumes = resumes_;
  if (reopens != nullptr) *reopens = reopens_;
}

namespace {

// Closes `db`; a failure has no caller to report to, and the write-ahead
// log already holds every synced write.
void CloseDb(std::unique_ptr<rocksdb::DB>* db,
             std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  if (*db == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* h : *handles) {
    (*db)->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  handles->clear();
  // Close waits for background compactions.
  (*db)->Close().PermitUncheckedError();
  db->reset();
}

// The last sequence number in the deletion log of `db`.
StatusOr<uint64_t> LastSeq(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* log,
                           const std::string& path) {
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions(), log));
  it->SeekToLast();
  if (!it->Valid()) {
    RETURN_IF_ERROR(FromRocks(it->status(), "read deletion log"));
    return 0;
  }
  Decoder d(it->key().ToStringView());
  const uint64_t seq = d.U64();
  if (!d.Finish()) return DataLossError(path + ": corrupt deletion log key");
  return seq;
}

// RocksDB 7.8 keeps the empty write-ahead log of every earlier open until
// a flush (fixed in 8.3, facebook/rocksdb#11409): a server restarted
// without a write in between (one that fails to listen, restarted in a
// loop by its supervisor) left one more file each time, which every later
// open reads. An empty log older than the one this open writes holds no
// record, so nothing acknowledged, and this database no longer refers to
// it (nothing was replayed from it): it is removed.
void RemoveEmptyOldLogs(rocksdb::DB* db, const std::string& path) {
  std::unique_ptr<rocksdb::LogFile> current;
  if (!db->GetCurrentWalFile(&current).ok() || current == nullptr) return;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    uint64_t number = 0;
    const auto [rest, parsed] =
        std::from_chars(name.data(), name.data() + name.size(), number);
    std::error_code size_error;
    if (parsed != std::errc() ||
        std::string_view(rest, name.data() + name.size() - rest) != ".log" ||
        number >= current->LogNumber() || it->file_size(size_error) != 0 ||
        size_error) {
      continue;
    }
    std::error_code removed;
    std::filesystem::remove(it->path(), removed);
  }
}

}  // namespace

StatusOr<RocksStore::OpenDb> RocksStore::Open(const OpenParams& params) {
  OpenDb out;
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(params.options, params.path, params.families,
                                  &out.handles, &raw),
                "open " + params.path));
  out.db.reset(raw);
  RemoveEmptyOldLogs(out.db.get(), params.path);
  StatusOr<uint64_t> last =
      LastSeq(out.db.get(), out.handles[kDeletions], params.path);
  if (!last.ok()) {
    CloseDb(&out.db, &out.handles);
    return last.status();
  }
  out.last_seq = *last;
  return out;
}

RocksStore::RocksStore(OpenParams params, OpenDb opened,
                       std::shared_ptr<WriteGate> gate)
    : params_(std::move(params)),
      db_(std::move(opened.db)),
      handles_(std::move(opened.handles)),
      statistics_(params_.options.statistics),
      gate_(std::move(gate)),
      last_seq_(opened.last_seq) {}

RocksStore::~RocksStore() {
  WriterMutexLock lock(&db_mu_);
  CloseDb(&db_, &handles_);
}

RocksStore::DbLock::DbLock(RocksStore* store, Access access) : store_(store) {
  const bool tried = access != kRead && store->ReopenIfNeeded(true);
  store->db_mu_.ReaderLock();
  if (store->db_ == nullptr) {
    // A failed reopen left no database open: a read tries again too.
    store->db_mu_.ReaderUnlock();
    store->ReopenIfNeeded(false);
    store->db_mu_.ReaderLock();
  }
  status_ = store->HasDb();
  if (!status_.ok() || access != kWrite) return;
  status_ = store->Writable();
  if (!status_.ok() && !tried && store->gate_->needs_reopen()) {
    // A write failed since this operation checked: reopen, and try once
    // more, so that the write that finds the disk free again is the one
    // that succeeds.
    store->db_mu_.ReaderUnlock();
    store->ReopenIfNeeded(true);
    store->db_mu_.ReaderLock();
    status_ = store->HasDb();
    if (status_.ok()) status_ = store->Writable();
  }
  if (!status_.ok()) store->gate_->Refused();
}

RocksStore::DbLock::~DbLock() { store_->db_mu_.ReaderUnlock(); }

Status RocksStore::HasDb() const {
  if (db_ != nullptr) return OkStatus();
  return ReopenFailed();
}

Status RocksStore::ReopenFailed() const {
  return Status(reopen_error_.code() == StatusCode::kResourceExhausted
                    ? StatusCode::kResourceExhausted
                    : StatusCode::kUnavailable,
                "the store takes no write until it reopens to write (tried "
                "at each write): " +
                    reopen_error_.message());
}

namespace {

// Reopening writes a new log and manifest and the replayed log's tables:
// with less free space than this it is not tried (it would fail, and cost
// every write a replay of the log while holding the store alone). Files
// are not preallocated (allow_fallocate is off), so a reopen takes only
// the bytes it writes: a small log and manifest, and the table of what
// the log replays (if that does not fit, the open fails, the store opens
// read-only, and the next write tries again).
constexpr uint64_t kReopenMinFreeBytes = 1 << 20;

// The WriteBatch::Handler that lists the keys a batch touches.
class KeysOf final : public rocksdb::WriteBatch::Handler {
 public:
  struct Key {
    uint32_t family;
    std::string key;
    std::string range_end;  // set for a range deletion
    bool range = false;
  };
  std::vector<Key> keys;

  rocksdb::Status PutCF(uint32_t family, const rocksdb::Slice& key,
                        const rocksdb::Slice&) override {
    return Add(family, key);
  }
  rocksdb::Status DeleteCF(uint32_t family,
                           const rocksdb::Slice& key) override {
    return Add(family, key);
  }
  rocksdb::Status SingleDeleteCF(uint32_t family,
                                 const rocksdb::Slice& key) override {
    return Add(family, key);
  }
  rocksdb::Status MergeCF(uint32_t family, const rocksdb::Slice& key,
                          const rocksdb::Slice&) override {
    return Add(family, key);
  }
  rocksdb::Status DeleteRangeCF(uint32_t family, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    keys.push_back({family, begin.ToString(), end.ToString(), true});
    return rocksdb::Status::OK();
  }

 private:
  rocksdb::Status Add(uint32_t family, const rocksdb::Slice& key) {
    keys.push_back({family, key.ToString(), "", false});
    return rocksdb::Status::OK();
  }
};

}  // namespace

void RocksStore::RememberUndo(const rocksdb::WriteBatch& failed, uint64_t tag) {
  KeysOf touched;
  bool read = failed.Iterate(&touched).ok();
  rocksdb::WriteBatch undo;
  for (const KeysOf::Key& k : touched.keys) {
    if (!read) break;
    rocksdb::ColumnFamilyHandle* family = nullptr;
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      if (h->GetID() == k.family) family = h;
    }
    if (family == nullptr) {
      read = false;
      break;
    }
    if (k.range) {
      // What the range holds now goes back.
      rocksdb::Slice upper(k.range_end);
      rocksdb::ReadOptions options;
      options.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, family));
      for (it->Seek(k.key); it->Valid(); it->Next()) {
        read = read && undo.Put(family, it->key(), it->value()).ok();
      }
      read = read && it->status().ok();
      continue;
    }
    std::string value;
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), family, k.key, &value);
    if (s.ok()) {
      read = undo.Put(family, k.key, value).ok();
    } else if (s.IsNotFound()) {
      read = undo.Delete(family, k.key).ok();
    } else {
      read = false;
    }
  }
  MutexLock lock(&undo_mu_);
  // A reopen, or a write that succeeded, after this failure: see
  // ForgetUndo.
  if (tag <= undo_forgotten_through_) return;
  if (read) {
    undo_.emplace_back(tag, undo.Data());
  } else {
    undo_lost_tag_ = std::max(undo_lost_tag_, tag);
  }
}

void RocksStore::ForgetUndo(uint64_t through) {
  MutexLock lock(&undo_mu_);
  undo_forgotten_through_ = std::max(undo_forgotten_through_, through);
  undo_.erase(
      std::remove_if(undo_.begin(), undo_.end(),
                     [through](const auto& u) { return u.first <= through; }),
      undo_.end());
  if (undo_lost_tag_ <= through) undo_lost_tag_ = 0;
}

// Opens the database read-only, so that reads go on while it cannot be
// opened to write, unless a failed write is still to be undone: the
// read-only open replays the log, and would show that write.
void RocksStore::OpenReadOnly() {
  if (db_ != nullptr) return;
  {
    MutexLock lock(&undo_mu_);
    if (!undo_.empty() || undo_lost_tag_ != 0) return;
  }
  // Another process holding the directory may be writing to it: reading a
  // copy that misses its deletions would expose them. Any other failure to
  // lock (a file system remounted read-only after an error cannot create
  // or open LOCK to write) leaves the directory to nobody's writes: open
  // it without the lock.
  StatusOr<std::unique_ptr<DataDirLock>> lock = LockDataDir(params_.path);
  if (!lock.ok() && lock.status().code() == StatusCode::kFailedPrecondition) {
    reopen_error_ = FailedPreconditionError(
        "another process took the directory while this store reopened it: " +
        lock.status().message());
    std::fprintf(stderr, "eraser: %s: not opened read-only: %s\n",
                 params_.path.c_str(), lock.status().ToString().c_str());
    return;
  }
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::OpenForReadOnly(
      params_.options, params_.path, params_.families, &handles_, &raw);
  if (s.ok()) {
    db_.reset(raw);
    read_only_ = true;
    if (lock.ok()) read_only_lock_ = std::move(lock).value();
  } else {
    handles_.clear();
    std::fprintf(stderr, "eraser: %s: opening it read-only failed too: %s\n",
                 params_.path.c_str(), s.ToString().c_str());
  }
}

StatusOr<std::unique_ptr<RocksStore>> RocksStore::OpenReadOnlyAfter(
    Status why, OpenParams params, std::shared_ptr<WriteGate> gate) {
  auto store = std::make_unique<RocksStore>(std::move(params), OpenDb(), gate);
  WriterMutexLock lock(&store->db_mu_);
  // Writes wait for a reopen, as after a write that failed.
  gate->Close(why, /*resumable=*/false);
  store->reopen_error_ = why;
  store->OpenReadOnly();
  if (store->db_ == nullptr) return why;
  StatusOr<uint64_t> last = LastSeq(
      store->db_.get(), store->handles_[kDeletions], store->params_.path);
  if (!last.ok()) return last.status();
  {
    MutexLock append(&store->append_mu_);
    store->last_seq_ = *last;
  }
  return store;
}

Status RocksStore::ReopenDeclined() {
  {
    MutexLock lock(&undo_mu_);
    if (undo_lost_tag_ != 0) {
      return InternalError(
          "a failed write could not be undone, so only a restart recovers "
          "the store");
    }
  }
  struct statvfs fs;
  if (::statvfs(params_.path.c_str(), &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < kReopenMinFreeBytes) {
    return ResourceExhaustedError(params_.path +
                                  " has under 1 MiB free (the disk is full)");
  }
  return OkStatus();
}

bool RocksStore::ReopenIfNeeded(bool for_write) {
  if (!gate_->needs_reopen()) return false;
  // The cheap reasons not to try come first, without taking the database
  // from its readers.
  const Status declined = ReopenDeclined();
  if (!declined.ok() && for_write) return true;  // the write is refused
  WriterMutexLock lock(&db_mu_);
  if (!gate_->needs_reopen()) return true;  // another operation reopened it
  // A database that failed, or is open read-only, still reads: only a
  // write, or a read with no database open, reopens.
  if (!for_write && db_ != nullptr) return true;
  if (!declined.ok()) {
    reopen_error_ = declined;
    OpenReadOnly();
    return true;
  }
  // A write or RocksDB failed (Writable): close the database and open it
  // again, as a restart would, without one. Opening recovers the
  // write-ahead log, so every synced write is there; it also clears what
  // RocksDB 7.8 cannot resume from (a failure to create a new log during a
  // memtable switch is fatal there) and a memtable a failed flush left
  // stuck.
  const Status why = gate_->last();
  uint64_t acknowledged = 0;
  {
    MutexLock append(&append_mu_);
    acknowledged = last_seq_;  // no append runs: db_mu_ is held alone
  }
  CloseDb(&db_, &handles_);
  read_only_ = false;
  read_only_lock_.reset();  // the open to write takes it
  gate_->Reopening();
  StatusOr<OpenDb> opened = Open(params_);
  Status ready = opened.status();
  if (ready.ok()) {
    // The writes that failed go back to what they found, newest first: the
    // log may have replayed them.
    MutexLock undo_lock(&undo_mu_);
    for (auto it = undo_.rbegin(); it != undo_.rend() && ready.ok(); ++it) {
      rocksdb::WriteBatch undo(it->second);
      rocksdb::WriteOptions synced;
      synced.sync = true;
      ready =
          FromRocks(opened->db->Write(synced, &undo), "undo a failed write");
    }
    if (ready.ok()) {
      StatusOr<uint64_t> last =
          LastSeq(opened->db.get(), opened->handles[kDeletions], params_.path);
      if (!last.ok()) {
        ready = last.status();
      } else if (*last != acknowledged) {
        // Fewer: an acknowledged deletion is gone; more: a failed one is
        // back. Neither may be served.
        ready = DataLossError(
            "the deletion log ends at " + std::to_string(*last) +
            " after reopening, the store had acknowledged up to " +
            std::to_string(acknowledged));
      }
    }
    if (ready.ok()) {
      undo_.clear();
      uint64_t closes = 0;
      gate_->closed(&closes);
      undo_forgotten_through_ = std::max(undo_forgotten_through_, closes);
    } else {
      CloseDb(&opened->db, &opened->handles);
    }
  }
  if (!ready.ok()) {
    gate_->Close(ready, /*resumable=*/false);
    reopen_error_ = ready;
    std::fprintf(stderr,
                 "eraser: %s: reopening the store after \"%s\" failed "
                 "(tried again at the next write): %s\n",
                 params_.path.c_str(), why.message().c_str(),
                 ready.ToString().c_str());
    // Opening writes (a new log and manifest), which a full disk refuses.
    OpenReadOnly();
    return true;
  }
  db_ = std::move(opened->db);
  handles_ = std::move(opened->handles);
  reopen_error_ = OkStatus();
  gate_->Reopened();
  std::fprintf(stderr, "eraser: %s: store reopened after \"%s\"\n",
               params_.path.c_str(), why.message().c_str());
  return true;
}

Status RocksStore::Failed(const rocksdb::Status& status,
                          std::string_view context, bool resumable) {
  Status converted = FromRocks(status, context);
  gate_->WriteFailed(converted, resumable);
  return converted;
}

Status RocksStore::Writable() {
  if (read_only_) return ReopenFailed();
  if (!gate_->closed()) return OkStatus();
  // Only compactions failed (a full disk, typically): RocksDB's Resume()
  // clears the error. After anything else Resume() is not used: in 7.8 its
  // recovery flush can wait for ever (a flush rolled back after an error
  // leaves its memtable marked as queued but never scheduled, so
  // DBImpl::WaitForFlushMemTables never returns with the background
  // threads idle; facebook/rocksdb#15030), holding the writing thread for
  // good (seen once in CI, in the fault sweep). Opening the database again
  // (closed without a flush, then opened, which replays the write-ahead
  // log) clears every error and every stuck memtable: DbLock reopens it,
  // then checks once more. No lock the gate or its listener takes is held
  // across Resume(): RocksDB may report a new background error
  // (GateListener) while it resumes. resume_mu_ only orders the writers
  // that resume.
  Status resumed;
  if (!gate_->needs_reopen()) {
    MutexLock lock(&resume_mu_);
    // RocksDB may raise another error while it resumes, or a write that
    // failed before may report its (old) error meanwhile: then the gate
    // stays closed. Resuming again tells the two apart; after a few tries
    // the write is refused and the next one resumes again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      uint64_t closes = 0;
      if (!gate_->closed(&closes)) return OkStatus();  // another resumed
      if (gate_->needs_reopen()) break;
      const rocksdb::Status s = db_->Resume();
      resumed = FromRocks(s, "resume");
      if (!resumed.ok()) {
        // Whatever Resume() could not clear, a reopen may.
        gate_->Close(resumed, /*resumable=*/false);
        break;
      }
      if (gate_->Opened(closes)) return OkStatus();
    }
  }
  // The cause is still there: say what it is (a full disk is
  // kResourceExhausted).
  const Status last = gate_->last();
  return Status(
      last.code() == StatusCode::kOk ? StatusCode::kUnavailable : last.code(),
      "the store takes no write until it recovers from: " + last.message());
}

Status RocksStore::Write(rocksdb::WriteBatch* batch, bool sync,
                         std::string_view context) {
  if (Status writable = Writable(); !writable.ok()) {
    gate_->Refused();
    return writable;
  }
  // A failed write-ahead-log write leaves RocksDB's log writer failed: its
  // next append returns the old error, or aborts an assertion-enabled
  // RocksDB (the reported abort). No write goes to this database after a
  // failure: the gate closes before Failed() returns, and the next write
  // reopens the database, which starts a new log (Writable).
  //
  // An error RocksDB raises in the background after Writable() and before
  // this write, or a concurrent write's failure, is safe to write into: a
  // hard one (a failed flush or log write) stops RocksDB's writes, which
  // then return it without touching the log (DBImpl::PreprocessWrite,
  // IsDBStopped, in 7.8); a soft one (a failed compaction) leaves the log
  // writer sound.
  rocksdb::WriteOptions options;
  options.sync = sync;
  uint64_t seen = 0;  // closes before this write
  gate_->closed(&seen);
  rocksdb::Status s = db_->Write(options, batch);
  if (!s.ok()) {
    Status failed = Failed(s, context);
    // Tagged with the close this failure made (or a later one).
    uint64_t tag = 0;
    gate_->closed(&tag);
    RememberUndo(*batch, tag);
    return failed;
  }
  // A write that failed before this one began was undone by the reopen
  // that let this one through; an undo kept past this write could revert
  // it. A failure after it began keeps its undo.
  ForgetUndo(seen);
  return OkStatus();
}

StoreCounters RocksStore::Counters() {
  StoreCounters c;
  if (statistics_ != nullptr) {
    c.wal_syncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  }
  gate_->Counts(&c.failed_writes, &c.resumes, &c.reopens);
  return c;
}

StatusOr<std::string> RocksStore::Get(Family f, std::string_view key,
                                      std::string_view what) {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(f), rocksdb::Slice(key), &value);
  if (s.IsNotFound()) return NotFoundError(std::string(what) + " not found");
  RETURN_IF_ERROR(FromRocks(s, std::string("read ") + std::string(what)));
  return value;
}

Status RocksStore::InitConfig(const StoreConfig& config) {
  if (config.empty()) return InvalidArgumentError("empty configuration");
  DbLock db(this, DbLock::kMaybeWrite);
  RETURN_IF_ERROR(db.status());
  MutexLock lock(&apply_mu_);
  StatusOr<StoreConfig> read = ReadConfigLocked();
  if (!read.ok()) {
    if (read.status().code() != StatusCode::kNotFound) return read.status();
    rocksdb::WriteBatch batch;
    for (const auto& [key, value] : config) {
      RETURN_IF_ERROR(FromRocks(
          batch.Put(cf(kMeta), kConfigPrefix + key, value), "store config"));
    }
    return Write(&batch, /*sync=*/true, "store config");
  }
  return CompareConfig(*read, config);
}

StatusOr<StoreConfig> RocksStore::ReadConfig() {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  return ReadConfigLocked();
}

StatusOr<StoreConfig> RocksStore::ReadConfigLocked() {
  StoreConfig config;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(kMeta)));
  const std::string prefix = kConfigPrefix;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    config.emplace(it->key().ToString().substr(prefix.size()),
                   it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "read config"));
  if (config.empty()) return NotFoundError("no configuration stored");
  return config;
}

Status RocksStore::PutMeta(const std::string& key, const std::string& value) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  return PutMetaLocked(key, value);
}

Status RocksStore::PutMetaLocked(const std::string& key,
                                 const std::string& value) {
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocks(batch.Put(cf(kMeta), key, value), "put meta"));
  return Write(&batch, /*sync=*/true, "put meta " + key);
}

StatusOr<std::string> RocksStore::GetMeta(const std::string& key) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  return Get(kMeta, key, "meta " + key);
}

Status RocksStore::PutAudit(uint64_t request_id, const std::string& record) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocks(batch.Put(cf(kAudit), U64Key(request_id), record),
                            "put audit"));
  return Write(&batch, /*sync=*/false,
               "put audit record " + std::to_string(request_id));
}

StatusOr<std::string> RocksStore::GetAudit(uint64_t request_id) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  return Get(kAudit, U64Key(request_id),
             "audit record " + std::to_string(request_id));
}

Status RocksStore::WriteStatus() {
  // The gate, not db_mu_, which a reopen holds for as long as it replays
  // the log. Only a compaction failed: the next write resumes. A full disk
  // that has space again: the next write reopens (so that /readyz stops
  // saying degraded without waiting for a deletion).
  if (!gate_->closed() || !gate_->needs_reopen()) return OkStatus();
  const Status last = gate_->last();
  if (last.code() != StatusCode::kResourceExhausted) return last;
  return ReopenDeclined();
}

StatusOr<std::unique_ptr<Store>> OpenRocksStore(const StoreOptions& options,
                                                rocksdb::Env* env) {
  if (options.path.empty()) {
    return InvalidArgumentError("storage: data directory path is empty");
  }
  struct stat st;
  if (::stat(options.path.c_str(), &st) != 0) {
    if (!options.create_if_missing) {
      return NotFoundError("data directory " + options.path +
                           " does not exist");
    }
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
    if (ec) {
      // The filesystem's, not the engine's: a full disk or quota, a failing
      // device, or else the path (a file where a directory should be, no
      // permission, a read-only mount).
      const std::string message =
          "cannot create " + options.path + ": " + ec.message();
      if (ec == std::errc::no_space_on_device || ec.value() == EDQUOT) {
        return ResourceExhaustedError(message);
      }
      if (ec == std::errc::io_error) return UnavailableError(message);
      return InvalidArgumentError(message);
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return InvalidArgumentError(options.path + " is not a directory");
  } else if (std::error_code ec;
             !options.create_if_missing &&
             !std::filesystem::exists(
                 std::filesystem::path(options.path) / "CURRENT", ec) &&
             !ec) {
    // Before RocksDB's open, which would leave its LOCK file behind.
    return NotFoundError("data directory " + options.path +
                         " holds no eraser store");
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  if (env != nullptr) db_options.env = env;
  // Counts WAL syncs, among others (Counters()).
  db_options.statistics = rocksdb::CreateDBStatistics();
  auto gate = std::make_shared<WriteGate>();
  db_options.listeners.push_back(std::make_shared<GateListener>(gate));
  db_options.max_bgerror_resume_count = 0;
  db_options.create_missing_column_families = true;
  // A write-ahead log that does not read back whole is refused at open
  // (kDataLoss), except for a last record cut short: every acknowledged
  // write is synced, so only a write in flight at a crash can be cut off
  // (a record of its full length that fails its checksum is refused too:
  // that is damage, whichever record it is). RocksDB's
  // default replays up to the first bad record and opens, dropping the
  // acknowledged deletions after it and handing their sequence numbers out
  // again. (A log removed whole is not detected: nothing else records
  // where the deletion log ends.)
  db_options.wal_recovery_mode =
      rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Closing does not flush the memtables (every write is in the
  // write-ahead log, which the next open replays): a close after an error
  // must not wait for a flush that may never run (Writable).
  db_options.avoid_flush_during_shutdown = true;
  // No preallocation: on a nearly full disk (a tmpfs counts reserved
  // blocks as used) each reopen's new manifest (4 MiB by default) and log
  // would reserve space the store then lacks; fallocate's speed-up does
  // not matter at this write rate.
  db_options.allow_fallocate = false;
  db_options.max_background_jobs = 2;
  db_options.info_log = std::make_shared<StderrLogger>();
  // No compression anywhere: the samples are scanned on every retraining,
  // checkpoints are float blobs that barely compress, and uncompressed files
  // let a test prove that erased bytes left the disk.
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.compression = rocksdb::kNoCompression;
  cf_options.bottommost_compression = rocksdb::kNoCompression;

  RocksStore::OpenParams params;
  params.path = options.path;
  params.options = db_options;
  for (const char* name : kFamilyNames) {
    params.families.emplace_back(name, cf_options);
  }
  StatusOr<RocksStore::OpenDb> opened = RocksStore::Open(params);
  // A reopen in place opens what is there: a directory emptied or
  // remounted meanwhile is an error, not a new store.
  params.options.create_if_missing = false;
  params.options.create_missing_column_families = false;
  std::unique_ptr<RocksStore> store;
  std::error_code ec;
  if (opened.ok()) {
    store = std::make_unique<RocksStore>(std::move(params),
                                         std::move(opened).value(), gate);
  } else if (opened.status().code() == StatusCode::kResourceExhausted &&
             std::filesystem::exists(
                 std::filesystem::path(options.path) / "CURRENT", ec)) {
    // Opening to write writes (a new log and manifest), which a full disk
    // refuses: a store that exists opens read-only instead, so that a
    // server restarted on a full disk answers while it refuses deletions,
    // as one that was running does, and its first write after space
    // returns reopens it to write.
    ASSIGN_OR_RETURN(store, RocksStore::OpenReadOnlyAfter(
                                opened.status(), std::move(params), gate));
    std::fprintf(stderr,
                 "eraser: %s: opened read-only: writes (deletions, "
                 "retrainings) are refused until the disk has space: %s\n",
                 options.path.c_str(), opened.status().ToString().c_str());
  } else {
    return opened.status();
  }
  StatusOr<std::string> format = store->GetMeta(kFormatKey);
  if (format.ok() && *format != kFormatVersion) {
    return FailedPreconditionError(options.path + " uses storage format " +
                                   *format + "; this build reads format " +
                                   kFormatVersion);
  }
  if (!format.ok()) {
    if (format.status().code() != StatusCode::kNotFound) {
      return format.status();
    }
    RETURN_IF_ERROR(store->PutMeta(kFormatKey, kFormatVersion));
  }
  // An apply that committed before a crash (or a compaction that failed)
  // may still owe its erasure: finish it before anyone reads. If the disk
  // is full it stays owed (ErasureOwed) and the engine retries it.
  if (Status erased = store->FinishErasure(); !erased.ok()) {
    if (erased.code() == StatusCode::kDataLoss) return erased;
    std::fprintf(stderr, "eraser: %s: owed erasure not finished at open: %s\n",
                 options.path.c_str(), erased.ToString().c_str());
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace internal

namespace {

class RocksDirLock final : public DataDirLock {
 public:
  explicit RocksDirLock(rocksdb::FileLock* lock) : lock_(lock) {}
  ~RocksDirLock() override {
    rocksdb::Env::Default()->UnlockFile(lock_).PermitUncheckedError();
  }

 private:
  rocksdb::FileLock* const lock_;
};

}  // namespace

StatusOr<std::unique_ptr<DataDirLock>> LockDataDir(const std::string& dir) {
  // RocksDB's own LockFile: the same fcntl lock an open store holds, and
  // its list of the files this process has locked (a process never
  // conflicts with its own fcntl locks).
  rocksdb::FileLock* lock = nullptr;
  RETURN_IF_ERROR(internal::FromRocks(
      rocksdb::Env::Default()->LockFile(dir + "/LOCK", &lock), "lock " + dir));
  return std::unique_ptr<DataDirLock>(new RocksDirLock(lock));
}

}  // namespace eraser::storage
