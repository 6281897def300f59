// SISA training and exact unlearning over a data directory.
//
// The training set is split into K shards of R slices (partition.h). Each
// shard's constituent model is trained slice by slice on cumulative data:
// stage r trains on slices 0..r for epochs[r] epochs, then checkpoints. A
// retraining after deletions restarts from the checkpoint before the earliest
// affected slice and repeats the later stages without the deleted samples.
//
// Determinism: initial weights come from a seed derived from (seed, shard),
// each stage visits its samples in an order derived from (seed, shard, stage,
// epoch), every stage starts a fresh SGD optimizer (no momentum carried over,
// so a checkpoint is the parameters alone), and each training runs in one
// thread with one Torch/BLAS thread. Hence a retrained shard is bit-identical
// to the same shard trained from scratch without the deleted samples
// (DESIGN guarantee 1), whatever the concurrency.
#ifndef ERASER_UNLEARNING_SISA_H_
#define ERASER_UNLEARNING_SISA_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "eraser/common/ids.h"
#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"
#include "eraser/storage/records.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/backbone.h"
#include "eraser/unlearning/model.h"
#include "eraser/unlearning/partition.h"

namespace eraser::unlearning {

// The default number of epochs per stage for R slices: 4 for each stage but
// the last, 8 for the last (so 4,4,4,8 for R = 4).
std::vector<uint32_t> DefaultEpochs(uint32_t slices);

struct SisaOptions {
  uint32_t shards = 8;  // K
  uint32_t slices = 4;  // R
  // See PartitionOptions; 0 means the dataset names each sample's owner
  // (a CSV owner column, an owners.npy array).
  uint32_t samples_per_owner = 1;
  // The constituent model: with a backbone, the head, whose input is the
  // embedding ({E}).
  ModelSpec model;
  // A frozen backbone (eraser/unlearning/backbone.h), or none: embeddings
  // are then what the store holds as the samples' features.
  BackboneSpec backbone;
  // How the stored feature bytes decode (the dataset's; kFloat32 for
  // embeddings).
  datasets::FeatureType feature_type = datasets::FeatureType::kPixel;
  // Epochs of stage r (training on slices 0..r). Empty: DefaultEpochs(slices).
  // Otherwise exactly `slices` values, each in 1..1000.
  std::vector<uint32_t> epochs;
  uint32_t batch_size = 64;
  double learning_rate = 0.05;
  double momentum = 0.9;
  uint64_t seed = 1;
  // Fingerprint of the training set, recorded so that a data directory is
  // never reused with other data. 0 = not checked.
  uint64_t dataset_fingerprint = 0;
  // Fingerprint of the rest of the dataset the directory keeps (test split,
  // class names, a table's encoding: datasets::DescriptionFingerprint).
  // Stored when not 0. A directory built before it was recorded is served
  // as it is, but `eraser train` on it is refused as built with another
  // configuration: nothing says its description matches.
  uint64_t description_fingerprint = 0;
  // Shards trained at once on the training arena (oneTBB). Changes speed,
  // never results; not part of the stored configuration.
  int concurrency = 2;

  // kInvalidArgument naming the first bad field.
  Status Validate() const;
  // epochs, or DefaultEpochs(slices) when empty.
  std::vector<uint32_t> EpochSchedule() const;
  // Everything that determines the trained models, as stored in the data
  // directory's meta.
  storage::StoreConfig ToConfig() const;
  // The inverse of ToConfig (concurrency keeps its default). kDataLoss for a
  // configuration that does not parse.
  static StatusOr<SisaOptions> FromConfig(const storage::StoreConfig& config);
};

// `options` completed for `data`: input shape, classes, feature type and
// fingerprint, and samples_per_owner 0 when the dataset names owners. With
// a backbone (checked: CheckBackbone), the backbone takes the data's shape
// and the model the embedding's.
SisaOptions ForDataset(SisaOptions options, const datasets::Dataset& data);

// What a data directory records of the dataset it was built from, so that
// serving and replay need nothing else.
struct DatasetInfo {
  std::string source;  // as given to `eraser train`
  uint32_t classes = 0;
  std::vector<std::string> class_names;  // empty or one per class
  // The column transform of a tabular dataset; null otherwise.
  std::shared_ptr<const datasets::TabularEncoding> encoding;
  // The test split, as encoded at ingest, less the rows of deleted owners
  // (erased in place: Split::erased).
  datasets::Split test;
  uint64_t train_size = 0;
  // Every owner id of the training split, ascending, distinct.
  std::vector<uint64_t> owners;
};

// The price of a training or retraining.
struct Cost {
  // (sample, epoch) gradient passes: machine-independent.
  uint64_t sample_epochs = 0;
  // CPU time of the threads that trained (thread CPU clocks).
  double cpu_seconds = 0;
  // Elapsed time. For a set of concurrent trainings, the span of the set.
  double wall_seconds = 0;
};

// A served constituent model and its version (1 after the first training,
// +1 for each retraining).
struct ShardModel {
  ShardId shard;
  uint64_t version = 0;
  std::shared_ptr<const Model> model;
};

struct ShardTrainReport {
  ShardId shard;
  uint64_t samples = 0;
  Cost cost;
};

// What one constituent model costs on the machine that trained it,
// measured by TrainAll and stored with the ensemble: the planner's first
// estimate of a retraining, before any retraining was measured
// (scheduler::Estimator), whatever the model.
struct ModelCost {
  // Thread CPU seconds per (sample, epoch) gradient pass over the whole
  // training (one Torch thread per shard).
  double train_seconds_per_sample_epoch = 0;
  // Thread CPU seconds per input row of one constituent model's inference,
  // in batches of 64, the best of three runs over the test split (with a
  // backbone: backbone and head).
  double infer_seconds_per_row = 0;
  // The same for the whole ensemble, as the engine evaluates it (a stacked
  // MLP ensemble; a backbone run once, then K heads).
  double ensemble_infer_seconds_per_row = 0;
};

struct TrainReport {
  std::vector<ShardTrainReport> shards;
  Cost total;  // sums, except wall_seconds: the whole training's span
  ModelCost model_cost;
};

// Retrain `shard` without `deleted`. Samples not (or no longer) stored in
// the shard are ignored.
struct RetrainRequest {
  ShardId shard;
  std::vector<SampleId> deleted;
};

struct RetrainResult {
  ShardId shard;
  // The earliest slice that held a deleted sample: stages first_slice..R-1
  // were retrained. R when no deleted sample was in the shard (nothing done).
  uint32_t first_slice = 0;
  uint64_t version = 0;
  // New checkpoints for slices first_slice..R-1, not yet stored: pass them to
  // storage::Store::Apply together with `excluded` to commit the unlearning.
  std::vector<storage::Checkpoint> checkpoints;
  // The new model (null when nothing was done).
  std::shared_ptr<const Model> model;
  // The deleted samples that were found in the shard and left out.
  std::vector<SampleId> excluded;
  // Samples the new model was trained on.
  uint64_t samples = 0;
  Cost cost;
};

// Thread safety: Retrain and LoadModels may run concurrently with each other
// and with inference on returned models, but not with Ingest or TrainAll,
// and not twice at once for the same shard.
class Sisa {
 public:
  // For building a data directory: validates `options` and records them in
  // the store's configuration (kFailedPrecondition if the store was built
  // with other options). `store` must outlive the Sisa.
  static StatusOr<std::unique_ptr<Sisa>> Create(storage::Store* store,
                                                const SisaOptions& options);
  // For an existing data directory: reads the options from its
  // configuration. kFailedPrecondition if it holds none.
  static StatusOr<std::unique_ptr<Sisa>> Open(storage::Store* store,
                                              int concurrency);
  ~Sisa();

  const SisaOptions& options() const { return options_; }

  // Partitions data.train and stores it with what DatasetInfo holds (test
  // split, class names, encoding), unless the directory already holds it.
  // Returns true if it ingested now, false if it was already there.
  // kInvalidArgument if the data does not fit the options (shape, feature
  // type, classes, owners) or its size cannot fill the partition.
  StatusOr<bool> Ingest(const datasets::Dataset& data);

  // The dataset's record (see DatasetInfo). kDataLoss if it is missing or
  // corrupt in an ingested directory.
  StatusOr<DatasetInfo> ReadDatasetInfo();
  // Erases `owner`'s rows of the stored test split (Store::EraseInMeta):
  // no model holds them, but the store keeps them for evaluation. OK when
  // there are none left.
  Status EraseTestRows(OwnerId owner);

  // Whether TrainAll completed on this directory.
  StatusOr<bool> IsTrained();

  // Trains every shard from scratch on the stored samples and stores every
  // checkpoint; measures and stores the model's cost; then marks the
  // directory trained.
  StatusOr<TrainReport> TrainAll();

  // The cost TrainAll measured. kNotFound for a directory trained before
  // eraser recorded costs; kDataLoss if the record is corrupt.
  StatusOr<ModelCost> ReadModelCost();

  // The latest model of every shard, from the stored checkpoints.
  StatusOr<std::vector<ShardModel>> LoadModels();
  // The stored checkpoint of `shard` after stage `stage` (trained on slices
  // 0..stage), as a servable model, with the checkpoint's version (that of
  // the training that wrote it). kInvalidArgument for a shard or stage out
  // of range.
  StatusOr<ShardModel> LoadStage(ShardId shard, uint32_t stage);

  // Retrains the requested shards (at most one request per shard)
  // concurrently on the training arena. Reads the store, writes nothing.
  // `pause`, if set, is called before every mini-batch and may block (a
  // retraining yielding its core to inference); what is trained does not
  // depend on it. An error it returns stops the training of the shard
  // whose pause returned it, and Retrain returns that error (the engine
  // preempts a yielding retraining so; with several requests the others
  // train to their end first). With several requests it is called from
  // several threads at once.
  StatusOr<std::vector<RetrainResult>> Retrain(
      const std::vector<RetrainRequest>& requests,
      const std::function<Status()>& pause = nullptr);

  // Trains `shard` from scratch (every stage, from the initial weights) on
  // its stored samples minus `without`; reads the store, writes nothing.
  // The replay's independent oracle: it shares no checkpoint with Retrain.
  StatusOr<std::shared_ptr<const Model>> TrainFromScratch(
      ShardId shard, const std::vector<SampleId>& without);

  // Makes running and later Retrain calls stop at their next stage with
  // kUnavailable (the engine is closing and its grace is over). Irreversible.
  void CancelRetrains();

  // Samples stored (not erased) per slice of a shard.
  StatusOr<std::vector<uint64_t>> SliceSizes(ShardId shard);

  // The sample-epochs a retraining from `first_slice` costs, given the
  // shard's current slice sizes: sum over stages r >= first_slice of
  // epochs[r] * (samples in slices 0..r).
  uint64_t StageSampleEpochs(const std::vector<uint64_t>& slice_sizes,
                             uint32_t first_slice) const;

 private:
  struct Arena;
  Sisa(storage::Store* store, const SisaOptions& options,
       std::shared_ptr<const Backbone> backbone);
  // `head` as served: after the backbone, if there is one.
  std::shared_ptr<const Model> Served(std::shared_ptr<const Model> head) const;
  // The training split as the store holds it: embedded by the backbone.
  StatusOr<datasets::Split> Embed(const datasets::Split& raw) const;
  Status StoreDatasetInfo(const datasets::Dataset& data,
                          const std::set<uint64_t>& owners);
  // The inference figures of ModelCost: shard 0's trained model, and the
  // ensemble.
  Status MeasureInference(ModelCost* cost);
  StatusOr<RetrainResult> TrainShard(
      ShardId shard, const std::vector<SampleId>& deleted, bool from_scratch,
      const std::function<Status()>& pause = nullptr);
  // Runs fn(i) for i in [0, n) on the arena; returns the first error.
  Status RunOnArena(std::size_t n,
                    const std::function<Status(std::size_t)>& fn);

  storage::Store* const store_;
  const SisaOptions options_;
  const std::vector<uint32_t> epochs_;
  const std::shared_ptr<const Backbone> backbone_;  // null without one
  std::unique_ptr<Arena> arena_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_SISA_H_
