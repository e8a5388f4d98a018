// Writes the demo .pqm (tests/runtime/demo_model.h) to argv[1], for the test
// that builds examples/classify against an installed pactq.
#include <cstdio>
#include <exception>

#include "demo_model.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.pqm\n", argv[0]);
    return 2;
  }
  try {
    pactq::rt::test::demo_model_writer(5).write(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
