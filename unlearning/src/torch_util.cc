// Votes, the checkpoint blob format and the SGD loop, shared by every model
// implementation. Every Torch exception is turned into a Status here or in
// the callers of these functions.
#include "torch_util.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "eraser/common/random.h"

namespace eraser::unlearning::internal {
namespace {

constexpr char kBlobMagic[4] = {'E', 'R', 'S', 'M'};
constexpr uint32_t kBlobFormat = 2;

// A model's vote on an input is, by definition, the argmax of its logits
// on that input evaluated alone (a batch of one). BLAS kernels differ with
// the batch shape, so logits computed in a batch can differ from those in
// the last bits (measured below 1e-6 here); a row whose top two logits are
// closer than kTieMargin is therefore re-evaluated alone. Votes are then
// the same whatever the batch or the path (model by model or stacked).
constexpr float kTieMargin = 1e-3f;

// Stored dtype codes; part of the blob format.
enum class DTypeCode : uint32_t { kFloat32 = 1, kFloat64 = 2, kInt64 = 3 };

bool CodeOf(const torch::Tensor& t, DTypeCode* code) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      *code = DTypeCode::kFloat32;
      return true;
    case torch::kFloat64:
      *code = DTypeCode::kFloat64;
      return true;
    case torch::kInt64:
      *code = DTypeCode::kInt64;
      return true;
    default:
      return false;
  }
}

void PutU32(std::string* out, uint32_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
void PutU64(std::string* out, uint64_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

class BlobReader {
 public:
  explicit BlobReader(const std::string& blob) : blob_(blob) {}
  template <typename T>
  bool Read(T* out) {
    if (blob_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(out, blob_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool ReadString(std::string* out) {
    uint32_t n = 0;
    if (!Read(&n) || blob_.size() - pos_ < n) return false;
    out->assign(blob_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  const char* Take(std::size_t n) {
    if (blob_.size() - pos_ < n) return nullptr;
    const char* p = blob_.data() + pos_;
    pos_ += n;
    return p;
  }
  bool AtEnd() const { return pos_ == blob_.size(); }

 private:
  const std::string& blob_;
  std::size_t pos_ = 0;
};

}  // namespace

int32_t Argmax(const float* logits, std::size_t c, bool* clear) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < c; ++j) {
    if (logits[j] > logits[best]) best = j;
  }
  float gap = INFINITY;
  for (std::size_t j = 0; j < c; ++j) {
    if (j != best) gap = std::min(gap, logits[best] - logits[j]);
  }
  *clear = gap >= kTieMargin;
  return static_cast<int32_t>(best);
}

void Softmax(const torch::Tensor& logits, std::size_t n, std::size_t c,
             float* probs) {
  torch::Tensor p = torch::softmax(logits, 1).contiguous();
  std::memcpy(probs, p.data_ptr<float>(), n * c * sizeof(float));
}

Status PredictFromLogits(const ModelSpec& spec, const LogitsFn& logits_fn,
                         const float* inputs, std::size_t n, int32_t* votes,
                         float* probs) {
  if (n == 0) return OkStatus();
  UseOneComputeThreadHere();
  try {
    c10::InferenceMode guard;
    const std::size_t c = spec.classes;
    const std::size_t d = spec.input_size();
    torch::Tensor logits = logits_fn(inputs, static_cast<int64_t>(n));
    const float* l = logits.data_ptr<float>();
    for (std::size_t i = 0; i < n; ++i) {
      bool clear = true;
      votes[i] = Argmax(l + i * c, c, &clear);
      if (!clear && n > 1) {
        torch::Tensor alone = logits_fn(inputs + i * d, 1);
        votes[i] = Argmax(alone.data_ptr<float>(), c, &clear);
      }
    }
    if (probs != nullptr) Softmax(logits, n, c, probs);
  } catch (const std::exception& e) {
    return InternalError(std::string("model prediction failed: ") + e.what());
  }
  return OkStatus();
}

std::string SerializeTensors(const ModelSpec& spec,
                             const NamedTensors& tensors) {
  std::string out(kBlobMagic, sizeof(kBlobMagic));
  PutU32(&out, kBlobFormat);
  const std::string name = spec.ToString();
  PutU32(&out, static_cast<uint32_t>(name.size()));
  out += name;
  PutU32(&out, static_cast<uint32_t>(tensors.size()));
  for (const auto& [tensor_name, tensor] : tensors) {
    torch::Tensor t = tensor.detach().contiguous();
    DTypeCode code = DTypeCode::kFloat32;
    if (!CodeOf(t, &code)) {
      // Checked at CheckModelSpec; a module cannot change its dtypes later.
      code = DTypeCode::kFloat32;
      t = t.to(torch::kFloat32);
    }
    PutU32(&out, static_cast<uint32_t>(tensor_name.size()));
    out += tensor_name;
    PutU32(&out, static_cast<uint32_t>(code));
    PutU64(&out, static_cast<uint64_t>(t.numel()));
    out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  return out;
}

Status LoadTensors(const ModelSpec& spec, const std::string& blob,
                   const NamedTensors& targets) {
  BlobReader in(blob);
  uint32_t magic = 0, format = 0, count = 0;
  std::string name;
  if (!in.Read(&magic) || std::memcmp(&magic, kBlobMagic, 4) != 0 ||
      !in.Read(&format)) {
    return DataLossError("not a model blob");
  }
  if (format != kBlobFormat || !in.ReadString(&name)) {
    return DataLossError("model blob of another format");
  }
  if (name != spec.ToString()) {
    return DataLossError("model blob was written for " + name + ", not " +
                         spec.ToString());
  }
  if (!in.Read(&count) || count != targets.size()) {
    return DataLossError("model blob has the wrong number of tensors");
  }
  torch::NoGradGuard no_grad;
  for (const auto& [target_name, target] : targets) {
    std::string tensor_name;
    uint32_t code = 0;
    uint64_t numel = 0;
    DTypeCode want = DTypeCode::kFloat32;
    if (!in.ReadString(&tensor_name) || tensor_name != target_name ||
        !in.Read(&code) || !CodeOf(target, &want) ||
        code != static_cast<uint32_t>(want) || !in.Read(&numel) ||
        numel != static_cast<uint64_t>(target.numel())) {
      return DataLossError("model blob does not match " + spec.ToString() +
                           " at tensor " + target_name);
    }
    const std::size_t bytes = target.nbytes();
    const char* data = in.Take(bytes);
    if (data == nullptr) return DataLossError("truncated model blob");
    torch::Tensor source =
        torch::empty(target.sizes(), target.options().requires_grad(false));
    std::memcpy(source.data_ptr(), data, bytes);
    torch::Tensor t = target;
    t.copy_(source);
  }
  if (!in.AtEnd()) return DataLossError("model blob has trailing bytes");
  return OkStatus();
}

namespace {

bool AllFinite(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : params) {
    if (!torch::isfinite(p).all().item<bool>()) return false;
  }
  return true;
}

}  // namespace

Status RunSgd(const std::vector<torch::Tensor>& params,
              const std::function<torch::Tensor(const torch::Tensor&)>& forward,
              const TrainingData& data, std::size_t rows, uint32_t epochs,
              const SgdOptions& sgd, uint64_t order_seed,
              const std::vector<int64_t>& input_sizes,
              bool skip_single_row_batch) {
  // No gradient survives from an earlier stage: a stage trained after a
  // checkpoint load and one trained in the same process start alike.
  for (const torch::Tensor& p : params) {
    torch::Tensor t = p;
    t.mutable_grad() = torch::Tensor();
  }
  torch::optim::SGD optimizer(
      params,
      torch::optim::SGDOptions(sgd.learning_rate).momentum(sgd.momentum));
  const std::size_t dim = data.dim;
  std::vector<uint32_t> order(rows);
  std::iota(order.begin(), order.end(), 0u);
  std::vector<float> xb(static_cast<std::size_t>(sgd.batch_size) * dim);
  std::vector<int64_t> yb(sgd.batch_size);
  uint64_t steps = 0;
  for (uint32_t epoch = 0; epoch < epochs; ++epoch) {
    Rng(DeriveSeed(order_seed, {epoch})).Shuffle(order.begin(), order.end());
    for (std::size_t start = 0; start < order.size(); start += sgd.batch_size) {
      const std::size_t m =
          std::min<std::size_t>(sgd.batch_size, order.size() - start);
      if (m == 1 && skip_single_row_batch && order.size() > 1) continue;
      if (sgd.pause) RETURN_IF_ERROR(sgd.pause());
      for (std::size_t i = 0; i < m; ++i) {
        const uint32_t row = order[start + i];
        std::memcpy(&xb[i * dim], data.features + row * dim,
                    dim * sizeof(float));
        yb[i] = data.labels[row];
      }
      std::vector<int64_t> sizes = {static_cast<int64_t>(m)};
      sizes.insert(sizes.end(), input_sizes.begin(), input_sizes.end());
      torch::Tensor x = torch::from_blob(xb.data(), sizes);
      torch::Tensor y =
          torch::from_blob(yb.data(), {static_cast<int64_t>(m)},
                           torch::TensorOptions().dtype(torch::kInt64));
      optimizer.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(forward(x), y);
      // A loss that is not finite would make every parameter NaN: a model
      // that answers one class whatever the input. An error, not a
      // checkpoint, with its likelier cause: the forward itself when it is
      // the first of a stage (whose parameters are finite: an earlier
      // stage may still have grown them too large).
      if (!torch::isfinite(loss).item<bool>()) {
        return InvalidArgumentError(
            steps == 0 && AllFinite(params)
                ? std::string(
                      "forward returns NaN or infinite logits for training "
                      "samples at the start of a stage (an operation "
                      "undefined on them, such as sqrt or log of a "
                      "negative value, or parameters an earlier stage grew "
                      "too large?)")
                : "training diverged: the loss became NaN or infinite "
                  "after " +
                      std::to_string(steps) + " step" +
                      (steps == 1 ? "" : "s") +
                      " of this stage (a learning rate too high for this "
                      "model and data, logits that overflow, or an "
                      "operation undefined on some training samples?)");
      }
      loss.backward();
      optimizer.step();
      ++steps;
    }
    if (!AllFinite(params)) {
      return InvalidArgumentError(
          "training diverged: parameters became NaN or infinite in epoch " +
          std::to_string(epoch + 1) + " of " + std::to_string(epochs) +
          " (a learning rate too high for this model and data, or logits "
          "that overflow?)");
    }
  }
  for (const torch::Tensor& p : params) {
    torch::Tensor t = p;
    t.mutable_grad() = torch::Tensor();
  }
  return OkStatus();
}

}  // namespace eraser::unlearning::internal
