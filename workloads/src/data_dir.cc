#include "eraser/workloads/data_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <vector>

#include "eraser/common/ascii.h"
#include "eraser/storage/data_dir_lock.h"
#include "eraser/storage/store.h"

namespace eraser::workloads {

namespace {

// Whether `name` is a file RocksDB writes in its directory.
bool IsRocksFile(const std::string& name) {
  auto numbered = [&](std::string_view prefix, std::string_view suffix) {
    if (name.size() <= prefix.size() + suffix.size() ||
        name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return false;
    }
    const std::string digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    return std::all_of(digits.begin(), digits.end(), IsAsciiDigit);
  };
  return name == "CURRENT" || name == "IDENTITY" || name == "LOCK" ||
         name == "LOG" || name.rfind("LOG.old.", 0) == 0 ||
         numbered("MANIFEST-", "") || numbered("OPTIONS-", "") ||
         numbered("OPTIONS-", ".dbtmp") || numbered("", ".sst") ||
         numbered("", ".log") || numbered("", ".blob") ||
         numbered("", ".dbtmp");
}

// A volume's own entries (ext4's lost+found, hidden snapshot directories):
// no one's data, neither a reason to refuse a directory nor to delete.
bool VolumeEntry(const std::string& name) {
  return name == "lost+found" || (!name.empty() && name.front() == '.');
}

// A directory that exists and holds files of someone else's and no
// store: training there would mix RocksDB's files with them (a mistyped
// --data-dir, say "."), and --rebuild would then refuse to delete it.
Status CheckNotForeign(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (storage::IsPostgresLocation(dir) || !fs::is_directory(dir, ec) ||
      fs::exists(fs::path(dir) / "CURRENT", ec)) {
    return OkStatus();
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (VolumeEntry(name)) continue;
    if (!entry.is_regular_file() || !IsRocksFile(name)) {
      // The path is not what the user meant (kInvalidArgument): neither
      // a store to reuse nor one --rebuild would start over.
      return InvalidArgumentError(
          dir + " holds " + name +
          " and no eraser data directory: give a new or empty directory");
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<DataDirResult> EnsureTrained(const std::string& dir,
                                      unlearning::SisaOptions options,
                                      const datasets::Dataset& data) {
  options = unlearning::ForDataset(options, data);
  RETURN_IF_ERROR(options.Validate());
  RETURN_IF_ERROR(unlearning::CheckModelSpec(options.model));
  RETURN_IF_ERROR(CheckNotForeign(dir));
  // A directory this call creates is removed again if the data cannot be
  // ingested (a partition the samples cannot fill, say): a refused dataset
  // leaves nothing that looks like a data directory.
  std::error_code ec;
  const bool created = !storage::IsPostgresLocation(dir) &&
                       !std::filesystem::exists(dir, ec) && !ec;
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                   storage::Store::Open({dir}));
  auto refuse = [&](Status status) {
    if (created) {
      store.reset();
      std::filesystem::remove_all(dir, ec);
    }
    return status;
  };
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
      unlearning::Sisa::Create(store.get(), options);
  if (!sisa.ok())
    return refuse(sisa.status().WithContext(storage::PrintableLocation(dir)));
  DataDirResult result;
  ASSIGN_OR_RETURN(result.reused, (*sisa)->IsTrained());
  if (result.reused) return result;
  if (Status s = (*sisa)->Ingest(data).status(); !s.ok()) {
    sisa->reset();
    return refuse(std::move(s));
  }
  ASSIGN_OR_RETURN(result.report, (*sisa)->TrainAll());
  return result;
}

namespace {

// Opens the existing store at `dir`: a missing one holds no ensemble; any
// other error (another process has it open, a damaged log) is its own.
StatusOr<std::unique_ptr<storage::Store>> OpenExisting(const std::string& dir) {
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({dir, /*create_if_missing=*/false});
  if (!store.ok() && store.status().code() == StatusCode::kNotFound) {
    return NotFoundError(storage::PrintableLocation(dir) +
                         " holds no trained ensemble");
  }
  return store;
}

}  // namespace

StatusOr<unlearning::SisaOptions> TrainedOptions(const std::string& dir) {
  StatusOr<std::unique_ptr<storage::Store>> store = OpenExisting(dir);
  if (!store.ok()) return store.status();
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
      unlearning::Sisa::Open(store->get(), 1);
  if (!sisa.ok())
    return NotFoundError(storage::PrintableLocation(dir) +
                         " holds no trained ensemble");
  ASSIGN_OR_RETURN(bool trained, (*sisa)->IsTrained());
  if (!trained)
    return NotFoundError(storage::PrintableLocation(dir) +
                         " holds no trained ensemble");
  return (*sisa)->options();
}

StatusOr<unlearning::DatasetInfo> ReadDatasetInfo(const std::string& dir) {
  StatusOr<std::unique_ptr<storage::Store>> store = OpenExisting(dir);
  if (!store.ok()) return store.status();
  ASSIGN_OR_RETURN(std::unique_ptr<unlearning::Sisa> sisa,
                   unlearning::Sisa::Open(store->get(), 1));
  return sisa->ReadDatasetInfo();
}

Status RemoveDataDir(const std::string& dir) {
  if (storage::IsPostgresLocation(dir)) {
    return FailedPreconditionError(
        "a PostgreSQL store is not removed by eraser: drop and create the "
        "database to start it over");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return OkStatus();
  // Only a directory of RocksDB's own files is removed: a file of anyone
  // else's in it means the path is not what the user thinks.
  bool any = false;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (VolumeEntry(name)) continue;
    if (!entry.is_regular_file() || !IsRocksFile(name)) {
      return FailedPreconditionError(
          dir + " is not an eraser data directory (it holds " + name +
          ", which eraser did not write); refusing to delete it");
    }
    any = true;
  }
  if (ec)
    return InvalidArgumentError("cannot read " + dir + ": " + ec.message());
  if (any && !(fs::exists(fs::path(dir) / "CURRENT", ec) &&
               fs::exists(fs::path(dir) / "IDENTITY", ec))) {
    return FailedPreconditionError(
        dir + " is not an eraser data directory; refusing to delete it");
  }
  // Held while removing: a server (or any store) that has the directory
  // open holds RocksDB's lock on its LOCK file, and deleting its files
  // under it would lose every deletion it acknowledges afterwards.
  std::unique_ptr<storage::DataDirLock> lock;
  if (any) {
    StatusOr<std::unique_ptr<storage::DataDirLock>> locked =
        storage::LockDataDir(dir);
    if (!locked.ok()) {
      if (locked.status().code() != StatusCode::kFailedPrecondition) {
        return locked.status();
      }
      return FailedPreconditionError(
          dir +
          " is open in another store (a running eraser serve?): stop "
          "it before --rebuild");
    }
    lock = std::move(locked).value();
  }
  // Its files, not the directory: through a symlink, removing `dir` would
  // remove the link and leave the store it names as it was.
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!VolumeEntry(entry.path().filename().string())) {
      files.push_back(entry.path());
    }
  }
  for (const fs::path& file : files) {
    if (ec) break;
    fs::remove(file, ec);
  }
  lock.reset();
  if (ec) return InternalError("cannot remove " + dir + ": " + ec.message());
  return OkStatus();
}

Status CopyDataDir(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
  if (ec) {
    return InternalError("cannot copy " + from + " to " + to + ": " +
                         ec.message());
  }
  return OkStatus();
}

StatusOr<ScratchStore> ScratchStore::Copy(const std::string& from,
                                          const std::string& dir,
                                          const std::string& name) {
  if (!storage::IsPostgresLocation(from)) {
    const std::string to = dir + "/" + name;
    RETURN_IF_ERROR(CopyDataDir(from, to));
    return ScratchStore(to);
  }
  std::string database = "eraser_" + std::to_string(::getpid()) + "_";
  for (char c : name) database += IsAsciiAlnum(c) ? c : '_';
  ASSIGN_OR_RETURN(std::string to, storage::PostgresSiblingUrl(from, database));
  RETURN_IF_ERROR(storage::CopyPostgresDatabase(from, to));
  return ScratchStore(to);
}

ScratchStore::ScratchStore(ScratchStore&& other) noexcept
    : location_(std::move(other.location_)) {
  other.location_.clear();
}

ScratchStore::~ScratchStore() {
  if (location_.empty()) return;
  if (storage::IsPostgresLocation(location_)) {
    if (Status s = storage::DropPostgresDatabase(location_); !s.ok()) {
      std::fprintf(stderr, "eraser: scratch store left behind: %s\n",
                   s.ToString().c_str());
    }
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(location_, ec);
}

}  // namespace eraser::workloads
