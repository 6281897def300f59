// Hostile and careless clients over real sockets: what a browser page of
// another site can send (a cross-origin POST with a "simple" content type,
// a Host it chose by DNS rebinding), floods of refused requests, a v2
// shape whose product wraps 2^64, weak TLS suites, what /readyz and the
// model metadata tell a caller without admin scope, Authorization headers
// in other spellings or twice, HEAD, and request forms docs/serve.md does
// not allow. Each would pass without its fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../engine/engine_fixture.h"
#include "eraser/serve/api.h"
#include "eraser/serve/auth.h"
#include "eraser/serve/http_server.h"
#include "process.h"
#include "served.h"
#include "testing/http_client.h"

namespace eraser::serve {
namespace {

using eraser::testing::Headers;
using eraser::testing::Http;
using eraser::testing::HttpConnection;
using eraser::testing::HttpResult;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class Hostile : public testing::Served {
 protected:
  // As the server's own listen address gives: 127.0.0.1 and localhost.
  void Start(ApiOptions api = {}) {
    if (api.allowed_hosts.empty()) {
      api.allowed_hosts = {"127.0.0.1", "localhost"};
    }
    Served::Start(api);
  }
  // A raw request on a new connection ("Connection: close"), read whole.
  std::string Raw(const std::string& request) {
    const int fd = eraser::testing::RawConnect(port_);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    const std::string in =
        eraser::testing::ReadUntilClosed(fd, eraser::testing::kPatience).first;
    ::close(fd);
    return in;
  }
};

int StatusOf(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 && response.size() >= 12
             ? std::stoi(response.substr(9, 3))
             : 0;
}

const std::string kDelete = R"({"sample": 3})";

// A page of another site posting a "simple" request (no preflight): a form
// type is refused before anything is read, and so is any foreign Origin,
// whatever its type; an allowed origin gets CORS headers, and a preflight
// is answered for it only.
TEST_F(Hostile, BrowsersOfOtherSitesCannotDelete) {
  ApiOptions api;
  api.allowed_origins = {"https://app.example"};
  Start(api);
  HttpResult plain = Http(port_, "POST", "/v1/deletions", kDelete,
                          {{"Content-Type", "text/plain"}});
  EXPECT_EQ(plain.status, 415) << plain.body;
  // Without a Content-Type, a deletion is refused; an Open Inference
  // Protocol inference (its clients may declare nothing) is read.
  auto undeclared = [&](const std::string& target, const std::string& body) {
    return StatusOf(Raw("POST " + target +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body));
  };
  EXPECT_EQ(undeclared("/v1/deletions", kDelete), 415);
  const json v2 = {{"inputs",
                    {{{"name", "input"},
                      {"shape", {1, 784}},
                      {"datatype", "FP32"},
                      {"data", std::vector<float>(784, 0.5f)}}}}};
  EXPECT_EQ(undeclared("/v2/models/eraser/infer", v2.dump()), 200);
  EXPECT_EQ(Http(port_, "POST", "/v2/models/eraser/infer", v2.dump(),
                 {{"Content-Type", "text/plain"}})
                .status,
            415);
  HttpResult evil = Http(port_, "POST", "/v1/deletions", kDelete,
                         {{"Origin", "http://evil.example"}});
  EXPECT_EQ(evil.status, 403) << evil.body;
  EXPECT_EQ(evil.json()["reason"], "origin");
  EXPECT_EQ(engine_->Stats().pending_deletions, 0u);
  // A preflight from the evil origin is refused; the allowed one is told
  // what it may send.
  EXPECT_EQ(Http(port_, "OPTIONS", "/v1/deletions", "",
                 {{"Origin", "http://evil.example"},
                  {"Access-Control-Request-Method", "POST"}})
                .status,
            403);
  HttpResult preflight = Http(port_, "OPTIONS", "/v1/deletions", "",
                              {{"Origin", "https://app.example"},
                               {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin"),
            "https://app.example");
  EXPECT_THAT(preflight.header("Access-Control-Allow-Headers"),
              HasSubstr("Content-Type"));
  // Binary tensors: the page may send the framing header and read it.
  EXPECT_THAT(preflight.header("Access-Control-Allow-Headers"),
              HasSubstr("Inference-Header-Content-Length"));
  HttpResult allowed = Http(port_, "POST", "/v1/deletions", kDelete,
                            {{"Origin", "https://app.example"}});
  EXPECT_EQ(allowed.status, 202) << allowed.body;
  // The page may read the answer.
  EXPECT_EQ(allowed.header("Access-Control-Allow-Origin"),
            "https://app.example");
  EXPECT_EQ(allowed.header("Access-Control-Expose-Headers"),
            "Inference-Header-Content-Length");
  EXPECT_EQ(Http(port_, "POST", "/v1/deletions", kDelete)
                .header("Access-Control-Allow-Origin"),
            "");
}

// DNS rebinding: a page whose host name now resolves to 127.0.0.1 sends
// its own name as Host. Only the listen address's names are answered.
TEST_F(Hostile, AHostTheServerDoesNotAnswerForIs421) {
  Start();
  const std::string request =
      "POST /v1/deletions HTTP/1.1\r\nHost: evil.example:8080\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(kDelete.size()) + "\r\nConnection: close\r\n\r\n" +
      kDelete;
  const std::string response = Raw(request);
  EXPECT_EQ(StatusOf(response), 421) << response;
  EXPECT_THAT(response, HasSubstr("misdirected"));
  // Asking again will not help: no Retry-After.
  EXPECT_THAT(response, Not(HasSubstr("Retry-After")));
  EXPECT_EQ(engine_->Stats().pending_deletions, 0u);
  for (const char* host :
       {"127.0.0.1", "127.0.0.1:1", "localhost:8080", "LOCALHOST"}) {
    EXPECT_EQ(StatusOf(Raw(std::string("GET /v2 HTTP/1.1\r\nHost: ") + host +
                           "\r\nConnection: close\r\n\r\n")),
              200)
        << host;
  }
  // HTTP/1.1 requires Host (RFC 9112 3.2): 400; HTTP/1.0 names no host.
  EXPECT_EQ(StatusOf(Raw("GET /v2 HTTP/1.1\r\nConnection: close\r\n\r\n")),
            400);
  const std::string old = Raw("GET /v2 HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.rfind("HTTP/1.0 421", 0), 0u) << old;
  // Health answers any Host, and none: load balancers probe a pod by its
  // address, or over HTTP/1.0 (HAProxy's httpchk).
  for (const char* path :
       {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"}) {
    EXPECT_EQ(StatusOf(Raw(std::string("GET ") + path +
                           " HTTP/1.1\r\nHost: 10.1.2.3:8080\r\n"
                           "Connection: close\r\n\r\n")),
              200)
        << path;
    const std::string probe =
        Raw(std::string("GET ") + path + " HTTP/1.0\r\n\r\n");
    EXPECT_EQ(probe.rfind("HTTP/1.0 200", 0), 0u) << path << ": " << probe;
  }
  // Without a token file every caller is admin, but /readyz's detail (what
  // unlearning is doing) goes only to a Host the server answers for: a
  // rebound page learns ready or degraded, and nothing of deletions.
  HttpResult rebound =
      Http(port_, "GET", "/readyz", "", {{"Host", "evil.example:8080"}});
  EXPECT_EQ(rebound.status, 200);
  EXPECT_EQ(rebound.json().size(), 1u) << rebound.body;
  EXPECT_TRUE(rebound.json().contains("status")) << rebound.body;
  HttpResult own = Http(port_, "GET", "/readyz", "", {{"Host", "localhost"}});
  EXPECT_TRUE(own.json().contains("unlearning")) << own.body;
}

// Dimensions whose product wraps 2^64 around to the feature count were
// answered as one row.
TEST_F(Hostile, AV2ShapeWhoseProductOverflowsIs400) {
  Start();
  // 2^32 * 2^32 * 784 = 784 (mod 2^64).
  const json body = {{"inputs",
                      {{{"name", "input"},
                        {"shape", {1, 4294967296, 4294967296, 784}},
                        {"datatype", "FP32"},
                        {"data", std::vector<float>(784, 0.5f)}}}}};
  HttpResult r = Http(port_, "POST", "/v2/models/eraser/infer", body.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.json()["error"].get<std::string>(), HasSubstr("shape"));
}

// Without an admin token, /readyz says ready or degraded and nothing about
// deletions, and the model metadata names no server path.
TEST_F(Hostile, CallersWithoutAdminScopeLearnNothingOfDeletionsOrPaths) {
  const std::string reader = AddToken("infer", "reader");
  const std::string admin = AddToken("admin", "ops");
  Start(WithTokens());
  for (const Headers& headers :
       {Headers{}, Headers{{"Authorization", "Bearer " + reader}}}) {
    HttpResult ready = Http(port_, "GET", "/readyz", "", headers);
    EXPECT_EQ(ready.status, 200);
    EXPECT_EQ(ready.json().size(), 1u) << ready.body;
    EXPECT_TRUE(ready.json().contains("status"));
  }
  HttpResult detail =
      Http(port_, "GET", "/readyz", "", {{"Authorization", "Bearer " + admin}});
  EXPECT_TRUE(detail.json().contains("unlearning")) << detail.body;
  HttpResult meta = Http(port_, "GET", "/v2/models/eraser", "",
                         {{"Authorization", "Bearer " + reader}});
  ASSERT_EQ(meta.status, 200);
  EXPECT_FALSE(meta.json()["parameters"].contains("dataset")) << meta.body;
  EXPECT_THAT(meta.body, Not(HasSubstr(dir_.path())));
  // The outputs listed are the ones this token may ask for: a client that
  // requests what the metadata lists (Triton's do) is not refused.
  auto outputs = [&](const std::string& token, const char* route,
                     const char* key) {
    std::vector<std::string> names;
    const json doc =
        Http(port_, "GET", route, "", {{"Authorization", "Bearer " + token}})
            .json();
    for (const json& o : doc[key]) names.push_back(o["name"]);
    return names;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(outputs(reader, "/v2/models/eraser", "outputs"),
            (Names{"label", "decision", "class"}));
  EXPECT_EQ(outputs(reader, "/v2/models/eraser/config", "output"),
            (Names{"label", "decision", "class"}));
  EXPECT_EQ(outputs(admin, "/v2/models/eraser", "outputs"),
            (Names{"label", "decision", "class", "margin"}));
  EXPECT_EQ(outputs(admin, "/v2/models/eraser/config", "output"),
            (Names{"label", "decision", "class", "margin"}));
}

// The scheme is case-insensitive (RFC 7235); two Authorization headers are
// ambiguous and refused, whichever comes first.
TEST_F(Hostile, AuthorizationSchemesAndRepeatedHeaders) {
  const std::string token = AddToken("infer", "reader");
  Start(WithTokens());
  const std::string body = json{{"test_index", 1}}.dump();
  for (const char* scheme : {"Bearer ", "bearer ", "BEARER ", "Bearer   "}) {
    EXPECT_EQ(Http(port_, "POST", "/v1/infer", body,
                   {{"Authorization", scheme + token}})
                  .status,
              200)
        << scheme;
  }
  const std::string twice =
      "POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer " +
      token + "\r\nAuthorization: Bearer nonsense\r\n" +
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  EXPECT_EQ(StatusOf(Raw(twice)), 400);
  // Two Host fields: a proxy may route by either.
  const std::string two_hosts =
      "POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n"
      "Authorization: Bearer " +
      token + "\r\nContent-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  const std::string refused = Raw(two_hosts);
  EXPECT_EQ(StatusOf(refused), 400) << refused;
  EXPECT_THAT(refused, HasSubstr("one Host"));
  // An OPTIONS without an Origin is no preflight: the route answers 405
  // and says what it allows.
  HttpResult options = Http(port_, "OPTIONS", "/v1/infer", "",
                            {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(options.status, 405) << options.body;
  EXPECT_EQ(options.header("Allow"), "POST");
  EXPECT_EQ(Http(port_, "OPTIONS", "/healthz").header("Allow"), "GET, HEAD");
}

// HEAD on every GET route: the GET's status and headers, no body.
TEST_F(Hostile, HeadAnswersEveryGetRouteWithoutABody) {
  Start();
  for (const char* path :
       {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/v2",
        "/v2/models/eraser", "/v2/models/eraser/ready"}) {
    const HttpResult get = Http(port_, "GET", path);
    const std::string head = Raw(std::string("HEAD ") + path +
                                 " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Connection: close\r\n\r\n");
    EXPECT_EQ(StatusOf(head), get.status) << path << ": " << head;
    const std::size_t end = head.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << path;
    EXPECT_EQ(head.size(), end + 4) << path << " sent a body";
    EXPECT_THAT(head,
                HasSubstr("Content-Length: " + std::to_string(get.body.size())))
        << path;
  }
  // Refusals of a HEAD carry no body either: on a kept-alive connection
  // the body would be read as the start of the next answer.
  for (const std::string& refused :
       {std::string("Host: evil.example\r\n"),
        std::string("Host: 127.0.0.1\r\nOrigin: http://evil.example\r\n")}) {
    const std::string head =
        Raw("HEAD /v2 HTTP/1.1\r\n" + refused + "Connection: close\r\n\r\n");
    const int status = StatusOf(head);
    EXPECT_TRUE(status == 421 || status == 403) << head;
    const std::size_t end = head.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(head.size(), end + 4) << "a refused HEAD sent a body: " << head;
  }
}

// What docs/serve.md does not allow is refused, not read leniently.
TEST_F(Hostile, RequestFormsTheDocsDoNotAllowAreRefused) {
  Start();
  // Unknown fields beside the features.
  EXPECT_EQ(Http(port_, "POST", "/v1/infer",
                 R"({"test_index": 1, "priority": "high"})")
                .status,
            400);
  // A NUL byte after the JSON.
  EXPECT_EQ(Http(port_, "POST", "/v1/infer",
                 std::string(R"({"test_index": 1})") + '\0' + "junk")
                .status,
            400);
  // A v2 input under another name.
  const json wrong = {{"inputs",
                       {{{"name", "pixels"},
                         {"shape", {1, 784}},
                         {"datatype", "FP32"},
                         {"data", std::vector<float>(784, 0.5f)}}}}};
  HttpResult r = Http(port_, "POST", "/v2/models/eraser/infer", wrong.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("pixels"));
  // A body in a transfer coding other than chunked is not read as plain.
  const std::string chunk = R"({"test_index": 1})";
  std::ostringstream size;
  size << std::hex << chunk.size();
  EXPECT_EQ(StatusOf(Raw("POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\n"
                         "Transfer-Encoding: gzip, chunked\r\n\r\n" +
                         size.str() + "\r\n" + chunk + "\r\n0\r\n\r\n")),
            501);
  // Framings a proxy in front may read differently (a request smuggled in
  // another's body): chunked twice, and chunked beside Content-Length.
  EXPECT_EQ(StatusOf(Raw("POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\n"
                         "Transfer-Encoding: chunked, chunked\r\n\r\n" +
                         size.str() + "\r\n" + chunk + "\r\n0\r\n\r\n")),
            400);
  EXPECT_EQ(StatusOf(Raw("POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: 5\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n" +
                         size.str() + "\r\n" + chunk + "\r\n0\r\n\r\n")),
            400);
  // Chunked alone is read.
  EXPECT_EQ(StatusOf(Raw("POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\n"
                         "Transfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n" +
                         size.str() + "\r\n" + chunk + "\r\n0\r\n\r\n")),
            200);
  // A compressed body: 415, not read as its compressed bytes; "identity"
  // is no coding.
  for (const char* coding : {"gzip", "deflate", "br", "identity, gzip"}) {
    HttpResult r =
        Http(port_, "POST", "/v1/infer", chunk, {{"Content-Encoding", coding}});
    EXPECT_EQ(r.status, 415) << coding;
    EXPECT_THAT(r.body, HasSubstr("Content-Encoding")) << coding;
    EXPECT_EQ(r.header("Accept-Encoding"), "identity");
  }
  EXPECT_EQ(Http(port_, "POST", "/v2/models/eraser/infer", wrong.dump(),
                 {{"Content-Encoding", "gzip"}})
                .status,
            415);
  EXPECT_EQ(Http(port_, "POST", "/v1/infer", chunk,
                 {{"Content-Encoding", "identity"}})
                .status,
            200);
  // Obsolete line folding.
  EXPECT_EQ(StatusOf(Raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "X-Folded: a\r\n b\r\nConnection: close\r\n\r\n")),
            400);
  // Ids are u64: 2^63 and above are ids, not errors.
  HttpResult big = Http(port_, "POST", "/v1/deletions",
                        R"({"sample": 9223372036854775808})");
  EXPECT_EQ(big.status, 404) << big.body;
  EXPECT_THAT(big.body, HasSubstr("9223372036854775808"));
}

// Beast holds a chunk's size line (with its extensions) and the trailer
// whole before parsing them, and counts neither against the header or body
// limit: a client without a token made the server buffer 64 MiB of one
// chunk extension. The read buffer's bound refuses them; a body in large
// chunks is still read.
TEST_F(Hostile, ChunkLinesAndTrailersAreBoundedLikeHeaders) {
  HttpServerOptions http;
  http.header_limit = 1024;
  Served::Start({}, http);
  const std::string head =
      "POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  const std::string chunk = R"({"test_index": 1})";
  std::ostringstream size;
  size << std::hex << chunk.size();
  const std::string big(80 * 1024, 'a');
  for (const std::string& body :
       {size.str() + ";x=" + big + "\r\n" + chunk + "\r\n0\r\n\r\n",
        size.str() + "\r\n" + chunk + "\r\n0\r\nX-Trailer: " + big +
            "\r\n\r\n"}) {
    const std::string response = Raw(head + body);
    EXPECT_EQ(StatusOf(response), 431) << response.substr(0, 200);
    EXPECT_THAT(response, HasSubstr("chunk size line or the trailer"));
  }
  // A v2 batch of 60 rows (about 190 KB) in chunks of 64 KiB.
  json data = json::array();
  for (std::size_t r = 0; r < 60; ++r) {
    for (float v : engine::testing::Input(r)) data.push_back(v);
  }
  const std::string v2 = json{
      {"inputs",
       {{{"name", "input"},
         {"datatype", "FP32"},
         {"shape", {60, 784}},
         {"data", data}}}}}.dump();
  std::string chunked;
  for (std::size_t at = 0; at < v2.size(); at += 65536) {
    const std::string part = v2.substr(at, 65536);
    std::ostringstream n;
    n << std::hex << part.size();
    chunked += n.str() + "\r\n" + part + "\r\n";
  }
  const std::string answered =
      Raw("POST /v2/models/eraser/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
          "Connection: close\r\n\r\n" +
          chunked + "0\r\n\r\n");
  EXPECT_EQ(StatusOf(answered), 200) << answered.substr(0, 300);
}

// curl sends "Expect: 100-continue" before a body over 1 MiB and waits a
// second for the 100 (clients without a timeout wait for ever); a header
// line ended by a bare LF left the client waiting for the idle timeout; an
// empty line before a request-line is skipped (RFC 9112 2.2).
TEST_F(Hostile, ContinueBareLineFeedsAndLeadingEmptyLines) {
  Start();
  const std::string body = R"({"test_index": 1})";
  const int fd = eraser::testing::RawConnect(port_);
  ASSERT_GE(fd, 0);
  const std::string head =
      "POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nExpect: 100-continue\r\n"
      "Connection: close\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(head.size()));
  // The 100 comes before any byte of the body is sent.
  std::string in;
  char buffer[256];
  while (in.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    ASSERT_GT(n, 0) << "no 100 Continue: " << in;
    in.append(buffer, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(in.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << in;
  ASSERT_EQ(::send(fd, body.data(), body.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(body.size()));
  in += eraser::testing::ReadUntilClosed(fd, eraser::testing::kPatience).first;
  ::close(fd);
  EXPECT_THAT(in, HasSubstr("HTTP/1.1 200 OK")) << in;
  // A refused header gets its answer instead of a 100.
  const std::string refused =
      Raw("POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          "Expect: 100-continue\r\nContent-Length: 99999999\r\n\r\n");
  EXPECT_EQ(StatusOf(refused), 413) << refused;
  EXPECT_THAT(refused, Not(HasSubstr("100 Continue")));
  // Bare LF: 400 at once.
  const std::string bare = Raw("GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n");
  EXPECT_EQ(StatusOf(bare), 400) << bare;
  EXPECT_THAT(bare, HasSubstr("CRLF"));
  // Empty lines before the request-line.
  EXPECT_EQ(StatusOf(Raw("\r\n\r\nGET /healthz HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nConnection: close\r\n\r\n")),
            200);
}

// A client that sent "Expect: 100-continue" was told to go on before its
// token and Host were checked, and sent the body (a megabyte, say) only to
// be refused: the refusal now comes instead of the 100, and the body is
// not read.
TEST_F(Hostile, AContinueWaitsForTheHostAndTheToken) {
  const std::string reader = AddToken("infer", "reader");
  Start(WithTokens());
  const std::string body = R"({"test_index": 1})";
  // The header, then what comes back before any byte of the body is sent:
  // a 100, or a refusal and the connection closed.
  auto head_only = [&](const std::string& host, const std::string& token,
                       const std::string& path = "/v1/infer") {
    const int fd = eraser::testing::RawConnect(port_);
    EXPECT_GE(fd, 0);
    const std::string head =
        "POST " + path + " HTTP/1.1\r\nHost: " + host +
        "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n" +
        (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") +
        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    EXPECT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(head.size()));
    std::string in;
    char buffer[512];
    while (in.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      in.append(buffer, static_cast<std::size_t>(n));
    }
    if (StatusOf(in) != 100) {
      // The refusal, then the connection closed: the body is never read.
      const auto [rest, closed] =
          eraser::testing::ReadUntilClosed(fd, eraser::testing::kPatience);
      in += rest;
      EXPECT_TRUE(closed) << in;
    }
    ::close(fd);
    return in;
  };
  const std::string anonymous = head_only("127.0.0.1", "");
  EXPECT_EQ(StatusOf(anonymous), 401) << anonymous;
  EXPECT_THAT(anonymous, HasSubstr("WWW-Authenticate: Bearer"));
  EXPECT_THAT(anonymous, HasSubstr("Connection: close"));
  EXPECT_THAT(anonymous, Not(HasSubstr("100 Continue")));
  const std::string unknown = head_only("127.0.0.1", std::string(64, 'a'));
  EXPECT_EQ(StatusOf(unknown), 401) << unknown;
  const std::string elsewhere = head_only("evil.example", reader);
  EXPECT_EQ(StatusOf(elsewhere), 421) << elsewhere;
  EXPECT_THAT(elsewhere, Not(HasSubstr("100 Continue")));
  EXPECT_EQ(StatusOf(head_only("127.0.0.1", reader)), 100);
  // Health routes need neither (the route refuses the POST after the
  // body).
  EXPECT_EQ(StatusOf(head_only("evil.example", "", "/healthz")), 100);
}

// The request's outputs: one asked for twice was answered the second time
// with "data": null; an id that is not a string was dropped in silence.
TEST_F(Hostile, OutputsAskedForTwiceAndIdsThatAreNoStrings) {
  Start();
  json tensor = {{"name", "input"},
                 {"datatype", "FP32"},
                 {"shape", {1, 784}},
                 {"data", engine::testing::Input(1)}};
  HttpResult twice =
      Http(port_, "POST", "/v2/models/eraser/infer",
           json{{"inputs", {tensor}},
                {"outputs", {{{"name", "label"}}, {{"name", "label"}}}}}
               .dump());
  EXPECT_EQ(twice.status, 400) << twice.body;
  EXPECT_THAT(twice.body, HasSubstr("'label' is requested twice"));
  for (const json& id : {json(7), json(true), json::array()}) {
    HttpResult r = Http(port_, "POST", "/v2/models/eraser/infer",
                        json{{"id", id}, {"inputs", {tensor}}}.dump());
    EXPECT_EQ(r.status, 400) << id << ": " << r.body;
    EXPECT_THAT(r.json()["error"].get<std::string>(),
                HasSubstr("\"id\" must be a string"))
        << id;
  }
  HttpResult null_id = Http(port_, "POST", "/v2/models/eraser/infer",
                            json{{"id", nullptr}, {"inputs", {tensor}}}.dump());
  EXPECT_EQ(null_id.status, 200) << null_id.body;
  // INT64 beyond 2^53 says why it is refused.
  tensor["datatype"] = "INT64";
  tensor["data"] = std::vector<int64_t>(784, 0);
  tensor["data"][3] = int64_t{1} << 60;
  HttpResult wide = Http(port_, "POST", "/v2/models/eraser/infer",
                         json{{"inputs", {tensor}}}.dump());
  EXPECT_EQ(wide.status, 400);
  EXPECT_THAT(wide.body, HasSubstr("2^53")) << wide.body;
}

}  // namespace
}  // namespace eraser::serve
