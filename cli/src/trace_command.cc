// `eraser trace`: generates a request trace file.
#include <cstdio>

#include "command.h"
#include "eraser/common/duration.h"
#include "eraser/workloads/data_dir.h"
#include "eraser/workloads/generator.h"
#include "eraser/workloads/trace.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser trace --out FILE [options]\n"
    "Generates a seeded trace (CSV: time_ms,op,target): Poisson inference\n"
    "requests on random test images, or real arrival times scaled to a rate,\n"
    "and Poisson deletion requests of distinct samples or owners, uniform or\n"
    "Zipf-skewed. With --data-dir, sample ids, owner ids and test indices are\n"
    "drawn from that trained data directory's dataset.";

}  // namespace

int RunTrace(int argc, char** argv) {
  workloads::GeneratorOptions g;
  std::string out;
  std::string duration = "60s";
  std::string target = "sample";
  std::string distribution = "uniform";
  uint32_t samples_per_owner = 1;
  std::string data_dir;
  po::options_description options("Options");
  options.add_options()("out", po::value(&out)->required(),
                        "trace file to write (required)")(
      "duration", po::value(&duration)->default_value(duration),
      "length of the trace, e.g. 60s, 2m")(
      "inference-rate",
      po::value(&g.inference_rate)->default_value(g.inference_rate),
      "inference requests per second")(
      "deletion-rate",
      po::value(&g.deletion_rate)->default_value(g.deletion_rate),
      "deletion requests per second")("target",
                                      po::value(&target)->default_value(target),
                                      "what deletions name: sample or owner")(
      "distribution", po::value(&distribution)->default_value(distribution),
      "which samples/owners are deleted: uniform or zipf")(
      "zipf-exponent",
      po::value(&g.zipf_exponent)
          ->default_value(g.zipf_exponent, ShortNumber(g.zipf_exponent)),
      "skew of the zipf distribution")(
      "arrivals", po::value(&g.arrivals_file),
      "take inference arrival times from this trace (Azure LLM format), "
      "scaled to --inference-rate")(
      "samples-per-owner",
      po::value(&samples_per_owner)->default_value(samples_per_owner),
      "the data directory's samples per owner (sets the owner id range)")(
      "train-size", po::value(&g.train_size)->default_value(g.train_size),
      "training samples (sample ids are below it)")(
      "test-size", po::value(&g.test_size)->default_value(g.test_size),
      "test images (inference targets are below it)")(
      "seed", po::value(&g.seed)->default_value(g.seed), "random seed")(
      "data-dir", po::value(&data_dir),
      "take training size, owner ids and test size from this trained data "
      "directory (overrides the three options above)");
  po::variables_map vm;
  bool help = false;
  if (int rc = ParseCommandLine(argc, argv, kUsage, options, vm, &help);
      rc != kExitOk || help) {
    return rc;
  }
  if (Status s = CheckOutputPath("out", out); !s.ok()) {
    return ReportError("trace", s);
  }
  StatusOr<Duration> d = ParseDuration(duration);
  if (!d.ok()) return ReportError("trace", d.status());
  g.duration = *d;
  StatusOr<workloads::GeneratorOptions::Target> t =
      workloads::ParseTarget(target);
  if (!t.ok()) return ReportError("trace", t.status());
  g.deletion_target = *t;
  StatusOr<workloads::GeneratorOptions::Distribution> dist =
      workloads::ParseDistribution(distribution);
  if (!dist.ok()) return ReportError("trace", dist.status());
  g.distribution = *dist;
  if (samples_per_owner == 0) {
    return ReportError("trace", InvalidArgumentError(
                                    "--samples-per-owner must be at least 1"));
  }
  g.owners = (g.train_size + samples_per_owner - 1) / samples_per_owner;
  if (!data_dir.empty()) {
    StatusOr<unlearning::DatasetInfo> info =
        workloads::ReadDatasetInfo(data_dir);
    if (!info.ok()) return ReportError("trace", info.status());
    if (Status left = info->test.CheckRowsLeft(); !left.ok()) {
      return ReportError("trace", left);
    }
    workloads::FitToDataset(*info, &g);
  }
  StatusOr<workloads::Trace> trace = workloads::GenerateTrace(g);
  if (!trace.ok()) return ReportError("trace", trace.status());
  if (Status s = workloads::WriteTrace(*trace, out); !s.ok()) {
    return ReportError("trace", s);
  }
  std::printf("%s: %zu inference and %zu deletion requests over %.1f s\n",
              out.c_str(), trace->inferences(), trace->deletions(),
              trace->duration_ms() / 1000.0);
  return kExitOk;
}

}  // namespace eraser::cli
