// Request traces (DESIGN section 7): CSV with the header `time_ms,op,target`,
// one request per row, sorted by time. `op` is `infer` (target: a test-set
// index) or `delete` (target: `sample:<id>` or `owner:<id>`).
#ifndef ERASER_WORKLOADS_TRACE_H_
#define ERASER_WORKLOADS_TRACE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"
#include "eraser/storage/records.h"

namespace eraser::workloads {

struct TraceEvent {
  enum class Op { kInfer, kDelete };
  double time_ms = 0;  // from the start of the trace, >= 0
  Op op = Op::kInfer;
  uint64_t test_index = 0;           // for kInfer
  storage::DeletionTarget deletion;  // for kDelete
  int line = 0;                      // 1-based line in the source, 0 if none
};

struct Trace {
  std::vector<TraceEvent> events;

  std::size_t inferences() const;
  std::size_t deletions() const;
  double duration_ms() const {
    return events.empty() ? 0 : events.back().time_ms;
  }
};

// Parses CSV text. Every bad row (wrong field count, a time that is not a
// non-negative number or goes backwards, an unknown op, a malformed target)
// is reported with its line number; any bad row fails the whole parse with
// kInvalidArgument listing up to 20 of them. Nothing is skipped silently.
// `source` names the text in messages (a file path).
StatusOr<Trace> ParseTrace(std::string_view csv, const std::string& source);

// Reads and parses a file; kNotFound if it cannot be read.
StatusOr<Trace> ReadTrace(const std::string& path);

// Checks targets against the data: test indices below `test_size`.
// kInvalidArgument naming the first offending line.
Status ValidateTrace(const Trace& trace, std::size_t test_size);
// The same against a test split, whose erased rows (Split::erased) are
// refused too.
Status ValidateTrace(const Trace& trace, const datasets::Split& test);

// The CSV form (times with up to three decimals).
std::string FormatTrace(const Trace& trace);
Status WriteTrace(const Trace& trace, const std::string& path);

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_TRACE_H_
