// The pass/fail bookkeeping shared by the C++ test programs (one program per file, so the
// counters live once per executable).
#pragma once
#include <cstdio>
#include <string>

namespace advcorrect::testing {

inline int failures = 0;
inline int checks = 0;

inline void Check(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

// Prints the closing "N passed, N failed" line and returns the process exit code.
inline int Report() {
  std::printf("%d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace advcorrect::testing
