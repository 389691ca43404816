// stb's image decoders, encoders and resampler, compiled into the fuzz build with the sanitizers
// and coverage, in place of Debian's uninstrumented libstb (the same headers).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
