#include "eraser/serve/http_server.h"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <nlohmann/json.hpp>
#include <optional>

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

// One connection: reads requests one after another, hands each to the
// handler, writes its response. All of it runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer* server)
      : stream_(std::move(socket)), server_(server) {}

  void Start() {
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

  // Closes the connection if it is waiting for a request.
  void CloseIfIdle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->stream_.cancel();
    });
  }

 private:
  void Read() {
    if (server_->shutting_down()) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options().body_limit);
    stream_.expires_after(server_->options().idle_timeout);
    busy_ = false;
    http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream ||
        ec == net::error::operation_aborted || ec == beast::error::timeout) {
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
    // nothing else holds it while the handler works asynchronously.
    server_->handler()(std::move(req),
                       [self = shared_from_this()](Response res) {
                         net::post(self->stream_.get_executor(),
                                   [self, res = std::move(res)]() mutable {
                                     self->Write(std::move(res), true);
                                   });
                       });
  }

  void Write(Response res, bool counted) {
    if (server_->shutting_down()) res.keep_alive(false);
    auto shared = std::make_shared<Response>(std::move(res));
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *shared,
                      [self = shared_from_this(), shared, counted](
                          beast::error_code ec, std::size_t) {
                        if (counted) self->server_->RequestFinished();
                        if (ec || !shared->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  HttpServer* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool busy_ = false;
};

}  // namespace

struct HttpServer::Impl {
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  Mutex sessions_mu;
  std::vector<std::weak_ptr<Session>> sessions GUARDED_BY(sessions_mu);
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;

  void Accept(HttpServer* server) {
    acceptor.async_accept(
        net::make_strand(ioc),
        [this, server](beast::error_code ec, tcp::socket socket) {
          if (ec) {
            if (ec == net::error::operation_aborted) return;  // closed
          } else if (server->shutting_down()) {
            return;
          } else {
            auto session = std::make_shared<Session>(std::move(socket), server);
            {
              MutexLock lock(&sessions_mu);
              // Forget connections that are gone.
              sessions.erase(
                  std::remove_if(sessions.begin(), sessions.end(),
                                 [](const auto& w) { return w.expired(); }),
                  sessions.end());
              sessions.push_back(session);
            }
            session->Start();
          }
          Accept(server);
        });
  }
};

HttpServer::HttpServer(const HttpServerOptions& options, Handler handler)
    : options_(options),
      handler_(std::move(handler)),
      impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() {
  BeginShutdown(std::chrono::milliseconds(0));
  Stop();
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpServerOptions& options, Handler handler) {
  const std::size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos || options.threads < 1 ||
      options.threads > 64) {
    return InvalidArgumentError("listen address must be host:port (got '" +
                                options.listen + "')");
  }
  std::unique_ptr<HttpServer> server(
      new HttpServer(options, std::move(handler)));
  Impl& impl = *server->impl_;
  beast::error_code ec;
  const net::ip::address address =
      net::ip::make_address(options.listen.substr(0, colon), ec);
  if (ec) {
    return InvalidArgumentError("bad listen host in '" + options.listen +
                                "': " + ec.message());
  }
  unsigned long port = 0;
  try {
    port = std::stoul(options.listen.substr(colon + 1));
  } catch (const std::exception&) {
    port = 70000;
  }
  if (port > 65535) {
    return InvalidArgumentError("bad listen port in '" + options.listen + "'");
  }
  const tcp::endpoint endpoint{address, static_cast<unsigned short>(port)};
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
    MutexLock lock(&impl_->sessions_mu);
    for (const auto& weak : impl_->sessions) {
      if (auto session = weak.lock()) session->CloseIfIdle();
    }
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
