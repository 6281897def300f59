#include "eraser/workloads/data_dir.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>

#include "eraser/storage/store.h"

namespace eraser::workloads {

StatusOr<DataDirResult> EnsureTrained(const std::string& dir,
                                      unlearning::SisaOptions options,
                                      const datasets::Dataset& data) {
  options = unlearning::ForDataset(options, data);
  RETURN_IF_ERROR(options.Validate());
  RETURN_IF_ERROR(unlearning::CheckModelSpec(options.model));
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
  if (!sisa.ok()) return refuse(sisa.status().WithContext(dir));
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

StatusOr<unlearning::SisaOptions> TrainedOptions(const std::string& dir) {
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({dir, /*create_if_missing=*/false});
  if (!store.ok()) return NotFoundError(dir + " holds no trained ensemble");
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
      unlearning::Sisa::Open(store->get(), 1);
  if (!sisa.ok()) return NotFoundError(dir + " holds no trained ensemble");
  ASSIGN_OR_RETURN(bool trained, (*sisa)->IsTrained());
  if (!trained) return NotFoundError(dir + " holds no trained ensemble");
  return (*sisa)->options();
}

StatusOr<unlearning::DatasetInfo> ReadDatasetInfo(const std::string& dir) {
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({dir, /*create_if_missing=*/false});
  if (!store.ok()) return NotFoundError(dir + " holds no trained ensemble");
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
  const bool is_db = fs::exists(fs::path(dir) / "CURRENT", ec) &&
                     fs::exists(fs::path(dir) / "IDENTITY", ec);
  if (!is_db && !fs::is_empty(dir, ec)) {
    return FailedPreconditionError(
        dir + " is not an eraser data directory; refusing to delete it");
  }
  fs::remove_all(dir, ec);
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
  for (char c : name)
    database += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
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
