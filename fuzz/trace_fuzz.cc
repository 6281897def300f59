// libFuzzer target: the trace parser (eraser replay --trace, eraser trace)
// on arbitrary bytes. Any input must give a trace or a clear error, never a
// crash, a hang or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "eraser/workloads/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  eraser::StatusOr<eraser::workloads::Trace> trace =
      eraser::workloads::ParseTrace(text, "fuzz.csv");
  if (trace.ok()) {
    // A parsed trace validates against any test-set size without trouble.
    eraser::workloads::ValidateTrace(*trace, 100).IgnoreError();
  }
  return 0;
}
