/* latentforge.h compiles as C (C99) and its types are what the C API documents; called from
 * c_api_test.cpp. */
#include <string.h>

#include "latentforge/latentforge.h"

/* Opens nothing: a NULL path must come back as an error with a message, from C. */
int lf_c_header_check(void) {
  lf_model* model = (lf_model*)1;
  lf_tensor t = LF_TENSOR_INIT;
  lf_sample_options options;
  if (lf_model_open(NULL, NULL, &model) != LF_ERROR_INVALID_ARGUMENT) return 1;
  if (model != NULL) return 2;
  if (strlen(lf_last_error()) == 0) return 3;
  lf_sample_options_init(&options);
  if (options.n != 16 || options.class_label != -1 || options.top_p != 1.0) return 4;
  lf_tensor_free(&t); /* an empty tensor is ignored */
  if (strcmp(lf_version(), LATENTFORGE_VERSION) != 0) return 5;
  return 0;
}
