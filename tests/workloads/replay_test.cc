// A short replay on the small engine fixture: the JSON report carries every
// contract field, decisions add up, ERASER policies neither expose nor
// disagree with either oracle (retrained, from scratch) or the final state,
// inference-first exposes on a scenario built for it, and the replay's own
// exposure count catches an engine planted with a forgotten shard.
#include "eraser/workloads/replay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../engine/engine_fixture.h"
#include "eraser/unlearning/evaluate.h"
#include "testing/policies.h"
#include "testing/postgres.h"
#include "testing/temp_dir.h"

namespace eraser::workloads {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// A trace's events in time order (equal times keep their order).
void SortByTime(Trace* t) {
  std::stable_sort(t->events.begin(), t->events.end(),
                   [](const TraceEvent& a, const TraceEvent& b) {
                     return a.time_ms < b.time_ms;
                   });
}

// 3 s: 40 inferences per second on held-out images; 8 deletions in the
// first 1.6 s, two per shard, so most answers have affected shards.
Trace Scenario() {
  Trace t;
  for (int i = 0; i < 120; ++i) {
    TraceEvent e;
    e.time_ms = i * 25.0;
    e.test_index = (i * 7) % 1000;
    t.events.push_back(e);
  }
  for (int d = 0; d < 8; ++d) {
    TraceEvent e;
    e.time_ms = 100.0 + d * 200.0 + 1;
    e.op = TraceEvent::Op::kDelete;
    e.deletion = storage::DeletionTarget::Sample(
        engine::testing::SampleIn(d % 4, (d / 4) % 2, d));
    t.events.push_back(e);
  }
  SortByTime(&t);
  return t;
}

TEST(Replay, ReportHasEveryContractFieldAndHoldsTheGuarantees) {
  const engine::testing::Template& tmpl = engine::testing::GetTemplate();
  eraser::testing::TempDir work;
  ReplayConfig config;
  config.policies = eraser::testing::PoliciesOrDie(
      {"immediate", "inference-first", "eraser-lazy-wait",
       "eraser-lazy-partial", "eraser:lazy,soft"});
  config.work_dir = work.path();
  config.oracle_from_scratch_sample = 1000;  // every answer
  StatusOr<ReplayReport> report = RunReplay(Scenario(), tmpl.dir, config);
  ASSERT_TRUE(report.ok()) << report.status();
  report->workload_json = R"({"name": "replay-test"})";
  const json j = json::parse(report->ToJson());

  EXPECT_EQ(j["workload"]["name"], "replay-test");
  EXPECT_EQ(j["oracle"], true);
  for (const char* key :
       {"dataset", "shards", "slices", "arch", "test_accuracy"}) {
    EXPECT_TRUE(j["model"].contains(key)) << key;
  }
  EXPECT_EQ(j["model"]["shards"], 4);
  ASSERT_EQ(j["policies"].size(), 5u);
  for (const json& p : j["policies"]) {
    SCOPED_TRACE(p["name"].get<std::string>());
    const json& inf = p["inference"];
    for (const char* key : {"requests", "throughput_rps", "accuracy",
                            "latency_ms", "decisions"}) {
      EXPECT_TRUE(inf.contains(key)) << key;
    }
    for (const char* key : {"mean", "p50", "p95", "p99", "max"}) {
      EXPECT_TRUE(inf["latency_ms"].contains(key)) << key;
    }
    uint64_t sum = 0;
    for (const char* key : {"clean", "certified", "waited", "partial",
                            "rejected", "uncertified", "prefix"}) {
      ASSERT_TRUE(inf["decisions"].contains(key)) << key;
      sum += inf["decisions"][key].get<uint64_t>();
    }
    EXPECT_EQ(sum + inf["refused"].get<uint64_t>(),
              inf["requests"].get<uint64_t>());
    EXPECT_EQ(inf["refused"], 0);
    EXPECT_EQ(inf["requests"], 120);
    // Every decided request, by the shards affected when it was decided:
    // none for the baseline's (it holds them until nothing is pending), at
    // least one for each certified, partial or uncertified answer.
    const std::vector<uint64_t> by_affected = inf["decided_by_affected_shards"];
    ASSERT_LE(by_affected.size(), 5u);
    uint64_t decided = 0;
    for (uint64_t n : by_affected) decided += n;
    EXPECT_EQ(decided, sum);
    const uint64_t some_affected = decided - by_affected.at(0);
    EXPECT_GE(some_affected,
              inf["decisions"]["certified"].get<uint64_t>() +
                  inf["decisions"]["partial"].get<uint64_t>() +
                  inf["decisions"]["uncertified"].get<uint64_t>());
    uint64_t at_most_half = 0;
    for (std::size_t a = 0; a < by_affected.size() && a <= 2; ++a) {
      at_most_half += by_affected[a];
    }
    EXPECT_DOUBLE_EQ(inf["decided_with_at_most_half_affected"].get<double>(),
                     static_cast<double>(at_most_half) / decided);
    const json& un = p["unlearning"];
    for (const char* key : {"deletions", "shard_retrains", "sample_epochs",
                            "cpu_seconds", "delay_ms", "pending_at_end"}) {
      EXPECT_TRUE(un.contains(key)) << key;
    }
    for (const char* key : {"p50", "p99", "max"}) {
      EXPECT_TRUE(un["delay_ms"].contains(key)) << key;
    }
    EXPECT_EQ(un["deletions"], 8);
    EXPECT_GT(un["shard_retrains"].get<int>(), 0);  // drained at the end
    const json& pr = p["privacy"];
    for (const char* key :
         {"exposures", "exposure_checked", "exposures_flagged",
          "oracle_checked", "oracle_agreement", "soundness_violations",
          "oracle_from_scratch_checked", "oracle_from_scratch_violations",
          "final_state_checked", "final_state_violations"}) {
      EXPECT_TRUE(pr.contains(key)) << key;
    }
    EXPECT_EQ(pr["soundness_violations"], 0);
    // Every answer, against the ensemble trained from scratch too.
    EXPECT_EQ(pr["oracle_from_scratch_checked"], pr["oracle_checked"]);
    EXPECT_EQ(pr["oracle_from_scratch_violations"], 0);
    EXPECT_EQ(pr["final_state_checked"], 200);
    EXPECT_EQ(pr["final_state_violations"], 0);
    EXPECT_EQ(pr["exposure_checked"], pr["oracle_checked"]);
    // On a sound engine the replay counts no exposure the engine did not
    // flag. (It may count fewer: the engine registers a deletion before the
    // issuer sees its acknowledgement, and an answer computed in between is
    // flagged but, by the issuer's clock, not owed yet.)
    EXPECT_LE(pr["exposures"].get<uint64_t>(),
              pr["exposures_flagged"].get<uint64_t>());
    EXPECT_EQ(pr["oracle_checked"].get<uint64_t>(),
              sum - inf["decisions"]["rejected"].get<uint64_t>());
    const std::string name = p["name"];
    if (name == "inference-first") {
      EXPECT_GT(pr["exposures"].get<int>(), 0);
      EXPECT_GT(inf["decisions"]["uncertified"].get<int>(), 0);
    } else {
      EXPECT_EQ(pr["exposures"], 0);
      EXPECT_EQ(inf["decisions"]["uncertified"], 0);
    }
    if (name == "immediate") {
      EXPECT_EQ(inf["decisions"]["clean"], 120);
      EXPECT_EQ(some_affected, 0u);
      EXPECT_EQ(pr["oracle_agreement"], 1.0);
      EXPECT_EQ(un["deadline_ms"], 0.0);  // it has none
      // It retrained before the last answer. Its busy fraction is that
      // time over the trace's times the unlearning slots (on a slow
      // machine, or with the idle core retraining too, above 1).
      EXPECT_GT(un["retrain_seconds_during_trace"].get<double>(), 0.0);
      EXPECT_NEAR(un["retrain_busy_fraction"].get<double>(),
                  un["retrain_seconds_during_trace"].get<double>() /
                      (Scenario().duration_ms() / 1000.0 / config.speed *
                       config.unlearning.concurrency),
                  1e-9);
    } else {
      EXPECT_EQ(un["deadline_ms"], 30000.0);
    }
    EXPECT_EQ(un["deadline_misses"], 0);
  }
  EXPECT_EQ(j["comparison"]["baseline"], "immediate");
  for (const char* name : {"immediate", "inference-first", "eraser-lazy-wait",
                           "eraser-lazy-partial"}) {
    const json& c = j["comparison"]["per_policy"][name];
    for (const char* key :
         {"latency_p50_saving", "latency_p99_saving", "compute_saving"}) {
      ASSERT_TRUE(c.contains(key)) << name << " " << key;
      EXPECT_GE(c[key].get<double>(), 0.0);
      EXPECT_LE(c[key].get<double>(), 1.0);
    }
  }
  const std::string table = report->ToTable();
  EXPECT_THAT(table, HasSubstr("eraser-lazy-partial"));
  EXPECT_THAT(table, HasSubstr("against immediate"));
  EXPECT_THAT(table, HasSubstr("A<=K/2"));
}

// The planted bug: an engine that forgets shard 0 when it decides which
// shards are affected. It flags nothing itself; the replay's count, from
// its own acknowledgement times and the answers' model versions, does.
TEST(Replay, ItsExposureCountCatchesAForgottenShard) {
  const engine::testing::Template& tmpl = engine::testing::GetTemplate();
  eraser::testing::TempDir work;
  ReplayConfig config;
  // eraser-lazy-partial with a deadline of an hour, so that shard 0 stays
  // pending through the trace however slow the machine (with 30 s, a
  // planner that learnt a slow machine's cost retrains inside the trace).
  config.policies =
      eraser::testing::PoliciesOrDie({"eraser:lazy,partial,deadline=1h"});
  config.work_dir = work.path();
  config.oracle = false;
  config.testing.affected_filter = [](std::vector<uint8_t>* affected) {
    (*affected)[0] = 0;
  };
  StatusOr<ReplayReport> report = RunReplay(Scenario(), tmpl.dir, config);
  ASSERT_TRUE(report.ok()) << report.status();
  const PolicyReport& p = report->policies.at(0);
  EXPECT_EQ(p.exposures_flagged, 0u);
  // Deletion 0 hits shard 0 at 0.1 s and stays pending (lazy) until the
  // drain: nearly every later answer used shard 0 uncovered.
  EXPECT_GT(p.exposures, 100u);
  EXPECT_EQ(p.exposure_checked, 120u);
  // The report says the oracle did not run: its soundness counts are not
  // checks.
  EXPECT_EQ(json::parse(report->ToJson())["oracle"], false);
}

// A client that sends deletions again (retries): the engine answers each
// repeat with the pending deletion's number, so the numbers the replay
// sees no longer rise with every request; its oracles and exposure count
// still hold.
TEST(Replay, RepeatedDeletionsKeepTheChecksRight) {
  const engine::testing::Template& tmpl = engine::testing::GetTemplate();
  eraser::testing::TempDir work;
  Trace trace = Scenario();
  for (int d = 0; d < 2; ++d) {
    TraceEvent e;
    e.time_ms = 150.0 + d * 200.0;  // 49 ms after the first
    e.op = TraceEvent::Op::kDelete;
    e.deletion = storage::DeletionTarget::Sample(
        engine::testing::SampleIn(d % 4, (d / 4) % 2, d));
    trace.events.push_back(e);
  }
  SortByTime(&trace);
  ReplayConfig config;
  // Nothing is retrained before deletion 3 (at 0.7 s) leaves no shard
  // unaffected and parks a request, whatever the machine's speed: the
  // deletion issuer sends the repeats first. (A deadline of an hour: a
  // 30 s one keeps the slot busy at this trace's rate.)
  config.policies =
      eraser::testing::PoliciesOrDie({"eraser:lazy,partial,deadline=1h"});
  config.work_dir = work.path();
  config.oracle_from_scratch_sample = 1000;  // every answer
  StatusOr<ReplayReport> report = RunReplay(trace, tmpl.dir, config);
  ASSERT_TRUE(report.ok()) << report.status();
  const PolicyReport& p = report->policies.at(0);
  EXPECT_EQ(p.deletions, 10u);
  EXPECT_EQ(p.repeated_deletions, 2u);  // both still pending (lazy)
  EXPECT_EQ(p.failed_deletions, 0u);
  EXPECT_EQ(p.exposures, 0u);
  EXPECT_EQ(p.exposure_checked, 120u);
  EXPECT_GT(p.oracle_checked, 0u);
  EXPECT_EQ(p.soundness_violations, 0u);
  EXPECT_EQ(p.oracle_from_scratch_checked, p.oracle_checked);
  EXPECT_EQ(p.oracle_from_scratch_violations, 0u);
  EXPECT_EQ(p.final_state_violations, 0u);
}

// Every request sent a second after its scheduled time: the latency (from
// the schedule) counts that second, the issuer's lag reports it, and the
// latency from the hand-off leaves it out.
TEST(Replay, ReportsTheIssuersLagAndTheLatencyFromTheHandOffApart) {
  const engine::testing::Template& tmpl = engine::testing::GetTemplate();
  eraser::testing::TempDir work;
  ReplayConfig config;
  // A deadline of an hour: no retraining borrows the inference core during
  // the trace, whatever cost the planner learnt.
  config.policies =
      eraser::testing::PoliciesOrDie({"inference-first,deadline=1h"});
  config.work_dir = work.path();
  config.oracle = false;
  config.testing_send_delay = std::chrono::seconds(1);
  StatusOr<ReplayReport> report = RunReplay(Scenario(), tmpl.dir, config);
  ASSERT_TRUE(report.ok()) << report.status();
  const PolicyReport& p = report->policies.at(0);
  EXPECT_EQ(p.requests, 120u);
  EXPECT_GE(p.issue_lag_ms.p50, 1000.0);
  EXPECT_GE(p.issue_lag_ms.mean, 1000.0);
  EXPECT_GE(p.latency_ms.p50, 1000.0);
  EXPECT_LT(p.engine_latency_ms.p50, 1000.0);
  EXPECT_NEAR(p.latency_ms.mean, p.engine_latency_ms.mean + p.issue_lag_ms.mean,
              1e-6);
  const json j = json::parse(report->ToJson());
  for (const char* summary : {"engine_latency_ms", "issue_lag_ms"}) {
    for (const char* key : {"mean", "p50", "p95", "p99", "max"}) {
      EXPECT_TRUE(j["policies"][0]["inference"][summary].contains(key))
          << summary << " " << key;
    }
  }
  config.testing_send_delay = -std::chrono::milliseconds(1);
  EXPECT_EQ(RunReplay(Scenario(), tmpl.dir, config).status().code(),
            StatusCode::kInvalidArgument);
}

// 3 s of inferences; at 0.1 s, deletions in slice 1 of the first
// `affected` shards, each of which then has a clean prefix (stage 0): with
// all four, the prefixes alone answer; with two, they break the other
// two's ties.
Trace PrefixScenario(int affected) {
  Trace t;
  for (int d = 0; d < affected; ++d) {
    TraceEvent e;
    e.time_ms = 100.0 + d;
    e.op = TraceEvent::Op::kDelete;
    e.deletion =
        storage::DeletionTarget::Sample(engine::testing::SampleIn(d, 1, d));
    t.events.push_back(e);
  }
  for (int i = 0; i < 120; ++i) {
    TraceEvent e;
    e.time_ms = 110.0 + i * 25.0;
    e.test_index = (i * 7) % 1000;
    t.events.push_back(e);
  }
  return t;
}

// Prefix answers with the oracles and the exposure count; then the planted
// bug of a prefix one stage too deep (the full model, which holds the
// deletion), which the engine does not flag and the replay's count, from
// the answers' (shard, version, stage) and the partition, catches.
TEST(Replay, PrefixAnswersAreCheckedStageByStage) {
  const engine::testing::Template& tmpl = engine::testing::GetTemplate();
  for (auto [affected, offset] :
       {std::pair{4, 0}, std::pair{4, 1}, std::pair{2, 0}, std::pair{2, 1}}) {
    SCOPED_TRACE(::testing::Message()
                 << affected << " affected, offset " << offset);
    eraser::testing::TempDir work;
    ReplayConfig config;
    // eraser-lazy-prefix with a deadline of an hour: lazy retrains when the
    // deadline requires it, which a planner that learnt a slow machine's
    // cost (under ThreadSanitizer) put inside the 3 s trace with 30 s; the
    // replay's drain retrains after the trace.
    config.policies =
        eraser::testing::PoliciesOrDie({"eraser:lazy,prefix,deadline=1h"});
    config.work_dir = work.path();
    config.oracle = offset == 0;
    config.oracle_from_scratch_sample = 1000;  // every answer
    config.testing.clean_stage_offset = offset;
    StatusOr<ReplayReport> report =
        RunReplay(PrefixScenario(affected), tmpl.dir, config);
    ASSERT_TRUE(report.ok()) << report.status();
    const PolicyReport& p = report->policies.at(0);
    const uint64_t prefix =
        p.decisions[static_cast<int>(certify::Decision::kPrefix) - 1];
    // Ties between two shards are a few answers, not most.
    EXPECT_GT(prefix, affected == 4 ? 100u : 20u);
    EXPECT_EQ(p.exposures_flagged, 0u);
    EXPECT_EQ(p.exposure_checked, 120u);
    std::printf(
        "%d affected, clean stage offset %d: %llu prefix answers, %llu "
        "exposures\n",
        affected, offset, static_cast<unsigned long long>(prefix),
        static_cast<unsigned long long>(p.exposures));
    if (offset == 0) {
      EXPECT_EQ(p.exposures, 0u);
      EXPECT_EQ(p.soundness_violations, 0u);
      EXPECT_EQ(p.oracle_from_scratch_violations, 0u);
      EXPECT_EQ(p.final_state_violations, 0u);
    } else {
      EXPECT_GE(p.exposures, prefix);
    }
  }
}

// The same replay on a PostgreSQL store: every policy runs on a database
// copied from the trained one (and dropped afterwards), with the same
// guarantees.
TEST(Replay, RunsOnAPostgresStoreWithTheSameGuarantees) {
  eraser::testing::PostgresCluster& pg = eraser::testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  engine::testing::BuildInto(url);
  eraser::testing::TempDir work;
  ReplayConfig config;
  config.policies = eraser::testing::PoliciesOrDie(
      {"eraser-lazy-wait", "eraser-lazy-partial"});
  config.work_dir = work.path();
  config.oracle_from_scratch_sample = 1000;
  StatusOr<ReplayReport> report = RunReplay(Scenario(), url, config);
  ASSERT_TRUE(report.ok()) << report.status();
  const json j = json::parse(report->ToJson());
  ASSERT_EQ(j["policies"].size(), 2u);
  for (const json& p : j["policies"]) {
    SCOPED_TRACE(p["name"].get<std::string>());
    EXPECT_EQ(p["inference"]["requests"], 120);
    EXPECT_EQ(p["unlearning"]["deletions"], 8);
    EXPECT_EQ(p["privacy"]["exposures"], 0);
    EXPECT_EQ(p["privacy"]["soundness_violations"], 0);
    EXPECT_EQ(p["privacy"]["oracle_from_scratch_violations"], 0);
    EXPECT_EQ(p["privacy"]["final_state_violations"], 0);
    EXPECT_GT(p["privacy"]["oracle_checked"].get<int>(), 0);
  }
  // The template is untouched and the copies are gone.
  EXPECT_EQ(pg.Sql(name, "SELECT count(*) FROM eraser_deletions"), "0\n");
  EXPECT_EQ(pg.Sql("postgres",
                   "SELECT count(*) FROM pg_database WHERE datname ~ "
                   "'^eraser_[0-9]+_'"),
            "0\n");
  EXPECT_TRUE(pg.ok()) << pg.error();
}

TEST(Replay, BadInputsAreRefused) {
  const engine::testing::Template& tmpl = engine::testing::GetTemplate();
  ReplayConfig config;
  EXPECT_EQ(RunReplay(Scenario(), tmpl.dir, config).status().code(),
            StatusCode::kInvalidArgument);  // no policy
  config.policies = eraser::testing::PoliciesOrDie({"immediate"});
  config.speed = 0;
  EXPECT_EQ(RunReplay(Scenario(), tmpl.dir, config).status().code(),
            StatusCode::kInvalidArgument);  // no speed
  config.speed = 1;
  Trace bad = Scenario();
  bad.events[0].test_index = 7600;
  bad.events[0].line = 2;
  EXPECT_THAT(RunReplay(bad, tmpl.dir, config).status().message(),
              HasSubstr("line 2: test index 7600"));
}

// A trace may delete an owner whose rows are all in the test split, as
// `serve` does (it was refused as not in the directory): each policy's copy
// erases the rows, nothing is retrained. A row erased in the template
// itself is refused, and the model's accuracy leaves it out.
TEST(Replay, DeletesAnOwnerOnlyInTheTestSplit) {
  eraser::testing::TempDir dir;
  const std::string path = dir.Child("store");
  const datasets::Dataset data = engine::testing::OwnersDataset();
  {
    StatusOr<std::unique_ptr<engine::Engine>> built =
        engine::Engine::Open(engine::testing::OwnersOptions(path, &data));
    ASSERT_TRUE(built.ok()) << built.status();
    (*built)->Close();
  }
  StatusOr<Trace> trace = ParseTrace(
      "time_ms,op,target\n0,infer,1\n20,delete,owner:1000\n40,infer,2\n"
      "60,delete,owner:3\n80,infer,0\n",
      "t.csv");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ReplayConfig config;
  config.policies =
      eraser::testing::PoliciesOrDie({"immediate", "eraser-lazy-partial"});
  config.work_dir = dir.Child("work");
  StatusOr<ReplayReport> report = RunReplay(*trace, path, config);
  ASSERT_TRUE(report.ok()) << report.status();
  const double accuracy = report->model.test_accuracy;
  for (const PolicyReport& p : report->policies) {
    SCOPED_TRACE(p.name);
    EXPECT_EQ(p.deletions, 2u);
    EXPECT_EQ(p.exposures, 0u);
    EXPECT_EQ(p.soundness_violations, 0u);
  }
  // Erased in the template: refused by a trace, left out of the accuracy.
  {
    StatusOr<std::unique_ptr<engine::Engine>> e =
        engine::Engine::Open(engine::testing::OwnersOptions(path, nullptr));
    ASSERT_TRUE(e.ok()) << e.status();
    ASSERT_TRUE(
        (*e)->RequestDeletion(storage::DeletionTarget::Owner(OwnerId(1000)))
            .ok());
    (*e)->Close();
  }
  const Status refused = RunReplay(*trace, path, config).status();
  EXPECT_THAT(refused.message(), HasSubstr("line 6: test sample 0 was erased"));
  trace->events.pop_back();
  report = RunReplay(*trace, path, config);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("accuracy on 33 test rows %.4f, on the 30 left %.4f\n", accuracy,
              report->model.test_accuracy);
  // The same ensemble on the 30 rows left, evaluated apart.
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({path, false});
  ASSERT_TRUE(store.ok()) << store.status();
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
      unlearning::Sisa::Open(store->get(), 1);
  ASSERT_TRUE(sisa.ok()) << sisa.status();
  StatusOr<std::vector<unlearning::ShardModel>> models = (*sisa)->LoadModels();
  ASSERT_TRUE(models.ok()) << models.status();
  datasets::Split left = data.test;
  left.EraseOwner(1000);
  left = left.WithoutErased();
  ASSERT_EQ(left.size(), 30u);
  StatusOr<unlearning::EnsembleEvaluation> expected =
      unlearning::EvaluateOnSplit(*models, left);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_DOUBLE_EQ(report->model.test_accuracy, expected->hard_vote_accuracy);
}

}  // namespace
}  // namespace eraser::workloads
