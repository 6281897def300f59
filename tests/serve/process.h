// Child processes for tests: `eraser serve` (ports read from its output)
// and Prometheus.
#ifndef ERASER_TESTS_SERVE_PROCESS_H_
#define ERASER_TESTS_SERVE_PROCESS_H_

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "testing/wait.h"

namespace eraser::testing {

class Process {
 public:
  // Starts argv[0] with argv; stdout and stderr are collected.
  explicit Process(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> args;
      for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        output_.append(buf, static_cast<std::size_t>(n));
      }
      close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    });
  }
  ~Process() {
    if (running()) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (reader_.joinable()) reader_.join();
  }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exited_; }
  std::string output() const {
    std::lock_guard<std::mutex> lock(mu_);
    return output_;
  }
  // Waits until the output matches `pattern`; returns group 1, or "" after
  // the timeout or once the process closed its output without a match.
  std::string WaitFor(const std::string& pattern,
                      std::chrono::seconds timeout = kPatience) {
    const std::regex re(pattern);
    std::string found;
    Eventually(
        [&] {
          std::lock_guard<std::mutex> lock(mu_);
          std::smatch m;
          if (std::regex_search(output_, m, re)) {
            found = m.size() > 1 ? m[1].str() : m[0].str();
            return true;
          }
          return closed_;
        },
        timeout);
    return found;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // The exit code, or 128 + signal.
  int Wait() {
    if (exited_) return status_;
    int raw = 0;
    waitpid(pid_, &raw, 0);
    exited_ = true;
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    if (reader_.joinable()) reader_.join();
    return status_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
  mutable std::mutex mu_;
  std::string output_;
  bool closed_ = false;  // the process closed its output (guarded by mu_)
  std::thread reader_;
};

// `eraser serve` on free loopback ports.
struct Server {
  std::unique_ptr<Process> process;
  int port = 0;
  int metrics_port = 0;
};

// `data_dir` is a directory or a postgresql:// URL.
inline Server StartServer(const std::string& data_dir,
                          const std::string& policy,
                          std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {
      ERASER_BINARY, "serve",       "--store",          data_dir,
      "--listen",    "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
      "--policy",    policy};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Server s;
  s.process = std::make_unique<Process>(argv);
  const std::string port =
      s.process->WaitFor("listening on 127.0.0.1:([0-9]+)");
  const std::string metrics =
      s.process->WaitFor("metrics on 127.0.0.1:([0-9]+)");
  if (!port.empty()) s.port = std::stoi(port);
  if (!metrics.empty()) s.metrics_port = std::stoi(metrics);
  return s;
}

// Resident memory of a process, in kB.
inline long ResidentKb(pid_t pid) {
  FILE* f =
      std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (f == nullptr) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb;
}

}  // namespace eraser::testing

#endif  // ERASER_TESTS_SERVE_PROCESS_H_
