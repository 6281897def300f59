// A fixture for tests of the server over real loopback sockets: an engine
// on a copy of the template data directory, the Api over an HttpServer on
// 127.0.0.1, and a token file the test adds tokens to.
#ifndef ERASER_TESTS_SERVE_SERVED_H_
#define ERASER_TESTS_SERVE_SERVED_H_

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "../engine/engine_fixture.h"
#include "eraser/serve/api.h"
#include "eraser/serve/auth.h"
#include "eraser/serve/http_server.h"

namespace eraser::serve::testing {

class Served : public ::testing::Test {
 protected:
  // `tune`, when given, changes the engine's options before it opens.
  void Start(ApiOptions api = {}, HttpServerOptions http = {},
             std::function<void(engine::EngineOptions*)> tune = nullptr) {
    engine::EngineOptions options = engine::testing::Options(
        engine::testing::CopyTemplate(dir_), "eraser:lazy,partial,deadline=1h");
    if (tune) tune(&options);
    StatusOr<std::unique_ptr<engine::Engine>> e = engine::Engine::Open(options);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
    api_ = std::make_unique<Api>(engine_.get(), api);
    http.listen = "127.0.0.1:0";
    std::shared_ptr<metrics::EngineMetrics> metrics = engine_->metrics();
    http.on_refused = [metrics](std::string_view r) {
      metrics->HttpRefused(r);
    };
    http.screen = [this](const Request& header) {
      return api_->Screen(header);
    };
    StatusOr<std::unique_ptr<HttpServer>> s =
        HttpServer::Start(http, [this](Request r, Respond respond) {
          api_->Handle(std::move(r), std::move(respond));
        });
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) {
      server_->BeginShutdown(std::chrono::milliseconds(0));
      if (engine_) engine_->Close();
      server_->Stop();
    }
    // The Api's threads first: their work holds the server's connections.
    api_.reset();
    server_.reset();
    engine_.reset();
  }
  // A token with `scopes`, added to the token file.
  std::string AddToken(const std::string& scopes, const std::string& name) {
    StatusOr<std::string> token = NewToken();
    EXPECT_TRUE(token.ok());
    std::ofstream(token_file_, std::ios::app)
        << HashToken(*token) << " " << scopes << " " << name << "\n";
    return *token;
  }

  // `api` with access control on, from the token file as AddToken left it;
  // auth_ is the authenticator (to Reload()).
  ApiOptions WithTokens(ApiOptions api = {}) {
    StatusOr<std::unique_ptr<Authenticator>> auth =
        Authenticator::Open(token_file_);
    EXPECT_TRUE(auth.ok()) << auth.status();
    if (auth.ok()) {
      auth_ = std::move(auth).value();
      api.auth = auth_.get();
    }
    return api;
  }

  eraser::testing::TempDir dir_;
  std::string token_file_ = dir_.Child("tokens");
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

}  // namespace eraser::serve::testing

#endif  // ERASER_TESTS_SERVE_SERVED_H_
