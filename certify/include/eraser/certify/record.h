// What an answer was, and why it could be served: the decision and the
// certificate's evidence, in a compact binary form that the engine can store
// in the audit column family.
#ifndef ERASER_CERTIFY_RECORD_H_
#define ERASER_CERTIFY_RECORD_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/common/ids.h"
#include "eraser/common/statusor.h"

namespace eraser::certify {

// How an answer came to be served.
enum class Decision : uint8_t {
  kClean = 1,        // nothing was pending for any shard: a = 0
  kCertified = 2,    // deletions were pending, the certificate held
  kWaited = 3,       // certified after waiting for retraining (rule `wait`)
  kPartial = 4,      // from the unaffected shards (rules `partial`, `soft`)
  kRejected = 5,     // no answer: "unavailable, retry" (rule `reject`)
  kUncertified = 6,  // served without a certificate (`inference-first`)
  kPrefix = 7,       // the unaffected shards' tie broken by affected
                     // shards' clean prefixes (rule `prefix`)
};
inline constexpr int kNumDecisions = 7;

// "clean", "certified", "waited", "partial", "rejected", "uncertified",
// "prefix".
const char* DecisionName(Decision decision);

struct CertificateRecord {
  uint64_t request_id = 0;
  TimePoint computed;  // when the served answer was computed
  Decision decision = Decision::kClean;
  int32_t answer = -1;  // the served label; -1 when rejected
  int32_t margin = 0;   // certificate margin in votes
  // Deletions pending when the answer was computed, ascending.
  std::vector<DeletionSeq> pending;
  // Shards whose served model contained a pending deletion, ascending.
  std::vector<ShardId> affected;
  // The version of every shard's model that voted, by shard.
  std::vector<uint64_t> model_versions;
  // For `prefix` answers (empty otherwise), by shard: the stage of the
  // clean prefix that voted (its checkpoint's version is in
  // model_versions), or -1 for the served model or no vote.
  std::vector<int32_t> prefix_stages;

  // Varint, delta-encoded: a few bytes per pending deletion and shard.
  std::string Encode() const;
  // kDataLoss if `bytes` is not an encoded record.
  static StatusOr<CertificateRecord> Decode(std::string_view bytes);

  friend bool operator==(const CertificateRecord& a,
                         const CertificateRecord& b) {
    return a.request_id == b.request_id && a.computed == b.computed &&
           a.decision == b.decision && a.answer == b.answer &&
           a.margin == b.margin && a.pending == b.pending &&
           a.affected == b.affected && a.model_versions == b.model_versions &&
           a.prefix_stages == b.prefix_stages;
  }
};

}  // namespace eraser::certify

#endif  // ERASER_CERTIFY_RECORD_H_
