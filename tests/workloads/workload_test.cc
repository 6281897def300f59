#include "eraser/workloads/workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "eraser/scheduler/policy.h"
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
  EXPECT_GE(w->replay.policies.size(), 4u);
  EXPECT_EQ(w->replay.policies[0].name, "immediate");
  EXPECT_TRUE(w->model.Validate().ok());
}

TEST(LoadWorkload, TheShippedSweepWorkload) {
  StatusOr<Workload> w =
      LoadWorkload(ERASER_SOURCE_DIR "/workloads/sweep.json");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(w->generator.has_value());
  EXPECT_GE(w->sweep_deletion_rates.size(), 4u);
  EXPECT_TRUE(std::is_sorted(w->sweep_deletion_rates.begin(),
                             w->sweep_deletion_rates.end()));
  EXPECT_EQ(w->replay.policies.size(), scheduler::Presets().size());
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
  EXPECT_EQ(w->replay.inference.max_queue_delay, std::chrono::milliseconds(5));
  EXPECT_EQ(w->replay.unlearning.context, engine::ExecutionContext::kExclusive);
  EXPECT_EQ(w->seed, 9u);
}

TEST_F(WorkloadFile, GeneratorUsesTheSeed) {
  StatusOr<Workload> w = Load(R"({
    "model": {"samples_per_owner": 10},
    "generator": {"duration": "30s", "deletion_rate": 2, "target": "owner",
                  "distribution": "zipf"},
    "seed": 4})");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->generator->seed, 4u);
  EXPECT_EQ(w->model.samples_per_owner, 10u);
  EXPECT_EQ(w->generator->distribution, GeneratorOptions::Distribution::kZipf);
  ASSERT_EQ(w->replay.policies.size(), DefaultReplayPolicies().size());
  for (std::size_t i = 0; i < DefaultReplayPolicies().size(); ++i) {
    EXPECT_EQ(w->replay.policies[i].name, DefaultReplayPolicies()[i]);
  }
  EXPECT_TRUE(w->sweep_deletion_rates.empty());
}

TEST_F(WorkloadFile, SweepRates) {
  StatusOr<Workload> w = Load(R"({
    "generator": {"duration": "10s"},
    "sweep": {"deletion_rates": [0.5, 2]}})");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->sweep_deletion_rates, (std::vector<double>{0.5, 2}));
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
  EXPECT_THAT(Load(R"({"trace": "x", "sweep": {"deletion_rates": [1]}})")
                  .status()
                  .message(),
              HasSubstr("'sweep' needs a 'generator'"));
  EXPECT_THAT(Load(R"({"generator": {}, "sweep": {"deletion_rates": [1, 0]}})")
                  .status()
                  .message(),
              HasSubstr("positive"));
  EXPECT_THAT(Load(R"({"generator": {}, "sweep": {"deletion_rates": []}})")
                  .status()
                  .message(),
              HasSubstr("at least one deletion rate"));
  EXPECT_THAT(
      Load(R"({"generator": {}, "sweep": {"rates": [1]}})").status().message(),
      HasSubstr("'sweep.rates' is not a known key"));
  EXPECT_EQ(LoadWorkload(dir_.Child("missing.json")).status().code(),
            StatusCode::kNotFound);
}

// Every integer field, scalar or in a list, refuses a number it cannot hold
// however the number is written (nlohmann's get<> casts without checking:
// -1 became 2^32 - 1, and a float out of range was undefined behaviour,
// which the workload fuzzer found). Run under UBSan, a missed check fails
// here too.
TEST_F(WorkloadFile, EveryIntegerFieldRefusesNumbersItCannotHold) {
  struct Field {
    const char* object;  // "" for the top level
    const char* key;
    bool list;
    bool is_signed;
    int bits;
  };
  const Field fields[] = {
      {"model", "shards", false, false, 32},
      {"model", "slices", false, false, 32},
      {"model", "epochs", true, false, 32},
      {"model", "batch_size", false, false, 32},
      {"model", "seed", false, false, 64},
      {"model", "samples_per_owner", false, false, 32},
      {"model", "threads", false, true, 32},
      {"model", "hidden", false, false, 32},
      {"model", "hidden", true, false, 32},
      {"", "seed", false, false, 64},
      {"replay", "inference_threads", false, true, 32},
      {"replay", "unlearning_concurrency", false, true, 32},
      {"replay", "max_batch_size", false, false, 64},
      {"replay", "queue_capacity", false, false, 64},
  };
  const auto load = [&](const Field& f, const std::string& value) {
    const std::string v = f.list ? "[1, " + value + "]" : value;
    const std::string entry = "\"" + std::string(f.key) + "\": " + v;
    const std::string body = *f.object == '\0' ? entry
                                               : "\"" + std::string(f.object) +
                                                     "\": {" + entry + "}";
    return Load(R"({"trace": "x", )" + body + "}");
  };
  for (const Field& f : fields) {
    SCOPED_TRACE(std::string(f.object) + "." + f.key);
    const std::string name = *f.object == '\0'
                                 ? std::string(f.key)
                                 : std::string(f.object) + "." + f.key;
    std::vector<std::string> bad = {"1.5", "1e300", "-1e300",
                                    "18446744073709551616",
                                    "1.8446744073709552e19"};
    if (!f.is_signed) bad.push_back("-1");
    if (f.bits == 32) {
      bad.push_back(f.is_signed ? "2147483648" : "4294967296");
      bad.push_back(f.is_signed ? "2.147483648e9" : "4.294967296e9");
      if (f.is_signed) bad.push_back("-2147483649");
    }
    // A list names the element ([1, value]: the second).
    const std::string shown = f.list ? name + "[1]" : name;
    for (const std::string& value : bad) {
      EXPECT_THAT(load(f, value).status().message(),
                  HasSubstr("'" + shown + "' is not a whole number in range"))
          << value;
    }
    // nlohmann would read true as 1.
    EXPECT_THAT(load(f, "true").status().message(),
                HasSubstr("'" + shown + "' has the wrong type"));
    for (const char* value : {"2", "2.0", "2e0"}) {
      StatusOr<Workload> w = load(f, value);
      EXPECT_TRUE(w.ok()) << value << ": " << w.status();
    }
  }
  StatusOr<Workload> w = Load(R"({"trace": "x", "seed": 18446744073709551615,
      "model": {"epochs": [3.0, 1e1], "threads": -1}})");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(w->model.epochs, (std::vector<uint32_t>{3, 10}));
  EXPECT_EQ(w->model.concurrency, -1);
}

}  // namespace
}  // namespace eraser::workloads
