// Policies from their strings in tests: a bad string ends the test binary.
#ifndef ERASER_TESTS_TESTING_POLICIES_H_
#define ERASER_TESTS_TESTING_POLICIES_H_

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "eraser/scheduler/policy.h"

namespace eraser::testing {

inline scheduler::Policy PolicyOrDie(const std::string& text) {
  StatusOr<scheduler::Policy> p = scheduler::ParsePolicy(text);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", p.status().ToString().c_str());
    std::abort();
  }
  return *p;
}

inline std::vector<scheduler::Policy> PoliciesOrDie(
    std::initializer_list<const char*> texts) {
  std::vector<scheduler::Policy> out;
  for (const char* t : texts) out.push_back(PolicyOrDie(t));
  return out;
}

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_POLICIES_H_
