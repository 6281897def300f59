#include "eraser/workloads/workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace eraser::workloads {
namespace {

using ::testing::HasSubstr;

TEST(LoadWorkload, TheShippedDefaultWorkload) {
  StatusOr<Workload> w =
      LoadWorkload(ERASER_SOURCE_DIR "/workloads/default.json");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->name, "default");
  ASSERT_TRUE(w->generator.has_value());
  EXPECT_FALSE(w->trace_file.has_value());
  EXPECT_NE(w->generator->arrivals_file.find("azure-llm-2023-conv.csv"),
            std::string::npos);
  EXPECT_GE(w->policies.size(), 4u);
  EXPECT_EQ(w->replay.policies, w->policies);
  EXPECT_TRUE(w->model.Validate().ok());
}

class WorkloadFile : public ::testing::Test {
 protected:
  StatusOr<Workload> Load(const std::string& json) {
    testing::WriteFileOrDie(dir_.Child("w.json"), json);
    return LoadWorkload(dir_.Child("w.json"));
  }
  testing::TempDir dir_;
};

TEST_F(WorkloadFile, FieldsAndRelativePaths) {
  StatusOr<Workload> w = Load(R"({
    "name": "t", "trace": "traces/x.csv",
    "model": {"shards": 4, "slices": 2, "arch": "cnn", "epochs": [1, 2]},
    "policies": ["immediate", "eraser:batch:4,partial"],
    "replay": {"speed": 2, "oracle": false, "max_queue_delay": "5ms",
               "context": "exclusive"},
    "seed": 9})");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(*w->trace_file, dir_.Child("traces/x.csv"));
  EXPECT_EQ(w->model.shards, 4u);
  EXPECT_EQ(w->model.model.arch, unlearning::Architecture::kCnn);
  EXPECT_EQ(w->model.epochs, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(w->replay.speed, 2.0);
  EXPECT_FALSE(w->replay.oracle);
  EXPECT_EQ(w->replay.max_queue_delay, std::chrono::milliseconds(5));
  EXPECT_EQ(w->replay.context, engine::ExecutionContext::kExclusive);
  EXPECT_EQ(w->seed, 9u);
}

TEST_F(WorkloadFile, GeneratorUsesTheSeedAndOwnerCount) {
  StatusOr<Workload> w = Load(R"({
    "model": {"samples_per_owner": 10},
    "generator": {"duration": "30s", "deletion_rate": 2, "target": "owner",
                  "distribution": "zipf"},
    "seed": 4})");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->generator->seed, 4u);
  EXPECT_EQ(w->generator->owners, 6000u);
  EXPECT_EQ(w->generator->distribution, GeneratorOptions::Distribution::kZipf);
  EXPECT_EQ(w->policies, DefaultReplayPolicies());
}

TEST_F(WorkloadFile, MistakesAreNamed) {
  EXPECT_THAT(Load("{").status().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(Load(R"({"trace": "x", "speed": 2})").status().message(),
              HasSubstr("'speed' is not a known key"));
  EXPECT_THAT(Load(R"({"trace": "x", "model": {"shards": "eight"}})")
                  .status()
                  .message(),
              HasSubstr("'model.shards' has the wrong type"));
  EXPECT_THAT(Load(R"({"model": {}})").status().message(),
              HasSubstr("exactly one of 'trace'"));
  EXPECT_THAT(Load(R"({"trace": "x", "generator": {}})").status().message(),
              HasSubstr("exactly one of 'trace'"));
  EXPECT_THAT(Load(R"({"generator": {"duration": "soon"}})").status().message(),
              HasSubstr("'generator.duration' bad duration"));
  EXPECT_THAT(
      Load(R"({"trace": "x", "policies": ["sometimes"]})").status().message(),
      HasSubstr("policy"));
  EXPECT_EQ(LoadWorkload(dir_.Child("missing.json")).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace eraser::workloads
