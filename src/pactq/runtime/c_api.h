/* The runtime's C API: load a .pqm, query its shapes, run batches, free.
 * For C programs and foreign-function interfaces (Python ctypes, Go, Rust).
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
 * Errors: every call that can fail returns a pactq_status; pactq_last_error()
 * then holds a one-line message (per thread) naming the file or argument.
 * Threads: a model may be run from many threads at once, each passing its
 * own pactq_context (NULL: a context private to the calling thread). */
#ifndef PACTQ_RUNTIME_C_API_H_
#define PACTQ_RUNTIME_C_API_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pactq_status {
  PACTQ_OK = 0,
  PACTQ_ERROR_INVALID_ARGUMENT = 1, /* null pointer, batch < 1, ... */
  PACTQ_ERROR_FORMAT = 2,           /* unreadable, corrupt or unsupported .pqm file */
  PACTQ_ERROR_OUT_OF_MEMORY = 3,
  PACTQ_ERROR_INTERNAL = 4
} pactq_status;

typedef struct pactq_model pactq_model;
typedef struct pactq_context pactq_context;

/* The message of the calling thread's last failed call ("" if none). */
const char* pactq_last_error(void);

pactq_status pactq_model_load(const char* path, pactq_model** model);
void pactq_model_free(pactq_model* model); /* NULL is fine */

/* Per image: the input is [channels, height, width] floats, the output
 * pactq_model_classes() floats. */
pactq_status pactq_model_input_shape(const pactq_model* model, int* channels, int* height,
                                     int* width);
int pactq_model_classes(const pactq_model* model); /* 0 for NULL */
/* Number of class names in the file (0 when it has none) and one of them. */
int pactq_model_class_count(const pactq_model* model);
const char* pactq_model_class_name(const pactq_model* model, int index); /* NULL if out of range */

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
