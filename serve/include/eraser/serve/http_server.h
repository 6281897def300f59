// A small asynchronous HTTP/1.1 server on Boost.Beast: one io_context run by
// a few threads, keep-alive sessions, optional TLS (OpenSSL through
// Boost.Asio's SSL stream), and a graceful shutdown that stops accepting,
// lets in-flight requests finish and closes idle connections. Hardened for
// exposure: a cap on open connections, header and body size limits,
// timeouts that disconnect idle and slow clients (all I/O is asynchronous,
// so a slow client holds no thread), and accept errors (out of file
// descriptors) backed off with a timer. What a request means is up to the
// handler.
#ifndef ERASER_SERVE_HTTP_SERVER_H_
#define ERASER_SERVE_HTTP_SERVER_H_

#include <atomic>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eraser/common/mutex.h"
#include "eraser/common/statusor.h"

namespace eraser::serve {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
// Delivers the response; may be called from any thread, exactly once.
using Respond = std::function<void(Response)>;
// Called on an I/O thread; must not block (hand slow work to another
// thread and call `respond` from there).
using Handler = std::function<void(Request, Respond)>;

// A listen address "host:port" (an IP address, an IPv6 one in brackets or
// bare before the last colon, or localhost, read as 127.0.0.1: no other
// name is resolved; port 0 to 65535, 0 picking one): its host without
// brackets and its port, or kInvalidArgument naming what is wrong. The
// HTTP and gRPC servers read their addresses with it.
struct ListenAddress {
  std::string host;
  unsigned short port = 0;
  // host:port again, the host in brackets when it is IPv6 (gRPC's form).
  std::string ToString() const;
};
StatusOr<ListenAddress> ParseListenAddress(const std::string& listen);

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks one
  int threads = 2;                        // I/O threads
  std::size_t body_limit = 1 << 20;       // larger bodies get 413
  std::size_t header_limit = 16 << 10;    // larger headers get 431
  // A connection waiting for a request closes after idle_timeout; a
  // request's header must arrive whole within it (a client sending a byte
  // a second is cut off), and its body within request_timeout after that.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  // Connections open at once; one more is answered 503 and closed.
  std::size_t max_connections = 1024;
  // PEM files; both or neither. With them the port speaks TLS only (TLS
  // 1.2 or later); a plain HTTP request to it is closed.
  std::string tls_cert;
  std::string tls_key;
  // The TLS 1.2 cipher suites, in OpenSSL's list syntax: by default only
  // ephemeral key exchange (forward secrecy) with AEAD ciphers. TLS 1.3's
  // suites all qualify and keep OpenSSL's defaults.
  std::string tls_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
  // Given the header of a request whose client sent "Expect: 100-continue"
  // (with the body empty), before the server answers "100 Continue": a
  // response refuses the request instead, and the connection closes after
  // it (the body is never read; RFC 9110 10.1.1). Called on an I/O thread;
  // must not block. Unset: every header the server accepts gets its 100.
  std::function<std::optional<Response>(const Request&)> screen;
  // Told of each refused connection or request the server itself refuses
  // ("connection_limit", "header_too_large", "timeout", "tls_handshake").
  std::function<void(std::string_view reason)> on_refused;
};

// JSON text for a response. Invalid UTF-8 (request bytes echoed in a
// message) is replaced, never thrown on.
std::string JsonText(const nlohmann::json& value);

// A JSON error response: {"error": message}.
Response JsonError(unsigned version, bool keep_alive,
                   boost::beast::http::status status,
                   const std::string& message);

class HttpServer {
 public:
  static StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options, Handler handler);
  // Stops if still running.
  ~HttpServer();

  int port() const { return port_; }
  bool shutting_down() const { return shutting_down_.load(); }
  std::size_t in_flight() const { return in_flight_.load(); }
  std::size_t connections() const { return connections_.load(); }
  // Accept errors seen (for example out of file descriptors).
  uint64_t accept_errors() const { return accept_errors_.load(); }

  // Stops accepting, closes idle connections (a connection in the middle of
  // a request closes after its response), and waits up to `grace` for
  // in-flight requests to be answered. True if none is left.
  bool BeginShutdown(std::chrono::milliseconds grace);
  // Waits for the last responses to be written, then stops the I/O threads.
  void Stop();

  // Used by sessions.
  void RequestStarted();
  void RequestFinished();
  void ConnectionOpened() { connections_.fetch_add(1); }
  void ConnectionClosed() { connections_.fetch_sub(1); }
  void Refused(std::string_view reason) const {
    if (options_.on_refused) options_.on_refused(reason);
  }
  void AcceptFailed() { accept_errors_.fetch_add(1); }
  const HttpServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }

 private:
  struct Impl;
  HttpServer(const HttpServerOptions& options, Handler handler);

  const HttpServerOptions options_;
  const Handler handler_;
  int port_ = 0;
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> connections_{0};
  std::atomic<uint64_t> accept_errors_{0};
  Mutex mu_;
  CondVar idle_cv_;
  std::vector<std::thread> threads_;
  bool stopped_ GUARDED_BY(mu_) = false;
  // Last: destroyed first, with the sessions it still holds, while the
  // counters they update are alive.
  std::unique_ptr<Impl> impl_;
};

}  // namespace eraser::serve

#endif  // ERASER_SERVE_HTTP_SERVER_H_
