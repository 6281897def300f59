// Building or reusing a trained data directory, shared by `eraser train` and
// `eraser replay`.
#ifndef ERASER_WORKLOADS_DATA_DIR_H_
#define ERASER_WORKLOADS_DATA_DIR_H_

#include <string>

#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"
#include "eraser/unlearning/sisa.h"

namespace eraser::workloads {

struct DataDirResult {
  // True if the directory already held this trained ensemble.
  bool reused = false;
  // The training report when it trained now.
  unlearning::TrainReport report;
};

// Makes `dir` hold the ensemble `options` describes, trained on
// data.train: reuses it when it already does, trains what is missing
// otherwise. `options` is completed for `data` (unlearning::ForDataset).
// The model is checked first (unlearning::CheckModelSpec), so a model that
// does not fit the data leaves `dir` untouched. kFailedPrecondition when
// the directory was built with other options (the message names the
// differing keys).
StatusOr<DataDirResult> EnsureTrained(const std::string& dir,
                                      unlearning::SisaOptions options,
                                      const datasets::Dataset& data);

// The options of the trained ensemble in `dir`; kNotFound when `dir` holds
// no trained ensemble.
StatusOr<unlearning::SisaOptions> TrainedOptions(const std::string& dir);

// The dataset record of the trained ensemble in `dir` (its test split,
// class names, encoding, owners); kNotFound when `dir` holds none.
StatusOr<unlearning::DatasetInfo> ReadDatasetInfo(const std::string& dir);

// Deletes the files of `dir` (it stays, empty; a symlink to a directory
// stays a symlink) if it is an eraser data directory (RocksDB's files only,
// CURRENT and IDENTITY among them) that no store has open; refuses
// (kFailedPrecondition) to delete anything else, or a directory a server
// is using.
Status RemoveDataDir(const std::string& dir);

// Copies a closed data directory (recursively) to `to`, which must not
// exist.
Status CopyDataDir(const std::string& from, const std::string& to);

// A copy of a closed store to work on, removed with the object: for a data
// directory, a copy at `dir`/`name`; for a PostgreSQL database, a new
// database `<database>_<pid>_<name>` on the same server, made with the
// original as its template (nobody may be connected to it meanwhile).
class ScratchStore {
 public:
  static StatusOr<ScratchStore> Copy(const std::string& from,
                                     const std::string& dir,
                                     const std::string& name);
  ScratchStore(ScratchStore&& other) noexcept;
  ScratchStore& operator=(ScratchStore&&) = delete;
  ~ScratchStore();
  // A directory path or a postgresql:// URL, as Store::Open takes.
  const std::string& location() const { return location_; }

 private:
  explicit ScratchStore(std::string location)
      : location_(std::move(location)) {}
  std::string location_;
};

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_DATA_DIR_H_
