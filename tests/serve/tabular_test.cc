// `eraser serve` on a data directory built from a CSV export: raw records
// are encoded with the stored transform, answers carry the class name, and
// deleting an owner removes every one of their rows from every shard.
#include "testing/tabular.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "eraser/datasets/dataset.h"
#include "eraser/storage/store.h"
#include "process.h"
#include "testing/http_client.h"
#include "testing/temp_dir.h"

namespace eraser::serve {
namespace {

using eraser::testing::Http;
using eraser::testing::HttpResult;
using eraser::testing::Server;
using eraser::testing::StartServer;
using nlohmann::json;
using ::testing::AnyOf;
using ::testing::HasSubstr;

json Record() {
  return {{"user", 1000}, {"region", "south"}, {"premium", false},
          {"age", 23},    {"spend", 12.5},     {"note", "ignored"}};
}

TEST(ServeTabular, RecordsClassNamesAndOwnerDeletion) {
  eraser::testing::TempDir dir;
  const std::string csv = dir.Child("users.csv");
  eraser::testing::WriteFileOrDie(csv,
                                  eraser::testing::SyntheticUsersCsv(40, 5, 8));
  const std::string data = dir.Child("data");
  const std::string train = std::string(ERASER_BINARY) + " train --data-dir " +
                            data + " --dataset csv:" + csv + " " +
                            eraser::testing::kTabularFlags +
                            " --shards 4 --slices 2 --hidden 8 --epochs 2,2 "
                            "> " +
                            dir.Child("train.log") + " 2>&1";
  ASSERT_EQ(std::system(train.c_str()), 0)
      << eraser::testing::ReadFileOrDie(dir.Child("train.log"));

  // A user whose rows were all drawn into the test split, and one of them
  // (the stored record, docs/storage.md).
  uint64_t tested = 0;
  std::size_t tested_row = 0;
  std::string tested_bytes;
  {
    StatusOr<std::unique_ptr<storage::Store>> store =
        storage::Store::Open({data, /*create_if_missing=*/false});
    ASSERT_TRUE(store.ok()) << store.status();
    StatusOr<std::string> encoded = (*store)->GetMeta("dataset/test");
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    StatusOr<datasets::Split> test = datasets::DecodeSplit(*encoded);
    ASSERT_TRUE(test.ok()) << test.status();
    ASSERT_EQ(test->owners.size(), test->size()) << "test rows without owners";
    for (std::size_t i = 0; i < test->size() && tested == 0; ++i) {
      if ((*store)->OwnerSamples(OwnerId(test->owners[i])).status().code() ==
          StatusCode::kNotFound) {
        tested = test->owners[i];
        tested_row = i;
        tested_bytes = std::string(reinterpret_cast<const char*>(test->row(i)),
                                   test->row_bytes());
      }
    }
    ASSERT_NE(tested, 0u) << "no user only in the test split";
  }
  // Before: the row is in the files, so the check at the end can fail.
  ASSERT_NE(eraser::testing::AllFileBytes(data).find(tested_bytes),
            std::string::npos);

  Server server = StartServer(data, "eraser:lazy,partial,deadline=1h");
  ASSERT_GT(server.port, 0) << server.process->output();
  // A raw record: JSON numbers and booleans for the CSV's text.
  HttpResult r =
      Http(server.port, "POST", "/v1/infer", json{{"record", Record()}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json answer = r.json();
  EXPECT_THAT(answer["class"].get<std::string>(), AnyOf("leave", "stay"));
  // Class names are the label column's values, sorted: leave=0, stay=1.
  EXPECT_EQ(answer["label"].get<int>(), answer["class"] == "leave" ? 0 : 1);
  // The same record with the label column and string values: same answer.
  json with_label = Record();
  with_label["churn"] = "stay";
  with_label["premium"] = "FALSE";
  with_label["age"] = "23";
  HttpResult same = Http(server.port, "POST", "/v1/infer",
                         json{{"record", with_label}}.dump());
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(same.json()["label"], answer["label"]);
  // A test sample by index also carries its class name.
  HttpResult by_index =
      Http(server.port, "POST", "/v1/infer", R"({"test_index": 3})");
  ASSERT_EQ(by_index.status, 200) << by_index.body;
  EXPECT_TRUE(by_index.json().contains("class"));

  struct Bad {
    json record;
    std::string message;
  };
  json unseen = Record();
  unseen["region"] = "mars";
  json missing = Record();
  missing.erase("age");
  json extra = Record();
  extra["shoe_size"] = 44;
  json nested = Record();
  nested["spend"] = json::array({1, 2});
  json text_number = Record();
  text_number["spend"] = "lots";
  json null = Record();
  null["region"] = nullptr;
  // A column that is no feature is not read, null or not.
  json null_note = Record();
  null_note["note"] = nullptr;
  EXPECT_EQ(
      Http(server.port, "POST", "/v1/infer", json{{"record", null_note}}.dump())
          .status,
      200);
  for (const Bad& bad : std::vector<Bad>{
           {unseen, "column 'region': unseen category 'mars'"},
           {missing, "missing column 'age'"},
           {extra, "unknown column 'shoe_size'"},
           {nested, "'spend' must be a string, a number or a boolean"},
           {null, "'region' is null"},
           {text_number, "column 'spend': 'lots' is not a number"},
           {json::array(), "must be an object"}}) {
    HttpResult refused = Http(server.port, "POST", "/v1/infer",
                              json{{"record", bad.record}}.dump());
    EXPECT_EQ(refused.status, 400) << bad.message;
    EXPECT_THAT(refused.json()["error"].get<std::string>(),
                HasSubstr(bad.message));
  }

  // Forget user 1007, whose five rows lie in several shards.
  HttpResult deletion =
      Http(server.port, "POST", "/v1/deletions", R"({"owner": 1007})");
  ASSERT_EQ(deletion.status, 202) << deletion.body;
  const int samples = deletion.json()["samples"].get<int>();
  EXPECT_GT(samples, 0);
  EXPECT_LE(samples, 5);  // the rest may be in the test split
  EXPECT_EQ(
      Http(server.port, "POST", "/v1/deletions", R"({"owner": 1001})").status,
      404);  // no such user
  // A user only in the test split: their rows are erased there (they were
  // 404 `unknown owner`, and stayed).
  const std::string row =
      R"({"test_index": )" + std::to_string(tested_row) + "}";
  ASSERT_EQ(Http(server.port, "POST", "/v1/infer", row).status, 200);
  HttpResult tested_deletion =
      Http(server.port, "POST", "/v1/deletions",
           R"({"owner": )" + std::to_string(tested) + "}");
  ASSERT_EQ(tested_deletion.status, 202) << tested_deletion.body;
  EXPECT_EQ(tested_deletion.json()["samples"], 0);
  HttpResult erased = Http(server.port, "POST", "/v1/infer", row);
  EXPECT_EQ(erased.status, 400) << erased.body;
  EXPECT_THAT(erased.body, HasSubstr("was erased"));
  ASSERT_EQ(Http(server.port, "POST", "/v1/drain").status, 200);
  server.process->Signal(SIGTERM);
  ASSERT_EQ(server.process->Wait(), 0) << server.process->output();
  EXPECT_EQ(eraser::testing::AllFileBytes(data).find(tested_bytes),
            std::string::npos)
      << "user " << tested << "'s test row is still on disk";

  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({data, /*create_if_missing=*/false});
  ASSERT_TRUE(store.ok()) << store.status();
  StatusOr<std::vector<storage::SampleLocation>> owned =
      (*store)->OwnerSamples(OwnerId(1007));
  ASSERT_TRUE(owned.ok());
  ASSERT_EQ(owned->size(), static_cast<std::size_t>(samples));
  std::set<SampleId> ids;
  std::set<ShardId> shards;
  for (const storage::SampleLocation& s : *owned) {
    EXPECT_TRUE(s.erased) << "sample " << s.id;
    ids.insert(s.id);
    shards.insert(s.shard);
  }
  for (uint32_t k = 0; k < 4; ++k) {
    ASSERT_TRUE((*store)
                    ->ScanShard(ShardId(k), 0, 2,
                                [&](const storage::SampleView& v) {
                                  EXPECT_EQ(ids.count(v.id), 0u)
                                      << "sample " << v.id << " still in "
                                      << "shard " << k;
                                  EXPECT_NE(v.owner, OwnerId(1007));
                                  return OkStatus();
                                })
                    .ok());
  }
  EXPECT_GT(shards.size(), 1u);  // the owner spans shards
  std::printf("owner 1007: %d samples erased from %zu shards\n", samples,
              shards.size());
}

}  // namespace
}  // namespace eraser::serve
