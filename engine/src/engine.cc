// Open, recovery, Close and introspection.
#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "engine_impl.h"
#include "eraser/common/sync_point.h"
#include "eraser/unlearning/runtime.h"

namespace eraser::engine {

namespace {
constexpr char kShuttingDown[] = "the engine is shutting down";
}  // namespace

Status ShuttingDownError() { return UnavailableError(kShuttingDown); }

bool IsShuttingDown(const Status& status) {
  return status.code() == StatusCode::kUnavailable &&
         status.message() == kShuttingDown;
}

StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  unlearning::InitComputeRuntime();
  storage::StoreOptions store_options;
  store_options.path = options.data_dir;
  store_options.create_if_missing = options.train_data != nullptr;
  StatusOr<std::unique_ptr<storage::Store>> opened =
      storage::Store::Open(store_options);
  if (opened.status().code() == StatusCode::kNotFound) {
    return NotFoundError(std::string(opened.status().message()) +
                         " (build it with 'eraser train')");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store, std::move(opened));

  // Retrainings run one per slot, plus one on the inference core when a
  // deadline is at risk.
  const int arena = options.unlearning.concurrency +
                    (options.unlearning.borrow_inference_core ? 1 : 0);
  std::unique_ptr<unlearning::Sisa> sisa;
  StatusOr<storage::StoreConfig> config = store->ReadConfig();
  const bool has_config = config.ok();
  if (!has_config && config.status().code() != StatusCode::kNotFound) {
    return config.status();
  }
  if (!has_config && options.train_data == nullptr) {
    return FailedPreconditionError(
        storage::PrintableLocation(options.data_dir) +
        " holds no trained ensemble (build it with 'eraser train')");
  }
  if (has_config) {
    ASSIGN_OR_RETURN(sisa, unlearning::Sisa::Open(store.get(), arena));
  } else {
    unlearning::SisaOptions sisa_options =
        unlearning::ForDataset(options.sisa, *options.train_data);
    sisa_options.concurrency = arena;
    ASSIGN_OR_RETURN(sisa, unlearning::Sisa::Create(store.get(), sisa_options));
  }
  ASSIGN_OR_RETURN(bool trained, sisa->IsTrained());
  if (!trained) {
    if (options.train_data == nullptr) {
      return FailedPreconditionError(
          storage::PrintableLocation(options.data_dir) +
          " was never fully trained (run "
          "'eraser train' on it)");
    }
    RETURN_IF_ERROR(sisa->Ingest(*options.train_data).status());
    RETURN_IF_ERROR(sisa->TrainAll().status());
  }
  ASSIGN_OR_RETURN(unlearning::DatasetInfo dataset, sisa->ReadDatasetInfo());
  if (sisa->options().samples_per_owner == 0 && dataset.test.size() > 0 &&
      dataset.test.owners.empty()) {
    std::fprintf(stderr,
                 "eraser: %s keeps its test split without the rows' owners "
                 "(built before 2026-12-06): deleting an owner erases their "
                 "training rows but not their test rows; build it again to "
                 "erase both (docs/datasets.md)\n",
                 storage::PrintableLocation(options.data_dir).c_str());
  }
  ASSIGN_OR_RETURN(std::vector<unlearning::ShardModel> models,
                   sisa->LoadModels());
  ASSIGN_OR_RETURN(std::shared_ptr<const internal::Snapshot> snapshot,
                   internal::MakeSnapshot(std::move(models)));
  auto engine = std::make_unique<internal::EngineImpl>(
      options, std::move(store), std::move(sisa), std::move(snapshot),
      std::move(dataset));
  RETURN_IF_ERROR(engine->Start());
  return std::unique_ptr<Engine>(std::move(engine));
}

namespace internal {

std::vector<uint64_t> Snapshot::versions() const {
  std::vector<uint64_t> out;
  for (const unlearning::ShardModel& m : shards) out.push_back(m.version);
  return out;
}

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

namespace {

std::unordered_map<uint64_t, std::vector<std::size_t>> TestRowsByOwner(
    const datasets::Split& test) {
  std::unordered_map<uint64_t, std::vector<std::size_t>> rows;
  for (std::size_t i = 0; i < test.owners.size(); ++i) {
    rows[test.owners[i]].push_back(i);
  }
  return rows;
}

}  // namespace

EngineImpl::EngineImpl(const EngineOptions& options,
                       std::unique_ptr<storage::Store> store,
                       std::unique_ptr<unlearning::Sisa> sisa,
                       std::shared_ptr<const Snapshot> snapshot,
                       unlearning::DatasetInfo dataset)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()),
      metrics_(options.metrics != nullptr ? options.metrics
                                          : metrics::EngineMetrics::Create()),
      store_(std::move(store)),
      sisa_(std::move(sisa)),
      dataset_(std::move(dataset)),
      test_rows_by_owner_(TestRowsByOwner(dataset_.test)),
      num_shards_(snapshot->shards.size()),
      feature_size_(snapshot->ensemble->spec().input_size()),
      classes_(static_cast<int>(snapshot->ensemble->spec().classes)),
      trains_in_parallel_(
          unlearning::TrainsInParallel(snapshot->ensemble->spec())),
      queue_(clock_),
      gate_(options.unlearning.context == ExecutionContext::kExclusive,
            options.unlearning.borrowed_inference_share, clock_),
      interrupts_(num_shards_),
      shared_store_(storage::IsPostgresLocation(options.data_dir)) {
  MutexLock lock(&mu_);
  snapshot_ = std::move(snapshot);
}

EngineImpl::~EngineImpl() { Close(); }

Status EngineImpl::Start() {
  started_at_ = clock_->Now();
  scheduler::CoreOptions core;
  core.policy = options_.policy;
  core.shards = num_shards_;
  core.classes = classes_;
  core.epochs = sisa_->options().EpochSchedule();
  core.slots = options_.unlearning.concurrency;
  core.borrowable_slots = options_.unlearning.borrow_inference_core ? 1 : 0;
  // The plan counts the slots that add capacity: retrainings of a model
  // that trains one shard at a time would wait for each other, and one
  // borrowing the inference core would pause inference for nothing.
  if (!trains_in_parallel_) {
    core.slots = 1;
    core.borrowable_slots = 0;
  }
  // In the exclusive context inference and retraining share one device:
  // there is no idle core to lend.
  core.use_idle_cores =
      options_.unlearning.use_idle_cores && core.borrowable_slots > 0 &&
      options_.unlearning.context == ExecutionContext::kConcurrent;
  core.estimates = options_.unlearning.estimates;
  // The first plan of a retraining is as right as the model's own measured
  // cost: any model, however costly, keeps its deadlines from the first
  // deletion on (docs/engine.md). The estimator then learns from the
  // retrainings it sees.
  StatusOr<unlearning::ModelCost> cost = sisa_->ReadModelCost();
  if (cost.ok()) {
    model_cost_ = *cost;
  } else if (cost.status().code() != StatusCode::kNotFound) {
    return cost.status();
  }
  if (core.estimates.initial_seconds_per_sample_epoch == 0) {
    core.estimates.initial_seconds_per_sample_epoch =
        model_cost_.train_seconds_per_sample_epoch;
  }
  core.retry = options_.unlearning.retry;
  core.max_wait = options_.inference.max_wait;
  core.testing_affected_hook = options_.testing.affected_filter;
  core.testing_clean_stage_offset = options_.testing.clean_stage_offset;
  RETURN_IF_ERROR(core.Validate());
  std::vector<std::vector<uint64_t>> sizes;
  for (std::size_t k = 0; k < num_shards_; ++k) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> s,
                     sisa_->SliceSizes(ShardId(static_cast<uint32_t>(k))));
    sizes.push_back(std::move(s));
  }
  // Pending deletions resume with their original arrival times, so their
  // deadlines too.
  ASSIGN_OR_RETURN(std::vector<storage::DeletionRecord> pending,
                   store_->PendingDeletions());
  std::vector<
      std::pair<storage::DeletionRecord, std::vector<scheduler::SampleHit>>>
      recovered;
  std::vector<DeletionSeq> nothing_live;  // all erased before it arrived
  // Shared with other engines, the whole log is read by CatchUp below
  // instead: which samples are live depends on this engine's models, not on
  // what the store has erased since they were loaded. A deletion whose
  // samples were all erased when it arrived is applied at once, on any
  // store; if marking it failed (a full disk, a lost connection), it is
  // marked here.
  if (shared_store_) {
    for (const storage::DeletionRecord& record : pending) {
      if (std::all_of(
              record.samples.begin(), record.samples.end(),
              [](const storage::SampleLocation& s) { return s.erased; })) {
        nothing_live.push_back(record.seq);
      }
    }
    pending.clear();
  }
  // A shard may have left a pending deletion's samples without its record
  // saying so: an apply whose plan it missed (it registered meanwhile)
  // erased them, and the process stopped before the next order wrote it.
  // The served models, the newest stored, leave them out: that is
  // recorded, as that order would have, for the exposure checks that read
  // excluded_from; a deletion every shard has left is then applied.
  std::vector<uint64_t> served;
  {
    MutexLock lock(&mu_);
    served = snapshot_->versions();
  }
  std::vector<storage::ApplyBatch::Exclusion> left;
  for (const storage::DeletionRecord& record : pending) {
    std::vector<scheduler::SampleHit> live;
    std::map<ShardId, bool> all_erased;
    for (const storage::SampleLocation& s : record.samples) {
      if (s.erased) continue;  // another deletion's, before it arrived
      ASSIGN_OR_RETURN(storage::SampleLocation now, store_->LookupSample(s.id));
      auto [at, added] = all_erased.emplace(now.shard, true);
      if (!now.erased) {
        live.push_back({now.id, now.shard, now.slice});
        at->second = false;
      }
    }
    for (const auto& [shard, erased] : all_erased) {
      const bool recorded = std::any_of(
          record.excluded_from.begin(), record.excluded_from.end(),
          [shard = shard](const auto& e) { return e.first == shard; });
      if (erased && !recorded && shard.value() < served.size()) {
        left.push_back({record.seq, shard, served[shard.value()]});
      }
    }
    if (all_erased.empty()) nothing_live.push_back(record.seq);
    if (!live.empty()) recovered.emplace_back(record, std::move(live));
  }
  // A store that refuses writes (opened read-only on a full disk) opens
  // anyway: the Core needs neither write (it registers live samples only),
  // and the next open derives both again from the same records.
  Status repaired = OkStatus();
  if (!left.empty()) {
    ERASER_SYNC_POINT("EngineImpl::Open:RecordExclusions");
    repaired = store_->RecordExclusions(left, clock_->Now());
  }
  if (repaired.ok() && !nothing_live.empty()) {
    repaired = store_->MarkApplied(nothing_live, clock_->Now());
  }
  // On a shared store only the marks are written here, and nothing else
  // of the open depends on them: a failure is logged, the next open tries
  // again.
  if (!repaired.ok() && shared_store_) {
    std::fprintf(stderr,
                 "eraser: %zu deletions of samples erased before they "
                 "arrived could not be marked applied (%s); the next open "
                 "tries again\n",
                 nothing_live.size(), repaired.ToString().c_str());
  } else if (!repaired.ok() &&
             repaired.code() != StatusCode::kResourceExhausted) {
    return repaired;
  }
  {
    MutexLock lock(&mu_);
    core_ = std::make_unique<scheduler::Core>(
        core, std::move(sizes), snapshot_->versions(), clock_->Now());
    for (const auto& [record, live] : recovered) {
      core_->OnDeletion(record.seq, record.arrival, live);
    }
    core_->KnownUpTo(store_->LastDeletionSeq());
    // Open finishes what a crash left owed; if that failed (a full disk),
    // the control loop retries it.
    if (store_->ErasureOwed()) core_->OnErasureOwedAtOpen(clock_->Now());
    metrics_->SetErasureOwed(core_->erasure_owed());
    UpdateGauges();
  }
  metrics_->SetLease(true, 1);
  if (shared_store_) {
    // The whole log first, then the lease, whose first renewal reads only
    // what came meanwhile: acknowledgements elsewhere wait for this engine
    // from the moment it joins.
    RETURN_IF_ERROR(CatchUp());
    ASSIGN_OR_RETURN(membership_, store_->Join(options_.replica_lease));
    if (membership_ == nullptr) return InternalError("the store has no leases");
    RETURN_IF_ERROR(RenewLease());
    metrics_->SetLease(true, membership_->live_members());
    lease_thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "eraser-lease");
      LeaseLoop();
    });
  }
  // Named threads show up as such in top, perf and gdb.
  for (int i = 0; i < options_.inference.threads; ++i) {
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "eraser-infer");
      WorkerLoop();
    });
  }
  for (int i = 0; i < core.slots + core.borrowable_slots; ++i) {
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

void EngineImpl::Close(Duration grace) {
  std::call_once(close_once_, [this, grace] {
    std::vector<Answer> refused;
    {
      MutexLock lock(&mu_);
      closed_ = true;
      // No new retraining starts: orders not yet taken are dropped (their
      // deletions stay pending in the durable log).
      stop_retrainers_ = true;
      if (core_ != nullptr) {
        for (uint64_t id : core_->TakeAllWaiting()) {
          auto it = waiting_.find(id);
          if (it == waiting_.end()) continue;
          refused.push_back({std::move(it->second), ShuttingDownError(), {}});
          waiting_.erase(it);
        }
        UpdateGauges();
      }
    }
    Deliver(std::move(refused));
    // Workers answer what is queued, then stop.
    queue_.Close();
    for (std::thread& t : workers_) t.join();
    {
      MutexLock lock(&mu_);
      stop_control_ = true;
    }
    control_cv_.SignalAll();
    if (control_.joinable()) control_.join();
    // The workers are done answering: the lease may lapse.
    {
      MutexLock lock(&mu_);
      stop_lease_ = true;
    }
    lease_cv_.SignalAll();
    if (lease_thread_.joinable()) lease_thread_.join();
    {
      // No answer comes any more: acknowledgements elsewhere stop waiting
      // for this engine.
      MutexLock lock(&mu_);
      lease_until_ = std::chrono::steady_clock::time_point();
    }
    if (membership_ != nullptr) membership_->Leave();
    retrain_cv_.SignalAll();
    // Running retrainings get `grace` to finish and apply; then they stop
    // at their next stage.
    bool cancel = false;
    {
      MutexLock lock(&mu_);
      const bool bounded = grace < std::chrono::hours(24 * 365);
      const TimePoint deadline = bounded ? clock_->Now() + grace : TimePoint();
      while (active_retrains_ > 0) {
        if (!bounded) {
          drain_cv_.Wait(&mu_);
        } else if (!drain_cv_.WaitUntil(&mu_, *clock_, deadline)) {
          cancel = active_retrains_ > 0;
          break;
        }
      }
    }
    if (cancel) {
      std::fprintf(stderr,
                   "eraser: shutdown grace over; cancelling running "
                   "retrainings\n");
      sisa_->CancelRetrains();
      ERASER_SYNC_POINT("EngineImpl::Close:Cancel");
    }
    for (std::thread& t : retrainers_) t.join();
    drain_cv_.SignalAll();
  });
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  stats.queued = queue_.size();
  MutexLock lock(&mu_);
  stats.parked = core_->parked() + core_->held();
  stats.pending_deletions = core_->pending_deletions();
  stats.affected_shards = core_->AffectedShards();
  stats.model_versions = snapshot_->versions();
  stats.retrains_running = core_->running();
  stats.retrains = retrains_;
  stats.unlearning_cost = unlearning_cost_;
  stats.deadline_misses = core_->deadline_misses();
  const TimePoint now = clock_->Now();
  stats.capacity = core_->GetCapacity(now);
  stats.retrain_failures = retrain_failures_;
  stats.last_retrain_failure = last_retrain_failure_;
  stats.backing_off = core_->BackingOff(now);
  stats.erasure_owed = core_->erasure_owed();
  if (Status writes = store_->WriteStatus(); !writes.ok()) {
    stats.store_refusing_writes = writes.ToString();
  }
  stats.expired = expired_;
  stats.shard_reloads = reloads_;
  stats.lease_held = LeaseHeld();
  stats.live_replicas =
      membership_ != nullptr ? membership_->live_members() : 1;
  stats.lease_refusals = lease_refusals_;
  stats.executions = executions_.load();
  stats.retrains_promoted = promoted_.load();
  stats.retrains_preempted = preempted_.load();
  stats.planning.model_cost = model_cost_;
  stats.planning.initial_seconds_per_sample_epoch =
      core_->estimator().options().InitialRate();
  stats.planning.retrainings_measured = core_->estimator().measurements();
  stats.planning.whole_shard_retrain_seconds = core_->WholeShardSeconds();
  stats.planning.slots = core_->slots();
  stats.planning.borrowable_slots = core_->borrowable_slots();
  stats.planning.idle_cores = core_->uses_idle_cores();
  return stats;
}

void EngineImpl::UpdateGauges() {
  metrics_->SetPendingDeletions(core_->pending_deletions());
  metrics_->SetAffectedShards(core_->AffectedShards().size());
  metrics_->SetParkedRequests(core_->parked() + core_->held());
}

}  // namespace internal
}  // namespace eraser::engine
