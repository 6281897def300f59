// libFuzzer target: the NumPy .npy reader (eraser train --dataset npy:...)
// on arbitrary bytes, and a split built from the array as features and as
// labels.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "eraser/datasets/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace eraser::datasets;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  eraser::StatusOr<NpyArray> array = ParseNpy(bytes, "fuzz.npy");
  if (!array.ok()) return 0;
  uint32_t max_label = 0;
  NpySplit(*array, *array, nullptr, {"x.npy", "y.npy", "owners.npy"},
           &max_label)
      .status()
      .IgnoreError();
  return 0;
}
