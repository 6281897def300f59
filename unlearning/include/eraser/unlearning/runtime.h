// The compute runtime under the models: thread settings and the BLAS.
#ifndef ERASER_UNLEARNING_RUNTIME_H_
#define ERASER_UNLEARNING_RUNTIME_H_

#include <string>

namespace eraser::unlearning {

// The BLAS that LibTorch resolved at run time.
struct BlasInfo {
  enum class Kind {
    kOpenBlasOpenMp,
    kOpenBlasPthread,
    kOpenBlasSerial,
    kReference,  // Netlib reference BLAS: about 16x slower here
    kOther,
    kUnknown,
  };
  Kind kind = Kind::kUnknown;
  std::string path;    // the resolved libblas.so.3, if found
  std::string config;  // openblas_get_config(), for OpenBLAS
  // "OpenBLAS (OpenMP) /usr/lib/.../libblas.so.3: OpenBLAS 0.3.21 ..."
  std::string Describe() const;
};

// Configures the process for this module (one Torch intra-op thread; the
// parallelism is across shards and requests) and reports the BLAS in use.
// Idempotent; every Sisa calls it. Callers should warn when the kind is
// kReference.
BlasInfo InitComputeRuntime();

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_RUNTIME_H_
