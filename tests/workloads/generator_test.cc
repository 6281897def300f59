#include "eraser/workloads/generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "eraser/scheduler/policy.h"
#include "testing/comma_locale.h"
#include "testing/temp_dir.h"

namespace eraser::workloads {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

// The shipped copy of the Azure trace (see workloads/traces/README.md).
const char kAzure[] =
    ERASER_SOURCE_DIR "/workloads/traces/azure-llm-2023-conv.csv";

TEST(GenerateTrace, SameSeedSameTraceOtherSeedOtherTrace) {
  GeneratorOptions o;
  o.duration = seconds(20);
  StatusOr<Trace> a = GenerateTrace(o);
  StatusOr<Trace> b = GenerateTrace(o);
  o.seed = 2;
  StatusOr<Trace> c = GenerateTrace(o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(FormatTrace(*a), FormatTrace(*b));
  EXPECT_NE(FormatTrace(*a), FormatTrace(*c));
  // What it writes, it reads back.
  StatusOr<Trace> parsed = ParseTrace(FormatTrace(*a), "generated");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(ValidateTrace(*parsed, o.test_size).ok());
}

// Fitted to a data directory whose test split lost rows to deletions of
// their owners, a trace names only the others.
TEST(GenerateTrace, NamesNoErasedTestSample) {
  unlearning::DatasetInfo info;
  info.train_size = 100;
  info.owners = {1, 2, 3};
  info.test.type = datasets::FeatureType::kPixel;
  info.test.shape = {1};
  info.test.labels = {0, 1, 0, 1};
  info.test.owners = {8, 9, 8, 9};
  info.test.features = {1, 2, 3, 4};
  info.test.EraseOwner(8);
  GeneratorOptions o;
  o.duration = seconds(20);
  FitToDataset(info, &o);
  StatusOr<Trace> t = GenerateTrace(o);
  ASSERT_TRUE(t.ok()) << t.status();
  std::set<uint64_t> named;
  for (const TraceEvent& e : t->events) {
    if (e.op == TraceEvent::Op::kInfer) named.insert(e.test_index);
  }
  EXPECT_EQ(named, (std::set<uint64_t>{1, 3}));
  EXPECT_TRUE(ValidateTrace(*t, info.test).ok());
}

TEST(GenerateTrace, RatesMatchOverALongRun) {
  GeneratorOptions o;
  o.duration = seconds(2000);
  o.inference_rate = 20;
  o.deletion_rate = 2;
  StatusOr<Trace> t = GenerateTrace(o);
  ASSERT_TRUE(t.ok());
  // Poisson counts: mean rate * duration, standard deviation its root.
  EXPECT_NEAR(static_cast<double>(t->inferences()), 40000,
              4 * std::sqrt(40000.0));
  EXPECT_NEAR(static_cast<double>(t->deletions()), 4000, 4 * std::sqrt(4000.0));
  EXPECT_LE(t->duration_ms(), 2000e3);
}

TEST(GenerateTrace, DeletionTargetsAreDistinctAndInRange) {
  for (auto target :
       {GeneratorOptions::Target::kSample, GeneratorOptions::Target::kOwner}) {
    for (auto dist : {GeneratorOptions::Distribution::kUniform,
                      GeneratorOptions::Distribution::kZipf}) {
      GeneratorOptions o;
      o.duration = seconds(100);
      o.deletion_rate = 5;
      o.deletion_target = target;
      o.distribution = dist;
      o.owners = 1000;
      StatusOr<Trace> t = GenerateTrace(o);
      ASSERT_TRUE(t.ok());
      std::set<uint64_t> seen;
      for (const TraceEvent& e : t->events) {
        if (e.op == TraceEvent::Op::kInfer) {
          ASSERT_LT(e.test_index, o.test_size);
          continue;
        }
        const bool owner = target == GeneratorOptions::Target::kOwner;
        EXPECT_EQ(e.deletion.kind,
                  owner ? storage::DeletionTarget::Kind::kOwner
                        : storage::DeletionTarget::Kind::kSample);
        EXPECT_LT(e.deletion.id, owner ? o.owners : o.train_size);
        EXPECT_TRUE(seen.insert(e.deletion.id).second) << "repeated target";
      }
      EXPECT_GT(seen.size(), 400u);
    }
  }
}

// With weights 1/(r+1)^s, the first draw is rank 0 with probability
// 1 / sum_r 1/(r+1)^s; uniform draws pick it with probability 1/n.
TEST(DrawWithoutReplacement, ZipfIsSkewedUniformIsNot) {
  constexpr uint64_t kN = 100;
  double harmonic = 0;
  for (uint64_t r = 0; r < kN; ++r) harmonic += std::pow(r + 1.0, -1.1);
  int zipf_first = 0;
  int uniform_first = 0;
  constexpr int kTrials = 4000;
  for (int t = 0; t < kTrials; ++t) {
    Rng rng(static_cast<uint64_t>(t));
    zipf_first += DrawWithoutReplacement(kN, 5, 1.1, rng)[0] == 0;
    uniform_first += DrawWithoutReplacement(kN, 5, 0.0, rng)[0] == 0;
  }
  EXPECT_NEAR(zipf_first / double(kTrials), 1 / harmonic, 0.03);
  EXPECT_NEAR(uniform_first / double(kTrials), 1.0 / kN, 0.01);
  Rng rng(1);
  const std::vector<uint64_t> all = DrawWithoutReplacement(10, 50, 2.0, rng);
  EXPECT_EQ(std::set<uint64_t>(all.begin(), all.end()).size(), 10u);
}

TEST(ReadArrivalTimes, TheShippedAzureTrace) {
  StatusOr<std::vector<double>> t = ReadArrivalTimes(kAzure);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->size(), 19366u);
  EXPECT_EQ(t->front(), 0.0);
  // 18:15:46.68 to the last request shortly before 19:15.
  EXPECT_GT(t->back(), 3500.0);
  EXPECT_LT(t->back(), 3600.0);
}

// Trace files, arrival timestamps and policy names are the same text, and
// read back, whatever the C locale (a German one writes 12.5 as "12,5",
// which would split a CSV field).
TEST(ReadArrivalTimes, TracesAndTimestampsIgnoreTheCLocale) {
  GeneratorOptions o;
  o.duration = seconds(3);
  StatusOr<Trace> trace = GenerateTrace(o);
  ASSERT_TRUE(trace.ok()) << trace.status();
  const std::string in_c = FormatTrace(*trace);
  StatusOr<std::vector<double>> arrivals_in_c = ReadArrivalTimes(kAzure);
  ASSERT_TRUE(arrivals_in_c.ok()) << arrivals_in_c.status();

  testing::CommaDecimalLocale german;
  ASSERT_TRUE(german.active());
  EXPECT_EQ(FormatTrace(*trace), in_c);
  StatusOr<Trace> parsed = ParseTrace(in_c, "generated");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(FormatTrace(*parsed), in_c);
  StatusOr<std::vector<double>> arrivals = ReadArrivalTimes(kAzure);
  ASSERT_TRUE(arrivals.ok()) << arrivals.status();
  EXPECT_EQ(*arrivals, *arrivals_in_c);
  StatusOr<scheduler::Policy> idle =
      scheduler::ParsePolicy("eraser:idle:0.5,wait,deadline=30s");
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_EQ(idle->ToString(), "eraser:idle:0.5,wait,deadline=30s");
}

TEST(ReadArrivalTimes, MalformedRowsAreNamed) {
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Child("a.csv"),
                          "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                          "2023-11-16 18:15:46.6805900,374,44\n"
                          "2023-11-16 18:15:4x,1,1\n");
  EXPECT_THAT(ReadArrivalTimes(dir.Child("a.csv")).status().message(),
              HasSubstr("line 3: malformed timestamp"));
  testing::WriteFileOrDie(dir.Child("b.csv"),
                          "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                          "2023-11-16 18:15:46.6805900,374,44\n"
                          "2023-11-16 18:15:45.0000000,374,44\n");
  EXPECT_THAT(ReadArrivalTimes(dir.Child("b.csv")).status().message(),
              HasSubstr("line 3: timestamps go backwards"));
}

TEST(GenerateTrace, RealArrivalsScaledToARate) {
  GeneratorOptions o;
  o.duration = seconds(60);
  o.inference_rate = 50;
  o.deletion_rate = 0;
  o.arrivals_file = kAzure;
  StatusOr<Trace> t = GenerateTrace(o);
  ASSERT_TRUE(t.ok()) << t.status();
  // The trace's first minute compressed: burstier than Poisson, so a loose
  // bound around 50/s * 60 s.
  EXPECT_GT(t->inferences(), 1500u);
  EXPECT_LT(t->inferences(), 4500u);
  EXPECT_EQ(t->deletions(), 0u);
  // Scaled arrival times keep the real trace's order and gaps: the first
  // request is at 0.
  EXPECT_EQ(t->events.front().time_ms, 0.0);
}

TEST(GeneratorOptions, BadValuesNameTheField) {
  GeneratorOptions o;
  o.inference_rate = 0;
  EXPECT_THAT(o.Validate().message(), HasSubstr("inference_rate"));
  o = GeneratorOptions();
  o.duration = seconds(0);
  EXPECT_THAT(o.Validate().message(), HasSubstr("duration"));
  EXPECT_EQ(ParseDistribution("pareto").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTarget("user").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eraser::workloads
