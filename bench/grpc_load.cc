// A closed-loop load generator for the gRPC front end (scripts/bench-http's
// gRPC cases): `--concurrency` calls of ModelInfer always in flight on one
// channel, each re-sent as soon as it is answered, for `--seconds`. Prints
// one line "JSON {...}" in the shape of scripts/wrk/rotate.lua's summary.
//
// C++ with gRPC's callback API, not Python: a Python client on this 2-core
// machine would measure the client. The requests carry Fashion-MNIST test
// images (IDX file) as raw UINT8 bytes or FP32 values in
// raw_input_contents, as tritonclient.grpc sends them.
//
//   grpc_load --target 127.0.0.1:8081 [--seconds 10] [--concurrency 32]
//             [--rows 8] [--datatype UINT8|FP32] [--ca FILE]
//             [--images t10k-images-idx3-ubyte.gz]
#include <grpcpp/grpcpp.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "inference.grpc.pb.h"

namespace {

namespace pb = ::inference;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string target;
  double seconds = 10;
  int concurrency = 32;
  int rows = 8;
  std::string datatype = "UINT8";
  std::string ca;
  std::string images =
      "/usr/share/datasets/fashion-mnist/"
      "t10k-images-idx3-ubyte.gz";
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--target") {
      f->target = v;
    } else if (k == "--seconds") {
      f->seconds = std::atof(v.c_str());
    } else if (k == "--concurrency") {
      f->concurrency = std::atoi(v.c_str());
    } else if (k == "--rows") {
      f->rows = std::atoi(v.c_str());
    } else if (k == "--datatype") {
      f->datatype = v;
    } else if (k == "--ca") {
      f->ca = v;
    } else if (k == "--images") {
      f->images = v;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return false;
    }
  }
  return !f->target.empty() && f->seconds > 0 && f->concurrency > 0 &&
         f->rows > 0 && (f->datatype == "UINT8" || f->datatype == "FP32");
}

// The first `count` test images, 784 bytes each, from the gzipped IDX file.
bool ReadImages(const std::string& path, int count, std::string* out) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (in == nullptr) return false;
  std::string data(16 + static_cast<std::size_t>(count) * 784, '\0');
  const int n = gzread(in, data.data(), static_cast<unsigned>(data.size()));
  gzclose(in);
  if (n != static_cast<int>(data.size())) return false;
  *out = data.substr(16);
  return true;
}

// Requests of `rows` images each, rotating through 64 images.
std::vector<pb::ModelInferRequest> Requests(const Flags& f,
                                            const std::string& images) {
  std::vector<pb::ModelInferRequest> requests;
  for (int start = 0; start < 64; start += f.rows) {
    pb::ModelInferRequest req;
    req.set_model_name("eraser");
    auto* input = req.add_inputs();
    input->set_name("input");
    input->set_datatype(f.datatype);
    input->add_shape(f.rows);
    input->add_shape(784);
    std::string raw;
    for (int r = 0; r < f.rows; ++r) {
      const char* img = images.data() + ((start + r) % 64) * 784;
      if (f.datatype == "UINT8") {
        raw.append(img, 784);
      } else {
        for (int i = 0; i < 784; ++i) {
          const float v = static_cast<unsigned char>(img[i]) / 255.0f;
          raw.append(reinterpret_cast<const char*>(&v), sizeof v);
        }
      }
    }
    req.add_raw_input_contents(raw);
    requests.push_back(std::move(req));
  }
  return requests;
}

class Load {
 public:
  Load(pb::GRPCInferenceService::Stub* stub,
       std::vector<pb::ModelInferRequest> requests, Clock::time_point end)
      : stub_(stub), requests_(std::move(requests)), end_(end) {}

  // Runs `concurrency` loops until the end; returns when all have stopped.
  void Run(int concurrency) {
    for (int i = 0; i < concurrency; ++i) Send(static_cast<std::size_t>(i));
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return stopped_ == concurrency; });
  }

  std::vector<double> latencies_ms;  // guarded by mu_ until Run returns
  uint64_t errors = 0;

 private:
  struct Call {
    grpc::ClientContext context;
    pb::ModelInferResponse response;
    Clock::time_point sent;
  };

  void Send(std::size_t index) {
    auto call = std::make_shared<Call>();
    call->sent = Clock::now();
    const pb::ModelInferRequest& req = requests_[index % requests_.size()];
    stub_->async()->ModelInfer(
        &call->context, &req, &call->response,
        [this, call, index](grpc::Status status) {
          const Clock::time_point now = Clock::now();
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (status.ok()) {
              latencies_ms.push_back(
                  std::chrono::duration<double, std::milli>(now - call->sent)
                      .count());
            } else {
              ++errors;
            }
            if (now >= end_) {
              ++stopped_;
              done_cv_.notify_all();
              return;
            }
          }
          Send(index + 1);
        });
  }

  pb::GRPCInferenceService::Stub* const stub_;
  const std::vector<pb::ModelInferRequest> requests_;
  const Clock::time_point end_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  int stopped_ = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(
      v.size() - 1, static_cast<std::size_t>(p / 100.0 * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) {
    std::fprintf(stderr,
                 "usage: grpc_load --target HOST:PORT [--seconds S] "
                 "[--concurrency N] [--rows R] [--datatype UINT8|FP32] "
                 "[--ca FILE] [--images IDX.gz]\n");
    return 2;
  }
  std::string images;
  if (!ReadImages(f.images, 64, &images)) {
    std::fprintf(stderr, "cannot read %s\n", f.images.c_str());
    return 1;
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (!f.ca.empty()) {
    std::ifstream in(f.ca);
    std::stringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(f.target, credentials, args);
  auto stub = pb::GRPCInferenceService::NewStub(channel);
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(f.seconds));
  Load load(stub.get(), Requests(f, images), end);
  load.Run(f.concurrency);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double>& l = load.latencies_ms;
  const std::size_t requests = l.size();
  const double p50 = Percentile(l, 50), p90 = Percentile(l, 90),
               p99 = Percentile(l, 99);
  const double max = l.empty() ? 0 : *std::max_element(l.begin(), l.end());
  std::printf(
      "JSON {\"requests\": %zu, \"seconds\": %.3f, \"rps\": %.1f, "
      "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": "
      "%.3f, \"errors\": %llu, \"non_2xx\": %llu}\n",
      requests, seconds, static_cast<double>(requests) / seconds, p50, p90, p99,
      max, static_cast<unsigned long long>(load.errors),
      static_cast<unsigned long long>(load.errors));
  return load.errors == 0 ? 0 : 1;
}
