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
// acknowledged deletion is lost; a full disk under the deletion log is 507
// until space returns, without a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "../engine/engine_fixture.h"
#include "process.h"
#include "testing/http_client.h"
#include "testing/postgres.h"
#include "testing/small_disk.h"
#include "testing/socket_proxy.h"
#include "testing/temp_dir.h"

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
void DrainAll(const std::vector<const Server*>& servers) {
  for (int round = 0; round < 10; ++round) {
    bool idle = true;
    for (const Server* s : servers) {
      const HttpResult r = HttpConnection(s->port).Send("POST", "/v1/drain");
      const json j = r.json();
      idle = idle && r.status == 200 && j.is_object() &&
             j.value("pending_deletions", 1) == 0;
    }
    if (idle) return;
  }
  ADD_FAILURE() << "the replicas never drained together";
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The value of a counter in a Prometheus exposition ("" when absent).
std::string Metric(int port, const std::string& name) {
  const std::string text = HttpConnection(port).Send("GET", "/metrics").body;
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return "";
  const std::size_t begin = at + name.size() + 2;
  return text.substr(begin, text.find('\n', begin) - begin);
}

TEST(ServeReplicas, ThreeReplicasRoundRobinExposeNothing) {
  PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  std::vector<Server> servers;
  for (int i = 0; i < 3; ++i) {
    // Every answer is required below: a lease that never lapses.
    servers.push_back(StartServer(url, kPolicy, {"--replica-lease", "10m"}));
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
  DrainAll({&servers[0], &servers[1], &servers[2]});

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
  // The retrainings were shared out: replicas served models others trained.
  double reloads = 0;
  for (const Server& s : servers) {
    const std::string v = Metric(s.metrics_port, "eraser_shard_reloads_total");
    reloads += v.empty() ? 0 : std::stod(v);
  }
  EXPECT_GT(reloads, 0);
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

// Each acknowledged deletion's exclusions, read from the replica on `port`
// once the replicas have drained: every one must be applied.
std::map<uint64_t, std::map<uint32_t, uint64_t>> AppliedExclusions(
    int port, const std::map<uint64_t, TimePoint>& acked) {
  std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded;
  for (const auto& [seq, when] : acked) {
    std::string state;
    excluded[seq] = ExcludedFrom(port, seq, &state);
    EXPECT_EQ(state, "applied") << "acknowledged deletion " << seq;
  }
  return excluded;
}

// When the lease of the replica with process id `pid` runs out, on the
// database's clock (this machine's): the time no acknowledgement may come
// before while that replica cannot register deletions.
TimePoint LeaseEnd(PostgresCluster& pg, const std::string& database,
                   pid_t pid) {
  const std::string micros = Trimmed(
      pg.Sql(database,
             "SELECT (extract(epoch FROM lease_until) * 1000000)::bigint FROM "
             "eraser_replicas WHERE pid = " +
                 std::to_string(pid)));
  EXPECT_FALSE(micros.empty()) << "no lease for process " << pid;
  return FromUnixMicros(micros.empty() ? 0 : std::stoll(micros));
}

// Checks answers against deletions acknowledged before they were sent: a
// 200 answer either used, for every shard a deletion left, a model at least
// as new as the one that left it, or counted that shard as affected.
// Returns the (answer, deletion, shard) triples checked.
int ExpectNothingExposed(
    const std::vector<Answer>& answers,
    const std::map<uint64_t, TimePoint>& acked,
    const std::map<uint64_t, std::map<uint32_t, uint64_t>>& excluded) {
  int checked = 0;
  for (const Answer& a : answers) {
    if (a.status != 200) continue;
    const json& b = a.body;
    std::set<uint32_t> affected;
    for (const json& s : b["affected_shards"])
      affected.insert(s.get<uint32_t>());
    const std::vector<uint64_t> versions = b["model_versions"];
    for (const auto& [seq, when] : acked) {
      if (when >= a.sent) continue;  // acknowledged after it left
      for (const auto& [shard, version] : excluded.at(seq)) {
        if (affected.count(shard) > 0) continue;
        EXPECT_GE(versions[shard], version)
            << b["decision"] << " answer used shard " << shard << " version "
            << versions[shard] << " still holding deletion " << seq;
        ++checked;
      }
    }
  }
  return checked;
}

// A replica paused (SIGSTOP) holds its lease until it runs out: a deletion
// sent to another replica meanwhile is acknowledged only once the paused
// replica's lease has run out in the database (at least two thirds of a
// lease after the pause: it renews every third). Requests sent to the
// paused replica after that acknowledgement wait in its socket; when it
// resumes, it refuses them (503) until it has renewed its lease and read
// the log, and no answer it gives uses the deleted sample uncounted.
TEST(ServeReplicas, APausedReplicaHoldsAcknowledgementsOnlyForItsLease) {
  PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  constexpr auto kLease = std::chrono::seconds(2);
  std::vector<Server> servers;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(StartServer(url, kPolicy, {"--replica-lease", "2s"}));
    ASSERT_GT(servers.back().port, 0) << servers.back().process->output();
  }
  using eraser::testing::Eventually;
  ASSERT_TRUE(Eventually([&] {
    for (const Server& s : servers) {
      if (Metric(s.metrics_port, "eraser_replicas_live") != "3") return false;
    }
    return true;
  })) << "the replicas never saw each other's leases";

  std::map<uint64_t, TimePoint> acked;
  auto remove = [&](const Server& via, SampleId sample) {
    const HttpResult r = HttpConnection(via.port).Send(
        "POST", "/v1/deletions", json{{"sample", sample.value()}}.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    const uint64_t seq = r.json()["seq"].get<uint64_t>();
    acked[seq] = Now();
    return seq;
  };
  remove(servers[1], engine::testing::SampleIn(1, 0));

  Server& paused = servers[2];
  paused.process->Signal(SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  // Read after the pause: a renewal it had sent may still raise it, never
  // lower it.
  const TimePoint lease_end = LeaseEnd(pg, name, paused.process->pid());
  const uint64_t seq = remove(servers[0], engine::testing::SampleIn(0, 1));
  const auto waited = std::chrono::steady_clock::now() - stopped;
  EXPECT_GE(acked[seq], lease_end)
      << "acknowledged while the paused replica's lease was live";

  // Sent after the acknowledgement, to the paused replica.
  constexpr int kQueued = 12;
  std::vector<Answer> answers(kQueued);
  std::atomic<int> sending{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kQueued; ++i) {
    threads.emplace_back([&, i] {
      Answer& a = answers[i];
      a.input = static_cast<std::size_t>(i);
      HttpConnection conn(paused.port);
      a.sent = Now();
      ++sending;
      const HttpResult r = conn.Send("POST", "/v1/infer", InferBody(a.input));
      a.status = r.status;
      a.body = r.json();
    });
  }
  EXPECT_TRUE(Eventually([&] { return sending == kQueued; }));
  paused.process->Signal(SIGCONT);
  for (std::thread& t : threads) t.join();
  int refused = 0;
  for (const Answer& a : answers) {
    EXPECT_TRUE(a.status == 200 || a.status == 503) << a.body.dump();
    refused += a.status == 503 ? 1 : 0;
  }
  // It answers again once it holds its lease.
  EXPECT_TRUE(Eventually([&] {
    Answer a;
    a.input = answers.size() % 100;
    a.sent = Now();
    const HttpResult r = HttpConnection(paused.port)
                             .Send("POST", "/v1/infer", InferBody(a.input));
    a.status = r.status;
    a.body = r.json();
    answers.push_back(a);
    return r.status == 200;
  })) << "the paused replica never answered again";

  DrainAll({&servers[0], &servers[1], &servers[2]});
  const std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded =
      AppliedExclusions(servers[0].port, acked);
  EXPECT_GT(ExpectNothingExposed(answers, acked, excluded), 0);
  std::printf(
      "paused replica: acknowledged %.2f s after the pause (lease %.0f s); "
      "%d of %d requests queued in the pause refused\n",
      std::chrono::duration<double>(waited).count(),
      std::chrono::duration<double>(kLease).count(), refused, kQueued);
  for (Server& s : servers) {
    s.process->Signal(SIGTERM);
    EXPECT_EQ(s.process->Wait(), 0) << s.process->output();
  }
}

// A replica cut from the database (a proxy of the test's own that stops
// forwarding, as a partition that drops packets would: no error, only
// silence) stops answering before its lease has run out: no request sent a
// lease after the cut gets a 200. A deletion sent to the other replica
// meanwhile is acknowledged once the cut replica's lease has run out in the
// database. Healed, the cut replica renews its lease, reads the log, and
// answers again without exposing the deletion.
TEST(ServeReplicas, AReplicaCutFromTheDatabaseStopsAnsweringWithinItsLease) {
  PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  const eraser::testing::TempDir proxy_dir;
  eraser::testing::SocketProxy proxy(proxy_dir.Child(".s.PGSQL.5432"),
                                     pg.SocketPath());
  ASSERT_TRUE(proxy.ok());
  const std::string cut_url = "postgresql://eraser@/" + name +
                              "?host=" + proxy_dir.path() + "&port=5432";
  constexpr auto kLease = std::chrono::seconds(2);
  std::vector<Server> servers;
  for (const std::string& store : {url, cut_url}) {
    servers.push_back(StartServer(store, kPolicy, {"--replica-lease", "2s"}));
    ASSERT_GT(servers.back().port, 0) << servers.back().process->output();
  }
  using eraser::testing::Eventually;
  ASSERT_TRUE(Eventually([&] {
    return Metric(servers[0].metrics_port, "eraser_replicas_live") == "2";
  }));
  Server& cut = servers[1];
  std::vector<Answer> answers;
  auto infer = [&](std::size_t input) {
    Answer a;
    a.input = input;
    a.sent = Now();
    const HttpResult r =
        HttpConnection(cut.port).Send("POST", "/v1/infer", InferBody(input));
    a.status = r.status;
    a.body = r.json();
    answers.push_back(a);
    return a;
  };
  ASSERT_TRUE(
      eraser::testing::Eventually([&] { return infer(0).status == 200; }));

  proxy.Block();
  const TimePoint blocked = Now();
  const TimePoint lease_end = LeaseEnd(pg, name, cut.process->pid());
  // Refused within its lease, and for good while the cut lasts.
  EXPECT_TRUE(Eventually([&] { return infer(1).status == 503; }));
  const std::string refusal = answers.back().body.value("reason", "");
  EXPECT_EQ(refusal, "store_unavailable");
  std::map<uint64_t, TimePoint> acked;
  const auto asked = std::chrono::steady_clock::now();
  const HttpResult r =
      HttpConnection(servers[0].port)
          .Send(
              "POST", "/v1/deletions",
              json{{"sample", engine::testing::SampleIn(2, 1).value()}}.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  acked[r.json()["seq"].get<uint64_t>()] = Now();
  const auto waited = std::chrono::steady_clock::now() - asked;
  EXPECT_GE(acked.begin()->second, lease_end)
      << "acknowledged while the cut replica's lease was live";
  for (int i = 0; i < 10; ++i) infer(2 + i);
  EXPECT_EQ(HttpConnection(cut.port).Send("GET", "/readyz").status, 503);
  int late = 0;
  for (const Answer& a : answers) {
    if (a.sent >= blocked + kLease && a.status == 200) ++late;
  }
  EXPECT_EQ(late, 0) << "answers to requests sent a lease after the cut";

  proxy.Heal();
  EXPECT_TRUE(Eventually([&] { return infer(3).status == 200; }))
      << "the replica never answered again after the cut healed";
  for (int i = 0; i < 10; ++i) infer(4 + i);
  DrainAll({&servers[0], &servers[1]});
  const std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded =
      AppliedExclusions(servers[0].port, acked);
  EXPECT_GT(ExpectNothingExposed(answers, acked, excluded), 0);
  std::printf(
      "cut replica: deletion acknowledged after %.2f s (lease %.0f s)\n",
      std::chrono::duration<double>(waited).count(),
      std::chrono::duration<double>(kLease).count());
  for (Server& s : servers) {
    s.process->Signal(SIGTERM);
    EXPECT_EQ(s.process->Wait(), 0) << s.process->output();
  }
}

// A replica stopped by `signal` (SIGKILL: dead; SIGSTOP: paused) in the
// middle of a retraining leaves the job to another: a dead one's claim ends
// with its session, a paused one's within its lease (the server ends the
// claim's session once it has been idle that long). A paused one that wakes
// up and finishes its retraining cannot commit it over the newer model.
void AStoppedReplicaLeavesItsRetrainingToAnother(int signal) {
  PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  // Many epochs: a retraining of the whole shard lasts long enough to be
  // caught holding its claim.
  unlearning::SisaOptions slow = engine::testing::SmallSisaOptions();
  slow.epochs = {60, 120};
  engine::testing::BuildInto(url, slow);
  std::vector<Server> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(StartServer(
        url + "&application_name=replica" + std::to_string(i),
        "eraser:batch:1,wait,deadline=1h", {"--replica-lease", "2s"}));
    ASSERT_GT(servers.back().port, 0) << servers.back().process->output();
  }
  // A sample of slice 0: its shard retrains every stage.
  const SampleId sample = engine::testing::SampleIn(1, 0);
  HttpResult r = HttpConnection(servers[0].port)
                     .Send("POST", "/v1/deletions",
                           json{{"sample", sample.value()}}.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  const uint64_t seq = r.json()["seq"].get<uint64_t>();
  // The replica holding shard 1's claim, from the server's lock table.
  std::string holder;
  eraser::testing::Eventually([&] {
    holder = Trimmed(pg.Sql(
        name,
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
        "l.classid = 1701994867 AND l.objid = 1"));
    return !holder.empty();
  });
  ASSERT_TRUE(holder == "replica0" || holder == "replica1") << holder;
  const int victim = holder == "replica0" ? 0 : 1;
  const Server& survivor = servers[1 - victim];
  servers[victim].process->Signal(signal);
  if (signal == SIGKILL) {
    EXPECT_EQ(servers[victim].process->Wait(), 128 + SIGKILL);
  }

  DrainAll({&survivor});
  std::string state;
  const std::map<uint32_t, uint64_t> excluded =
      ExcludedFrom(survivor.port, seq, &state);
  EXPECT_EQ(state, "applied");
  ASSERT_EQ(excluded.size(), 1u);
  EXPECT_EQ(excluded.begin()->first, 1u);
  EXPECT_EQ(excluded.begin()->second, 2u) << "applied exactly once";
  // The survivor did the retraining the victim stopped in.
  EXPECT_EQ(Metric(survivor.metrics_port, "eraser_shard_retrains_total"), "1");
  if (signal == SIGSTOP) {
    // Woken up, the victim finishes its retraining; its commit is refused
    // (the stored model is as new), and it serves the survivor's.
    servers[victim].process->Signal(SIGCONT);
    DrainAll({&servers[0], &servers[1]});
    EXPECT_EQ(ExcludedFrom(servers[victim].port, seq, &state),
              (std::map<uint32_t, uint64_t>{{1, 2}}))
        << "applied again";
    servers[victim].process->Signal(SIGTERM);
    EXPECT_EQ(servers[victim].process->Wait(), 0)
        << servers[victim].process->output();
  }
  survivor.process->Signal(SIGTERM);
  EXPECT_EQ(survivor.process->Wait(), 0) << survivor.process->output();
  EXPECT_EQ(engine::testing::LastCheckpoints(url),
            engine::testing::ScratchCheckpoints({sample}, slow));
}

TEST(ServeReplicas, AReplicaKilledInTheMiddleOfARetrainingLeavesItToAnother) {
  AStoppedReplicaLeavesItsRetrainingToAnother(SIGKILL);
}

TEST(ServeReplicas, AReplicaPausedInTheMiddleOfARetrainingLeavesItToAnother) {
  AStoppedReplicaLeavesItsRetrainingToAnother(SIGSTOP);
}

// PostgreSQL stops under load and starts again. While it is down the
// replicas refuse with 503 and say why, "store_unavailable" (their leases
// run out, and a deletion cannot be made durable); once it is back they take
// their leases again and serve by themselves, no deletion sent after the
// restart and no inference sent once /readyz says ready again is refused for
// the store, and every deletion acknowledged with a
// 202 is applied after a drain. Under ThreadSanitizer on a slow machine
// retraining cannot keep up with a deletion every 20 ms: every shard stays
// affected and `wait` answers 503 "no_certified_answer" after max-wait, by
// design. So the deletions stop once some are acknowledged after the
// restart, and inference is then required to recover, whatever the
// machine's speed.
TEST(ServeReplicas, PostgresRestartedUnderLoadLosesNothingAcknowledged) {
  PostgresCluster pg;  // its own: this test stops it
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  std::vector<Server> servers;
  for (int i = 0; i < 2; ++i) {
    // A request parked for a retraining the outage holds up gets its
    // fallback after 2 s rather than 30.
    servers.push_back(StartServer(url, kPolicy, {"--max-wait", "2s"}));
    ASSERT_GT(servers.back().port, 0) << servers.back().process->output();
  }
  // The database's state when a request was sent.
  // kLeased: both replicas hold their leases again (/readyz says so).
  enum Phase { kUp, kStopping, kDown, kStarting, kBack, kLeased, kQuiet };
  std::atomic<int> phase{kUp};
  // Per phase at sending: status and reason -> count, for each kind.
  using Tally = std::map<std::pair<int, std::string>, int>;
  std::mutex mu;
  std::map<int, Tally> infers, deletes;
  std::vector<uint64_t> acked;
  std::atomic<bool> stop{false}, stop_deleting{false};
  auto count = [&](std::map<int, Tally>& tally, int sent_in,
                   const HttpResult& r) {
    const json j = r.json();
    const std::string reason =
        j.is_object() ? j.value("reason", std::string()) : std::string();
    std::lock_guard<std::mutex> lock(mu);
    ++tally[sent_in][{r.status, reason}];
  };
  auto seen = [&](std::map<int, Tally>& tally, int sent_in, int status,
                  const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    return tally[sent_in][{status, reason}];
  };
  // A connection per request: a request may wait (parked for a retraining
  // the outage delays) longer than another replica keeps an idle
  // connection open.
  std::vector<std::thread> threads;
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {
      for (int i = c; !stop; i += 2) {
        const int sent_in = phase;
        const HttpResult r =
            eraser::testing::Http(servers[i % servers.size()].port, "POST",
                                  "/v1/infer", InferBody(i % 100));
        count(infers, sent_in, r);
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; !stop && !stop_deleting; ++i) {
      const int sent_in = phase;
      const HttpResult r = eraser::testing::Http(
          servers[i % servers.size()].port, "POST", "/v1/deletions",
          json{{"sample",
                static_cast<uint64_t>(i % engine::testing::kTrainSamples)}}
              .dump());
      count(deletes, sent_in, r);
      if (r.status == 202) {
        std::lock_guard<std::mutex> lock(mu);
        acked.push_back(r.json()["seq"].get<uint64_t>());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  using eraser::testing::Eventually;
  EXPECT_TRUE(Eventually([&] { return seen(deletes, kUp, 202, "") >= 10; }));
  // (No ASSERT while the client threads run: they must be joined.)
  phase = kStopping;
  EXPECT_TRUE(pg.Stop()) << pg.error();
  phase = kDown;
  EXPECT_TRUE(Eventually([&] {
    return seen(infers, kDown, 503, "store_unavailable") > 0 &&
           seen(deletes, kDown, 503, "store_unavailable") > 0;
  })) << "no 503 store_unavailable while the database was down";
  phase = kStarting;
  EXPECT_TRUE(pg.Start()) << pg.error();
  phase = kBack;
  // Each replica renews its lease and reads the log before it answers
  // again (docs/scale-out.md).
  EXPECT_TRUE(Eventually([&] {
    for (const Server& s : servers) {
      if (HttpConnection(s.port).Send("GET", "/readyz").status != 200) {
        return false;
      }
    }
    return true;
  })) << "the replicas did not take their leases again";
  phase = kLeased;
  EXPECT_TRUE(Eventually([&] { return seen(deletes, kLeased, 202, "") >= 10; }))
      << "no deletion acknowledged after the restart";
  stop_deleting = true;
  phase = kQuiet;
  EXPECT_TRUE(Eventually([&] { return seen(infers, kQuiet, 200, "") >= 20; }))
      << "the replicas did not answer again once the deletions stopped";
  stop = true;
  for (std::thread& t : threads) t.join();
  auto print = [](const char* kind, const std::map<int, Tally>& tally) {
    static const char* const kPhases[] = {
        "up", "stopping", "down", "starting", "back", "leased", "quiet"};
    for (const auto& [sent_in, answers] : tally) {
      for (const auto& [key, n] : answers) {
        std::printf("postgres restart: %s sent while %s: %d x %d %s\n", kind,
                    kPhases[sent_in], n, key.first, key.second.c_str());
      }
    }
  };
  print("inference", infers);
  print("deletion", deletes);
  // Every refusal says why; once the replicas hold their leases again,
  // never the store (a deletion does not need one).
  const std::set<std::string> refusals = {"store_unavailable",
                                          "no_certified_answer"};
  for (const auto& [sent_in, answers] : infers) {
    for (const auto& [key, n] : answers) {
      const auto& [status, reason] = key;
      EXPECT_TRUE(status == 200 || (status == 503 && refusals.count(reason)))
          << n << " inferences answered " << status << " " << reason;
      EXPECT_FALSE(sent_in >= kLeased && reason == "store_unavailable")
          << n << " inferences sent after the leases were renewed refused "
          << "for the store";
    }
  }
  for (const auto& [sent_in, answers] : deletes) {
    for (const auto& [key, n] : answers) {
      const auto& [status, reason] = key;
      EXPECT_TRUE(status == 202 || status == 404 ||
                  (status == 503 && reason == "store_unavailable"))
          << n << " deletions answered " << status << " " << reason;
      EXPECT_FALSE(sent_in >= kBack && status != 202 && status != 404)
          << n << " deletions sent after the restart answered " << status << " "
          << reason;
    }
  }
  DrainAll({&servers[0], &servers[1]});
  for (uint64_t seq : acked) {
    std::string state;
    ExcludedFrom(servers[seq % 2].port, seq, &state);
    EXPECT_EQ(state, "applied") << "acknowledged deletion " << seq;
  }
  std::printf("postgres restart: %zu deletions acknowledged\n", acked.size());
  const std::string refused =
      Metric(servers[0].metrics_port,
             "eraser_http_refused_total{reason=\"store_unavailable\"}");
  EXPECT_FALSE(refused.empty() || refused == "0") << "not counted";
  for (Server& s : servers) {
    s.process->Signal(SIGTERM);
    EXPECT_EQ(s.process->Wait(), 0) << s.process->output();
  }
}

// A synchronous standby, for real: a second cluster copied with
// pg_basebackup, the primary waiting for it at every commit, replicas given
// both with a multi-host URL (target_session_attrs=read-write). The primary
// is killed (SIGKILL, the whole server) under deletion and inference load,
// the standby promoted: every deletion acknowledged before the kill is on
// the promoted server, the replicas reconnect by themselves (their leases
// ran out meanwhile: they catch up before answering), deletions are
// acknowledged again, every acknowledged deletion is applied, and no answer
// exposes one.
TEST(ServeReplicas, APromotedSynchronousStandbyLosesNothingAcknowledged) {
  PostgresCluster primary;  // its own: this test kills it
  ASSERT_TRUE(primary.ok()) << primary.error();
  std::string name;
  const std::string url = primary.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << primary.error();
  engine::testing::BuildInto(url);
  std::unique_ptr<PostgresCluster> standby =
      PostgresCluster::StandbyOf(primary);
  ASSERT_TRUE(standby->ok()) << standby->error();
  const std::string both =
      "postgresql://eraser@/" + name + "?host=" + primary.SocketDir() + "," +
      standby->SocketDir() + "&port=5432&target_session_attrs=read-write";
  std::vector<Server> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(StartServer(
        both, kPolicy, {"--replica-lease", "2s", "--max-wait", "2s"}));
    ASSERT_GT(servers.back().port, 0) << servers.back().process->output();
  }
  std::mutex mu;
  std::map<uint64_t, TimePoint> acked;
  std::set<SampleId> deleted;
  std::vector<Answer> answers;
  std::atomic<bool> stop{false};
  std::atomic<int> acked_after{0};  // acknowledged after the promotion
  std::atomic<bool> promoted{false};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; !stop; ++i) {
      Answer a;
      a.input = static_cast<std::size_t>(i % 100);
      a.sent = Now();
      const HttpResult r = eraser::testing::Http(
          servers[i % 2].port, "POST", "/v1/infer", InferBody(a.input));
      a.status = r.status;
      a.body = r.json();
      std::lock_guard<std::mutex> lock(mu);
      answers.push_back(std::move(a));
    }
  });
  threads.emplace_back([&] {
    for (int i = 0; !stop; ++i) {
      const SampleId sample(static_cast<uint64_t>(i) %
                            engine::testing::kTrainSamples);
      const bool after = promoted;
      const HttpResult r =
          eraser::testing::Http(servers[i % 2].port, "POST", "/v1/deletions",
                                json{{"sample", sample.value()}}.dump());
      EXPECT_TRUE(r.status == 202 || r.status == 503) << r.body;
      if (r.status == 202) {
        std::lock_guard<std::mutex> lock(mu);
        acked[r.json()["seq"].get<uint64_t>()] = Now();
        deleted.insert(sample);
        if (after) ++acked_after;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  using eraser::testing::Eventually;
  auto acknowledged = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  EXPECT_TRUE(Eventually([&] { return acknowledged() >= 10; }));
  EXPECT_TRUE(primary.Kill()) << primary.error();
  std::set<uint64_t> before_kill;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [seq, when] : acked) before_kill.insert(seq);
  }
  // The operator's rule (docs/scale-out.md): promote once the replicas'
  // leases have run out, so that no replica answers on a lease the old
  // primary's clock granted.
  EXPECT_TRUE(Eventually([&] {
    for (const Server& s : servers) {
      if (HttpConnection(s.port).Send("GET", "/readyz").status != 503) {
        return false;
      }
    }
    return true;
  }));
  EXPECT_TRUE(standby->Promote()) << standby->error();
  promoted = true;
  EXPECT_TRUE(Eventually([&] { return acked_after >= 10; }))
      << "no deletion acknowledged after the promotion";
  stop = true;
  for (std::thread& t : threads) t.join();

  // On the promoted server: every deletion acknowledged before the kill.
  const std::string logged =
      standby->Sql(name,
                   "SELECT string_agg(seq::text, ' ') FROM "
                   "eraser_deletions");
  std::set<uint64_t> on_standby;
  std::istringstream in(logged);
  for (uint64_t seq; in >> seq;) on_standby.insert(seq);
  for (uint64_t seq : before_kill) {
    EXPECT_EQ(on_standby.count(seq), 1u)
        << "deletion " << seq << " acknowledged, then lost in the failover";
  }
  DrainAll({&servers[0], &servers[1]});
  const std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded =
      AppliedExclusions(servers[0].port, acked);
  EXPECT_GT(ExpectNothingExposed(answers, acked, excluded), 0);
  int refused = 0;
  for (const Answer& a : answers) refused += a.status == 503 ? 1 : 0;
  std::printf(
      "failover: %zu deletions acknowledged before the kill, all on the "
      "promoted standby; %zu in all; %d of %zu inferences refused (503)\n",
      before_kill.size(), acked.size(), refused, answers.size());
  for (Server& s : servers) {
    s.process->Signal(SIGTERM);
    EXPECT_EQ(s.process->Wait(), 0) << s.process->output();
  }
  // Every deletion in the log, acknowledged or not (one refused while its
  // commit was in doubt may have committed, and is applied like the rest).
  std::vector<SampleId> logged_samples;
  std::istringstream targets(
      standby->Sql(name,
                   "SELECT string_agg(DISTINCT substr(target, 8), ' ') FROM "
                   "eraser_deletions"));
  for (uint64_t id; targets >> id;) logged_samples.push_back(SampleId(id));
  EXPECT_GE(logged_samples.size(), deleted.size());
  EXPECT_EQ(engine::testing::LastCheckpoints(both),
            engine::testing::ScratchCheckpoints(logged_samples));
}

// The deletion log on a full disk: the log's tables on a tablespace on a
// small tmpfs, which a filler then fills. Deletions are refused 507
// disk_full and take no sequence number while inference goes on; once the
// filler is removed the same server, not restarted, acknowledges again, and
// every deletion it acknowledged is applied.
TEST(ServeReplicas, AFullDeletionLogDiskIs507UntilSpaceReturns) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(16 << 20, &disk);
  if (disk == nullptr) return;
  PostgresCluster pg;  // its own, stopped before the disk is unmounted
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_TRUE(pg.CreateTablespace("small", disk->path() + "/tablespace"))
      << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  pg.Sql(name,
         "ALTER TABLE eraser_deletions SET TABLESPACE small; "
         "ALTER INDEX eraser_deletions_pkey SET TABLESPACE small; "
         "ALTER INDEX eraser_deletions_pending SET TABLESPACE small; "
         "ALTER TABLE eraser_log_head SET TABLESPACE small");
  ASSERT_TRUE(pg.ok()) << pg.error();
  Server server = StartServer(url, kPolicy, {"--max-wait", "2s"});
  ASSERT_GT(server.port, 0) << server.process->output();

  uint64_t sample = 0;
  auto remove = [&] {
    return eraser::testing::Http(
        server.port, "POST", "/v1/deletions",
        json{{"sample", sample++ % engine::testing::kTrainSamples}}.dump());
  };
  std::vector<uint64_t> acked;
  auto acknowledge = [&](const HttpResult& r) {
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status == 202) acked.push_back(r.json()["seq"].get<uint64_t>());
  };
  for (int i = 0; i < 5; ++i) acknowledge(remove());
  ASSERT_GT(disk->Fill(), 0u);
  // The tables' last pages may still have room: deletions are acknowledged
  // until the log must grow.
  int refused = 0;
  for (int i = 0; i < 5000 && refused == 0; ++i) {
    const HttpResult r = remove();
    if (r.status == 202) {
      acknowledge(r);
      continue;
    }
    EXPECT_EQ(r.status, 507) << r.body;
    EXPECT_EQ(r.json().value("reason", ""), "disk_full") << r.body;
    ++refused;
  }
  ASSERT_EQ(refused, 1) << "the disk never filled";
  for (int i = 0; i < 3; ++i) {
    const HttpResult r = remove();
    EXPECT_EQ(r.status, 507) << r.body;
  }
  // Inference goes on: answered, or refused only for want of a certified
  // answer while the affected shards' applies wait for the disk.
  for (int i = 0; i < 10; ++i) {
    const HttpResult r =
        eraser::testing::Http(server.port, "POST", "/v1/infer", InferBody(i));
    EXPECT_TRUE(r.status == 200 ||
                (r.status == 503 &&
                 r.json().value("reason", "") == "no_certified_answer"))
        << r.status << " " << r.body;
  }
  std::printf("full deletion log: %zu acknowledged before the refusal\n",
              acked.size());

  disk->Free();
  const std::size_t before = acked.size();
  for (int i = 0; i < 5; ++i) acknowledge(remove());
  ASSERT_EQ(acked.size(), before + 5);
  // The refused deletions took no number.
  EXPECT_EQ(acked[before], acked[before - 1] + 1);
  DrainAll({&server});
  for (uint64_t seq : acked) {
    std::string state;
    ExcludedFrom(server.port, seq, &state);
    EXPECT_EQ(state, "applied") << "acknowledged deletion " << seq;
  }
  EXPECT_EQ(Metric(server.metrics_port,
                   "eraser_http_refused_total{reason=\"disk_full\"}"),
            "4");
  server.process->Signal(SIGTERM);
  EXPECT_EQ(server.process->Wait(), 0) << server.process->output();
}

}  // namespace
}  // namespace eraser::serve
