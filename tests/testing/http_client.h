// A small HTTP/1.1 client for tests, so tests need no external tool:
// well-formed exchanges on Boost.Beast (keep-alive), raw bytes on POSIX
// sockets with a deadline. Beast is compiled once, in http_client.cc: its
// templates took most of each serving test's compile time.
#ifndef ERASER_TESTS_TESTING_HTTP_CLIENT_H_
#define ERASER_TESTS_TESTING_HTTP_CLIENT_H_

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "testing/wait.h"

namespace eraser::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResult {
  int status = 0;  // 0 when the exchange failed
  std::string body;
  std::string error;
  Headers headers;  // of a well-formed exchange
  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
  nlohmann::json json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
};

// One keep-alive connection to 127.0.0.1:port, opened on first use.
class HttpConnection {
 public:
  explicit HttpConnection(int port,
                          std::chrono::milliseconds timeout = kPatience);
  ~HttpConnection();

  // `headers` add to or replace the defaults (Host, Content-Type: JSON); an
  // empty value removes one.
  HttpResult Send(const std::string& method, const std::string& target,
                  const std::string& body = "", const Headers& headers = {});

  // Writes raw bytes on a new connection and reads one response (for
  // malformed requests), giving up at the timeout. Plain POSIX sockets, since
  // Asio's blocking reads cannot time out.
  HttpResult SendRaw(const std::string& bytes);

 private:
  struct Stream;
  int port_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Stream> stream_;
};

// A single request on a fresh connection.
HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::string& body = "", const Headers& headers = {});

// A raw loopback connection (POSIX), for tests of connection handling;
// -1 if it cannot connect.
int RawConnect(int port);

// Reads until the peer closes or `timeout` passes; what arrived, and
// whether the peer closed.
std::pair<std::string, bool> ReadUntilClosed(int fd,
                                             std::chrono::milliseconds timeout);

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_HTTP_CLIENT_H_
