// `latentforge preview`: load a dataset through the data loader and write a grid of its images.
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "core/log.h"
#include "data/data_loader.h"
#include "data/dataset_factory.h"
#include "io/tensor_io.h"

namespace lf::cli {

namespace {
struct PreviewOptions {
  DatasetSpec data;
  int64_t count = 16;
  int64_t nrow = 4;
  bool shuffle = true;
  std::string out = "runs/preview/grid.png";
};

void run_preview(const PreviewOptions& options, const GlobalOptions& globals) {
  apply_globals(globals);
  const auto t0 = std::chrono::steady_clock::now();
  auto dataset = open_dataset(options.data);
  const double open_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto shape = dataset->image_shape();
  std::printf("dataset   %s\n", dataset->describe().c_str());
  std::printf("images    %ld of %ldx%ldx%ld, opened in %.2f s\n", (long)dataset->size(),
              (long)shape[0], (long)shape[1], (long)shape[2], open_s);

  DataLoaderOptions loader_options;
  loader_options.batch_size = std::min<int64_t>(options.count, dataset->size());
  loader_options.shuffle = options.shuffle;
  loader_options.seed = globals.seed;
  DataLoader loader(dataset, loader_options);
  const Batch batch = loader.next();

  const auto names = dataset->class_names();
  if (!names.empty()) {
    std::printf("labels   ");
    for (int64_t i = 0; i < batch.labels.size(0); ++i) {
      const auto label = batch.labels[i].item<int64_t>();
      std::printf(" %s%s", label >= 0 && label < (int64_t)names.size() ? names[label].c_str() : "?",
                  i + 1 < batch.labels.size(0) ? "," : "\n");
    }
  }
  std::printf("pixels    mean %.4f, std %.4f, range [%.3f, %.3f] (in [-1, 1])\n",
              batch.images.mean().item<double>(), batch.images.std().item<double>(),
              batch.images.min().item<double>(), batch.images.max().item<double>());
  prepare_output(options.out);
  write_images(options.out, batch.images, options.nrow);
  std::printf("wrote     %s\n", options.out.c_str());
}
}  // namespace

void register_preview(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<PreviewOptions>();
  auto* cmd = app.add_subcommand("preview", "load a dataset and write a grid of its images");
  cmd->add_option("--data", options->data.root,
                  "folder of IDX files or images (default: Debian's Fashion-MNIST)");
  cmd->add_option("--split", options->data.split, "train or test (IDX datasets)")
      ->capture_default_str();
  cmd->add_option("--image-size", options->data.image_size, "resize to this size (0 = native)")
      ->capture_default_str();
  cmd->add_option("-n,--count", options->count, "images in the grid")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--nrow", options->nrow, "images per grid row")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("!--no-shuffle", options->shuffle,
                "take the first images instead of a random draw");
  cmd->add_option("-o,--out", options->out, "output .png/.jpg grid or .safetensors")
      ->capture_default_str();
  cmd->callback([options, &globals] { run_preview(*options, globals); });
}

}  // namespace lf::cli
