// The rules of the Store contract that do not depend on the backend, written
// once and used by both: configuration comparison, ingest validation and the
// state changes of deletion records.
#ifndef ERASER_STORAGE_STORE_RULES_H_
#define ERASER_STORAGE_STORE_RULES_H_

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "eraser/storage/records.h"

namespace eraser::storage::internal {

// OK when `requested` equals `stored`; otherwise kFailedPrecondition naming
// every key that differs.
Status CompareConfig(const StoreConfig& stored, const StoreConfig& requested);

// Validates an ingest before anything is written, with `stored` giving each
// sample's stored location (nullopt when never ingested). Returns, per
// sample, whether to skip it: a sample already erased is skipped so that a
// re-ingest cannot bring deleted data back. Errors: a sample without
// feature data or placed twice differently in the batch (kInvalidArgument),
// or stored elsewhere (kFailedPrecondition: the partition cannot change).
using StoredLocation =
    std::function<StatusOr<std::optional<SampleLocation>>(SampleId)>;
StatusOr<std::vector<bool>> PlanIngest(const std::vector<SampleView>& samples,
                                       const StoredLocation& stored);

// The records `applied` and `excluded` name, each read once through `read`
// and changed: exclusions recorded (the first version per shard kept),
// pending ones marked applied at `applied_at` (applied ones keep their first
// time), and so is any whose every live sample's shard it now has left
// (its excluded_from). kNotFound, from `read`, for an unknown sequence
// number.
using ReadDeletion = std::function<StatusOr<DeletionRecord>(DeletionSeq)>;
StatusOr<std::map<DeletionSeq, DeletionRecord>> UpdateDeletions(
    const std::vector<DeletionSeq>& applied, TimePoint applied_at,
    const std::vector<ApplyBatch::Exclusion>& excluded,
    const ReadDeletion& read);

// OK when `checkpoint` is newer than the stored one for its (shard, slice)
// (or none is stored, `stored` answering kNotFound); kAlreadyExists when
// another engine committed a model of the same or a later version first.
using StoredCheckpoint =
    std::function<StatusOr<Checkpoint>(ShardId shard, uint32_t slice)>;
Status CheckNewer(const Checkpoint& checkpoint, const StoredCheckpoint& stored);

// A pending request, before its sequence number is issued.
DeletionRecord NewDeletion(const DeletionTarget& target,
                           const std::vector<SampleLocation>& samples,
                           TimePoint arrival);

std::string SampleName(SampleId id);

}  // namespace eraser::storage::internal

#endif  // ERASER_STORAGE_STORE_RULES_H_
