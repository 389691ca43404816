"""A small, dependency-free safetensors writer shared by the fixture scripts.

The `safetensors` package is not in Debian, so its writer's layout is reimplemented here from the
public spec, independently of our C++ writer: tensors sorted by dtype (the reference's enum
order, i.e. alignment) descending then name (UTF-8 bytes), `"__metadata__"` first, compact JSON
keeping UTF-8, header padded with spaces to a multiple of 8, then the tensors' little-endian
bytes back to back in that order. Metadata keys are sorted (the reference leaves their order to
a HashMap), so files are reproducible.
"""
import json
import struct

import numpy as np

# Position in the reference library's Dtype enum (BOOL < U8 < I8 < ... < F64 < I64 < U64).
RANK = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 5, "F16": 7, "BF16": 8, "I32": 9, "F32": 11,
        "F64": 12, "I64": 13}
NUMPY = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "F16": np.float16,
         "I32": np.int32, "F32": np.float32, "F64": np.float64, "I64": np.int64}


def order(dtypes):
    """The reference writer's tensor order; dtypes: {name: dtype string}."""
    return sorted(dtypes, key=lambda k: (-RANK[dtypes[k]], k.encode("utf-8")))


def serialize(tensors, metadata=None):
    """tensors: {name: (dtype, shape, little-endian bytes)} -> (file bytes, key order)."""
    keys = order({k: v[0] for k, v in tensors.items()})
    header, buffers = {}, []
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items(), key=lambda kv: kv[0].encode("utf-8")))
    offset = 0
    for key in keys:
        dtype, shape, data = tensors[key]
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        buffers.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(buffers), keys


def numpy_bytes(dtype, array):
    """Little-endian bytes of a numpy array converted to `dtype` (not BF16)."""
    a = np.ascontiguousarray(np.asarray(array, dtype=NUMPY[dtype]))
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def torch_entry(dtype, tensor):
    """(dtype, shape, bytes) of a CPU torch tensor stored as `dtype` (F16, F32, I64, ...)."""
    return dtype, list(tensor.shape), numpy_bytes(dtype, tensor.detach().cpu().numpy())
