// The LibTorch models. This is the only file of the module that includes
// Torch; every Torch exception is turned into a Status here.
#include "network.h"

#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "eraser/common/random.h"

namespace eraser::unlearning::internal {
namespace {

constexpr char kBlobMagic[4] = {'E', 'R', 'S', 'M'};
constexpr uint32_t kBlobFormat = 1;

class NetImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

class Mlp final : public NetImpl {
 public:
  explicit Mlp(const ModelSpec& spec)
      : fc1_(register_module(
            "fc1", torch::nn::Linear(static_cast<int64_t>(spec.input_size()),
                                     spec.hidden))),
        fc2_(register_module("fc2",
                             torch::nn::Linear(spec.hidden, spec.classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    return fc2_(torch::relu(fc1_(x)));
  }
  const torch::nn::Linear& fc1() const { return fc1_; }
  const torch::nn::Linear& fc2() const { return fc2_; }

 private:
  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
};

class Cnn final : public NetImpl {
 public:
  explicit Cnn(const ModelSpec& spec)
      : rows_(spec.rows),
        cols_(spec.cols),
        conv1_(register_module("conv1", torch::nn::Conv2d(1, 8, 5))),
        conv2_(register_module("conv2", torch::nn::Conv2d(8, 16, 5))),
        fc_(register_module(
            "fc", torch::nn::Linear(16 * (((spec.rows - 4) / 2 - 4) / 2) *
                                        (((spec.cols - 4) / 2 - 4) / 2),
                                    spec.classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    x = x.view({-1, 1, rows_, cols_});
    x = torch::max_pool2d(torch::relu(conv1_(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2_(x)), 2);
    return fc_(x.flatten(1));
  }

 private:
  int64_t rows_;
  int64_t cols_;
  torch::nn::Conv2d conv1_;
  torch::nn::Conv2d conv2_;
  torch::nn::Linear fc_;
};

std::shared_ptr<NetImpl> NewNet(const ModelSpec& spec) {
  if (spec.arch == Architecture::kCnn) return std::make_shared<Cnn>(spec);
  return std::make_shared<Mlp>(spec);
}

void PutU32(std::string* out, uint32_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// The blob header records the hidden width only where it shapes the model.
uint32_t HiddenField(const ModelSpec& spec) {
  return spec.arch == Architecture::kMlp ? spec.hidden : 0;
}

// A model's vote on an input is, by definition, the argmax of its logits
// on that input evaluated alone (a batch of one). BLAS kernels differ with
// the batch shape, so logits computed in a batch can differ from those in
// the last bits (measured below 1e-6 here); a row whose top two logits are
// closer than kTieMargin is therefore re-evaluated alone. Votes are then
// the same whatever the batch or the path (model by model or stacked).
constexpr float kTieMargin = 1e-3f;

// The argmax of a row (ties to the smallest label); *clear is false when
// the runner-up is within kTieMargin.
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

class TorchModel final : public TrainableModel {
 public:
  TorchModel(const ModelSpec& spec, std::shared_ptr<NetImpl> net)
      : spec_(spec), net_(std::move(net)) {
    net_->eval();
  }

  const ModelSpec& spec() const override { return spec_; }
  const NetImpl* net() const { return net_.get(); }

  Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                 float* probs) const override {
    if (n == 0) return OkStatus();
    UseOneComputeThreadHere();
    try {
      c10::InferenceMode guard;
      torch::Tensor logits = Logits(inputs, n);
      const float* l = logits.data_ptr<float>();
      const std::size_t c = spec_.classes;
      for (std::size_t i = 0; i < n; ++i) {
        bool clear = true;
        votes[i] = Argmax(l + i * c, c, &clear);
        if (!clear && n > 1)
          votes[i] = VoteAlone(inputs + i * spec_.input_size());
      }
      if (probs != nullptr) Softmax(logits, n, c, probs);
    } catch (const std::exception& e) {
      return InternalError(std::string("model prediction failed: ") + e.what());
    }
    return OkStatus();
  }

  // Logits of n inputs, [n, classes], contiguous. Under InferenceMode.
  torch::Tensor Logits(const float* inputs, std::size_t n) const {
    torch::Tensor x = torch::from_blob(
        const_cast<float*>(inputs),
        {static_cast<int64_t>(n), static_cast<int64_t>(spec_.input_size())});
    return net_->forward(x).contiguous();
  }

  // The canonical vote: the input evaluated alone. Under InferenceMode.
  int32_t VoteAlone(const float* input) const {
    torch::Tensor logits = Logits(input, 1);
    bool clear = true;
    return Argmax(logits.data_ptr<float>(), spec_.classes, &clear);
  }

  std::string Serialize() const override {
    std::string out(kBlobMagic, sizeof(kBlobMagic));
    PutU32(&out, kBlobFormat);
    PutU32(&out, static_cast<uint32_t>(spec_.arch));
    PutU32(&out, spec_.rows);
    PutU32(&out, spec_.cols);
    PutU32(&out, spec_.classes);
    PutU32(&out, HiddenField(spec_));
    const std::vector<torch::Tensor> params = net_->parameters();
    PutU32(&out, static_cast<uint32_t>(params.size()));
    for (const torch::Tensor& p : params) {
      torch::Tensor t = p.detach().contiguous();
      PutU32(&out, static_cast<uint32_t>(t.numel()));
      out.append(reinterpret_cast<const char*>(t.data_ptr<float>()),
                 static_cast<std::size_t>(t.numel()) * sizeof(float));
    }
    return out;
  }

  Status Train(const TrainingData& data, std::size_t rows, uint32_t epochs,
               const SgdOptions& sgd, uint64_t order_seed) override {
    UseOneComputeThreadHere();
    try {
      net_->train();
      torch::optim::SGD optimizer(
          net_->parameters(),
          torch::optim::SGDOptions(sgd.learning_rate).momentum(sgd.momentum));
      const std::size_t dim = data.dim;
      std::vector<uint32_t> order(rows);
      std::iota(order.begin(), order.end(), 0u);
      std::vector<float> xb(static_cast<std::size_t>(sgd.batch_size) * dim);
      std::vector<int64_t> yb(sgd.batch_size);
      for (uint32_t epoch = 0; epoch < epochs; ++epoch) {
        Rng(DeriveSeed(order_seed, {epoch}))
            .Shuffle(order.begin(), order.end());
        for (std::size_t start = 0; start < order.size();
             start += sgd.batch_size) {
          const std::size_t m =
              std::min<std::size_t>(sgd.batch_size, order.size() - start);
          for (std::size_t i = 0; i < m; ++i) {
            const uint32_t row = order[start + i];
            std::memcpy(&xb[i * dim], data.features + row * dim,
                        dim * sizeof(float));
            yb[i] = data.labels[row];
          }
          torch::Tensor x = torch::from_blob(
              xb.data(), {static_cast<int64_t>(m), static_cast<int64_t>(dim)});
          torch::Tensor y =
              torch::from_blob(yb.data(), {static_cast<int64_t>(m)},
                               torch::TensorOptions().dtype(torch::kInt64));
          optimizer.zero_grad();
          torch::Tensor loss =
              torch::nn::functional::cross_entropy(net_->forward(x), y);
          loss.backward();
          optimizer.step();
        }
      }
      net_->eval();
    } catch (const std::exception& e) {
      net_->eval();
      return InternalError(std::string("training failed: ") + e.what());
    }
    return OkStatus();
  }

  // Overwrites every parameter with values from `rng`, uniform in
  // +-1/sqrt(fan_in), where a bias takes the fan-in of its layer's weight.
  void Initialize(uint64_t seed) {
    torch::NoGradGuard no_grad;
    Rng rng(seed);
    double bound = 1.0;
    for (torch::Tensor& p : net_->parameters()) {
      if (p.dim() >= 2) bound = 1.0 / std::sqrt(double(p[0].numel()));
      std::vector<float> values(static_cast<std::size_t>(p.numel()));
      for (float& v : values) {
        v = static_cast<float>((2.0 * rng.UniformDouble() - 1.0) * bound);
      }
      p.copy_(torch::from_blob(values.data(), p.sizes()));
    }
  }

  // Replaces the parameters with those in a blob's payload.
  Status Load(const std::string& blob, std::size_t offset) {
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor> params = net_->parameters();
    uint32_t count = 0;
    if (!Read(blob, &offset, &count) || count != params.size()) {
      return DataLossError("model blob has the wrong number of tensors");
    }
    for (const torch::Tensor& p : params) {
      uint32_t numel = 0;
      const std::size_t bytes = static_cast<std::size_t>(p.numel()) * 4;
      if (!Read(blob, &offset, &numel) || numel != p.numel() ||
          blob.size() - offset < bytes) {
        return DataLossError("model blob does not match " + spec_.ToString());
      }
      std::vector<float> values(static_cast<std::size_t>(p.numel()));
      std::memcpy(values.data(), blob.data() + offset, bytes);
      offset += bytes;
      torch::Tensor target = p;
      target.copy_(torch::from_blob(values.data(), p.sizes()));
    }
    if (offset != blob.size()) {
      return DataLossError("model blob has trailing bytes");
    }
    return OkStatus();
  }

  static bool Read(const std::string& blob, std::size_t* offset,
                   uint32_t* out) {
    if (blob.size() - *offset < sizeof(*out)) return false;
    std::memcpy(out, blob.data() + *offset, sizeof(*out));
    *offset += sizeof(*out);
    return true;
  }

 private:
  const ModelSpec spec_;
  std::shared_ptr<NetImpl> net_;
};

// K MLPs evaluated together: the first layers' weights stacked into one
// [K*H, D] matrix, used as addmm(b1, x, W1.t()) exactly as each model's own
// Linear layer does (same BLAS call shape per output element), then the K
// second layers applied to column views of the hidden activations.
class StackedMlpEnsemble final : public Ensemble {
 public:
  static constexpr std::size_t kStackFromRows = 16;

  StackedMlpEnsemble(const ModelSpec& spec,
                     std::vector<std::shared_ptr<const Model>> models,
                     std::vector<const TorchModel*> torch_models,
                     torch::Tensor w1, torch::Tensor b1,
                     std::vector<torch::Tensor> w2,
                     std::vector<torch::Tensor> b2)
      : spec_(spec),
        models_(std::move(models)),
        torch_models_(std::move(torch_models)),
        w1_(std::move(w1)),
        b1_(std::move(b1)),
        w2_(std::move(w2)),
        b2_(std::move(b2)) {}

  std::size_t size() const override { return models_.size(); }
  const ModelSpec& spec() const override { return spec_; }
  bool stacked() const override { return true; }

  Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                 float* probs) const override {
    if (n == 0) return OkStatus();
    // Measured with OpenBLAS 0.3.21 here: for 2 to 15 rows its
    // small-matrix kernel made eight 128-column products up to twice as
    // fast as one 1,024-column product, so those run model by model; at 1
    // row and from 16 rows the stacked product is as fast or faster (its
    // gain varies with the run: bench/ensemble_bench, docs/performance.md).
    if (n >= 2 && n < kStackFromRows) {
      return PredictEach(models_, inputs, n, votes, probs);
    }
    UseOneComputeThreadHere();
    try {
      c10::InferenceMode guard;
      const int64_t hidden = spec_.hidden;
      const std::size_t c = spec_.classes;
      torch::Tensor x = torch::from_blob(
          const_cast<float*>(inputs),
          {static_cast<int64_t>(n), static_cast<int64_t>(spec_.input_size())});
      torch::Tensor h = torch::relu(torch::addmm(b1_, x, w1_.t()));
      for (std::size_t k = 0; k < models_.size(); ++k) {
        torch::Tensor hk =
            h.narrow(1, static_cast<int64_t>(k) * hidden, hidden);
        torch::Tensor logits =
            torch::addmm(b2_[k], hk, w2_[k].t()).contiguous();
        const float* l = logits.data_ptr<float>();
        for (std::size_t i = 0; i < n; ++i) {
          bool clear = true;
          int32_t vote = Argmax(l + i * c, c, &clear);
          if (!clear) {
            vote = torch_models_[k]->VoteAlone(inputs + i * spec_.input_size());
          }
          votes[k * n + i] = vote;
        }
        if (probs != nullptr) Softmax(logits, n, c, probs + k * n * c);
      }
    } catch (const std::exception& e) {
      return InternalError(std::string("ensemble prediction failed: ") +
                           e.what());
    }
    return OkStatus();
  }

 private:
  const ModelSpec spec_;
  const std::vector<std::shared_ptr<const Model>> models_;  // kept alive
  const std::vector<const TorchModel*> torch_models_;
  const torch::Tensor w1_;
  const torch::Tensor b1_;
  const std::vector<torch::Tensor> w2_;
  const std::vector<torch::Tensor> b2_;
};

StatusOr<std::unique_ptr<TorchModel>> NewTorchModel(const ModelSpec& spec) {
  RETURN_IF_ERROR(spec.Validate());
  try {
    return std::make_unique<TorchModel>(spec, NewNet(spec));
  } catch (const std::exception& e) {
    return InternalError(std::string("cannot build model: ") + e.what());
  }
}

}  // namespace

void UseOneComputeThreadHere() {
  thread_local bool done = false;
  if (!done) {
    omp_set_num_threads(1);
    done = true;
  }
}

void SetTorchIntraOpThreads(int threads) { torch::set_num_threads(threads); }

StatusOr<std::unique_ptr<Ensemble>> NewStackedMlpEnsemble(
    const std::vector<std::shared_ptr<const Model>>& models) {
  std::vector<const TorchModel*> torch_models;
  std::vector<torch::Tensor> w1;
  std::vector<torch::Tensor> b1;
  std::vector<torch::Tensor> w2;
  std::vector<torch::Tensor> b2;
  for (const auto& model : models) {
    const auto* torch_model = dynamic_cast<const TorchModel*>(model.get());
    const Mlp* mlp =
        torch_model ? dynamic_cast<const Mlp*>(torch_model->net()) : nullptr;
    if (mlp == nullptr) return UnavailableError("not a Torch MLP");
    torch_models.push_back(torch_model);
    w1.push_back(mlp->fc1()->weight.detach());
    b1.push_back(mlp->fc1()->bias.detach());
    w2.push_back(mlp->fc2()->weight.detach().clone());
    b2.push_back(mlp->fc2()->bias.detach().clone());
  }
  try {
    return std::unique_ptr<Ensemble>(new StackedMlpEnsemble(
        models.front()->spec(), models, std::move(torch_models),
        torch::cat(w1, 0).contiguous(), torch::cat(b1, 0).contiguous(),
        std::move(w2), std::move(b2)));
  } catch (const std::exception& e) {
    return InternalError(std::string("cannot stack the ensemble: ") + e.what());
  }
}

StatusOr<std::unique_ptr<TrainableModel>> TrainableModel::Create(
    const ModelSpec& spec, uint64_t init_seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model, NewTorchModel(spec));
  try {
    model->Initialize(init_seed);
  } catch (const std::exception& e) {
    return InternalError(std::string("cannot initialise model: ") + e.what());
  }
  return std::unique_ptr<TrainableModel>(std::move(model));
}

StatusOr<std::unique_ptr<TrainableModel>> TrainableModel::Deserialize(
    const ModelSpec& spec, const std::string& blob) {
  std::size_t offset = sizeof(kBlobMagic);
  uint32_t header[6];
  if (blob.size() < offset || std::memcmp(blob.data(), kBlobMagic, offset)) {
    return DataLossError("not a model blob");
  }
  for (uint32_t& h : header) {
    if (!TorchModel::Read(blob, &offset, &h)) {
      return DataLossError("truncated model blob");
    }
  }
  if (header[0] != kBlobFormat ||
      header[1] != static_cast<uint32_t>(spec.arch) || header[2] != spec.rows ||
      header[3] != spec.cols || header[4] != spec.classes ||
      header[5] != HiddenField(spec)) {
    return DataLossError("model blob was written for another model than " +
                         spec.ToString());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model, NewTorchModel(spec));
  try {
    RETURN_IF_ERROR(model->Load(blob, offset));
  } catch (const std::exception& e) {
    return DataLossError(std::string("cannot load model blob: ") + e.what());
  }
  return std::unique_ptr<TrainableModel>(std::move(model));
}

}  // namespace eraser::unlearning::internal
