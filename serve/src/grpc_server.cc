// The gRPC front end (grpc_server.h): gRPC's callback API, so that an
// inference waits for the engine's answer without holding a thread, and
// deletions (a synced write each) and drains run on a small pool of their
// own, never on gRPC's threads.
#include "eraser/serve/grpc_server.h"

#include <google/protobuf/util/json_util.h>
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

#include "deletions.grpc.pb.h"
#include "eraser/common/clock.h"
#include "eraser/common/mutex.h"
#include "eraser/common/sync_point.h"
#include "inference.grpc.pb.h"
#include "model_statistics.h"
#include "responses.h"
#include "tensors.h"

namespace eraser::serve {
namespace {

namespace pb = ::inference;
namespace dpb = ::eraser::v1;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using grpc::StatusCode;
using nlohmann::json;

// The calls under way: each call's reactor counts itself in when its
// handler starts and out once gRPC is done with it (its status sent), so
// that Shutdown knows when every call has its answer.
class Calls {
 public:
  ServerUnaryReactor* NewReactor() { return new Reactor(this); }

  // True once no call is under way, false if `deadline` came first.
  bool AwaitNone(TimePoint deadline) {
    const Clock& clock = *SystemClock::Default();
    MutexLock lock(&mu_);
    while (running_ > 0) {
      if (!idle_.WaitUntil(&mu_, clock, deadline) && running_ > 0) {
        return false;
      }
    }
    return true;
  }

 private:
  class Reactor final : public ServerUnaryReactor {
   public:
    explicit Reactor(Calls* calls) : calls_(calls) { calls_->Begin(); }
    void OnDone() override {
      Calls* calls = calls_;
      delete this;
      calls->End();
    }

   private:
    Calls* const calls_;
  };

  void Begin() {
    MutexLock lock(&mu_);
    ++running_;
  }
  void End() {
    MutexLock lock(&mu_);
    if (--running_ == 0) idle_.SignalAll();
  }

  Mutex mu_;
  CondVar idle_;
  int64_t running_ GUARDED_BY(mu_) = 0;
};

// The engine's status as a gRPC status: the HTTP mapping's codes
// (docs/serve.md). A refusal for now (429, 503, 507 over HTTP) carries its
// reason in the trailing metadata "eraser-reason" and is counted in
// eraser_http_refused_total, as over HTTP.
grpc::Status ToGrpc(const eraser::Status& status, bool writes_store,
                    CallbackServerContext* context,
                    metrics::EngineMetrics& metrics) {
  const std::string_view reason = internal::RefusalReason(status, writes_store);
  if (!reason.empty()) {
    metrics.HttpRefused(reason);
    context->AddTrailingMetadata("eraser-reason", std::string(reason));
  }
  StatusCode code = StatusCode::INTERNAL;
  switch (status.code()) {
    case eraser::StatusCode::kInvalidArgument:
      code = StatusCode::INVALID_ARGUMENT;
      break;
    case eraser::StatusCode::kNotFound:
      code = StatusCode::NOT_FOUND;
      break;
    case eraser::StatusCode::kResourceExhausted:
      code = StatusCode::RESOURCE_EXHAUSTED;
      break;
    case eraser::StatusCode::kUnavailable:
      code = StatusCode::UNAVAILABLE;
      break;
    default:
      break;
  }
  return grpc::Status(code, std::string(status.message()));
}

grpc::Status InvalidArgument(const std::string& message) {
  return grpc::Status(StatusCode::INVALID_ARGUMENT, message);
}

// A JSON document of the HTTP routes as its protocol buffer (the HTTP
// documents are the protocol's JSON mapping of the same messages).
template <typename Message>
grpc::Status FromJson(const json& document, Message* out) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // HTTP-only fields ("parameters")
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      document.dump(), out, options);
  if (!parsed.ok()) {
    return grpc::Status(StatusCode::INTERNAL, std::string(parsed.message()));
  }
  return grpc::Status::OK;
}

// What both services share: the Api, who is calling, the model's name.
class Front {
 public:
  Front(Api* api, Calls* calls) : api_(api), calls_(calls) {}

  engine::Engine& engine() const { return *api_->engine(); }
  metrics::EngineMetrics& metrics() const { return *engine().metrics(); }

  // The caller, or null with `refused` set (UNAUTHENTICATED, counted).
  const Principal* Authenticate(CallbackServerContext* context,
                                std::shared_ptr<const TokenFile>* hold,
                                grpc::Status* refused) const {
    std::vector<std::string_view> values;
    const auto range = context->client_metadata().equal_range("authorization");
    for (auto it = range.first; it != range.second; ++it) {
      values.emplace_back(it->second.data(), it->second.size());
    }
    const Api::Caller caller = api_->Identify(values, hold);
    if (caller.who == nullptr) {
      metrics().HttpRefused("unauthenticated");
      api_->NoteRefusal(401, "unauthenticated", "gRPC", context->peer(),
                        caller.problem);
      *refused = grpc::Status(
          StatusCode::UNAUTHENTICATED,
          "a valid bearer token is required (metadata authorization: Bearer "
          "<token>): " +
              caller.problem);
    }
    return caller.who;
  }

  // A caller whose token may use the model; null with `refused` set
  // (UNAUTHENTICATED, or PERMISSION_DENIED for `what`) otherwise.
  const Principal* Inferrer(CallbackServerContext* context,
                            std::shared_ptr<const TokenFile>* hold,
                            const std::string& what,
                            grpc::Status* refused) const {
    const Principal* who = Authenticate(context, hold, refused);
    if (who != nullptr && !who->MayInfer()) {
      *refused = Forbidden(context, *who, what);
      return nullptr;
    }
    return who;
  }

  grpc::Status Forbidden(CallbackServerContext* context, const Principal& who,
                         const std::string& what) const {
    metrics().HttpRefused("forbidden");
    api_->NoteRefusal(403, "forbidden", "gRPC", context->peer(),
                      "token '" + who.name + "' may not " + what);
    return grpc::Status(StatusCode::PERMISSION_DENIED,
                        "this token's scopes do not allow you to " + what);
  }

  // OK when `name` and `version` ("" or "1") name the served model.
  grpc::Status Model(const std::string& name,
                     const std::string& version) const {
    const std::string& model = api_->options().model_name;
    if (name != model) {
      return grpc::Status(
          StatusCode::NOT_FOUND,
          "no model '" + name + "' (this server serves '" + model + "')");
    }
    if (!version.empty() && version != "1") {
      return grpc::Status(StatusCode::NOT_FOUND,
                          "model '" + name + "' has no version " + version +
                              " (its only version is 1)");
    }
    return grpc::Status::OK;
  }

  // This call's reactor, counted by Shutdown.
  ServerUnaryReactor* NewReactor() const { return calls_->NewReactor(); }

  // Answers the call with `status` at once.
  ServerUnaryReactor* Finish(CallbackServerContext*,
                             const grpc::Status& status) const {
    ServerUnaryReactor* reactor = NewReactor();
    reactor->Finish(status);
    return reactor;
  }

 protected:
  Api* const api_;
  Calls* const calls_;
};

// ---- inference.GRPCInferenceService
// ------------------------------------------

// The input tensor of a ModelInferRequest as the HTTP reader gives it, or a
// message for INVALID_ARGUMENT.
bool ReadInput(const pb::ModelInferRequest& request, TensorRequest* req,
               std::string* error) {
  req->inputs = request.inputs_size();
  if (request.inputs_size() != 1) {
    *error = "\"inputs\" must hold exactly one tensor";
    return false;
  }
  const pb::ModelInferRequest::InferInputTensor& input = request.inputs(0);
  req->name = input.name();
  req->has_name = !input.name().empty();
  req->datatype = input.datatype();
  req->has_datatype = !input.datatype().empty();
  for (int64_t d : input.shape()) {
    if (d < 0 || d > (int64_t{1} << 24)) {
      *error = "\"shape\" must hold integers from 0 to 2^24";
      return false;
    }
    req->shape.push_back(d);
  }
  req->has_shape = !req->shape.empty();
  if (request.raw_input_contents_size() > 0) {
    if (request.raw_input_contents_size() != request.inputs_size()) {
      *error = "raw_input_contents must hold one entry per input";
      return false;
    }
    if (input.has_contents()) {
      *error = "the input has both contents and raw_input_contents";
      return false;
    }
    const std::string& raw = request.raw_input_contents(0);
    const std::size_t element = internal::ElementSize(input.datatype());
    if (element == 0) {
      *error = "datatype '" + input.datatype() +
               "' has no raw form here (FP32, FP64, UINT8, INT8, UINT16, "
               "INT16, INT32, INT64)";
      return false;
    }
    // Elements the shape holds, saturating at 2^40 (past any message).
    constexpr uint64_t kMany = uint64_t{1} << 40;
    uint64_t count = req->shape.empty() ? 0 : 1;
    for (int64_t d : req->shape) {
      const uint64_t u = static_cast<uint64_t>(d);
      count = u != 0 && count > kMany / u ? kMany : count * u;
    }
    if (count >= kMany || count * element != raw.size()) {
      *error = "raw_input_contents holds " + std::to_string(raw.size()) +
               " bytes; the shape and datatype (" + input.datatype() + ", " +
               std::to_string(element) + " bytes each) make " +
               (count >= kMany ? std::string("at least 2^40 elements")
                               : std::to_string(count * element) + " bytes");
      return false;
    }
    internal::Decode(input.datatype(), raw.data(), count, &req->data);
    req->has_data = true;
    return true;
  }
  const pb::InferTensorContents& c = input.contents();
  auto take = [&](const auto& values) {
    req->data.assign(values.begin(), values.end());
  };
  const std::string& type = input.datatype();
  // Values in a field the datatype does not read would be dropped without
  // a word (other datatypes: Rows() names them).
  const char* const wanted =
      type == "FP32"                                         ? "fp32_contents"
      : type == "FP64"                                       ? "fp64_contents"
      : type == "INT8" || type == "INT16" || type == "INT32" ? "int_contents"
      : type == "INT64"                                      ? "int64_contents"
      : type == "UINT8" || type == "UINT16"                  ? "uint_contents"
                                                             : nullptr;
  const std::pair<const char*, int> filled[] = {
      {"fp32_contents", c.fp32_contents_size()},
      {"fp64_contents", c.fp64_contents_size()},
      {"int_contents", c.int_contents_size()},
      {"int64_contents", c.int64_contents_size()},
      {"uint_contents", c.uint_contents_size()},
      {"uint64_contents", c.uint64_contents_size()},
      {"bool_contents", c.bool_contents_size()},
      {"bytes_contents", c.bytes_contents_size()}};
  for (const auto& [field, values] : filled) {
    if (wanted != nullptr && values > 0 && std::string_view(field) != wanted) {
      *error = std::string("the input's contents hold values in ") + field +
               "; datatype " + type + " reads " + wanted;
      return false;
    }
  }
  if (type == "FP32") {
    take(c.fp32_contents());
  } else if (type == "FP64") {
    take(c.fp64_contents());
  } else if (type == "INT8" || type == "INT16" || type == "INT32") {
    take(c.int_contents());
  } else if (type == "INT64") {
    take(c.int64_contents());
  } else if (type == "UINT8" || type == "UINT16") {
    take(c.uint_contents());
  }  // other datatypes: Rows() names them
  req->has_data = input.has_contents() || !req->data.empty();
  return true;
}

class InferenceService final : public pb::GRPCInferenceService::CallbackService,
                               public Front {
 public:
  using Front::Front;

  ServerUnaryReactor* ServerLive(CallbackServerContext* context,
                                 const pb::ServerLiveRequest*,
                                 pb::ServerLiveResponse* response) override {
    response->set_live(true);
    return Finish(context, grpc::Status::OK);
  }

  ServerUnaryReactor* ServerReady(CallbackServerContext* context,
                                  const pb::ServerReadyRequest*,
                                  pb::ServerReadyResponse* response) override {
    response->set_ready(!api_->draining());
    return Finish(context, grpc::Status::OK);
  }

  ServerUnaryReactor* ModelReady(CallbackServerContext* context,
                                 const pb::ModelReadyRequest* request,
                                 pb::ModelReadyResponse* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who = Inferrer(context, &hold, "use the model", &status);
    if (who == nullptr) return Finish(context, status);
    status = Model(request->name(), request->version());
    if (status.ok()) response->set_ready(!api_->draining());
    return Finish(context, status);
  }

  ServerUnaryReactor* ServerMetadata(
      CallbackServerContext* context, const pb::ServerMetadataRequest*,
      pb::ServerMetadataResponse* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    if (Authenticate(context, &hold, &status) == nullptr) {
      return Finish(context, status);
    }
    return Finish(context, FromJson(api_->ServerMetadata(), response));
  }

  ServerUnaryReactor* ModelMetadata(
      CallbackServerContext* context, const pb::ModelMetadataRequest* request,
      pb::ModelMetadataResponse* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who = Inferrer(context, &hold, "use the model", &status);
    if (who == nullptr) return Finish(context, status);
    status = Model(request->name(), request->version());
    if (!status.ok()) return Finish(context, status);
    return Finish(context, FromJson(api_->ModelMetadata(*who), response));
  }

  ServerUnaryReactor* ModelConfig(CallbackServerContext* context,
                                  const pb::ModelConfigRequest* request,
                                  pb::ModelConfigResponse* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who = Inferrer(context, &hold, "use the model", &status);
    if (who == nullptr) return Finish(context, status);
    status = Model(request->name(), request->version());
    if (!status.ok()) return Finish(context, status);
    return Finish(
        context, FromJson(api_->ModelConfig(*who), response->mutable_config()));
  }

  ServerUnaryReactor* ModelStatistics(
      CallbackServerContext* context, const pb::ModelStatisticsRequest* request,
      pb::ModelStatisticsResponse* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who =
        Inferrer(context, &hold, "read the model's statistics", &status);
    if (who == nullptr) return Finish(context, status);
    // An empty name: every model (there is one).
    if (!request->name().empty()) {
      status = Model(request->name(), request->version());
      if (!status.ok()) return Finish(context, status);
    }
    return Finish(context, FromJson(api_->ModelStats(), response));
  }

  ServerUnaryReactor* ModelInfer(CallbackServerContext* context,
                                 const pb::ModelInferRequest* request,
                                 pb::ModelInferResponse* response) override;
};

ServerUnaryReactor* InferenceService::ModelInfer(
    CallbackServerContext* context, const pb::ModelInferRequest* request,
    pb::ModelInferResponse* response) {
  const internal::Stopwatch::time_point start = internal::Stopwatch::now();
  std::shared_ptr<const TokenFile> hold;
  grpc::Status status;
  const Principal* who = Inferrer(context, &hold, "infer", &status);
  if (who == nullptr) return Finish(context, status);
  std::shared_ptr<internal::ModelStatistics> statistics = api_->statistics();
  // A request refused before the engine sees it (the engine counts its
  // own refusals): a bad input, as the engine would count it.
  auto fail = [&](const grpc::Status& s) {
    statistics->Failed(internal::NanosSince(start));
    metrics().Refused("bad_input");
    return Finish(context, s);
  };
  // Another model's request is not this model's failure (as over HTTP,
  // where its route is a 404 before the model's).
  status = Model(request->model_name(), request->model_version());
  if (!status.ok()) return Finish(context, status);
  // parameters.timeout (microseconds) bounds how long a row may wait
  // parked for unlearning, as over HTTP.
  Duration max_wait = Duration::max();
  std::string error;
  for (const auto& [name, value] : request->parameters()) {
    if (!internal::ReservedParameterServed(name, &error)) {
      return fail(InvalidArgument(error));
    }
    if (name != "timeout") continue;
    int64_t micros = -1;
    if (value.parameter_choice_case() == pb::InferParameter::kInt64Param) {
      micros = value.int64_param();
    } else if (value.parameter_choice_case() ==
               pb::InferParameter::kUint64Param) {
      micros = static_cast<int64_t>(
          std::min<uint64_t>(value.uint64_param(), INT64_MAX));
    }
    if (micros < 0 ||
        static_cast<uint64_t>(micros) > internal::kMaxTimeoutMicros) {
      return fail(InvalidArgument(
          "parameter \"timeout\" must be a whole number of microseconds "
          "from 0 to 2^40 (int64_param or uint64_param)"));
    }
    max_wait =
        std::chrono::duration_cast<Duration>(std::chrono::microseconds(micros));
  }
  TensorRequest req;
  const unlearning::DatasetInfo& dataset = engine().dataset();
  std::vector<std::vector<float>> rows;
  if (!ReadInput(*request, &req, &error) ||
      !internal::Rows(req, dataset, &rows, &error)) {
    return fail(InvalidArgument(error));
  }
  const bool details = api_->Details(*who);
  std::vector<std::string> requested;
  for (const auto& output : request->outputs()) {
    requested.push_back(output.name());
  }
  std::vector<std::string> wanted;
  if (!internal::WantedOutputs(!requested.empty(), requested,
                               internal::KnownOutputs(dataset, details),
                               &wanted, &error)) {
    return fail(InvalidArgument(error));
  }

  ServerUnaryReactor* reactor = NewReactor();
  auto call = std::make_shared<internal::RowAnswers>(rows.size());
  const int64_t input_ns = internal::NanosSince(start);
  std::shared_ptr<metrics::EngineMetrics> metrics = engine().metrics();
  const std::vector<std::string>* names = &dataset.class_names;
  const std::string model = api_->options().model_name;
  const std::string id = request->id();
  // Called once per row; the last one answers.
  auto finish = [call, reactor, context, response, statistics, metrics, names,
                 model, id, wanted, details, start,
                 input_ns](std::size_t row, StatusOr<engine::Prediction> p) {
    if (!call->Put(row, std::move(p))) return;
    const internal::Stopwatch::time_point output_start =
        internal::Stopwatch::now();
    internal::ModelStatistics::Timing timing;
    timing.input = input_ns;
    std::string label, decision, klass, margin;
    json certificates = json::array();
    for (const auto& r : call->results) {
      if (!r->ok()) {
        statistics->Failed(internal::NanosSince(start));
        return reactor->Finish(ToGrpc(r->status(), false, context, *metrics));
      }
      const engine::Prediction& pr = r->value();
      timing.AddRow(pr);
      internal::Append<int64_t>(&label, pr.label);
      internal::AppendBytes(&decision, certify::DecisionName(pr.decision));
      internal::AppendBytes(&klass, internal::ClassName(pr, *names));
      internal::Append<int32_t>(&margin, static_cast<int32_t>(pr.margin));
      if (details) certificates.push_back(internal::CertificateJson(pr));
    }
    const int64_t n = static_cast<int64_t>(call->results.size());
    response->set_model_name(model);
    response->set_model_version("1");
    response->set_id(id);
    for (const std::string& name : wanted) {
      pb::ModelInferResponse::InferOutputTensor* o = response->add_outputs();
      o->set_name(name);
      o->add_shape(n);
      o->set_datatype(internal::OutputDatatype(name));
      response->add_raw_output_contents(name == "label"      ? label
                                        : name == "decision" ? decision
                                        : name == "class"    ? klass
                                                             : margin);
    }
    if (details) {
      (*response->mutable_parameters())["certificates"].set_string_param(
          certificates.dump());
    }
    timing.output = internal::NanosSince(output_start);
    timing.total = internal::NanosSince(start);
    statistics->Succeeded(timing, static_cast<uint64_t>(n));
    reactor->Finish(grpc::Status::OK);
  };
  // Admitted whole or refused whole, as over HTTP.
  const eraser::Status admitted =
      engine().InferRowsAsync(std::move(rows), finish, max_wait);
  if (!admitted.ok()) {
    statistics->Failed(internal::NanosSince(start));
    reactor->Finish(ToGrpc(admitted, false, context, *metrics));
  }
  return reactor;
}

// ---- eraser.v1.Deletions
// -----------------------------------------------------

int64_t UnixMillis(TimePoint t) { return ToUnixMicros(t) / 1000; }

void FillDeletion(const engine::DeletionInfo& info, dpb::Deletion* out) {
  out->set_seq(info.seq.value());
  out->set_state(info.state == storage::DeletionState::kApplied
                     ? dpb::Deletion::APPLIED
                     : dpb::Deletion::PENDING);
  out->set_target(info.target.ToString());
  out->set_samples(info.samples);
  for (ShardId s : info.shards) out->add_shards(s.value());
  out->set_arrival_unix_ms(UnixMillis(info.arrival));
  if (info.applied) {
    out->set_applied_unix_ms(UnixMillis(*info.applied));
    out->set_delay_ms(
        std::chrono::duration<double, std::milli>(*info.applied - info.arrival)
            .count());
  }
  for (const auto& [shard, version] : info.excluded_from) {
    dpb::Deletion::Excluded* e = out->add_excluded_from();
    e->set_shard(shard.value());
    e->set_version(version);
  }
}

class DeletionService final : public dpb::Deletions::CallbackService,
                              public Front {
 public:
  DeletionService(Api* api, Calls* calls, boost::asio::thread_pool* blocking,
                  boost::asio::thread_pool* drains)
      : Front(api, calls), blocking_(blocking), drains_(drains) {}

  ServerUnaryReactor* Delete(CallbackServerContext* context,
                             const dpb::DeleteRequest* request,
                             dpb::Deletion* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who = Authenticate(context, &hold, &status);
    if (who == nullptr) return Finish(context, status);
    const bool sample = request->target_case() == dpb::DeleteRequest::kSample;
    if (!sample && request->target_case() != dpb::DeleteRequest::kOwner) {
      return Finish(context, InvalidArgument("give a sample or an owner"));
    }
    const uint64_t id = sample ? request->sample() : request->owner();
    if (sample ? !who->MayDeleteSample() : !who->MayDeleteOwner(id)) {
      return Finish(context, Forbidden(context, *who,
                                       std::string("delete ") +
                                           (sample ? "sample " : "owner ") +
                                           std::to_string(id)));
    }
    const storage::DeletionTarget target =
        sample ? storage::DeletionTarget::Sample(SampleId(id))
               : storage::DeletionTarget::Owner(OwnerId(id));
    ServerUnaryReactor* reactor = NewReactor();
    boost::asio::post(*blocking_, [this, target, context, reactor, response] {
      // Answers only once the request is durable.
      StatusOr<DeletionSeq> seq = engine().RequestDeletion(target);
      if (!seq.ok()) {
        return reactor->Finish(ToGrpc(seq.status(), true, context, metrics()));
      }
      StatusOr<engine::DeletionInfo> info = engine().GetDeletion(*seq);
      if (info.ok()) {
        FillDeletion(*info, response);
      } else {
        response->set_seq(seq->value());
        response->set_state(dpb::Deletion::PENDING);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  ServerUnaryReactor* GetDeletion(CallbackServerContext* context,
                                  const dpb::GetDeletionRequest* request,
                                  dpb::Deletion* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who = Authenticate(context, &hold, &status);
    if (who == nullptr) return Finish(context, status);
    if (!who->admin && !who->delete_any && who->owners.empty()) {
      return Finish(context,
                    Forbidden(context, *who, "read deletion requests"));
    }
    ServerUnaryReactor* reactor = NewReactor();
    const DeletionSeq seq(request->seq());
    // The principal lives in the token file `hold` keeps.
    boost::asio::post(
        *blocking_, [this, seq, who, hold, context, reactor, response] {
          StatusOr<engine::DeletionInfo> info = engine().GetDeletion(seq);
          // A deletion the token could not have made reads as absent.
          const bool readable =
              info.ok() &&
              (who->admin || who->delete_any ||
               (info->target.kind == storage::DeletionTarget::Kind::kOwner &&
                who->owners.count(info->target.id) > 0));
          if (!readable) {
            if (!info.ok() &&
                info.status().code() != eraser::StatusCode::kNotFound) {
              return reactor->Finish(
                  ToGrpc(info.status(), false, context, metrics()));
            }
            return reactor->Finish(
                grpc::Status(StatusCode::NOT_FOUND,
                             "no deletion " + std::to_string(seq.value())));
          }
          FillDeletion(*info, response);
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  ServerUnaryReactor* Drain(CallbackServerContext* context,
                            const dpb::DrainRequest*,
                            dpb::DrainResponse* response) override {
    std::shared_ptr<const TokenFile> hold;
    grpc::Status status;
    const Principal* who = Authenticate(context, &hold, &status);
    if (who == nullptr) return Finish(context, status);
    if (!who->admin) return Finish(context, Forbidden(context, *who, "drain"));
    ServerUnaryReactor* reactor = NewReactor();
    boost::asio::post(*drains_, [this, context, reactor, response] {
      const eraser::Status drained = engine().Drain();
      if (!drained.ok()) {
        return reactor->Finish(ToGrpc(drained, true, context, metrics()));
      }
      response->set_pending_deletions(engine().Stats().pending_deletions);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  boost::asio::thread_pool* const blocking_;
  boost::asio::thread_pool* const drains_;
};

StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return InvalidArgumentError(std::string("cannot read the TLS ") + what +
                                " " + path);
  }
  return text.str();
}

}  // namespace

struct GrpcServer::Impl {
  explicit Impl(Api* api)
      : inference(api, &calls), deletions(api, &calls, &blocking, &drains) {}

  // ~GrpcServer shuts the server down (every call finished) and joins the
  // pool before these are destroyed.
  boost::asio::thread_pool blocking{2};
  // Drains, one at a time, apart from deletions (as in Api).
  boost::asio::thread_pool drains{1};
  Calls calls;
  InferenceService inference;
  DeletionService deletions;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::once_flag shutdown;
};

StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, Api* api) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return InvalidArgumentError("TLS needs both a certificate and a key");
  }
  if (!options.tls_cert.empty()) {
    StatusOr<std::string> cert = ReadFile(options.tls_cert, "certificate");
    if (!cert.ok()) return cert.status();
    StatusOr<std::string> key = ReadFile(options.tls_key, "key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  // Checked here: gRPC's own parser takes port 99999 as 34463 (modulo
  // 2^16) and an empty port as 443.
  ASSIGN_OR_RETURN(const ListenAddress listen,
                   ParseListenAddress(options.listen));
  auto impl = std::make_unique<Impl>(api);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen.ToString(), credentials, &impl->port);
  const int max_bytes = static_cast<int>(
      std::min<std::size_t>(options.max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(max_bytes);
  // Answers are not limited (as over HTTP): an admin's certificates grow
  // with the shards.
  builder.SetMaxSendMessageSize(-1);
  // Memory for every connection's buffers and messages: under pressure
  // gRPC shrinks reads and refuses new streams, so clients that never
  // finish their messages (authentication comes after the message) cannot
  // take the process's memory.
  grpc::ResourceQuota quota("eraser-grpc");
  quota.Resize(options.memory_limit_bytes);
  builder.SetResourceQuota(quota);
  // A connection lives at most max_connection_age; its calls then get
  // `handshake_timeout` to finish (a stream left open for ever is cut).
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_AGE_MS,
      static_cast<int>(options.max_connection_age.count()));
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
      static_cast<int>(options.handshake_timeout.count()));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(options.idle_timeout.count()));
  builder.AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(options.handshake_timeout.count()));
  builder.RegisterService(&impl->inference);
  builder.RegisterService(&impl->deletions);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return InvalidArgumentError("gRPC cannot listen on " + options.listen);
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() {
  Shutdown(Duration(0));
  impl_->blocking.join();
  impl_->drains.join();
}

int GrpcServer::port() const { return impl_->port; }

void GrpcServer::Shutdown(Duration grace) {
  std::call_once(impl_->shutdown, [&] {
    const TimePoint deadline = SystemClock::Default()->Now() + grace;
    grpc_server* const core = impl_->server->c_server();
    // gRPC's shutdown takes no new call or connection, waits for the
    // running calls until the deadline and cancels what is left; it also
    // waits for every connection to close, which a client that is not
    // reading (grpcio between its calls, a stalled peer) delays until
    // gRPC's own timeout, about 20 s. So: begin it here (gRPC's core takes
    // several requests to shut down, each notified), let the C++ server
    // wait for it, and once every call has its answer close the
    // connections: nothing is left to wait for. (A call whose handler has
    // not started when the last one finishes is cancelled with them.)
    grpc_completion_queue* const begun =
        grpc_completion_queue_create_for_next(nullptr);
    int tag = 0;
    grpc_server_shutdown_and_notify(core, begun, &tag);
    std::thread stop([&] {
      impl_->server->Shutdown(
          std::chrono::system_clock::now() +
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              grace));
    });
    ERASER_SYNC_POINT("GrpcServer::Shutdown:AwaitCalls");
    if (impl_->calls.AwaitNone(deadline)) {
      ERASER_SYNC_POINT("GrpcServer::Shutdown:CloseConnections");
      grpc_server_cancel_all_calls(core);
    }
    stop.join();
    impl_->server->Wait();
    // Shut down, the queue returns its one event, then says so.
    grpc_completion_queue_shutdown(begun);
    while (grpc_completion_queue_next(begun, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      nullptr)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(begun);
  });
}

}  // namespace eraser::serve
