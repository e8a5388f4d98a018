// The C API over rt::Model: exceptions become status codes plus a per-thread
// message, so nothing is thrown across the C boundary.
#include "pactq/runtime/c_api.h"

#include <algorithm>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/runtime/model.h"

#ifndef PACTQ_VERSION
#error "PACTQ_VERSION must be defined by the build (CMake's PROJECT_VERSION)"
#endif

struct pactq_model {
  pactq::rt::Model model;
};

struct pactq_context {
  pactq::rt::ExecutionContext context;
};

namespace {

thread_local std::string last_error;

pactq_status fail(pactq_status status, const std::string& message) {
  last_error = message;
  return status;
}

// Every status call that succeeds says so: last_error describes the last call.
pactq_status ok() {
  last_error.clear();
  return PACTQ_OK;
}

// Runs `body`, mapping what it throws to a status.
template <typename Body>
pactq_status guarded(Body&& body) {
  try {
    body();
    return ok();
  } catch (const pactq::rt::IoError& e) {
    return fail(PACTQ_ERROR_IO, e.what());
  } catch (const pactq::rt::FormatError& e) {
    return fail(PACTQ_ERROR_FORMAT, e.what());
  } catch (const std::invalid_argument& e) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::bad_alloc&) {
    return fail(PACTQ_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(PACTQ_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(PACTQ_ERROR_INTERNAL, "unknown error");
  }
}

}  // namespace

extern "C" {

const char* pactq_version(void) {
  return PACTQ_VERSION;
}

const char* pactq_last_error(void) {
  return last_error.c_str();
}

pactq_status pactq_model_load(const char* path, pactq_model** model) {
  if (path == nullptr || model == nullptr) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT, "pactq_model_load: null path or model pointer");
  }
  *model = nullptr;
  return guarded([&] { *model = new pactq_model{pactq::rt::Model::load(path)}; });
}

void pactq_model_free(pactq_model* model) {
  delete model;
}

pactq_status pactq_model_input_shape(const pactq_model* model, int* channels, int* height,
                                     int* width) {
  if (model == nullptr || channels == nullptr || height == nullptr || width == nullptr) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT, "pactq_model_input_shape: null argument");
  }
  *channels = model->model.input_channels();
  *height = model->model.input_height();
  *width = model->model.input_width();
  return ok();
}

int pactq_model_classes(const pactq_model* model) {
  return model == nullptr ? 0 : model->model.classes();
}

int pactq_model_class_count(const pactq_model* model) {
  return model == nullptr ? 0 : static_cast<int>(model->model.class_names().size());
}

const char* pactq_model_class_name(const pactq_model* model, int index) {
  if (model == nullptr || index < 0 || index >= pactq_model_class_count(model)) return nullptr;
  return model->model.class_names()[static_cast<size_t>(index)].c_str();
}

pactq_status pactq_context_create(int threads, pactq_context** context) {
  if (context == nullptr) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT, "pactq_context_create: null context pointer");
  }
  if (threads < 1) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT,
                "pactq_context_create: threads must be >= 1, got " + std::to_string(threads));
  }
  *context = nullptr;
  return guarded([&] { *context = new pactq_context{pactq::rt::ExecutionContext(threads)}; });
}

void pactq_context_free(pactq_context* context) {
  delete context;
}

pactq_status pactq_model_run(const pactq_model* model, pactq_context* context, const float* pixels,
                             int batch, float* logits) {
  if (model == nullptr || pixels == nullptr || logits == nullptr) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT, "pactq_model_run: null model, pixels or logits");
  }
  if (batch < 1) {
    return fail(PACTQ_ERROR_INVALID_ARGUMENT,
                "pactq_model_run: batch must be >= 1, got " + std::to_string(batch));
  }
  return guarded([&] {
    thread_local pactq::rt::ExecutionContext own;  // NULL context: one per calling thread
    pactq::rt::ExecutionContext& ctx = context != nullptr ? context->context : own;
    const std::vector<float> out = model->model.run(pixels, batch, ctx);
    std::copy(out.begin(), out.end(), logits);
  });
}

}  // extern "C"
