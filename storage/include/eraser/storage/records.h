// Plain records exchanged with the storage module. No RocksDB types here.
#ifndef ERASER_STORAGE_RECORDS_H_
#define ERASER_STORAGE_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/common/ids.h"
#include "eraser/common/statusor.h"

namespace eraser::storage {

// A training sample as stored: where the partition put it, who owns it, its
// label and its raw feature bytes. The features pointer is borrowed: valid
// for the duration of the call that receives or produces the view.
struct SampleView {
  SampleId id;
  ShardId shard;
  uint32_t slice = 0;
  OwnerId owner;
  uint32_t label = 0;
  const uint8_t* features = nullptr;
  std::size_t feature_size = 0;
};

// Where a sample sits in the partition, and whether its data has been erased
// by an applied deletion. Erased samples keep this entry (without features or
// label) so that a repeated deletion can be recognised as already done.
struct SampleLocation {
  SampleId id;
  ShardId shard;
  uint32_t slice = 0;
  OwnerId owner;
  bool erased = false;

  friend bool operator==(const SampleLocation& a, const SampleLocation& b) {
    return a.id == b.id && a.shard == b.shard && a.slice == b.slice &&
           a.owner == b.owner && a.erased == b.erased;
  }
};

// What a deletion request names.
struct DeletionTarget {
  enum class Kind : uint8_t { kSample = 1, kOwner = 2 };
  Kind kind = Kind::kSample;
  uint64_t id = 0;

  static DeletionTarget Sample(SampleId s) {
    return {Kind::kSample, s.value()};
  }
  static DeletionTarget Owner(OwnerId o) { return {Kind::kOwner, o.value()}; }
  // "sample:42" or "owner:7".
  std::string ToString() const;
  // Parses the ToString() form; kInvalidArgument otherwise.
  static StatusOr<DeletionTarget> Parse(const std::string& text);

  friend bool operator==(const DeletionTarget& a, const DeletionTarget& b) {
    return a.kind == b.kind && a.id == b.id;
  }
};

enum class DeletionState : uint8_t { kPending = 1, kApplied = 2 };

// One entry of the deletion log.
struct DeletionRecord {
  DeletionSeq seq;
  DeletionTarget target;
  // The samples the target resolved to when the request was accepted, each
  // `erased` if an earlier deletion had already erased it.
  std::vector<SampleLocation> samples;
  TimePoint arrival;
  DeletionState state = DeletionState::kPending;
  TimePoint applied;  // meaningful only when state == kApplied
  // For each shard retrained without it so far: the first model version of
  // that shard that excludes it (what an independent exposure check needs,
  // kept with the record so it survives restarts and costs no memory).
  std::vector<std::pair<ShardId, uint64_t>> excluded_from;

  // The distinct shards of `samples`, ascending.
  std::vector<ShardId> Shards() const;
};

// A shard's model state after training slices [0, slice].
struct Checkpoint {
  ShardId shard;
  uint32_t slice = 0;
  // Increases every time the shard is retrained; lets a server tell which
  // model answered.
  uint64_t version = 0;
  // Fingerprint of the samples the checkpoint was trained on.
  uint64_t data_fingerprint = 0;
  std::string blob;
};

// Everything applying unlearning changes, written as one atomic batch.
struct ApplyBatch {
  // New checkpoints; each replaces the stored one for its (shard, slice).
  std::vector<Checkpoint> checkpoints;
  // Samples whose data is erased (features and label deleted, index entry
  // kept and marked erased).
  std::vector<SampleId> erase;
  // Deletion requests marked applied at `applied_at`.
  std::vector<DeletionSeq> applied;
  TimePoint applied_at;
  // Deletion requests whose samples in `shard` the checkpoints of model
  // `version` leave out (recorded in their excluded_from).
  struct Exclusion {
    DeletionSeq seq;
    ShardId shard;
    uint64_t version = 0;
  };
  std::vector<Exclusion> excluded;
};

// The configuration a data directory was built with, as key/value strings
// (shards, slices, model, seed, dataset fingerprint, ...).
using StoreConfig = std::map<std::string, std::string>;

}  // namespace eraser::storage

#endif  // ERASER_STORAGE_RECORDS_H_
