// The body of an Open Inference Protocol inference request
// (POST /v2/models/{name}/infer), read in one pass.
//
// A batch of 8 Fashion-MNIST images is 6,272 numbers. Read through
// nlohmann::json's SAX interface, the route answered 29% of the in-process
// engine's rows per second at 8 FP32 rows per request (docs/performance.md).
// This reader is a strict RFC 8259 parser that keeps only what the route
// uses and converts numbers with std::from_chars (correctly rounded, as
// strtod). It accepts the documents nlohmann::json accepts, and reads the
// same numbers and strings from them (fuzz/oip_fuzz.cc checks both on
// arbitrary bytes), with two differences: nesting deeper than kMaxNesting
// is refused with its own message, and a NUL byte is an error (nlohmann
// takes it for the end of the input).
#ifndef ERASER_SERVE_TENSOR_REQUEST_H_
#define ERASER_SERVE_TENSOR_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eraser::serve {

struct TensorRequest {
  // Nesting of arrays and objects accepted anywhere in the body.
  static constexpr int kMaxNesting = 64;
  // Nesting accepted inside "data" (the protocol allows flat or shaped
  // arrays).
  static constexpr int kMaxDataNesting = 8;

  std::optional<std::string> id;  // "id", when a string
  int inputs = 0;                 // elements of "inputs"
  // The first input's fields.
  std::string name, datatype;
  bool has_name = false, has_datatype = false, has_shape = false,
       has_data = false;
  std::vector<int64_t> shape;  // each 0 to 2^24
  std::vector<double> data;    // flattened in document order
  // "outputs": the names asked for.
  bool has_outputs = false;
  std::vector<std::string> outputs;
  // Set, with an error, for a valid document this reader does not read as
  // it stands: of the wrong shape, or with a field it reads repeated in its
  // object. The caller has the general parser (nlohmann::json, where the
  // last of a repeated field counts) judge it, so that a body gets one
  // answer whichever reader would read it. Not set for a syntax error, a
  // number beyond the double range or nesting past kMaxNesting found
  // first, which the general parser refuses too (found after such a field,
  // they are the general parser's to report).
  bool reread = false;
};

// Reads `body` into `out`. On failure returns false with the first problem
// found in document order: "the body is not valid JSON" (with the byte
// offset) for a syntax error, or a message naming the field for a valid
// document of the wrong shape (a string in "data", a fraction or an object
// in "shape", a non-object body, ...) or a number beyond the double range
// (an underflow reads as zero or a subnormal). The caller range-checks the
// numbers for their datatype.
bool ParseTensorRequest(std::string_view body, TensorRequest* out,
                        std::string* error);

}  // namespace eraser::serve

#endif  // ERASER_SERVE_TENSOR_REQUEST_H_
