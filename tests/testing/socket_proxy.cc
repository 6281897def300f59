#include "testing/socket_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace eraser::testing {
namespace {

bool Address(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.c_str(), path.size());
  return true;
}

// Writes all of `data`; false if the peer is gone.
bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

SocketProxy::SocketProxy(std::string listen_path, std::string target_path)
    : listen_path_(std::move(listen_path)),
      target_path_(std::move(target_path)) {
  sockaddr_un addr;
  if (!Address(listen_path_, &addr) || ::pipe(wake_) != 0) return;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::unlink(listen_path_.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 64) != 0) {
    ::close(fd);
    return;
  }
  // The socket file is for the server's user too (tests run as root and
  // may connect as another user).
  ::chmod(listen_path_.c_str(), 0777);
  listen_fd_ = fd;
  thread_ = std::thread([this] { Run(); });
}

SocketProxy::~SocketProxy() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(listen_path_.c_str());
  }
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void SocketProxy::Block() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = true;
  }
  Wake();
}

void SocketProxy::Heal() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = false;
  }
  Wake();
}

void SocketProxy::Wake() {
  const char c = 0;
  if (::write(wake_[1], &c, 1) < 0) {
    // The pipe is full: poll() wakes anyway.
  }
}

void SocketProxy::Run() {
  // Each connection is a pair (client, server); bytes read from one end are
  // written to the other.
  std::vector<std::pair<int, int>> pairs;
  char buffer[1 << 16];
  while (true) {
    bool blocked;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      blocked = blocked_;
    }
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}};
    if (!blocked) {
      fds.push_back({listen_fd_, POLLIN, 0});
      for (const auto& [a, b] : pairs) {
        fds.push_back({a, POLLIN, 0});
        fds.push_back({b, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents != 0) {
      while (::read(wake_[0], buffer, sizeof(buffer)) == sizeof(buffer)) {
      }
      continue;  // the state may have changed
    }
    if (blocked) continue;
    const std::size_t polled = pairs.size();
    if (fds[1].revents != 0) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        sockaddr_un addr;
        Address(target_path_, &addr);
        const int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (server >= 0 && ::connect(server, reinterpret_cast<sockaddr*>(&addr),
                                     sizeof(addr)) == 0) {
          pairs.emplace_back(client, server);
        } else {
          if (server >= 0) ::close(server);
          ::close(client);
        }
      }
    }
    std::vector<std::pair<int, int>> kept(pairs.begin() + polled, pairs.end());
    for (std::size_t i = 0; i < polled; ++i) {
      const auto [a, b] = pairs[i];
      bool open = true;
      for (int side = 0; side < 2 && open; ++side) {
        const pollfd& p = fds[2 + 2 * i + side];
        if (p.revents == 0) continue;
        const int from = side == 0 ? a : b;
        const int to = side == 0 ? b : a;
        const ssize_t n = ::read(from, buffer, sizeof(buffer));
        open = n > 0 && WriteAll(to, buffer, static_cast<std::size_t>(n));
      }
      if (open) {
        kept.emplace_back(a, b);
      } else {
        ::close(a);
        ::close(b);
      }
    }
    pairs.swap(kept);
  }
  for (const auto& [a, b] : pairs) {
    ::close(a);
    ::close(b);
  }
}

}  // namespace eraser::testing
