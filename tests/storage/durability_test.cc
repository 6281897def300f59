// DESIGN guarantee 4: a deletion acknowledged by AppendDeletion survives a
// SIGKILL at any moment. A child process appends deletions and reports each
// acknowledgement through a pipe; the parent kills it after a random number
// of acknowledgements, reopens the log, and checks that every acknowledged
// deletion is present, pending and unique.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "eraser/storage/store.h"
#include "testing/postgres.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace eraser::storage {
namespace {

struct ChildRun {
  // seq -> sample id, as acknowledged by the child before it died.
  std::map<uint64_t, uint64_t> acked;
  bool killed = false;
};

// Starts the child, reads `after` acknowledgements, then calls `act` and
// reads the rest of the child's acknowledgements until it exits (or, when
// `act` is null, SIGKILLs it). Returns whether the child died of SIGKILL.
bool RunUntil(const std::string& path, uint64_t base, int after, ChildRun* run,
              const std::function<void()>& act) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return false;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string base_arg = std::to_string(base);
    execl(ERASER_DURABILITY_CHILD, ERASER_DURABILITY_CHILD, path.c_str(),
          base_arg.c_str(), "1000000", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  unsigned long long seq = 0;
  unsigned long long sample = 0;
  while (static_cast<int>(run->acked.size()) < after &&
         std::fscanf(in, "%llu %llu", &seq, &sample) == 2) {
    run->acked[seq] = sample;
  }
  if (act) {
    act();
    while (std::fscanf(in, "%llu %llu", &seq, &sample) == 2) {
      run->acked[seq] = sample;
    }
  } else {
    kill(pid, SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  fclose(in);
  run->killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  return run->killed;
}

ChildRun RunAndKill(const std::string& path, uint64_t base, int kill_after) {
  ChildRun run;
  RunUntil(path, base, kill_after, &run, nullptr);
  return run;
}

// Every acknowledged deletion is in the log at `path`, pending, once; the
// log's numbers have no gaps.
void ExpectAcknowledgedInLog(const std::string& path,
                             const std::map<uint64_t, uint64_t>& all_acked) {
  StatusOr<std::unique_ptr<Store>> store = Store::Open({path});
  ASSERT_TRUE(store.ok()) << store.status();
  StatusOr<std::vector<DeletionRecord>> pending = (*store)->PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::set<uint64_t> seqs;
  std::set<uint64_t> samples;
  for (const DeletionRecord& r : *pending) {
    EXPECT_TRUE(seqs.insert(r.seq.value()).second) << "duplicate seq";
    EXPECT_TRUE(samples.insert(r.target.id).second) << "duplicate target";
    ASSERT_EQ(r.samples.size(), 1u);
    EXPECT_EQ(r.samples[0].id.value(), r.target.id);
  }
  // Sequence numbers have no gaps: 1..n.
  if (!seqs.empty()) {
    EXPECT_EQ(*seqs.begin(), 1u);
    EXPECT_EQ(*seqs.rbegin(), seqs.size());
  }
  for (const auto& [seq, sample] : all_acked) {
    StatusOr<DeletionRecord> r = (*store)->GetDeletion(DeletionSeq(seq));
    ASSERT_TRUE(r.ok()) << "acknowledged seq " << seq << " lost";
    EXPECT_EQ(r->target, DeletionTarget::Sample(SampleId(sample)));
    EXPECT_EQ(r->state, DeletionState::kPending);
  }
}

// Kills the appending client at random depths (before the first
// acknowledgement, right after one, deeper); the log accumulates across
// rounds. `path` is a directory or a PostgreSQL URL.
void KillTheClientRepeatedly(const std::string& path) {
  const unsigned seed = std::random_device()();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::map<uint64_t, uint64_t> all_acked;
  const int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    const int kill_after =
        round == 0 ? 0 : (round == 1 ? 1 : 1 + static_cast<int>(rng() % 60));
    ChildRun run =
        RunAndKill(path, static_cast<uint64_t>(round) * 1'000'000, kill_after);
    ASSERT_TRUE(run.killed) << "round " << round;
    ASSERT_EQ(static_cast<int>(run.acked.size()), kill_after);
    all_acked.insert(run.acked.begin(), run.acked.end());
    ExpectAcknowledgedInLog(path, all_acked);
  }
  EXPECT_GT(all_acked.size(), 0u);
}

// The newest non-empty write-ahead log file of the directory at `path`.
std::string NewestLog(const std::string& path) {
  std::string newest;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".log" &&
        entry.file_size() > 0 && name > newest) {
      newest = name;
    }
  }
  return newest.empty() ? "" : path + "/" + newest;
}

// A log that does not read back whole: RocksDB's default replayed it up to
// the first bad record and opened, dropping the acknowledged deletions after
// it and handing their sequence numbers out again. Now the store refuses to
// open (kDataLoss) for a damaged record, the last one included; a last
// record cut short (a write in flight at a crash, never acknowledged) is
// still forgiven.
TEST(Durability, ALogThatDoesNotReadBackWholeIsRefusedNotCutShort) {
  testing::TempDir dir;
  const std::string path = dir.Child("db");
  {
    StatusOr<std::unique_ptr<Store>> store = Store::Open({path});
    ASSERT_TRUE(store.ok()) << store.status();
    for (uint64_t i = 1; i <= 10; ++i) {
      ASSERT_TRUE((*store)
                      ->AppendDeletion(
                          DeletionTarget::Sample(SampleId(i)),
                          {{SampleId(i), ShardId(0), 0, OwnerId(i), false}},
                          FromUnixMicros(1'000'000))
                      .ok());
    }
  }
  const std::string log = NewestLog(path);
  ASSERT_FALSE(log.empty());
  const std::string whole = testing::ReadFileOrDie(log);
  const std::string saved = dir.Child("saved");
  std::filesystem::copy(path, saved, std::filesystem::copy_options::recursive);
  auto restore = [&] {
    std::filesystem::remove_all(path);
    std::filesystem::copy(saved, path,
                          std::filesystem::copy_options::recursive);
  };
  // One byte flipped in the middle.
  std::string flipped = whole;
  flipped[flipped.size() / 2] ^= 0x5a;
  std::ofstream(log, std::ios::binary | std::ios::trunc) << flipped;
  StatusOr<std::unique_ptr<Store>> damaged = Store::Open({path});
  ASSERT_FALSE(damaged.ok()) << "opened a log damaged in its middle";
  EXPECT_EQ(damaged.status().code(), StatusCode::kDataLoss) << damaged.status();
  // A byte flipped in the last record: refused too (a record of its full
  // length that does not check out is damage, not a write cut short).
  restore();
  flipped = whole;
  flipped[flipped.size() - 2] ^= 0x5a;
  std::ofstream(log, std::ios::binary | std::ios::trunc) << flipped;
  StatusOr<std::unique_ptr<Store>> last = Store::Open({path});
  ASSERT_FALSE(last.ok()) << "opened a log whose last record is damaged";
  EXPECT_EQ(last.status().code(), StatusCode::kDataLoss) << last.status();
  // The last record cut short (a write in flight at a crash, never
  // acknowledged): the first nine deletions are there.
  restore();
  std::filesystem::resize_file(log, whole.size() - 3);
  StatusOr<std::unique_ptr<Store>> torn = Store::Open({path});
  ASSERT_TRUE(torn.ok()) << torn.status();
  StatusOr<std::vector<DeletionRecord>> pending = (*torn)->PendingDeletions();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 9u);
  EXPECT_EQ((*torn)->LastDeletionSeq(), DeletionSeq(9));
  // Whole again: all ten.
  torn->reset();
  restore();
  StatusOr<std::unique_ptr<Store>> intact = Store::Open({path});
  ASSERT_TRUE(intact.ok()) << intact.status();
  EXPECT_EQ((*intact)->LastDeletionSeq(), DeletionSeq(10));
}

TEST(Durability, AcknowledgedDeletionsSurviveSigkill) {
  testing::TempDir dir;
  KillTheClientRepeatedly(dir.Child("db"));
}

TEST(Durability, AcknowledgedDeletionsSurviveSigkillOnPostgres) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  ASSERT_FALSE(url.empty()) << pg.error();
  KillTheClientRepeatedly(url);
}

// The server itself is killed (the postmaster and its backends at once)
// while a client appends: after a restart, every deletion the client saw
// acknowledged is there. The append in flight at the kill may or may not
// have committed; the client was never told either way.
TEST(Durability, AcknowledgedDeletionsSurviveAKilledPostgresServer) {
  testing::PostgresCluster pg;  // its own: this test kills it
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  ASSERT_FALSE(url.empty()) << pg.error();
  std::map<uint64_t, uint64_t> all_acked;
  for (int round = 0; round < 3; ++round) {
    ChildRun run;
    const bool killed =
        RunUntil(url, static_cast<uint64_t>(round) * 1'000'000, 20 + 15 * round,
                 &run, [&pg] { ASSERT_TRUE(pg.Kill()) << pg.error(); });
    EXPECT_FALSE(killed) << "the client should have failed, not been killed";
    EXPECT_GE(run.acked.size(), static_cast<std::size_t>(20 + 15 * round));
    all_acked.insert(run.acked.begin(), run.acked.end());
    ASSERT_TRUE(pg.Start()) << pg.error();
    ExpectAcknowledgedInLog(url, all_acked);
  }
}

// A connection that found synchronous_commit on (the default) kept the
// server's value: a configuration reload that turned it off made its
// commits lazy, and a crash of the server then lost acknowledged
// deletions (helper-48, 5 runs of 7). Every connection sets it for its
// session, which a reload does not change.
TEST(Durability, AReloadThatTurnsSynchronousCommitOffLosesNothing) {
  testing::PostgresCluster pg;  // its own: this test reconfigures and kills it
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  std::vector<DeletionSeq> acked;
  {
    StatusOr<std::unique_ptr<Store>> store = Store::Open({url});
    ASSERT_TRUE(store.ok()) << store.status();
    auto append = [&](uint64_t id) {
      StatusOr<DeletionSeq> seq =
          (*store)->AppendDeletion(DeletionTarget::Sample(SampleId(id)), {},
                                   SystemClock::Default()->Now());
      ASSERT_TRUE(seq.ok()) << seq.status();
      acked.push_back(*seq);
    };
    append(0);  // the pool's connection is open, with the server's value
    // Lazy commits, and a WAL writer that flushes them 10 s later.
    for (const char* sql : {"ALTER SYSTEM SET synchronous_commit = off",
                            "ALTER SYSTEM SET wal_writer_delay = '10s'",
                            "SELECT pg_reload_conf()"}) {
      pg.Sql(name, sql);
      ASSERT_TRUE(pg.ok()) << sql << ": " << pg.error();
    }
    // A new session sees the reload once the server has made it (and
    // signalled the sessions it has, which take it before their next
    // statement).
    ASSERT_TRUE(testing::Eventually(
        [&] {
          return pg.Sql(name, "SHOW synchronous_commit").find("off") !=
                 std::string::npos;
        },
        testing::kPatience, std::chrono::milliseconds(50)));
    for (uint64_t id = 1; id <= 5; ++id) append(id);
    ASSERT_TRUE(pg.Kill()) << pg.error();
  }
  ASSERT_TRUE(pg.Start()) << pg.error();
  StatusOr<std::unique_ptr<Store>> reopened = Store::Open({url});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->LastDeletionSeq(), acked.back());
  for (DeletionSeq seq : acked) {
    EXPECT_TRUE((*reopened)->GetDeletion(seq).ok()) << "lost " << seq.value();
  }
}

// SIGKILL loses nothing that reached the page cache, so the test above
// passes even if the deletion log's write is not synced. A lost fsync (a
// power cut) would lose it: count RocksDB's WAL syncs per acknowledgement.
TEST(Durability, EveryAcknowledgementWaitsForAWalSync) {
  testing::TempDir dir;
  StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.Child("db")});
  ASSERT_TRUE(store.ok()) << store.status();
  for (uint64_t i = 0; i < 10; ++i) {
    const uint64_t before = (*store)->Counters().wal_syncs;
    const SampleId sample(i);
    StatusOr<DeletionSeq> seq =
        (*store)->AppendDeletion(DeletionTarget::Sample(sample),
                                 {{sample, ShardId(0), 0, OwnerId(i), false}},
                                 SystemClock::Default()->Now());
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_GE((*store)->Counters().wal_syncs, before + 1)
        << "deletion " << i << " acknowledged without a WAL sync";
  }
  // An apply commits with a synced write too.
  const uint64_t before = (*store)->Counters().wal_syncs;
  ASSERT_TRUE((*store)
                  ->MarkApplied({DeletionSeq(1)}, SystemClock::Default()->Now())
                  .ok());
  EXPECT_GE((*store)->Counters().wal_syncs, before + 1);
}

}  // namespace
}  // namespace eraser::storage
