// The oracle of DESIGN guarantee 3: for every served answer, the answer of
// the ensemble trained without every deletion the engine had accepted when
// the answer was computed, obtained through the exact retraining path.
//
// A shard's oracle model depends only on the deletions that hit it, so the
// oracle keeps one chain of models per shard: version v is the shard
// retrained without the first v deletions that hit it. Chains are built in
// rounds (round r retrains every shard's r-th deletion, shards in
// parallel), once for all policies, since every policy receives the same
// deletions in the same order.
//
// A second oracle shares nothing with the retraining path: for a seeded
// sample of answers, and for the final state after the drain, each shard
// version needed is trained from scratch (Sisa::TrainFromScratch, from the
// initial weights, no checkpoint) on a pristine copy of the data without
// the deletions acknowledged before the answer.
#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "eraser/certify/certificate.h"
#include "eraser/certify/vote.h"
#include "eraser/common/random.h"
#include "eraser/storage/store.h"
#include "eraser/workloads/data_dir.h"
#include "replay_internal.h"

namespace eraser::workloads::internal {
namespace {

struct Hit {
  std::size_t deletion;  // 1-based position among the run's deletions
  std::vector<SampleId> samples;
};

// Per shard, the deletions that hit it in order: chains[k][v] is the v-th.
using Chains = std::vector<std::vector<Hit>>;
// versions[k][v]: shard k without its first v deletions.
using Versions =
    std::vector<std::vector<std::shared_ptr<const unlearning::Model>>>;
// A model's vote on one test row, and its probabilities.
struct ShardAnswer {
  int32_t vote = -1;
  std::vector<float> probs;
};
// Computed once per (shard, version) and test index.
using Votes = std::map<std::pair<std::size_t, std::size_t>,
                       std::map<uint64_t, ShardAnswer>>;

// The label an answer must have, by its decision, given the oracle's vote
// of each shard: the ensemble's for clean, certified and waited answers;
// for a partial one, the plurality of the shards it left unaffected (they
// held no deletion up to its watermark, and retraining is exact, so they
// are the oracle's models). Prefix, uncertified and rejected answers
// promise no label.
std::optional<int> Expected(const engine::Prediction& p,
                            const std::vector<int32_t>& shard_votes,
                            int classes) {
  switch (p.decision) {
    case certify::Decision::kClean:
    case certify::Decision::kCertified:
    case certify::Decision::kWaited:
      return certify::PluralityVote(shard_votes.data(), shard_votes.size(),
                                    classes);
    case certify::Decision::kPartial: {
      std::vector<uint8_t> affected(shard_votes.size(), 0);
      for (ShardId k : p.affected) {
        if (k.value() < affected.size()) affected[k.value()] = 1;
      }
      return certify::PartialVote(shard_votes.data(), affected.data(),
                                  shard_votes.size(), classes);
    }
    default:
      return std::nullopt;
  }
}

// Whether answer `p` is what its decision promises, given the oracle's
// shard votes and probabilities (probs[k * classes + c]). Under the rule
// `soft` a `partial` answer is the unaffected shards' largest sum of
// probabilities, or within kSoftVoteEpsilon per summed shard of it: the
// engine computed them in other batch shapes, which move probabilities in
// their last bits, and a parked request's answer is one shard's vote, its
// logits' argmax.
bool Keeps(const engine::Prediction& p, scheduler::UncertifiedRule rule,
           const std::vector<int32_t>& shard_votes,
           const std::vector<float>& probs, int classes) {
  if (p.decision == certify::Decision::kPartial &&
      rule == scheduler::UncertifiedRule::kSoft) {
    std::vector<uint8_t> affected(shard_votes.size(), 0);
    for (ShardId k : p.affected) {
      if (k.value() < affected.size()) affected[k.value()] = 1;
    }
    std::vector<double> sums(static_cast<std::size_t>(classes), 0.0);
    std::size_t summed = 0;
    for (std::size_t k = 0; k < shard_votes.size(); ++k) {
      if (affected[k]) continue;
      ++summed;
      for (int c = 0; c < classes; ++c) {
        sums[static_cast<std::size_t>(c)] +=
            probs[k * static_cast<std::size_t>(classes) + c];
      }
    }
    return summed > 0 && p.label >= 0 && p.label < classes &&
           sums[static_cast<std::size_t>(p.label)] >=
               *std::max_element(sums.begin(), sums.end()) -
                   certify::kSoftVoteEpsilon * static_cast<double>(summed);
  }
  const std::optional<int> expected = Expected(p, shard_votes, classes);
  return !expected || p.label == *expected;
}

struct Check {
  PolicyRun* run;
  const Outcome* outcome;
  std::size_t prefix;  // deletions accepted before the answer
};

// How many of the run's deletions, in the order they were issued, the
// engine had registered when it decided an answer at `watermark`. Their
// sequence numbers rise in that order, except a repeated request's: the
// earlier pending deletion's, which it adds nothing to.
std::size_t RegisteredAt(const PolicyRun& run, uint64_t watermark) {
  std::size_t n = 0;
  uint64_t highest = 0;
  for (DeletionSeq seq : run.seqs) {
    highest = std::max(highest, seq.value());
    if (highest > watermark) break;
    ++n;
  }
  return n;
}

// Each deletion's samples by shard; a sample deleted twice counts once.
StatusOr<Chains> BuildChains(
    storage::Store& store, std::size_t shards,
    const std::vector<storage::DeletionTarget>& targets,
    const datasets::Split& test) {
  Chains chains(shards);
  std::set<SampleId> deleted;
  for (std::size_t d = 0; d < targets.size(); ++d) {
    std::vector<storage::SampleLocation> samples;
    if (targets[d].kind == storage::DeletionTarget::Kind::kSample) {
      ASSIGN_OR_RETURN(storage::SampleLocation s,
                       store.LookupSample(SampleId(targets[d].id)));
      samples.push_back(s);
    } else {
      // Not found: an owner whose rows are all in the test split, whom no
      // model held (as LocateDeletions accepts).
      StatusOr<std::vector<storage::SampleLocation>> owned =
          store.OwnerSamples(OwnerId(targets[d].id));
      const bool test_only = owned.status().code() == StatusCode::kNotFound &&
                             std::find(test.owners.begin(), test.owners.end(),
                                       targets[d].id) != test.owners.end();
      if (!test_only) {
        ASSIGN_OR_RETURN(samples, std::move(owned));
      }
    }
    std::map<ShardId, std::vector<SampleId>> by_shard;
    for (const storage::SampleLocation& s : samples) {
      if (!s.erased && deleted.insert(s.id).second) {
        by_shard[s.shard].push_back(s.id);
      }
    }
    for (auto& [shard, ids] : by_shard) {
      chains[shard.value()].push_back({d + 1, std::move(ids)});
    }
  }
  return chains;
}

// Retrains every chain, in rounds: round r retrains every shard's r-th
// deletion, shards in parallel.
StatusOr<Versions> TrainChains(unlearning::Sisa& sisa, storage::Store& store,
                               const Chains& chains) {
  const std::size_t shards = chains.size();
  Versions versions(shards);
  ASSIGN_OR_RETURN(std::vector<unlearning::ShardModel> base, sisa.LoadModels());
  for (std::size_t k = 0; k < shards; ++k) versions[k].push_back(base[k].model);
  for (std::size_t round = 0;; ++round) {
    std::vector<unlearning::RetrainRequest> requests;
    for (std::size_t k = 0; k < shards; ++k) {
      if (round < chains[k].size()) {
        requests.push_back(
            {ShardId(static_cast<uint32_t>(k)), chains[k][round].samples});
      }
    }
    if (requests.empty()) break;
    ASSIGN_OR_RETURN(std::vector<unlearning::RetrainResult> results,
                     sisa.Retrain(requests));
    for (unlearning::RetrainResult& r : results) {
      storage::ApplyBatch batch;
      batch.checkpoints = r.checkpoints;
      batch.erase = r.excluded;
      RETURN_IF_ERROR(store.Apply(batch));
      auto& chain = versions[r.shard.value()];
      chain.push_back(r.model != nullptr ? r.model : chain.back());
    }
  }
  return versions;
}

// The chain version of shard k behind a run's deletion prefix.
std::size_t VersionAt(const Chains& chains, std::size_t k, std::size_t prefix) {
  std::size_t v = 0;
  while (v < chains[k].size() && chains[k][v].deletion <= prefix) ++v;
  return v;
}

// The votes and probabilities of each shard's version behind `prefix`
// deletions, on test row `index`.
void Gather(const Votes& votes, const Chains& chains, std::size_t prefix,
            uint64_t index, std::vector<int32_t>* shard_votes,
            std::vector<float>* probs) {
  probs->clear();
  for (std::size_t k = 0; k < chains.size(); ++k) {
    const ShardAnswer& a =
        votes.at({k, VersionAt(chains, k, prefix)}).at(index);
    (*shard_votes)[k] = a.vote;
    probs->insert(probs->end(), a.probs.begin(), a.probs.end());
  }
}

// The answers to check, and the (shard, version, test index) votes they
// need (values still -1).
std::vector<Check> CollectChecks(std::vector<PolicyRun>& runs,
                                 const Chains& chains, Votes* votes) {
  std::vector<Check> checks;
  for (PolicyRun& run : runs) {
    for (const Outcome& o : run.outcomes) {
      if (!o.prediction ||
          o.prediction->decision == certify::Decision::kRejected) {
        continue;
      }
      // Deletions of this run accepted by the engine before the answer.
      const std::size_t prefix =
          RegisteredAt(run, o.prediction->deletion_watermark);
      checks.push_back({&run, &o, prefix});
      for (std::size_t k = 0; k < chains.size(); ++k) {
        (*votes)[{k, VersionAt(chains, k, prefix)}][o.test_index].vote = -1;
      }
    }
  }
  return checks;
}

// Fills every vote: the model of each (shard, version) key on its test
// indices; and its probabilities when `probabilities` is set (only a
// policy with the rule `soft` needs them).
using ModelOf = std::function<const unlearning::Model&(
    const std::pair<std::size_t, std::size_t>&)>;
Status ComputeVotes(const ModelOf& model_of,
                    const std::vector<float>& test_inputs, std::size_t dim,
                    bool probabilities, Votes* votes) {
  for (auto& [key, by_index] : *votes) {
    std::vector<float> inputs;
    inputs.reserve(by_index.size() * dim);
    for (const auto& [index, vote] : by_index) {
      const auto first =
          test_inputs.begin() + static_cast<std::ptrdiff_t>(index * dim);
      inputs.insert(inputs.end(), first,
                    first + static_cast<std::ptrdiff_t>(dim));
    }
    const unlearning::Model& model = model_of(key);
    const std::size_t classes = model.spec().classes;
    std::vector<int32_t> out(by_index.size());
    std::vector<float> probs(probabilities ? by_index.size() * classes : 0);
    RETURN_IF_ERROR(model.Predict(inputs.data(), by_index.size(), out.data(),
                                  probabilities ? probs.data() : nullptr));
    std::size_t i = 0;
    for (auto& [index, answer] : by_index) {
      answer.vote = out[i];
      if (probabilities) {
        answer.probs.assign(
            probs.begin() + static_cast<std::ptrdiff_t>(i * classes),
            probs.begin() + static_cast<std::ptrdiff_t>((i + 1) * classes));
      }
      ++i;
    }
  }
  return OkStatus();
}

// Trains every (shard, chain version) of `votes` from scratch, in parallel
// over the machine's cores; version 0 is the initial training.
StatusOr<std::map<std::pair<std::size_t, std::size_t>,
                  std::shared_ptr<const unlearning::Model>>>
TrainFromScratch(unlearning::Sisa& sisa, const Chains& chains,
                 const Votes& votes) {
  std::map<std::pair<std::size_t, std::size_t>,
           std::shared_ptr<const unlearning::Model>>
      models;
  for (const auto& [key, unused] : votes) models[key] = nullptr;
  std::vector<std::pair<std::size_t, std::size_t>> keys;
  for (const auto& [key, unused] : models) keys.push_back(key);
  std::vector<Status> statuses(keys.size());
  std::vector<std::shared_ptr<const unlearning::Model>> trained(keys.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < keys.size();) {
      const auto [k, v] = keys[i];
      std::vector<SampleId> without;
      for (std::size_t j = 0; j < v; ++j) {
        without.insert(without.end(), chains[k][j].samples.begin(),
                       chains[k][j].samples.end());
      }
      StatusOr<std::shared_ptr<const unlearning::Model>> m =
          sisa.TrainFromScratch(ShardId(static_cast<uint32_t>(k)), without);
      if (m.ok()) {
        trained[i] = std::move(m).value();
      } else {
        statuses[i] = m.status();
      }
    }
  };
  const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    RETURN_IF_ERROR(statuses[i]);
    models[keys[i]] = std::move(trained[i]);
  }
  return models;
}

// The from-scratch oracle: a seeded sample of each run's answers, and the
// final state's answers, against the plurality of from-scratch models.
Status CheckFromScratch(const std::string& template_dir,
                        const std::string& work_dir,
                        const std::vector<float>& test_inputs, std::size_t dim,
                        const ReplayConfig& config, const Chains& chains,
                        int classes, bool probabilities,
                        std::vector<PolicyRun>& runs) {
  struct Probe {
    PolicyRun* run;
    uint64_t test_index;
    const engine::Prediction* p;
    std::size_t prefix;
    bool final_state;
  };
  std::vector<Probe> probes;
  Votes votes;
  auto need = [&](const Probe& probe) {
    probes.push_back(probe);
    for (std::size_t k = 0; k < chains.size(); ++k) {
      votes[{k, VersionAt(chains, k, probe.prefix)}][probe.test_index].vote =
          -1;
    }
  };
  for (PolicyRun& run : runs) {
    std::vector<const Outcome*> answered;
    for (const Outcome& o : run.outcomes) {
      if (o.prediction &&
          o.prediction->decision != certify::Decision::kRejected) {
        answered.push_back(&o);
      }
    }
    if (answered.size() > config.oracle_from_scratch_sample) {
      Rng(config.oracle_seed).Shuffle(answered.begin(), answered.end());
      answered.resize(config.oracle_from_scratch_sample);
    }
    for (const Outcome* o : answered) {
      const std::size_t prefix =
          RegisteredAt(run, o->prediction->deletion_watermark);
      need({&run, o->test_index, &*o->prediction, prefix, false});
    }
    for (const auto& [index, p] : run.final_answers) {
      need({&run, index, &p, run.seqs.size(), true});
    }
  }
  if (probes.empty()) return OkStatus();
  ASSIGN_OR_RETURN(ScratchStore copy, ScratchStore::Copy(template_dir, work_dir,
                                                         "oracle-scratch"));
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                   storage::Store::Open({copy.location(), false}));
  ASSIGN_OR_RETURN(std::unique_ptr<unlearning::Sisa> sisa,
                   unlearning::Sisa::Open(store.get(), 1));
  ASSIGN_OR_RETURN(auto models, TrainFromScratch(*sisa, chains, votes));
  RETURN_IF_ERROR(ComputeVotes(
      [&](const auto& key) -> const unlearning::Model& {
        return *models.at(key);
      },
      test_inputs, dim, probabilities, &votes));
  std::vector<int32_t> shard_votes(chains.size());
  std::vector<float> probs;
  for (const Probe& probe : probes) {
    Gather(votes, chains, probe.prefix, probe.test_index, &shard_votes, &probs);
    const int oracle =
        certify::PluralityVote(shard_votes.data(), chains.size(), classes);
    PolicyReport& r = probe.run->report;
    const certify::Decision d = probe.p->decision;
    if (probe.final_state) {
      // Nothing is pending after the drain: every answer is clean and is
      // the from-scratch ensemble's.
      ++r.final_state_checked;
      if (d != certify::Decision::kClean || probe.p->label != oracle) {
        ++r.final_state_violations;
      }
      continue;
    }
    ++r.oracle_from_scratch_checked;
    if (!Keeps(*probe.p, r.spec.rule, shard_votes, probs, classes)) {
      ++r.oracle_from_scratch_violations;
    }
  }
  return OkStatus();
}

void Compare(const std::vector<Check>& checks, const Chains& chains,
             const Votes& votes, int classes, std::vector<PolicyRun>& runs) {
  std::map<PolicyRun*, uint64_t> agreeing;
  std::vector<int32_t> shard_votes(chains.size());
  std::vector<float> probs;
  for (const Check& c : checks) {
    Gather(votes, chains, c.prefix, c.outcome->test_index, &shard_votes,
           &probs);
    const int oracle =
        certify::PluralityVote(shard_votes.data(), chains.size(), classes);
    PolicyReport& report = c.run->report;
    ++report.oracle_checked;
    const engine::Prediction& p = *c.outcome->prediction;
    if (p.label == oracle) ++agreeing[c.run];
    if (!Keeps(p, report.spec.rule, shard_votes, probs, classes)) {
      ++report.soundness_violations;
    }
  }
  for (PolicyRun& run : runs) {
    if (run.report.oracle_checked > 0) {
      run.report.oracle_agreement =
          static_cast<double>(agreeing[&run]) / run.report.oracle_checked;
    }
  }
}

}  // namespace

Status CheckAgainstOracle(const std::string& template_dir,
                          const std::string& work_dir,
                          const std::vector<float>& test_inputs,
                          const datasets::Split& test,
                          const ReplayConfig& config,
                          std::vector<PolicyRun>& runs) {
  if (runs.empty()) return OkStatus();
  const std::vector<storage::DeletionTarget>& targets = runs.front().targets;
  for (const PolicyRun& run : runs) {
    if (run.targets != targets) {
      return InternalError(
          "policies received different deletions; the oracle needs the same "
          "sequence for all");
    }
  }
  ASSIGN_OR_RETURN(ScratchStore copy,
                   ScratchStore::Copy(template_dir, work_dir, "oracle"));
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                   storage::Store::Open({copy.location(), false}));
  const int threads =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(std::unique_ptr<unlearning::Sisa> sisa,
                   unlearning::Sisa::Open(store.get(), threads));
  ASSIGN_OR_RETURN(Chains chains,
                   BuildChains(*store, sisa->options().shards, targets, test));
  ASSIGN_OR_RETURN(Versions versions, TrainChains(*sisa, *store, chains));
  Votes votes;
  const std::vector<Check> checks = CollectChecks(runs, chains, &votes);
  const bool probabilities =
      std::any_of(runs.begin(), runs.end(), [](const PolicyRun& run) {
        return run.report.spec.rule == scheduler::UncertifiedRule::kSoft;
      });
  RETURN_IF_ERROR(ComputeVotes(
      [&](const auto& key) -> const unlearning::Model& {
        return *versions[key.first][key.second];
      },
      test_inputs, test.feature_count(), probabilities, &votes));
  const int classes = static_cast<int>(sisa->options().model.classes);
  Compare(checks, chains, votes, classes, runs);
  return CheckFromScratch(template_dir, work_dir, test_inputs,
                          test.feature_count(), config, chains, classes,
                          probabilities, runs);
}

}  // namespace eraser::workloads::internal
