// `eraser trace` and `eraser replay` end to end on a small ensemble.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "run_eraser.h"
#include "testing/temp_dir.h"

namespace eraser {
namespace {

using testing::CommandResult;
using testing::Eraser;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadJson;

TEST(TraceCommand, GeneratesAReproducibleTrace) {
  testing::TempDir dir;
  const std::string args =
      " --duration 20s --inference-rate 30 --deletion-rate 2 --seed 5"
      " --target owner --distribution zipf";
  CommandResult a = Eraser("trace --out " + dir.Child("a.csv") + args);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_THAT(a.output, HasSubstr("deletion requests over"));
  ASSERT_EQ(Eraser("trace --out " + dir.Child("b.csv") + args).exit_code, 0);
  const std::string trace = testing::ReadFileOrDie(dir.Child("a.csv"));
  EXPECT_EQ(trace, testing::ReadFileOrDie(dir.Child("b.csv")));
  EXPECT_EQ(trace.rfind("time_ms,op,target\n", 0), 0u);
  EXPECT_NE(trace.find(",delete,owner:"), std::string::npos);

  EXPECT_EQ(Eraser("trace --out x.csv --target user").exit_code, 2);
  EXPECT_EQ(Eraser("trace --out x.csv --duration soon").exit_code, 2);
  EXPECT_EQ(Eraser("trace").exit_code, 2);  // --out is required
}

TEST(ReplayCommand, ComparesPoliciesAndWritesTheReport) {
  testing::TempDir dir;
  const std::string data = dir.Child("data");
  ASSERT_EQ(Eraser("train --data-dir " + data +
                   " --shards 2 --slices 2 --hidden 8 --epochs 1,1")
                .exit_code,
            0);
  ASSERT_EQ(Eraser("trace --out " + dir.Child("t.csv") +
                   " --duration 2s --inference-rate 40 --deletion-rate 3")
                .exit_code,
            0);
  CommandResult run =
      Eraser("replay --trace " + dir.Child("t.csv") + " --data-dir " + data +
             " --policies 'immediate;eraser-lazy-partial' --json " +
             dir.Child("r.json"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("reused"));
  EXPECT_THAT(run.output, HasSubstr("eraser-lazy-partial"));
  EXPECT_THAT(run.output,
              HasSubstr("Savings (p50, p99, comp) are against immediate"));
  const nlohmann::json report = ReadJson(dir.Child("r.json"));
  ASSERT_TRUE(report.is_object()) << run.output;
  ASSERT_EQ(report["policies"].size(), 2u);
  EXPECT_EQ(report["comparison"]["baseline"], "immediate");
  EXPECT_EQ(report["model"]["shards"], 2);
  for (const auto& p : report["policies"]) {
    EXPECT_EQ(p["privacy"]["soundness_violations"], 0);
    EXPECT_EQ(p["privacy"]["exposures"], 0);
    EXPECT_GT(p["inference"]["requests"].get<int>(), 40);
  }
}

TEST(ReplayCommand, SweepsDeletionRatesAndChecksTheTargets) {
  testing::TempDir dir;
  const std::string data = dir.Child("data");
  testing::WriteFileOrDie(dir.Child("w.json"), R"({
    "model": {"shards": 2, "slices": 2, "hidden": 8, "epochs": [1, 1]},
    "generator": {"duration": "1s", "inference_rate": 30},
    "policies": ["immediate", "eraser-lazy-partial"],
    "replay": {"oracle": false},
    "sweep": {"deletion_rates": [9]}})");
  CommandResult run =
      Eraser("replay --workload " + dir.Child("w.json") + " --data-dir " +
             data + " --deletion-rates 1,3 --json " + dir.Child("s.json") +
             " --dat " + dir.Child("s.dat"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("== 1.00 deletions/s"));
  EXPECT_THAT(run.output, HasSubstr("== 3.00 deletions/s"));
  EXPECT_THAT(run.output, HasSubstr("Targets where the baseline is busy"));
  const nlohmann::json sweep = ReadJson(dir.Child("s.json"));
  ASSERT_TRUE(sweep.is_object()) << run.output;
  ASSERT_EQ(sweep["levels"].size(), 2u);  // the flag overrides the file
  EXPECT_EQ(sweep["levels"][1]["deletion_rate"], 3.0);
  for (const auto& level : sweep["levels"]) {
    ASSERT_EQ(level["report"]["policies"].size(), 2u);
    EXPECT_EQ(level["report"]["comparison"]["baseline"], "immediate");
  }
  ASSERT_EQ(sweep["targets"]["levels"].size(), 2u);
  EXPECT_TRUE(sweep["targets"]["levels"][0].contains("in_range"));
  const std::string dat = testing::ReadFileOrDie(dir.Child("s.dat"));
  EXPECT_THAT(dat, HasSubstr("# policy immediate\n1 "));
  EXPECT_THAT(dat, HasSubstr("# policy eraser-lazy-partial\n1 "));
  // The plot script draws it.
  CommandResult plot =
      testing::Run(std::string(ERASER_SOURCE_DIR) + "/scripts/plot-sweep " +
                   dir.Child("s.dat") + " " + dir.Child("s.png"));
  ASSERT_EQ(plot.exit_code, 0) << plot.output;
  EXPECT_EQ(testing::ReadFileOrDie(dir.Child("s.png")).substr(1, 3), "PNG");

  // A sweep needs a generator; rates must be positive numbers.
  testing::WriteFileOrDie(dir.Child("t.csv"), "time_ms,op,target\n0,infer,1\n");
  EXPECT_THAT(Eraser("replay --trace " + dir.Child("t.csv") + " --data-dir " +
                     data + " --deletion-rates 1")
                  .output,
              HasSubstr("a sweep needs a workload with a generator"));
  CommandResult bad = Eraser("replay --workload " + dir.Child("w.json") +
                             " --deletion-rates 1,fast");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("'fast' is not a number"));
  EXPECT_EQ(
      Eraser("replay --workload " + dir.Child("w.json") + " --deletion-rates 0")
          .exit_code,
      2);
}

TEST(ReplayCommand, BadInputsAreUsageErrors) {
  testing::TempDir dir;
  EXPECT_EQ(Eraser("replay").exit_code, 2);  // neither --trace nor --workload
  EXPECT_EQ(Eraser("replay --trace a.csv --workload b.json").exit_code, 2);
  CommandResult policies =
      Eraser("replay --trace a.csv --policies eraser:sometimes");
  EXPECT_EQ(policies.exit_code, 2);
  EXPECT_THAT(policies.output, HasSubstr("Valid policies:"));
  testing::WriteFileOrDie(dir.Child("w.json"), R"({"trace": "x", "bogus": 1})");
  CommandResult workload = Eraser("replay --workload " + dir.Child("w.json"));
  EXPECT_EQ(workload.exit_code, 2);
  EXPECT_THAT(workload.output, HasSubstr("'bogus' is not a known key"));
}

TEST(ReplayCommand, MalformedTraceIsRejectedWithLineNumbers) {
  testing::TempDir dir;
  const std::string data = dir.Child("data");
  ASSERT_EQ(Eraser("train --data-dir " + data +
                   " --shards 2 --slices 2 --hidden 8 --epochs 1,1")
                .exit_code,
            0);
  testing::WriteFileOrDie(dir.Child("bad.csv"),
                          "time_ms,op,target\n0,infer,1\n5,erase,sample:3\n");
  CommandResult run =
      Eraser("replay --trace " + dir.Child("bad.csv") + " --data-dir " + data);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.output, HasSubstr("line 3: unknown op 'erase'"));
}

// The trace is read before anything is trained: a missing one is reported
// at once, and no ensemble is built for it.
TEST(ReplayCommand, AMissingTraceIsReportedBeforeTraining) {
  testing::TempDir dir;
  const std::string data = dir.Child("data");
  CommandResult run =
      Eraser("replay --trace " + dir.Child("none.csv") + " --data-dir " + data);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("cannot read trace"));
  EXPECT_THAT(run.output, Not(HasSubstr("Ensemble")));
  EXPECT_FALSE(std::filesystem::exists(data));
}

}  // namespace
}  // namespace eraser
