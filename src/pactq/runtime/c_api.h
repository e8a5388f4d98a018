/* The runtime's C API: load a .pqm, query its shapes, run batches, free.
 * For C programs and foreign-function interfaces (Python ctypes, Go, Rust).
 * Link pactq::runtime (static, C++: link with a C++ driver) or pactq::c, the
 * shared libpactq_c.so, which exports these functions only and is what
 * dlopen() and Python's ctypes.CDLL load.
 *
 *   pactq_model* m = NULL;
 *   if (pactq_model_load("model.pqm", &m) != PACTQ_OK) {
 *     fprintf(stderr, "%s\n", pactq_last_error());
 *     return 1;
 *   }
 *   int c, h, w;
 *   pactq_model_input_shape(m, &c, &h, &w);
 *   float* logits = malloc(sizeof(float) * batch * pactq_model_classes(m));
 *   pactq_model_run(m, NULL, pixels, batch, logits);  // pixels [batch, c, h, w] in [0, 1]
 *   pactq_model_free(m);
 *
 * Errors: every call that returns a pactq_status also sets the calling
 * thread's last error: a one-line message naming the file or argument when it
 * fails, "" when it succeeds. Calls that return no status leave it alone.
 * Strings: the library owns every string it returns; never free one.
 * Threads: a model may be run from many threads at once, each passing its
 * own pactq_context (NULL: a context private to the calling thread). */
#ifndef PACTQ_RUNTIME_C_API_H_
#define PACTQ_RUNTIME_C_API_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The values are stable: new codes are added at the end. */
typedef enum pactq_status {
  PACTQ_OK = 0,
  PACTQ_ERROR_INVALID_ARGUMENT = 1, /* null pointer, batch < 1, ... */
  PACTQ_ERROR_FORMAT = 2,           /* corrupt, truncated or unsupported .pqm file */
  PACTQ_ERROR_OUT_OF_MEMORY = 3,
  PACTQ_ERROR_INTERNAL = 4,
  PACTQ_ERROR_IO = 5 /* the file cannot be opened or read; the message has the OS's reason */
} pactq_status;

typedef struct pactq_model pactq_model;
typedef struct pactq_context pactq_context;

/* The library's version, "MAJOR.MINOR.PATCH" (CMake's PROJECT_VERSION).
 * A static string: valid for as long as the library is loaded. */
const char* pactq_version(void);

/* The calling thread's last error: the message of its last call that returned
 * a pactq_status, "" if that call succeeded or there was none. Never NULL.
 * Valid until the thread's next call that returns a pactq_status (or until the
 * thread exits); copy it to keep it. */
const char* pactq_last_error(void);

pactq_status pactq_model_load(const char* path, pactq_model** model);
void pactq_model_free(pactq_model* model); /* NULL is fine */

/* Per image: the input is [channels, height, width] floats, the output
 * pactq_model_classes() floats. */
pactq_status pactq_model_input_shape(const pactq_model* model, int* channels, int* height,
                                     int* width);
int pactq_model_classes(const pactq_model* model); /* 0 for NULL */
/* Number of class names in the file (0 when it has none) and one of them:
 * NULL if out of range, else owned by the model, valid until pactq_model_free(model). */
int pactq_model_class_count(const pactq_model* model);
const char* pactq_model_class_name(const pactq_model* model, int index);

/* Buffers and worker threads for runs (threads >= 1, the caller included). */
pactq_status pactq_context_create(int threads, pactq_context** context);
void pactq_context_free(pactq_context* context); /* NULL is fine */

/* pixels: [batch, channels, height, width] floats in [0, 1]; logits: room for
 * batch * pactq_model_classes() floats. `context` may be NULL. */
pactq_status pactq_model_run(const pactq_model* model, pactq_context* context, const float* pixels,
                             int batch, float* logits);

#ifdef __cplusplus
}
#endif

#endif /* PACTQ_RUNTIME_C_API_H_ */
