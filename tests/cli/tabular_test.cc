// A CSV export end to end through the command line, as a new user would
// run it: `eraser dataset`, `eraser train` (and its refusal of bad files,
// which leaves no data directory behind), `eraser trace` from the data
// directory, and `eraser replay` of the ERASER policies on it.
#include "testing/tabular.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "run_eraser.h"
#include "testing/temp_dir.h"

namespace eraser {
namespace {

using testing::CommandResult;
using testing::Eraser;
using ::testing::HasSubstr;
using testing::ReadJson;

constexpr char kModel[] =
    "--shards 4 --slices 2 --hidden 16 --epochs 20,20 --batch-size 16 "
    "--seed 2";

class TabularCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFileOrDie(csv_, testing::SyntheticUsersCsv(60, 6, 4));
  }
  std::string Train(const std::string& data_dir, const std::string& extra) {
    return "train --data-dir " + data_dir + " --dataset csv:" + csv_ + " " +
           testing::kTabularFlags + " " + kModel + " " + extra;
  }

  testing::TempDir dir_;
  const std::string csv_ = dir_.Child("users.csv");
};

TEST_F(TabularCli, DatasetDescribesTheColumns) {
  CommandResult r =
      Eraser("dataset csv:" + csv_ + " " + testing::kTabularFlags);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("2 classes"));
  EXPECT_THAT(r.output, HasSubstr("leave"));
  EXPECT_THAT(r.output, HasSubstr("region                   categorical  "
                                  "4 categories: east north south west"));
  EXPECT_THAT(r.output, HasSubstr("note                     ignored"));
  EXPECT_THAT(r.output, HasSubstr("user                     owner"));
  EXPECT_THAT(r.output, HasSubstr("owners: 48 in the training split"));
}

// An option given an empty value (a shell variable that expanded to
// nothing) fell back to its default: no owners, the last column as label.
TEST_F(TabularCli, AnEmptyOptionValueIsRefused) {
  for (const std::string option :
       {"--owner-column", "--label-column", "--csv-delimiter"}) {
    CommandResult r = Eraser("dataset csv:" + csv_ + " " + option + " ''");
    EXPECT_EQ(r.exit_code, 2) << option << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(option + " is empty"));
  }
}

TEST_F(TabularCli, BadFilesLeaveNoDataDirectory) {
  const std::string text = testing::SyntheticUsersCsv(20, 3, 1);
  // Line 38 loses its age, the fourth field (before the quoted note).
  std::istringstream in(text);
  std::string line, bad;
  for (int n = 1; std::getline(in, line); ++n) {
    if (n == 38) {
      std::size_t third = 0;
      for (int comma = 0; comma < 3; ++comma) third = line.find(',', third) + 1;
      line.erase(third, line.find(',', third) - third);
    }
    bad += line + "\n";
  }
  const std::string bad_csv = dir_.Child("bad.csv");
  testing::WriteFileOrDie(bad_csv, bad);
  const std::string data = dir_.Child("data");
  CommandResult r =
      Eraser("train --data-dir " + data + " --dataset csv:" + bad_csv + " " +
             testing::kTabularFlags);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr(bad_csv + ":38: column 'age': missing value"));
  EXPECT_FALSE(std::filesystem::exists(data));
  // A ragged row, and an owner column that is not there.
  testing::WriteFileOrDie(bad_csv, text + "1,north\n");
  r = Eraser("train --data-dir " + data + " --dataset csv:" + bad_csv + " " +
             testing::kTabularFlags);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("a row of 2 fields; the header has 7"));
  r = Eraser("train --data-dir " + data + " --dataset csv:" + csv_ +
             " --owner-column account");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("'account' is not a column"));
  r = Eraser("train --data-dir " + data + " --dataset csv:" + csv_ +
             " --label-column churn --ignore-columns note,user --model "
             "torchscript:" +
             dir_.Child("none.pt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("cannot read model file"));
  EXPECT_FALSE(std::filesystem::exists(data));
  r = Eraser("train --data-dir " + data + " --dataset csv:" + csv_ +
             " --test-dataset npy:a.npy,b.npy");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("same kind"));
  EXPECT_FALSE(std::filesystem::exists(data));
  // Too few training samples for the partition: refused at ingest, after
  // the directory was opened, which is then removed.
  r = Eraser(Train(data, "--test-fraction 0.99"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cannot fill 4 shards of 2 slices"));
  EXPECT_FALSE(std::filesystem::exists(data));
  // A directory below a file: the path's error, not an internal one.
  testing::WriteFileOrDie(dir_.Child("file"), "");
  r = Eraser(Train(dir_.Child("file") + "/data", ""));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("INVALID_ARGUMENT: cannot create"));
}

// A directory serves its stored encoding and class names, so another file
// with the same training numbers but other column or label names is another
// dataset, not a reuse.
TEST_F(TabularCli, ADirectoryIsNotReusedForADatasetDescribedOtherwise) {
  const std::string data = dir_.Child("data");
  CommandResult r = Eraser(Train(data, ""));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Eraser(Train(data, ""));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("reusing the trained ensemble"));

  const std::string text = testing::SyntheticUsersCsv(60, 6, 4);
  std::string renamed = text;
  renamed.replace(renamed.find(",age,"), 5, ",years,");
  std::string relabelled = text;
  for (std::size_t at = 0;
       (at = relabelled.find(",leave\n", at)) != std::string::npos;) {
    relabelled.replace(at, 7, ",quit\n");
  }
  for (const std::string& other : {renamed, relabelled}) {
    testing::WriteFileOrDie(csv_, other);
    r = Eraser(Train(data, ""));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr("dataset_description: stored '"));
    EXPECT_THAT(r.output, HasSubstr("); use --rebuild to start it over"));
  }
  // What the directory serves did not change; nor does a --rebuild whose
  // partition the samples cannot fill.
  testing::WriteFileOrDie(csv_, text);
  r = Eraser(Train(data, "--rebuild --test-fraction 0.99"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cannot fill 4 shards of 2 slices"));
  r = Eraser(Train(data, ""));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("reusing the trained ensemble"));
}

TEST_F(TabularCli, TrainTraceAndReplay) {
  const std::string data = dir_.Child("data");
  const std::string report = dir_.Child("train.json");
  CommandResult train = Eraser(Train(data, "--json " + report));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_THAT(train.output, HasSubstr("owners from the data"));
  const nlohmann::json j = ReadJson(report);
  EXPECT_EQ(j["dataset"]["train_samples"], 288);
  EXPECT_EQ(j["dataset"]["test_samples"], 72);
  EXPECT_EQ(j["dataset"]["classes"], 2);
  EXPECT_EQ(j["config"]["samples_per_owner"], "0");
  EXPECT_GT(j["ensemble"]["hard_vote_accuracy"].get<double>(), 0.75)
      << train.output;

  // The trace draws owners and test indices from the data directory.
  const std::string trace = dir_.Child("trace.csv");
  CommandResult t = Eraser("trace --out " + trace + " --data-dir " + data +
                           " --duration 4s --inference-rate 40 "
                           "--deletion-rate 2 --target owner --seed 5");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  std::ifstream in(trace);
  std::string row;
  std::set<uint64_t> owners;
  int deletions = 0;
  while (std::getline(in, row)) {
    const std::size_t at = row.find("owner:");
    if (at == std::string::npos) continue;
    ++deletions;
    owners.insert(std::stoull(row.substr(at + 6)));
  }
  EXPECT_GT(deletions, 2);
  for (uint64_t owner : owners) {
    EXPECT_EQ((owner - 1000) % 7, 0u) << owner;  // ids as the CSV gives them
    EXPECT_LT(owner, 1000u + 60 * 7);
  }

  const std::string replay = dir_.Child("replay.json");
  CommandResult r = Eraser(
      "replay --trace " + trace + " --data-dir " + data +
      " --policies 'immediate;eraser-lazy-partial;eraser-lazy-wait' --json " +
      replay);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json rep = ReadJson(replay);
  EXPECT_THAT(rep["model"]["dataset"].get<std::string>(),
              HasSubstr("csv:" + csv_));
  ASSERT_EQ(rep["policies"].size(), 3u);
  for (const nlohmann::json& p : rep["policies"]) {
    EXPECT_EQ(p["privacy"]["soundness_violations"], 0) << p["name"];
    EXPECT_EQ(p["privacy"]["exposures"], 0) << p["name"];
    // Every answer that was not a refusal is checked against the oracle.
    EXPECT_EQ(p["privacy"]["oracle_checked"].get<int>() +
                  p["inference"]["decisions"]["rejected"].get<int>(),
              p["inference"]["requests"].get<int>())
        << p["name"];
    EXPECT_EQ(p["unlearning"]["deletions"], deletions) << p["name"];
  }

  // A trace naming a test sample the directory does not have is refused.
  const std::string far = dir_.Child("far.csv");
  testing::WriteFileOrDie(far, "time_ms,op,target\n0,infer,72\n");
  CommandResult refused = Eraser("replay --trace " + far + " --data-dir " +
                                 data + " --policies immediate --no-oracle");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output,
              HasSubstr("test index 72 is outside the test split (72"));
  // So is a deletion target it does not hold (a trace written for another
  // dataset): every policy's engine would refuse it, and the run would
  // compare policies on no deletion.
  for (const std::string target : {"sample:99999", "owner:99999"}) {
    testing::WriteFileOrDie(
        far, "time_ms,op,target\n0,infer,1\n5,delete," + target + "\n");
    refused = Eraser("replay --trace " + far + " --data-dir " + data +
                     " --policies immediate --no-oracle");
    EXPECT_EQ(refused.exit_code, 2) << refused.output;
    EXPECT_THAT(refused.output, HasSubstr("line 3: " + target + " is not in"));
  }
}

}  // namespace
}  // namespace eraser
