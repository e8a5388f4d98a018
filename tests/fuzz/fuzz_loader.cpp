// libFuzzer entry for the .pqm loader: any byte string must either load or
// throw pactq::rt::FormatError; never crash, never read out of bounds (ASan).
// A model that loads is also run once on a tiny batch when its planned
// activation buffers are small, so the executor's use of validated shapes is fuzzed too.
// Build: cmake -DPACTQ_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ...
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pactq/runtime/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    pactq::rt::Model m = pactq::rt::Model::load_from_memory(data, size, "fuzz.pqm");
    const size_t pixels =
        static_cast<size_t>(m.input_channels()) * m.input_height() * m.input_width();
    if (pixels <= 4096 && m.activation_bytes_per_image() <= (16u << 20)) {
      std::vector<float> x(pixels, 0.5f);
      (void)m.run(x.data(), 1);
    }
  } catch (const pactq::rt::FormatError&) {
  }
  return 0;
}
