// libFuzzer target: the HTTP API's request handling (serve/src/api.cc) on
// arbitrary bodies and paths, against a fake engine (no model, no store),
// so that only the parsing and mapping code is exercised. The first byte
// picks the route; the rest is the body (or, for a deletion's status, the
// sequence number in the path; for the Open Inference Protocol's binary
// form, two bytes of Inference-Header-Content-Length, little-endian, then
// the body). Every request must be answered exactly once with a documented
// status code.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <set>
#include <string>

#include "eraser/datasets/csv.h"
#include "eraser/engine/engine.h"
#include "eraser/serve/api.h"

namespace eraser {
namespace {

// A table with a number, a category and a label: gives the fake engine a
// tabular encoding, so {"record": ...} bodies reach the encoder.
unlearning::DatasetInfo FakeDataset() {
  StatusOr<datasets::CsvTable> table = datasets::ParseCsv(
      "x,color,label\n1.5,red,a\n2,blue,b\n-3,red,a\n4,green,b\n", "fake.csv");
  datasets::CsvTable train = *table, test = *table;
  StatusOr<datasets::Dataset> data =
      datasets::EncodeCsvTables(train, test, datasets::CsvOptions());
  if (!data.ok()) std::abort();
  unlearning::DatasetInfo info;
  info.source = "csv:fake.csv";
  info.classes = data->classes;
  info.class_names = data->class_names;
  info.encoding = data->encoding;
  info.test = data->test;
  info.train_size = data->train.size();
  return info;
}

class FakeEngine final : public engine::Engine {
 public:
  FakeEngine()
      : dataset_(FakeDataset()), metrics_(metrics::EngineMetrics::Create()) {}

  Status InferAsync(std::vector<float> features,
                    engine::InferCallback done) override {
    if (features.size() != feature_size()) {
      return InvalidArgumentError("wrong feature count");
    }
    engine::Prediction p;
    p.label = features[0] > 0 ? 1 : 0;
    p.decision = features[0] > 100 ? certify::Decision::kRejected
                                   : certify::Decision::kClean;
    p.model_versions = {1, 1};
    done(p);
    return OkStatus();
  }
  Status InferRowsAsync(std::vector<std::vector<float>> rows,
                        engine::RowCallback done, Duration) override {
    for (const std::vector<float>& row : rows) {
      if (row.size() != feature_size()) {
        return InvalidArgumentError("wrong feature count");
      }
    }
    for (std::size_t r = 0; r < rows.size(); ++r) {
      (void)InferAsync(std::move(rows[r]),
                       [&done, r](StatusOr<engine::Prediction> p) {
                         done(r, std::move(p));
                       });
    }
    return OkStatus();
  }
  std::future<StatusOr<engine::Prediction>> Infer(
      std::vector<float> features) override {
    std::promise<StatusOr<engine::Prediction>> promise;
    Status s = InferAsync(std::move(features),
                          [&promise](StatusOr<engine::Prediction> p) {
                            promise.set_value(std::move(p));
                          });
    if (!s.ok()) promise.set_value(s);
    return promise.get_future();
  }
  StatusOr<DeletionSeq> RequestDeletion(
      const storage::DeletionTarget& target) override {
    if (target.id > 1000) return NotFoundError("unknown sample");
    if (target.id == 999) return ResourceExhaustedError("the disk is full");
    return DeletionSeq(target.id + 1);
  }
  StatusOr<engine::DeletionInfo> GetDeletion(DeletionSeq seq) override {
    if (seq.value() == 0 || seq.value() > 1001) return NotFoundError("no");
    engine::DeletionInfo info;
    info.seq = seq;
    info.target = storage::DeletionTarget::Sample(SampleId(seq.value() - 1));
    info.shards = {ShardId(0)};
    return info;
  }
  Status Drain() override { return OkStatus(); }
  void Close(Duration) override {}
  engine::EngineStats Stats() const override { return {}; }
  std::shared_ptr<metrics::EngineMetrics> metrics() const override {
    return metrics_;
  }
  std::size_t feature_size() const override {
    return dataset_.test.feature_count();
  }
  StatusOr<std::vector<float>> TestSample(uint64_t index) const override {
    if (index >= dataset_.test.size()) return NotFoundError("no such row");
    std::vector<float> features(dataset_.test.feature_count());
    dataset_.test.Decode(index, features.data());
    return features;
  }
  std::size_t num_shards() const override { return 2; }
  const unlearning::DatasetInfo& dataset() const override { return dataset_; }
  std::string policy() const override { return "eraser-lazy-wait"; }
  const engine::InferenceOptions& inference_options() const override {
    return inference_;
  }

 private:
  const unlearning::DatasetInfo dataset_;
  const std::shared_ptr<metrics::EngineMetrics> metrics_;
  const engine::InferenceOptions inference_;
};

struct Route {
  boost::beast::http::verb verb;
  const char* path;
  bool binary = false;  // the binary tensor data extension
};

constexpr Route kRoutes[] = {
    {boost::beast::http::verb::post, "/v1/infer"},
    {boost::beast::http::verb::post, "/v1/deletions"},
    {boost::beast::http::verb::get, "/v1/deletions/"},
    {boost::beast::http::verb::post, "/v1/drain"},
    {boost::beast::http::verb::get, "/readyz"},
    {boost::beast::http::verb::delete_, "/v1/infer"},
    {boost::beast::http::verb::post, "/v2/models/eraser/infer"},
    {boost::beast::http::verb::post, "/v2/models/eraser/infer", true},
    {boost::beast::http::verb::get, "/v2/models/eraser/config"},
    {boost::beast::http::verb::get, "/v2/models/stats"},
};

}  // namespace
}  // namespace eraser

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace eraser;
  static FakeEngine* engine = new FakeEngine();
  static serve::Api* api = new serve::Api(engine);
  static const std::set<unsigned> kDocumented = {200, 202, 400, 404, 405,
                                                 413, 415, 429, 503, 507};
  if (size < 1) return 0;
  const Route& route = kRoutes[data[0] % std::size(kRoutes)];
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  serve::Request request{route.verb, route.path, 11};
  // Declared JSON, as a client must: the fuzzer reaches the body readers,
  // not only the 415 that an undeclared body gets.
  request.set(boost::beast::http::field::content_type, "application/json");
  if (route.binary) {
    if (rest.size() < 2) return 0;
    const unsigned length =
        static_cast<unsigned char>(rest[0]) |
        static_cast<unsigned>(static_cast<unsigned char>(rest[1])) << 8;
    rest.erase(0, 2);
    request.set(boost::beast::http::field::content_type,
                "application/octet-stream");
    request.set("Inference-Header-Content-Length", std::to_string(length));
  }
  if (std::string(route.path) == "/v1/deletions/") {
    request.target(std::string(route.path) + rest);
  } else {
    request.body() = rest;
    request.prepare_payload();
  }
  // Shared with the responder, which may run on the API's own threads.
  struct Answer {
    std::promise<unsigned> status;
    std::atomic<int> calls{0};
  };
  auto answer = std::make_shared<Answer>();
  std::future<unsigned> status = answer->status.get_future();
  api->Handle(std::move(request), [answer](serve::Response response) {
    if (answer->calls.fetch_add(1) != 0) {
      std::fprintf(stderr, "answered twice\n");
      std::abort();
    }
    answer->status.set_value(response.result_int());
  });
  if (status.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "no answer within 10 s\n");
    std::abort();
  }
  const unsigned code = status.get();
  if (kDocumented.count(code) == 0) {
    std::fprintf(stderr, "undocumented status %u\n", code);
    std::abort();
  }
  return 0;
}
