// `latentforge edges`: edge maps ("sketches") of images, the condition images of sketch -> garment
// priors; from image files or from the first images of a dataset split.
#include "cli.h"
#include "core/error.h"
#include "data/dataset_factory.h"
#include "data/edge_map.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"

namespace lf::cli {

namespace {

struct EdgesCommandOptions {
  std::string input;
  std::string data;            // --data ROOT (with --first)
  std::string split = "test";  // --split
  int64_t first = 0;           // --first N dataset images
  int64_t nrow = 8;
  std::string out;
};

}  // namespace

void register_edges(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<EdgesCommandOptions>();
  auto* cmd = app.add_subcommand(
      "edges", "edge maps (sketches) of images, for sampling image-conditional priors (--cond)");
  cmd->add_option("input", o->input, "input image or .safetensors 'images'");
  cmd->add_option("--first", o->first, "instead of an input: the first N images of a dataset")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--data", o->data, "dataset root for --first (default: Fashion-MNIST)");
  cmd->add_option("--split", o->split, "dataset split for --first")->capture_default_str();
  cmd->add_option("--nrow", o->nrow, "images per grid row")->capture_default_str();
  cmd->add_option("-o,--out", o->out, "output image (a grid when N > 1) or .safetensors")
      ->required();
  cmd->callback([o, &globals] {
    apply_globals(globals);
    if (o->input.empty() == (o->first == 0))
      throw Error("[edges] give either an input file or --first N");
    torch::Tensor images, labels;
    if (o->first > 0) {
      DatasetSpec spec;
      spec.root = o->data;
      spec.split = o->split;
      spec.limit = o->first;
      const auto data = open_dataset(spec);
      std::vector<int64_t> indices(std::min(o->first, data->size()));
      for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
      const Batch batch = data->get_batch(indices);
      images = batch.images;
      labels = batch.labels;
    } else {
      images = read_images(o->input);
    }
    prepare_output(o->out);
    if (labels.defined() && is_safetensors_path(o->out))  // the classes travel with the sketches
      save_safetensors(o->out, {{"images", edge_map(images)}, {"labels", labels}});
    else
      write_images(o->out, edge_map(images), o->nrow);
  });
}

}  // namespace lf::cli
