#include "testing/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace eraser::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

struct HttpConnection::Stream {
  net::io_context ioc;
  std::unique_ptr<beast::tcp_stream> tcp;
};

HttpConnection::HttpConnection(int port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout), stream_(std::make_unique<Stream>()) {}

HttpConnection::~HttpConnection() = default;

HttpResult HttpConnection::Send(const std::string& method,
                                const std::string& target,
                                const std::string& body,
                                const Headers& headers) {
  HttpResult result;
  try {
    if (!stream_->tcp) {
      stream_->tcp = std::make_unique<beast::tcp_stream>(stream_->ioc);
      stream_->tcp->connect(
          net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                 static_cast<unsigned short>(port_)));
    }
    http::request<http::string_body> req{http::string_to_verb(method), target,
                                         11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    // An empty value removes the header (a request without Content-Type).
    for (const auto& [name, value] : headers) {
      if (value.empty()) {
        req.erase(name);
      } else {
        req.set(name, value);
      }
    }
    req.body() = body;
    req.prepare_payload();
    http::write(*stream_->tcp, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(*stream_->tcp, buffer, parser);
    result.status = parser.get().result_int();
    result.body = parser.get().body();
    for (const auto& field : parser.get()) {
      result.headers.emplace_back(std::string(field.name_string()),
                                  std::string(field.value()));
    }
    if (!parser.get().keep_alive()) stream_->tcp.reset();
  } catch (const std::exception& e) {
    result.error = e.what();
    stream_->tcp.reset();
  }
  return result;
}

HttpResult HttpConnection::SendRaw(const std::string& bytes) {
  HttpResult result;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    result.error = "connect failed";
    ::close(fd);
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (std::size_t sent = 0; sent < bytes.size();) {
    const ssize_t n =
        ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close early
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 ||
        ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      result.error = "timed out";
      break;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
    const std::size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    const std::size_t cl = in.find("Content-Length: ");
    const std::size_t length = cl != std::string::npos && cl < end
                                   ? std::stoul(in.substr(cl + 16))
                                   : 0;
    if (in.size() >= end + 4 + length) break;
  }
  ::close(fd);
  if (in.rfind("HTTP/1.1 ", 0) == 0 && in.size() >= 12) {
    result.status = std::stoi(in.substr(9, 3));
    const std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) result.body = in.substr(end + 4);
  } else if (result.error.empty()) {
    result.error = "no response";
  }
  return result;
}

HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::string& body, const Headers& headers) {
  return HttpConnection(port).Send(method, target, body, headers);
}

int RawConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::pair<std::string, bool> ReadUntilClosed(
    int fd, std::chrono::milliseconds timeout) {
  std::string in;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 ||
        ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return {in, false};
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return {in, true};
    in.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace eraser::testing
