#!/usr/bin/python3
"""Writes the tiny safetensors fixtures of tests/io/safetensors_test.cpp.

The `safetensors` package is not in Debian, so the layout of its writer is reimplemented here
from the public spec, independently of our C++ writer: tensors sorted by dtype (the reference's
enum order, i.e. alignment) descending then name, `"__metadata__"` first, compact JSON keeping
UTF-8, header padded with spaces to a multiple of 8; metadata keys sorted (the reference leaves
their order to a HashMap). Next to each NAME.safetensors goes
NAME.json with the values the test asserts. Run: /usr/bin/python3 scripts/make_safetensors_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_writer import NUMPY, serialize  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "safetensors")


def tensor_bytes(dtype, values, shape):
    """Little-endian bytes and the exact stored values (as Python numbers) of one tensor."""
    if dtype == "BF16":
        # torch rounds f32 -> bf16 to nearest even; the bits are the upper half of the f32.
        t = torch.tensor(values, dtype=torch.float32).reshape(shape).to(torch.bfloat16)
        return t.view(torch.int16).numpy().astype("<i2").tobytes(), t.float().flatten().tolist()
    a = np.array(values, dtype=NUMPY[dtype]).reshape(shape)
    a = a.astype(a.dtype.newbyteorder("<"))
    stored = a.flatten().tolist()
    if dtype == "BOOL":
        stored = [int(v) for v in stored]
    return a.tobytes(), stored


def write(name, tensors, metadata=None):
    """tensors: {name: (dtype, shape, values)}; writes NAME.safetensors and NAME.json."""
    entries, expected = {}, {}
    for key, (dtype, shape, values) in tensors.items():
        data, stored = tensor_bytes(dtype, values, shape)
        entries[key] = (dtype, shape, data)
        expected[key] = {"dtype": dtype, "shape": shape, "values": stored}
    blob, order = serialize(entries, metadata)
    expected = {key: expected[key] for key in order}
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(blob)
    with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
        json.dump({"keys": order, "metadata": metadata or {}, "tensors": expected}, f,
                  indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{name}.safetensors: {len(blob)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("mixed", {
        "conv.weight": ("F32", [2, 3], [0.5, -1.25, 3.0, 1e-3, -0.0, 123456.789]),
        "conv.bias": ("F64", [2], [0.1, -2.0**-40]),
        "norm.half": ("F16", [4], [1.0, -0.33325195, 65504.0, 6.1035156e-05]),
        "norm.bf16": ("BF16", [3], [3.14159265, -1.0e-3, 1.0e30]),
        "step": ("I64", [], [-(2**40) - 3]),
        "codebook.index": ("I32", [2, 2], [0, -1, 2**31 - 1, -(2**31)]),
        "deltas.i16": ("I16", [3], [-32768, 7, 32767]),
        "deltas.i8": ("I8", [2], [-128, 127]),
        "pixels": ("U8", [5], [0, 1, 127, 128, 255]),
        "mask": ("BOOL", [3], [True, False, True]),
        "empty": ("F32", [0, 3], []),
    }, metadata={"format": "pt", "producer": "latentforge fixtures"})
    # The reference's own serialization example: no metadata, one tensor.
    write("single", {"attn.0": ("F32", [1, 2, 3], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])})
    # Names that JSON must escape or that are not ASCII; UTF-8 byte order for sorting.
    write("names", {
        "b\u00e9ta": ("F32", [1], [2.0]),
        "alpha": ("F32", [1], [1.0]),
        "quote\"back\\slash\nnewline": ("U8", [2], [7, 8]),
        "\u03c9": ("F16", [1], [0.5]),
    }, metadata={"note": "\u00fcml\u00e4ut \u2713", "empty": ""})


if __name__ == "__main__":
    main()
