// An owner's rows in the test split: no model holds them, but the store
// keeps them (for evaluation, `test_index` and replay). A deletion of the
// owner erases them as well, from the store's files and from the memory of
// every engine sharing the store, before it is acknowledged; an owner whose
// rows are all there can be deleted (it was 404 `unknown owner`).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine_fixture.h"
#include "eraser/datasets/dataset.h"
#include "testing/postgres.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace eraser::engine {
namespace {

constexpr uint64_t kMixedOwner = 7;  // 4 training rows, test rows 30..32
constexpr std::size_t kDim = 8;
// Owner 1000's test rows.
const std::vector<std::size_t> kOnlyTestRows = {0, 10, 20};
const std::vector<std::size_t> kMixedRows = {30, 31, 32};

// Row i's feature bytes, to look for in the store's files.
std::string Row(const datasets::Split& s, std::size_t i) {
  return std::string(reinterpret_cast<const char*>(s.row(i)), s.row_bytes());
}

using testing::OwnersDataset;
using testing::OwnersOptions;

std::unique_ptr<Engine> OpenOrDie(const EngineOptions& options) {
  StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(options);
  EXPECT_TRUE(opened.ok()) << opened.status();
  return opened.ok() ? std::move(opened).value() : nullptr;
}

bool Erased(const Engine& engine, std::size_t i) {
  const StatusOr<std::vector<float>> row = engine.TestSample(i);
  return row.status().code() == StatusCode::kNotFound &&
         row.status().message().find("erased") != std::string::npos;
}

TEST(TestRows, AnOwnerOnlyInTheTestSplitIsDeletedAndErased) {
  eraser::testing::TempDir dir;
  const std::string path = dir.Child("store");
  const datasets::Dataset data = OwnersDataset();
  {
    std::unique_ptr<Engine> engine = OpenOrDie(OwnersOptions(path, &data));
    ASSERT_NE(engine, nullptr);
    // Before: the rows are in the files, so the checks below can fail.
    const std::string before = eraser::testing::AllFileBytes(path);
    for (std::size_t i : kOnlyTestRows) {
      ASSERT_NE(before.find(Row(data.test, i)), std::string::npos) << i;
    }
    const StatusOr<DeletionSeq> seq =
        engine->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(1000)));
    ASSERT_TRUE(seq.ok()) << seq.status();
    // No model held them: applied at once.
    const StatusOr<DeletionInfo> info = engine->GetDeletion(*seq);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->state, storage::DeletionState::kApplied);
    for (std::size_t i : kOnlyTestRows) EXPECT_TRUE(Erased(*engine, i)) << i;
    const StatusOr<std::vector<float>> kept = engine->TestSample(1);
    ASSERT_TRUE(kept.ok()) << kept.status();
    std::vector<float> expected(kDim);
    data.test.Decode(1, expected.data());
    EXPECT_EQ(*kept, expected);
    EXPECT_EQ(engine->TestSample(data.test.size()).status().code(),
              StatusCode::kNotFound);
    const std::string after = eraser::testing::AllFileBytes(path);
    for (std::size_t i : kOnlyTestRows) {
      EXPECT_EQ(after.find(Row(data.test, i)), std::string::npos)
          << "test row " << i << " still on disk";
    }
    EXPECT_NE(after.find(Row(data.test, 1)), std::string::npos);

    // An owner with training rows too: its test rows go with them.
    ASSERT_TRUE(engine
                    ->RequestDeletion(
                        storage::DeletionTarget::Owner(OwnerId(kMixedOwner)))
                    .ok());
    for (std::size_t i : kMixedRows) EXPECT_TRUE(Erased(*engine, i)) << i;
    EXPECT_EQ(
        engine->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(5000)))
            .status()
            .code(),
        StatusCode::kNotFound);
    // A repeat (a client's retry) is answered with it: nothing is left to
    // erase, and nothing is written.
    const StatusOr<DeletionSeq> again =
        engine->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(1000)));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *seq);
    ASSERT_TRUE(engine->Drain().ok());
    engine->Close();
  }
  // Reopened, the store says the same; evaluations leave the rows out.
  std::unique_ptr<Engine> engine = OpenOrDie(OwnersOptions(path, nullptr));
  ASSERT_NE(engine, nullptr);
  for (std::size_t i : kOnlyTestRows) EXPECT_TRUE(Erased(*engine, i)) << i;
  for (std::size_t i : kMixedRows) EXPECT_TRUE(Erased(*engine, i)) << i;
  EXPECT_EQ(engine->dataset().test.WithoutErased().size(),
            data.test.size() - kOnlyTestRows.size() - kMixedRows.size());
  EXPECT_TRUE(engine->TestSample(1).ok());
  engine->Close();
  const std::string closed = eraser::testing::AllFileBytes(path);
  for (std::size_t i : kMixedRows) {
    EXPECT_EQ(closed.find(Row(data.test, i)), std::string::npos)
        << "test row " << i << " still on disk";
  }
}

// On PostgreSQL: the rows leave the database's files (not its write-ahead
// log, docs/scale-out.md), and another replica stops serving them as soon
// as it registers the deletion.
TEST(TestRows, OnPostgresTheFilesAndTheOtherReplicasLoseThem) {
  eraser::testing::PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  const std::string files = pg.DatabaseDir(name);
  const datasets::Dataset data = OwnersDataset();
  std::unique_ptr<Engine> a = OpenOrDie(OwnersOptions(url, &data));
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Engine> b = OpenOrDie(OwnersOptions(url, nullptr));
  ASSERT_NE(b, nullptr);
  pg.Sql(name, "CHECKPOINT");
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string before = eraser::testing::AllFileBytes(files);
  for (std::size_t i : kOnlyTestRows) {
    ASSERT_NE(before.find(Row(data.test, i)), std::string::npos) << i;
  }
  ASSERT_TRUE(b->TestSample(0).ok());

  ASSERT_TRUE(
      a->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(1000))).ok());
  pg.Sql(name, "CHECKPOINT");
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string after = eraser::testing::AllFileBytes(files);
  for (std::size_t i : kOnlyTestRows) {
    EXPECT_EQ(after.find(Row(data.test, i)), std::string::npos)
        << "test row " << i << " still in a relation file";
  }
  EXPECT_NE(after.find(Row(data.test, 1)), std::string::npos);
  EXPECT_TRUE(eraser::testing::Eventually(
      [&] { return Erased(*b, 0) && Erased(*b, 10) && Erased(*b, 20); },
      eraser::testing::kPatience, std::chrono::milliseconds(20)));
  EXPECT_TRUE(b->TestSample(1).ok());
  b->Close();
  a->Close();
}

// When the rows cannot be erased, the deletion is not taken: nothing is
// acknowledged or recorded, and the client's retry erases them.
TEST(TestRows, AFailedErasureTakesNoDeletion) {
  eraser::testing::PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  const datasets::Dataset data = OwnersDataset();
  std::unique_ptr<Engine> engine = OpenOrDie(OwnersOptions(url, &data));
  ASSERT_NE(engine, nullptr);
  pg.Sql(name,
         "CREATE FUNCTION eraser_test_refuse() RETURNS trigger AS $$ BEGIN "
         "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql; "
         "CREATE TRIGGER eraser_test_refuse BEFORE UPDATE ON eraser_meta "
         "FOR EACH ROW EXECUTE FUNCTION eraser_test_refuse()");
  ASSERT_TRUE(pg.ok()) << pg.error();
  const auto owner = storage::DeletionTarget::Owner(OwnerId(1001));
  const StatusOr<DeletionSeq> refused = engine->RequestDeletion(owner);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(pg.Sql(name, "SELECT count(*) FROM eraser_deletions"), "0\n");
  EXPECT_TRUE(engine->TestSample(1).ok());
  pg.Sql(name, "DROP TRIGGER eraser_test_refuse ON eraser_meta");
  ASSERT_TRUE(pg.ok()) << pg.error();
  const StatusOr<DeletionSeq> taken = engine->RequestDeletion(owner);
  EXPECT_TRUE(taken.ok()) << taken.status();
  EXPECT_TRUE(Erased(*engine, 1));
  engine->Close();
}

// A directory built before the test rows' owners were kept: said at open.
TEST(TestRows, ATestSplitKeptWithoutItsOwnersIsNamedAtOpen) {
  eraser::testing::TempDir dir;
  const std::string path = dir.Child("store");
  datasets::Dataset data = OwnersDataset();
  data.test.owners.clear();
  ::testing::internal::CaptureStderr();
  std::unique_ptr<Engine> engine = OpenOrDie(OwnersOptions(path, &data));
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(engine, nullptr);
  EXPECT_NE(said.find("without the rows' owners"), std::string::npos) << said;
  // The owners' deletions go on, for their training rows.
  EXPECT_TRUE(
      engine->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(3))).ok());
  EXPECT_EQ(
      engine->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(1000)))
          .status()
          .code(),
      StatusCode::kNotFound);
  engine->Close();
}

}  // namespace
}  // namespace eraser::engine
