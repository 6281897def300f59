// Crash safety (DESIGN guarantee 4): a child process runs the engine under
// load and is SIGKILLed at random moments. After each restart every
// acknowledged deletion is pending or applied (never lost), an applied one
// keeps its first application time (never applied twice), and at the end
// Drain() brings the models to exactly the state of training from scratch
// without every deletion in the log.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>

#include "engine_fixture.h"
#include "eraser/storage/store.h"

namespace eraser::engine {
namespace {

std::set<uint64_t> RunChildAndKill(const std::string& data, int seed,
                                   int kill_after) {
  std::set<uint64_t> acked;
  int fds[2];
  if (pipe(fds) != 0) return acked;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string seed_arg = std::to_string(seed);
    const std::string samples = std::to_string(testing::kTrainSamples);
    execl(ERASER_CRASH_CHILD, ERASER_CRASH_CHILD, data.c_str(),
          seed_arg.c_str(), samples.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  unsigned long long seq = 0;
  while (static_cast<int>(acked.size()) < kill_after &&
         std::fscanf(in, "%llu", &seq) == 1) {
    acked.insert(seq);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  fclose(in);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  return acked;
}

TEST(EngineCrash, AcknowledgedDeletionsSurviveAndDrainIsExact) {
  eraser::testing::TempDir dir;
  const std::string data = testing::CopyTemplate(dir);
  const unsigned seed = std::random_device()();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::set<uint64_t> all_acked;
  std::map<uint64_t, TimePoint> applied_at;
  for (int round = 0; round < 3; ++round) {
    const int kill_after = 3 + static_cast<int>(rng() % 12);
    const std::set<uint64_t> acked =
        RunChildAndKill(data, static_cast<int>(rng()), kill_after);
    ASSERT_EQ(static_cast<int>(acked.size()), kill_after) << "round " << round;
    all_acked.insert(acked.begin(), acked.end());

    EngineOptions options =
        testing::Options(data, "eraser:lazy,partial,deadline=1h");
    StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    for (uint64_t seq : all_acked) {
      StatusOr<DeletionInfo> info = (*engine)->GetDeletion(DeletionSeq(seq));
      ASSERT_TRUE(info.ok()) << "acknowledged deletion " << seq << " lost";
      if (info->state == storage::DeletionState::kApplied) {
        auto [it, first] = applied_at.emplace(seq, *info->applied);
        EXPECT_EQ(it->second, *info->applied)
            << "deletion " << seq << " applied twice";
      }
    }
  }

  // Drain everything in the log, then compare with training from scratch
  // without every sample any deletion named.
  std::vector<SampleId> deleted;
  {
    StatusOr<std::unique_ptr<Engine>> engine =
        Engine::Open(testing::Options(data, "eraser-lazy-wait"));
    ASSERT_TRUE(engine.ok()) << engine.status();
    ASSERT_TRUE((*engine)->Drain().ok());
    for (uint64_t seq = 1;; ++seq) {
      StatusOr<DeletionInfo> info = (*engine)->GetDeletion(DeletionSeq(seq));
      if (!info.ok()) break;
      EXPECT_EQ(info->state, storage::DeletionState::kApplied);
      deleted.emplace_back(info->target.id);
    }
  }
  EXPECT_GE(deleted.size(), all_acked.size());
  EXPECT_EQ(testing::LastCheckpoints(data),
            testing::ScratchCheckpoints(deleted));
}

}  // namespace
}  // namespace eraser::engine
