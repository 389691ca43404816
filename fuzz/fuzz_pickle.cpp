// libFuzzer target: the restricted pickle interpreter (the data.pkl of a torch.save checkpoint).
#include <cstdlib>

#include "core/error.h"
#include "io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const lf::pickle::Graph graph = lf::pickle::unpickle("fuzz_pickle", "data.pkl", data, size);
    (void)lf::pickle::kind_name(graph.node(graph.root()).kind);
  } catch (const lf::Error&) {
  }
  return 0;
}
