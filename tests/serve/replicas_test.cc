// `eraser serve` replicas on one PostgreSQL database, as behind a load
// balancer: the clients here send deletions and inferences to each replica
// in turn and record, on their own clock, when each deletion was
// acknowledged and when each request left. Checked from outside: no answer
// to a request sent after an acknowledgement used a shard model that still
// held the deletion unless it counted that shard as affected; every
// deletion is applied, once per shard; certified answers agree with the
// ensemble trained from scratch without every deletion; a replica killed in
// the middle of a retraining leaves it to another; PostgreSQL restarted
// under load makes the replicas refuse (503) and then serve again, and no
// acknowledged deletion is lost.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "../engine/engine_fixture.h"
#include "http_client.h"
#include "process.h"
#include "testing/postgres.h"

namespace eraser::serve {
namespace {

using eraser::testing::HttpConnection;
using eraser::testing::HttpResult;
using eraser::testing::PostgresCluster;
using eraser::testing::Server;
using eraser::testing::StartServer;
using nlohmann::json;

constexpr char kPolicy[] = "eraser:lazy,wait,deadline=5s";

TimePoint Now() { return SystemClock::Default()->Now(); }

std::string InferBody(std::size_t input) {
  return json{{"features", engine::testing::Input(input)}}.dump();
}

// One answer as the client saw it.
struct Answer {
  TimePoint sent;
  std::size_t input = 0;
  int status = 0;
  json body;
};

// The first model version of each shard without deletion `seq`, from the
// replica's deletion status; empty if the request failed.
std::map<uint32_t, uint64_t> ExcludedFrom(int port, uint64_t seq,
                                          std::string* state) {
  std::map<uint32_t, uint64_t> out;
  HttpResult r =
      HttpConnection(port).Send("GET", "/v1/deletions/" + std::to_string(seq));
  const json j = r.json();
  if (r.status != 200 || !j.is_object()) return out;
  *state = j["state"].get<std::string>();
  for (const json& e : j["excluded_from"]) {
    EXPECT_TRUE(
        out.emplace(e["shard"].get<uint32_t>(), e["version"].get<uint64_t>())
            .second)
        << "deletion " << seq << " left shard " << e["shard"] << " twice";
  }
  return out;
}

// Drains every replica until, in one round, all of them report nothing
// pending: a replica may learn of another's deletion after its own drain.
void DrainAll(const std::vector<Server>& servers) {
  for (int round = 0; round < 20; ++round) {
    bool idle = true;
    for (const Server& s : servers) {
      const HttpResult r = HttpConnection(s.port, std::chrono::minutes(2))
                               .Send("POST", "/v1/drain");
      const json j = r.json();
      idle = idle && r.status == 200 && j.is_object() &&
             j.value("pending_deletions", 1) == 0;
    }
    if (idle) return;
  }
  ADD_FAILURE() << "the replicas never drained together";
}

TEST(ServeReplicas, ThreeReplicasRoundRobinExposeNothing) {
  PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  std::vector<Server> servers;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(StartServer(url, kPolicy));
    ASSERT_GT(servers.back().port, 0) << servers.back().process->output();
  }

  constexpr int kClients = 2;
  constexpr int kPerClient = 150;
  constexpr int kDeletions = 20;
  std::vector<std::vector<Answer>> answers(kClients);
  std::map<uint64_t, TimePoint> acked;  // seq -> acknowledgement received
  std::set<SampleId> deleted;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      std::vector<std::unique_ptr<HttpConnection>> conns;
      for (const Server& s : servers) {
        conns.push_back(std::make_unique<HttpConnection>(s.port));
      }
      for (int i = 0; i < kPerClient; ++i) {
        Answer a;
        a.input = static_cast<std::size_t>(c * kPerClient + i) %
                  engine::testing::Template::kHeldOut;
        a.sent = Now();
        HttpResult r = conns[i % conns.size()]->Send("POST", "/v1/infer",
                                                     InferBody(a.input));
        a.status = r.status;
        a.body = r.json();
        answers[c].push_back(std::move(a));
      }
    });
  }
  threads.emplace_back([&] {
    std::vector<std::unique_ptr<HttpConnection>> conns;
    for (const Server& s : servers) {
      conns.push_back(std::make_unique<HttpConnection>(s.port));
    }
    for (int i = 0; i < kDeletions; ++i) {
      const SampleId sample = engine::testing::SampleIn(
          static_cast<uint32_t>(i % engine::testing::kShards),
          static_cast<uint32_t>(i % engine::testing::kSlices),
          static_cast<std::size_t>(i));
      HttpResult r = conns[i % conns.size()]->Send(
          "POST", "/v1/deletions", json{{"sample", sample.value()}}.dump());
      ASSERT_EQ(r.status, 202) << r.body;
      acked[r.json()["seq"].get<uint64_t>()] = Now();
      deleted.insert(sample);
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    }
  });
  for (std::thread& t : threads) t.join();
  DrainAll(servers);

  std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded;
  for (const auto& [seq, when] : acked) {
    std::string state;
    excluded[seq] = ExcludedFrom(servers[seq % 3].port, seq, &state);
    EXPECT_EQ(state, "applied") << seq;
    EXPECT_EQ(excluded[seq].size(), 1u) << "deletion " << seq;
  }
  // The oracle: after the drain every replica serves the ensemble trained
  // from scratch without the deleted samples (checked byte for byte below);
  // its clean answers are the labels that ensemble gives.
  std::map<std::size_t, int32_t> oracle;
  for (const auto& client : answers) {
    for (const Answer& a : client) {
      if (oracle.count(a.input) > 0) continue;
      const json j = HttpConnection(servers[a.input % 3].port)
                         .Send("POST", "/v1/infer", InferBody(a.input))
                         .json();
      ASSERT_EQ(j["decision"], "clean");
      oracle[a.input] = j["label"].get<int32_t>();
    }
  }
  const uint64_t last_seq = acked.rbegin()->first;
  int checked = 0;
  int certified_checked = 0;
  for (const auto& client : answers) {
    for (const Answer& a : client) {
      ASSERT_EQ(a.status, 200) << a.body.dump();
      const json& b = a.body;
      std::set<uint32_t> affected;
      for (const json& s : b["affected_shards"])
        affected.insert(s.get<uint32_t>());
      const std::vector<uint64_t> versions = b["model_versions"];
      for (const auto& [seq, when] : acked) {
        if (when >= a.sent) continue;  // acknowledged after it left
        for (const auto& [shard, version] : excluded[seq]) {
          if (affected.count(shard) > 0) continue;
          EXPECT_GE(versions[shard], version)
              << b["decision"] << " answer used shard " << shard << " version "
              << versions[shard] << " still holding deletion " << seq;
          ++checked;
        }
      }
      // An answer decided with every deletion known: certified (or clean)
      // means the ensemble without all of them gives the same label.
      const std::string decision = b["decision"];
      if (b["deletion_watermark"].get<uint64_t>() == last_seq &&
          (decision == "certified" || decision == "clean" ||
           decision == "waited")) {
        EXPECT_EQ(b["label"].get<int32_t>(), oracle[a.input])
            << decision << " answer for input " << a.input;
        ++certified_checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
  std::printf(
      "replicas: %d answer-deletion pairs checked, %d answers checked "
      "against the oracle\n",
      checked, certified_checked);
  for (Server& s : servers) {
    s.process->Signal(SIGTERM);
    EXPECT_EQ(s.process->Wait(), 0) << s.process->output();
  }
  EXPECT_EQ(
      engine::testing::LastCheckpoints(url),
      engine::testing::ScratchCheckpoints({deleted.begin(), deleted.end()}));
}

}  // namespace
}  // namespace eraser::serve
