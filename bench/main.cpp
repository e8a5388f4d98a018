// One benchmark binary for every micro-benchmark file in bench/.
#include <benchmark/benchmark.h>

#include "pactq/common/memory_tuning.h"

int main(int argc, char** argv) {
  pactq::keep_freed_memory_mapped();  // as the pactq command does
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
