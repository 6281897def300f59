// `eraser train`: builds a data directory (ingest a dataset, partition,
// train the SISA ensemble) and reports accuracy and training cost.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "command.h"
#include "dataset_flags.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/backbone.h"
#include "eraser/unlearning/evaluate.h"
#include "eraser/unlearning/partition.h"
#include "eraser/unlearning/runtime.h"
#include "eraser/unlearning/sisa.h"
#include "eraser/workloads/data_dir.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser train --store DIR|URL [--dataset SPEC] [options]\n"
    "Ingests a dataset (Fashion-MNIST, a CSV file or NumPy arrays) into the\n"
    "store (a data directory, or a postgresql:// URL),\n"
    "partitions it into shards and slices,\n"
    "trains one constituent model per shard slice by slice (checkpointing\n"
    "after each slice) and prints per-shard and ensemble test accuracy and\n"
    "the training cost. An existing directory built with the same options is\n"
    "reused; --rebuild starts it over.";

struct TrainFlags {
  std::string data_dir;
  DatasetFlags dataset;
  std::string model = "mlp";
  std::string backbone;  // torchscript:PATH, or empty
  std::string hidden = "128";
  std::string epochs;
  std::string json;
  bool rebuild = false;
  unlearning::SisaOptions sisa;
};

StatusOr<std::vector<uint32_t>> ParseEpochs(const std::string& text) {
  std::vector<uint32_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v == 0 || v > 1000) {
      return InvalidArgumentError("--epochs: '" + text +
                                  "' is not a comma-separated list of "
                                  "epoch counts in 1..1000");
    }
    out.push_back(static_cast<uint32_t>(v));
  }
  return out;
}

nlohmann::json CostJson(const unlearning::Cost& c) {
  return {{"sample_epochs", c.sample_epochs},
          {"cpu_seconds", c.cpu_seconds},
          {"wall_seconds", c.wall_seconds}};
}

int Train(const TrainFlags& flags, const datasets::DatasetSpec& spec,
          const datasets::LoadOptions& load) {
  const unlearning::BlasInfo blas = unlearning::InitComputeRuntime();
  std::printf("BLAS: %s\n", blas.Describe().c_str());
  if (blas.kind == unlearning::BlasInfo::Kind::kReference) {
    std::fprintf(stderr,
                 "WARNING: LibTorch is using the reference BLAS, about 16x "
                 "slower than OpenBLAS. Run scripts/setup (it installs "
                 "libopenblas0-openmp and selects it).\n");
  }
  // Everything is read and validated before the data directory is touched.
  StatusOr<datasets::Dataset> data = datasets::LoadDataset(spec, load);
  if (!data.ok()) return ReportError("train", data.status());
  std::printf(
      "Dataset %s: %zu training and %zu test samples of %s %s features, %u "
      "classes%s\n",
      data->source.c_str(), data->train.size(), data->test.size(),
      datasets::ShapeString(data->train.shape).c_str(),
      datasets::FeatureTypeName(data->train.type), data->classes,
      data->train.owners.empty() ? "" : ", owners from the data");
  for (const std::string& note : data->notes) {
    std::printf("note: %s\n", note.c_str());
  }

  unlearning::SisaOptions with_backbone = flags.sisa;
  if (!flags.backbone.empty()) {
    constexpr std::string_view kScript = "torchscript:";
    if (flags.backbone.rfind(kScript, 0) != 0 ||
        flags.backbone.size() == kScript.size()) {
      return ReportError(
          "train", InvalidArgumentError("--backbone takes torchscript:PATH"));
    }
    unlearning::BackboneSpec& b = with_backbone.backbone;
    if (Status s = unlearning::LoadBackboneFile(
            flags.backbone.substr(kScript.size()), &b);
        !s.ok()) {
      return ReportError("train", s);
    }
    if (Status s = unlearning::CheckBackbone(data->train.shape, &b); !s.ok()) {
      return ReportError("train", s);
    }
    std::printf("Backbone %s: %s samples to embeddings of %u, frozen\n",
                b.script_name.c_str(),
                datasets::ShapeString(b.input_shape).c_str(), b.embedding_size);
  }
  const unlearning::SisaOptions options =
      unlearning::ForDataset(with_backbone, *data);
  if (Status s = options.Validate(); !s.ok()) return ReportError("train", s);
  if (Status s = unlearning::CheckModelSpec(options.model); !s.ok()) {
    return ReportError("train", s);
  }
  for (const std::string& warning :
       unlearning::ModelSpecWarnings(options.model)) {
    std::fprintf(stderr, "eraser train: warning: %s\n", warning.c_str());
  }
  // Before --rebuild deletes anything.
  if (Status s = unlearning::CheckPartitionFits(data->train.size(),
                                                options.shards, options.slices);
      !s.ok()) {
    return ReportError("train", s);
  }
  if (flags.rebuild) {
    if (Status s = workloads::RemoveDataDir(flags.data_dir); !s.ok()) {
      return ReportError("train", s);
    }
  }
  std::printf("%u shards x %u slices, %s, epochs per stage %s, seed %llu\n",
              options.shards, options.slices, options.model.ToString().c_str(),
              options.ToConfig().at("epochs").c_str(),
              static_cast<unsigned long long>(options.seed));
  StatusOr<workloads::DataDirResult> built =
      workloads::EnsureTrained(flags.data_dir, options, *data);
  if (!built.ok()) {
    // A directory built otherwise may be started over; one another
    // process holds may not (--rebuild would refuse it too).
    // A database is started over by its operator (--rebuild refuses it).
    const Status& s = built.status();
    const bool held =
        s.message().find("another eraser process") != std::string::npos;
    const char* start_over = storage::IsPostgresLocation(flags.data_dir)
                                 ? "; drop and create the database to start "
                                   "it over"
                                 : "; use --rebuild to start it over";
    const bool built_otherwise =
        s.message().find("another configuration") != std::string::npos;
    return ReportError("train",
                       s.code() == StatusCode::kFailedPrecondition && !held &&
                               (built_otherwise ||
                                !storage::IsPostgresLocation(flags.data_dir))
                           ? Status(s.code(), s.message() + start_over)
                           : s);
  }
  const bool reused = built->reused;
  const unlearning::TrainReport& report = built->report;
  std::printf("Data directory %s: %s\n",
              storage::PrintableLocation(flags.data_dir).c_str(),
              !reused ? "new"
              : storage::IsPostgresLocation(flags.data_dir)
                  ? "reusing the trained ensemble (drop and create the "
                    "database to retrain)"
                  : "reusing the trained ensemble (--rebuild to retrain)");

  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({flags.data_dir});
  if (!store.ok()) return ReportError("train", store.status());
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
      unlearning::Sisa::Open(store->get(), options.concurrency);
  if (!sisa.ok()) return ReportError("train", sisa.status());
  StatusOr<std::vector<unlearning::ShardModel>> models = (*sisa)->LoadModels();
  if (!models.ok()) return ReportError("train", models.status());
  StatusOr<unlearning::DatasetInfo> stored = (*sisa)->ReadDatasetInfo();
  if (!stored.ok()) return ReportError("train", stored.status());
  // Not on the rows erased by deletions of their owners; none when every
  // row is (the ensemble is trained and serves all the same).
  std::optional<unlearning::EnsembleEvaluation> eval;
  if (Status left = stored->test.CheckRowsLeft(); !left.ok()) {
    std::fprintf(stderr, "eraser train: no test accuracy: %s\n",
                 left.message().c_str());
  } else {
    StatusOr<unlearning::EnsembleEvaluation> evaluated =
        unlearning::EvaluateOnSplit(*models, stored->test.WithoutErased());
    if (!evaluated.ok()) return ReportError("train", evaluated.status());
    eval = std::move(evaluated).value();
  }
  const auto accuracy = [&eval](std::size_t k) -> nlohmann::json {
    if (!eval) return nullptr;
    return eval->shard_accuracy[k];
  };

  std::printf("\nshard  samples  test acc  sample-epochs  cpu s   wall s\n");
  nlohmann::json shards = nlohmann::json::array();
  for (std::size_t k = 0; k < models->size(); ++k) {
    StatusOr<uint64_t> samples = (*store)->CountSamples(ShardId(k));
    if (!samples.ok()) return ReportError("train", samples.status());
    const unlearning::Cost cost =
        reused ? unlearning::Cost{} : report.shards[k].cost;
    char acc[32] = "-";
    if (eval) std::snprintf(acc, sizeof(acc), "%.4f", eval->shard_accuracy[k]);
    std::printf("%5zu  %7llu  %8s  %13llu  %6.2f  %6.2f\n", k,
                static_cast<unsigned long long>(*samples), acc,
                static_cast<unsigned long long>(cost.sample_epochs),
                cost.cpu_seconds, cost.wall_seconds);
    shards.push_back({{"shard", k},
                      {"samples", *samples},
                      {"accuracy", accuracy(k)},
                      {"version", (*models)[k].version},
                      {"cost", CostJson(cost)}});
  }
  if (eval) {
    std::printf("\nensemble test accuracy: hard vote %.4f, soft vote %.4f\n",
                eval->hard_vote_accuracy, eval->soft_vote_accuracy);
  }
  // (A test split of one class scores 1 by answering it: nothing to say
  // of an ensemble that does.)
  if (eval && (eval->hard_vote_accuracy < eval->majority_share ||
               (eval->hard_vote_accuracy == eval->majority_share &&
                eval->majority_share < 1))) {
    std::fprintf(stderr,
                 "eraser train: warning: the ensemble (%.4f) is no more "
                 "accurate than answering the test split's most frequent "
                 "class (%.4f): it learnt nothing a constant answer does "
                 "not give (a training that collapsed, a learning rate too "
                 "high?). It is stored as trained.\n",
                 eval->hard_vote_accuracy, eval->majority_share);
  }
  if (!reused) {
    std::printf("training cost: %llu sample-epochs, %.2f CPU s, %.2f s wall\n",
                static_cast<unsigned long long>(report.total.sample_epochs),
                report.total.cpu_seconds, report.total.wall_seconds);
  }
  // The figures the unlearning planner starts from (docs/engine.md).
  StatusOr<unlearning::ModelCost> model_cost = (*sisa)->ReadModelCost();
  nlohmann::json model_cost_json = nullptr;
  if (model_cost.ok()) {
    std::printf(
        "model cost (planning): %.3g CPU s per sample-epoch; %.3g CPU s per "
        "inference row (one model), %.3g (the ensemble)\n",
        model_cost->train_seconds_per_sample_epoch,
        model_cost->infer_seconds_per_row,
        model_cost->ensemble_infer_seconds_per_row);
    model_cost_json = {
        {"train_seconds_per_sample_epoch",
         model_cost->train_seconds_per_sample_epoch},
        {"infer_seconds_per_row", model_cost->infer_seconds_per_row},
        {"ensemble_infer_seconds_per_row",
         model_cost->ensemble_infer_seconds_per_row}};
  } else if (model_cost.status().code() == StatusCode::kNotFound) {
    std::printf(
        "model cost (planning): not recorded (trained by an older eraser; "
        "--rebuild measures it)\n");
  } else {
    return ReportError("train", model_cost.status());
  }

  if (!flags.json.empty()) {
    nlohmann::json out = {
        {"data_dir", storage::PrintableLocation(flags.data_dir)},
        {"dataset",
         {{"source", data->source},
          {"train_samples", data->train.size()},
          {"test_samples", data->test.size()},
          {"classes", data->classes},
          {"features", data->train.feature_count()}}},
        {"reused", reused},
        {"blas", blas.Describe()},
        {"config", options.ToConfig()},
        {"test_samples", eval ? eval->samples : 0},
        {"ensemble",
         {{"hard_vote_accuracy",
           eval ? nlohmann::json(eval->hard_vote_accuracy) : nullptr},
          {"soft_vote_accuracy",
           eval ? nlohmann::json(eval->soft_vote_accuracy) : nullptr}}},
        {"shards", shards},
        {"cost", CostJson(report.total)},
        {"model_cost", model_cost_json}};
    std::ofstream file(flags.json);
    file << out.dump(2) << "\n";
    if (!file) {
      return ReportError("train", InternalError("cannot write " + flags.json));
    }
  }
  return kExitOk;
}

}  // namespace

int RunTrain(int argc, char** argv) {
  TrainFlags flags;
  unlearning::SisaOptions& s = flags.sisa;
  po::options_description options("Options");
  AddStoreOptions(options, &flags.data_dir,
                  "where to build or reuse the ensemble (required)");
  options.add_options()("shards", po::value(&s.shards)->default_value(s.shards),
                        "K, number of shards")(
      "slices", po::value(&s.slices)->default_value(s.slices),
      "R, slices per shard")(
      "model", po::value(&flags.model)->default_value(flags.model),
      "constituent model: linear, mlp, cnn or torchscript:PATH (a module "
      "saved with torch.jit.script(...).save()); with --backbone, the head")(
      "backbone", po::value(&flags.backbone),
      "torchscript:PATH: a frozen feature extractor trained elsewhere on "
      "data not subject to deletion; samples are stored as its embeddings "
      "and the shards train only the head (docs/unlearning.md)")(
      "hidden", po::value(&flags.hidden)->default_value(flags.hidden),
      "MLP hidden layer widths, comma-separated (e.g. 256,128)")(
      "epochs", po::value(&flags.epochs),
      "epochs per stage, comma-separated, one per slice (default: 4 per "
      "stage, 8 for the last)")(
      "batch-size", po::value(&s.batch_size)->default_value(s.batch_size),
      "SGD mini-batch size")(
      "learning-rate",
      po::value(&s.learning_rate)
          ->default_value(s.learning_rate, ShortNumber(s.learning_rate)),
      "SGD learning rate")(
      "momentum",
      po::value(&s.momentum)
          ->default_value(s.momentum, ShortNumber(s.momentum)),
      "SGD momentum")("seed", po::value(&s.seed)->default_value(s.seed),
                      "seed of the partition, initial weights and data orders")(
      "samples-per-owner",
      po::value(&s.samples_per_owner)->default_value(s.samples_per_owner),
      "samples per data owner (1: each sample is its own owner); ignored "
      "when the dataset names owners")(
      "threads", po::value(&s.concurrency)->default_value(s.concurrency),
      "shards trained at once (one Torch thread each)")(
      "json", po::value(&flags.json), "also write the report as JSON here")(
      "rebuild", po::bool_switch(&flags.rebuild),
      "delete the data directory first and build it again");
  AddDatasetOptions(options, &flags.dataset);
  po::variables_map vm;
  bool help = false;
  if (int rc = ParseCommandLine(argc, argv, kUsage, options, vm, &help);
      rc != kExitOk || help) {
    return rc;
  }
  if (Status s = CheckStoreOptions(vm, /*required=*/true); !s.ok()) {
    return ReportError("train", s);
  }
  if (Status s = CheckOutputPath("json", flags.json); !s.ok()) {
    return ReportError("train", s);
  }
  StatusOr<std::vector<uint32_t>> hidden =
      unlearning::ParseHidden(flags.hidden);
  if (!hidden.ok()) return ReportError("train", hidden.status());
  StatusOr<unlearning::ModelSpec> model =
      unlearning::ModelSpecFromFlags(flags.model, *hidden);
  if (!model.ok()) return ReportError("train", model.status());
  s.model = std::move(model).value();
  if (!flags.epochs.empty()) {
    StatusOr<std::vector<uint32_t>> epochs = ParseEpochs(flags.epochs);
    if (!epochs.ok()) return ReportError("train", epochs.status());
    s.epochs = *epochs;
  }
  StatusOr<ParsedDataset> dataset =
      ParseDatasetFlags(flags.dataset, vm, s.seed);
  if (!dataset.ok()) return ReportError("train", dataset.status());
  return Train(flags, dataset->spec, dataset->options);
}

}  // namespace eraser::cli
