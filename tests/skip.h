// When a test may skip. Only for what a machine truly lacks: a CPU instruction
// set, a GPU (PACTQ_SKIP_HARDWARE). Anything scripts/setup installs or
// ../shared provides (data sets, Node and ONNX Runtime, Chromium, the Python
// peers) is PACTQ_SKIP_MISSING: a skip on a developer's half-set-up machine,
// a failure where PACTQ_STRICT_SKIPS=1 (.ci/run sets it), so CI cannot pass
// by skipping what it should have run.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace pactq::test {

inline bool strict_skips() {
  const char* v = std::getenv("PACTQ_STRICT_SKIPS");
  return v != nullptr && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
}

}  // namespace pactq::test

// Usable in a test body or SetUp (returns from it, as GTEST_SKIP does).
#define PACTQ_SKIP_MISSING(...)                                                         \
  do {                                                                                  \
    if (::pactq::test::strict_skips()) {                                                \
      GTEST_FAIL() << __VA_ARGS__                                                       \
                   << " (PACTQ_STRICT_SKIPS=1: a missing data set or tool fails here; " \
                      "run scripts/setup)";                                             \
    } else {                                                                            \
      GTEST_SKIP() << __VA_ARGS__;                                                      \
    }                                                                                   \
  } while (0)

#define PACTQ_SKIP_HARDWARE(...) GTEST_SKIP() << __VA_ARGS__
