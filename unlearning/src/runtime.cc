#include "eraser/unlearning/runtime.h"

#include <dlfcn.h>
#include <link.h>

#include <climits>
#include <cstdlib>
#include <mutex>

#include "network.h"

namespace eraser::unlearning {
namespace {

int FindBlas(struct dl_phdr_info* info, size_t, void* data) {
  const std::string name = info->dlpi_name == nullptr ? "" : info->dlpi_name;
  if (name.find("libblas.so") != std::string::npos) {
    *static_cast<std::string*>(data) = name;
    return 1;
  }
  return 0;
}

BlasInfo DetectBlas() {
  BlasInfo info;
  std::string loaded;
  dl_iterate_phdr(FindBlas, &loaded);
  if (loaded.empty()) return info;
  char resolved[PATH_MAX];
  info.path = realpath(loaded.c_str(), resolved) != nullptr ? resolved : loaded;
  // OpenBLAS identifies itself, build options included.
  if (void* handle = dlopen(loaded.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
    using ConfigFn = char* (*)();
    if (auto fn =
            reinterpret_cast<ConfigFn>(dlsym(handle, "openblas_get_config"))) {
      info.config = fn();
    }
    dlclose(handle);
  }
  const std::string& p = info.path;
  if (p.find("openblas-openmp") != std::string::npos) {
    info.kind = BlasInfo::Kind::kOpenBlasOpenMp;
  } else if (p.find("openblas-pthread") != std::string::npos) {
    info.kind = BlasInfo::Kind::kOpenBlasPthread;
  } else if (p.find("openblas-serial") != std::string::npos) {
    info.kind = BlasInfo::Kind::kOpenBlasSerial;
  } else if (p.find("/blas/") != std::string::npos && info.config.empty()) {
    info.kind = BlasInfo::Kind::kReference;
  } else {
    info.kind = BlasInfo::Kind::kOther;
  }
  return info;
}

}  // namespace

std::string BlasInfo::Describe() const {
  const char* name = "unknown BLAS";
  switch (kind) {
    case Kind::kOpenBlasOpenMp:
      name = "OpenBLAS (OpenMP)";
      break;
    case Kind::kOpenBlasPthread:
      name = "OpenBLAS (pthread)";
      break;
    case Kind::kOpenBlasSerial:
      name = "OpenBLAS (serial)";
      break;
    case Kind::kReference:
      name = "reference BLAS (slow)";
      break;
    case Kind::kOther:
      name = "BLAS";
      break;
    case Kind::kUnknown:
      break;
  }
  std::string out = name;
  if (!path.empty()) out += " " + path;
  if (!config.empty()) out += ": " + config;
  return out;
}

BlasInfo InitComputeRuntime() {
  static std::once_flag once;
  static BlasInfo info;
  std::call_once(once, [] {
    internal::SetTorchIntraOpThreads(1);
    info = DetectBlas();
  });
  return info;
}

}  // namespace eraser::unlearning
