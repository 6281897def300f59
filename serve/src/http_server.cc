#include "eraser/serve/http_server.h"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>

#include "eraser/common/ascii.h"

namespace eraser::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string JsonText(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

Response JsonError(unsigned version, bool keep_alive, http::status status,
                   const std::string& message) {
  Response res{status, version};
  res.set(http::field::server, "eraser");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = JsonText(nlohmann::json{{"error", message}});
  res.prepare_payload();
  return res;
}

namespace {

// Why OpenSSL refused the PEM file at `path`: that it cannot be read, or
// OpenSSL's reason ("no start line": not PEM, "key values mismatch": the
// key is not the certificate's), not asio's "asio.ssl error".
std::string TlsFileProblem(const std::string& path,
                           const beast::error_code& ec) {
  errno = 0;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    return std::string("cannot read it (") + std::strerror(errno) + ")";
  }
  if (ec.category() == net::error::get_ssl_category()) {
    if (const char* reason =
            ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  return ec.message();
}

// A request refused on its header alone, before its body is read.
struct HeaderRefusal {
  http::status status = http::status::ok;  // ok: not refused
  std::string why;
};

// The body framing eraser reads unambiguously, or a refusal. Only the
// chunked transfer coding is implemented, applied once and alone: a body
// in another coding (gzip, ...) would otherwise be read as if it were
// plain (501), and "chunked, chunked", or Transfer-Encoding beside
// Content-Length, are framings a proxy in front may read differently from
// Beast (which reads a request as chunked only when chunked is its one
// last coding): a request smuggled inside another's body. 400.
// (Obsolete line folding is refused earlier, on the raw bytes: ReadHead.)
HeaderRefusal RefusedHeader(const http::request_header<>& header) {
  // Two Host fields name two servers; a proxy may route by either (RFC
  // 9112 3.2: 400).
  if (header.count(http::field::host) > 1) {
    return {http::status::bad_request, "send one Host header"};
  }
  const auto coding = header.find(http::field::transfer_encoding);
  if (coding == header.end()) return {};
  const std::string all(coding->value());
  const std::string shown = all.substr(0, 64);
  std::size_t chunked = 0;
  std::size_t start = 0;
  while (start <= all.size()) {
    const std::size_t end = std::min(all.find(',', start), all.size());
    std::string token = all.substr(start, end - start);
    token.erase(0, token.find_first_not_of(" \t"));
    token.erase(token.find_last_not_of(" \t") + 1);
    if (!EqualsIgnoringAsciiCase(token, "chunked")) {
      return {http::status::not_implemented,
              "Transfer-Encoding '" + shown +
                  "' is not implemented (only chunked is)"};
    }
    ++chunked;
    start = end + 1;
  }
  if (chunked != 1 || header.count(http::field::transfer_encoding) != 1) {
    return {http::status::bad_request,
            "Transfer-Encoding '" + shown + "' applies chunked more than once"};
  }
  if (header.find(http::field::content_length) != header.end()) {
    return {http::status::bad_request,
            "a request may not give both Transfer-Encoding and "
            "Content-Length"};
  }
  return {};
}

// One connection over `Stream` (a tcp_stream, or an ssl_stream over one):
// reads requests one after another, hands each to the handler, writes its
// response. All of it runs on the connection's strand.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... Args>
  Session(HttpServer* server, Args&&... args)
      : stream_(std::forward<Args>(args)...),
        server_(server),
        buffer_(server->options().header_limit + kLineSlack) {
    server_->ConnectionOpened();
  }
  ~Session() { server_->ConnectionClosed(); }

  void Start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::Begin, Self()));
  }

  // Closes the connection if it is waiting for a request.
  void CloseIfIdle() {
    net::post(stream_.get_executor(), [self = Self()] {
      if (!self->busy_) beast::get_lowest_layer(self->stream_).cancel();
    });
  }

 private:
  std::shared_ptr<Session> Self() { return this->shared_from_this(); }
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void Begin() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      Tcp().expires_after(server_->options().request_timeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = Self()](beast::error_code ec) {
                                if (ec) {
                                  // Plain HTTP to the TLS port, a bad client
                                  // hello, a timeout.
                                  self->server_->Refused("tls_handshake");
                                  return self->Close();
                                }
                                self->Read();
                              });
    }
  }

  void Read() {
    if (server_->shutting_down()) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options().body_limit);
    parser_->header_limit(
        static_cast<std::uint32_t>(server_->options().header_limit));
    // The whole header within idle_timeout of the previous response: a
    // client that trickles bytes is cut off like an idle one.
    Tcp().expires_after(server_->options().idle_timeout);
    busy_ = false;
    head_scanned_ = 0;
    ReadHead();
  }

  // Reads until the buffer holds the whole header, then checks its raw
  // bytes for obsolete line folding (RFC 9112 5.2: a line that starts with
  // a space or a tab continues the field before it), which Beast's parser
  // would join silently and a proxy in front may read differently: 400.
  // Then the parser reads the header from the buffer.
  void ReadHead() {
    // Empty lines before a request-line are skipped (RFC 9112 2.2: some
    // clients end a POST's body with an extra CRLF).
    while (buffer_.size() >= 2 &&
           std::string_view(static_cast<const char*>(buffer_.data().data()),
                            2) == "\r\n") {
      buffer_.consume(2);
      head_scanned_ = 0;
    }
    const std::string_view raw(static_cast<const char*>(buffer_.data().data()),
                               buffer_.size());
    // Each byte is scanned once for the header's end (from 3 bytes back: an
    // end split across reads), however the client segments its bytes.
    const std::size_t end =
        raw.find("\r\n\r\n", head_scanned_ < 3 ? 0 : head_scanned_ - 3);
    // A line ended by a bare LF would leave the client waiting for an end
    // that never comes (Beast reads CRLF only): 400 at once.
    for (std::size_t i = head_scanned_; i < std::min(end, raw.size()); ++i) {
      if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) {
        busy_ = true;
        return Write(JsonError(11, false, http::status::bad_request,
                               "a header line ends with a bare LF: end each "
                               "line with CRLF"),
                     /*counted=*/false);
      }
    }
    head_scanned_ = raw.size();
    if (end != std::string_view::npos) {
      for (std::size_t line = raw.find("\r\n"); line < end;
           line = raw.find("\r\n", line + 2)) {
        if (raw[line + 2] == ' ' || raw[line + 2] == '\t') {
          busy_ = true;
          return Write(JsonError(11, false, http::status::bad_request,
                                 "a header field is continued on the next "
                                 "line (obsolete line folding)"),
                       /*counted=*/false);
        }
      }
      return http::async_read_header(
          stream_, buffer_, *parser_,
          beast::bind_front_handler(&Session::OnHeader, Self()));
    }
    if (buffer_.size() > server_->options().header_limit) {
      return OnRead(http::error::header_limit, 0);
    }
    stream_.async_read_some(
        buffer_.prepare(4096),
        [self = Self()](beast::error_code ec, std::size_t n) {
          self->buffer_.commit(n);
          if (ec) return self->OnRead(ec, 0);
          self->ReadHead();
        });
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnRead(ec, 0);
    busy_ = true;
    if (HeaderRefusal refused = RefusedHeader(parser_->get());
        refused.status != http::status::ok) {
      return Write(JsonError(11, false, refused.status, refused.why),
                   /*counted=*/false);
    }
    Tcp().expires_after(server_->options().request_timeout);
    // A client that sent "Expect: 100-continue" waits for a 100 before it
    // sends the body (curl does, for bodies over 1 MiB): once the header
    // is accepted here and by the screen (its Host and token), say so
    // (RFC 9110 10.1.1); a refusal is sent instead, and the body is not
    // read.
    if (const auto expect = parser_->get().find(http::field::expect);
        expect != parser_->get().end() && parser_->get().version() >= 11 &&
        !parser_->is_done() &&
        beast::iequals(expect->value(), "100-continue")) {
      if (const auto& screen = server_->options().screen) {
        if (std::optional<Response> refused =
                screen(Request(parser_->get().base()))) {
          refused->keep_alive(false);
          return Write(std::move(*refused), /*counted=*/false);
        }
      }
      auto go_on = std::make_shared<http::response<http::empty_body>>(
          http::status::continue_, 11);
      return http::async_write(
          stream_, *go_on,
          [self = Self(), go_on](beast::error_code ec, std::size_t) {
            if (ec) return self->Close();
            self->ReadBody();
          });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, Self()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::ssl::error::stream_truncated) {
      return Close();
    }
    if (ec == beast::error::timeout) {
      // Idle keep-alive connections time out as a matter of course; only a
      // request cut off midway is a refusal.
      if (busy_ || buffer_.size() > 0) server_->Refused("timeout");
      return Close();
    }
    busy_ = true;
    if (ec == http::error::body_limit) {
      return Write(JsonError(11, false, http::status::payload_too_large,
                             "request body larger than " +
                                 std::to_string(server_->options().body_limit) +
                                 " bytes"),
                   /*counted=*/false);
    }
    if (ec == http::error::buffer_overflow) {
      // Beast holds a chunk's size line (with its extensions) or the
      // trailer whole before it parses it; neither counts against the
      // header or body limit, so the buffer's own bound refuses them.
      server_->Refused("header_too_large");
      return Write(
          JsonError(11, false, http::status::request_header_fields_too_large,
                    "a chunk size line or the trailer is larger than " +
                        std::to_string(buffer_.max_size()) + " bytes"),
          /*counted=*/false);
    }
    if (ec == http::error::header_limit) {
      server_->Refused("header_too_large");
      return Write(
          JsonError(11, false, http::status::request_header_fields_too_large,
                    "request header larger than " +
                        std::to_string(server_->options().header_limit) +
                        " bytes"),
          /*counted=*/false);
    }
    if (ec) {
      // A malformed request: answer 400 and drop the connection, since the
      // stream can no longer be trusted.
      if (ec.category() ==
          http::make_error_code(http::error::bad_method).category()) {
        return Write(JsonError(11, false, http::status::bad_request,
                               "malformed HTTP request: " + ec.message()),
                     /*counted=*/false);
      }
      return Close();
    }
    server_->RequestStarted();
    Request req = parser_->release();
    // The callback keeps the session alive until the response is written:
    // nothing else holds it while the handler works asynchronously. Called,
    // it moves its only reference into the I/O thread's work, so that the
    // session ends there and never on the handler's thread after Stop()
    // (which waits for the response, up to its bound, not for the handler
    // to destroy its callback). Its copy of the strand executor still dies
    // on the handler's thread, after the post: threads that call it must be
    // joined before the server is destroyed (Api::Join).
    server_->handler()(std::move(req), [self = Self()](Response res) mutable {
      const auto executor = self->stream_.get_executor();
      net::post(executor,
                [session = std::move(self), res = std::move(res)]() mutable {
                  session->Write(std::move(res), true);
                });
    });
  }

  void Write(Response res, bool counted) {
    if (server_->shutting_down()) res.keep_alive(false);
    auto shared = std::make_shared<Response>(std::move(res));
    Tcp().expires_after(server_->options().request_timeout);
    http::async_write(
        stream_, *shared,
        [self = Self(), shared, counted](beast::error_code ec, std::size_t) {
          if (counted) self->server_->RequestFinished();
          if (ec || !shared->keep_alive()) return self->Close();
          self->Read();
        });
  }

  void Close() {
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // What the read buffer holds beyond a header: a chunk's size line or a
  // trailer, and Beast's reads of up to 64 KiB. Its bound is the
  // connection's memory apart from its body (at most body_limit).
  static constexpr std::size_t kLineSlack = 64 * 1024;

  Stream stream_;
  HttpServer* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool busy_ = false;
  // Bytes of buffer_ ReadHead has searched for the header's end.
  std::size_t head_scanned_ = 0;
};

// Any session, for shutdown.
struct Closable {
  std::function<void()> close_if_idle;
  std::weak_ptr<void> alive;
};

constexpr char kTooManyConnections[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 68\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    "{\"error\": \"too many open connections\", "
    "\"reason\": \"connection_limit\"}";

}  // namespace

struct HttpServer::Impl {
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  std::chrono::milliseconds accept_backoff{0};
  std::optional<net::ssl::context> tls;
  Mutex sessions_mu;
  std::vector<Closable> sessions GUARDED_BY(sessions_mu);
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;

  template <typename S>
  void Track(const std::shared_ptr<S>& session) {
    MutexLock lock(&sessions_mu);
    // Forget connections that are gone.
    sessions.erase(
        std::remove_if(sessions.begin(), sessions.end(),
                       [](const Closable& c) { return c.alive.expired(); }),
        sessions.end());
    std::weak_ptr<S> weak = session;
    sessions.push_back({[weak] {
                          if (auto s = weak.lock()) s->CloseIfIdle();
                        },
                        session});
  }

  void Accept(HttpServer* server) {
    acceptor.async_accept(net::make_strand(ioc), [this, server](
                                                     beast::error_code ec,
                                                     tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;  // closed
      if (ec) {
        // Out of descriptors, or another transient error: back off
        // instead of retrying at once in a busy loop; connections
        // already open keep being served.
        server->AcceptFailed();
        accept_backoff =
            std::clamp(accept_backoff * 2, std::chrono::milliseconds(10),
                       std::chrono::milliseconds(1000));
        if (accept_backoff == std::chrono::milliseconds(10)) {
          std::fprintf(stderr,
                       "eraser serve: accept failed (%s); backing off\n",
                       ec.message().c_str());
        }
        accept_retry.expires_after(accept_backoff);
        accept_retry.async_wait([this, server](beast::error_code wait) {
          if (!wait && !server->shutting_down()) Accept(server);
        });
        return;
      }
      accept_backoff = std::chrono::milliseconds(0);
      if (server->shutting_down()) return;
      if (server->connections() >= server->options().max_connections) {
        server->Refused("connection_limit");
        // A short answer, then close; the socket lives until the write
        // is done.
        auto s = std::make_shared<tcp::socket>(std::move(socket));
        if (tls) {
          beast::error_code ignored;
          s->shutdown(tcp::socket::shutdown_both, ignored);
        } else {
          net::async_write(
              *s,
              net::buffer(kTooManyConnections, sizeof(kTooManyConnections) - 1),
              [s](beast::error_code, std::size_t) {
                beast::error_code ignored;
                s->shutdown(tcp::socket::shutdown_both, ignored);
              });
        }
      } else if (tls) {
        auto session =
            std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
                server, std::move(socket), *tls);
        Track(session);
        session->Start();
      } else {
        auto session = std::make_shared<Session<beast::tcp_stream>>(
            server, std::move(socket));
        Track(session);
        session->Start();
      }
      Accept(server);
    });
  }
};

HttpServer::HttpServer(const HttpServerOptions& options, Handler handler)
    : options_(options),
      handler_(std::move(handler)),
      impl_(std::make_unique<Impl>()) {}  // (impl_ is declared last)

HttpServer::~HttpServer() {
  BeginShutdown(std::chrono::milliseconds(0));
  Stop();
}

std::string ListenAddress::ToString() const {
  return (host.find(':') == std::string::npos ? host : "[" + host + "]") + ":" +
         std::to_string(port);
}

StatusOr<ListenAddress> ParseListenAddress(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgumentError("listen address must be host:port (got '" +
                                listen + "')");
  }
  ListenAddress out;
  out.host = listen.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' &&
      out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), IsAsciiDigit) ||
      std::stoul(port) > 65535) {
    return InvalidArgumentError("bad listen port in '" + listen +
                                "': give 0 to 65535 (0 picks a free one)");
  }
  out.port = static_cast<unsigned short>(std::stoul(port));
  if (EqualsIgnoringAsciiCase(out.host, "localhost")) {
    out.host = "127.0.0.1";  // IPv4 only
  }
  beast::error_code ec;
  net::ip::make_address(out.host, ec);
  if (ec) {
    return InvalidArgumentError(
        "bad listen host in '" + listen +
        "': give an IP address (127.0.0.1, 0.0.0.0, [::1], ...) or "
        "localhost; other names are not resolved");
  }
  return out;
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpServerOptions& options, Handler handler) {
  ASSIGN_OR_RETURN(const ListenAddress listen,
                   ParseListenAddress(options.listen));
  if (options.threads < 1 || options.threads > 64) {
    return InvalidArgumentError("HTTP threads must be 1 to 64 (got " +
                                std::to_string(options.threads) + ")");
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return InvalidArgumentError("TLS needs both a certificate and a key");
  }
  if (options.max_connections < 1 || options.header_limit < 1024 ||
      options.header_limit > (1u << 20) || options.idle_timeout.count() <= 0 ||
      options.request_timeout.count() <= 0) {
    return InvalidArgumentError(
        "max_connections must be positive, header_limit 1 KiB to 1 MiB, and "
        "the timeouts positive");
  }
  std::unique_ptr<HttpServer> server(
      new HttpServer(options, std::move(handler)));
  Impl& impl = *server->impl_;
  if (!options.tls_cert.empty()) {
    impl.tls.emplace(net::ssl::context::tls_server);
    beast::error_code tls_ec;
    impl.tls->set_options(
        net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
            net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
            net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
        tls_ec);
    if (!tls_ec) impl.tls->use_certificate_chain_file(options.tls_cert, tls_ec);
    if (tls_ec) {
      return InvalidArgumentError("TLS certificate " + options.tls_cert + ": " +
                                  TlsFileProblem(options.tls_cert, tls_ec));
    }
    impl.tls->use_private_key_file(options.tls_key, net::ssl::context::pem,
                                   tls_ec);
    if (tls_ec) {
      return InvalidArgumentError("TLS key " + options.tls_key + ": " +
                                  TlsFileProblem(options.tls_key, tls_ec));
    }
    if (SSL_CTX_set_cipher_list(impl.tls->native_handle(),
                                options.tls_ciphers.c_str()) != 1) {
      return InvalidArgumentError("TLS ciphers '" + options.tls_ciphers +
                                  "' name no cipher suite OpenSSL knows");
    }
  }
  beast::error_code ec;
  const tcp::endpoint endpoint{net::ip::make_address(listen.host), listen.port};
  impl.acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on " + options.listen + ": " +
                            ec.message());
  }
  server->port_ = impl.acceptor.local_endpoint().port();
  impl.work.emplace(impl.ioc.get_executor());
  impl.Accept(server.get());
  for (int i = 0; i < options.threads; ++i) {
    server->threads_.emplace_back([&impl] { impl.ioc.run(); });
  }
  return server;
}

void HttpServer::RequestStarted() { in_flight_.fetch_add(1); }

void HttpServer::RequestFinished() {
  if (in_flight_.fetch_sub(1) == 1) {
    MutexLock lock(&mu_);
    idle_cv_.SignalAll();
  }
}

bool HttpServer::BeginShutdown(std::chrono::milliseconds grace) {
  if (!shutting_down_.exchange(true)) {
    net::post(impl_->acceptor.get_executor(), [this] {
      beast::error_code ec;
      impl_->acceptor.close(ec);
    });
    net::post(impl_->accept_retry.get_executor(),
              [this] { impl_->accept_retry.cancel(); });
    MutexLock lock(&impl_->sessions_mu);
    for (const Closable& session : impl_->sessions) session.close_if_idle();
  }
  const Clock& clock = *SystemClock::Default();
  const TimePoint deadline = clock.Now() + grace;
  MutexLock lock(&mu_);
  while (in_flight_ != 0 && idle_cv_.WaitUntil(&mu_, clock, deadline)) {
  }
  return in_flight_ == 0;
}

void HttpServer::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    // The last responses (for example 503s after the engine closed) are
    // still being written.
    const Clock& clock = *SystemClock::Default();
    const TimePoint deadline = clock.Now() + std::chrono::seconds(5);
    while (in_flight_ != 0 && idle_cv_.WaitUntil(&mu_, clock, deadline)) {
    }
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (std::thread& t : threads_) t.join();
}

}  // namespace eraser::serve
