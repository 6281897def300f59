// `eraser train` end to end on a small configuration: the JSON contract,
// reuse of an existing directory, and refusal of a mismatched one.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "run_eraser.h"
#include "testing/temp_dir.h"

namespace eraser {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using testing::CommandResult;
using testing::Eraser;
using testing::ReadJson;

constexpr char kSmall[] =
    "--shards 2 --slices 2 --hidden 8 --epochs 1,1 --seed 3";

TEST(TrainCommand, WritesTheReportAndReusesTheDirectory) {
  testing::TempDir dir;
  const std::string data = dir.Child("data");
  const std::string json = dir.Child("report.json");
  CommandResult first =
      Eraser("train --data-dir " + data + " " + kSmall + " --json " + json);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("Data directory " + data + ": new"));
  nlohmann::json report = ReadJson(json);
  ASSERT_TRUE(report.is_object()) << first.output;
  const double hard = report["ensemble"]["hard_vote_accuracy"].get<double>();
  EXPECT_GT(hard, 0.5);
  EXPECT_LE(hard, 1.0);
  EXPECT_GT(report["ensemble"]["soft_vote_accuracy"].get<double>(), 0.5);
  ASSERT_EQ(report["shards"].size(), 2u);
  for (const auto& shard : report["shards"]) {
    EXPECT_EQ(shard["samples"].get<int>(), 30000);
    EXPECT_GT(shard["accuracy"].get<double>(), 0.5);
    // Stages on 1/2 and 2/2 of 30,000 samples, one epoch each.
    EXPECT_EQ(shard["cost"]["sample_epochs"].get<int>(), 45000);
  }
  EXPECT_EQ(report["cost"]["sample_epochs"].get<int>(), 90000);
  EXPECT_GT(report["cost"]["cpu_seconds"].get<double>(), 0.0);
  EXPECT_GT(report["cost"]["wall_seconds"].get<double>(), 0.0);
  EXPECT_FALSE(report["reused"].get<bool>());

  CommandResult second =
      Eraser("train --data-dir " + data + " " + kSmall + " --json " + json);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("reusing the trained ensemble"));
  nlohmann::json again = ReadJson(json);
  EXPECT_TRUE(again["reused"].get<bool>());
  EXPECT_EQ(again["ensemble"]["hard_vote_accuracy"].get<double>(), hard);

  CommandResult mismatch =
      Eraser("train --data-dir " + data +
             " --shards 3 --slices 2 --hidden 8 --epochs 1,1");
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_THAT(mismatch.output, HasSubstr("shards: stored '2', requested '3'"));
  EXPECT_THAT(mismatch.output, HasSubstr("--rebuild"));
}

TEST(TrainCommand, BadFlagsAreUsageErrors) {
  testing::TempDir dir;
  EXPECT_EQ(Eraser("train").exit_code, 2);  // --data-dir is required
  EXPECT_EQ(
      Eraser("train --data-dir " + dir.path() + " --model resnet").exit_code,
      2);
  CommandResult epochs =
      Eraser("train --data-dir " + dir.path() + " --epochs 1,x");
  EXPECT_EQ(epochs.exit_code, 2);
  EXPECT_THAT(epochs.output, HasSubstr("--epochs"));
  CommandResult stages =
      Eraser("train --data-dir " + dir.path() + " --epochs 1,2");
  EXPECT_EQ(stages.exit_code, 2);
  EXPECT_THAT(stages.output, HasSubstr("epochs lists 2 stages"));
}

TEST(TrainCommand, RebuildRefusesToDeleteForeignDirectories) {
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Child("precious.txt"), "keep me");
  CommandResult run =
      Eraser("train --data-dir " + dir.path() + " " + kSmall + " --rebuild");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("not an eraser data directory"));
  EXPECT_EQ(testing::ReadFileOrDie(dir.Child("precious.txt")), "keep me");
  // RocksDB's two marker files beside it do not make it one.
  testing::WriteFileOrDie(dir.Child("CURRENT"), "MANIFEST-000001\n");
  testing::WriteFileOrDie(dir.Child("IDENTITY"), "x\n");
  run = Eraser("train --data-dir " + dir.path() + " " + kSmall + " --rebuild");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("it holds precious.txt"));
  EXPECT_EQ(testing::ReadFileOrDie(dir.Child("precious.txt")), "keep me");
}

// A directory of someone else's files (a --data-dir mistyped as ".", say)
// was trained into, RocksDB's files mixed with them; --rebuild then
// refused to delete it.
TEST(TrainCommand, ADirectoryOfOtherFilesIsNotTrainedInto) {
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Child("readme.txt"), "hi");
  CommandResult run = Eraser("train --data-dir " + dir.path() + " " + kSmall);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("holds readme.txt and no eraser data "
                                    "directory: give a new or empty"));
  // --rebuild would refuse it too: not suggested.
  EXPECT_THAT(run.output, Not(HasSubstr("--rebuild")));
  std::size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
  // A volume's own entries are no one's data: a fresh ext4 volume's
  // lost+found, hidden snapshot directories.
  testing::TempDir volume;
  std::filesystem::create_directory(volume.Child("lost+found"));
  std::filesystem::create_directory(volume.Child(".snapshot"));
  run = Eraser("train --data-dir " + volume.path() + " " + kSmall);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  // --rebuild starts it over and leaves them.
  run =
      Eraser("train --data-dir " + volume.path() + " " + kSmall + " --rebuild");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr(": new"));
  EXPECT_TRUE(std::filesystem::is_directory(volume.Child("lost+found")));
  EXPECT_TRUE(std::filesystem::is_directory(volume.Child(".snapshot")));
}

// An output file that cannot be written was found only after the work it
// was to hold: the training ran to the end, then failed, its directory
// left behind.
TEST(TrainCommand, AnOutputFileThatCannotBeWrittenIsRefusedFirst) {
  testing::TempDir dir;
  const std::string data = dir.Child("data");
  CommandResult run = Eraser("train --data-dir " + data + " " + kSmall +
                             " --json " + dir.Child("missing/train.json"));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("/missing does not exist"));
  EXPECT_FALSE(std::filesystem::exists(data));
  run = Eraser("trace --out " + dir.path() + " --duration 1s");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("is a directory"));
  run = Eraser("replay --trace " + dir.Child("t.csv") + " --json " +
               dir.Child("missing/r.json"));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--json"));
}

// Through a symlink, --rebuild removed the link and built a new directory
// in its place, leaving the store it named as it was.
TEST(TrainCommand, RebuildThroughASymlinkRebuildsTheStoreItNames) {
  testing::TempDir dir;
  const std::string store = dir.Child("store");
  const std::string link = dir.Child("link");
  std::filesystem::create_directory(store);
  std::filesystem::create_directory_symlink(store, link);
  CommandResult first = Eraser("train --data-dir " + link + " " + kSmall);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  CommandResult again =
      Eraser("train --data-dir " + link + " " + kSmall + " --rebuild");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr(": new"));
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_TRUE(std::filesystem::exists(store + "/CURRENT"));
}

// A server holds RocksDB's lock on the directory's LOCK file (an fcntl
// lock, taken here as RocksDB takes it): --rebuild deleted the directory
// under it, and the server went on acknowledging deletions into files that
// were gone. Without --rebuild, the refusal no longer suggests it.
TEST(TrainCommand, RebuildRefusesADirectoryAnotherProcessHolds) {
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Child("CURRENT"), "MANIFEST-000001\n");
  testing::WriteFileOrDie(dir.Child("IDENTITY"), "x\n");
  testing::WriteFileOrDie(dir.Child("LOCK"), "");
  const int fd = ::open(dir.Child("LOCK").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_SETLK, &lock), 0);
  CommandResult run =
      Eraser("train --data-dir " + dir.path() + " " + kSmall + " --rebuild");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("open in another store"));
  EXPECT_EQ(testing::ReadFileOrDie(dir.Child("IDENTITY")), "x\n");
  run = Eraser("train --data-dir " + dir.path() + " " + kSmall);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("another eraser process"));
  EXPECT_THAT(run.output, Not(HasSubstr("--rebuild")));
  // A replay of the ensemble in it says so at once, without first
  // describing (and loading) the default dataset's ensemble.
  const std::string trace = dir.Child("trace.csv");
  testing::WriteFileOrDie(trace, "time_ms,op,target\n0,infer,0\n");
  run = Eraser("replay --data-dir " + dir.path() + " --trace " + trace);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("another eraser process"));
  EXPECT_THAT(run.output, Not(HasSubstr("Ensemble")));
  ::close(fd);
}

}  // namespace
}  // namespace eraser
