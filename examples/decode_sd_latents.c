/* Decodes Stable Diffusion latents stored in a .safetensors file to a PNG, through latentforge's
 * C API: what a C (or FFI) Stable Diffusion pipeline does after its last denoising step.
 *
 *   decode_sd_latents CONFIG.yaml WEIGHTS LATENTS.safetensors [TENSOR_NAME] OUT.png
 *
 * CONFIG and WEIGHTS: the original first-stage config (e.g. v1-inference.yaml) and checkpoint
 * (sd-v1-4.ckpt, vae.safetensors, diffusers layout). The latents are in the diffusion model's
 * space (scaled by scale_factor, as `latentforge encode` writes "latents"). */
#include <stdio.h>
#include <string.h>

#include <latentforge/latentforge.h>

static int fail(const char* what) {
  fprintf(stderr, "decode_sd_latents: %s: %s\n", what, lf_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr,
            "usage: decode_sd_latents CONFIG.yaml WEIGHTS LATENTS.safetensors [NAME] OUT.png\n");
    return 2;
  }
  const char* name = argc == 6 ? argv[4] : "latents";
  const char* out = argv[argc - 1];
  lf_model* model = NULL;
  lf_tensor latents = LF_TENSOR_INIT, images = LF_TENSOR_INIT;
  lf_model_info info;
  int status = 1;

  if (lf_model_open_original(argv[1], argv[2], "cpu", &model) != LF_OK) return fail("open");
  if (lf_model_get_info(model, &info) != LF_OK) goto done;
  if (lf_read_tensor(argv[3], name, &latents) != LF_OK) {
    fail("latents");
    goto done;
  }
  if (lf_decode(model, &latents, &images) != LF_OK) {
    fail("decode");
    goto done;
  }
  if (lf_write_images(out, &images, 8) != LF_OK) {
    fail("write");
    goto done;
  }
  printf("%s: %lld image(s) of %lldx%lld from latents [%lld, %lld, %lld, %lld] (%s, f=%lld)\n",
         out, (long long)images.shape[0], (long long)images.shape[2], (long long)images.shape[3],
         (long long)latents.shape[0], (long long)latents.shape[1], (long long)latents.shape[2],
         (long long)latents.shape[3], info.kind, (long long)info.factor);
  status = 0;
done:
  lf_tensor_free(&latents);
  lf_tensor_free(&images);
  lf_model_close(model);
  return status;
}
