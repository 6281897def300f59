#include "eraser/workloads/trace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace eraser::workloads {
namespace {

using ::testing::HasSubstr;

TEST(ParseTrace, GoodTrace) {
  StatusOr<Trace> t = ParseTrace(
      "time_ms,op,target\n"
      "0,infer,12\n"
      "1.5,delete,sample:42\n"
      "1.5,infer,9999\n"
      "2000,delete,owner:7\n",
      "good.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->events.size(), 4u);
  EXPECT_EQ(t->inferences(), 2u);
  EXPECT_EQ(t->deletions(), 2u);
  EXPECT_EQ(t->events[0].op, TraceEvent::Op::kInfer);
  EXPECT_EQ(t->events[0].test_index, 12u);
  EXPECT_EQ(t->events[1].deletion,
            storage::DeletionTarget::Sample(SampleId(42)));
  EXPECT_DOUBLE_EQ(t->events[1].time_ms, 1.5);
  EXPECT_EQ(t->events[3].deletion, storage::DeletionTarget::Owner(OwnerId(7)));
  EXPECT_EQ(t->events[3].line, 5);
  EXPECT_DOUBLE_EQ(t->duration_ms(), 2000);
}

TEST(ParseTrace, AcceptsCrlfAndAMissingFinalNewline) {
  StatusOr<Trace> t =
      ParseTrace("time_ms,op,target\r\n0,infer,1\r\n3,infer,2", "crlf.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->events.size(), 2u);
}

// A spreadsheet's byte-order mark and times in exponent form (pandas,
// numpy) were refused as a bad header and as "not a non-negative number".
TEST(ParseTrace, AcceptsAByteOrderMarkAndExponents) {
  StatusOr<Trace> t = ParseTrace(
      "\xEF\xBB\xBFtime_ms,op,target\n0,infer,1\n1e3,infer,2\n1.5E+3,infer,3\n",
      "bom.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->events.size(), 3u);
  EXPECT_EQ(t->events[1].time_ms, 1000);
  EXPECT_EQ(t->events[2].time_ms, 1500);
  for (const char* bad : {"-1e3", "1e999", "e3", "+5", "nan", "1e"}) {
    EXPECT_FALSE(
        ParseTrace(std::string("time_ms,op,target\n") + bad + ",infer,1\n",
                   "x.csv")
            .ok())
        << bad;
  }
}

TEST(ParseTrace, EveryBadRowIsReportedWithItsLine) {
  StatusOr<Trace> t = ParseTrace(
      "time_ms,op,target\n"
      "0,infer,1\n"
      "5,infer,1\n"        // line 3: fine
      "4,infer,1\n"        // line 4: backwards
      "x,infer,1\n"        // line 5: bad time
      "-1,infer,1\n"       // line 6: negative
      "6,infer\n"          // line 7: field count
      "7,delete,user:1\n"  // line 8: bad target
      "8,infer,-3\n"       // line 9: bad index
      "\n"                 // line 10: empty
      "9,infr,2\n",        // line 11: unknown op
      "bad.csv");
  ASSERT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = t.status().message();
  EXPECT_THAT(m, HasSubstr("bad.csv: 8 bad rows, trace rejected"));
  EXPECT_THAT(m, HasSubstr("line 11: unknown op 'infr'"));
  EXPECT_THAT(m, HasSubstr("line 4: time_ms goes backwards"));
  EXPECT_THAT(m, HasSubstr("line 5: time_ms 'x'"));
  EXPECT_THAT(m, HasSubstr("line 6: time_ms '-1'"));
  EXPECT_THAT(m, HasSubstr("line 7: expected 3 fields, found 2"));
  EXPECT_THAT(m, HasSubstr("line 8: bad deletion target 'user:1'"));
  EXPECT_THAT(m, HasSubstr("line 9: infer target '-3'"));
  EXPECT_THAT(m, HasSubstr("line 10: expected 3 fields, found 1 (empty line)"));
}

TEST(ParseTrace, HeaderIsRequired) {
  EXPECT_THAT(ParseTrace("0,infer,1\n", "h.csv").status().message(),
              HasSubstr("line 1: the header must be 'time_ms,op,target'"));
  EXPECT_THAT(ParseTrace("", "e.csv").status().message(),
              HasSubstr("empty file"));
}

TEST(ParseTrace, LongListsAreCut) {
  std::string csv = "time_ms,op,target\n";
  for (int i = 0; i < 30; ++i) csv += "0,nop,1\n";
  StatusOr<Trace> t = ParseTrace(csv, "many.csv");
  EXPECT_THAT(t.status().message(), HasSubstr("30 bad rows"));
  EXPECT_THAT(t.status().message(), HasSubstr("... and 10 more"));
}

TEST(ValidateTrace, TestIndexMustBeInTheTestSet) {
  StatusOr<Trace> t =
      ParseTrace("time_ms,op,target\n0,infer,3\n1,infer,10\n", "v.csv");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(ValidateTrace(*t, 11).ok());
  Status s = ValidateTrace(*t, 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 3: test index 10"));
}

// Rows of the stored test split erased by deletions of their owners.
TEST(ValidateTrace, AnErasedTestSampleIsRefused) {
  StatusOr<Trace> t =
      ParseTrace("time_ms,op,target\n0,infer,0\n1,infer,2\n", "v.csv");
  ASSERT_TRUE(t.ok());
  datasets::Split test;
  test.type = datasets::FeatureType::kPixel;
  test.shape = {2};
  test.labels = {1, 0, 1};
  test.owners = {5, 6, 7};
  test.features = {1, 2, 3, 4, 5, 6};
  EXPECT_TRUE(ValidateTrace(*t, test).ok());
  test.EraseOwner(7);
  EXPECT_EQ(test.features[4], 0);
  const Status s = ValidateTrace(*t, test);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 3: test sample 2 was erased"));
}

TEST(FormatTrace, RoundTripsThroughAFile) {
  Trace t;
  TraceEvent a;
  a.time_ms = 0.25;
  a.test_index = 5;
  TraceEvent b;
  b.time_ms = 12;
  b.op = TraceEvent::Op::kDelete;
  b.deletion = storage::DeletionTarget::Owner(OwnerId(3));
  t.events = {a, b};
  EXPECT_EQ(FormatTrace(t),
            "time_ms,op,target\n0.25,infer,5\n12,delete,owner:3\n");
  testing::TempDir dir;
  ASSERT_TRUE(WriteTrace(t, dir.Child("t.csv")).ok());
  StatusOr<Trace> back = ReadTrace(dir.Child("t.csv"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(FormatTrace(*back), FormatTrace(t));
  EXPECT_EQ(ReadTrace(dir.Child("none.csv")).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace eraser::workloads
