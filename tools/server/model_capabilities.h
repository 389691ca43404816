// What the pages may do with a served model (GET /api/models: "capabilities"), read from its
// config without loading its weights: reconstruct, edit codes, walk the latent space, sample.
#pragma once

#include "server/served_models.h"

namespace lf::serve {

// {reconstruct, codes: {num_codes} | null, latent: {} | null, sample, prior: {...} | null,
//  test_images: N}
Json model_capabilities(const ServedModel& model);

}  // namespace lf::serve
