#!/usr/bin/python3
"""Golden parity fixtures for the C++ VQGAN (taming VQModel) and KL autoencoder (ldm AutoencoderKL).

Run (CPU, float32, one thread; takes a few seconds and rewrites tests/fixtures/ldm/):

    /usr/bin/python3 scripts/make_ldm_fixtures.py
    /usr/bin/python3 scripts/make_ldm_fixtures.py --verify   # re-read the files, re-run, compare

The reference checkouts are taken from the environment, defaulting to the read-only copies of
this workplace:

    LF_TAMING_DIR      a CompVis/taming-transformers checkout   (/work/refs/CompVis+taming-transformers)
    LF_LDM_DIR         a CompVis/stable-diffusion checkout        (/work/refs/CompVis+stable-diffusion)
    LF_DIFFUSERS_DIR   optional diffusers checkout, only to cross-check the diffusers key layout
                       against its convert_ldm_vae_checkpoint  (/work/refs/diffusers)

What runs is the reference code itself, unmodified: taming.models.vqgan.VQModel (taming's
Encoder, Decoder, ResnetBlock, AttnBlock, Downsample, Upsample and VectorQuantizer2 with the legacy
beta that VQModel uses) and ldm.models.autoencoder.AutoencoderKL (ldm's Encoder/Decoder and
DiagonalGaussianDistribution). Only imports that the encode/decode path does not execute, or that
are missing here, are replaced in sys.modules before the reference is imported:

  * pytorch_lightning -> LightningModule = torch.nn.Module (only the base class is used; the
    Lightning training hooks are never called);
  * taming's `main` and `ldm.util` -> a copy of their 4-line instantiate_from_config (the real
    modules import torchvision / PIL, absent here); it only builds the lossconfig, which is
    torch.nn.Identity (no parameters, not called by encode/decode);
  * einops, only when it is not installed -> a permutation-only `rearrange` (VectorQuantizer2 uses
    exactly 'b c h w -> b h w c', 'n d -> d n' and 'b h w c -> b c h w'); anything else raises.
    Every VQ result is cross-checked below against an independent float64 nearest-code search,
    so the shim cannot silently change what the reference computes.
  (ldm.modules.attention, whose LinearAttention is imported but unused with attn_type "vanilla",
  imports for real with those stubs.)

Cases (weights seeded, drawn from one deterministic generator; re-running gives identical bytes):
  taming_vqgan      taming VQGAN, ch 32, ch_mult [1,2] (nin_shortcut in encoder and decoder),
                    attention at 8, z 8, embed 8, 64 codes, input [2,3,16,16]
  sd_kl_small       SD 1.x first stage (4 levels, 2 res blocks, attention only in the mid blocks,
                    double_z, z 4, embed 4, scale 0.18215) at reduced width: ch 32 and ch_mult
                    [1,1,1,1] (GroupNorm(32) needs 32 channels at least; anything at 64 channels
                    would make its four copies several MB), input [1,3,32,32]
  kl_attn_two_res   KL, ch_mult [1,1,1], attention at config resolutions 16 and 8 but not 32,
                    embed_dim 3 != z_channels 4, and two quant_conv logvar biases moved to the
                    clamp limits (+20, -30) so that logvar is clamped at both ends, input 32x32
  vqgan_nonsquare   VQ, ch_mult [1,1,1], attention at 8, non-square input [1,3,16,40] (latent
                    4x10, an 8x20 attention map), embed_dim 6 != z_channels 4, 32 codes

Each <case>.safetensors holds the weights under the original state-dict keys (encoder.*, decoder.*,
quant_conv.*, post_quant_conv.*, quantize.embedding.weight) as F16 (the values are rounded to
float16 first, and the reference ran with exactly those values in float32), `input` (F32, in
[-1,1]) and the reference outputs (F32): `encoder_out` (encoder(x)), `moments` (quant_conv of it);
VQ: `indices` (I64 [N,h,w]) and `z_q` (the VectorQuantizer2 output: z + (e - z), which may differ
from the codebook row by an ulp); KL: `mean`, `logvar` (clamped to [-30, 20]), `kl`
(posterior.kl(), [N]); and `decoded` (decoder(post_quant_conv(z_q)) for VQ,
decoder(post_quant_conv(mean)) for KL). <case>.json has the model config in our format, the input
shape, a description and a few reference statistics.

sd_kl_small also comes in three other layouts of the same weights: sd_kl_small_full_sd.safetensors
(every key under `first_stage_model.` plus a few non-VAE keys of a full SD checkpoint),
sd_kl_small_diffusers.safetensors (diffusers AutoencoderKL names) and sd_kl_small.ckpt (a
Lightning-like torch.save({"state_dict": ..., "global_step": 7, "epoch": 1})).

Checks made while writing: the VQ codebook is drawn at the scale of the encoder output and, for
every latent position, the best and second-best squared distances must differ by more than
MIN_MARGIN of (|z|^2 + |e_best|^2) (the scale of the float error of the distance), else the
codebook is re-drawn; the reference's indices must equal a float64 argmin; z_q must equal the
codebook rows; the diffusers layout must equal diffusers' own conversion when available.
"""
import ast
import collections
import contextlib
import hashlib
import importlib
import io
import json
import math
import os
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from safetensors_writer import serialize, torch_entry  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "ldm")
DEFAULTS = {"LF_TAMING_DIR": "/work/refs/CompVis+taming-transformers",
            "LF_LDM_DIR": "/work/refs/CompVis+stable-diffusion",
            "LF_DIFFUSERS_DIR": "/work/refs/diffusers"}
SEED = 20240611
MIN_MARGIN = 1e-3
METADATA = {"format": "pt", "producer": "latentforge scripts/make_ldm_fixtures.py"}


# ----------------------------------------------------------------------------- reference import

def reference_dir(var, probe):
    path = os.environ.get(var) or DEFAULTS[var]
    if not os.path.isfile(os.path.join(path, probe)):
        raise SystemExit(f"make_ldm_fixtures: {var}={path!r} is not a checkout holding {probe}; "
                         f"set {var} to a clone of the reference repository")
    return os.path.abspath(path)


def _instantiate_from_config(config):
    # Same as taming's main.instantiate_from_config and ldm.util.instantiate_from_config.
    if "target" not in config:
        raise KeyError("Expected key `target` to instantiate.")
    module, cls = config["target"].rsplit(".", 1)
    return getattr(importlib.import_module(module, package=None), cls)(**config.get("params", dict()))


def _einops_shim():
    """Permutation-only einops.rearrange (all VectorQuantizer2 needs); anything else raises."""
    mod = types.ModuleType("einops")

    def rearrange(tensor, pattern, **axes_lengths):
        lhs, sep, rhs = pattern.partition("->")
        left, right = lhs.split(), rhs.split()
        plain = all(a.isidentifier() for a in left + right)
        if not sep or axes_lengths or not plain or sorted(left) != sorted(right) \
                or len(set(left)) != len(left) or tensor.dim() != len(left):
            raise NotImplementedError(f"einops shim: unsupported rearrange {pattern!r}")
        return tensor.permute(*[left.index(a) for a in right])

    def unsupported(*args, **kwargs):
        raise NotImplementedError("einops shim: only permutation rearrange is available")

    mod.rearrange, mod.repeat, mod.reduce = rearrange, unsupported, unsupported
    mod.__latentforge_shim__ = True
    return mod


def import_reference():
    taming_dir = reference_dir("LF_TAMING_DIR", "taming/modules/diffusionmodules/model.py")
    ldm_dir = reference_dir("LF_LDM_DIR", "ldm/modules/diffusionmodules/model.py")
    stubs = []
    try:
        import einops  # noqa: F401
    except ImportError:
        sys.modules["einops"] = _einops_shim()
        stubs.append("einops (permutation-only rearrange)")
    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = torch.nn.Module
    pl.__version__ = "0.0.0+latentforge-stub"
    sys.modules["pytorch_lightning"] = pl
    stubs.append("pytorch_lightning (LightningModule = nn.Module)")
    main = types.ModuleType("main")  # taming-transformers/main.py: imports torchvision, PIL
    main.instantiate_from_config = _instantiate_from_config
    sys.modules["main"] = main
    stubs.append("main (taming; instantiate_from_config)")
    ldm_util = types.ModuleType("ldm.util")  # imports PIL; only instantiate_from_config is used
    ldm_util.instantiate_from_config = _instantiate_from_config
    sys.modules["ldm.util"] = ldm_util
    stubs.append("ldm.util (instantiate_from_config)")
    for d in (taming_dir, ldm_dir):
        if d not in sys.path:
            sys.path.insert(0, d)
    with contextlib.redirect_stdout(io.StringIO()):
        vqgan = importlib.import_module("taming.models.vqgan")
        autoencoder = importlib.import_module("ldm.models.autoencoder")
        importlib.import_module("ldm.modules.attention")
    # The classes that run must come from the checkouts, not from anything installed.
    for mod, root in ((vqgan, taming_dir), (autoencoder, ldm_dir),
                      (sys.modules["taming.modules.diffusionmodules.model"], taming_dir),
                      (sys.modules["taming.modules.vqvae.quantize"], taming_dir),
                      (sys.modules["ldm.modules.diffusionmodules.model"], ldm_dir),
                      (sys.modules["ldm.modules.distributions.distributions"], ldm_dir)):
        assert os.path.abspath(mod.__file__).startswith(root + os.sep), mod.__file__
    sources = {}
    for root, rel in ((taming_dir, "taming/models/vqgan.py"),
                      (taming_dir, "taming/modules/diffusionmodules/model.py"),
                      (taming_dir, "taming/modules/vqvae/quantize.py"),
                      (ldm_dir, "ldm/models/autoencoder.py"),
                      (ldm_dir, "ldm/modules/diffusionmodules/model.py"),
                      (ldm_dir, "ldm/modules/distributions/distributions.py")):
        with open(os.path.join(root, rel), "rb") as f:
            sources[("taming-transformers/" if root == taming_dir else "stable-diffusion/") + rel] = \
                hashlib.sha256(f.read()).hexdigest()[:16]
    return vqgan.VQModel, autoencoder.AutoencoderKL, stubs, sources


# ----------------------------------------------------------------------------- weights

def randn(gen, shape, std=1.0, mean=0.0):
    return torch.randn(shape, generator=gen, dtype=torch.float32) * std + mean


def to_half_values(t):
    """Round to the nearest float16 value, kept in float32."""
    return t.to(torch.float16).to(torch.float32)


def randomize(model, gen):
    """Seeded weights for every parameter but the codebook; all rounded to float16 values."""
    done = set()
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                gain = 1.7 if name.endswith((".q", ".k")) else 1.0  # sharper attention maps
                m.weight.copy_(randn(gen, m.weight.shape, gain / math.sqrt(fan_in)))
                m.bias.copy_(randn(gen, m.bias.shape, 0.1))
            elif isinstance(m, torch.nn.GroupNorm):
                m.weight.copy_(randn(gen, m.weight.shape, 0.3, 1.0))
                m.bias.copy_(randn(gen, m.bias.shape, 0.2))
            elif isinstance(m, torch.nn.Embedding):
                continue
            else:
                if list(m.parameters(recurse=False)):
                    raise RuntimeError(f"unexpected parametrised module {name}: {type(m).__name__}")
                continue
            done.update(f"{name}.{p}" for p, _ in m.named_parameters(recurse=False))
        for name, p in model.named_parameters():
            if name != "quantize.embedding.weight" and name not in done:
                raise RuntimeError(f"parameter {name} left at its default init")
            p.copy_(to_half_values(p))


def index_margins(z, codes):
    """Float64 nearest-code search: indices, and (d2 - d1) / (|z|^2 + |e1|^2) per position."""
    z64, e64 = z.double(), codes.double()
    d = ((z64[:, None, :] - e64[None, :, :]) ** 2).sum(-1)
    two = torch.topk(d, 2, dim=1, largest=False)
    best, second = two.values[:, 0], two.values[:, 1]
    scale = (z64 ** 2).sum(1) + (e64[two.indices[:, 0]] ** 2).sum(1)
    return two.indices[:, 0], (second - best) / scale, second - best


def draw_codebook(model, x, gen, n_embed, embed_dim):
    """Codes ~ N(mean_c, std_c) of the quant_conv output, re-drawn until every index is safe."""
    with torch.no_grad():
        z = model.quant_conv(model.encoder(x))
    flat = z.permute(0, 2, 3, 1).reshape(-1, embed_dim)
    mean, std = flat.mean(0), flat.std(0)
    for attempt in range(1000):
        codes = to_half_values(randn(gen, (n_embed, embed_dim)) * std + mean)
        idx, rel, gap = index_margins(flat, codes)
        if rel.min().item() > MIN_MARGIN:
            with torch.no_grad():
                model.quantize.embedding.weight.copy_(codes)
            return {"min_relative_margin": float(rel.min()), "min_absolute_gap": float(gap.min()),
                    "codebook_draws": attempt + 1, "distinct_indices": int(idx.unique().numel()),
                    "positions": int(idx.numel())}, idx
    raise RuntimeError("no codebook with a safe index margin in 1000 draws")


# ----------------------------------------------------------------------------- cases

def ddconfig(ch, ch_mult, num_res_blocks, attn_resolutions, resolution, z_channels, double_z):
    return {"double_z": double_z, "z_channels": z_channels, "resolution": resolution,
            "in_channels": 3, "out_ch": 3, "ch": ch, "ch_mult": list(ch_mult),
            "num_res_blocks": num_res_blocks, "attn_resolutions": list(attn_resolutions),
            "dropout": 0.0}


CASES = [
    {"name": "taming_vqgan", "type": "vqgan",
     "ddconfig": ddconfig(32, [1, 2], 1, [8], 16, 8, False), "embed_dim": 8, "n_embed": 64,
     "input_shape": [2, 3, 16, 16],
     "description": "taming VQModel (Encoder, quant_conv, VectorQuantizer2 legacy beta, "
                    "post_quant_conv, Decoder) at small width, attention at resolution 8, batch 2"},
    {"name": "sd_kl_small", "type": "autoencoder_kl",
     "ddconfig": ddconfig(32, [1, 1, 1, 1], 2, [], 32, 4, True), "embed_dim": 4,
     "scale_factor": 0.18215, "input_shape": [1, 3, 32, 32],
     "description": "Stable Diffusion 1.x first stage (4 levels, 2 res blocks, attention only in "
                    "the mid blocks, double_z, z 4, embed 4) at reduced width: ch 32, ch_mult "
                    "[1,1,1,1] instead of 128 x [1,2,4,4] (the four copies of it must stay small; "
                    "so it has no nin_shortcut)"},
    {"name": "kl_attn_two_res", "type": "autoencoder_kl",
     "ddconfig": ddconfig(32, [1, 1, 1], 1, [16, 8], 32, 4, True), "embed_dim": 3,
     "scale_factor": 1.0, "input_shape": [1, 3, 32, 32], "clamp_logvar": True,
     "description": "AutoencoderKL, 3 levels, attention at resolutions 16 and 8 but not 32 "
                    "(encoder and decoder), "
                    "embed_dim 3 != z_channels 4; quant_conv logvar biases shifted by +20 and -30 "
                    "(channels 0 and 1 of logvar) so part of logvar is clamped at both limits"},
    {"name": "vqgan_nonsquare", "type": "vqgan",
     "ddconfig": ddconfig(32, [1, 1, 1], 1, [8], 16, 4, False), "embed_dim": 6, "n_embed": 32,
     "input_shape": [1, 3, 16, 40],
     "description": "taming VQModel on a non-square input 16x40 (latent 4x10), attention at config "
                    "resolution 8 (an 8x20 map), embed_dim 6 != z_channels 4"},
]


def capture(module, store, key):
    return module.register_forward_hook(lambda m, i, o: store.__setitem__(key, o.detach().clone()))


def run_case(case, VQModel, AutoencoderKL, gen):
    lossconfig = {"target": "torch.nn.Identity"}
    with contextlib.redirect_stdout(io.StringIO()):
        if case["type"] == "vqgan":
            model = VQModel(case["ddconfig"], lossconfig, case["n_embed"], case["embed_dim"],
                            sane_index_shape=True)
        else:
            model = AutoencoderKL(case["ddconfig"], lossconfig, case["embed_dim"])
    model.eval()
    randomize(model, gen)
    if case.get("clamp_logvar"):
        e = case["embed_dim"]
        with torch.no_grad():
            b = model.quant_conv.bias
            b[e] += 20.0
            b[e + 1] -= 30.0
            b.copy_(to_half_values(b))
    x = torch.rand(case["input_shape"], generator=gen, dtype=torch.float32) * 2 - 1
    stats = {}
    if case["type"] == "vqgan":
        stats, idx64 = draw_codebook(model, x, gen, case["n_embed"], case["embed_dim"])

    out = {}
    hooks = [capture(model.encoder, out, "encoder_out"), capture(model.quant_conv, out, "moments")]
    with torch.no_grad():
        if case["type"] == "vqgan":
            quant, _, (_, _, indices) = model.encode(x)
            out["indices"] = indices.clone()
            out["z_q"] = quant.clone()
            out["decoded"] = model.decode(quant)
            # Independent checks of what the reference did (and of the einops shim, if used).
            assert indices.dtype == torch.int64 and list(indices.shape) == \
                [x.shape[0], quant.shape[2], quant.shape[3]]
            assert torch.equal(indices.reshape(-1), idx64), "reference argmin != float64 argmin"
            rows = model.quantize.embedding.weight[indices].permute(0, 3, 1, 2)
            assert torch.allclose(quant, rows, rtol=0, atol=1e-6 * float(rows.abs().max()))
            assert torch.equal(out["moments"], model.quant_conv(out["encoder_out"]))
        else:
            posterior = model.encode(x)
            out["mean"] = posterior.mean.clone()
            out["logvar"] = posterior.logvar.clone()
            out["kl"] = posterior.kl().clone()
            out["decoded"] = model.decode(posterior.mode())
            assert torch.equal(posterior.mode(), out["moments"][:, :case["embed_dim"]])
            raw = out["moments"][:, case["embed_dim"]:]
            stats = {"logvar_clamped_high": int((raw > 20).sum()),
                     "logvar_clamped_low": int((raw < -30).sum()), "logvar_elements": raw.numel()}
    for h in hooks:
        h.remove()
    state = collections.OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    return state, x, out, stats


# ----------------------------------------------------------------------------- layouts

def to_diffusers(state, num_levels):
    """ldm AutoencoderKL keys -> diffusers AutoencoderKL keys (as convert_ldm_vae_checkpoint)."""
    new = collections.OrderedDict()
    top = {"norm_out": "conv_norm_out"}
    attn = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("quant_conv", "post_quant_conv"):
            new[key] = value
            continue
        side, rest = parts[0], parts[1:]
        if rest[0] in ("conv_in", "conv_out", "norm_out"):
            rest = [top.get(rest[0], rest[0])] + rest[1:]
        elif rest[0] in ("down", "up"):
            level = int(rest[1])
            i = level if rest[0] == "down" else num_levels - 1 - level
            blocks = f"{rest[0]}_blocks.{i}"
            if rest[2] == "block":
                rest = [blocks, "resnets", rest[3]] + rest[4:]
            elif rest[2] in ("downsample", "upsample"):
                rest = [blocks, rest[2] + "rs", "0"] + rest[3:]
            else:
                raise KeyError(f"no diffusers name for {key} (attention outside the mid block)")
        elif rest[0] == "mid":
            if rest[1].startswith("block_"):
                rest = ["mid_block", "resnets", str(int(rest[1][6:]) - 1)] + rest[2:]
            elif rest[1] == "attn_1":
                rest = ["mid_block", "attentions", "0", attn[rest[2]]] + rest[3:]
                if value.dim() == 4:
                    value = value[:, :, 0, 0]
            else:
                raise KeyError(key)
        else:
            raise KeyError(key)
        rest = ["conv_shortcut" if r == "nin_shortcut" else r for r in rest]
        new[".".join([side] + rest)] = value.contiguous()
    return new


def diffusers_reference_conversion():
    """diffusers' own convert_ldm_vae_checkpoint, lifted from its source with ast (its module
    imports the whole library); None when no diffusers checkout is around."""
    path = os.path.join(os.environ.get("LF_DIFFUSERS_DIR") or DEFAULTS["LF_DIFFUSERS_DIR"],
                        "src/diffusers/loaders/single_file_utils.py")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    wanted_f = {"convert_ldm_vae_checkpoint", "update_vae_resnet_ldm_to_diffusers",
                "update_vae_attentions_ldm_to_diffusers", "conv_attn_to_linear"}
    wanted_v = {"DIFFUSERS_TO_LDM_MAPPING", "LDM_VAE_KEYS"}
    body = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name in wanted_f) or
            (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in wanted_v for t in n.targets))]
    ns = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return ns["convert_ldm_vae_checkpoint"]


def full_sd(state, gen):
    sd = collections.OrderedDict(("first_stage_model." + k, v) for k, v in state.items())
    dummies = collections.OrderedDict([
        ("model.diffusion_model.input_blocks.0.0.weight", to_half_values(randn(gen, (32, 4, 3, 3), 0.1))),
        ("model.diffusion_model.input_blocks.0.0.bias", to_half_values(randn(gen, (32,), 0.1))),
        ("cond_stage_model.transformer.x.weight", to_half_values(randn(gen, (8, 8), 0.1))),
        ("alphas_cumprod", to_half_values(torch.linspace(0.999, 0.005, 10))),
    ])
    return sd, dummies


# ----------------------------------------------------------------------------- output

def write_safetensors(path, entries):
    blob, _ = serialize(entries, METADATA)
    with open(path, "wb") as f:
        f.write(blob)
    return len(blob)


def weight_entries(state):
    return {k: torch_entry("F16", v) for k, v in state.items()}


def describe(entries):
    return {k: {"dtype": d, "shape": s} for k, (d, s, _) in sorted(entries.items())}


def read_safetensors(path):
    """Independent reader (numpy): {name: float32/int64 torch tensor}, header metadata."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    kinds = {"F16": "<f2", "F32": "<f4", "I64": "<i8"}
    out, end = {}, 0
    for k, h in header.items():
        a, b = h["data_offsets"]
        arr = np.frombuffer(blob[8 + n + a:8 + n + b], dtype=kinds[h["dtype"]]).reshape(h["shape"])
        out[k] = torch.from_numpy(arr.astype(np.int64 if h["dtype"] == "I64" else np.float32))
        end = max(end, b)
    assert 8 + n + end == len(blob), path
    return out, meta


def verify():
    """Re-read every file, load the weights into fresh reference models, re-run them and require
    bit-identical outputs; check that the other layouts hold the same weights."""
    torch.set_num_threads(1)
    VQModel, AutoencoderKL, _, _ = import_reference()
    for case in CASES:
        name = case["name"]
        t, _ = read_safetensors(os.path.join(OUT, name + ".safetensors"))
        with open(os.path.join(OUT, name + ".json"), encoding="utf-8") as f:
            cfg = json.load(f)
        with contextlib.redirect_stdout(io.StringIO()):
            if cfg["type"] == "vqgan":
                model = VQModel(cfg["ddconfig"], {"target": "torch.nn.Identity"}, cfg["n_embed"],
                                cfg["embed_dim"], sane_index_shape=True)
            else:
                model = AutoencoderKL(cfg["ddconfig"], {"target": "torch.nn.Identity"}, cfg["embed_dim"])
        model.eval()
        weights = {k: v for k, v in t.items() if k in model.state_dict()}
        model.load_state_dict(weights, strict=True)
        x = t["input"]
        assert list(x.shape) == cfg["input_shape"] and float(x.abs().max()) <= 1.0
        with torch.no_grad():
            h = model.encoder(x)
            moments = model.quant_conv(h)
            got = {"encoder_out": h, "moments": moments}
            if cfg["type"] == "vqgan":
                quant, _, (_, _, idx) = model.quantize(moments)
                got.update(indices=idx, z_q=quant, decoded=model.decode(quant))
                _, rel, _ = index_margins(moments.permute(0, 2, 3, 1).reshape(-1, cfg["embed_dim"]),
                                          model.quantize.embedding.weight)
                assert float(rel.min()) > MIN_MARGIN
            else:
                post = model.encode(x)
                got.update(mean=post.mean, logvar=post.logvar, kl=post.kl(),
                           decoded=model.decode(post.mode()))
        assert set(t) == set(weights) | {"input"} | set(got), sorted(set(t) ^ set(weights))
        for k, v in got.items():
            assert torch.equal(t[k], v.to(t[k].dtype)), (name, k)
        if name == "sd_kl_small":
            full, _ = read_safetensors(os.path.join(OUT, name + "_full_sd.safetensors"))
            vae = {k[len("first_stage_model."):]: v for k, v in full.items()
                   if k.startswith("first_stage_model.")}
            assert len(full) > len(vae) and all(torch.equal(vae[k], weights[k]) for k in weights) \
                and set(vae) == set(weights)
            diff, _ = read_safetensors(os.path.join(OUT, name + "_diffusers.safetensors"))
            mine = to_diffusers(collections.OrderedDict(sorted(weights.items())), len(cfg["ddconfig"]["ch_mult"]))
            assert set(diff) == set(mine) and all(torch.equal(diff[k], mine[k]) for k in mine)
            ck = torch.load(os.path.join(OUT, name + ".ckpt"), map_location="cpu")
            assert ck["global_step"] == 7 and ck["epoch"] == 1
            sd = ck["state_dict"]
            assert isinstance(sd, collections.OrderedDict) and set(sd) == {"first_stage_model." + k for k in weights}
            assert all(torch.equal(sd["first_stage_model." + k].float(), weights[k]) for k in weights)
        print(f"verified {name}: outputs bit-identical when re-run from the stored weights")


def main():
    if "--verify" in sys.argv[1:]:
        return verify()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)  # nothing should draw from it; belt and braces
    VQModel, AutoencoderKL, stubs, sources = import_reference()
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    rows = []
    for case in CASES:
        state, x, out, stats = run_case(case, VQModel, AutoencoderKL, gen)
        entries = weight_entries(state)
        entries["input"] = torch_entry("F32", x)
        for k, v in out.items():
            entries[k] = torch_entry("I64" if k == "indices" else "F32", v)
        name = case["name"]
        size = write_safetensors(os.path.join(OUT, name + ".safetensors"), entries)
        config = {"type": case["type"], "ddconfig": case["ddconfig"], "embed_dim": case["embed_dim"]}
        if case["type"] == "vqgan":
            config["n_embed"] = case["n_embed"]
        else:
            config["scale_factor"] = case["scale_factor"]
        config.update({"input_shape": case["input_shape"], "description": case["description"],
                       "reference_stats": stats,
                       "outputs": {k: list(v.shape) for k, v in out.items()},
                       "reference_sources_sha256_16": sources})
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        n_params = sum(v.numel() for v in state.values())
        max_out = max(float(v.abs().max()) for k, v in out.items() if k != "indices")
        rows.append((name, n_params, size, max_out, stats))

        if name == "sd_kl_small":
            sd, dummies = full_sd(state, gen)
            e = weight_entries(sd)
            e.update(weight_entries(dummies))
            rows.append((name + "_full_sd", n_params, write_safetensors(
                os.path.join(OUT, name + "_full_sd.safetensors"), e), None, {}))
            diff = to_diffusers(state, len(case["ddconfig"]["ch_mult"]))
            convert = diffusers_reference_conversion()
            if convert is not None:
                n = len(case["ddconfig"]["ch_mult"])
                theirs = convert(dict(sd, **dummies), {"down_block_types": [None] * n,
                                                       "up_block_types": [None] * n})
                assert set(theirs) == set(diff), sorted(set(theirs) ^ set(diff))
                assert all(torch.equal(theirs[k], diff[k]) for k in diff)
                print("diffusers layout: identical to diffusers' convert_ldm_vae_checkpoint")
            rows.append((name + "_diffusers", n_params, write_safetensors(
                os.path.join(OUT, name + "_diffusers.safetensors"), weight_entries(diff)), None, {}))
            ckpt_path = os.path.join(OUT, name + ".ckpt")
            torch.save({"state_dict": collections.OrderedDict(
                (k, v.to(torch.float16).clone()) for k, v in sd.items()),
                "global_step": 7, "epoch": 1}, ckpt_path, _use_new_zipfile_serialization=True)
            rows.append((name + ".ckpt", n_params, os.path.getsize(ckpt_path), None, {}))

    print("stubbed imports: " + "; ".join(stubs))
    print(f"{'case':<26}{'params':>10}{'bytes':>11}{'max|out|':>12}  notes")
    for name, n, size, m, stats in rows:
        print(f"{name:<26}{n:>10}{size:>11}{'' if m is None else format(m, '.4g'):>12}  "
              + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"total {total} bytes in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
