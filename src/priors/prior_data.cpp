// Assembling a prior's code dataset from its stages.
#include "priors/prior_data.h"

#include "core/error.h"

namespace lf {

PriorStages PriorStages::from_config(const Config& run_config) {
  PriorStages stages;
  if (!run_config.has("stage1"))
    fail("prior", "{}: a prior's config needs stage1: the run folder of its VQ model",
         run_config.source());
  stages.stage1 = run_config.get<std::string>("stage1");
  stages.cond_stage = run_config.get<std::string>("cond_stage", "");
  stages.cond_transform = run_config.get<std::string>("cond_transform", stages.cond_transform);
  return stages;
}

Json PriorStages::to_json() const {
  Json json = {{"stage1", stage1}};
  if (!cond_stage.empty()) {
    json["cond_stage"] = cond_stage;
    json["cond_transform"] = cond_transform;
  }
  return json;
}

bool is_prior_config(const Config& run_config) {
  return run_config.has("stage1");
}

PriorData open_prior_data(const PriorStages& stages, const DatasetSpec& spec,
                          torch::Device device) {
  const auto z = cached_codes(stages.stage1, spec, device);
  PriorData out;
  out.model_options = {{"num_codes", z.num_codes}, {"grid", {z.codes.size(1), z.codes.size(2)}}};
  torch::Tensor cond_codes;
  std::string description = fmt::format("codes of {} under {}", spec.split, stages.stage1);
  if (!stages.cond_stage.empty()) {
    DatasetSpec cond_spec = spec;
    cond_spec.transform = stages.cond_transform;
    const auto c = cached_codes(stages.cond_stage, cond_spec, device);
    if (c.codes.size(0) != z.codes.size(0))
      fail("prior", "{} has {} condition code maps for {} code maps", stages.cond_stage,
           c.codes.size(0), z.codes.size(0));
    cond_codes = c.codes;
    out.model_options["cond_num_codes"] = c.num_codes;
    out.model_options["cond_grid"] = {c.codes.size(1), c.codes.size(2)};
    description +=
        fmt::format(", conditioned on {} codes under {}", stages.cond_transform, stages.cond_stage);
  }
  out.dataset =
      std::make_shared<CodeDataset>(z.codes, z.labels, cond_codes, z.num_classes, description);
  return out;
}

}  // namespace lf
