#include "eraser/certify/record.h"

#include <gtest/gtest.h>

namespace eraser::certify {
namespace {

CertificateRecord Sample() {
  CertificateRecord r;
  r.request_id = 123456789;
  r.computed = FromUnixMicros(1'767'225'600'123'456);
  r.decision = Decision::kCertified;
  r.answer = 7;
  r.margin = -2;
  for (uint64_t s = 1000; s < 1100; ++s) r.pending.emplace_back(s);
  r.affected = {ShardId(1), ShardId(3), ShardId(6)};
  r.model_versions = {1, 4, 1, 2, 1, 1, 9, 1};
  return r;
}

TEST(CertificateRecord, RoundTrips) {
  const CertificateRecord r = Sample();
  const std::string bytes = r.Encode();
  StatusOr<CertificateRecord> back = CertificateRecord::Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  // Compact: about one byte per pending deletion when they are close.
  EXPECT_LT(bytes.size(), 140u);
  for (Decision d : {Decision::kClean, Decision::kWaited, Decision::kPartial,
                     Decision::kRejected, Decision::kUncertified}) {
    CertificateRecord other = r;
    other.decision = d;
    other.answer = d == Decision::kRejected ? -1 : 3;
    EXPECT_EQ(*CertificateRecord::Decode(other.Encode()), other);
  }
  // A prefix answer keeps which stage of which shard voted.
  CertificateRecord prefix = r;
  prefix.decision = Decision::kPrefix;
  prefix.prefix_stages = {-1, 2, -1, 0, -1, -1, 1, -1};
  const std::string prefix_bytes = prefix.Encode();
  EXPECT_EQ(*CertificateRecord::Decode(prefix_bytes), prefix);
  EXPECT_EQ(
      CertificateRecord::Decode(prefix_bytes.substr(0, prefix_bytes.size() - 1))
          .status()
          .code(),
      StatusCode::kDataLoss);
}

TEST(CertificateRecord, CorruptBytesAreDataLoss) {
  const std::string bytes = Sample().Encode();
  EXPECT_EQ(CertificateRecord::Decode("").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(CertificateRecord::Decode(bytes.substr(0, bytes.size() - 1))
                .status()
                .code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(CertificateRecord::Decode(bytes + "x").status().code(),
            StatusCode::kDataLoss);
  std::string bad_format = bytes;
  bad_format[0] = 9;
  EXPECT_EQ(CertificateRecord::Decode(bad_format).status().code(),
            StatusCode::kDataLoss);
}

TEST(Decision, Names) {
  EXPECT_STREQ(DecisionName(Decision::kClean), "clean");
  EXPECT_STREQ(DecisionName(Decision::kUncertified), "uncertified");
  EXPECT_STREQ(DecisionName(Decision::kPrefix), "prefix");
}

}  // namespace
}  // namespace eraser::certify
