// Runs the eraser binary and captures its output, for CLI tests.
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

inline CommandResult Eraser(const std::string& args) {
  CommandResult run;
  const std::string command = std::string(ERASER_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.output.append(buf, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

}  // namespace eraser::testing

#endif  // ERASER_TESTS_CLI_RUN_ERASER_H_
