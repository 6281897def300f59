// Randomized robustness, bounded in count (the same inputs on any machine,
// fast or slow): mutated and random HTTP requests and bodies against the
// in-process server, and mutated traces against the trace parser. Nothing
// may crash, hang or answer outside the documented status codes; run under
// ASan/UBSan (make asan) and TSan (make tsan).
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>

#include "../engine/engine_fixture.h"
#include "eraser/serve/api.h"
#include "eraser/serve/http_server.h"
#include "eraser/workloads/trace.h"
#include "testing/http_client.h"

namespace eraser::serve {
namespace {

using eraser::testing::HttpConnection;
using eraser::testing::HttpResult;

std::string Mutate(std::string s, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 4) {
      case 0:  // flip a byte
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 1:  // truncate
        s.resize(pos);
        break;
      case 2:  // insert random bytes
        s.insert(pos, std::string(1 + rng() % 8, static_cast<char>(rng())));
        break;
      default:  // duplicate a chunk
        s.insert(pos, s.substr(pos, rng() % 16));
    }
  }
  return s;
}

constexpr int kRequests = 300;

TEST(Fuzz, MalformedRequestsNeverBreakTheServer) {
  eraser::testing::TempDir dir;
  engine::EngineOptions options = engine::testing::Options(
      engine::testing::CopyTemplate(dir), "eraser:lazy,partial,deadline=1h");
  StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Open(options);
  ASSERT_TRUE(engine.ok());
  Api api(engine->get());
  HttpServerOptions http;
  http.listen = "127.0.0.1:0";
  http.body_limit = 64 << 10;
  StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(http, [&api](Request r, Respond respond) {
        api.Handle(std::move(r), std::move(respond));
      });
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();

  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"/v1/infer",
       nlohmann::json{{"features", engine::testing::Input(0)}}.dump()},
      {"/v1/infer", R"({"test_index": 2500})"},
      {"/v1/deletions", R"({"sample": 12})"},
      {"/v1/deletions", R"({"owner": 40})"},
  };
  const std::set<int> allowed = {200, 202, 400, 404, 405, 413,
                                 415, 429, 431, 501, 503};
  std::mt19937 rng(2024);
  HttpConnection connection(port);
  for (int request = 0; request < kRequests; ++request) {
    const auto& [target, body] = seeds[rng() % seeds.size()];
    HttpResult r = connection.Send("POST", target, Mutate(body, rng));
    ASSERT_TRUE(allowed.count(r.status)) << r.status << " " << r.error;
    if (rng() % 8 == 0) {
      // Raw HTTP with a damaged request line or headers: a 400 or a closed
      // connection, never a crash.
      const std::string raw = "POST " + target +
                              " HTTP/1.1\r\nHost: x\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
      // A mutation may leave the server waiting for body bytes that never
      // come: give up on the answer quickly (the server drops the idle
      // connection after its own timeout).
      HttpResult broken = HttpConnection(port, std::chrono::milliseconds(200))
                              .SendRaw(Mutate(raw, rng));
      if (broken.status != 0) {
        EXPECT_TRUE(allowed.count(broken.status)) << broken.status;
      }
    }
  }
  EXPECT_EQ(eraser::testing::Http(port, "GET", "/healthz").status, 200);
  (*server)->BeginShutdown(std::chrono::milliseconds(0));
  (*engine)->Close();
  (*server)->Stop();
  api.Join();  // its threads hold the server's connections
}

TEST(Fuzz, TraceParserSurvivesMutations) {
  const std::string valid =
      "time_ms,op,target\n0,infer,12\n1.5,delete,sample:42\n"
      "1.5,infer,9999\n2000,delete,owner:7\n2001.25,infer,3\n";
  std::mt19937 rng(7);
  int ok = 0;
  int rejected = 0;
  for (int i = 0; i < 100'000; ++i) {
    StatusOr<workloads::Trace> t =
        workloads::ParseTrace(Mutate(valid, rng), "fuzz");
    if (t.ok()) {
      ++ok;
      // Whatever it accepts is sorted and well formed.
      double last = 0;
      for (const workloads::TraceEvent& e : t->events) {
        ASSERT_GE(e.time_ms, last);
        last = e.time_ms;
      }
    } else {
      ASSERT_EQ(t.status().code(), StatusCode::kInvalidArgument);
      ++rejected;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace eraser::serve
