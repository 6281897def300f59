#include "eraser/scheduler/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eraser::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

TEST(ParsePolicy, Baselines) {
  StatusOr<Policy> p = ParsePolicy("immediate");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, PolicyKind::kImmediate);
  EXPECT_FALSE(p->certifies());
  EXPECT_EQ(p->ToString(), "immediate");

  p = ParsePolicy("inference-first");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, PolicyKind::kInferenceFirst);
  EXPECT_EQ(p->deadline, seconds(30));
  EXPECT_EQ(p->name, "inference-first");

  p = ParsePolicy("inference-first,deadline=5s");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->deadline, seconds(5));
  EXPECT_EQ(p->ToString(), "inference-first,deadline=5s");
}

TEST(ParsePolicy, EraserForms) {
  StatusOr<Policy> p = ParsePolicy("eraser:lazy,wait,deadline=30s");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, PolicyKind::kEraser);
  EXPECT_EQ(p->timing, Timing::kLazy);
  EXPECT_EQ(p->rule, UncertifiedRule::kWait);
  EXPECT_TRUE(p->certifies());

  p = ParsePolicy("eraser:batch:16,partial");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timing, Timing::kBatch);
  EXPECT_EQ(p->batch_size, 16u);
  EXPECT_EQ(p->rule, UncertifiedRule::kPartial);
  EXPECT_EQ(p->ToString(), "eraser:batch:16,partial,deadline=30s");
  p = ParsePolicy("eraser:shards:5,prefix");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->rule, UncertifiedRule::kPrefix);
  EXPECT_EQ(p->ToString(), "eraser:shards:5,prefix,deadline=30s");
  p = ParsePolicy("eraser:shards:4,soft");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->rule, UncertifiedRule::kSoft);
  EXPECT_TRUE(p->answers_from_unaffected());
  EXPECT_EQ(p->ToString(), "eraser:shards:4,soft,deadline=30s");

  p = ParsePolicy("eraser:periodic:500ms,deadline=2m,reject");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->period, milliseconds(500));
  EXPECT_EQ(p->deadline, seconds(120));
  EXPECT_EQ(p->rule, UncertifiedRule::kReject);

  p = ParsePolicy("eraser:idle");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timing, Timing::kIdle);
  EXPECT_DOUBLE_EQ(p->idle_utilization, 0.25);
  EXPECT_EQ(p->rule, UncertifiedRule::kWait);
  p = ParsePolicy("eraser:idle:0.5");
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(p->idle_utilization, 0.5);

  p = ParsePolicy("eraser:shards:2,wait");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timing, Timing::kShards);
  EXPECT_EQ(p->max_affected, 2u);
}

TEST(ParsePolicy, EveryPresetParsesAndRoundTrips) {
  for (const auto& [name, definition] : Presets()) {
    StatusOr<Policy> p = ParsePolicy(name);
    ASSERT_TRUE(p.ok()) << name << ": " << p.status();
    EXPECT_EQ(p->name, name);
    StatusOr<Policy> again = ParsePolicy(p->ToString());
    ASSERT_TRUE(again.ok()) << p->ToString();
    EXPECT_EQ(again->ToString(), p->ToString());
  }
  for (const char* required :
       {"immediate", "inference-first", "eraser-lazy-wait",
        "eraser-lazy-partial", "eraser-lazy-reject", "eraser-batch-wait",
        "eraser-periodic-wait", "eraser-idle-wait"}) {
    EXPECT_TRUE(ParsePolicy(required).ok()) << required;
  }
}

TEST(ParsePolicy, BadStringsListWhatIsValid) {
  for (const char* bad :
       {"", "sometimes", "eraser:", "eraser:sometimes", "eraser:lazy,wait,wait",
        "eraser:lazy,batch:3", "eraser:batch:0", "eraser:batch:x",
        "eraser:periodic:10", "eraser:periodic:0s", "eraser:idle:2",
        "eraser:lazy,deadline=0s", "eraser:lazy,deadline=soon",
        "eraser:lazy,deadline=1s,deadline=2s", "eraser:wait",
        "inference-first,wait", "immediate,deadline=1s", "eraser:lazy,"}) {
    StatusOr<Policy> p = ParsePolicy(bad);
    ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(p.status().message(), HasSubstr("Valid policies:")) << bad;
    EXPECT_THAT(p.status().message(), HasSubstr("eraser-lazy-wait")) << bad;
  }
  EXPECT_THAT(ParsePolicy("eraser:sometimes").status().message(),
              HasSubstr("unknown timing 'sometimes'"));
}

TEST(ParsePolicyList, SplitsOnSemicolonsAndSpaces) {
  StatusOr<std::vector<Policy>> list =
      ParsePolicyList("immediate; eraser:batch:4,wait eraser-lazy-partial");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[1].batch_size, 4u);
  EXPECT_EQ(ParsePolicyList(" ; ").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePolicyList("immediate;immediate").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePolicyList("immediate;bogus").status().code(),
            StatusCode::kInvalidArgument);
  // Spaces beside a policy's own separators belong to it: "eraser:lazy,
  // wait" was split into "eraser:lazy," and "wait".
  list = ParsePolicyList("eraser:lazy, wait ;eraser: batch:4 ,partial");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "eraser:lazy,wait");
  EXPECT_EQ((*list)[1].name, "eraser:batch:4,partial");
}

}  // namespace
}  // namespace eraser::scheduler
