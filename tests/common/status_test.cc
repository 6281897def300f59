#include "eraser/common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "eraser/common/statusor.h"

namespace eraser {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(OkStatus(), s);
}

TEST(Status, ErrorsCarryCodeAndMessage) {
  struct Case {
    Status status;
    StatusCode code;
    const char* name;
  };
  const Case cases[] = {
      {InvalidArgumentError("m"), StatusCode::kInvalidArgument,
       "INVALID_ARGUMENT"},
      {NotFoundError("m"), StatusCode::kNotFound, "NOT_FOUND"},
      {AlreadyExistsError("m"), StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {FailedPreconditionError("m"), StatusCode::kFailedPrecondition,
       "FAILED_PRECONDITION"},
      {ResourceExhaustedError("m"), StatusCode::kResourceExhausted,
       "RESOURCE_EXHAUSTED"},
      {UnavailableError("m"), StatusCode::kUnavailable, "UNAVAILABLE"},
      {DataLossError("m"), StatusCode::kDataLoss, "DATA_LOSS"},
      {InternalError("m"), StatusCode::kInternal, "INTERNAL"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.code(), c.code);
    EXPECT_EQ(c.status.message(), "m");
    EXPECT_EQ(c.status.ToString(), std::string(c.name) + ": m");
  }
}

TEST(Status, OkCodeDropsMessage) {
  Status s(StatusCode::kOk, "ignored");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

TEST(Status, WithContextPrefixesMessage) {
  EXPECT_EQ(NotFoundError("sample 3").WithContext("delete").ToString(),
            "NOT_FOUND: delete: sample 3");
  EXPECT_TRUE(OkStatus().WithContext("anything").ok());
}

TEST(Status, Equality) {
  EXPECT_EQ(NotFoundError("a"), NotFoundError("a"));
  EXPECT_NE(NotFoundError("a"), NotFoundError("b"));
  EXPECT_NE(NotFoundError("a"), DataLossError("a"));
}

Status FailIf(bool fail) {
  return fail ? InvalidArgumentError("failed") : OkStatus();
}

Status Chain(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  *reached = 1;
  return OkStatus();
}

TEST(StatusMacros, ReturnIfError) {
  int reached = 0;
  EXPECT_EQ(Chain(true, &reached).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(Chain(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusMacros, AssignOrReturn) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(7).status().message(), "odd");
}

TEST(StatusOr, HoldsValue) {
  StatusOr<std::string> v = std::string("hello");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "hello");
  EXPECT_EQ(v->size(), 5u);
  EXPECT_TRUE(v.status().ok());
}

TEST(StatusOr, HoldsMoveOnlyValue) {
  StatusOr<std::unique_ptr<int>> v = std::make_unique<int>(7);
  ASSERT_TRUE(v.ok());
  std::unique_ptr<int> p = std::move(v).value();
  EXPECT_EQ(*p, 7);
}

TEST(StatusOr, HoldsError) {
  StatusOr<int> v = NotFoundError("gone");
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status(), NotFoundError("gone"));
}

TEST(StatusOr, OkStatusBecomesInternalError) {
  StatusOr<int> v = OkStatus();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

TEST(StatusOrDeathTest, ValueOfErrorAborts) {
  StatusOr<int> v = DataLossError("broken");
  EXPECT_DEATH((void)v.value(), "DATA_LOSS: broken");
}

}  // namespace
}  // namespace eraser
