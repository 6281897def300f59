#include "eraser/scheduler/policy.h"

#include <cstdlib>
#include <set>

#include "eraser/common/duration.h"
#include "eraser/common/numbers.h"

namespace eraser::scheduler {
namespace {

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool ParseUint(std::string_view text, uint32_t min, uint32_t max,
               uint32_t* out) {
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  const unsigned long v = std::strtoul(std::string(text).c_str(), nullptr, 10);
  if (v < min || v > max) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ParseFraction(std::string_view text, double* out) {
  double v = 0;
  if (!ParseDouble(text, &v) || !(v >= 0 && v <= 1)) return false;
  *out = v;
  return true;
}

Status Bad(std::string_view text, const std::string& why) {
  return InvalidArgumentError("bad policy '" + std::string(text) + "': " + why +
                              "\n" + PolicyHelp());
}

// Parses "deadline=D" into policy->deadline.
Status ParseDeadline(std::string_view text, std::string_view item,
                     Policy* policy) {
  StatusOr<Duration> d = ParseDuration(item.substr(9));
  if (!d.ok() || d->count() <= 0) {
    return Bad(text, "'" + std::string(item) +
                         "' needs a positive duration such as 30s");
  }
  policy->deadline = *d;
  return OkStatus();
}

Status ParseTiming(std::string_view text, std::string_view item,
                   Policy* policy) {
  const std::size_t colon = item.find(':');
  const std::string_view name = item.substr(0, colon);
  const std::string_view arg =
      colon == std::string_view::npos ? "" : item.substr(colon + 1);
  const bool has_arg = colon != std::string_view::npos;
  if (name == "lazy" && !has_arg) {
    policy->timing = Timing::kLazy;
  } else if (name == "batch") {
    policy->timing = Timing::kBatch;
    if (!ParseUint(arg, 1, 1'000'000, &policy->batch_size)) {
      return Bad(text, "batch:N needs N in 1..1000000");
    }
  } else if (name == "periodic") {
    policy->timing = Timing::kPeriodic;
    StatusOr<Duration> d = ParseDuration(arg);
    if (!d.ok() || d->count() <= 0) {
      return Bad(text, "periodic:T needs a positive duration such as 10s");
    }
    policy->period = *d;
  } else if (name == "idle") {
    policy->timing = Timing::kIdle;
    if (has_arg && !ParseFraction(arg, &policy->idle_utilization)) {
      return Bad(text, "idle:U needs a utilisation U in [0, 1]");
    }
  } else if (name == "shards") {
    policy->timing = Timing::kShards;
    if (!ParseUint(arg, 0, 1'000'000, &policy->max_affected)) {
      return Bad(text, "shards:A needs a number of shards A >= 0");
    }
  } else {
    return Bad(text, "unknown timing '" + std::string(item) + "'");
  }
  return OkStatus();
}

StatusOr<Policy> ParseEraser(std::string_view text, std::string_view body) {
  Policy policy;
  policy.kind = PolicyKind::kEraser;
  bool timing = false;
  bool rule = false;
  bool deadline = false;
  for (std::string_view item : Split(body, ',')) {
    if (item == "wait" || item == "partial" || item == "soft" ||
        item == "prefix" || item == "reject") {
      if (rule) return Bad(text, "more than one uncertified rule");
      rule = true;
      policy.rule = item == "wait"      ? UncertifiedRule::kWait
                    : item == "partial" ? UncertifiedRule::kPartial
                    : item == "soft"    ? UncertifiedRule::kSoft
                    : item == "prefix"  ? UncertifiedRule::kPrefix
                                        : UncertifiedRule::kReject;
    } else if (item.substr(0, 9) == "deadline=") {
      if (deadline) return Bad(text, "more than one deadline");
      deadline = true;
      RETURN_IF_ERROR(ParseDeadline(text, item, &policy));
    } else {
      if (timing) {
        return Bad(text, "unexpected '" + std::string(item) +
                             "' (one timing, then a rule and a deadline)");
      }
      timing = true;
      RETURN_IF_ERROR(ParseTiming(text, item, &policy));
    }
  }
  if (!timing) return Bad(text, "an ERASER policy needs a timing");
  return policy;
}

}  // namespace

const char* TimingName(Timing timing) {
  switch (timing) {
    case Timing::kLazy:
      return "lazy";
    case Timing::kBatch:
      return "batch";
    case Timing::kPeriodic:
      return "periodic";
    case Timing::kIdle:
      return "idle";
    case Timing::kShards:
      return "shards";
  }
  return "?";
}

const char* RuleName(UncertifiedRule rule) {
  switch (rule) {
    case UncertifiedRule::kWait:
      return "wait";
    case UncertifiedRule::kPartial:
      return "partial";
    case UncertifiedRule::kSoft:
      return "soft";
    case UncertifiedRule::kPrefix:
      return "prefix";
    case UncertifiedRule::kReject:
      return "reject";
  }
  return "?";
}

std::string Policy::ToString() const {
  const std::string d = "deadline=" + FormatDuration(deadline);
  switch (kind) {
    case PolicyKind::kImmediate:
      return "immediate";
    case PolicyKind::kInferenceFirst:
      return "inference-first," + d;
    case PolicyKind::kEraser:
      break;
  }
  std::string t = TimingName(timing);
  switch (timing) {
    case Timing::kLazy:
      break;
    case Timing::kBatch:
      t += ":" + std::to_string(batch_size);
      break;
    case Timing::kPeriodic:
      t += ":" + FormatDuration(period);
      break;
    case Timing::kIdle:
      t += ":" + FormatDouble(idle_utilization, 6);  // as %g
      break;
    case Timing::kShards:
      t += ":" + std::to_string(max_affected);
      break;
  }
  return "eraser:" + t + "," + RuleName(rule) + "," + d;
}

const std::vector<std::pair<std::string, std::string>>& Presets() {
  static const auto* presets =
      new std::vector<std::pair<std::string, std::string>>{
          {"immediate", "immediate"},
          {"inference-first", "inference-first,deadline=30s"},
          {"eraser-lazy-wait", "eraser:lazy,wait,deadline=30s"},
          {"eraser-lazy-partial", "eraser:lazy,partial,deadline=30s"},
          {"eraser-lazy-reject", "eraser:lazy,reject,deadline=30s"},
          {"eraser-batch-wait", "eraser:batch:8,wait,deadline=30s"},
          {"eraser-periodic-wait", "eraser:periodic:10s,wait,deadline=30s"},
          {"eraser-idle-wait", "eraser:idle:0.25,wait,deadline=30s"},
          {"eraser-shards-wait", "eraser:shards:1,wait,deadline=30s"},
          {"eraser-shards-partial", "eraser:shards:4,partial,deadline=30s"},
          {"eraser-shards6-partial", "eraser:shards:6,partial,deadline=30s"},
          {"eraser-lazy-prefix", "eraser:lazy,prefix,deadline=30s"},
          {"eraser-shards-prefix", "eraser:shards:6,prefix,deadline=30s"},
          {"eraser-shards-soft", "eraser:shards:4,soft,deadline=30s"},
      };
  return *presets;
}

std::string PolicyHelp() {
  std::string help =
      "Valid policies:\n"
      "  immediate\n"
      "  inference-first[,deadline=D]\n"
      "  eraser:TIMING[,RULE][,deadline=D]\n"
      "    TIMING: lazy | batch:N | periodic:T | idle[:U] | shards:A\n"
      "    RULE:   wait (default) | partial | soft | prefix | reject\n"
      "    D, T:   durations such as 500ms, 30s, 2m (deadline default 30s)\n"
      "Presets:\n";
  for (const auto& [name, definition] : Presets()) {
    help += "  " + name +
            std::string(name.size() < 22 ? 22 - name.size() : 1, ' ') +
            definition + "\n";
  }
  return help;
}

Status Policy::Validate() const {
  if (batch_size < 1 || batch_size > 1'000'000) {
    return InvalidArgumentError("policy: batch size must be in 1..1000000");
  }
  if (period <= Duration(0)) {
    return InvalidArgumentError("policy: the period must be positive");
  }
  if (!(idle_utilization >= 0 && idle_utilization <= 1)) {
    return InvalidArgumentError("policy: idle utilisation must be in [0, 1]");
  }
  if (max_affected > 1'000'000) {
    return InvalidArgumentError("policy: shards:A needs A in 0..1000000");
  }
  if (deadline <= Duration(0)) {
    return InvalidArgumentError("policy: the deadline must be positive");
  }
  return OkStatus();
}

StatusOr<Policy> ParsePolicy(std::string_view text) {
  for (const auto& [name, definition] : Presets()) {
    if (text == name && definition != name) {
      ASSIGN_OR_RETURN(Policy policy, ParsePolicy(definition));
      policy.name = name;
      return policy;
    }
  }
  Policy policy;
  if (text == "immediate") {
    policy.kind = PolicyKind::kImmediate;
  } else if (text.substr(0, 15) == "inference-first") {
    policy.kind = PolicyKind::kInferenceFirst;
    const std::string_view rest = text.substr(15);
    if (!rest.empty()) {
      if (rest.substr(0, 10) != ",deadline=") {
        return Bad(text, "inference-first takes only ,deadline=D");
      }
      RETURN_IF_ERROR(ParseDeadline(text, rest.substr(1), &policy));
    }
  } else if (text.substr(0, 7) == "eraser:") {
    ASSIGN_OR_RETURN(policy, ParseEraser(text, text.substr(7)));
  } else {
    return Bad(text, "not a policy or preset name");
  }
  policy.name = std::string(text);
  return policy;
}

StatusOr<std::vector<Policy>> ParsePolicyList(std::string_view list) {
  // Spaces beside the separators inside a policy ("eraser:lazy, wait")
  // belong to it: only the others separate policies.
  auto joins = [](char c) { return c == ',' || c == ':' || c == '='; };
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  std::string joined;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (space(list[i])) {
      std::size_t next = i;
      while (next < list.size() && space(list[next])) ++next;
      if ((!joined.empty() && joins(joined.back())) ||
          (next < list.size() && joins(list[next]))) {
        i = next - 1;
        continue;
      }
    }
    joined += list[i];
  }
  const std::string_view text = joined;
  std::vector<Policy> policies;
  std::set<std::string> names;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find_first_of("; \t\n", start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(start, end - start);
    if (!item.empty()) {
      ASSIGN_OR_RETURN(Policy policy, ParsePolicy(item));
      if (!names.insert(policy.name).second) {
        return InvalidArgumentError("policy '" + policy.name +
                                    "' is listed twice");
      }
      policies.push_back(std::move(policy));
    }
    start = end + 1;
  }
  if (policies.empty()) {
    return InvalidArgumentError("no policy given\n" + PolicyHelp());
  }
  return policies;
}

}  // namespace eraser::scheduler
