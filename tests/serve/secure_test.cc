// The server as an operator exposes it, over real loopback sockets: bearer
// tokens and their scopes (401, 403, what each scope may read), the Open
// Inference Protocol routes, TLS, and the hardened HTTP layer (connection
// cap, header limit, slow clients).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include "../engine/engine_fixture.h"
#include "eraser/certify/vote.h"
#include "eraser/scheduler/policy.h"
#include "eraser/serve/api.h"
#include "eraser/serve/auth.h"
#include "eraser/serve/http_server.h"
#include "served.h"
#include "testing/http_client.h"

namespace eraser::serve {
namespace {

using eraser::testing::Headers;
using eraser::testing::Http;
using eraser::testing::HttpConnection;
using eraser::testing::HttpResult;
using nlohmann::json;
using ::testing::HasSubstr;

Headers Bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

std::string Metric(engine::Engine& engine, const std::string& line) {
  const std::string text = engine.metrics()->TextExposition();
  const std::size_t at = text.find(line + " ");
  if (at == std::string::npos) return "";
  const std::size_t end = text.find('\n', at);
  return text.substr(at + line.size() + 1, end - at - line.size() - 1);
}

using testing::Served;

// ---- access control -------------------------------------------------------

TEST(TokenFile, StoresHashesOnlyAndNamesBadLines) {
  StatusOr<std::string> token = NewToken();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 64u);
  const std::string line = HashToken(*token) + " infer,delete:owner:7 app\n";
  StatusOr<TokenFile> file = TokenFile::Parse("# tokens\n\n" + line, "t");
  ASSERT_TRUE(file.ok()) << file.status();
  const Principal* p = file->Find(*token);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "app");
  EXPECT_TRUE(p->MayInfer());
  EXPECT_TRUE(p->MayDeleteOwner(7));
  EXPECT_FALSE(p->MayDeleteOwner(8));
  EXPECT_FALSE(p->MayDeleteSample());
  EXPECT_EQ(file->Find(*token + "x"), nullptr);
  EXPECT_EQ(file->Find(""), nullptr);
  // A token in plain text is refused, as are unknown scopes and repeats.
  EXPECT_THAT(TokenFile::Parse(*token + " infer\n", "t").status().message(),
              HasSubstr("t:1: the token must be stored as sha256:"));
  EXPECT_THAT(
      TokenFile::Parse(HashToken("a") + " root\n", "t").status().message(),
      HasSubstr("unknown scope 'root'"));
  EXPECT_THAT(TokenFile::Parse(line + line, "t").status().message(),
              HasSubstr("t:2: the same token appears twice"));
  // A file without a token would refuse every request but health.
  EXPECT_THAT(TokenFile::Parse("# none yet\n\n", "t").status().message(),
              HasSubstr("t holds no token"));
}

TEST_F(Served, EveryRouteButHealthNeedsAToken) {
  const std::string infer = AddToken("infer", "reader");
  Start(WithTokens());
  EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(Http(port_, "GET", "/readyz").status, 200);
  EXPECT_EQ(Http(port_, "GET", "/v2/health/live").status, 200);
  EXPECT_EQ(Http(port_, "GET", "/v2/health/ready").status, 200);
  const std::string body = json{{"test_index", 1}}.dump();
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/infer"},
           {"POST", "/v1/deletions"},
           {"GET", "/v1/deletions/1"},
           {"POST", "/v1/drain"},
           {"GET", "/v2"},
           {"GET", "/v2/models/eraser"},
           {"GET", "/v2/models/eraser/config"},
           {"GET", "/v2/models/stats"},
           {"POST", "/v2/models/eraser/infer"}}) {
    HttpResult none = Http(port_, method, path, body);
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer realm=\"eraser\"");
    EXPECT_EQ(Http(port_, method, path, body, Bearer("not-a-token")).status,
              401)
        << path;
  }
  EXPECT_EQ(
      Metric(*engine_, "eraser_http_refused_total{reason=\"unauthenticated\"}"),
      "18");
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", body, Bearer(infer)).status, 200);
}

TEST_F(Served, ScopesDecideWhatATokenMayDoAndRead) {
  const std::string infer = AddToken("infer", "reader");
  const std::string owner7 = AddToken("delete:owner:7", "owner-7");
  const std::string deleter = AddToken("delete", "deleter");
  const std::string admin = AddToken("admin", "ops");
  Start(WithTokens());
  auto post = [&](const std::string& path, const json& body,
                  const std::string& token) {
    return Http(port_, "POST", path, body.dump(), Bearer(token));
  };
  // Inference: infer and admin; an infer token sees no certificate detail.
  HttpResult answer = post("/v1/infer", {{"test_index", 3}}, infer);
  ASSERT_EQ(answer.status, 200) << answer.body;
  for (const char* hidden :
       {"affected_shards", "deletion_watermark", "model_versions", "margin"}) {
    EXPECT_FALSE(answer.json().contains(hidden)) << hidden;
  }
  EXPECT_TRUE(answer.json().contains("label"));
  EXPECT_TRUE(answer.json().contains("decision"));
  EXPECT_TRUE(answer.json().contains("latency_ms"));
  HttpResult detailed = post("/v1/infer", {{"test_index", 3}}, admin);
  ASSERT_EQ(detailed.status, 200);
  EXPECT_TRUE(detailed.json().contains("affected_shards"));
  EXPECT_TRUE(detailed.json().contains("deletion_watermark"));
  EXPECT_EQ(post("/v1/infer", {{"test_index", 3}}, owner7).status, 403);
  // The model's configuration and statistics: as its metadata, to tokens
  // that may infer.
  for (const char* path : {"/v2/models/eraser/config",
                           "/v2/models/eraser/stats", "/v2/models/stats"}) {
    EXPECT_EQ(Http(port_, "GET", path, "", Bearer(infer)).status, 200) << path;
    EXPECT_EQ(Http(port_, "GET", path, "", Bearer(owner7)).status, 403) << path;
  }

  // Deletion: an owner token deletes only its owner.
  EXPECT_EQ(post("/v1/deletions", {{"owner", 8}}, infer).status, 403);
  EXPECT_EQ(post("/v1/deletions", {{"owner", 8}}, owner7).status, 403);
  EXPECT_EQ(post("/v1/deletions", {{"sample", 8}}, owner7).status, 403);
  HttpResult own = post("/v1/deletions", {{"owner", 7}}, owner7);
  ASSERT_EQ(own.status, 202) << own.body;
  HttpResult other = post("/v1/deletions", {{"owner", 9}}, deleter);
  ASSERT_EQ(other.status, 202) << other.body;
  const std::string own_seq = std::to_string(own.json()["seq"].get<int>());
  const std::string other_seq = std::to_string(other.json()["seq"].get<int>());
  // Reading: the scope that could have made it; other deletions, and
  // sequence numbers never issued, read alike: 404.
  EXPECT_EQ(
      Http(port_, "GET", "/v1/deletions/" + own_seq, "", Bearer(owner7)).status,
      200);
  HttpResult hidden =
      Http(port_, "GET", "/v1/deletions/" + other_seq, "", Bearer(owner7));
  HttpResult absent =
      Http(port_, "GET", "/v1/deletions/999", "", Bearer(owner7));
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(absent.status, 404);
  EXPECT_THAT(hidden.body, HasSubstr("no deletion " + other_seq));
  EXPECT_EQ(
      Http(port_, "GET", "/v1/deletions/" + own_seq, "", Bearer(infer)).status,
      403);
  EXPECT_EQ(Http(port_, "GET", "/v1/deletions/" + own_seq, "", Bearer(deleter))
                .status,
            200);
  // Drain: admin only.
  EXPECT_EQ(post("/v1/drain", json::object(), deleter).status, 403);
  EXPECT_EQ(post("/v1/drain", json::object(), admin).status, 200);
  EXPECT_EQ(Metric(*engine_, "eraser_http_refused_total{reason=\"forbidden\"}"),
            "9");
}

TEST_F(Served, AReloadReplacesTheTokens) {
  const std::string old_token = AddToken("infer", "old");
  Start(WithTokens());
  const std::string body = json{{"test_index", 1}}.dump();
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", body, Bearer(old_token)).status,
            200);
  std::remove(token_file_.c_str());
  const std::string new_token = AddToken("infer", "new");
  // A broken file leaves the tokens in force, and so does one without a
  // token (being rewritten, or the wrong file), which locked everyone out.
  std::ofstream(token_file_, std::ios::app) << "garbage\n";
  EXPECT_FALSE(auth_->Reload().ok());
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", body, Bearer(old_token)).status,
            200);
  std::ofstream(token_file_, std::ios::trunc) << "# rewritten\n";
  const Status empty = auth_->Reload();
  EXPECT_THAT(empty.message(), HasSubstr("holds no token"));
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", body, Bearer(old_token)).status,
            200);
  std::remove(token_file_.c_str());
  std::ofstream(token_file_) << HashToken(new_token) << " infer new\n";
  ASSERT_TRUE(auth_->Reload().ok());
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", body, Bearer(old_token)).status,
            401);
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", body, Bearer(new_token)).status,
            200);
}

// ---- the Open Inference Protocol -------------------------------------------

json Tensor(const std::string& datatype, std::vector<std::size_t> rows,
            bool raw_pixels) {
  const datasets::Split& test = engine::testing::GetTemplate().data.test;
  json data = json::array();
  for (std::size_t i : rows) {
    if (raw_pixels) {
      for (std::size_t f = 0; f < test.row_bytes(); ++f) {
        data.push_back(test.row(i)[f]);
      }
    } else {
      for (float v : engine::testing::Input(i)) data.push_back(v);
    }
  }
  return {{"name", "input"},
          {"datatype", datatype},
          {"shape", {rows.size(), 28, 28}},
          {"data", data}};
}

int32_t Plurality(std::size_t i) {
  const auto& votes = engine::testing::GetTemplate().votes[i];
  return certify::PluralityVote(votes.data(), votes.size(), 10);
}

TEST_F(Served, OpenInferenceProtocolMetadataAndHealth) {
  ApiOptions api;
  api.model_name = "fashion";
  Start(api);
  HttpResult live = Http(port_, "GET", "/v2/health/live");
  EXPECT_EQ(live.status, 200);
  EXPECT_TRUE(live.body.empty());
  EXPECT_EQ(Http(port_, "GET", "/v2/health/ready").status, 200);
  HttpResult server = Http(port_, "GET", "/v2");
  ASSERT_EQ(server.status, 200);
  EXPECT_EQ(server.json()["name"], "eraser");
  EXPECT_TRUE(server.json().contains("version"));
  EXPECT_TRUE(server.json()["extensions"].is_array());
  HttpResult model = Http(port_, "GET", "/v2/models/fashion");
  ASSERT_EQ(model.status, 200) << model.body;
  const json m = model.json();
  EXPECT_EQ(m["name"], "fashion");
  EXPECT_EQ(m["inputs"][0]["shape"], json({-1, 28, 28}));
  EXPECT_EQ(m["inputs"][0]["datatype"], "UINT8");
  EXPECT_EQ(m["outputs"][0]["name"], "label");
  EXPECT_EQ(m["outputs"][0]["datatype"], "INT64");
  EXPECT_EQ(Http(port_, "GET", "/v2/models/fashion/ready").status, 200);
  EXPECT_EQ(Http(port_, "GET", "/v2/models/eraser").status, 404);
  EXPECT_EQ(Http(port_, "GET", "/v2/models/eraser/ready").status, 404);
  EXPECT_EQ(Http(port_, "POST", "/v2/models/fashion").status, 405);
}

TEST_F(Served, OpenInferenceProtocolModelConfiguration) {
  ApiOptions api;
  api.model_name = "fashion";
  Start(api);
  const json extensions = Http(port_, "GET", "/v2").json()["extensions"];
  for (const char* e :
       {"binary_tensor_data", "model_configuration", "statistics"}) {
    EXPECT_NE(std::find(extensions.begin(), extensions.end(), e),
              extensions.end())
        << e;
  }
  HttpResult r = Http(port_, "GET", "/v2/models/fashion/config");
  ASSERT_EQ(r.status, 200) << r.body;
  const json c = r.json();
  EXPECT_EQ(c["name"], "fashion");
  EXPECT_EQ(c["platform"], "eraser_sisa");
  // Rows per request; dims leave the batch dimension out.
  EXPECT_EQ(c["max_batch_size"], 1024);
  ASSERT_EQ(c["input"].size(), 1u);
  EXPECT_EQ(c["input"][0]["name"], "input");
  EXPECT_EQ(c["input"][0]["data_type"], "TYPE_UINT8");
  EXPECT_EQ(c["input"][0]["dims"], json({28, 28}));
  std::map<std::string, json> outputs;
  for (const json& o : c["output"]) outputs[o["name"]] = o;
  EXPECT_EQ(outputs["label"]["data_type"], "TYPE_INT64");
  EXPECT_EQ(outputs["decision"]["data_type"], "TYPE_STRING");
  EXPECT_EQ(outputs["class"]["data_type"], "TYPE_STRING");
  EXPECT_EQ(outputs["margin"]["data_type"], "TYPE_INT32");
  EXPECT_EQ(outputs["label"]["dims"], json({1}));
  EXPECT_EQ(outputs["label"]["reshape"]["shape"], json::array());
  // The engine's batching, as Triton's dynamic batcher would say it.
  const engine::InferenceOptions& batching = engine_->inference_options();
  EXPECT_EQ(c["dynamic_batching"]["max_queue_delay_microseconds"],
            std::chrono::duration_cast<std::chrono::microseconds>(
                batching.max_queue_delay)
                .count());
  EXPECT_EQ(c["dynamic_batching"]["preferred_batch_size"],
            json({batching.max_batch_size}));
  EXPECT_EQ(c["instance_group"][0]["count"], batching.threads);
  EXPECT_EQ(c["parameters"]["policy"]["string_value"], engine_->policy());
  HttpResult versioned =
      Http(port_, "GET", "/v2/models/fashion/versions/1/config");
  ASSERT_EQ(versioned.status, 200);
  EXPECT_EQ(versioned.json(), c);
  EXPECT_EQ(Http(port_, "GET", "/v2/models/eraser/config").status, 404);
  EXPECT_EQ(Http(port_, "GET", "/v2/models/fashion/versions/2/config").status,
            404);
  EXPECT_EQ(Http(port_, "POST", "/v2/models/fashion/config").status, 405);
}

TEST_F(Served, OpenInferenceProtocolStatisticsCountEveryInferenceRequest) {
  Start();
  auto stats = [&](const std::string& path) {
    HttpResult r = Http(port_, "GET", path);
    EXPECT_EQ(r.status, 200) << r.body;
    const json all = r.json();
    EXPECT_EQ(all["model_stats"].size(), 1u);
    return all["model_stats"][0];
  };
  json before = stats("/v2/models/eraser/stats");
  EXPECT_EQ(before["name"], "eraser");
  EXPECT_EQ(before["version"], "1");
  EXPECT_EQ(before["inference_count"], 0);
  EXPECT_EQ(before["last_inference"], 0);
  EXPECT_EQ(before["inference_stats"]["success"]["count"], 0);
  EXPECT_EQ(before["inference_stats"]["fail"]["count"], 0);

  const auto ms_now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t first = ms_now();
  // Two requests answered (three rows over the protocol, one over /v1),
  // two failed (a bad tensor, a body that is not JSON).
  json request = {{"inputs", {Tensor("FP32", {0, 5, 9}, false)}}};
  ASSERT_EQ(
      Http(port_, "POST", "/v2/models/eraser/infer", request.dump()).status,
      200);
  ASSERT_EQ(
      Http(port_, "POST", "/v1/infer", json{{"test_index", 4}}.dump()).status,
      200);
  request["inputs"][0]["shape"] = {3, 28, 27};
  ASSERT_EQ(
      Http(port_, "POST", "/v2/models/eraser/infer", request.dump()).status,
      400);
  ASSERT_EQ(Http(port_, "POST", "/v1/infer", "{").status, 400);
  const int64_t last = ms_now();

  const json s = stats("/v2/models/eraser/stats");
  const json& is = s["inference_stats"];
  EXPECT_EQ(s["inference_count"], 4);
  EXPECT_EQ(is["success"]["count"], 2);
  EXPECT_EQ(is["fail"]["count"], 2);
  for (const char* phase :
       {"queue", "compute_input", "compute_infer", "compute_output"}) {
    EXPECT_EQ(is[phase]["count"], 2) << phase;
    // Each phase is a part of the requests' time in the server.
    EXPECT_LE(is[phase]["ns"].get<uint64_t>(),
              is["success"]["ns"].get<uint64_t>())
        << phase;
  }
  EXPECT_GT(is["compute_infer"]["ns"].get<uint64_t>(), 0u);
  EXPECT_GT(is["fail"]["ns"].get<uint64_t>(), 0u);
  EXPECT_GE(s["last_inference"].get<int64_t>(), first);
  EXPECT_LE(s["last_inference"].get<int64_t>(), last);
  // Batches the engine evaluated: at least one, at most one per row.
  EXPECT_EQ(s["execution_count"], engine_->Stats().executions);
  EXPECT_GE(s["execution_count"].get<uint64_t>(), 1u);
  EXPECT_LE(s["execution_count"].get<uint64_t>(), 4u);
  // Every model's statistics (there is one), and the versioned route.
  EXPECT_EQ(stats("/v2/models/stats"), s);
  EXPECT_EQ(stats("/v2/models/eraser/versions/1/stats"), s);
  EXPECT_EQ(Http(port_, "GET", "/v2/models/other/stats").status, 404);
  EXPECT_EQ(Http(port_, "POST", "/v2/models/stats").status, 405);
}

// parameters.timeout (microseconds) bounds how long a row may wait parked
// for unlearning: the row gets its fallback answer then, where a request
// without one waits --max-wait (an hour here).
TEST_F(Served, OpenInferenceProtocolTimeoutBoundsTheWait) {
  Start({}, {}, [](engine::EngineOptions* o) {
    StatusOr<scheduler::Policy> wait =
        scheduler::ParsePolicy("eraser:lazy,wait,deadline=1h");
    ASSERT_TRUE(wait.ok());
    o->policy = *wait;
    o->inference.max_wait = std::chrono::hours(1);
    // Nothing is ever unlearned: a parked request can only fall back.
    o->testing.retrain_fault = [](ShardId) {
      return InternalError("injected fault");
    };
  });
  const std::vector<std::size_t> unanimous =
      engine::testing::InputsWithAgreement(4);
  ASSERT_FALSE(unanimous.empty());
  const std::size_t row = unanimous[0];
  for (uint32_t shard : {0u, 1u, 2u}) {
    ASSERT_TRUE(engine_
                    ->RequestDeletion(storage::DeletionTarget::Sample(
                        engine::testing::SampleIn(shard, 0)))
                    .ok());
  }
  // Three of four shards affected: one vote cannot certify; `wait` parks.
  const json untimed = {{"inputs", {Tensor("FP32", {row}, false)}}};
  HttpResult waited;
  std::thread waiting([&] {
    waited = Http(port_, "POST", "/v2/models/eraser/infer", untimed.dump());
  });
  ASSERT_TRUE(eraser::testing::Eventually(
      [&] { return engine_->Stats().parked == 1; }));
  json timed = untimed;
  timed["parameters"] = {{"timeout", 200000}};
  HttpResult r = Http(port_, "POST", "/v2/models/eraser/infer", timed.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json answer = r.json();
  std::map<std::string, json> outputs;
  for (const json& o : answer["outputs"]) outputs[o["name"]] = o;
  EXPECT_EQ(outputs["decision"]["data"][0], "partial");
  EXPECT_EQ(outputs["label"]["data"][0],
            engine::testing::GetTemplate().votes[row][3]);
  // The request without a timeout is still waiting.
  EXPECT_EQ(engine_->Stats().parked, 1u);
  // Reserved parameters eraser does not serve, and bad timeouts: 400.
  for (const json& params :
       {json{{"sequence_id", 7}}, json{{"priority", 1}},
        json{{"sequence_start", true}}, json{{"timeout", -1}},
        json{{"timeout", "1s"}}, json{{"timeout", 1.5}}}) {
    json bad = untimed;
    bad["parameters"] = params;
    HttpResult refused =
        Http(port_, "POST", "/v2/models/eraser/infer", bad.dump());
    EXPECT_EQ(refused.status, 400) << params.dump();
    EXPECT_THAT(refused.body, HasSubstr(params.begin().key())) << params.dump();
  }
  // Parameters of its own a client may send are ignored.
  json custom = timed;
  custom["parameters"]["trace_id"] = "abc";
  EXPECT_EQ(
      Http(port_, "POST", "/v2/models/eraser/infer", custom.dump()).status,
      200);
  // Closing answers the waiting request (503, shutting down).
  server_->BeginShutdown(std::chrono::milliseconds(0));
  engine_->Close();
  waiting.join();
  EXPECT_EQ(waited.status, 503) << waited.body;
}

TEST_F(Served, OpenInferenceProtocolInfersABatchOfRows) {
  Start();
  const std::vector<std::size_t> rows = {0, 5, 9};
  for (const auto& [datatype, raw] : std::vector<std::pair<std::string, bool>>{
           {"FP32", false}, {"UINT8", true}}) {
    SCOPED_TRACE(datatype);
    json request = {{"id", "batch-1"},
                    {"inputs", {Tensor(datatype, rows, raw)}}};
    HttpResult r =
        Http(port_, "POST", "/v2/models/eraser/infer", request.dump());
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
    const json out = r.json();
    EXPECT_EQ(out["model_name"], "eraser");
    EXPECT_EQ(out["id"], "batch-1");
    std::map<std::string, json> outputs;
    for (const json& o : out["outputs"]) outputs[o["name"]] = o;
    ASSERT_EQ(outputs.count("label"), 1u);
    EXPECT_EQ(outputs["label"]["datatype"], "INT64");
    EXPECT_EQ(outputs["label"]["shape"], json({3}));
    for (std::size_t k = 0; k < rows.size(); ++k) {
      EXPECT_EQ(outputs["label"]["data"][k], Plurality(rows[k]));
      EXPECT_EQ(outputs["decision"]["data"][k], "clean");
    }
    EXPECT_EQ(outputs["class"]["datatype"], "BYTES");
    EXPECT_EQ(outputs["class"]["data"].size(), 3u);
  }
  // Nested data, and only the outputs asked for.
  json nested = Tensor("FP32", {2}, false);
  json rows_nested = json::array();
  for (int r = 0; r < 28; ++r) {
    json row = json::array();
    for (int c = 0; c < 28; ++c) row.push_back(nested["data"][r * 28 + c]);
    rows_nested.push_back(row);
  }
  nested["data"] = json::array({rows_nested});
  HttpResult r = Http(
      port_, "POST", "/v2/models/eraser/infer",
      json{{"inputs", {nested}}, {"outputs", {{{"name", "label"}}}}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json()["outputs"].size(), 1u);
  EXPECT_EQ(r.json()["outputs"][0]["data"][0], Plurality(2));
}

// A body is read by the one-pass reader, or by nlohmann::json when it
// carries "parameters" (or asks for binary data). Both must give one
// answer: helper-44 found bodies the two read differently (a repeated
// field, a shape of 1.0, outputs without names, deep nesting). Each body
// here is sent as it is and with "parameters": {} added.
TEST_F(Served, OpenInferenceProtocolBothReadersGiveOneAnswer) {
  Start();
  std::size_t other = 1;
  while (Plurality(other) == Plurality(0)) ++other;
  const std::string a = Tensor("FP32", {0}, false).dump();
  const std::string b = Tensor("FP32", {other}, false).dump();
  std::string shape_float = a;
  const std::size_t at = shape_float.find("\"shape\":[1,");
  ASSERT_NE(at, std::string::npos);
  shape_float.replace(at, 11, "\"shape\":[1.0,");
  std::string deep = "0";
  for (int i = 0; i < 100; ++i) deep = "[" + deep + "]";
  // {status, label when 200}
  const std::vector<std::tuple<std::string, int, int32_t>> cases = {
      {"\"inputs\":[" + a + "],\"inputs\":[]", 400, 0},
      {"\"inputs\":[" + a + "],\"inputs\":[" + b + "]", 200, Plurality(other)},
      {"\"inputs\":[" + shape_float + "]", 400, 0},
      {"\"inputs\":[" + a + "],\"outputs\":[{}]", 400, 0},
      {"\"inputs\":[" + a + "],\"outputs\":[1]", 400, 0},
      {"\"inputs\":[" + a + "],\"outputs\":{}", 400, 0},
      {"\"inputs\":[" + a + "],\"outputs\":[{\"name\":7}]", 400, 0},
      {"\"id\":5,\"id\":\"x\",\"inputs\":[" + a + "]", 200, Plurality(0)},
      {"\"x\":" + deep + ",\"inputs\":[" + a + "]", 400, 0},
      // "parameters" spelt with an escape holds a reserved one.
      {"\"inputs\":[" + a + "],\"param\\u0065ters\":{\"priority\":1}", 400, 0},
  };
  for (const auto& [fields, status, label] : cases) {
    for (const char* extra : {"", "\"parameters\":{},"}) {
      const std::string body = std::string("{") + extra + fields + "}";
      SCOPED_TRACE(
          body.substr(0, 80) + " ... " +
          body.substr(body.size() - std::min<std::size_t>(body.size(), 60)));
      HttpResult r = Http(port_, "POST", "/v2/models/eraser/infer", body);
      EXPECT_EQ(r.status, status) << r.body.substr(0, 300);
      if (r.status == 200 && status == 200) {
        EXPECT_EQ(r.json()["outputs"][0]["data"][0], label);
      }
    }
  }
  // A number beyond the double range is named as such by both.
  for (const char* extra : {"", "\"parameters\":{\"timeout\":1},"}) {
    const std::string body =
        std::string("{") + extra + "\"x\":1e400,\"inputs\":[" + a + "]}";
    HttpResult r = Http(port_, "POST", "/v2/models/eraser/infer", body);
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.json()["error"].get<std::string>(),
                HasSubstr("beyond the double range"))
        << extra;
  }
}

TEST_F(Served, OpenInferenceProtocolRefusesBadTensorsWith400) {
  Start();
  auto infer = [&](const json& body) {
    return Http(port_, "POST", "/v2/models/eraser/infer", body.dump());
  };
  json good = Tensor("FP32", {1}, false);
  auto with = [&](const char* key, const json& value) {
    json t = good;
    t[key] = value;
    return json{{"inputs", {t}}};
  };
  const std::vector<std::pair<json, std::string>> cases = {
      {json{{"inputs", json::array()}}, "exactly one tensor"},
      {with("datatype", "BOOL"), "datatype BOOL is not supported"},
      {with("shape", {1, 27, 28}), "784 values per row"},
      {with("shape", {0, 28, 28}), "1 to 1024 rows"},
      {with("data", {1, 2, 3}), "holds 3 values"},
      {with("data", {"x"}), "only numbers"},
      {json{{"inputs", {with("datatype", "UINT8")["inputs"][0]}}},
       "not a valid UINT8"},
      {json{{"inputs", {good}}, {"outputs", {{{"name", "logits"}}}}},
       "no output named 'logits'"},
  };
  for (const auto& [body, message] : cases) {
    HttpResult r = infer(body);
    EXPECT_EQ(r.status, 400) << message;
    EXPECT_THAT(r.json()["error"].get<std::string>(), HasSubstr(message));
  }
  json too_big = good;
  too_big["data"][0] = 1e39;
  HttpResult r = infer(json{{"inputs", {too_big}}});
  EXPECT_EQ(r.status, 400);
  // The element's index and its value.
  EXPECT_THAT(r.json()["error"].get<std::string>(),
              HasSubstr("\"data\"[0] = 1e+39 is not a valid FP32"));
  EXPECT_EQ(Http(port_, "POST", "/v2/models/eraser/infer", "{").status, 400);
}

// ---- TLS ------------------------------------------------------------------

// A throw-away CA and a certificate for 127.0.0.1 signed by it, made with
// the openssl command.
bool MakeCertificates(const std::string& dir) {
  const std::string cmd =
      "cd '" + dir +
      "' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
      "'/CN=eraser test CA' -keyout ca.key -out ca.pem 2>/dev/null && "
      "openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout "
      "server.key -out server.csr 2>/dev/null && printf "
      "'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in "
      "server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile "
      "san.ext -out server.pem 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST_F(Served, TlsServesCurlAndClosesPlainHttp) {
  ASSERT_TRUE(MakeCertificates(dir_.path()));
  HttpServerOptions http;
  http.tls_cert = dir_.Child("server.pem");
  http.tls_key = dir_.Child("server.key");
  Start({}, http);
  const std::string url = "https://127.0.0.1:" + std::to_string(port_);
  EXPECT_EQ(Shell("curl -s -o /dev/null -w '%{http_code}' --cacert '" +
                  dir_.Child("ca.pem") + "' " + url + "/healthz"),
            "200");
  const std::string answer =
      Shell("curl -s --cacert '" + dir_.Child("ca.pem") +
            "' -H 'Content-Type: application/json' -d '{\"test_index\": 4}' " +
            url + "/v1/infer");
  EXPECT_EQ(json::parse(answer, nullptr, false)["label"], Plurality(4))
      << answer;
  // Without the CA, curl refuses the certificate.
  EXPECT_EQ(Shell("curl -s -o /dev/null -w '%{http_code}' " + url + "/healthz"),
            "000");
  // Plain HTTP to the TLS port: no HTTP answer, the connection closes.
  HttpResult plain = HttpConnection(port_, std::chrono::seconds(10))
                         .SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(plain.status, 0);
  EXPECT_NE(plain.error, "timed out");
  EXPECT_NE(
      Metric(*engine_, "eraser_http_refused_total{reason=\"tls_handshake\"}"),
      "0");
  // A bad certificate path is a clear error at start.
  HttpServerOptions bad;
  bad.listen = "127.0.0.1:0";
  bad.tls_cert = dir_.Child("missing.pem");
  bad.tls_key = dir_.Child("server.key");
  EXPECT_THAT(
      HttpServer::Start(bad, [](Request, Respond) {}).status().message(),
      HasSubstr("missing.pem"));
}

// TLS 1.2 without forward secrecy or with CBC and SHA-1 is refused by
// default; ECDHE with AEAD, and TLS 1.3, are served; --tls-ciphers changes
// the TLS 1.2 list.
TEST_F(Served, TlsOffersOnlyForwardSecretAeadSuites) {
  ASSERT_TRUE(MakeCertificates(dir_.path()));
  HttpServerOptions http;
  http.tls_cert = dir_.Child("server.pem");
  http.tls_key = dir_.Child("server.key");
  Start({}, http);
  auto handshake = [&](const std::string& flags) {
    return Shell(
        "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
        " " + flags + " 2>&1 | grep -c '^New, TLS'");
  };
  for (const char* weak : {"AES128-SHA", "AES256-SHA256", "AES128-GCM-SHA256",
                           "DHE-RSA-AES128-SHA"}) {
    EXPECT_EQ(handshake(std::string("-tls1_2 -cipher ") + weak), "0\n")
        << weak << " was accepted";
  }
  EXPECT_EQ(handshake("-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"), "1\n");
  EXPECT_EQ(handshake("-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305"), "1\n");
  EXPECT_EQ(handshake("-tls1_3"), "1\n");
  // An unknown list is an error at start.
  HttpServerOptions bad = http;
  bad.listen = "127.0.0.1:0";
  bad.tls_ciphers = "NO-SUCH-CIPHER";
  EXPECT_THAT(
      HttpServer::Start(bad, [](Request, Respond) {}).status().message(),
      HasSubstr("NO-SUCH-CIPHER"));
}

// ---- the hardened HTTP layer ------------------------------------------------

TEST_F(Served, ConnectionsBeyondTheCapGet503AndTheCapFreesUp) {
  HttpServerOptions http;
  http.max_connections = 2;
  Start({}, http);
  HttpConnection a(port_);
  auto b = std::make_unique<HttpConnection>(port_);
  ASSERT_EQ(a.Send("GET", "/healthz").status, 200);
  ASSERT_EQ(b->Send("GET", "/healthz").status, 200);
  // Two keep-alive connections are open: a third is refused.
  HttpResult third = HttpConnection(port_, std::chrono::seconds(10))
                         .SendRaw("GET /healthz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(third.status, 503);
  EXPECT_THAT(third.body, HasSubstr("too many open connections"));
  EXPECT_EQ(Metric(*engine_,
                   "eraser_http_refused_total{reason=\"connection_limit\"}"),
            "1");
  // The open ones keep working.
  EXPECT_EQ(a.Send("GET", "/healthz").status, 200);
  // Closing one frees a place.
  b.reset();
  ASSERT_TRUE(
      engine::testing::Eventually([&] { return server_->connections() < 2; }));
  EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);
}

TEST_F(Served, OversizedHeadersGet431) {
  HttpServerOptions http;
  http.header_limit = 2048;
  Start({}, http);
  HttpResult r =
      HttpConnection(port_, std::chrono::seconds(10))
          .SendRaw("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') +
                   "\r\n\r\n");
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);
}

TEST_F(Served, ASlowClientIsCutOffWithoutHoldingAThread) {
  HttpServerOptions http;
  http.threads = 1;
  http.idle_timeout = std::chrono::seconds(3);
  Start({}, http);
  const int slow = eraser::testing::RawConnect(port_);
  ASSERT_GE(slow, 0);
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  // One byte every 100 ms: the header would take 4.6 s, longer than the
  // 3 s the server gives it.
  std::atomic<bool> closed{false};
  std::thread trickle([&] {
    for (char c : request) {
      if (::send(slow, &c, 1, MSG_NOSIGNAL) != 1) break;
      pollfd p{slow, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[64];
        if (::recv(slow, buf, sizeof(buf), 0) <= 0) break;
      }
    }
    closed =
        eraser::testing::ReadUntilClosed(slow, std::chrono::seconds(10)).second;
  });
  // Meanwhile, on the one I/O thread, other clients are answered before the
  // slow one is cut off: were the thread held by the slow client, they
  // would be answered only after its timeout.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);
    EXPECT_EQ(Metric(*engine_, "eraser_http_refused_total{reason=\"timeout\"}"),
              "0")
        << "answer " << i << " came after the slow client's timeout";
  }
  trickle.join();
  ::close(slow);
  EXPECT_TRUE(closed);
  // Beast closes the socket when the timer fires and runs the read's
  // handler, which counts the refusal, afterwards: the client can see the
  // close first.
  EXPECT_TRUE(engine::testing::Eventually([&] {
    return Metric(*engine_, "eraser_http_refused_total{reason=\"timeout\"}") ==
           "1";
  })) << Metric(*engine_, "eraser_http_refused_total{reason=\"timeout\"}");
}

// ---- the binary tensor data extension --------------------------------------

// Values of test rows `rows` as `datatype`, little-endian: raw pixels for
// the unsigned types, negated ones for the signed types (so that a sign
// read wrongly changes the answer), the engine's features for FP32/FP64.
std::string RowBytes(const std::string& datatype,
                     const std::vector<std::size_t>& rows, json* as_json) {
  const datasets::Split& test = engine::testing::GetTemplate().data.test;
  std::string out;
  *as_json = json::array();
  auto put = [&out](const auto v) {
    char b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    out.append(b, sizeof v);
  };
  for (std::size_t i : rows) {
    if (datatype == "FP32" || datatype == "FP64") {
      for (float v : engine::testing::Input(i)) {
        if (datatype == "FP32") put(v);
        if (datatype == "FP64") put(static_cast<double>(v));
        as_json->push_back(v);
      }
      continue;
    }
    for (std::size_t f = 0; f < test.row_bytes(); ++f) {
      const int v = test.row(i)[f];
      const int s = datatype == "INT8" ? -(v / 2) : -v;  // signed types
      if (datatype == "UINT8") put(static_cast<uint8_t>(v));
      if (datatype == "INT8") put(static_cast<int8_t>(s));
      if (datatype == "UINT16") put(static_cast<uint16_t>(v));
      if (datatype == "INT16") put(static_cast<int16_t>(s));
      if (datatype == "INT32") put(static_cast<int32_t>(s));
      if (datatype == "INT64") put(static_cast<int64_t>(s));
      as_json->push_back(datatype[0] == 'U' ? v : s);
    }
  }
  return out;
}

// A response in the binary form: its JSON header and each output's bytes.
struct BinaryAnswer {
  json header;
  std::map<std::string, std::string> bytes;
};

BinaryAnswer ReadBinary(const HttpResult& r) {
  BinaryAnswer a;
  const std::string length = r.header("Inference-Header-Content-Length");
  EXPECT_FALSE(length.empty()) << "not in the binary form";
  if (length.empty()) return a;
  const std::size_t n = std::stoul(length);
  EXPECT_LE(n, r.body.size());
  a.header = json::parse(r.body.substr(0, n));
  std::size_t offset = n;
  for (const json& o : a.header["outputs"]) {
    if (!o.contains("parameters")) continue;
    const std::size_t size = o["parameters"]["binary_data_size"];
    a.bytes[o["name"]] = r.body.substr(offset, size);
    offset += size;
  }
  EXPECT_EQ(offset, r.body.size());
  return a;
}

std::vector<int64_t> Int64s(const std::string& bytes) {
  std::vector<int64_t> out(bytes.size() / 8);
  std::memcpy(out.data(), bytes.data(), out.size() * 8);
  return out;
}

// BYTES elements in binary: a 4-byte little-endian length, then the bytes.
std::vector<std::string> Strings(const std::string& bytes) {
  std::vector<std::string> out;
  for (std::size_t p = 0; p + 4 <= bytes.size();) {
    uint32_t n = 0;
    std::memcpy(&n, bytes.data() + p, 4);
    out.push_back(bytes.substr(p + 4, n));
    p += 4 + n;
  }
  return out;
}

// What Triton's Python client sends by default (set_data_from_numpy, no
// outputs named): the JSON header, then the tensor's bytes, and every
// output asked for in binary. Each accepted datatype answers as the same
// values sent as JSON.
TEST_F(Served, OpenInferenceProtocolBinaryTensorsInAndOut) {
  Start();
  const std::vector<std::size_t> rows = {0, 5, 9};
  for (const std::string& datatype :
       std::vector<std::string>{"UINT8", "INT8", "UINT16", "INT16", "INT32",
                                "INT64", "FP32", "FP64"}) {
    SCOPED_TRACE(datatype);
    json values;
    const std::string bytes = RowBytes(datatype, rows, &values);
    json tensor = {{"name", "input"},
                   {"shape", {rows.size(), 28, 28}},
                   {"datatype", datatype}};
    json as_json = tensor;
    as_json["data"] = values;
    HttpResult plain = Http(port_, "POST", "/v2/models/eraser/infer",
                            json{{"inputs", {as_json}}}.dump());
    ASSERT_EQ(plain.status, 200) << plain.body.substr(0, 300);
    std::map<std::string, json> want;
    const json plain_answer = plain.json();
    for (const json& o : plain_answer["outputs"]) want[o["name"]] = o["data"];

    tensor["parameters"] = {{"binary_data_size", bytes.size()}};
    const std::string header =
        json{{"inputs", {tensor}},
             {"parameters", {{"binary_data_output", true}}}}
            .dump();
    HttpResult r = Http(
        port_, "POST", "/v2/models/eraser/infer", header + bytes,
        {{"Inference-Header-Content-Length", std::to_string(header.size())},
         {"Content-Type", "application/octet-stream"}});
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
    EXPECT_EQ(r.header("Content-Type"), "application/octet-stream");
    BinaryAnswer a = ReadBinary(r);
    EXPECT_EQ(a.header["model_name"], "eraser");
    for (const json& o : a.header["outputs"]) {
      EXPECT_FALSE(o.contains("data")) << o.dump();
      EXPECT_EQ(o["shape"], json({3}));
    }
    EXPECT_EQ(json(Int64s(a.bytes["label"])), want["label"]);
    EXPECT_EQ(json(Strings(a.bytes["decision"])), want["decision"]);
    EXPECT_EQ(json(Strings(a.bytes["class"])), want["class"]);
    std::vector<int32_t> margins(a.bytes["margin"].size() / 4);
    std::memcpy(margins.data(), a.bytes["margin"].data(), margins.size() * 4);
    EXPECT_EQ(json(margins), want["margin"]);
    if (datatype == "UINT8") {
      for (std::size_t k = 0; k < rows.size(); ++k) {
        EXPECT_EQ(Int64s(a.bytes["label"])[k], Plurality(rows[k]));
      }
    }
  }
}

// Binary inputs with a JSON output, a JSON request with a binary output,
// and the same bytes through curl --data-binary.
TEST_F(Served, OpenInferenceProtocolMixesBinaryAndJsonTensors) {
  Start();
  json values;
  const std::string bytes = RowBytes("UINT8", {4}, &values);
  const json tensor = {{"name", "input"},
                       {"shape", {1, 784}},
                       {"datatype", "UINT8"},
                       {"parameters", {{"binary_data_size", 784}}}};
  const std::string header =
      json{{"inputs", {tensor}},
           {"outputs",
            {{{"name", "label"}, {"parameters", {{"binary_data", false}}}}}}}
          .dump();
  // No Content-Type: the client declares none.
  HttpResult r =
      Http(port_, "POST", "/v2/models/eraser/infer", header + bytes,
           {{"Inference-Header-Content-Length", std::to_string(header.size())},
            {"Content-Type", ""}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.header("Inference-Header-Content-Length").empty());
  EXPECT_EQ(r.json()["outputs"][0]["data"][0], Plurality(4));

  json json_tensor = tensor;
  json_tensor.erase("parameters");
  json_tensor["data"] = values;
  HttpResult b =
      Http(port_, "POST", "/v2/models/eraser/infer",
           json{{"inputs", {json_tensor}},
                {"outputs",
                 {{{"name", "label"}, {"parameters", {{"binary_data", true}}}},
                  {{"name", "decision"}}}}}
               .dump());
  ASSERT_EQ(b.status, 200) << b.body;
  BinaryAnswer a = ReadBinary(b);
  EXPECT_EQ(Int64s(a.bytes["label"]), std::vector<int64_t>{Plurality(4)});
  EXPECT_EQ(a.header["outputs"][1]["data"], json({"clean"}));

  const std::string file = dir_.Child("request.bin");
  eraser::testing::WriteFileOrDie(file, header + bytes);
  const std::string out =
      Shell("curl -s --data-binary @'" + file +
            "' -H 'Content-Type: "
            "application/octet-stream' -H 'Inference-Header-Content-Length: " +
            std::to_string(header.size()) + "' http://127.0.0.1:" +
            std::to_string(port_) + "/v2/models/eraser/infer");
  const json answer = json::parse(out, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << out;
  EXPECT_EQ(answer["outputs"][0]["data"][0], Plurality(4));
}

// Malformed framing is a 400 that names the problem, decided before any
// tensor byte is read.
TEST_F(Served, OpenInferenceProtocolRefusesBadBinaryFraming) {
  Start();
  json values;
  const std::string bytes = RowBytes("UINT8", {1}, &values);
  auto header_for = [](const json& parameters) {
    return json{{"inputs",
                 {{{"name", "input"},
                   {"shape", {1, 784}},
                   {"datatype", "UINT8"},
                   {"parameters", parameters}}}}}
        .dump();
  };
  const std::string good = header_for({{"binary_data_size", 784}});
  auto send = [&](const std::string& body, const std::string& length,
                  const std::string& type = "application/octet-stream") {
    Headers headers = {{"Content-Type", type}};
    if (!length.empty()) {
      headers.push_back({"Inference-Header-Content-Length", length});
    }
    return Http(port_, "POST", "/v2/models/eraser/infer", body, headers);
  };
  const std::string n = std::to_string(good.size());
  struct Case {
    HttpResult result;
    std::string message;
  };
  const std::vector<Case> cases = {
      {send(good + bytes, std::to_string(good.size() + 785)),
       "Inference-Header-Content-Length must be"},
      {send(good + bytes, "12x"), "Inference-Header-Content-Length must be"},
      {send(good + bytes, n.substr(1)), "is not a JSON object"},
      {send(good + bytes.substr(1), n), "declares 784 bytes"},
      {send(good + bytes + "x", n), "1 bytes after the header"},
      {send(header_for({{"binary_data_size", 700}}) + bytes.substr(0, 700),
            std::to_string(header_for({{"binary_data_size", 700}}).size())),
       "make 784"},
      {send(header_for({{"binary_data_size", -1}}) + bytes,
            std::to_string(header_for({{"binary_data_size", -1}}).size())),
       "binary_data_size must be a number of bytes"},
      {send(header_for({{"binary_data_size", "784"}}) + bytes,
            std::to_string(header_for({{"binary_data_size", "784"}}).size())),
       "binary_data_size must be a number of bytes"},
      {send(good, "", "application/json"),
       "needs the Inference-Header-Content-Length header"},
      // nlohmann::json would stop at the NUL and skip what follows.
      {send(good + std::string(1, '\0') + "x" + bytes,
            std::to_string(good.size() + 2)),
       "is not a JSON object"},
      {send(json{{"inputs",
                  {{{"name", "input"},
                    {"datatype", "UINT8"},
                    {"parameters", {{"binary_data_size", 784}}}}}}}
                    .dump() +
                bytes,
            std::to_string(
                json{{"inputs",
                      {{{"name", "input"},
                        {"datatype", "UINT8"},
                        {"parameters", {{"binary_data_size", 784}}}}}}}
                    .dump()
                    .size())),
       "needs the input's \"shape\" and \"datatype\""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.result.status, 400) << c.message << ": " << c.result.body;
    EXPECT_THAT(c.result.json()["error"].get<std::string>(),
                HasSubstr(c.message));
  }
  // Both "data" and binary_data_size.
  json both = json::parse(good);
  both["inputs"][0]["data"] = values;
  const std::string both_text = both.dump();
  HttpResult r = send(both_text + bytes, std::to_string(both_text.size()));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("both"));
  // The binary form may be octet-stream, never a type a browser sends
  // across sites without asking.
  EXPECT_EQ(send(good + bytes, n, "text/plain").status, 415);
  // Without the length header a body is not in the binary form, and may
  // not be octet-stream (docs/serve.md).
  EXPECT_EQ(send(good + bytes, "").status, 415);
  // The length twice.
  const std::string raw =
      "POST /v2/models/eraser/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Connection: close\r\nInference-Header-Content-Length: " +
      n + "\r\nInference-Header-Content-Length: " + n +
      "\r\nContent-Length: " + std::to_string(good.size() + bytes.size()) +
      "\r\n\r\n" + good + bytes;
  HttpResult dup = eraser::testing::HttpConnection(port_).SendRaw(raw);
  EXPECT_EQ(dup.status, 400) << dup.body;
  EXPECT_THAT(dup.body, HasSubstr("appears twice"));
}

}  // namespace
}  // namespace eraser::serve
