// The HTTP API over real loopback sockets, in-process: every route and every
// documented error code.
#include "eraser/serve/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <thread>

#include "../engine/engine_fixture.h"
#include "eraser/certify/vote.h"
#include "eraser/common/sync_point.h"
#include "eraser/serve/http_server.h"
#include "testing/http_client.h"
#include "testing/small_disk.h"

namespace eraser::serve {
namespace {

using eraser::testing::Http;
using eraser::testing::HttpConnection;
using eraser::testing::HttpResult;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string FeaturesBody(std::size_t held_out) {
  return json{{"features", engine::testing::Input(held_out)}}.dump();
}

class ApiTest : public ::testing::Test {
 protected:
  void Start(const std::string& policy,
             std::function<void(engine::EngineOptions&)> tweak = nullptr) {
    engine::EngineOptions options =
        engine::testing::Options(engine::testing::CopyTemplate(dir_), policy);
    if (tweak) tweak(options);
    StatusOr<std::unique_ptr<engine::Engine>> e = engine::Engine::Open(options);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
    api_ = std::make_unique<Api>(engine_.get());
    HttpServerOptions http;
    http.listen = "127.0.0.1:0";
    StatusOr<std::unique_ptr<HttpServer>> s =
        HttpServer::Start(http, [this](Request r, Respond respond) {
          api_->Handle(std::move(r), std::move(respond));
        });
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) {
      server_->BeginShutdown(std::chrono::milliseconds(0));
      if (engine_) engine_->Close();
      server_->Stop();
    }
    // The Api's threads first: their work holds the server's connections.
    api_.reset();
    server_.reset();
    engine_.reset();
  }

  eraser::testing::TempDir dir_;
  // For the tests that set EngineOptions::clock; outlives the engine.
  ManualClock clock_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(ApiTest, InferWithFeaturesOrTestIndex) {
  Start("eraser-lazy-wait");
  for (std::size_t i = 0; i < 5; ++i) {
    HttpResult r = Http(port_, "POST", "/v1/infer", FeaturesBody(i));
    ASSERT_EQ(r.status, 200) << r.body << r.error;
    const json j = r.json();
    const auto& votes = engine::testing::GetTemplate().votes[i];
    EXPECT_EQ(j["label"],
              certify::PluralityVote(votes.data(), votes.size(), 10));
    EXPECT_EQ(j["decision"], "clean");
    EXPECT_TRUE(j.contains("class"));
    EXPECT_TRUE(j.contains("latency_ms"));
    EXPECT_EQ(j["model_versions"].size(), 4u);
    // The same image by its test-set index.
    HttpResult by_index =
        Http(port_, "POST", "/v1/infer", json{{"test_index", i}}.dump());
    ASSERT_EQ(by_index.status, 200);
    EXPECT_EQ(by_index.json()["label"], j["label"]);
  }
}

TEST_F(ApiTest, DeletionLifecycle) {
  Start("eraser:lazy,wait,deadline=1h");
  const uint64_t sample = engine::testing::SampleIn(1, 1).value();
  HttpResult r =
      Http(port_, "POST", "/v1/deletions", json{{"sample", sample}}.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json()["seq"], 1);
  EXPECT_EQ(r.json()["state"], "pending");
  HttpResult status = Http(port_, "GET", "/v1/deletions/1");
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.json()["state"], "pending");
  EXPECT_EQ(status.json()["target"], "sample:" + std::to_string(sample));
  EXPECT_EQ(status.json()["shards"], json::array({1}));
  EXPECT_TRUE(status.json().contains("arrival"));
  EXPECT_FALSE(status.json().contains("applied"));

  HttpResult owner =
      Http(port_, "POST", "/v1/deletions",
           json{{"owner", engine::testing::SampleIn(2, 0).value()}}.dump());
  ASSERT_EQ(owner.status, 202);
  HttpResult drained = Http(port_, "POST", "/v1/drain");
  ASSERT_EQ(drained.status, 200) << drained.body;
  EXPECT_EQ(drained.json()["pending_deletions"], 0);
  status = Http(port_, "GET", "/v1/deletions/1");
  EXPECT_EQ(status.json()["state"], "applied");
  EXPECT_TRUE(status.json().contains("applied"));
  EXPECT_GE(status.json()["delay_ms"].get<double>(), 0.0);
}

// Drains wait as long as the retrainings they need (minutes with a costly
// model): two of them must not hold up a deletion's acknowledgement or a
// status read. They shared one two-thread pool, and a new deletion waited
// for both.
TEST_F(ApiTest, DrainsHoldUpNoDeletionOrStatusRead) {
  Start("eraser:lazy,wait,deadline=1h");
  // Retrainings stop after their commit until the deletion below is in.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  SyncPoints::Set("EngineImpl::RunOrder:Committed",
                  [released] { released.wait(); });
  ASSERT_EQ(
      Http(port_, "POST", "/v1/deletions",
           json{{"sample", engine::testing::SampleIn(1, 1).value()}}.dump())
          .status,
      202);
  HttpResult drains[2];
  std::thread first([&] { drains[0] = Http(port_, "POST", "/v1/drain"); });
  std::thread second([&] { drains[1] = Http(port_, "POST", "/v1/drain"); });
  // Both drains are in the Api (their bodies read, handed over).
  EXPECT_TRUE(
      eraser::testing::Eventually([&] { return server_->in_flight() == 2; }));
  // A deletion and a status read, answered while the drains wait. (Bounded
  // here: the drains wait for the gate this test holds.)
  std::future<std::pair<int, int>> answered =
      std::async(std::launch::async, [this] {
        const int deleted =
            Http(port_, "POST", "/v1/deletions",
                 json{{"sample", engine::testing::SampleIn(2, 1).value()}}
                     .dump())
                .status;
        return std::make_pair(deleted,
                              Http(port_, "GET", "/v1/deletions/2").status);
      });
  EXPECT_EQ(answered.wait_for(eraser::testing::kPatience),
            std::future_status::ready)
      << "a deletion waited for the drains";
  release.set_value();
  const std::pair<int, int> statuses = answered.get();
  EXPECT_EQ(statuses.first, 202);
  EXPECT_EQ(statuses.second, 200);
  first.join();
  second.join();
  SyncPoints::Clear("EngineImpl::RunOrder:Committed");
  for (const HttpResult& d : drains) {
    EXPECT_EQ(d.status, 200) << d.body;
    EXPECT_EQ(d.json()["pending_deletions"], 0);
  }
}

TEST_F(ApiTest, BadRequestsAre400) {
  Start("eraser-lazy-wait");
  struct Case {
    const char* method;
    const char* target;
    std::string body;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"POST", "/v1/infer", "{bad", "not valid JSON"},
      {"POST", "/v1/infer", "[1, 2]", "must be a JSON object"},
      {"POST", "/v1/infer", R"({"features": [1, 2]})",
       "expected 784 features, got 2"},
      {"POST", "/v1/infer", R"({"features": "x"})", "must be an array"},
      {"POST", "/v1/infer", R"({"features": [1, "a"]})", "only numbers"},
      {"POST", "/v1/infer", "{}", "exactly one of"},
      {"POST", "/v1/infer", R"({"features": [], "test_index": 1})",
       "exactly one of"},
      {"POST", "/v1/infer", R"({"test_index": -1})", "non-negative integer"},
      {"POST", "/v1/infer", R"({"test_index": 1.5})", "non-negative integer"},
      {"POST", "/v1/infer", R"({"test_index": 99999})",
       "outside the test split"},
      {"POST", "/v1/infer", R"({"features": [1e39]})", "outside the float"},
      {"POST", "/v1/infer", R"({"features": [1e400]})",
       "a number beyond the double range"},
      {"POST", "/v1/infer", R"({"record": {"a": 1}})", "built from a CSV"},
      {"POST", "/v1/deletions", R"({"sample": -1})", "non-negative integer"},
      {"POST", "/v1/deletions", R"({"sample": 1, "owner": 2})", "expected"},
      {"POST", "/v1/deletions", R"({"sample": "1"})", "expected"},
      {"POST", "/v1/deletions", R"({"user": 1})", "expected"},
      // A key twice: a proxy in front may read the first, eraser read the
      // last (and deleted sample 6).
      {"POST", "/v1/deletions", R"({"sample": 5, "sample": 6})",
       "the key 'sample' appears twice"},
      {"POST", "/v1/infer", R"({"test_index": 1, "test_index": 2})",
       "appears twice"},
      {"GET", "/v1/deletions/abc", "", "non-negative integer"},
  };
  HttpConnection connection(port_);  // all on one keep-alive connection
  for (const Case& c : cases) {
    HttpResult r = connection.Send(c.method, c.target, c.body);
    EXPECT_EQ(r.status, 400) << c.target << " " << c.body << ": " << r.body;
    EXPECT_THAT(r.json()["error"].get<std::string>(), HasSubstr(c.message))
        << c.body;
  }
  EXPECT_EQ(engine_->Stats().pending_deletions, 0u);  // nothing changed
  // Each refused inference counts once as a bad input, whether the server
  // or the engine refused it (only a wrong feature count was counted); so
  // does a bad Open Inference Protocol request.
  const HttpResult v2 = connection.Send(
      "POST", "/v2/models/eraser/infer",
      R"({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                      "data": [1, 2, 3]}]})");
  EXPECT_EQ(v2.status, 400) << v2.body;
  const auto inferences = std::count_if(
      cases.begin(), cases.end(),
      [](const Case& c) { return std::string(c.target) == "/v1/infer"; });
  EXPECT_THAT(
      engine_->metrics()->TextExposition(),
      HasSubstr("eraser_inference_refused_total{reason=\"bad_input\"} " +
                std::to_string(inferences + 1) + "\n"));
  // A malformed request line gets 400 too, and the server carries on.
  HttpResult garbage = HttpConnection(port_).SendRaw("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.status, 400) << garbage.error;
  EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);
}

TEST_F(ApiTest, UnknownThingsAre404AndWrongMethods405) {
  Start("eraser-lazy-wait");
  HttpResult sample =
      Http(port_, "POST", "/v1/deletions", R"({"sample": 999999})");
  EXPECT_EQ(sample.status, 404);
  EXPECT_THAT(sample.json()["error"].get<std::string>(),
              HasSubstr("unknown sample 999999"));
  EXPECT_EQ(Http(port_, "POST", "/v1/deletions", R"({"owner": 999999})").status,
            404);
  EXPECT_EQ(Http(port_, "GET", "/v1/deletions/12345").status, 404);
  EXPECT_EQ(Http(port_, "GET", "/v2/whatever").status, 404);
  // Request bytes echoed in an error message need not be UTF-8 (the fuzz
  // test found this crashing the server's JSON serialisation).
  HttpResult binary = HttpConnection(port_).SendRaw(
      "GET /v1/\xaf\xff HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(binary.status, 404) << binary.error;
  EXPECT_TRUE(binary.json().contains("error"));
  HttpResult method = Http(port_, "GET", "/v1/infer");
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(Http(port_, "DELETE", "/v1/deletions/1").status, 405);
}

TEST_F(ApiTest, BodyTooLargeIs413) {
  Start("eraser-lazy-wait");
  // The limit is checked against Content-Length before the body is read
  // (clients such as curl wait for "100 Continue" before sending it).
  HttpResult r = HttpConnection(port_).SendRaw(
      "POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_EQ(r.status, 413) << r.error;
  EXPECT_THAT(r.json()["error"].get<std::string>(), HasSubstr("larger than"));
  EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);
}

TEST_F(ApiTest, FullQueueIs429) {
  // On a manual clock the first request waits for its batch until the test
  // moves time, however slow the machine.
  Start("eraser-lazy-wait", [this](engine::EngineOptions& o) {
    o.clock = &clock_;
    o.inference.queue_capacity = 1;
    o.inference.max_queue_delay = std::chrono::milliseconds(800);
  });
  HttpResult first;
  std::thread t(
      [&] { first = Http(port_, "POST", "/v1/infer", FeaturesBody(0)); });
  // Wait until the first request is admitted (it waits for a batch to fill).
  EXPECT_TRUE(eraser::testing::Eventually(
      [&] { return engine_->Stats().queued == 1 && clock_.waiters() > 0; }));
  HttpResult second = Http(port_, "POST", "/v1/infer", FeaturesBody(1));
  clock_.Advance(std::chrono::milliseconds(800));
  t.join();
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_THAT(second.json()["error"].get<std::string>(), HasSubstr("full"));
  EXPECT_EQ(second.json()["reason"], "overloaded");
  EXPECT_EQ(second.header("Retry-After"), "1");
  EXPECT_EQ(first.status, 200);
}

// A request's rows are admitted whole or refused whole: a batch refused for
// room costs no row's work, and one larger than the queue could never be
// admitted (400, and the configuration says the bound).
TEST_F(ApiTest, ABatchOfRowsIsAdmittedWholeOrNotAtAll) {
  Start("eraser-lazy-wait", [this](engine::EngineOptions& o) {
    o.clock = &clock_;
    o.inference.queue_capacity = 4;
    o.inference.max_queue_delay = std::chrono::milliseconds(800);
  });
  auto batch = [](std::size_t rows) {
    json data = json::array();
    for (std::size_t i = 0; i < rows; ++i) {
      for (float v : engine::testing::Input(i)) data.push_back(v);
    }
    return json{{"inputs",
                 {{{"name", "input"},
                   {"datatype", "FP32"},
                   {"shape", {rows, 784}},
                   {"data", data}}}}}
        .dump();
  };
  EXPECT_EQ(
      Http(port_, "GET", "/v2/models/eraser/config").json()["max_batch_size"],
      4);
  HttpResult too_many =
      Http(port_, "POST", "/v2/models/eraser/infer", batch(5));
  EXPECT_EQ(too_many.status, 400) << too_many.body;
  EXPECT_THAT(too_many.body, HasSubstr("queue"));
  // One row held in the queue (its batch waits on the manual clock): four
  // more do not fit beside it.
  HttpResult first;
  std::thread t(
      [&] { first = Http(port_, "POST", "/v1/infer", FeaturesBody(0)); });
  EXPECT_TRUE(eraser::testing::Eventually(
      [&] { return engine_->Stats().queued == 1 && clock_.waiters() > 0; }));
  HttpResult full = Http(port_, "POST", "/v2/models/eraser/infer", batch(4));
  EXPECT_EQ(full.status, 429) << full.body;
  clock_.Advance(std::chrono::milliseconds(800));
  t.join();
  EXPECT_EQ(first.status, 200);
  // Only the held row was computed.
  const std::string text = engine_->metrics()->TextExposition();
  EXPECT_THAT(
      text,
      HasSubstr("eraser_inference_requests_total{decision=\"clean\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("eraser_inference_refused_total{reason=\"queue_full\"} 1\n"));
  // With room, the same four rows are answered together (the clock moved
  // on until their batch goes).
  std::future<HttpResult> fits = std::async(std::launch::async, [&] {
    return Http(port_, "POST", "/v2/models/eraser/infer", batch(4));
  });
  EXPECT_TRUE(eraser::testing::Eventually([&] {
    clock_.Advance(std::chrono::milliseconds(800));
    return eraser::testing::Ready(fits);
  }));
  const HttpResult answered = fits.get();
  EXPECT_EQ(answered.status, 200) << answered.body;
}

TEST_F(ApiTest, RejectRuleIs503) {
  Start("eraser:lazy,reject,deadline=1h");
  for (uint32_t shard : {0u, 1u, 3u}) {
    ASSERT_EQ(Http(port_, "POST", "/v1/deletions",
                   json{{"sample", engine::testing::SampleIn(shard, 1).value()}}
                       .dump())
                  .status,
              202);
  }
  HttpResult r = Http(port_, "POST", "/v1/infer", FeaturesBody(0));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json()["decision"], "rejected");
  EXPECT_EQ(r.json()["reason"], "no_certified_answer");
  EXPECT_THAT(r.json()["error"].get<std::string>(), HasSubstr("retry"));
  EXPECT_THAT(
      engine_->metrics()->TextExposition(),
      HasSubstr("eraser_http_refused_total{reason=\"no_certified_answer\"} 1"));
}

TEST_F(ApiTest, ADeletionTheFullDiskCannotLogIs507AndReadyzSaysDegraded) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = engine::testing::CopyTemplate(disk->path());
  Start("eraser:lazy,partial,deadline=1h", [&](engine::EngineOptions& o) {
    o.data_dir = data;
    o.unlearning.retry.initial = std::chrono::seconds(60);
  });
  // Acknowledged before the disk fills: pending, to retrain.
  const uint64_t first = engine::testing::SampleIn(2, 1).value();
  ASSERT_EQ(Http(port_, "POST", "/v1/deletions", json{{"sample", first}}.dump())
                .status,
            202);
  ASSERT_GT(disk->Fill(), 0u);
  HttpResult r;
  for (std::size_t n = 0; n < 500; ++n) {
    const uint64_t sample = engine::testing::SampleIn(2, 0, n).value();
    r = Http(port_, "POST", "/v1/deletions", json{{"sample", sample}}.dump());
    if (r.status != 202) break;
  }
  ASSERT_EQ(r.status, 507) << r.body << r.error;
  EXPECT_THAT(r.json()["error"].get<std::string>(), HasSubstr("full"));
  // The retraining of what was acknowledged fails on the full disk too,
  // and backs off: /readyz still answers, degraded, and says why.
  HttpResult drain = Http(port_, "POST", "/v1/drain", "");
  EXPECT_EQ(drain.status, 507) << drain.body;
  HttpResult ready = Http(port_, "GET", "/readyz", "");
  ASSERT_EQ(ready.status, 200);
  const json j = ready.json();
  EXPECT_EQ(j["status"], "degraded");
  EXPECT_GE(j["unlearning"]["retrain_failures"].get<int>(), 1);
  EXPECT_EQ(j["unlearning"]["shards_backing_off"], json::array({2}));
  EXPECT_THAT(j["unlearning"]["last_retrain_failure"].get<std::string>(),
              HasSubstr("disk_full"));
  disk->Free();
  TearDown();
}

// A server restarted on a full disk did not start: the store could not
// open. It now answers, refuses deletions with 507, says degraded and
// why, and takes deletions again once space returns, without a restart.
TEST_F(ApiTest,
       AServerStartedOnAFullDiskAnswersAndTakesDeletionsOnceItHasSpace) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = engine::testing::CopyTemplate(disk->path());
  ASSERT_GT(disk->Fill(), 0u);
  Start("eraser:lazy,partial,deadline=1h",
        [&](engine::EngineOptions& o) { o.data_dir = data; });
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", FeaturesBody(0)).status, 200);
  const std::string sample =
      json{{"sample", engine::testing::SampleIn(1, 1).value()}}.dump();
  HttpResult refused = Http(port_, "POST", "/v1/deletions", sample);
  EXPECT_EQ(refused.status, 507) << refused.body;
  HttpResult ready = Http(port_, "GET", "/readyz", "");
  ASSERT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json()["status"], "degraded") << ready.body;
  EXPECT_THAT(
      ready.json()["unlearning"]["store_refusing_writes"].get<std::string>(),
      HasSubstr("the disk is full"));
  disk->Free();
  // Ready again with space, before a write reopens the store.
  ready = Http(port_, "GET", "/readyz", "");
  EXPECT_EQ(ready.json()["status"], "ready") << ready.body;
  EXPECT_EQ(ready.json()["unlearning"]["store_refusing_writes"], "");
  HttpResult accepted = Http(port_, "POST", "/v1/deletions", sample);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_EQ(accepted.json()["seq"], 1);
  EXPECT_EQ(Http(port_, "POST", "/v1/drain", "").status, 200);
  EXPECT_EQ(Http(port_, "GET", "/v1/deletions/1", "").json()["state"],
            "applied");
  TearDown();
}

TEST_F(ApiTest, ShuttingDownIs503) {
  Start("eraser-lazy-wait");
  EXPECT_EQ(Http(port_, "GET", "/readyz").status, 200);
  api_->SetDraining();
  EXPECT_EQ(Http(port_, "GET", "/readyz").status, 503);
  EXPECT_EQ(Http(port_, "GET", "/healthz").status, 200);  // still alive
  engine_->Close();
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", FeaturesBody(0)).status, 503);
  EXPECT_EQ(Http(port_, "POST", "/v1/deletions", R"({"sample": 1})").status,
            503);
}

TEST_F(ApiTest, MetricsEndpointServesTheTextFormat) {
  Start("eraser-lazy-wait");
  ASSERT_EQ(Http(port_, "POST", "/v1/infer", FeaturesBody(0)).status, 200);
  HttpServerOptions http;
  http.listen = "127.0.0.1:0";
  StatusOr<std::unique_ptr<HttpServer>> metrics =
      HttpServer::Start(http, MetricsHandler(engine_->metrics()));
  ASSERT_TRUE(metrics.ok());
  HttpResult r = Http((*metrics)->port(), "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(
      r.body,
      HasSubstr("eraser_inference_requests_total{decision=\"clean\"} 1"));
  EXPECT_EQ(Http((*metrics)->port(), "GET", "/").status, 404);
}

// The metrics listener answers only for its own names, as the main one
// does: a page whose name was rebound to 127.0.0.1 cannot read it.
TEST_F(ApiTest, MetricsListenerRefusesAHostItDoesNotAnswerFor) {
  Start("eraser-lazy-wait");
  HttpServerOptions http;
  http.listen = "127.0.0.1:0";
  StatusOr<std::unique_ptr<HttpServer>> metrics = HttpServer::Start(
      http, MetricsHandler(engine_->metrics(), {"127.0.0.1", "localhost"}));
  ASSERT_TRUE(metrics.ok());
  const int port = (*metrics)->port();
  EXPECT_EQ(Http(port, "GET", "/metrics").status, 200);
  EXPECT_EQ(
      Http(port, "GET", "/metrics", "", {{"Host", "localhost:9464"}}).status,
      200);
  HttpResult rebound =
      Http(port, "GET", "/metrics", "", {{"Host", "evil.example:9464"}});
  EXPECT_EQ(rebound.status, 421);
  EXPECT_THAT(rebound.body, Not(HasSubstr("eraser_")));
  // Liveness tells nothing: a probe naming the pod's address passes.
  EXPECT_EQ(
      Http(port, "GET", "/healthz", "", {{"Host", "10.1.2.3:9464"}}).status,
      200);
}

}  // namespace
}  // namespace eraser::serve
