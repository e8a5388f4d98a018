/* classify: the top class of each image with a .pqm model, through the
 * runtime's C API, built against an installed pactq (find_package(pactq)).
 *
 *   classify MODEL.pqm [IMAGE.ppm|IMAGE.pgm ...]
 *
 * Images are binary PPM (P6, RGB) or PGM (P5, grey) of the model's input size,
 * 8-bit. Without images it classifies one mid-grey image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pactq/runtime/c_api.h"

/* Reads a binary P5/P6 image of exactly channels x height x width into
 * pixels ([C, H, W] floats in [0, 1]). Returns 0 on success. */
static int read_image(const char* path, int channels, int height, int width, float* pixels) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "%s: cannot open\n", path);
    return 1;
  }
  char magic[3] = {0};
  int w = 0, h = 0, maxval = 0;
  if (fscanf(f, "%2s %d %d %d", magic, &w, &h, &maxval) != 4 || fgetc(f) == EOF) {
    fprintf(stderr, "%s: not a binary PPM/PGM file\n", path);
    fclose(f);
    return 1;
  }
  const int file_channels = strcmp(magic, "P6") == 0 ? 3 : strcmp(magic, "P5") == 0 ? 1 : 0;
  if (file_channels != channels || w != width || h != height || maxval != 255) {
    fprintf(stderr, "%s: expected an 8-bit %s of %dx%d, got %s %dx%d max %d\n", path,
            channels == 3 ? "P6" : "P5", width, height, magic, w, h, maxval);
    fclose(f);
    return 1;
  }
  const size_t n = (size_t)channels * height * width;
  unsigned char* bytes = malloc(n);
  const int ok = bytes != NULL && fread(bytes, 1, n, f) == n;
  fclose(f);
  if (!ok) {
    fprintf(stderr, "%s: truncated image\n", path);
    free(bytes);
    return 1;
  }
  for (int c = 0; c < channels; ++c) /* interleaved HWC -> planar CHW */
    for (size_t i = 0; i < (size_t)height * width; ++i)
      pixels[(size_t)c * height * width + i] = bytes[i * channels + c] / 255.0f;
  free(bytes);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.pqm [IMAGE.ppm ...]\n", argv[0]);
    return 2;
  }
  pactq_model* model = NULL;
  if (pactq_model_load(argv[1], &model) != PACTQ_OK) {
    fprintf(stderr, "%s\n", pactq_last_error());
    return 1;
  }
  int channels = 0, height = 0, width = 0;
  pactq_model_input_shape(model, &channels, &height, &width);
  const int classes = pactq_model_classes(model);
  const int batch = argc > 2 ? argc - 2 : 1;
  const size_t per_image = (size_t)channels * height * width;
  float* pixels = malloc(sizeof(float) * per_image * batch);
  float* logits = malloc(sizeof(float) * classes * batch);
  int status = pixels == NULL || logits == NULL;
  for (int b = 0; b < batch && status == 0; ++b) {
    if (argc > 2) {
      status = read_image(argv[2 + b], channels, height, width, pixels + per_image * b);
    } else {
      for (size_t i = 0; i < per_image; ++i) pixels[i] = 0.5f;
    }
  }
  if (status == 0 && pactq_model_run(model, NULL, pixels, batch, logits) != PACTQ_OK) {
    fprintf(stderr, "%s\n", pactq_last_error());
    status = 1;
  }
  for (int b = 0; b < batch && status == 0; ++b) {
    int best = 0;
    for (int k = 1; k < classes; ++k)
      if (logits[b * classes + k] > logits[b * classes + best]) best = k;
    const char* name = pactq_model_class_name(model, best);
    printf("%s: class %d (%s) logit %.4f\n", argc > 2 ? argv[2 + b] : "grey", best,
           name != NULL ? name : "?", logits[b * classes + best]);
  }
  free(pixels);
  free(logits);
  pactq_model_free(model);
  return status;
}
