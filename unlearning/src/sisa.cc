// SISA orchestration: ingest, training and retraining of shards on a oneTBB
// arena, with cost accounting. Torch stays behind network.h.
#include "eraser/unlearning/sisa.h"

#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <unordered_set>

#include "dataset_info.h"
#include "eraser/common/hash.h"
#include "eraser/common/random.h"
#include "eraser/common/sync_point.h"
#include "eraser/common/tsan.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/runtime.h"
#include "network.h"

namespace eraser::unlearning {
namespace {

constexpr char kIngestedKey[] = "sisa/ingested";
constexpr char kTrainedKey[] = "sisa/trained";
constexpr char kScriptKey[] = "model/torchscript";
constexpr char kBackboneKey[] = "model/backbone";
constexpr char kDatasetInfoKey[] = "dataset/info";
constexpr char kTestSplitKey[] = "dataset/test";
constexpr char kOwnersKey[] = "dataset/owners";
constexpr char kCostKey[] = "model/cost";
// Tags that keep the derived seeds of different purposes apart.
constexpr uint64_t kInitTag = 0x1417;
constexpr uint64_t kOrderTag = 0x0bde;

// The address ThreadSanitizer annotations use for "submitted before run".
char g_task_submission;

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         static_cast<double>(ts.tv_nsec) * 1e-9;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// A shard's samples as read from the store: ordered by slice, then id, so
// the training set of stage r (slices 0..r) is the prefix [0, slice_end[r]).
struct ShardSamples {
  std::vector<SampleId> ids;
  std::vector<uint32_t> slices;
  std::vector<float> features;
  std::vector<int64_t> labels;

  std::vector<std::size_t> SliceEnds(uint32_t num_slices) const {
    std::vector<std::size_t> ends(num_slices, 0);
    for (uint32_t s : slices) ++ends[s];
    for (uint32_t r = 1; r < num_slices; ++r) ends[r] += ends[r - 1];
    return ends;
  }
};

}  // namespace

struct Sisa::Arena {
  explicit Arena(int concurrency) : arena(concurrency) {}
  oneapi::tbb::task_arena arena;
};

Sisa::Sisa(storage::Store* store, const SisaOptions& options,
           std::shared_ptr<const Backbone> backbone)
    : store_(store),
      options_(options),
      epochs_(options.EpochSchedule()),
      backbone_(std::move(backbone)),
      arena_(std::make_unique<Arena>(options.concurrency)) {}

std::shared_ptr<const Model> Sisa::Served(
    std::shared_ptr<const Model> head) const {
  return WithBackbone(backbone_, std::move(head));
}

Sisa::~Sisa() = default;

StatusOr<std::unique_ptr<Sisa>> Sisa::Create(storage::Store* store,
                                             const SisaOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  InitComputeRuntime();
  RETURN_IF_ERROR(store->InitConfig(options.ToConfig()));
  if (options.model.arch == Architecture::kTorchScript) {
    // The module's code lives in the directory, so that it serves and
    // retrains without the original file. The configuration holds its
    // fingerprint, so an existing copy is the same module.
    StatusOr<std::string> stored = store->GetMeta(kScriptKey);
    if (!stored.ok()) {
      if (stored.status().code() != StatusCode::kNotFound) {
        return stored.status();
      }
      RETURN_IF_ERROR(store->PutMeta(kScriptKey, *options.model.script));
    }
  }
  std::shared_ptr<const Backbone> backbone;
  if (options.backbone.present()) {
    // Likewise the backbone: embeddings are stored, requests are raw.
    StatusOr<std::string> stored = store->GetMeta(kBackboneKey);
    if (!stored.ok()) {
      if (stored.status().code() != StatusCode::kNotFound) {
        return stored.status();
      }
      RETURN_IF_ERROR(store->PutMeta(kBackboneKey, *options.backbone.script));
    }
    ASSIGN_OR_RETURN(backbone, Backbone::Load(options.backbone));
  }
  return std::unique_ptr<Sisa>(new Sisa(store, options, std::move(backbone)));
}

StatusOr<std::unique_ptr<Sisa>> Sisa::Open(storage::Store* store,
                                           int concurrency) {
  StatusOr<storage::StoreConfig> config = store->ReadConfig();
  if (config.status().code() == StatusCode::kNotFound) {
    return FailedPreconditionError(
        "the data directory holds no trained ensemble (build it with "
        "'eraser train')");
  }
  RETURN_IF_ERROR(config.status());
  ASSIGN_OR_RETURN(SisaOptions options, SisaOptions::FromConfig(*config));
  options.concurrency = concurrency;
  if (options.model.arch == Architecture::kTorchScript) {
    StatusOr<std::string> script = store->GetMeta(kScriptKey);
    if (!script.ok()) {
      return DataLossError("the data directory lacks its TorchScript module");
    }
    if (Fingerprint(*script) != options.model.script_fingerprint) {
      return DataLossError(
          "the data directory's TorchScript module does not match its "
          "configuration");
    }
    options.model.script =
        std::make_shared<const std::string>(std::move(script).value());
  }
  std::shared_ptr<const Backbone> backbone;
  if (options.backbone.fingerprint != 0) {
    StatusOr<std::string> script = store->GetMeta(kBackboneKey);
    if (!script.ok() || Fingerprint(*script) != options.backbone.fingerprint) {
      return DataLossError(
          "the data directory's backbone is missing or does not match its "
          "configuration");
    }
    options.backbone.script =
        std::make_shared<const std::string>(std::move(script).value());
    InitComputeRuntime();
    ASSIGN_OR_RETURN(backbone, Backbone::Load(options.backbone));
  }
  RETURN_IF_ERROR(options.Validate());
  InitComputeRuntime();
  return std::unique_ptr<Sisa>(new Sisa(store, options, std::move(backbone)));
}

SisaOptions ForDataset(SisaOptions options, const datasets::Dataset& data) {
  options.model.input_shape = data.train.shape;
  options.model.classes = data.classes;
  options.feature_type = data.train.type;
  if (options.backbone.present()) {
    options.backbone.input_shape = data.train.shape;
    options.model.input_shape = {options.backbone.embedding_size};
    options.feature_type = datasets::FeatureType::kFloat32;
  }
  options.dataset_fingerprint = datasets::SplitFingerprint(data.train);
  options.description_fingerprint = datasets::DescriptionFingerprint(data);
  if (!data.train.owners.empty()) options.samples_per_owner = 0;
  return options;
}

StatusOr<bool> Sisa::Ingest(const datasets::Dataset& data) {
  StatusOr<std::string> marker = store_->GetMeta(kIngestedKey);
  if (marker.ok()) return false;
  if (marker.status().code() != StatusCode::kNotFound) return marker.status();

  RETURN_IF_ERROR(data.Validate());
  if (backbone_ != nullptr &&
      data.train.shape != options_.backbone.input_shape) {
    return InvalidArgumentError(
        "training samples are " + datasets::ShapeString(data.train.shape) +
        " but the backbone takes " +
        datasets::ShapeString(options_.backbone.input_shape));
  }
  datasets::Split embedded;
  if (backbone_ != nullptr) {
    ASSIGN_OR_RETURN(embedded, Embed(data.train));
  }
  const datasets::Split& train = backbone_ != nullptr ? embedded : data.train;
  if (train.shape != options_.model.input_shape ||
      train.type != options_.feature_type) {
    return InvalidArgumentError(
        "training samples are " + datasets::ShapeString(train.shape) + " " +
        datasets::FeatureTypeName(train.type) + " but the model takes " +
        datasets::ShapeString(options_.model.input_shape) + " " +
        datasets::FeatureTypeName(options_.feature_type));
  }
  if (data.classes != options_.model.classes) {
    return InvalidArgumentError(
        "the dataset has " + std::to_string(data.classes) +
        " classes but the model " + std::to_string(options_.model.classes));
  }
  if (train.size() > UINT32_MAX) {
    return InvalidArgumentError("training set is too large");
  }
  if ((options_.samples_per_owner == 0) == train.owners.empty()) {
    return InvalidArgumentError(
        options_.samples_per_owner == 0
            ? "the options say the dataset names owners, but it does not"
            : "the dataset names owners; samples_per_owner must be 0");
  }
  PartitionOptions partition;
  partition.shards = options_.shards;
  partition.slices = options_.slices;
  partition.samples_per_owner =
      std::max<uint32_t>(1, options_.samples_per_owner);
  partition.seed = options_.seed;
  ASSIGN_OR_RETURN(std::vector<Placement> placement,
                   MakePartition(train.size(), partition));
  std::vector<storage::SampleView> views(train.size());
  std::set<uint64_t> owners;
  for (std::size_t i = 0; i < train.size(); ++i) {
    storage::SampleView& v = views[i];
    v.id = SampleId(i);
    v.shard = placement[i].shard;
    v.slice = placement[i].slice;
    v.owner =
        train.owners.empty() ? placement[i].owner : OwnerId(train.owners[i]);
    v.label = train.labels[i];
    v.features = train.row(i);
    v.feature_size = train.row_bytes();
    owners.insert(v.owner.value());
  }
  RETURN_IF_ERROR(store_->IngestSamples(views));
  RETURN_IF_ERROR(StoreDatasetInfo(data, owners));
  RETURN_IF_ERROR(store_->PutMeta(kIngestedKey, std::to_string(train.size())));
  return true;
}

StatusOr<datasets::Split> Sisa::Embed(const datasets::Split& raw) const {
  const std::size_t e = options_.backbone.embedding_size;
  datasets::Split out;
  out.type = datasets::FeatureType::kFloat32;
  out.shape = {static_cast<uint32_t>(e)};
  out.labels = raw.labels;
  out.owners = raw.owners;
  out.features.resize(raw.size() * e * sizeof(float));
  constexpr std::size_t kBatch = 256;
  std::vector<float> embeddings(kBatch * e);
  for (std::size_t i = 0; i < raw.size(); i += kBatch) {
    const std::size_t n = std::min(kBatch, raw.size() - i);
    const std::vector<float> x = raw.DecodeRows(i, i + n);
    RETURN_IF_ERROR(backbone_->Embed(x.data(), n, embeddings.data()));
    std::memcpy(out.features.data() + i * e * sizeof(float), embeddings.data(),
                n * e * sizeof(float));
  }
  return out;
}

Status Sisa::StoreDatasetInfo(const datasets::Dataset& data,
                              const std::set<uint64_t>& owners) {
  std::string owner_bytes;
  owner_bytes.reserve(owners.size() * 8);
  for (uint64_t o : owners) {
    for (int b = 0; b < 8; ++b)
      owner_bytes.push_back(static_cast<char>(o >> (8 * b)));
  }
  RETURN_IF_ERROR(store_->PutMeta(kOwnersKey, owner_bytes));
  // The test rows' owners, for erasing them with the owner's training
  // rows; only where the training split names owners too (otherwise its
  // owners are groups of samples, whose ids would mean other people).
  datasets::Split test = data.test;
  if (data.train.owners.empty()) test.owners.clear();
  RETURN_IF_ERROR(store_->PutMeta(kTestSplitKey, datasets::EncodeSplit(test)));
  return store_->PutMeta(
      kDatasetInfoKey,
      EncodeDatasetInfo(data.source, data.classes, data.class_names,
                        data.encoding.get(), data.train.size()));
}

StatusOr<DatasetInfo> Sisa::ReadDatasetInfo() {
  DatasetInfo info;
  auto read = [this](const char* key) -> StatusOr<std::string> {
    StatusOr<std::string> value = store_->GetMeta(key);
    if (value.status().code() == StatusCode::kNotFound) {
      return DataLossError(std::string("the data directory lacks its '") + key +
                           "' record (built by an older eraser? "
                           "rebuild it with 'eraser train --rebuild')");
    }
    return value;
  };
  ASSIGN_OR_RETURN(std::string encoded, read(kDatasetInfoKey));
  RETURN_IF_ERROR(DecodeDatasetInfo(encoded, &info));
  ASSIGN_OR_RETURN(std::string test, read(kTestSplitKey));
  ASSIGN_OR_RETURN(info.test, datasets::DecodeSplit(test));
  ASSIGN_OR_RETURN(std::string owners, read(kOwnersKey));
  if (owners.size() % 8 != 0) return DataLossError("corrupt owner list");
  info.owners.resize(owners.size() / 8);
  for (std::size_t i = 0; i < info.owners.size(); ++i) {
    uint64_t o = 0;
    for (int b = 0; b < 8; ++b) {
      o |= static_cast<uint64_t>(static_cast<uint8_t>(owners[i * 8 + b]))
           << (8 * b);
    }
    info.owners[i] = o;
  }
  // The test split is stored raw: with a backbone, requests are too.
  const bool fits = backbone_ != nullptr
                        ? info.test.shape == options_.backbone.input_shape
                        : info.test.shape == options_.model.input_shape &&
                              info.test.type == options_.feature_type;
  if (!fits) {
    return DataLossError("the stored test split does not fit the model");
  }
  return info;
}

Status Sisa::EraseTestRows(OwnerId owner) {
  return store_->EraseInMeta(
      kTestSplitKey,
      [owner](const std::string& value) -> StatusOr<std::string> {
        ASSIGN_OR_RETURN(datasets::Split test, datasets::DecodeSplit(value));
        if (test.EraseOwner(owner.value()) == 0) return value;
        return datasets::EncodeSplit(test);
      });
}

StatusOr<bool> Sisa::IsTrained() {
  StatusOr<std::string> marker = store_->GetMeta(kTrainedKey);
  if (marker.ok()) return true;
  if (marker.status().code() == StatusCode::kNotFound) return false;
  return marker.status();
}

StatusOr<TrainReport> Sisa::TrainAll() {
  StatusOr<std::string> ingested = store_->GetMeta(kIngestedKey);
  if (!ingested.ok()) {
    return FailedPreconditionError("no training data ingested yet");
  }
  const auto start = std::chrono::steady_clock::now();
  TrainReport report;
  report.shards.resize(options_.shards);
  RETURN_IF_ERROR(RunOnArena(options_.shards, [&](std::size_t i) -> Status {
    ASSIGN_OR_RETURN(RetrainResult r,
                     TrainShard(ShardId(static_cast<uint32_t>(i)), {},
                                /*from_scratch=*/true));
    for (const storage::Checkpoint& c : r.checkpoints) {
      RETURN_IF_ERROR(store_->PutCheckpoint(c));
    }
    report.shards[i] = {r.shard, r.samples, r.cost};
    return OkStatus();
  }));
  for (const ShardTrainReport& s : report.shards) {
    report.total.sample_epochs += s.cost.sample_epochs;
    report.total.cpu_seconds += s.cost.cpu_seconds;
  }
  report.total.wall_seconds = SecondsSince(start);
  ModelCost& cost = report.model_cost;
  cost.train_seconds_per_sample_epoch =
      report.total.sample_epochs == 0
          ? 0
          : report.total.cpu_seconds /
                static_cast<double>(report.total.sample_epochs);
  RETURN_IF_ERROR(MeasureInference(&cost));
  RETURN_IF_ERROR(store_->PutMeta(kCostKey, EncodeModelCost(cost)));
  RETURN_IF_ERROR(store_->PutMeta(kTrainedKey, "1"));
  return report;
}

Status Sisa::MeasureInference(ModelCost* cost) {
  ASSIGN_OR_RETURN(DatasetInfo info, ReadDatasetInfo());
  const std::size_t rows = std::min<std::size_t>(info.test.size(), 512);
  if (rows == 0) return OkStatus();
  ASSIGN_OR_RETURN(std::vector<ShardModel> shards, LoadModels());
  std::vector<std::shared_ptr<const Model>> models;
  for (const ShardModel& m : shards) models.push_back(m.model);
  ASSIGN_OR_RETURN(std::unique_ptr<Ensemble> ensemble,
                   Ensemble::Create(models));
  const std::vector<float> x = info.test.DecodeRows(0, rows);
  const std::size_t d = models.front()->spec().input_size();
  constexpr std::size_t kBatch = 64;
  std::vector<int32_t> votes(kBatch * models.size());
  // The best of three runs of `predict` over the rows, per row.
  auto measure = [&](const auto& predict) -> StatusOr<double> {
    double best = 0;
    for (int run = 0; run < 3; ++run) {
      const double cpu_start = ThreadCpuSeconds();
      for (std::size_t i = 0; i < rows; i += kBatch) {
        RETURN_IF_ERROR(predict(x.data() + i * d, std::min(kBatch, rows - i)));
      }
      const double seconds = ThreadCpuSeconds() - cpu_start;
      if (run == 0 || seconds < best) best = seconds;
    }
    return best / static_cast<double>(rows);
  };
  ASSIGN_OR_RETURN(
      cost->infer_seconds_per_row, measure([&](const float* in, std::size_t n) {
        return models.front()->Predict(in, n, votes.data(), nullptr);
      }));
  ASSIGN_OR_RETURN(cost->ensemble_infer_seconds_per_row,
                   measure([&](const float* in, std::size_t n) {
                     return ensemble->Predict(in, n, votes.data(), nullptr);
                   }));
  return OkStatus();
}

StatusOr<ModelCost> Sisa::ReadModelCost() {
  ASSIGN_OR_RETURN(std::string encoded, store_->GetMeta(kCostKey));
  return DecodeModelCost(encoded);
}

StatusOr<std::vector<ShardModel>> Sisa::LoadModels() {
  std::vector<ShardModel> models;
  for (uint32_t k = 0; k < options_.shards; ++k) {
    ASSIGN_OR_RETURN(ShardModel m, LoadStage(ShardId(k), options_.slices - 1));
    models.push_back(std::move(m));
  }
  return models;
}

StatusOr<ShardModel> Sisa::LoadStage(ShardId shard, uint32_t stage) {
  if (shard.value() >= options_.shards || stage >= options_.slices) {
    return InvalidArgumentError("no stage " + std::to_string(stage) +
                                " of shard " + std::to_string(shard.value()));
  }
  ASSIGN_OR_RETURN(storage::Checkpoint c, store_->GetCheckpoint(shard, stage));
  ASSIGN_OR_RETURN(std::shared_ptr<const Model> model,
                   LoadModel(options_.model, c.blob));
  return ShardModel{shard, c.version, Served(std::move(model))};
}

StatusOr<std::vector<RetrainResult>> Sisa::Retrain(
    const std::vector<RetrainRequest>& requests,
    const std::function<Status()>& pause) {
  std::unordered_set<ShardId> seen;
  for (const RetrainRequest& r : requests) {
    if (r.shard.value() >= options_.shards) {
      return InvalidArgumentError("no shard " +
                                  std::to_string(r.shard.value()));
    }
    if (!seen.insert(r.shard).second) {
      return InvalidArgumentError("shard " + std::to_string(r.shard.value()) +
                                  " requested twice in one retraining");
    }
  }
  std::vector<RetrainResult> results(requests.size());
  RETURN_IF_ERROR(RunOnArena(requests.size(), [&](std::size_t i) -> Status {
    ASSIGN_OR_RETURN(results[i],
                     TrainShard(requests[i].shard, requests[i].deleted,
                                /*from_scratch=*/false, pause));
    return OkStatus();
  }));
  return results;
}

StatusOr<std::vector<uint64_t>> Sisa::SliceSizes(ShardId shard) {
  std::vector<uint64_t> sizes(options_.slices, 0);
  RETURN_IF_ERROR(store_->ScanShard(shard, 0, options_.slices,
                                    [&](const storage::SampleView& v) {
                                      ++sizes[v.slice];
                                      return OkStatus();
                                    }));
  return sizes;
}

StatusOr<std::shared_ptr<const Model>> Sisa::TrainFromScratch(
    ShardId shard, const std::vector<SampleId>& without) {
  if (shard.value() >= options_.shards) {
    return InvalidArgumentError("no shard " + std::to_string(shard.value()));
  }
  ASSIGN_OR_RETURN(RetrainResult r,
                   TrainShard(shard, without, /*from_scratch=*/true));
  if (r.model == nullptr) {
    return FailedPreconditionError("shard " + std::to_string(shard.value()) +
                                   " has no samples left to train on");
  }
  return r.model;
}

void Sisa::CancelRetrains() {
  cancelled_.store(true, std::memory_order_relaxed);
}

uint64_t Sisa::StageSampleEpochs(const std::vector<uint64_t>& slice_sizes,
                                 uint32_t first_slice) const {
  uint64_t total = 0;
  uint64_t cumulative = 0;
  for (uint32_t r = 0; r < slice_sizes.size() && r < epochs_.size(); ++r) {
    cumulative += slice_sizes[r];
    if (r >= first_slice) total += epochs_[r] * cumulative;
  }
  return total;
}

StatusOr<RetrainResult> Sisa::TrainShard(ShardId shard,
                                         const std::vector<SampleId>& deleted,
                                         bool from_scratch,
                                         const std::function<Status()>& pause) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ThreadCpuSeconds();
  const uint32_t num_slices = options_.slices;
  const std::size_t dim = options_.model.input_size();
  const std::size_t row_bytes =
      dim * datasets::FeatureTypeBytes(options_.feature_type);
  const std::unordered_set<SampleId> to_delete(deleted.begin(), deleted.end());

  RetrainResult result;
  result.shard = shard;
  result.first_slice = from_scratch ? 0 : num_slices;
  // The version is read before the samples: if another engine sharing the
  // store commits a retraining of the shard after this read, the store
  // refuses this one's apply (its version is not newer), so a model trained
  // on samples that apply erased never replaces the one without them.
  if (from_scratch) {
    result.version = 1;
  } else {
    ASSIGN_OR_RETURN(storage::Checkpoint last,
                     store_->GetCheckpoint(shard, num_slices - 1));
    result.version = last.version + 1;
  }
  ShardSamples data;
  RETURN_IF_ERROR(store_->ScanShard(
      shard, 0, num_slices, [&](const storage::SampleView& v) -> Status {
        if (v.feature_size != row_bytes || v.label >= options_.model.classes) {
          return DataLossError("stored sample " + std::to_string(v.id.value()) +
                               " does not fit the model");
        }
        if (to_delete.count(v.id) > 0) {
          result.excluded.push_back(v.id);
          result.first_slice = std::min(result.first_slice, v.slice);
          return OkStatus();
        }
        data.ids.push_back(v.id);
        data.slices.push_back(v.slice);
        data.labels.push_back(v.label);
        data.features.resize(data.features.size() + dim);
        datasets::DecodeFeatures(options_.feature_type, v.features, dim,
                                 &data.features[data.features.size() - dim]);
        return OkStatus();
      }));
  result.samples = data.ids.size();
  if (result.first_slice == num_slices) {  // nothing to unlearn
    result.version = 0;
    return result;
  }

  std::unique_ptr<internal::TrainableModel> model;
  if (result.first_slice == 0) {
    ASSIGN_OR_RETURN(model,
                     internal::TrainableModel::Create(
                         options_.model,
                         DeriveSeed(options_.seed, {kInitTag, shard.value()})));
  } else {
    ASSIGN_OR_RETURN(storage::Checkpoint before,
                     store_->GetCheckpoint(shard, result.first_slice - 1));
    ASSIGN_OR_RETURN(model, internal::TrainableModel::Deserialize(
                                options_.model, before.blob));
  }

  const internal::TrainingData training{dim, data.features.data(),
                                        data.labels.data()};
  const internal::SgdOptions sgd{options_.batch_size, options_.learning_rate,
                                 options_.momentum, pause};
  const std::vector<std::size_t> ends = data.SliceEnds(num_slices);
  Fingerprinter fingerprint;
  std::size_t fingerprinted = 0;
  for (uint32_t r = 0; r < num_slices; ++r) {
    for (; fingerprinted < ends[r]; ++fingerprinted) {
      fingerprint.UpdateU64(data.ids[fingerprinted].value());
    }
    if (r < result.first_slice) continue;
    ERASER_SYNC_POINT("Sisa::TrainShard:Stage");
    if (!from_scratch && cancelled_.load(std::memory_order_relaxed)) {
      return UnavailableError("retraining of shard " +
                              std::to_string(shard.value()) +
                              " cancelled: the engine is closing");
    }
    RETURN_IF_ERROR(
        model->Train(training, ends[r], epochs_[r], sgd,
                     DeriveSeed(options_.seed, {kOrderTag, shard.value(), r})));
    result.cost.sample_epochs += static_cast<uint64_t>(epochs_[r]) * ends[r];
    result.checkpoints.push_back(
        {shard, r, result.version, fingerprint.Finish(), model->Serialize()});
  }
  result.model = Served(std::shared_ptr<const Model>(std::move(model)));
  result.cost.cpu_seconds = ThreadCpuSeconds() - cpu_start;
  result.cost.wall_seconds = SecondsSince(start);
  return result;
}

Status Sisa::RunOnArena(std::size_t n,
                        const std::function<Status(std::size_t)>& fn) {
  std::vector<Status> statuses(n);
  // TBB orders a task's construction before its execution and its execution
  // before wait() returns; the annotations show those edges to
  // ThreadSanitizer (see eraser/common/tsan.h). Tasks are built with defer()
  // so that the task objects are complete before the edge is published.
  // The body is built before the first edge: when the arena has no free
  // slot, execute() hands it to a worker thread, which reads its captures.
  auto body = [&] {
    ERASER_HAPPENS_AFTER(&g_task_submission);
    oneapi::tbb::task_group group;
    std::vector<oneapi::tbb::task_handle> tasks;
    tasks.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      tasks.push_back(group.defer([&statuses, &fn, i] {
        ERASER_HAPPENS_AFTER(&g_task_submission);
        try {
          statuses[i] = fn(i);
        } catch (const std::exception& e) {
          statuses[i] =
              InternalError(std::string("training task: ") + e.what());
        }
        ERASER_HAPPENS_BEFORE(&statuses[i]);
      }));
    }
    ERASER_HAPPENS_BEFORE(&g_task_submission);
    for (oneapi::tbb::task_handle& task : tasks) group.run(std::move(task));
    group.wait();
    ERASER_HAPPENS_BEFORE(&statuses);  // the body's end, before execute returns
  };
  ERASER_HAPPENS_BEFORE(&g_task_submission);
  arena_->arena.execute(body);
  ERASER_HAPPENS_AFTER(&statuses);
  for (Status& s : statuses) {
    ERASER_HAPPENS_AFTER(&s);
    RETURN_IF_ERROR(s);
  }
  return OkStatus();
}

}  // namespace eraser::unlearning
