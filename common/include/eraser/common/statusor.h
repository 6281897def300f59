// StatusOr<T>: either a value of type T or a non-OK Status.
//
// Reading the value of a StatusOr that holds an error is a programming error
// and aborts the process with the status in the message; check ok() first or
// use ASSIGN_OR_RETURN.
#ifndef ERASER_COMMON_STATUSOR_H_
#define ERASER_COMMON_STATUSOR_H_

#include <optional>
#include <type_traits>
#include <utility>

#include "eraser/common/status.h"

namespace eraser {
namespace internal {
[[noreturn]] void DieOnBadStatusOrAccess(const Status& status);
Status OkStatusOrError();
}  // namespace internal

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  static_assert(!std::is_same_v<std::decay_t<T>, Status>,
                "StatusOr<Status> is not allowed");

  // Holds `status`, which must not be OK. An OK status is a bug in the
  // caller; it is turned into kInternal so it cannot pass for a value.
  StatusOr(const Status& status) : status_(status) { CheckNotOk(); }
  StatusOr(Status&& status) : status_(std::move(status)) { CheckNotOk(); }

  // Holds a value.
  template <typename U = T, typename = std::enable_if_t<
                                std::is_constructible_v<T, U&&> &&
                                !std::is_same_v<std::decay_t<U>, StatusOr> &&
                                !std::is_same_v<std::decay_t<U>, Status>>>
  StatusOr(U&& value) : value_(std::in_place, std::forward<U>(value)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T& value() & {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckNotOk() {
    if (status_.ok()) status_ = internal::OkStatusOrError();
  }
  void CheckOk() const {
    if (!status_.ok()) internal::DieOnBadStatusOrAccess(status_);
  }

  Status status_;
  std::optional<T> value_;
};

}  // namespace eraser

// Evaluates `expr` (a StatusOr<T>); on error returns its status from the
// enclosing function, otherwise moves the value into `lhs`, which may be a
// declaration (`ASSIGN_OR_RETURN(auto db, Store::Open(options));`).
#define ASSIGN_OR_RETURN(lhs, expr)                                       \
  ERASER_ASSIGN_OR_RETURN_IMPL_(                                          \
      ERASER_STATUS_CONCAT_(eraser_statusor_macro_value_, __LINE__), lhs, \
      expr)

#define ERASER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#endif  // ERASER_COMMON_STATUSOR_H_
