// Runs the eraser binary (or a script) and captures its output, for CLI
// tests.
#ifndef ERASER_TESTS_CLI_RUN_ERASER_H_
#define ERASER_TESTS_CLI_RUN_ERASER_H_

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace eraser::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command line; stderr is captured with stdout.
inline CommandResult Run(const std::string& command_line) {
  CommandResult run;
  const std::string command = command_line + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.output.append(buf, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

inline CommandResult Eraser(const std::string& args) {
  return Run(std::string(ERASER_BINARY) + " " + args);
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

}  // namespace eraser::testing

#endif  // ERASER_TESTS_CLI_RUN_ERASER_H_
