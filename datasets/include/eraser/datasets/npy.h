// NumPy datasets: arrays written by numpy.save (the .npy format, versions
// 1.0, 2.0 and 3.0), in C order and little-endian.
//
// Accepted dtypes:
//   features  uint8 ('|u1': stored as bytes, seen as value / 255, like
//             images), float32 ('<f4') and float64 ('<f8', converted to
//             float32; a value outside the float range is an error). Any
//             rank; the first axis is samples, the rest is one sample's
//             shape ((N,) means one feature per sample).
//   labels    int8, uint8, int16, uint16, int32, uint32, int64, uint64; one
//             axis of N values in [0, 1000). The classes are 0..max label.
//   owners    the same integer dtypes; one axis of N values in [0, 2^63).
// NaN or infinite features are errors. Big-endian data, Fortran order,
// object or structured dtypes, a truncated or trailing payload, and a
// malformed header are refused with kInvalidArgument naming the file.
#ifndef ERASER_DATASETS_NPY_H_
#define ERASER_DATASETS_NPY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"

namespace eraser::datasets {

struct NpyArray {
  enum class DType : uint8_t {
    kInt8,
    kUint8,
    kInt16,
    kUint16,
    kInt32,
    kUint32,
    kInt64,
    kUint64,
    kFloat32,
    kFloat64,
  };
  DType dtype = DType::kFloat32;
  std::vector<uint64_t> shape;  // empty for a scalar
  std::vector<uint8_t> data;    // little-endian, C order

  uint64_t elements() const;
  bool is_integer() const {
    return dtype != DType::kFloat32 && dtype != DType::kFloat64;
  }
  // Element i of an integer array, as a signed 64-bit value (uint64 values
  // above INT64_MAX come out negative, so they are refused as ids).
  int64_t IntegerAt(uint64_t i) const;
};

// The numpy name of a dtype: "uint8", "float32", ...
const char* DTypeName(NpyArray::DType dtype);

// Parses the bytes of a .npy file; `path` names it in errors.
StatusOr<NpyArray> ParseNpy(std::string_view bytes, const std::string& path);
// Reads and parses a file; kNotFound if it cannot be read.
StatusOr<NpyArray> ReadNpy(const std::string& path);

// A split from a feature array, a label array and (optionally, `owners`
// null) an owner array, checked against each other. `names` are the three
// file names for messages. Sets *max_label to the largest label.
StatusOr<Split> NpySplit(const NpyArray& features, const NpyArray& labels,
                         const NpyArray* owners,
                         const std::vector<std::string>& names,
                         uint32_t* max_label);

}  // namespace eraser::datasets

#endif  // ERASER_DATASETS_NPY_H_
