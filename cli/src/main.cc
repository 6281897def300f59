// eraser: an unlearning-aware inference serving engine. This is the command
// line front end; each subcommand lives in its own *_command.cc file.
#include <cstring>
#include <iostream>
#include <new>

#include "command.h"

namespace {

using eraser::cli::Command;

constexpr Command kCommands[] = {
    {"replay", "replay a workload against several policies, compare them",
     eraser::cli::RunReplay},
    {"serve", "serve the engine over HTTP with Prometheus metrics",
     eraser::cli::RunServe},
    {"token", "make a bearer token for serve --auth-file",
     eraser::cli::RunToken},
    {"trace", "generate a request trace file", eraser::cli::RunTrace},
    {"dataset", "read and validate a dataset, print a summary",
     eraser::cli::RunDataset},
    {"train", "build a data directory: ingest, partition, train the ensemble",
     eraser::cli::RunTrain},
};

void PrintUsage(std::ostream& os) {
  os << "Usage: eraser <command> [options]\n\n"
        "eraser serves predictions from a sharded (SISA) ensemble while\n"
        "honouring deletion requests, certifying answers that pending\n"
        "deletions cannot change.\n\nCommands:\n";
  for (const Command& c : kCommands) {
    os << "  " << c.name << std::string(10 - std::strlen(c.name), ' ')
       << c.summary << "\n";
  }
  os << "\nRun 'eraser <command> --help' for a command's options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return eraser::cli::kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(std::cout);
    return eraser::cli::kExitOk;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const std::bad_alloc&) {
      // Reading an input larger than memory (or endless, such as a
      // device): an error, not an abort.
      std::cerr << "eraser " << name
                << ": RESOURCE_EXHAUSTED: out of memory (an input larger "
                   "than the memory the process may use?)\n";
      return eraser::cli::kExitFailure;
    }
  }
  std::cerr << "eraser: unknown command '" << name << "'\n\n";
  PrintUsage(std::cerr);
  return eraser::cli::kExitUsage;
}
