// The `eraser` executable's subcommands and their shared option handling.
#ifndef ERASER_CLI_COMMAND_H_
#define ERASER_CLI_COMMAND_H_

#include <boost/program_options.hpp>
#include <string>

#include "eraser/common/status.h"

namespace eraser::cli {

// Exit codes: 0 success, 1 the command failed, 2 bad usage or invalid
// input (kInvalidArgument).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  const char* name;
  const char* summary;
  // argv[0] is the subcommand name.
  int (*run)(int argc, char** argv);
};

// Parses argv against `options` (which gains --help). Returns kExitOk and
// fills `vm` when the command should run; otherwise the exit code to return
// (kExitOk after printing help, kExitUsage after printing the error).
// `positional`, when given, maps positional arguments to options.
int ParseCommandLine(
    int argc, char** argv, const char* usage,
    boost::program_options::options_description& options,
    boost::program_options::variables_map& vm, bool* help_printed,
    const boost::program_options::positional_options_description* positional =
        nullptr);

// Adds --store LOCATION (a data directory: RocksDB, one process; or a
// postgresql:// URL: PostgreSQL, shared by replicas) and its older name
// --data-dir, both filling `*location`; `help` says what the location is for.
void AddStoreOptions(boost::program_options::options_description& options,
                     std::string* location, const std::string& help);
// After parsing: kInvalidArgument when both names are given, or, when
// `required`, neither.
Status CheckStoreOptions(const boost::program_options::variables_map& vm,
                         bool required);

// kInvalidArgument when output file `path` (given as `option`) cannot be
// written: its directory is missing or not writable, or the path is a
// directory. Checked before the work whose result it is to hold, which
// would otherwise be lost at the end. OK for an empty path.
Status CheckOutputPath(const char* option, const std::string& path);

// `x` as --help shows a default: the shortest text that reads back as it
// ("0.05", not "0.050000000000000003").
std::string ShortNumber(double x);

// Prints "eraser <command>: <status>" to stderr and returns kExitFailure,
// or kExitUsage for kInvalidArgument.
int ReportError(const char* command, const Status& status);

int RunDataset(int argc, char** argv);
int RunTrain(int argc, char** argv);
int RunTrace(int argc, char** argv);
int RunReplay(int argc, char** argv);
int RunServe(int argc, char** argv);
int RunToken(int argc, char** argv);

}  // namespace eraser::cli

#endif  // ERASER_CLI_COMMAND_H_
