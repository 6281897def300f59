#include "eraser/workloads/trace.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "eraser/common/ascii.h"
#include "eraser/common/numbers.h"

namespace eraser::workloads {
namespace {

constexpr char kHeader[] = "time_ms,op,target";
constexpr int kMaxReported = 20;

// A non-negative decimal number, an exponent allowed (1e3, as pandas and
// numpy may write times).
bool ParseTime(std::string_view text, double* out) {
  if (text.empty() || text.size() > 32 ||
      text.find_first_not_of("0123456789.eE+-") != std::string_view::npos ||
      !(IsAsciiDigit(text[0]) || text[0] == '.')) {
    return false;
  }
  return ParseDouble(text, out);
}

bool ParseIndex(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  *out = std::strtoull(std::string(text).c_str(), nullptr, 10);
  return true;
}

}  // namespace

std::size_t Trace::inferences() const {
  std::size_t n = 0;
  for (const TraceEvent& e : events) n += e.op == TraceEvent::Op::kInfer;
  return n;
}

std::size_t Trace::deletions() const { return events.size() - inferences(); }

StatusOr<Trace> ParseTrace(std::string_view csv, const std::string& source) {
  Trace trace;
  std::vector<std::string> errors;
  int bad = 0;
  auto report = [&](int line, const std::string& what) {
    if (++bad <= kMaxReported) {
      errors.push_back("line " + std::to_string(line) + ": " + what);
    }
  };
  int line = 0;
  std::size_t pos = 0;
  double last_time = 0;
  while (pos < csv.size()) {
    std::size_t end = csv.find('\n', pos);
    if (end == std::string_view::npos) end = csv.size();
    std::string_view row = csv.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (line == 1) {
      // A UTF-8 byte-order mark (spreadsheets write one) is skipped, as in
      // CSV datasets.
      if (row.substr(0, 3) == "\xEF\xBB\xBF") row.remove_prefix(3);
      if (row != kHeader) {
        report(1, std::string("the header must be '") + kHeader + "'");
      }
      continue;
    }
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = row.find(',', start);
      fields.push_back(row.substr(start, comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (fields.size() != 3) {
      report(line, "expected 3 fields, found " + std::to_string(fields.size()) +
                       (row.empty() ? " (empty line)" : ""));
      continue;
    }
    TraceEvent e;
    e.line = line;
    if (!ParseTime(fields[0], &e.time_ms)) {
      report(line, "time_ms '" + std::string(fields[0]) +
                       "' is not a non-negative number");
      continue;
    }
    if (e.time_ms < last_time) {
      report(line, "time_ms goes backwards (" + std::string(fields[0]) +
                       " after a later row); rows must be sorted by time");
      continue;
    }
    if (fields[1] == "infer") {
      e.op = TraceEvent::Op::kInfer;
      if (!ParseIndex(fields[2], &e.test_index)) {
        report(line, "infer target '" + std::string(fields[2]) +
                         "' is not a test-set index");
        continue;
      }
    } else if (fields[1] == "delete") {
      e.op = TraceEvent::Op::kDelete;
      StatusOr<storage::DeletionTarget> target =
          storage::DeletionTarget::Parse(std::string(fields[2]));
      if (!target.ok()) {
        report(line, target.status().message());
        continue;
      }
      e.deletion = *target;
    } else {
      report(line, "unknown op '" + std::string(fields[1]) +
                       "' (expected infer or delete)");
      continue;
    }
    last_time = e.time_ms;
    trace.events.push_back(e);
  }
  if (line == 0) report(1, "empty file: the header is missing");
  if (bad > 0) {
    std::string message = source + ": " + std::to_string(bad) + " bad row" +
                          (bad == 1 ? "" : "s") + ", trace rejected";
    for (const std::string& e : errors) message += "\n  " + e;
    if (bad > kMaxReported) {
      message += "\n  ... and " + std::to_string(bad - kMaxReported) + " more";
    }
    return InvalidArgumentError(message);
  }
  return trace;
}

StatusOr<Trace> ReadTrace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read trace " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return ParseTrace(text.str(), path);
}

Status ValidateTrace(const Trace& trace, std::size_t test_size) {
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceEvent::Op::kInfer && e.test_index >= test_size) {
      return InvalidArgumentError(
          "line " + std::to_string(e.line) + ": test index " +
          std::to_string(e.test_index) + " is outside the test split (" +
          std::to_string(test_size) + " samples)");
    }
  }
  return OkStatus();
}

Status ValidateTrace(const Trace& trace, const datasets::Split& test) {
  RETURN_IF_ERROR(ValidateTrace(trace, test.size()));
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceEvent::Op::kInfer && test.erased(e.test_index)) {
      return InvalidArgumentError(
          "line " + std::to_string(e.line) + ": test sample " +
          std::to_string(e.test_index) +
          " was erased by a deletion of its owner (generate the trace "
          "again with 'eraser trace')");
    }
  }
  return OkStatus();
}

std::string FormatTrace(const Trace& trace) {
  std::string out = std::string(kHeader) + "\n";
  for (const TraceEvent& e : trace.events) {
    // Trim trailing zeros: 12.500 -> 12.5, 12.000 -> 12.
    std::string t = FormatFixed(e.time_ms, 3);
    t.erase(t.find_last_not_of('0') + 1);
    if (t.back() == '.') t.pop_back();
    out += t;
    if (e.op == TraceEvent::Op::kInfer) {
      out += ",infer," + std::to_string(e.test_index) + "\n";
    } else {
      out += ",delete," + e.deletion.ToString() + "\n";
    }
  }
  return out;
}

Status WriteTrace(const Trace& trace, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << FormatTrace(trace);
  out.close();
  if (!out) return InternalError("cannot write trace " + path);
  return OkStatus();
}

}  // namespace eraser::workloads
