// Deletions the storage tests append: one sample each, in shard 0.
#ifndef ERASER_TESTS_STORAGE_DELETIONS_H_
#define ERASER_TESTS_STORAGE_DELETIONS_H_

#include <cstdint>
#include <vector>

#include "eraser/storage/store.h"

namespace eraser::storage {

// Appends the deletion of sample `id` (slice 0 of shard 0, owner `id`).
inline StatusOr<DeletionSeq> AppendSample(Store& store, uint64_t id) {
  return store.AppendDeletion(
      DeletionTarget::Sample(SampleId(id)),
      {{SampleId(id), ShardId(0), 0, OwnerId(id), false}}, FromUnixMicros(1));
}

// Appends deletions of samples first_id, first_id + 1, ... until one is
// refused (a full disk: the last pages of the log may still have room),
// adding each acknowledged sequence number to `acked`. Returns the refusal,
// or OK if 100,000 were acknowledged.
inline Status AppendUntilRefused(Store& store, uint64_t first_id,
                                 std::vector<uint64_t>* acked) {
  for (uint64_t id = first_id; id < first_id + 100'000; ++id) {
    StatusOr<DeletionSeq> seq = AppendSample(store, id);
    if (!seq.ok()) return seq.status();
    acked->push_back(seq->value());
  }
  return OkStatus();
}

}  // namespace eraser::storage

#endif  // ERASER_TESTS_STORAGE_DELETIONS_H_
