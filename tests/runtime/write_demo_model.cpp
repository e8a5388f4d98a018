// Writes the demo .pqm (tests/runtime/demo_model.h) to argv[1], for the tests
// that use the runtime from outside (the installed-package example, the
// ctypes test). With argv[2], also writes there the logits rt::Model gives for
// the demo input (demo_pixel), one hex float ("%a") per line: what a caller
// of the C API must get bit for bit.
#include <cstdio>
#include <exception>
#include <vector>

#include "demo_model.h"
#include "pactq/runtime/model.h"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s OUT.pqm [LOGITS.txt]\n", argv[0]);
    return 2;
  }
  try {
    pactq::rt::test::demo_model_writer(5).write(argv[1]);
    if (argc == 3) {
      const pactq::rt::Model m = pactq::rt::Model::load(argv[1]);
      const int batch = pactq::rt::test::kDemoBatch;
      std::vector<float> pixels(static_cast<size_t>(batch) * 3 * 8 * 8);
      for (size_t k = 0; k < pixels.size(); ++k) pixels[k] = pactq::rt::test::demo_pixel(k);
      pactq::rt::ExecutionContext context(1);
      const std::vector<float> logits = m.run(pixels.data(), batch, context);
      std::FILE* f = std::fopen(argv[2], "w");
      if (f == nullptr) {
        std::perror(argv[2]);
        return 1;
      }
      for (float v : logits) std::fprintf(f, "%a\n", static_cast<double>(v));
      if (std::fclose(f) != 0) {
        std::perror(argv[2]);
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
