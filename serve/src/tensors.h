// Tensor data shared by the Open Inference Protocol's HTTP (oip.cc) and
// gRPC (grpc_server.cc) front ends: the accepted datatypes, the rows of an
// input tensor, and the little-endian binary form of elements.
#ifndef ERASER_SERVE_SRC_TENSORS_H_
#define ERASER_SERVE_SRC_TENSORS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eraser/engine/engine.h"
#include "eraser/serve/tensor_request.h"
#include "eraser/unlearning/sisa.h"

namespace eraser::serve::internal {

// Rows one request may carry.
constexpr std::size_t kMaxRows = 1024;

// The rows of the request's one input tensor (name "input", a shape
// [rows, ...] whose per-row product is the model's feature count, values
// valid for the datatype), or false with a message for a 400.
bool Rows(const TensorRequest& req, const unlearning::DatasetInfo& dataset,
          std::vector<std::vector<float>>* rows, std::string* error);

// A request parameter the protocol reserves that eraser does not serve
// (sequence batching, priorities): false with a message for a 400.
// Others are honoured (timeout, binary_data_output) or, not reserved,
// ignored.
bool ReservedParameterServed(const std::string& name, std::string* error);

// The reserved parameter "timeout" in microseconds, the longest a request
// may wait parked for unlearning; at most this many.
constexpr uint64_t kMaxTimeoutMicros = uint64_t{1} << 40;

// Bytes per element of a datatype with a binary form; 0 for others.
std::size_t ElementSize(const std::string& datatype);

// `count` elements of `datatype` (ElementSize() > 0), little-endian, from
// `p`.
void Decode(const std::string& datatype, const char* p, std::size_t count,
            std::vector<double>* out);

// `v`'s bytes, little-endian.
template <typename T>
void Append(std::string* out, T v) {
  char bytes[sizeof v];
  std::memcpy(bytes, &v, sizeof v);
  out->append(bytes, sizeof v);
}

// A BYTES element in binary: its length (4 bytes, little-endian), then it.
void AppendBytes(std::string* out, const std::string& s);

// The answers to one request's rows, which the engine gives one at a time,
// in any order, on its own threads.
struct RowAnswers {
  explicit RowAnswers(std::size_t rows) : results(rows), remaining(rows) {}
  // Keeps `row`'s answer; true for the last one, whose caller then reads
  // `results` (every other row's Put happened before).
  bool Put(std::size_t row, StatusOr<engine::Prediction> p);

  std::mutex mu;
  std::vector<std::optional<StatusOr<engine::Prediction>>> results;
  std::size_t remaining;
};

// The outputs a caller may ask for: label, decision, class (when the
// dataset names its classes), and margin when it sees certificate details.
std::vector<std::string> KnownOutputs(const unlearning::DatasetInfo& dataset,
                                      bool details);

// An output's datatype: label INT64, decision and class BYTES, margin INT32.
std::string OutputDatatype(const std::string& name);

// The outputs a request asks for: `requested`, or every known one when
// `named` is false; false with a message for a 400 when a name is unknown
// or asked for twice.
bool WantedOutputs(bool named, const std::vector<std::string>& requested,
                   const std::vector<std::string>& known,
                   std::vector<std::string>* wanted, std::string* error);

// A row's class name: empty for a rejected row or a dataset without names.
std::string ClassName(const engine::Prediction& p,
                      const std::vector<std::string>& names);

// A row's certificate details: affected shards, deletion watermark, model
// versions (what admin tokens see).
nlohmann::json CertificateJson(const engine::Prediction& p);

}  // namespace eraser::serve::internal

#endif  // ERASER_SERVE_SRC_TENSORS_H_
