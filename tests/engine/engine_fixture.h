// A small trained data directory for engine tests: 2,400 Fashion-MNIST
// images in 4 shards of 2 slices, a 16-unit MLP, and the next 7,600 images
// as its test split. It is trained once per test binary into a template
// directory; each test works on a fresh copy.
#ifndef ERASER_TESTS_ENGINE_ENGINE_FIXTURE_H_
#define ERASER_TESTS_ENGINE_ENGINE_FIXTURE_H_

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eraser/datasets/dataset.h"
#include "eraser/engine/engine.h"
#include "eraser/unlearning/sisa.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace eraser::engine::testing {

inline constexpr std::size_t kTrainSamples = 2400;
inline constexpr uint32_t kShards = 4;
inline constexpr uint32_t kSlices = 2;

unlearning::SisaOptions SmallSisaOptions();

// What the tests need to know about the template ensemble.
struct Template {
  std::string dir;
  // The training split (sample id = row) and the test split, whose first
  // kHeldOut rows are the held-out inputs below.
  datasets::Dataset data;
  // sample ids by (shard, slice)
  std::map<std::pair<uint32_t, uint32_t>, std::vector<SampleId>> samples;
  // Each shard's vote for held-out input i (test row i).
  std::vector<std::vector<int32_t>> votes;  // [i][shard]
  // Each shard's probabilities for held-out input i: [i][shard * 10 + c].
  std::vector<std::vector<float>> probs;
  static constexpr std::size_t kHeldOut = 1000;
};

// Built on first use; lives for the whole test binary.
const Template& GetTemplate();

// Held-out input i (test row i) as features.
std::vector<float> Input(std::size_t i);

// Trains the template's ensemble (the same data; `options`, by default the
// template's) into the store at `location`, a directory or a postgresql://
// URL.
void BuildInto(const std::string& location,
               const unlearning::SisaOptions& options = SmallSisaOptions());

// Copies the template into `dir`/data and returns that path.
std::string CopyTemplate(const eraser::testing::TempDir& dir);
std::string CopyTemplate(const std::string& dir);

// A small dataset whose owners have rows in both splits: 60 owners (ids
// 0..59) of 4 training rows each; owners 1000..1009 with 3 test rows each
// (rows i, i + 10, i + 20 for owner 1000 + i), only in the test split; and
// owner 7's 3 test rows 30..32. Float features of 8 distinct random values.
datasets::Dataset OwnersDataset();
// Options for an engine that trains it at open (when `train` is set) at
// `location`, with `policy`: 2 shards, 2 slices, a tiny MLP.
EngineOptions OwnersOptions(const std::string& location,
                            const datasets::Dataset* train,
                            const std::string& policy = "immediate");

// Options for an engine on `data_dir` with `policy`.
EngineOptions Options(const std::string& data_dir, const std::string& policy);

// The held-out inputs whose four shard votes all agree, and those where
// exactly `agree` shards vote the plurality.
std::vector<std::size_t> InputsWithAgreement(int agree);

// A sample id in (shard, slice), the n-th one.
SampleId SampleIn(uint32_t shard, uint32_t slice, std::size_t n = 0);

// Waits until `done` holds (a state an engine thread reaches on its own;
// with a ManualClock nothing else signals it), for eraser::testing's
// kPatience.
using eraser::testing::Eventually;

// The checkpoint blobs of every shard's last slice, read from a closed
// data directory.
std::vector<std::string> LastCheckpoints(const std::string& data_dir);

// The same ensemble trained from scratch without `deleted`: last-slice
// checkpoint blobs.
std::vector<std::string> ScratchCheckpoints(
    const std::vector<SampleId>& deleted,
    const unlearning::SisaOptions& options = SmallSisaOptions());

}  // namespace eraser::engine::testing

#endif  // ERASER_TESTS_ENGINE_ENGINE_FIXTURE_H_
