// Reads the tensors of a PyTorch or PyTorch Lightning checkpoint (.ckpt/.pt/.pth saved by
// torch.save since PyTorch 1.6: a zip archive with a pickle) without Python and without running
// anything from the file: a restricted pickle interpreter rebuilds dicts, lists and tensors and
// turns every other object into an inert placeholder.
#pragma once

#include <string>

#include "io/state_dict.h"

namespace lf {

// The tensors of the checkpoint's "state_dict" entry when it has one (Lightning), else those of the
// top-level dict (a bare torch.save(model.state_dict())). Other entries (hyper_parameters,
// optimizer_states, ...) are read as placeholders and dropped; their tensors are never read.
// Tensors are CPU tensors in the stored dtype; non-contiguous ones are made contiguous. Aligned
// storages are not copied: tensors view a private copy-on-write mapping of the file, so that
// unused entries of a multi-GB checkpoint cost no memory (as with torch.load(mmap=True), the file
// must not be truncated while they are alive). Bounds of every tensor are checked; the zip CRC is
// checked for the pickle and for records that get copied, not for mapped tensor data (that would
// read every byte of the file).
// Throws lf::Error naming the file: not a zip checkpoint (legacy torch.save files get a line on
// how to convert them), a TorchScript archive, or any malformed structure.
TensorMap read_torch_checkpoint(const std::string& path);

}  // namespace lf
