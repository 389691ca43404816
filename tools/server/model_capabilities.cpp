// A served model's capabilities: see model_capabilities.h.
#include "server/model_capabilities.h"

#include "io/config.h"
#include "server/model_inputs.h"

namespace lf::serve {

namespace {

// The codebook size from a model config: ours (quantizer.num_codes) or taming's (n_embed).
Json capability_num_codes(const Config& config) {
  for (const char* key : {"model.quantizer.num_codes", "model.n_embed", "model.num_codes"})
    if (config.has(key)) return config.get<int64_t>(key);
  return nullptr;
}

Json capability_grid(const Config& config, const char* key) {
  const Json* grid = config.find(key);
  return grid && grid->is_array() && grid->size() == 2 ? *grid : Json();
}

}  // namespace

Json model_capabilities(const ServedModel& model) {
  Json out = {{"reconstruct", model.reconstructs()},
              {"codes", nullptr},
              {"latent", nullptr},
              {"sample", false},
              {"prior", nullptr},
              {"test_images", 0}};
  if (!model.ready() || !model.config.is_object()) return out;
  const Config config(model.config);
  std::shared_ptr<const Dataset> test;
  try {
    test = open_test_split(config);
  } catch (const std::exception&) {
  }
  if (test) out["test_images"] = test->size();
  if (model.has_codes()) out["codes"] = {{"num_codes", capability_num_codes(config)}};
  if (model.has_latent()) out["latent"] = {{"kind", model.kind}};
  if (model.kind == "vae") out["sample"] = true;
  if (model.is_prior()) {
    out["sample"] = true;
    const int64_t classes = config.get<int64_t>("model.num_classes", 0);
    Json names = Json::array();
    if (classes > 0 && test)
      for (const auto& name : test->class_names()) names.push_back(name);
    const Json cond_grid = capability_grid(config, "model.cond_grid");
    out["prior"] = {{"num_classes", classes},
                    {"class_names", names},
                    {"grid", capability_grid(config, "model.grid")},
                    {"num_codes", capability_num_codes(config)},
                    {"sketch", config.get<int64_t>("model.cond_num_codes", 0) > 0},
                    {"cond_transform", config.get<std::string>("cond_transform", "")}};
  }
  return out;
}

}  // namespace lf::serve
