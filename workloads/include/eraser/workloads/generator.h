// Seeded trace generation: Poisson inference and deletion streams, deletion
// targets by sample or owner drawn uniformly or Zipf-skewed, inference
// targets drawn from the test set, and optionally inference arrival times
// taken from a real trace and scaled to a target rate.
#ifndef ERASER_WORKLOADS_GENERATOR_H_
#define ERASER_WORKLOADS_GENERATOR_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/common/random.h"
#include "eraser/common/statusor.h"
#include "eraser/unlearning/sisa.h"
#include "eraser/workloads/trace.h"

namespace eraser::workloads {

struct GeneratorOptions {
  Duration duration = std::chrono::seconds(60);
  // Inference requests per second (Poisson), or the mean rate the real
  // arrivals are scaled to.
  double inference_rate = 100;
  // Deletion requests per second (Poisson); 0 for none.
  double deletion_rate = 1;
  enum class Target { kSample, kOwner };
  Target deletion_target = Target::kSample;
  // Which samples/owners are deleted, each at most once: uniformly at
  // random, or Zipf-skewed (weight 1/rank^s over a random ranking).
  enum class Distribution { kUniform, kZipf };
  Distribution distribution = Distribution::kUniform;
  double zipf_exponent = 1.1;
  uint64_t train_size = 60'000;  // sample ids are [0, train_size)
  uint64_t owners = 60'000;      // owner ids are [0, owners)...
  // ...unless this lists them (owners named by the dataset).
  std::vector<uint64_t> owner_ids;
  uint64_t test_size = 10'000;  // inference targets are [0, test_size)...
  // ...unless this lists them (a test split with rows erased by deletions
  // of their owners).
  std::vector<uint64_t> test_rows;
  // When set: inference arrival times from this file (the Azure LLM trace
  // format, `TIMESTAMP,...` rows), scaled so their mean rate is
  // inference_rate, and repeated if shorter than `duration`.
  std::string arrivals_file;
  uint64_t seed = 1;

  // kInvalidArgument naming the bad field.
  Status Validate() const;
};

// Sets train_size, owners (or owner_ids) and test_size (or test_rows) from
// a data directory's dataset record, so that every target of the trace
// exists there.
void FitToDataset(const unlearning::DatasetInfo& dataset,
                  GeneratorOptions* options);

// The same options and seed always give the same trace.
StatusOr<Trace> GenerateTrace(const GeneratorOptions& options);

// Arrival times in seconds from the first row of a trace in the Azure LLM
// inference trace format (header `TIMESTAMP,ContextTokens,GeneratedTokens`,
// timestamps such as `2023-11-16 18:15:46.6805900`, sorted). kInvalidArgument
// with the line number for a malformed or unsorted row.
StatusOr<std::vector<double>> ReadArrivalTimes(const std::string& path);

// Draws `count` distinct ranks from [0, n) without replacement, rank r
// having weight 1/(r+1)^exponent (exponent 0: uniform), in the order drawn.
// GenerateTrace maps ranks to ids through a random permutation.
std::vector<uint64_t> DrawWithoutReplacement(uint64_t n, std::size_t count,
                                             double exponent, Rng& rng);

// "uniform"/"zipf", "sample"/"owner".
StatusOr<GeneratorOptions::Distribution> ParseDistribution(
    const std::string& name);
StatusOr<GeneratorOptions::Target> ParseTarget(const std::string& name);

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_GENERATOR_H_
