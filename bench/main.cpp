// One benchmark binary for every micro-benchmark file in bench/.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
