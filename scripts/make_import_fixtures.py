#!/usr/bin/python3
"""Writes the fixtures of tests/io/{torch_checkpoint,weights_file,weight_layout}_test.cpp.

- lightning.ckpt: torch.save of a PyTorch Lightning-like checkpoint (epoch, global_step,
  state_dict as an OrderedDict with _metadata, hyper_parameters with objects of other classes,
  optimizer_states with tensors), default pickle protocol 2. The state_dict holds f32, f16, bf16,
  f64, i64, i32, i16, i8, u8 and bool tensors, a Parameter, a 0-d and an empty tensor, and two views
  (offset + strides, transposed) of one shared storage.
- bare.pt: a plain dict of tensors saved with pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL...).
- legacy.pt: the pre-1.6 (non-zip) format, which the reader refuses (this file differs from run
  to run: that format names storages by memory address).
- NAME.json next to each: the values the tests assert ({key: {dtype, shape, values}}).
- diffusers_vae.safetensors / diffusers_vae_native.safetensors: one small fake VQ autoencoder
  state dict under diffusers names (renamed as diffusers' convert_ldm_vae_checkpoint does, attention
  projections as [C, C] linear weights) and under the original names ([C, C, 1, 1]).
Run: /usr/bin/python3 scripts/make_import_fixtures.py
"""
import argparse
import collections
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "import")

DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
               torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def expected(tensors):
    """{key: {dtype, shape, values}}: values are the exact stored numbers, flattened row-major."""
    out = {}
    for key, t in tensors.items():
        t = t.detach()
        values = t.double() if t.is_floating_point() else t.long()
        out[key] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                    "values": values.flatten().tolist()}
    return out


def save(name, obj, tensors, **kwargs):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kwargs)
    with open(os.path.join(OUT, os.path.splitext(name)[0] + ".json"), "w") as f:
        json.dump(expected(tensors), f, indent=1)
        f.write("\n")
    print(f"{name}: {os.path.getsize(path)} bytes")


def lightning_state_dict():
    g = torch.Generator().manual_seed(0)
    base = torch.arange(40, dtype=torch.float32).reshape(5, 8) * 0.25 - 3.0
    sd = collections.OrderedDict()
    sd["encoder.conv_in.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["encoder.conv_in.bias"] = torch.tensor([0.5, -1.25, 3.0, 1e-3])
    sd["decoder.norm_out.weight"] = torch.tensor([1.0, -0.33325195, 65504.0, 6.1035156e-05],
                                                 dtype=torch.float16)
    sd["quantize.embedding.weight"] = (torch.randn(5, 3, generator=g) * 10).to(torch.bfloat16)
    sd["loss.logvar"] = torch.nn.Parameter(torch.tensor(0.0), requires_grad=True)
    sd["loss.discriminator.main.1.num_batches_tracked"] = torch.tensor(-(2**40) - 3)
    sd["stats.f64"] = torch.tensor([0.1, -2.0**-40], dtype=torch.float64)
    sd["stats.i32"] = torch.tensor([[0, -1], [2**31 - 1, -(2**31)]], dtype=torch.int32)
    sd["stats.i16"] = torch.tensor([-32768, 7, 32767], dtype=torch.int16)
    sd["stats.i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["stats.u8"] = torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8)
    sd["stats.bool"] = torch.tensor([True, False, True])
    sd["stats.empty"] = torch.zeros(0, 3)
    sd["view.offset"] = base[1:4, 2:7:2]  # storage offset 10, strides [8, 2]
    sd["view.transposed"] = base.t()  # the same storage, strides [1, 8]
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("encoder", {"version": 1})])
    return sd


def lightning_checkpoint(sd):
    return {
        "epoch": 1,
        "global_step": 5,
        "pytorch-lightning_version": "1.4.2",
        "state_dict": sd,
        "callbacks": {"ModelCheckpoint{'monitor': 'val/rec_loss'}": {
            "best_model_score": torch.tensor(0.25), "best_model_path": "/tmp/x.ckpt"}},
        "optimizer_states": [{
            "state": {0: {"step": 5, "exp_avg": torch.ones(4, 3, 3, 3),
                          "exp_avg_sq": torch.full((4,), 2.0)}},
            "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "eps": 1e-8, "params": [0, 1]}],
        }],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {
            "ddconfig": {"double_z": False, "z_channels": 256, "ch_mult": [1, 1, 2, 2, 4]},
            "ignore_keys": [],
            "ckpt_path": None,
            "numbers": (1, -5, 300, 70000, -(2**40), 2**70, -(2**70), 2.5, float("inf"), True),
            "bytes": b"\x00abc",
            "empty_bytes": b"",
            "set": {1, 2},
            "frozen": frozenset({3}),
            "namespace": argparse.Namespace(lr=1e-4, name="vqgan"),
            "dtype": torch.float16,
            "complex": complex(1, 2),
            "unicode": "\u00fcml\u00e4ut \u2713",
        },
    }


def fake_native_vq():
    """Original-named tensors of a tiny taming VQModel: ch 2, ch_mult [1, 2], 1 res block,
    attention at both levels of encoder and decoder (resolution 8, attn_resolutions [8, 4])."""
    g = torch.Generator().manual_seed(1)
    sd = collections.OrderedDict()

    def t(*shape):
        return torch.randn(*shape, generator=g)

    def conv(name, cin, cout, k):
        sd[name + ".weight"] = t(cout, cin, k, k)
        sd[name + ".bias"] = t(cout)

    def norm(name, c):
        sd[name + ".weight"] = t(c)
        sd[name + ".bias"] = t(c)

    def block(name, cin, cout):
        norm(name + ".norm1", cin)
        conv(name + ".conv1", cin, cout, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(name + ".nin_shortcut", cin, cout, 1)

    def attn(name, c):
        norm(name + ".norm", c)
        for p in ("q", "k", "v", "proj_out"):
            conv(name + "." + p, c, c, 1)

    ch, mult, z = 2, [1, 2], 3
    conv("encoder.conv_in", 3, ch, 3)
    cin = ch
    for i, m in enumerate(mult):
        block(f"encoder.down.{i}.block.0", cin, ch * m)
        cin = ch * m
        attn(f"encoder.down.{i}.attn.0", cin)
        if i != len(mult) - 1:
            conv(f"encoder.down.{i}.downsample.conv", cin, cin, 3)
    block("encoder.mid.block_1", cin, cin)
    attn("encoder.mid.attn_1", cin)
    block("encoder.mid.block_2", cin, cin)
    norm("encoder.norm_out", cin)
    conv("encoder.conv_out", cin, z, 3)
    conv("decoder.conv_in", z, cin, 3)
    block("decoder.mid.block_1", cin, cin)
    attn("decoder.mid.attn_1", cin)
    block("decoder.mid.block_2", cin, cin)
    for i in reversed(range(len(mult))):
        cout = ch * mult[i]
        for j in range(2):
            block(f"decoder.up.{i}.block.{j}", cin, cout)
            cin = cout
            attn(f"decoder.up.{i}.attn.{j}", cin)
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", cin, cin, 3)
    norm("decoder.norm_out", cin)
    conv("decoder.conv_out", cin, 3, 3)
    conv("quant_conv", z, 4, 1)
    conv("post_quant_conv", 4, z, 1)
    sd["quantize.embedding.weight"] = t(6, 4)
    return sd


def to_diffusers(sd):
    """Renames like diffusers' convert_ldm_vae_checkpoint (ldm -> diffusers): string replacement
    per block, up blocks reversed, attention projections squeezed to linear weights."""
    num_up = len({k.split(".")[2] for k in sd if k.startswith("decoder.up.")})
    out = collections.OrderedDict()
    for key, value in sd.items():
        new = key
        parts = key.split(".")
        if parts[1] == "down":
            i = parts[2]
            new = new.replace(f"down.{i}.block", f"down_blocks.{i}.resnets")
            new = new.replace(f"down.{i}.attn", f"down_blocks.{i}.attentions")
            new = new.replace(f"down.{i}.downsample", f"down_blocks.{i}.downsamplers.0")
        elif parts[1] == "up":
            i = int(parts[2])
            b = num_up - 1 - i
            new = new.replace(f"up.{i}.block", f"up_blocks.{b}.resnets")
            new = new.replace(f"up.{i}.attn", f"up_blocks.{b}.attentions")
            new = new.replace(f"up.{i}.upsample", f"up_blocks.{b}.upsamplers.0")
        elif parts[1] == "mid":
            new = new.replace("mid.block_1", "mid_block.resnets.0")
            new = new.replace("mid.block_2", "mid_block.resnets.1")
            new = new.replace("mid.attn_1", "mid_block.attentions.0")
        elif parts[1] == "norm_out":
            new = new.replace("norm_out", "conv_norm_out")
        new = new.replace("nin_shortcut", "conv_shortcut")
        if "attentions" in new:
            for a, b in (("norm", "group_norm"), ("q", "to_q"), ("k", "to_k"), ("v", "to_v"),
                         ("proj_out", "to_out.0")):
                for p in ("weight", "bias"):
                    if new.endswith(f".{a}.{p}"):
                        new = new[: -len(f"{a}.{p}")] + f"{b}.{p}"
                        break
            if value.dim() == 4:
                value = value[:, :, 0, 0]
        out[new] = value
    return out


def write_safetensors(name, tensors):
    """Minimal F32-only writer (the layout of scripts/make_safetensors_fixtures.py)."""
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors, key=lambda k: k.encode("utf-8")):
        t = tensors[key].detach().contiguous()
        assert t.dtype == torch.float32
        data = t.numpy().astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    print(f"{name}: {len(tensors)} tensors")


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = lightning_state_dict()
    save("lightning.ckpt", lightning_checkpoint(sd), sd)
    bare = collections.OrderedDict(
        [("encoder.conv_in.weight", sd["encoder.conv_in.weight"]),
         ("decoder.norm_out.weight", sd["decoder.norm_out.weight"]),
         ("quantize.embedding.weight", sd["quantize.embedding.weight"]),
         ("view.offset", sd["view.offset"])])
    save("bare.pt", bare, bare, pickle_protocol=4)
    torch.save(bare, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)
    print("legacy.pt")
    native = fake_native_vq()
    write_safetensors("diffusers_vae_native.safetensors", native)
    write_safetensors("diffusers_vae.safetensors", to_diffusers(native))


if __name__ == "__main__":
    main()
