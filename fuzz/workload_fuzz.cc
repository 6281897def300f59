// libFuzzer target: the workload file parser (eraser replay --workload) on
// arbitrary bytes. Inputs naming a TorchScript model are skipped: parsing
// one reads the named file, and a fuzzer must not read arbitrary paths.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "eraser/workloads/workload.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (text.find("torchscript") != std::string_view::npos) return 0;
  eraser::workloads::ParseWorkload(text, "/nonexistent/fuzz/workload.json")
      .status()
      .IgnoreError();
  return 0;
}
