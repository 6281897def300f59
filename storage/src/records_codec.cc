// Versioned value encodings of records (records_codec.h).
#include "records_codec.h"

#include "coding.h"

namespace eraser::storage::internal {
namespace {

constexpr uint8_t kLocationVersion = 1;
// 1: without excluded_from (still read); 2 added excluded_from; 3 whether
// each sample was already erased when the deletion arrived.
constexpr uint8_t kDeletionVersion = 3;
constexpr uint8_t kCheckpointVersion = 1;

}  // namespace

std::string EncodeLocation(const SampleLocation& location) {
  std::string v;
  PutU8(&v, kLocationVersion);
  PutU32(&v, location.shard.value());
  PutU32(&v, location.slice);
  PutU64(&v, location.owner.value());
  PutU8(&v, location.erased ? 1 : 0);
  return v;
}

StatusOr<SampleLocation> DecodeLocation(SampleId id, std::string_view value) {
  Decoder d(value);
  SampleLocation location;
  location.id = id;
  const uint8_t version = d.U8();
  location.shard = ShardId(d.U32());
  location.slice = d.U32();
  location.owner = OwnerId(d.U64());
  const uint8_t erased = d.U8();
  if (!d.Finish() || version != kLocationVersion || erased > 1) {
    return DataLossError("corrupt index entry for sample " +
                         std::to_string(id.value()));
  }
  location.erased = erased == 1;
  return location;
}

std::string EncodeDeletion(const DeletionRecord& record) {
  std::string v;
  PutU8(&v, kDeletionVersion);
  PutU8(&v, static_cast<uint8_t>(record.state));
  PutU8(&v, static_cast<uint8_t>(record.target.kind));
  PutU64(&v, record.target.id);
  PutU64(&v, static_cast<uint64_t>(ToUnixMicros(record.arrival)));
  PutU64(&v, static_cast<uint64_t>(ToUnixMicros(record.applied)));
  PutU32(&v, static_cast<uint32_t>(record.samples.size()));
  for (const SampleLocation& s : record.samples) {
    PutU64(&v, s.id.value());
    PutU32(&v, s.shard.value());
    PutU32(&v, s.slice);
    PutU64(&v, s.owner.value());
    PutU8(&v, s.erased ? 1 : 0);
  }
  PutU32(&v, static_cast<uint32_t>(record.excluded_from.size()));
  for (const auto& [shard, version] : record.excluded_from) {
    PutU32(&v, shard.value());
    PutU64(&v, version);
  }
  return v;
}

StatusOr<DeletionRecord> DecodeDeletion(DeletionSeq seq,
                                        std::string_view value) {
  Decoder d(value);
  DeletionRecord r;
  r.seq = seq;
  const uint8_t version = d.U8();
  const uint8_t state = d.U8();
  const uint8_t kind = d.U8();
  r.target.id = d.U64();
  r.arrival = FromUnixMicros(static_cast<int64_t>(d.U64()));
  r.applied = FromUnixMicros(static_cast<int64_t>(d.U64()));
  const uint32_t n = d.U32();
  const bool header_ok = d.ok() && version >= 1 && version <= 3 &&
                         (state == 1 || state == 2) &&
                         (kind == 1 || kind == 2) &&
                         n <= value.size() / 24;  // 24 bytes per sample
  if (header_ok) {
    r.state = static_cast<DeletionState>(state);
    r.target.kind = static_cast<DeletionTarget::Kind>(kind);
    r.samples.resize(n);
    for (SampleLocation& s : r.samples) {
      s.id = SampleId(d.U64());
      s.shard = ShardId(d.U32());
      s.slice = d.U32();
      s.owner = OwnerId(d.U64());
      if (version >= 3) s.erased = d.U8() == 1;
    }
    if (version >= 2) {
      const uint32_t m = d.U32();
      if (m > value.size() / 12)
        return DataLossError("corrupt deletion record");
      r.excluded_from.resize(m);
      for (auto& [shard, v] : r.excluded_from) {
        shard = ShardId(d.U32());
        v = d.U64();
      }
    }
  }
  if (!header_ok || !d.Finish()) {
    return DataLossError("corrupt deletion record " +
                         std::to_string(seq.value()));
  }
  return r;
}

std::string CheckpointName(ShardId shard, uint32_t slice) {
  return "checkpoint of shard " + std::to_string(shard.value()) + " slice " +
         std::to_string(slice);
}

std::string EncodeCheckpoint(const Checkpoint& c) {
  std::string v;
  v.reserve(17 + c.blob.size());
  PutU8(&v, kCheckpointVersion);
  PutU64(&v, c.version);
  PutU64(&v, c.data_fingerprint);
  v.append(c.blob);
  return v;
}

StatusOr<Checkpoint> DecodeCheckpoint(ShardId shard, uint32_t slice,
                                      std::string_view value) {
  Decoder d(value);
  Checkpoint c;
  c.shard = shard;
  c.slice = slice;
  const uint8_t version = d.U8();
  c.version = d.U64();
  c.data_fingerprint = d.U64();
  c.blob = std::string(d.Rest());
  if (!d.Finish() || version != kCheckpointVersion) {
    return DataLossError("corrupt " + CheckpointName(shard, slice));
  }
  return c;
}

}  // namespace eraser::storage::internal
