#include "command.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace po = boost::program_options;

namespace eraser::cli {

int ParseCommandLine(int argc, char** argv, const char* usage,
                     po::options_description& options, po::variables_map& vm,
                     bool* help_printed,
                     const po::positional_options_description* positional) {
  *help_printed = false;
  options.add_options()("help,h", "print this help and exit");
  try {
    // argv[0] is the subcommand name, which the parser skips like a
    // program name.
    po::command_line_parser parser(argc, argv);
    parser.options(options);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help") > 0) {
      std::cout << usage << "\n\n" << options << "\n";
      *help_printed = true;
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "eraser " << argv[0] << ": " << e.what() << "\n"
              << "Try 'eraser " << argv[0] << " --help'.\n";
    return kExitUsage;
  }
  return kExitOk;
}

void AddStoreOptions(po::options_description& options, std::string* location,
                     const std::string& help) {
  options.add_options()(
      "store", po::value(location),
      (help + ": a data directory (RocksDB, the default for one process) or "
              "a postgresql:// URL (PostgreSQL, shared by several replicas; "
              "docs/scale-out.md)")
          .c_str())("data-dir", po::value(location), "the same as --store");
}

Status CheckStoreOptions(const po::variables_map& vm, bool required) {
  const bool store = vm.count("store") > 0;
  const bool data_dir = vm.count("data-dir") > 0;
  if (store && data_dir) {
    return InvalidArgumentError(
        "--store and --data-dir name the same thing; give one");
  }
  if (required && !store && !data_dir) {
    return InvalidArgumentError("--store (or --data-dir) is required");
  }
  return OkStatus();
}

Status CheckOutputPath(const char* option, const std::string& path) {
  if (path.empty()) return OkStatus();
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path file(path);
  const fs::path dir =
      file.has_parent_path() ? file.parent_path() : fs::path(".");
  const std::string prefix = std::string("--") + option + " " + path + ": ";
  if (fs::is_directory(file, ec)) {
    return InvalidArgumentError(prefix + "is a directory");
  }
  if (!fs::is_directory(dir, ec)) {
    return InvalidArgumentError(prefix + "directory " + dir.string() +
                                " does not exist");
  }
  if (fs::exists(file, ec) ? ::access(path.c_str(), W_OK) != 0
                           : ::access(dir.c_str(), W_OK) != 0) {
    return InvalidArgumentError(prefix + "not writable (" +
                                std::strerror(errno) + ")");
  }
  return OkStatus();
}

std::string ShortNumber(double x) {
  char text[32];
  const std::to_chars_result end = std::to_chars(text, text + sizeof(text), x);
  return std::string(text, end.ptr);
}

int ReportError(const char* command, const Status& status) {
  std::cerr << "eraser " << command << ": " << status << "\n";
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage
                                                       : kExitFailure;
}

}  // namespace eraser::cli
