// TorchScript modules as constituent models: loaded from the file's bytes
// (kept in the ModelSpec and in the data directory), trained with the same
// SGD loop as the built-in models, checkpointed as their parameters and
// buffers. With network.cc and torch_util.cc, one of the three files of the
// module that include Torch.
//
// Determinism (DESIGN guarantee 1) with dropout and normalisation layers:
//  - Graph optimisation is off (UnoptimizedScriptsHere) on every thread
//    that runs a module, so a module computes the same way on its first
//    call and its thousandth, on any thread. LibTorch keeps the setting per
//    thread: set once, on the thread that first loaded a module, it left
//    the engine's inference workers and the training arena's threads with
//    the profiling executor, which after a few training runs swaps in a
//    differentiable graph. That graph records autograd state even under
//    InferenceMode, so serving a module trained on such a thread failed
//    ("Inference tensors cannot be saved for backward"), and its fused
//    kernels could round differently from the unoptimised graph.
//  - Guards: prediction runs under InferenceMode (PredictFromLogits: no
//    autograd state, inputs wrapped without copies); training runs with
//    grad mode on a module loaded for it alone (parameters, buffers and the
//    optimizer's state are created outside InferenceMode, so no inference
//    tensor reaches autograd); a checkpoint is copied into parameters under
//    NoGradGuard (LoadTensors); the module check at train time runs under
//    NoGradGuard.
//  - Batch norm statistics are buffers, checkpointed with the parameters.
//  - Dropout draws from LibTorch's process-wide CPU generator, which a
//    module's forward cannot be handed. At load, every graph the module can
//    run has its dropout (aten::dropout, feature_dropout and their in-place
//    forms) replaced by eraser's own operator, which computes the same
//    thing with the generator of the training stage running on the thread
//    (StageRandomness, seeded with the stage's (shard, stage) seed). Such
//    modules train any number of stages at once. A module with any other
//    operation that may draw from the global generator (torch.randn_like,
//    alpha dropout, a GRU with dropout: MayDrawFromGlobalGenerator) keeps
//    the old rule: each of its training stages holds one process-wide lock
//    and seeds the global generator first, and its dropout draws from that
//    generator too, so its shards train one at a time, exactly as before.
//    Inference runs in eval mode and draws nothing.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/library.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "eraser/datasets/dataset.h"
#include "eraser/unlearning/backbone.h"
#include "network.h"
#include "torch_util.h"

namespace eraser::unlearning::internal {
namespace {

// Held by every training stage of a module that draws from the global
// generator (LoadedModule::global_randomness).
std::mutex& GeneratorMutex() {
  static std::mutex mu;
  return mu;
}

// The generator of the training stage running on this thread, or null
// outside one (then eraser's dropout draws from the global generator, as
// aten::dropout does).
thread_local at::Generator* t_stage_generator = nullptr;

// Gives the calling thread a generator seeded with `seed` for its lifetime,
// or none (eraser's dropout then draws from the global generator). Nests: a
// stage that runs another stage's task while it waits (oneTBB work
// stealing) gets its own generator back when that task ends.
class StageRandomness {
 public:
  explicit StageRandomness(std::optional<uint64_t> seed)
      : previous_(t_stage_generator) {
    if (seed.has_value()) generator_ = at::detail::createCPUGenerator(*seed);
    t_stage_generator = generator_.has_value() ? &*generator_ : nullptr;
  }
  ~StageRandomness() { t_stage_generator = previous_; }
  StageRandomness(const StageRandomness&) = delete;
  StageRandomness& operator=(const StageRandomness&) = delete;

 private:
  std::optional<at::Generator> generator_;
  at::Generator* const previous_;
};

// eraser::dropout and its kin: what ATen's CPU dropout computes
// (_dropout_impl in ATen/native/Dropout.cpp: the same mask, drawn by
// bernoulli_ in the same order, scaled the same way), with the stage's
// generator. Seeded alike, a stage draws the masks it drew from the global
// generator, so trained weights are unchanged by the rewrite.
at::Tensor DropoutNoise(const at::Tensor& input, bool feature, double p) {
  at::Tensor noise;
  if (feature) {
    TORCH_CHECK(input.dim() >= 2,
                "Feature dropout requires at least 2 dimensions in the input");
    std::vector<int64_t> sizes = {input.size(0), input.size(1)};
    sizes.resize(input.dim(), 1);
    noise = input.new_empty(sizes);
  } else {
    noise = at::empty_like(input, at::MemoryFormat::Contiguous);
  }
  c10::optional<at::Generator> generator;
  if (t_stage_generator != nullptr) generator = *t_stage_generator;
  noise.bernoulli_(1 - p, generator);
  noise.div_(1 - p);
  return noise;
}

// Checks p; true when the input passes unchanged.
bool DropsNothing(const at::Tensor& input, double p, bool train) {
  TORCH_CHECK(p >= 0 && p <= 1,
              "dropout probability has to be between 0 and 1, but got ", p);
  return p == 0 || !train || input.numel() == 0;
}

template <bool kFeature>
at::Tensor StageDropout(const at::Tensor& input, double p, bool train) {
  if (DropsNothing(input, p, train)) return input;
  if (p == 1) return input.mul(at::zeros({}, input.options()));
  return input.mul(DropoutNoise(input, kFeature, p));
}

template <bool kFeature>
at::Tensor& StageDropoutInPlace(at::Tensor& input, double p, bool train) {
  if (DropsNothing(input, p, train)) return input;
  if (p == 1) return input.mul_(at::zeros({}, input.options()));
  return input.mul_(DropoutNoise(input, kFeature, p));
}

// Registered without a dispatch key, so autograd differentiates through the
// operations they are made of, as for ATen's own dropout. The JIT does not
// know they are random: a pass such as common subexpression elimination
// could merge two of them on one input. None runs, because graph
// optimisation is off on every thread that runs a module
// (UnoptimizedScriptsHere); that setting is needed for this too.
TORCH_LIBRARY(eraser, m) {
  m.def("dropout(Tensor input, float p, bool train) -> Tensor",
        &StageDropout<false>);
  m.def("feature_dropout(Tensor input, float p, bool train) -> Tensor",
        &StageDropout<true>);
  m.def("dropout_(Tensor(a!) self, float p, bool train) -> Tensor(a!)",
        &StageDropoutInPlace<false>);
  m.def("feature_dropout_(Tensor(a!) self, float p, bool train) -> Tensor(a!)",
        &StageDropoutInPlace<true>);
}

// eraser's operator for an ATen dropout, or an empty symbol.
c10::Symbol StageDropoutFor(c10::Symbol kind) {
  for (const char* op :
       {"dropout", "feature_dropout", "dropout_", "feature_dropout_"}) {
    if (kind == c10::Symbol::aten(op)) {
      return c10::Symbol::fromQualString(std::string("eraser::") + op);
    }
  }
  return c10::Symbol();
}

// Whether an operation may draw from Torch's global generator: one tagged
// nondeterministic, one that takes a generator (rand*, bernoulli, normal,
// the in-place samplers, rrelu, ...), or one with a `train` or `dropout`
// argument (alpha dropout, native dropout, and the recurrent layers, whose
// CPU kernels call dropout between layers).
bool MayDrawFromGlobalGenerator(const torch::jit::Node* node) {
  if (node->isNondeterministic()) return true;
  const c10::FunctionSchema* schema = node->maybeSchema();
  if (schema == nullptr) return false;
  for (const c10::Argument& arg : schema->arguments()) {
    if (arg.name() == "train" || arg.name() == "dropout") return true;
    c10::TypePtr type = arg.type();
    if (auto optional = type->cast<c10::OptionalType>()) {
      type = optional->getElementType();
    }
    if (type->kind() == c10::TypeKind::GeneratorType) return true;
  }
  return false;
}

// The function or method a call node runs; nullptr for a node that calls
// nothing, or a call whose target is not known here (an interface method).
torch::jit::Function* Callee(const torch::jit::Node* node) {
  if (node->kind() == c10::prim::CallFunction) {
    auto type = node->input(0)->type()->cast<c10::FunctionType>();
    return type ? type->function() : nullptr;
  }
  if (node->kind() == c10::prim::CallMethod) {
    auto cls = node->input(0)->type()->cast<c10::ClassType>();
    return cls ? cls->findMethod(node->s(c10::attr::name)) : nullptr;
  }
  return nullptr;
}

bool IsCall(const torch::jit::Node* node) {
  return node->kind() == c10::prim::CallFunction ||
         node->kind() == c10::prim::CallMethod;
}

// Runs `scan` once over every graph `module` can run: its methods, its
// submodules', and the functions and methods they call, which `scan`
// queues in its second argument. Returns whether any scan returned true,
// or, when `opaque_counts`, whether a callee was not a graph (a builtin or
// native function: not ours to inspect).
using ScanBlock = bool (*)(torch::jit::Block*,
                           std::vector<torch::jit::Function*>*);
bool AnyGraph(const torch::jit::Module& module, ScanBlock scan,
              bool opaque_counts) {
  std::vector<torch::jit::Function*> pending;
  for (const torch::jit::Module& m : module.modules()) {
    for (torch::jit::Function* method : m.type()->methods()) {
      pending.push_back(method);
    }
  }
  std::set<torch::jit::Function*> seen;
  bool any = false;
  while (!pending.empty()) {
    torch::jit::Function* fn = pending.back();
    pending.pop_back();
    if (!seen.insert(fn).second) continue;
    torch::jit::GraphFunction* graph_fn = torch::jit::tryToGraphFunction(*fn);
    if (graph_fn == nullptr) {
      any |= opaque_counts;
      continue;
    }
    graph_fn->ensure_defined();  // the compiler may define it lazily
    any |= scan(graph_fn->graph()->block(), &pending);
  }
  return any;
}

// Replaces dropout in `block` (and the blocks nested in it) with eraser's,
// and queues the functions and methods it calls. Returns whether a random
// operation remains, or a call whose target is not known here (an interface
// method, a forked subgraph): either may draw from the global generator.
bool RewriteBlock(torch::jit::Block* block,
                  std::vector<torch::jit::Function*>* calls) {
  bool global = false;
  for (auto it = block->nodes().begin(); it != block->nodes().end();) {
    torch::jit::Node* node = *it++;
    for (torch::jit::Block* nested : node->blocks()) {
      global |= RewriteBlock(nested, calls);
    }
    if (node->hasAttribute(c10::attr::Subgraph)) global = true;
    if (IsCall(node)) {
      if (torch::jit::Function* fn = Callee(node)) {
        calls->push_back(fn);
      } else {
        global = true;
      }
      continue;
    }
    const c10::Symbol replacement = StageDropoutFor(node->kind());
    if (replacement == c10::Symbol()) {
      global |= node->kind().is_aten() && MayDrawFromGlobalGenerator(node);
      continue;
    }
    torch::jit::Graph* graph = node->owningGraph();
    torch::jit::Node* stage = graph->create(replacement, node->inputs(), 1);
    stage->copyMetadata(node);
    stage->output()->setType(node->output()->type());
    stage->insertBefore(node);
    node->output()->replaceAllUsesWith(stage->output());
    node->destroy();
  }
  return global;
}

// Rewrites every graph `module` can run (its methods and its submodules',
// and the functions they call, such as torch.nn.functional.dropout) so that
// dropout draws from the stage's generator. Returns whether anything may
// still draw from the global generator. Runs before the module's first
// call: an executor, once built, keeps the graph it was built from.
bool UseStageRandomness(const torch::jit::Module& module) {
  return AnyGraph(module, RewriteBlock, /*opaque_counts=*/true);
}

// Whether `block` (or a block nested in it) forks a task (torch.jit.fork);
// queues the functions and methods it calls.
bool ForksIn(torch::jit::Block* block,
             std::vector<torch::jit::Function*>* calls) {
  bool forks = false;
  for (torch::jit::Node* node : block->nodes()) {
    forks |=
        std::string(node->kind().toQualString()).rfind("prim::fork", 0) == 0;
    for (torch::jit::Block* nested : node->blocks()) {
      forks |= ForksIn(nested, calls);
    }
    if (torch::jit::Function* fn = Callee(node)) calls->push_back(fn);
  }
  return forks;
}

// Whether a graph `module` can run forks a task.
bool Forks(const torch::jit::Module& module) {
  return AnyGraph(module, ForksIn, /*opaque_counts=*/false);
}

// The informative line of a TorchScript exception: the interpreter's
// message ends with the Python-style "RuntimeError: ..." line.
std::string Reason(const std::exception& e) {
  std::istringstream lines(e.what());
  std::string line, reason;
  while (std::getline(lines, line)) {
    if (line.empty() || line.rfind("frame #", 0) == 0 ||
        line.rfind("Exception raised from", 0) == 0) {
      continue;
    }
    reason = line;
  }
  for (const char* prefix : {"RuntimeError: ", "Error: "}) {
    const std::size_t at = reason.find(prefix);
    if (at != std::string::npos) {
      reason = reason.substr(at + std::strlen(prefix));
    }
  }
  return reason;
}

// "[2, 10]".
std::string ShapeOf(const torch::Tensor& t) {
  std::string shape;
  for (int64_t d : t.sizes()) {
    shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  }
  return "[" + shape + "]";
}

// What the checks feed a module: a ramp of distinct values in (0, 1], the
// range of pixel values (eraser scales bytes by 1/255), so that no feature
// is zero and rows differ.
constexpr char kCheckInput[] = "a ramp of values in (0, 1]";
torch::Tensor CheckInput(int64_t numel) {
  return torch::linspace(0, 1, numel + 1).slice(0, 1);
}

std::vector<int64_t> InputSizes(const ModelSpec& spec) {
  return std::vector<int64_t>(spec.input_shape.begin(), spec.input_shape.end());
}

struct LoadedModule {
  torch::jit::Module module;
  // Whether training may draw from the global generator (UseStageRandomness).
  bool global_randomness = true;
};

// A module from a file's bytes, in eval mode, its dropout drawing from the
// stage's generator.
StatusOr<LoadedModule> LoadModuleBytes(
    const std::shared_ptr<const std::string>& bytes, const std::string& name) {
  UnoptimizedScriptsHere();
  if (bytes == nullptr || bytes->empty()) {
    return InvalidArgumentError("model " + name + ": no TorchScript module");
  }
  try {
    std::istringstream in(*bytes);
    LoadedModule loaded{torch::jit::load(in)};
    loaded.global_randomness = UseStageRandomness(loaded.module);
    loaded.module.eval();
    return loaded;
  } catch (const std::exception& e) {
    return InvalidArgumentError(name +
                                " is not a TorchScript module saved with "
                                "torch.jit.script(...).save() (" +
                                Reason(e) + ")");
  }
}

StatusOr<LoadedModule> LoadModule(const ModelSpec& spec) {
  return LoadModuleBytes(spec.script, spec.script_name);
}

// A frozen backbone: eval mode, forward under InferenceMode, never trained.
class ScriptBackbone final : public Backbone {
 public:
  ScriptBackbone(const BackboneSpec& spec, torch::jit::Module module)
      : spec_(spec), module_(std::move(module)) {}

  const BackboneSpec& spec() const override { return spec_; }

  Status Embed(const float* inputs, std::size_t n,
               float* embeddings) const override {
    if (n == 0) return OkStatus();
    UseOneComputeThreadHere();
    UnoptimizedScriptsHere();
    try {
      c10::InferenceMode guard;
      std::vector<int64_t> sizes = {static_cast<int64_t>(n)};
      for (uint32_t d : spec_.input_shape) sizes.push_back(d);
      torch::Tensor x = torch::from_blob(const_cast<float*>(inputs), sizes);
      // forward() is not const in the API; in eval mode it changes nothing
      // (checked at train) and may run from several threads at once.
      auto& module = const_cast<torch::jit::Module&>(module_);
      torch::Tensor e =
          module.forward({x}).toTensor().to(torch::kFloat32).contiguous();
      if (e.dim() != 2 || e.size(0) != static_cast<int64_t>(n) ||
          e.size(1) != static_cast<int64_t>(spec_.embedding_size)) {
        return InternalError("the backbone returned a tensor of another shape");
      }
      std::memcpy(embeddings, e.data_ptr<float>(),
                  n * spec_.embedding_size * sizeof(float));
    } catch (const std::exception& e) {
      return InternalError("the backbone failed: " + Reason(e));
    }
    return OkStatus();
  }

 private:
  const BackboneSpec spec_;
  torch::jit::Module module_;
};

class ScriptModel final : public TrainableModel {
 public:
  ScriptModel(const ModelSpec& spec, LoadedModule loaded)
      : spec_(spec),
        module_(std::move(loaded.module)),
        global_randomness_(loaded.global_randomness) {}

  const ModelSpec& spec() const override { return spec_; }

  Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                 float* probs) const override {
    return PredictFromLogits(
        spec_, [this](const float* x, int64_t m) { return Logits(x, m); },
        inputs, n, votes, probs);
  }

  torch::Tensor Logits(const float* inputs, int64_t n) const {
    std::vector<int64_t> sizes = {n};
    const std::vector<int64_t> shape = InputSizes(spec_);
    sizes.insert(sizes.end(), shape.begin(), shape.end());
    torch::Tensor x = torch::from_blob(const_cast<float*>(inputs), sizes);
    UnoptimizedScriptsHere();
    // forward() is not const in the API, but in eval mode it changes
    // nothing and may run from several threads at once.
    auto& module = const_cast<torch::jit::Module&>(module_);
    torch::Tensor logits = module.forward({x}).toTensor();
    if (logits.dim() != 2 || logits.size(0) != n ||
        logits.size(1) != static_cast<int64_t>(spec_.classes)) {
      throw std::runtime_error("forward returned a tensor of another shape");
    }
    return logits.to(torch::kFloat32).contiguous();
  }

  NamedTensors Tensors() const {
    NamedTensors out;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
      out.emplace_back("p:" + p.name, p.value);
    }
    for (const auto& b : module_.named_buffers(/*recurse=*/true)) {
      out.emplace_back("b:" + b.name, b.value);
    }
    return out;
  }

  std::string Serialize() const override {
    return SerializeTensors(spec_, Tensors());
  }

  Status Train(const TrainingData& data, std::size_t rows, uint32_t epochs,
               const SgdOptions& sgd, uint64_t order_seed) override {
    UseOneComputeThreadHere();
    UnoptimizedScriptsHere();
    std::vector<torch::Tensor> params;
    for (const torch::Tensor& p : module_.parameters(/*recurse=*/true)) {
      if (p.requires_grad()) params.push_back(p);
    }
    std::unique_lock<std::mutex> lock;
    if (global_randomness_) {
      lock = std::unique_lock<std::mutex>(GeneratorMutex());
    }
    try {
      // A module that draws from the global generator draws its dropout
      // masks from it too, in one stream with its other random operations,
      // as before eraser had its own dropout.
      if (global_randomness_) torch::manual_seed(order_seed);
      StageRandomness randomness(global_randomness_
                                     ? std::nullopt
                                     : std::optional<uint64_t>(order_seed));
      module_.train(true);
      Status s = RunSgd(
          params,
          [this](const torch::Tensor& x) {
            return module_.forward({x}).toTensor();
          },
          data, rows, epochs, sgd, order_seed, InputSizes(spec_),
          /*skip_single_row_batch=*/true);
      module_.eval();
      return s;
    } catch (const std::exception& e) {
      module_.eval();
      return InternalError("training " + spec_.script_name +
                           " failed: " + Reason(e));
    }
  }

 private:
  const ModelSpec spec_;
  torch::jit::Module module_;
  const bool global_randomness_;
};

// The module maps a batch of 2 of the dataset's samples to logits [2,
// classes], in eval and in training mode.
Status CheckForward(torch::jit::Module& module, const ModelSpec& spec) {
  const std::string& name = spec.script_name;
  std::vector<int64_t> sizes = {2};
  std::string sample;
  for (uint32_t d : spec.input_shape) {
    sizes.push_back(d);
    sample += (sample.empty() ? "" : ", ") + std::to_string(d);
  }
  const std::string input = "[2, " + sample + "]";
  torch::NoGradGuard no_grad;
  for (bool training : {false, true}) {
    module.train(training);
    c10::IValue out;
    try {
      out = module.forward({torch::zeros(sizes)});
    } catch (const std::exception& e) {
      return InvalidArgumentError(name +
                                  ": forward fails on a float input of shape " +
                                  input + " (a batch of 2 of the dataset's [" +
                                  sample + "] samples): " + Reason(e));
    }
    if (!out.isTensor()) {
      return InvalidArgumentError(name + ": forward must return a tensor");
    }
    const torch::Tensor t = out.toTensor();
    if (t.dim() != 2 || t.size(0) != 2 ||
        t.size(1) != static_cast<int64_t>(spec.classes)) {
      return InvalidArgumentError(name + ": forward maps " + input + " to " +
                                  ShapeOf(t) + ", but the dataset has " +
                                  std::to_string(spec.classes) +
                                  " classes: it must return logits [2, " +
                                  std::to_string(spec.classes) + "]");
    }
    // Training takes a float32 cross-entropy of the logits.
    if (t.scalar_type() != torch::kFloat32 &&
        t.scalar_type() != torch::kFloat64) {
      return InvalidArgumentError(
          name + ": forward returns " +
          std::string(c10::toString(t.scalar_type())) +
          " values; it must return float32 (or float64) logits (call "
          ".float() on them)");
    }
  }
  return OkStatus();
}

// What eraser feeds a served module besides the batch of 2 above: one
// request alone (a light load, and the re-evaluation of a near tie,
// docs/unlearning.md) and rows batched with other requests. Refused: a
// module that fails alone or returns another shape for it, and one whose
// logits for a row depend on the other rows of its batch (statistics over
// the batch in eval mode), since an answer must not depend on the requests
// it was batched with. `batch` holds distinct rows; `batched` is the
// module's eval output for them.
Status CheckRowsIndependent(torch::jit::Module& module, const ModelSpec& spec,
                            const torch::Tensor& batch,
                            const torch::Tensor& batched) {
  const std::string& name = spec.script_name;
  const int64_t classes = static_cast<int64_t>(spec.classes);
  for (int64_t r = 0; r < batch.size(0); ++r) {
    const torch::Tensor row = batch.slice(0, r, r + 1).contiguous();
    torch::Tensor alone;
    try {
      alone = module.forward({row}).toTensor();
    } catch (const std::exception& e) {
      return InvalidArgumentError(name + ": forward fails on a batch of 1 " +
                                  ShapeOf(row) +
                                  " (one request alone): " + Reason(e));
    }
    if (alone.dim() != 2 || alone.size(0) != 1 || alone.size(1) != classes) {
      return InvalidArgumentError(
          name + ": forward maps a batch of 1 " + ShapeOf(row) + " to " +
          ShapeOf(alone) + "; it must return logits [1, " +
          std::to_string(classes) +
          "] (a squeeze() that drops the batch dimension?)");
    }
    const torch::Tensor in_batch = batched.slice(0, r, r + 1);
    // Batched and single-row products differ in the last bits (below 1e-6
    // here); a row that depends on the others differs by far more.
    if (!torch::allclose(alone.to(torch::kFloat64),
                         in_batch.to(torch::kFloat64), /*rtol=*/1e-4,
                         /*atol=*/1e-4)) {
      return InvalidArgumentError(
          name +
          ": forward gives a row other logits alone than in a batch "
          "of " +
          std::to_string(batch.size(0)) +
          " in eval mode (statistics over the batch, such as x - "
          "x.mean(0) or BatchNorm without running stats?), so an answer "
          "would depend on the requests batched with it");
    }
  }
  return OkStatus();
}

// The largest batch eraser runs at `train` (the test split is evaluated
// 1,000 rows at a time, EvaluateOnSplit): a module that fails on it would
// fail after the whole ensemble is trained.
constexpr int64_t kLargestTrainBatch = 1000;

// A module (or a backbone) mapping samples of `shape` to `width` values.
Status CheckLargeBatch(torch::jit::Module& module, const std::string& name,
                       const std::vector<uint32_t>& shape, int64_t width) {
  std::vector<int64_t> sizes = {kLargestTrainBatch};
  int64_t numel = kLargestTrainBatch;
  for (uint32_t d : shape) {
    sizes.push_back(d);
    numel *= d;
  }
  const torch::Tensor x = CheckInput(numel).reshape(sizes);
  torch::Tensor out;
  try {
    out = module.forward({x}).toTensor();
  } catch (const std::exception& e) {
    return InvalidArgumentError(
        name + ": forward fails on a batch of " +
        std::to_string(kLargestTrainBatch) + " " + ShapeOf(x) +
        " (train evaluates the test split in such batches): " + Reason(e));
  }
  if (out.dim() != 2 || out.size(0) != kLargestTrainBatch ||
      out.size(1) != width) {
    return InvalidArgumentError(name + ": forward maps a batch " + ShapeOf(x) +
                                " to " + ShapeOf(out));
  }
  return OkStatus();
}

// Exactness (DESIGN guarantee 1) needs a module that computes the same
// thing from the same state. Refused: an eval forward that differs between
// two calls on one input (sampling at inference, such as
// F.dropout(x, training=True)) or that changes a buffer (answers would
// depend on the requests before them), and a training that differs between
// two runs from the same weights and seed.
Status CheckDeterministic(const ModelSpec& spec) {
  const std::string& name = spec.script_name;
  std::vector<int64_t> sizes = {4};
  const std::vector<int64_t> shape = InputSizes(spec);
  sizes.insert(sizes.end(), shape.begin(), shape.end());
  const int64_t numel = 4 * static_cast<int64_t>(spec.input_size());
  const torch::Tensor x = CheckInput(numel).reshape(sizes);
  {
    ASSIGN_OR_RETURN(LoadedModule loaded, LoadModule(spec));
    torch::jit::Module& module = loaded.module;
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, torch::Tensor>> before;
    for (const auto& b : module.named_buffers(/*recurse=*/true)) {
      before.emplace_back(b.name, b.value.clone());
    }
    const torch::Tensor first = module.forward({x}).toTensor();
    const torch::Tensor second = module.forward({x}).toTensor();
    if (!torch::isfinite(first).all().item<bool>()) {
      return InvalidArgumentError(
          name +
          ": forward returns NaN or infinite logits in eval mode for "
          "finite inputs (" +
          kCheckInput + ")");
    }
    // A final softmax: eraser takes the outputs as logits, in training's
    // cross-entropy and in the probabilities it serves. (Rows of
    // probabilities sum to 1 within 1e-6; logits of the check's positive
    // ramp do not come within 1e-5 of it by chance.)
    const torch::Tensor sums = first.to(torch::kFloat64).sum(1);
    if (first.min().item<double>() >= 0 && first.max().item<double>() <= 1 &&
        (sums - 1).abs().max().item<double>() < 1e-5) {
      return InvalidArgumentError(
          name +
          ": forward returns probabilities in eval mode (every row in [0, "
          "1], summing to 1: a final softmax?), but eraser takes its "
          "outputs as logits, in training's cross-entropy and in the "
          "probabilities it serves: return the scores before the softmax "
          "(log_softmax is fine)");
    }
    if (!torch::equal(first, second)) {
      return InvalidArgumentError(
          name +
          ": forward gives different outputs for the same input in eval "
          "mode (random sampling at inference, such as "
          "F.dropout(x, training=True)?), so eraser could neither certify "
          "its answers nor retrain it exactly");
    }
    std::size_t i = 0;
    for (const auto& b : module.named_buffers(/*recurse=*/true)) {
      if (i >= before.size() || !torch::equal(b.value, before[i].second)) {
        return InvalidArgumentError(
            name + ": forward changes buffer '" + b.name +
            "' in eval mode, so an answer would depend on the requests "
            "served before it");
      }
      ++i;
    }
    RETURN_IF_ERROR(CheckRowsIndependent(module, spec, x, first));
    RETURN_IF_ERROR(CheckLargeBatch(module, name, spec.input_shape,
                                    static_cast<int64_t>(spec.classes)));
  }
  std::vector<float> features(x.data_ptr<float>(), x.data_ptr<float>() + numel);
  std::vector<int64_t> labels(4);
  for (int64_t r = 0; r < 4; ++r) labels[r] = r % spec.classes;
  const TrainingData data{spec.input_size(), features.data(), labels.data()};
  SgdOptions sgd;
  sgd.batch_size = 2;
  sgd.learning_rate = 0.01;
  std::string trained[2];
  for (std::string& blob : trained) {
    ASSIGN_OR_RETURN(LoadedModule loaded, LoadModule(spec));
    ScriptModel model(spec, std::move(loaded));
    // A module that cannot be trained is the user's to fix, not an
    // internal error.
    if (Status s = model.Train(data, 4, 2, sgd, /*order_seed=*/7); !s.ok()) {
      return InvalidArgumentError(
          name + ": a trial training (2 epochs of 4 rows, " + kCheckInput +
          ", learning rate 0.01) fails: " + std::string(s.message()));
    }
    blob = model.Serialize();
  }
  if (trained[0] != trained[1]) {
    return InvalidArgumentError(
        name +
        ": two trainings from the same weights, data and seed differ, so "
        "eraser cannot retrain it exactly (nondeterministic operations in "
        "forward?)");
  }
  return OkStatus();
}

}  // namespace

void UnoptimizedScriptsHere() { torch::jit::setGraphExecutorOptimize(false); }

StatusOr<uint32_t> CheckScriptBackbone(const BackboneSpec& spec) {
  const std::string& name = spec.script_name;
  ASSIGN_OR_RETURN(LoadedModule loaded, LoadModuleBytes(spec.script, name));
  torch::jit::Module& module = loaded.module;
  try {
    if (Forks(module)) {
      return InvalidArgumentError(
          name +
          ": forward forks a task (torch.jit.fork), which runs on another "
          "thread, outside the settings eraser gives the threads that embed "
          "(graph optimisation off, no autograd); call the function "
          "directly");
    }
    std::vector<int64_t> sizes = {2};
    int64_t numel = 2;
    for (uint32_t d : spec.input_shape) {
      sizes.push_back(d);
      numel *= d;
    }
    const std::string input = "[2, " + datasets::ShapeString(spec.input_shape) +
                              "] (a batch of 2 of the dataset's samples)";
    torch::NoGradGuard no_grad;
    const torch::Tensor x = CheckInput(numel).reshape(sizes);
    std::vector<torch::Tensor> buffers;
    for (const torch::Tensor& b : module.buffers(/*recurse=*/true)) {
      buffers.push_back(b.clone());
    }
    torch::Tensor first, second;
    try {
      first = module.forward({x}).toTensor();
      second = module.forward({x}).toTensor();
    } catch (const std::exception& e) {
      return InvalidArgumentError(name + ": forward fails on a float input " +
                                  input + ": " + Reason(e));
    }
    if (first.dim() != 2 || first.size(0) != 2 || first.size(1) < 1 ||
        !first.is_floating_point()) {
      return InvalidArgumentError(name + ": a backbone must map " + input +
                                  " to a float embedding [2, E]");
    }
    if (!torch::equal(first, second)) {
      return InvalidArgumentError(
          name +
          ": forward gives different outputs for the same input in eval "
          "mode, so embeddings would not be reproducible");
    }
    std::size_t i = 0;
    for (const torch::Tensor& b : module.buffers(/*recurse=*/true)) {
      if (!torch::equal(b, buffers[i++])) {
        return InvalidArgumentError(
            name +
            ": forward changes a buffer in eval mode, so embeddings "
            "would depend on the samples embedded before");
      }
    }
    // Each sample alone as in the batch: samples are embedded in batches
    // at ingest, and a request alone or with others when served.
    for (int64_t r = 0; r < 2; ++r) {
      const torch::Tensor row = x.slice(0, r, r + 1).contiguous();
      torch::Tensor alone;
      try {
        alone = module.forward({row}).toTensor();
      } catch (const std::exception& e) {
        return InvalidArgumentError(name + ": forward fails on a batch of 1 " +
                                    ShapeOf(row) + ": " + Reason(e));
      }
      if (alone.dim() != 2 || alone.size(0) != 1 ||
          alone.size(1) != first.size(1) ||
          !torch::allclose(alone.to(torch::kFloat64),
                           first.slice(0, r, r + 1).to(torch::kFloat64),
                           /*rtol=*/1e-4, /*atol=*/1e-4)) {
        return InvalidArgumentError(
            name +
            ": forward gives a sample another embedding alone than in a "
            "batch of 2 (statistics over the batch, such as h - "
            "h.mean(0)?), so an embedding would depend on the samples "
            "embedded or served with it");
      }
    }
    RETURN_IF_ERROR(
        CheckLargeBatch(module, name, spec.input_shape, first.size(1)));
    return static_cast<uint32_t>(first.size(1));
  } catch (const std::exception& e) {
    return InvalidArgumentError(name + ": " + Reason(e));
  }
}

StatusOr<std::shared_ptr<const Backbone>> LoadScriptBackbone(
    const BackboneSpec& spec) {
  ASSIGN_OR_RETURN(LoadedModule loaded,
                   LoadModuleBytes(spec.script, spec.script_name));
  return std::shared_ptr<const Backbone>(
      std::make_shared<ScriptBackbone>(spec, std::move(loaded.module)));
}

StatusOr<std::unique_ptr<TrainableModel>> CreateScriptModel(
    const ModelSpec& spec) {
  ASSIGN_OR_RETURN(LoadedModule loaded, LoadModule(spec));
  return std::unique_ptr<TrainableModel>(
      new ScriptModel(spec, std::move(loaded)));
}

StatusOr<std::unique_ptr<TrainableModel>> DeserializeScriptModel(
    const ModelSpec& spec, const std::string& blob) {
  StatusOr<LoadedModule> module = LoadModule(spec);
  if (!module.ok()) return DataLossError(module.status().message());
  auto model = std::make_unique<ScriptModel>(spec, std::move(module).value());
  try {
    RETURN_IF_ERROR(LoadTensors(spec, blob, model->Tensors()));
  } catch (const std::exception& e) {
    return DataLossError(std::string("cannot load model blob: ") + e.what());
  }
  return std::unique_ptr<TrainableModel>(std::move(model));
}

namespace {

// Whether `block` (or one nested in it) reads the module's `training` flag.
bool ReadsTraining(torch::jit::Block* block) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::GetAttr &&
        node->s(c10::attr::name) == "training") {
      return true;
    }
    for (torch::jit::Block* nested : node->blocks()) {
      if (ReadsTraining(nested)) return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> ScriptModuleWarnings(const ModelSpec& spec) {
  StatusOr<LoadedModule> loaded = LoadModule(spec);
  if (!loaded.ok()) return {};
  // A Dropout or BatchNorm layer (by its type, which torch.jit.trace keeps)
  // whose forward never reads `training`: tracing recorded the mode it ran
  // in as a constant, and a scripted layer reads the flag.
  for (const auto& m : loaded->module.named_modules()) {
    const auto type = m.value.type()->name();
    if (!type.has_value()) continue;
    const std::string qualified = type->qualifiedName();
    if (qualified.find("torch.nn.modules.dropout.") == std::string::npos &&
        qualified.find("torch.nn.modules.batchnorm.") == std::string::npos) {
      continue;
    }
    const auto forward = m.value.find_method("forward");
    if (!forward.has_value() || ReadsTraining(forward->graph()->block())) {
      continue;
    }
    return {spec.script_name + ": its " + type->name() +
            (m.name.empty() ? "" : " '" + m.name + "'") +
            " computes the same in training as in eval mode (its forward "
            "never reads the training flag: a module saved with "
            "torch.jit.trace), so eraser trains it as it was traced, exactly "
            "(traced in eval mode: no dropout, batch norm by its saved "
            "running statistics). Save it with torch.jit.script to train "
            "those layers."};
  }
  return {};
}

bool ScriptTrainsInParallel(const ModelSpec& spec) {
  StatusOr<LoadedModule> loaded = LoadModule(spec);
  return loaded.ok() && !loaded->global_randomness;
}

Status CheckScriptModule(const ModelSpec& spec) {
  ASSIGN_OR_RETURN(LoadedModule loaded, LoadModule(spec));
  torch::jit::Module& module = loaded.module;
  const std::string& name = spec.script_name;
  try {
    std::size_t trainable = 0;
    for (const torch::Tensor& p : module.parameters(/*recurse=*/true)) {
      trainable += p.requires_grad() ? 1 : 0;
      if (p.scalar_type() != torch::kFloat32) {
        return InvalidArgumentError(name +
                                    ": parameters must be float32 (call "
                                    ".float() before scripting)");
      }
    }
    for (const torch::Tensor& b : module.buffers(/*recurse=*/true)) {
      if (b.scalar_type() != torch::kFloat32 &&
          b.scalar_type() != torch::kFloat64 &&
          b.scalar_type() != torch::kInt64) {
        return InvalidArgumentError(name +
                                    ": buffers must be float32, float64 or "
                                    "int64");
      }
    }
    if (trainable == 0) {
      return InvalidArgumentError(name +
                                  ": the module has no trainable "
                                  "parameters");
    }
    if (Forks(module)) {
      return InvalidArgumentError(
          name +
          ": forward forks a task (torch.jit.fork), which runs on another "
          "thread, where eraser can neither keep training deterministic "
          "(its random draws interleave with the caller's) nor keep "
          "inference apart from training; call the function directly");
    }
    RETURN_IF_ERROR(CheckForward(module, spec));
    RETURN_IF_ERROR(CheckDeterministic(spec));
  } catch (const std::exception& e) {
    return InvalidArgumentError(name + ": " + Reason(e));
  }
  return OkStatus();
}

}  // namespace eraser::unlearning::internal
