// Tokenizes images with a VQ model (VQ-VAE run folder, or an original taming VQGAN config and
// checkpoint) through latentforge's C++ API and prints each image's code map, one row per line.
//
//   tokenize --model RUN_DIR IMAGE...
//   tokenize --config CONFIG.yaml --weights WEIGHTS IMAGE...
//
// Images: png / jpg, or a .safetensors file with "images" [N, C, H, W] in [-1, 1].
#include <latentforge/latentforge.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string model_dir, config, weights;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--model" || arg == "--config" || arg == "--weights") && i + 1 < argc) {
      (arg == "--model" ? model_dir : arg == "--config" ? config : weights) = argv[++i];
    } else {
      inputs.push_back(arg);
    }
  }
  if (inputs.empty() || (model_dir.empty() == config.empty()) ||
      config.empty() != weights.empty()) {
    std::fprintf(stderr,
                 "usage: tokenize --model RUN_DIR IMAGE...\n"
                 "       tokenize --config CONFIG.yaml --weights WEIGHTS IMAGE...\n");
    return 2;
  }
  try {
    auto model = model_dir.empty() ? latentforge::Model::open_original(config, weights)
                                   : latentforge::Model::open(model_dir);
    const auto& info = model.info();
    std::printf("# %s, %lld codes, %lld pixels per code (latentforge %s)\n", info.kind.c_str(),
                static_cast<long long>(info.codebook_size), static_cast<long long>(info.factor),
                latentforge::version().c_str());
    for (const auto& input : inputs) {
      const auto images = latentforge::read_images(input, info.image_channels);
      const auto codes = model.encode_indices(images);  // [N, h, w] int64
      const auto map = codes.accessor<int64_t, 3>();
      for (int64_t n = 0; n < codes.size(0); ++n) {
        std::printf("%s[%lld] %lldx%lld\n", input.c_str(), static_cast<long long>(n),
                    static_cast<long long>(codes.size(1)), static_cast<long long>(codes.size(2)));
        for (int64_t y = 0; y < codes.size(1); ++y) {
          for (int64_t x = 0; x < codes.size(2); ++x)
            std::printf(x == 0 ? "%lld" : " %lld", static_cast<long long>(map[n][y][x]));
          std::printf("\n");
        }
      }
    }
  } catch (const latentforge::Error& e) {
    std::fprintf(stderr, "tokenize: %s\n", e.what());
    return 1;
  }
  return 0;
}
