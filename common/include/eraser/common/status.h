// Status: the result of an operation that can fail, without exceptions.
//
// A Status is either OK or carries a code and a human-readable message. It is
// [[nodiscard]]: a caller that really means to drop one writes
// `status.IgnoreError()` so the decision is visible in the code.
//
// Which code to use:
//   kInvalidArgument    the caller's input is wrong (bad flag, bad trace row,
//                       wrong feature size); retrying the same call fails.
//   kNotFound           a named thing (sample, owner, sequence, file) is
//   absent. kAlreadyExists      creating something that is already there.
//   kFailedPrecondition the system is not in a state that allows the call
//                       (e.g. a data directory built with another config).
//   kResourceExhausted  a bounded resource is full (inference queue); retry
//                       later.
//   kUnavailable        the service is shutting down or refuses for now.
//   kDataLoss           stored or input data is corrupt or truncated.
//   kInternal           a bug or an unexpected failure inside a library.
#ifndef ERASER_COMMON_STATUS_H_
#define ERASER_COMMON_STATUS_H_

#include <ostream>
#include <string>
#include <string_view>

namespace eraser {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kFailedPrecondition = 4,
  kResourceExhausted = 5,
  kUnavailable = 6,
  kDataLoss = 7,
  kInternal = 8,
};

// "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for values outside the enum.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  // A status with `code`; the message is dropped when `code` is kOk.
  Status(StatusCode code, std::string message);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK", or "NOT_FOUND: sample 42 is not in the data directory".
  std::string ToString() const;

  // The same code with "context: " prepended to the message. OK stays OK.
  Status WithContext(std::string_view context) const;

  // Drops the status on purpose.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend bool operator!=(const Status& a, const Status& b) { return !(a == b); }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status OkStatus() { return Status(); }
Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status FailedPreconditionError(std::string message);
Status ResourceExhaustedError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status InternalError(std::string message);

}  // namespace eraser

#define ERASER_STATUS_CONCAT_INNER_(a, b) a##b
#define ERASER_STATUS_CONCAT_(a, b) ERASER_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Status) and returns it from the enclosing function when
// it is not OK.
#define RETURN_IF_ERROR(expr)                             \
  do {                                                    \
    ::eraser::Status eraser_status_macro_value_ = (expr); \
    if (!eraser_status_macro_value_.ok()) {               \
      return eraser_status_macro_value_;                  \
    }                                                     \
  } while (false)

#endif  // ERASER_COMMON_STATUS_H_
