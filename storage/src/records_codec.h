// Value encodings of records, shared by both backends: a location, a
// deletion record and a checkpoint as versioned byte strings.
#ifndef ERASER_STORAGE_RECORDS_CODEC_H_
#define ERASER_STORAGE_RECORDS_CODEC_H_

#include <string>
#include <string_view>

#include "eraser/storage/records.h"

namespace eraser::storage::internal {

std::string EncodeLocation(const SampleLocation& location);
StatusOr<SampleLocation> DecodeLocation(SampleId id, std::string_view value);
std::string EncodeDeletion(const DeletionRecord& record);
StatusOr<DeletionRecord> DecodeDeletion(DeletionSeq seq,
                                        std::string_view value);
std::string CheckpointName(ShardId shard, uint32_t slice);
std::string EncodeCheckpoint(const Checkpoint& checkpoint);
StatusOr<Checkpoint> DecodeCheckpoint(ShardId shard, uint32_t slice,
                                      std::string_view value);

}  // namespace eraser::storage::internal

#endif  // ERASER_STORAGE_RECORDS_CODEC_H_
