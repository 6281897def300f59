// The gRPC front end in-process, with gRPC's own C++ client and the stubs
// the build generates: what the Python suite (clients/python/tests/
// test_grpc.py, plain stage only) checks with grpcio, here under the
// sanitizers too.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "../engine/engine_fixture.h"
#include "deletions.grpc.pb.h"
#include "eraser/certify/vote.h"
#include "eraser/common/sync_point.h"
#include "eraser/serve/grpc_server.h"
#include "inference.grpc.pb.h"
#include "served.h"
#include "testing/sync_points.h"

namespace eraser::serve {
namespace {

namespace pb = ::inference;
namespace dpb = ::eraser::v1;

class GrpcServed : public testing::Served {
 protected:
  void StartGrpc(ApiOptions api = {}) {
    Start(api);
    GrpcServerOptions options;
    options.listen = "127.0.0.1:0";
    StatusOr<std::unique_ptr<GrpcServer>> g =
        GrpcServer::Start(options, api_.get());
    ASSERT_TRUE(g.ok()) << g.status();
    grpc_ = std::move(g).value();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_->port()),
                                   grpc::InsecureChannelCredentials());
    inference_ = pb::GRPCInferenceService::NewStub(channel_);
    deletions_ = dpb::Deletions::NewStub(channel_);
  }
  void TearDown() override {
    if (grpc_) {
      // As eraser serve stops: the engine answers what is still waiting
      // while gRPC waits for its calls.
      std::thread stop([this] { grpc_->Shutdown(Duration(0)); });
      engine_->Close();
      stop.join();
      grpc_.reset();
    }
    Served::TearDown();
  }

  // Test rows `rows` as raw UINT8 pixel bytes.
  static pb::ModelInferRequest Pixels(const std::vector<std::size_t>& rows) {
    const datasets::Split& test = engine::testing::GetTemplate().data.test;
    pb::ModelInferRequest req;
    req.set_model_name("eraser");
    req.set_id("call-1");
    auto* input = req.add_inputs();
    input->set_name("input");
    input->set_datatype("UINT8");
    input->add_shape(static_cast<int64_t>(rows.size()));
    input->add_shape(784);
    std::string raw;
    for (std::size_t i : rows) {
      raw.append(reinterpret_cast<const char*>(test.row(i)), test.row_bytes());
    }
    req.add_raw_input_contents(raw);
    return req;
  }

  grpc::Status Infer(const pb::ModelInferRequest& req,
                     pb::ModelInferResponse* res,
                     const std::string& token = "") {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    return inference_->ModelInfer(&context, req, res);
  }

  std::unique_ptr<GrpcServer> grpc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::GRPCInferenceService::Stub> inference_;
  std::unique_ptr<dpb::Deletions::Stub> deletions_;
};

int32_t Plurality(std::size_t i) {
  const auto& votes = engine::testing::GetTemplate().votes[i];
  return certify::PluralityVote(votes.data(), votes.size(), 10);
}

std::vector<int64_t> Labels(const pb::ModelInferResponse& res) {
  EXPECT_EQ(res.outputs(0).name(), "label");
  const std::string& raw = res.raw_output_contents(0);
  std::vector<int64_t> labels(raw.size() / 8);
  std::memcpy(labels.data(), raw.data(), raw.size());
  return labels;
}

// Both servers read their address with one parser: gRPC's own took port
// 99999 as 34463 and an empty port as 443, and HTTP refused "[::1]:0".
TEST(ListenAddress, OneParserForBothServers) {
  StatusOr<ListenAddress> v6 = ParseListenAddress("[::1]:8080");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->ToString(), "[::1]:8080");
  EXPECT_EQ(ParseListenAddress("::1:0")->ToString(), "[::1]:0");
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0")->ToString(), "127.0.0.1:0");
  EXPECT_EQ(ParseListenAddress("localhost:80")->ToString(), "127.0.0.1:80");
  EXPECT_NE(ParseListenAddress("nohost:80")
                .status()
                .message()
                .find("give an IP address"),
            std::string::npos);
  for (const char* bad :
       {"127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:+80", "127.0.0.1:65536",
        "127.0.0.1", "nohost:80", "127.0.0.1:8o"}) {
    EXPECT_EQ(ParseListenAddress(bad).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  GrpcServerOptions options;
  options.listen = "127.0.0.1:99999";
  StatusOr<std::unique_ptr<GrpcServer>> refused =
      GrpcServer::Start(options, nullptr);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("bad listen port"),
            std::string::npos);
}

TEST_F(GrpcServed, InfersRawAndTypedTensorsAsTheEnsembleVotes) {
  StartGrpc();
  const std::vector<std::size_t> rows = {0, 5, 9};
  pb::ModelInferRequest raw = Pixels(rows);
  pb::ModelInferResponse res;
  ASSERT_TRUE(Infer(raw, &res).ok());
  EXPECT_EQ(res.id(), "call-1");
  ASSERT_EQ(res.outputs_size(), 4);  // label, decision, class, margin
  ASSERT_EQ(res.raw_output_contents_size(), 4);
  std::vector<int64_t> want;
  for (std::size_t i : rows) want.push_back(Plurality(i));
  EXPECT_EQ(Labels(res), want);
  EXPECT_EQ(res.outputs(0).shape(0), 3);
  // The same bytes as typed contents.
  pb::ModelInferRequest typed = raw;
  typed.clear_raw_input_contents();
  for (unsigned char b : raw.raw_input_contents(0)) {
    typed.mutable_inputs(0)->mutable_contents()->add_uint_contents(b);
  }
  pb::ModelInferResponse typed_res;
  ASSERT_TRUE(Infer(typed, &typed_res).ok());
  EXPECT_EQ(Labels(typed_res), want);
  // Values also in a field its datatype does not read: refused, not
  // dropped.
  pb::ModelInferRequest mixed = typed;
  mixed.mutable_inputs(0)->mutable_contents()->add_fp64_contents(0.5);
  grpc::Status mixed_status = Infer(mixed, &typed_res);
  EXPECT_EQ(mixed_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(mixed_status.error_message().find("values in fp64_contents"),
            std::string::npos)
      << mixed_status.error_message();
  // A short raw tensor, and the wrong model: refused by name.
  pb::ModelInferRequest short_raw = raw;
  short_raw.mutable_raw_input_contents(0)->pop_back();
  grpc::Status s = Infer(short_raw, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("bytes"), std::string::npos);
  pb::ModelInferRequest other = raw;
  other.set_model_name("other");
  EXPECT_EQ(Infer(other, &res).error_code(), grpc::StatusCode::NOT_FOUND);
  // An output asked for twice, as over HTTP.
  pb::ModelInferRequest twice = raw;
  twice.add_outputs()->set_name("label");
  twice.add_outputs()->set_name("label");
  s = Infer(twice, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("twice"), std::string::npos);
  // Both front ends count in the same statistics.
  grpc::ClientContext context;
  pb::ModelStatisticsRequest req;
  pb::ModelStatisticsResponse stats;
  ASSERT_TRUE(inference_->ModelStatistics(&context, req, &stats).ok());
  ASSERT_EQ(stats.model_stats_size(), 1);
  EXPECT_EQ(stats.model_stats(0).inference_stats().success().count(), 2u);
  // The mixed contents, the short tensor and the twice-asked output;
  // another model's request is not this one's failure.
  EXPECT_EQ(stats.model_stats(0).inference_stats().fail().count(), 3u);
  EXPECT_EQ(stats.model_stats(0).inference_count(), 6u);
}

TEST_F(GrpcServed, DeletionsAreScopedAndDurableBeforeTheAnswer) {
  const std::string infer = AddToken("infer", "reader");
  const std::string owner7 = AddToken("delete:owner:7", "owner-7");
  const std::string admin = AddToken("admin", "ops");
  StartGrpc(WithTokens());
  auto remove = [&](dpb::DeleteRequest req, const std::string& token,
                    dpb::Deletion* out) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    return deletions_->Delete(&context, req, out);
  };
  dpb::DeleteRequest owner7_req;
  owner7_req.set_owner(7);
  dpb::DeleteRequest sample_req;
  sample_req.set_sample(3);
  dpb::Deletion d;
  EXPECT_EQ(remove(owner7_req, "", &d).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(remove(owner7_req, infer, &d).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(remove(sample_req, owner7, &d).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(engine_->Stats().pending_deletions, 0u);
  ASSERT_TRUE(remove(owner7_req, owner7, &d).ok());
  EXPECT_EQ(d.target(), "owner:7");
  EXPECT_EQ(d.state(), dpb::Deletion::PENDING);
  // Answered only once durable: the engine has it when the call returns.
  StatusOr<engine::DeletionInfo> info =
      engine_->GetDeletion(DeletionSeq(d.seq()));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(engine_->Stats().pending_deletions, 1u);
  // An inference token sees no certificate; an admin does.
  pb::ModelInferResponse res;
  ASSERT_TRUE(Infer(Pixels({1}), &res, infer).ok());
  EXPECT_EQ(res.parameters().count("certificates"), 0u);
  ASSERT_TRUE(Infer(Pixels({1}), &res, admin).ok());
  EXPECT_EQ(res.parameters().count("certificates"), 1u);
  // Drain: admin only; then applied.
  grpc::ClientContext denied;
  denied.AddMetadata("authorization", "Bearer " + owner7);
  dpb::DrainResponse drained;
  EXPECT_EQ(
      deletions_->Drain(&denied, dpb::DrainRequest(), &drained).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext allowed;
  allowed.AddMetadata("authorization", "Bearer " + admin);
  ASSERT_TRUE(deletions_->Drain(&allowed, dpb::DrainRequest(), &drained).ok());
  EXPECT_EQ(drained.pending_deletions(), 0u);
  grpc::ClientContext read;
  read.AddMetadata("authorization", "Bearer " + owner7);
  dpb::GetDeletionRequest get;
  get.set_seq(d.seq());
  dpb::Deletion now;
  ASSERT_TRUE(deletions_->GetDeletion(&read, get, &now).ok());
  EXPECT_EQ(now.state(), dpb::Deletion::APPLIED);
  EXPECT_GE(now.applied_unix_ms(), now.arrival_unix_ms());
}

// A client keeps its connection open when it has nothing to send, and may
// not read it either: grpcio polls a channel only while it has calls under
// way. gRPC's shutdown waits for such connections to close, up to its own
// timeout (about 20 s) or the grace, whichever is first: `eraser serve`
// took 3 to 5 s to stop with a grpcio client connected. Shutdown now closes
// them once every call has its answer, and only then: a call still waiting
// for the engine gets the engine's answer, not a cancellation. Here a
// client that says HTTP/2's hello and then never reads.
TEST_F(GrpcServed, ShutdownClosesIdleConnectionsOnceEveryCallIsAnswered) {
  StartGrpc();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(grpc_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address),
            0);
  // The connection preface, then an empty SETTINGS frame.
  const std::string hello = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                            std::string("\0\0\0\x04\0\0\0\0\0", 9);
  ASSERT_EQ(write(fd, hello.data(), hello.size()),
            static_cast<ssize_t>(hello.size()));
  // Every shard affected: an inference parks, waiting for unlearning (the
  // deadline is an hour away).
  for (uint32_t shard = 0; shard < engine::testing::kShards; ++shard) {
    ASSERT_TRUE(engine_
                    ->RequestDeletion(storage::DeletionTarget::Sample(
                        engine::testing::SampleIn(shard, 1)))
                    .ok());
  }
  grpc::Status parked_status;
  std::string parked_reason;
  std::thread parked([&] {
    pb::ModelInferResponse res;
    grpc::ClientContext context;
    parked_status = inference_->ModelInfer(&context, Pixels({0}), &res);
    const auto reason =
        context.GetServerTrailingMetadata().find("eraser-reason");
    if (reason != context.GetServerTrailingMetadata().end()) {
      parked_reason.assign(reason->second.data(), reason->second.size());
    }
  });
  while (engine_->Stats().parked == 0) std::this_thread::yield();
  // The connections are closed only once the engine has answered the
  // parked call: the engine closes after the stop has begun waiting.
  std::promise<void> awaiting;
  std::atomic<int64_t> parked_at_close{-1};
  // Cleared however the test ends: the callbacks hold this frame.
  eraser::testing::SyncPointsCleared cleared;
  SyncPoints::Set("GrpcServer::Shutdown:AwaitCalls",
                  [&] { awaiting.set_value(); });
  SyncPoints::Set("GrpcServer::Shutdown:CloseConnections", [&] {
    parked_at_close = static_cast<int64_t>(engine_->Stats().parked);
  });
  // A grace far beyond the bound the test waits: the stop must not need it.
  auto stopped = std::async(
      std::launch::async, [this] { grpc_->Shutdown(std::chrono::minutes(3)); });
  const bool began = awaiting.get_future().wait_for(std::chrono::seconds(60)) ==
                     std::future_status::ready;
  engine_->Close();
  parked.join();
  EXPECT_TRUE(began) << "the stop never began to wait for its calls";
  EXPECT_EQ(parked_status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << parked_status.error_message();
  EXPECT_EQ(parked_reason, "shutting_down") << parked_status.error_message();
  EXPECT_EQ(stopped.wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
  stopped.get();
  EXPECT_EQ(parked_at_close.load(), 0);
  close(fd);
}

}  // namespace
}  // namespace eraser::serve
