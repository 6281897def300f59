// Open, recovery, Close and introspection.
#include <pthread.h>

#include <algorithm>

#include "engine_impl.h"
#include "eraser/unlearning/runtime.h"

namespace eraser::engine {

StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(scheduler::Policy policy,
                   scheduler::ParsePolicy(options.policy));
  unlearning::InitComputeRuntime();
  storage::StoreOptions store_options;
  store_options.path = options.data_dir;
  store_options.create_if_missing = options.train_data != nullptr;
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                   storage::Store::Open(store_options));

  std::unique_ptr<unlearning::Sisa> sisa;
  StatusOr<storage::StoreConfig> config = store->ReadConfig();
  const bool has_config = config.ok();
  if (!has_config && config.status().code() != StatusCode::kNotFound) {
    return config.status();
  }
  if (!has_config && options.train_data == nullptr) {
    return FailedPreconditionError(
        options.data_dir +
        " holds no trained ensemble (build it with 'eraser train')");
  }
  if (has_config) {
    ASSIGN_OR_RETURN(sisa, unlearning::Sisa::Open(
                               store.get(), options.unlearning.concurrency));
  } else {
    unlearning::SisaOptions sisa_options =
        unlearning::ForDataset(options.sisa, *options.train_data);
    sisa_options.concurrency = options.unlearning.concurrency;
    ASSIGN_OR_RETURN(sisa, unlearning::Sisa::Create(store.get(), sisa_options));
  }
  ASSIGN_OR_RETURN(bool trained, sisa->IsTrained());
  if (!trained) {
    if (options.train_data == nullptr) {
      return FailedPreconditionError(options.data_dir +
                                     " was never fully trained (run "
                                     "'eraser train' on it)");
    }
    RETURN_IF_ERROR(sisa->Ingest(*options.train_data).status());
    RETURN_IF_ERROR(sisa->TrainAll().status());
  }
  ASSIGN_OR_RETURN(unlearning::DatasetInfo dataset, sisa->ReadDatasetInfo());
  ASSIGN_OR_RETURN(std::vector<unlearning::ShardModel> models,
                   sisa->LoadModels());
  ASSIGN_OR_RETURN(std::shared_ptr<const internal::Snapshot> snapshot,
                   internal::MakeSnapshot(std::move(models)));
  auto engine = std::make_unique<internal::EngineImpl>(
      options, policy, std::move(store), std::move(sisa), std::move(snapshot),
      std::move(dataset));
  RETURN_IF_ERROR(engine->Start());
  return std::unique_ptr<Engine>(std::move(engine));
}

namespace internal {

StatusOr<std::shared_ptr<const Snapshot>> MakeSnapshot(
    std::vector<unlearning::ShardModel> shards) {
  std::vector<std::shared_ptr<const unlearning::Model>> models;
  for (const unlearning::ShardModel& m : shards) models.push_back(m.model);
  ASSIGN_OR_RETURN(std::unique_ptr<unlearning::Ensemble> ensemble,
                   unlearning::Ensemble::Create(std::move(models)));
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->shards = std::move(shards);
  snapshot->ensemble = std::move(ensemble);
  return std::shared_ptr<const Snapshot>(std::move(snapshot));
}

EngineImpl::EngineImpl(const EngineOptions& options,
                       const scheduler::Policy& policy,
                       std::unique_ptr<storage::Store> store,
                       std::unique_ptr<unlearning::Sisa> sisa,
                       std::shared_ptr<const Snapshot> snapshot,
                       unlearning::DatasetInfo dataset)
    : options_(options),
      policy_(policy),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()),
      metrics_(options.metrics != nullptr ? options.metrics
                                          : metrics::EngineMetrics::Create()),
      store_(std::move(store)),
      sisa_(std::move(sisa)),
      dataset_(std::move(dataset)),
      num_shards_(snapshot->shards.size()),
      feature_size_(snapshot->ensemble->spec().input_size()),
      classes_(static_cast<int>(snapshot->ensemble->spec().classes)),
      gate_(options.unlearning.context == ExecutionContext::kExclusive) {
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(snapshot);
  shard_pending_.resize(num_shards_);
  slice_sizes_.resize(num_shards_);
  scheduler::SchedulerOptions scheduler_options = options.unlearning.scheduler;
  scheduler_options.concurrency = options.unlearning.concurrency;
  // The scheduler calls the cost function only from its own methods, which
  // run under mu_.
  scheduler_ = std::make_unique<scheduler::Scheduler>(
      policy_, scheduler_options,
      [this](ShardId shard, uint32_t slice)
          NO_THREAD_SAFETY_ANALYSIS { return RetrainCost(shard, slice); },
      clock_->Now());
}

EngineImpl::~EngineImpl() { Close(); }

Status EngineImpl::Start() {
  for (std::size_t k = 0; k < num_shards_; ++k) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> sizes,
                     sisa_->SliceSizes(ShardId(static_cast<uint32_t>(k))));
    std::lock_guard<std::mutex> lock(mu_);
    slice_sizes_[k] = std::move(sizes);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    watermark_ = store_->LastDeletionSeq().value();
  }
  // Pending deletions resume with their original arrival times, so their
  // deadlines too.
  ASSIGN_OR_RETURN(std::vector<storage::DeletionRecord> pending,
                   store_->PendingDeletions());
  for (const storage::DeletionRecord& record : pending) {
    ASSIGN_OR_RETURN(std::vector<storage::SampleLocation> live,
                     LiveSamples(record.samples));
    if (live.empty()) {
      RETURN_IF_ERROR(store_->MarkApplied({record.seq}, clock_->Now()));
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    RegisterDeletion(record.seq, record.arrival, live);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    UpdateGauges();
  }
  // Named threads show up as such in top, perf and gdb.
  for (int i = 0; i < options_.inference.threads; ++i) {
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "eraser-infer");
      WorkerLoop();
    });
  }
  for (int i = 0; i < options_.unlearning.concurrency; ++i) {
    retrainers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "eraser-retrain");
      RetrainerLoop();
    });
  }
  control_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "eraser-sched");
    ControlLoop();
  });
  return OkStatus();
}

void EngineImpl::Close() {
  std::call_once(close_once_, [this] {
    std::vector<Answer> refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      for (auto& [id, request] : parked_) {
        scheduler_->OnUnparked(id);
        refused.push_back({std::move(request),
                           UnavailableError("the engine is shutting down"),
                           {}});
      }
      parked_.clear();
      for (RequestPtr& request : parked_immediate_) {
        refused.push_back({std::move(request),
                           UnavailableError("the engine is shutting down"),
                           {}});
      }
      parked_immediate_.clear();
      UpdateGauges();
    }
    Deliver(std::move(refused));
    // Workers answer what is queued, then stop.
    queue_.Close();
    for (std::thread& t : workers_) t.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_control_ = true;
    }
    control_cv_.notify_all();
    if (control_.joinable()) control_.join();
    // Running retrainings finish and apply; queued orders are dropped (their
    // deletions stay pending in the log).
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_retrainers_ = true;
    }
    retrain_cv_.notify_all();
    for (std::thread& t : retrainers_) t.join();
    drain_cv_.notify_all();
  });
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  stats.queued = queue_.size();
  std::lock_guard<std::mutex> lock(mu_);
  stats.parked = parked_.size() + parked_immediate_.size();
  stats.pending_deletions = pending_.size();
  for (std::size_t k = 0; k < num_shards_; ++k) {
    if (!shard_pending_[k].empty()) {
      stats.affected_shards.emplace_back(static_cast<uint32_t>(k));
    }
  }
  for (const unlearning::ShardModel& m : snapshot_->shards) {
    stats.model_versions.push_back(m.version);
  }
  stats.retrains_running = scheduler_->running();
  stats.retrains = retrains_;
  stats.unlearning_cost = unlearning_cost_;
  return stats;
}

void EngineImpl::UpdateGauges() {
  std::size_t affected = 0;
  for (const auto& seqs : shard_pending_) affected += seqs.empty() ? 0 : 1;
  metrics_->SetPendingDeletions(pending_.size());
  metrics_->SetAffectedShards(affected);
  metrics_->SetParkedRequests(parked_.size() + parked_immediate_.size());
}

}  // namespace internal
}  // namespace eraser::engine
