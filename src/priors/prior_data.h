// A prior's training data from its run config: the `stage1` VQ model's codes of the `data` split,
// with the class labels and, when `cond_stage` names a second VQ model, the codes of the condition
// images (the same images through `cond_transform`, "edges" by default: sketches).
#pragma once

#include <memory>
#include <string>

#include "data/dataset_factory.h"
#include "io/config.h"
#include "priors/code_dataset.h"

namespace lf {

struct PriorData {
  std::shared_ptr<const CodeDataset> dataset;
  // What the prior's model options must say about the data: num_codes, grid and, with a
  // condition, cond_num_codes and cond_grid.
  Json model_options;
};

struct PriorStages {
  std::string stage1;      // the VQ model whose codes the prior learns
  std::string cond_stage;  // the condition images' VQ model ("" = none)
  std::string cond_transform = "edges";

  // Reads {stage1, cond_stage, cond_transform} from a run config; stage1 is required.
  static PriorStages from_config(const Config& run_config);
  Json to_json() const;  // the keys to merge back into the run config
};

// Whether a run config describes a prior (it names a stage1 model).
bool is_prior_config(const Config& run_config);

PriorData open_prior_data(const PriorStages& stages, const DatasetSpec& spec, torch::Device device);

}  // namespace lf
