// The built-in LibTorch models (linear, MLP, CNN) and their stacked
// ensemble. With script_model.cc and torch_util.cc, one of the three files
// of the module that include Torch; every Torch exception is turned into a
// Status here.
#include "network.h"

#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "eraser/common/random.h"
#include "torch_util.h"

namespace eraser::unlearning::internal {
namespace {

class NetImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

// Linear (no hidden layer) and MLPs: fc1 .. fc{n+1}, ReLU between.
class Mlp final : public NetImpl {
 public:
  explicit Mlp(const ModelSpec& spec) {
    int64_t in = static_cast<int64_t>(spec.input_size());
    std::vector<uint32_t> widths = spec.hidden;
    widths.push_back(spec.classes);
    for (std::size_t i = 0; i < widths.size(); ++i) {
      layers_.push_back(register_module("fc" + std::to_string(i + 1),
                                        torch::nn::Linear(in, widths[i])));
      in = widths[i];
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(1);
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
      x = torch::relu(layers_[i](x));
    }
    return layers_.back()(x);
  }
  const std::vector<torch::nn::Linear>& layers() const { return layers_; }

 private:
  std::vector<torch::nn::Linear> layers_;
};

class Cnn final : public NetImpl {
 public:
  explicit Cnn(const ModelSpec& spec)
      : rows_(spec.input_shape[0]),
        cols_(spec.input_shape[1]),
        conv1_(register_module("conv1", torch::nn::Conv2d(1, 8, 5))),
        conv2_(register_module("conv2", torch::nn::Conv2d(8, 16, 5))),
        fc_(register_module("fc",
                            torch::nn::Linear(16 * (((rows_ - 4) / 2 - 4) / 2) *
                                                  (((cols_ - 4) / 2 - 4) / 2),
                                              spec.classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    x = x.reshape({-1, 1, rows_, cols_});
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
    return PredictFromLogits(
        spec_, [this](const float* x, int64_t m) { return Logits(x, m); },
        inputs, n, votes, probs);
  }

  // Logits of n inputs, [n, classes], contiguous. Under InferenceMode.
  torch::Tensor Logits(const float* inputs, int64_t n) const {
    torch::Tensor x =
        torch::from_blob(const_cast<float*>(inputs),
                         {n, static_cast<int64_t>(spec_.input_size())});
    return net_->forward(x).contiguous();
  }

  // The canonical vote: the input evaluated alone. Under InferenceMode.
  int32_t VoteAlone(const float* input) const {
    torch::Tensor logits = Logits(input, 1);
    bool clear = true;
    return Argmax(logits.data_ptr<float>(), spec_.classes, &clear);
  }

  NamedTensors Tensors() const {
    NamedTensors out;
    for (const auto& item : net_->named_parameters()) {
      out.emplace_back(item.key(), item.value());
    }
    return out;
  }

  std::string Serialize() const override {
    return SerializeTensors(spec_, Tensors());
  }

  Status Train(const TrainingData& data, std::size_t rows, uint32_t epochs,
               const SgdOptions& sgd, uint64_t order_seed) override {
    UseOneComputeThreadHere();
    try {
      net_->train();
      Status s = RunSgd(
          net_->parameters(),
          [this](const torch::Tensor& x) { return net_->forward(x); }, data,
          rows, epochs, sgd, order_seed,
          {static_cast<int64_t>(spec_.input_size())},
          /*skip_single_row_batch=*/false);
      net_->eval();
      return s;
    } catch (const std::exception& e) {
      net_->eval();
      return InternalError(std::string("training failed: ") + e.what());
    }
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
      const int64_t hidden = spec_.hidden.at(0);
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
    if (mlp == nullptr || mlp->layers().size() != 2) {
      return UnavailableError("not a Torch MLP with one hidden layer");
    }
    const torch::nn::Linear& fc1 = mlp->layers()[0];
    const torch::nn::Linear& fc2 = mlp->layers()[1];
    torch_models.push_back(torch_model);
    w1.push_back(fc1->weight.detach());
    b1.push_back(fc1->bias.detach());
    w2.push_back(fc2->weight.detach().clone());
    b2.push_back(fc2->bias.detach().clone());
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
  if (spec.arch == Architecture::kTorchScript) return CreateScriptModel(spec);
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
  if (spec.arch == Architecture::kTorchScript) {
    return DeserializeScriptModel(spec, blob);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model, NewTorchModel(spec));
  try {
    RETURN_IF_ERROR(LoadTensors(spec, blob, model->Tensors()));
  } catch (const std::exception& e) {
    return DataLossError(std::string("cannot load model blob: ") + e.what());
  }
  return std::unique_ptr<TrainableModel>(std::move(model));
}

}  // namespace eraser::unlearning::internal
