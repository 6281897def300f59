// `eraser serve`: the engine behind an HTTP JSON API, with Prometheus
// metrics, and a graceful shutdown on SIGTERM or SIGINT.
#include <signal.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "eraser/common/ascii.h"
#include "eraser/common/duration.h"
#include "eraser/engine/engine.h"
#include "eraser/metrics/engine_metrics.h"
#include "eraser/scheduler/policy.h"
#include "eraser/serve/api.h"
#include "eraser/serve/grpc_server.h"
#include "eraser/serve/http_server.h"
#include "eraser/unlearning/runtime.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser serve --store DIR|URL [options]\n"
    "Serves the trained ensemble in the store over HTTP (JSON API, see "
    "README):\n"
    "inference with certified answers, durable deletion requests, deletion\n"
    "status, health; Prometheus metrics on --metrics-listen. SIGTERM or\n"
    "SIGINT stops accepting, finishes in-flight requests (up to\n"
    "--shutdown-grace), leaves pending deletions durable and exits 0.\n"
    "Access control: --auth-file names a token file (see 'eraser token');\n"
    "SIGHUP reloads it. Without one the server listens on loopback only,\n"
    "unless --insecure. TLS: --tls-cert and --tls-key (PEM). --grpc-listen\n"
    "also serves the Open Inference Protocol's gRPC service and eraser's\n"
    "deletion service there, with the same tokens and certificate.";

// Whether `host` is a loopback address.
bool Loopback(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const boost::asio::ip::address address =
      boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

// The host names a request may give (lowercase, IPv6 in brackets): the
// listen address's, localhost on loopback, and --allow-host. None (any
// host) for a wildcard listen address without --allow-host: that server is
// reachable by any name, behind its tokens.
std::vector<std::string> AllowedHosts(const std::string& listen_host,
                                      std::vector<std::string> extra) {
  for (std::string& h : extra) h = AsciiLowercase(h);
  if (listen_host == "0.0.0.0" || listen_host == "::" ||
      listen_host == "[::]") {
    return extra;
  }
  std::string own = AsciiLowercase(listen_host);
  if (own.find(':') != std::string::npos && own.front() != '[') {
    own = "[" + own + "]";
  }
  extra.push_back(own);
  if (Loopback(listen_host)) extra.push_back("localhost");
  return extra;
}

}  // namespace

int RunServe(int argc, char** argv) {
  engine::EngineOptions engine_options;
  serve::HttpServerOptions http;
  std::string metrics_listen = "127.0.0.1:9464";
  std::string grpc_listen;
  std::string policy = engine_options.policy.name;
  std::string max_queue_delay =
      FormatDuration(engine_options.inference.max_queue_delay);
  std::string grace = "10s";
  std::string max_wait = FormatDuration(engine_options.inference.max_wait);
  std::string replica_lease = FormatDuration(engine_options.replica_lease);
  serve::ApiOptions api_options;
  std::vector<std::string> allow_hosts;
  std::string auth_file;
  bool insecure = false;
  std::string idle_timeout = FormatDuration(http.idle_timeout);
  std::string request_timeout = FormatDuration(http.request_timeout);
  std::string context =
      engine::ExecutionContextName(engine_options.unlearning.context);
  po::options_description options("Options");
  AddStoreOptions(options, &engine_options.data_dir,
                  "the store 'eraser train' built (required)");
  options.add_options()("listen",
                        po::value(&http.listen)->default_value(http.listen),
                        "HTTP address host:port, the host an IP address or "
                        "localhost (127.0.0.1) (port 0 picks a free one)")(
      "metrics-listen",
      po::value(&metrics_listen)->default_value(metrics_listen),
      "Prometheus /metrics address host:port; empty to disable")(
      "grpc-listen", po::value(&grpc_listen),
      "gRPC address host:port (port 0 picks a free one): the Open "
      "Inference Protocol's GRPCInferenceService and eraser.v1.Deletions; "
      "off by default")("policy", po::value(&policy)->default_value(policy),
                        "policy string or preset (see 'eraser replay --help')")(
      "inference-threads",
      po::value(&engine_options.inference.threads)
          ->default_value(engine_options.inference.threads),
      "inference worker threads")(
      "unlearning-threads",
      po::value(&engine_options.unlearning.concurrency)
          ->default_value(engine_options.unlearning.concurrency),
      "retrainings at once")(
      "no-borrow", po::bool_switch(),
      "never let a retraining with a deadline at risk take the inference "
      "core")("no-idle-cores", po::bool_switch(),
              "run retrainings only on the unlearning slots, never on an idle "
              "inference core")(
      "log-retrainings",
      po::bool_switch(&engine_options.unlearning.log_retrainings),
      "print a line on stderr for each retraining started and applied")(
      "borrowed-inference-share",
      po::value(&engine_options.unlearning.borrowed_inference_share)
          ->default_value(
              engine_options.unlearning.borrowed_inference_share,
              ShortNumber(engine_options.unlearning.borrowed_inference_share)),
      "while a retraining borrows the inference core, the share of "
      "time inference may still compute (0: it pauses)")(
      "max-batch-size",
      po::value(&engine_options.inference.max_batch_size)
          ->default_value(engine_options.inference.max_batch_size),
      "dynamic batching: largest batch")(
      "max-queue-delay",
      po::value(&max_queue_delay)->default_value(max_queue_delay),
      "dynamic batching: longest wait for a batch to fill")(
      "queue-capacity",
      po::value(&engine_options.inference.queue_capacity)
          ->default_value(engine_options.inference.queue_capacity),
      "requests in flight before 429")(
      "max-wait", po::value(&max_wait)->default_value(max_wait),
      "longest a request waits for unlearning before its fallback answer "
      "(partial, or 503 rejected)")(
      "replica-lease", po::value(&replica_lease)->default_value(replica_lease),
      "with a postgresql:// store: this replica answers only while it "
      "holds a lease this long, renewed every third of it; a deletion "
      "waits at most about this long for a replica that cannot be "
      "reached (docs/scale-out.md)")(
      "context", po::value(&context)->default_value(context),
      "concurrent or exclusive (inference pauses while retraining)")(
      "audit", po::bool_switch(&engine_options.audit),
      "store every answer's certificate record")(
      "http-threads", po::value(&http.threads)->default_value(http.threads),
      "HTTP I/O threads")(
      "body-limit", po::value(&http.body_limit)->default_value(http.body_limit),
      "largest request body in bytes (larger: 413)")(
      "shutdown-grace", po::value(&grace)->default_value(grace),
      "how long in-flight requests may take to finish after SIGTERM")(
      "model-name",
      po::value(&api_options.model_name)->default_value(api_options.model_name),
      "the model's name in the Open Inference Protocol routes "
      "(/v2/models/NAME)")(
      "auth-file", po::value(&auth_file),
      "token file: bearer tokens (stored hashed) and their scopes; SIGHUP "
      "reloads it")(
      "insecure", po::bool_switch(&insecure),
      "allow listening on a non-loopback address without --auth-file")(
      "expose-certificates", po::bool_switch(&api_options.expose_certificates),
      "return certificate details (affected shards, deletion watermark, "
      "model versions, margin) to every caller, not only admin tokens")(
      "tls-cert", po::value(&http.tls_cert), "TLS certificate chain (PEM)")(
      "tls-key", po::value(&http.tls_key), "TLS private key (PEM)")(
      "tls-ciphers",
      po::value(&http.tls_ciphers)->default_value(http.tls_ciphers),
      "TLS 1.2 cipher suites (OpenSSL list syntax); TLS 1.3 keeps its "
      "defaults")(
      "allow-host", po::value(&allow_hosts)->composing(),
      "a host name clients may reach this server by, besides its listen "
      "address (and localhost on loopback); repeat for more (Host header "
      "otherwise: 421)")(
      "allow-origin", po::value(&api_options.allowed_origins)->composing(),
      "a browser origin (https://app.example) allowed to call the API, "
      "with CORS preflights answered; repeat for more (none by default)")(
      "max-connections",
      po::value(&http.max_connections)->default_value(http.max_connections),
      "connections open at once; one more is answered 503")(
      "header-limit",
      po::value(&http.header_limit)->default_value(http.header_limit),
      "largest request header in bytes (larger: 431)")(
      "idle-timeout", po::value(&idle_timeout)->default_value(idle_timeout),
      "an idle connection, or one whose request header has not arrived "
      "whole, closes after this")(
      "request-timeout",
      po::value(&request_timeout)->default_value(request_timeout),
      "a request body, and a response, must be through within this");
  po::variables_map vm;
  bool help = false;
  if (int rc = ParseCommandLine(argc, argv, kUsage, options, vm, &help);
      rc != kExitOk || help) {
    return rc;
  }
  if (Status s = CheckStoreOptions(vm, /*required=*/true); !s.ok()) {
    return ReportError("serve", s);
  }
  StatusOr<scheduler::Policy> parsed_policy = scheduler::ParsePolicy(policy);
  if (!parsed_policy.ok()) return ReportError("serve", parsed_policy.status());
  engine_options.policy = *parsed_policy;
  engine_options.unlearning.borrow_inference_core = !vm["no-borrow"].as<bool>();
  engine_options.unlearning.use_idle_cores = !vm["no-idle-cores"].as<bool>();
  StatusOr<Duration> delay = ParseDuration(max_queue_delay);
  if (!delay.ok()) return ReportError("serve", delay.status());
  engine_options.inference.max_queue_delay = *delay;
  StatusOr<Duration> wait = ParseDuration(max_wait);
  if (!wait.ok()) return ReportError("serve", wait.status());
  engine_options.inference.max_wait = *wait;
  StatusOr<Duration> lease = ParseDuration(replica_lease);
  if (!lease.ok()) return ReportError("serve", lease.status());
  engine_options.replica_lease = *lease;
  for (const auto& [text, out] :
       {std::pair{&idle_timeout, &http.idle_timeout},
        std::pair{&request_timeout, &http.request_timeout}}) {
    StatusOr<Duration> d = ParseDuration(*text);
    if (!d.ok()) return ReportError("serve", d.status());
    *out = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  // Each address as the servers read it (localhost is 127.0.0.1), an IPv6
  // host in brackets.
  std::string listen_host;
  for (const std::string* address : {&http.listen, &grpc_listen}) {
    if (address->empty()) continue;
    StatusOr<serve::ListenAddress> parsed = serve::ParseListenAddress(*address);
    if (!parsed.ok()) return ReportError("serve", parsed.status());
    const std::string bound = parsed->ToString();
    const std::string host = bound.substr(0, bound.rfind(':'));
    if (address == &http.listen) listen_host = host;
    if (auth_file.empty() && !insecure && !Loopback(host)) {
      return ReportError(
          "serve",
          InvalidArgumentError(
              "refusing to listen on " + *address +
              " without --auth-file: anyone who reaches it could delete any "
              "owner's data; give a token file, or --insecure if a proxy in "
              "front does the access control"));
    }
  }
  if (api_options.model_name.empty() || api_options.model_name == "stats" ||
      api_options.model_name.find('/') != std::string::npos) {
    return ReportError(
        "serve",
        InvalidArgumentError("--model-name must be a name without '/', and not "
                             "'stats' (GET /v2/models/stats is every model's "
                             "statistics)"));
  }
  api_options.allowed_hosts = AllowedHosts(listen_host, allow_hosts);
  std::unique_ptr<serve::Authenticator> auth;
  if (!auth_file.empty()) {
    StatusOr<std::unique_ptr<serve::Authenticator>> opened =
        serve::Authenticator::Open(auth_file);
    if (!opened.ok()) return ReportError("serve", opened.status());
    auth = std::move(opened).value();
    api_options.auth = auth.get();
  }
  StatusOr<Duration> grace_duration = ParseDuration(grace);
  if (!grace_duration.ok())
    return ReportError("serve", grace_duration.status());
  StatusOr<engine::ExecutionContext> parsed_context =
      engine::ParseExecutionContext(context);
  if (!parsed_context.ok())
    return ReportError("serve", parsed_context.status());
  engine_options.unlearning.context = *parsed_context;

  // Signals are taken by sigwait below, in this thread only: every thread
  // started from here on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const unlearning::BlasInfo blas = unlearning::InitComputeRuntime();
  if (blas.kind == unlearning::BlasInfo::Kind::kReference) {
    std::fprintf(stderr,
                 "WARNING: LibTorch is using the slow reference BLAS; "
                 "run scripts/setup.\n");
  }
  StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Open(engine_options);
  if (!engine.ok()) return ReportError("serve", engine.status());

  std::unique_ptr<serve::HttpServer> metrics_server;
  if (!metrics_listen.empty()) {
    serve::HttpServerOptions metrics_http;
    metrics_http.listen = metrics_listen;
    metrics_http.threads = 1;
    StatusOr<std::unique_ptr<serve::HttpServer>> m = serve::HttpServer::Start(
        metrics_http,
        serve::MetricsHandler(
            (*engine)->metrics(),
            AllowedHosts(metrics_listen.substr(0, metrics_listen.rfind(':')),
                         allow_hosts)));
    if (!m.ok()) return ReportError("serve", m.status());
    metrics_server = std::move(m).value();
  }
  serve::Api api(engine->get(), api_options);
  std::shared_ptr<metrics::EngineMetrics> metrics = (*engine)->metrics();
  http.on_refused = [metrics](std::string_view reason) {
    metrics->HttpRefused(reason);
  };
  http.screen = [&api](const serve::Request& header) {
    return api.Screen(header);
  };
  StatusOr<std::unique_ptr<serve::HttpServer>> server =
      serve::HttpServer::Start(
          http, [&api](serve::Request req, serve::Respond respond) {
            api.Handle(std::move(req), std::move(respond));
          });
  if (!server.ok()) return ReportError("serve", server.status());
  std::unique_ptr<serve::GrpcServer> grpc_server;
  if (!grpc_listen.empty()) {
    serve::GrpcServerOptions grpc_options;
    grpc_options.listen = grpc_listen;
    grpc_options.tls_cert = http.tls_cert;
    grpc_options.tls_key = http.tls_key;
    grpc_options.max_message_bytes = http.body_limit;
    grpc_options.idle_timeout = http.idle_timeout;
    grpc_options.handshake_timeout = http.request_timeout;
    StatusOr<std::unique_ptr<serve::GrpcServer>> g =
        serve::GrpcServer::Start(grpc_options, &api);
    if (!g.ok()) return ReportError("serve", g.status());
    grpc_server = std::move(g).value();
  }

  std::printf("eraser serve: listening on %s:%d (%s), policy %s, %zu shards\n",
              listen_host.c_str(), (*server)->port(),
              http.tls_cert.empty() ? "http" : "https",
              (*engine)->policy().c_str(), (*engine)->num_shards());
  if (grpc_server) {
    std::printf("eraser serve: gRPC on %s:%d (%s)\n",
                grpc_listen.substr(0, grpc_listen.rfind(':')).c_str(),
                grpc_server->port(),
                http.tls_cert.empty() ? "plaintext" : "TLS");
  }
  if (auth) {
    std::printf("eraser serve: access control on: %zu tokens from %s\n",
                auth->tokens()->size(), auth_file.c_str());
  } else {
    // A warning goes to stderr, where a log collector looks for them.
    std::fprintf(
        stderr,
        "eraser serve: WARNING: no --auth-file: every caller may infer, "
        "delete and drain%s\n",
        insecure ? " (--insecure: on a non-loopback address)" : "");
  }
  if (metrics_server) {
    std::printf("eraser serve: metrics on %s:%d/metrics\n",
                metrics_listen.substr(0, metrics_listen.rfind(':')).c_str(),
                metrics_server->port());
  }
  std::fflush(stdout);

  int signal_number = 0;
  while (true) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    // A reload that failed goes to stderr, beside the server's other
    // errors, where a log collector watching for them finds it.
    if (!auth) {
      std::fprintf(stderr, "eraser serve: SIGHUP ignored: no --auth-file\n");
    } else if (Status reloaded = auth->Reload(); reloaded.ok()) {
      std::printf("eraser serve: SIGHUP: %zu tokens from %s\n",
                  auth->tokens()->size(), auth_file.c_str());
    } else {
      std::fprintf(stderr,
                   "eraser serve: SIGHUP: %s; the previous tokens stay\n",
                   reloaded.ToString().c_str());
    }
    std::fflush(stdout);
  }
  std::printf("eraser serve: %s, shutting down\n",
              signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  api.SetDraining();
  const TimePoint shutdown_start = SystemClock::Default()->Now();
  (*server)->BeginShutdown(
      std::chrono::duration_cast<std::chrono::milliseconds>(*grace_duration));
  // Whatever is still waiting is answered 503; a running retraining gets
  // what is left of the grace, then stops (its deletions stay pending, like
  // every pending deletion, durable in the log).
  const Duration left = std::max(
      Duration(0),
      *grace_duration - (SystemClock::Default()->Now() - shutdown_start));
  // gRPC's shutdown returns once every call is answered; the engine's
  // Close answers what is still waiting.
  std::thread grpc_stop([&grpc_server, left] {
    if (grpc_server) grpc_server->Shutdown(left);
  });
  (*engine)->Close(left);
  grpc_stop.join();
  (*server)->Stop();
  api.Join();
  if (metrics_server) {
    metrics_server->BeginShutdown(std::chrono::milliseconds(0));
    metrics_server->Stop();
  }
  std::printf("eraser serve: stopped; %zu deletions pending\n",
              (*engine)->Stats().pending_deletions);
  return kExitOk;
}

}  // namespace eraser::cli
