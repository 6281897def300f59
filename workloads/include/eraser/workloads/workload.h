// Workload files (JSON): the dataset, the model configuration, a trace file
// or generator parameters, the policies to compare, replay settings and a
// seed. Paths inside are relative to the workload file. Example:
//
//   { "name": "default",
//     "dataset": "fashion-mnist",     // or "csv:data/users.csv", "npy:..."
//     "dataset_options": {"label_column": "y", "owner_column": "user",
//                         "ignore_columns": ["date"], "delimiter": ",",
//                         "test_dataset": "csv:...", "test_fraction": 0.2},
//     "model": {"shards": 8, "slices": 4, "arch": "mlp", "hidden": [128],
//               "epochs": [4, 4, 4, 8], "seed": 1},
//     "generator": {"duration": "40s", "inference_rate": 100,
//                   "deletion_rate": 1, "target": "sample",
//                   "distribution": "uniform",
//                   "arrivals": "traces/azure-llm-2023-conv.csv"},
//     "policies": ["immediate", "inference-first", "eraser-lazy-wait"],
//     "replay": {"speed": 1, "oracle": true},
//     "sweep": {"deletion_rates": [0.25, 0.5, 1, 2]},
//     "seed": 7 }
#ifndef ERASER_WORKLOADS_WORKLOAD_H_
#define ERASER_WORKLOADS_WORKLOAD_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/datasets/spec.h"
#include "eraser/unlearning/sisa.h"
#include "eraser/workloads/generator.h"
#include "eraser/workloads/replay.h"

namespace eraser::workloads {

// The policies a replay compares when none are named.
const std::vector<std::string>& DefaultReplayPolicies();

struct Workload {
  std::string name;
  std::string description;
  // Where the data comes from, with paths resolved against the file's
  // folder. The seed of a test-fraction split is the model's seed.
  datasets::DatasetSpec dataset;
  datasets::LoadOptions dataset_options;
  unlearning::SisaOptions model;
  // Whether the file names a dataset or a model. A workload that names
  // neither replays on whatever ensemble the data directory holds.
  bool names_ensemble = false;
  // Exactly one of these.
  std::optional<std::string> trace_file;  // resolved path
  std::optional<GeneratorOptions> generator;
  // The replay settings, policies parsed (DefaultReplayPolicies() when the
  // file names none).
  ReplayConfig replay;
  // Deletion rates (per second) of a sweep: the generator's trace is made
  // and replayed once per rate. Empty: one replay. Needs 'generator'.
  std::vector<double> sweep_deletion_rates;
  uint64_t seed = 1;
  // The file as parsed, for the report.
  std::string json;
};

// Reads and validates a workload file. kInvalidArgument naming the key for
// an unknown or ill-typed key, a missing trace/generator, or bad values;
// kNotFound if the file cannot be read.
StatusOr<Workload> LoadWorkload(const std::string& path);
// The same from the file's text; `path` resolves relative paths and names
// the file in messages. Reads no file.
StatusOr<Workload> ParseWorkload(std::string_view text,
                                 const std::string& path);

// kInvalidArgument unless `rates` is non-empty and every rate is a finite
// positive number.
Status ValidateSweepRates(const std::vector<double>& rates);

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_WORKLOAD_H_
