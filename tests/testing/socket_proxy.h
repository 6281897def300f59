// A proxy of the test's own between clients and a server on a Unix socket
// (PostgreSQL's), that the test can cut: the kernel here has no netem. While
// blocked it forwards nothing either way and accepts no connection, so the
// bytes wait in the sockets' buffers, as behind a network partition that
// drops packets: the peers see no error, only silence. Healed, it forwards
// what waited and goes on.
#ifndef ERASER_TESTS_TESTING_SOCKET_PROXY_H_
#define ERASER_TESTS_TESTING_SOCKET_PROXY_H_

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace eraser::testing {

class SocketProxy {
 public:
  // Listens on the socket file `listen_path` and forwards every connection
  // to the socket file `target_path`. ok() tells whether it listens.
  SocketProxy(std::string listen_path, std::string target_path);
  // Closes every connection and removes the socket file.
  ~SocketProxy();
  SocketProxy(const SocketProxy&) = delete;
  SocketProxy& operator=(const SocketProxy&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  void Block();
  void Heal();

 private:
  void Run();
  void Wake();

  const std::string listen_path_;
  const std::string target_path_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe that interrupts poll()
  std::mutex mu_;
  bool blocked_ = false;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  std::thread thread_;
};

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_SOCKET_PROXY_H_
