#!/usr/bin/python3
"""Writes the parity fixtures of tests/losses/ from the reference modules themselves, in float64.

Every module is built as the references build it (float32 parameters, the same random draws),
then converted with .double(); inputs are drawn in float32 and widened, so a float32 run sees
exactly the same inputs. The outputs are float64: float32 results differ between CPUs (oneDNN
picks other kernels on AVX2 and AVX-512, and a ReLU/max-pool tie can route a gradient elsewhere),
so the tests compare our float64 run at round-off and our float32 run at float32 tolerances.

taming-transformers' LPIPS, NLayerDiscriminator (BatchNorm and ActNorm) and
VQLPIPSWithDiscriminator, and Stable Diffusion's LPIPSWithDiscriminator are imported from the
checkouts named by LF_TAMING_DIR and LF_SD_DIR (defaults: /work/refs/...). torchvision is stubbed
with the exact vgg16().features layer list, and LPIPS' pretrained download is skipped: its weights
come from a closed-form formula (`formula` below, mirrored in tests/losses/loss_test_util.h), so
no VGG16 is stored; only inputs, small discriminator states and outputs go to
tests/fixtures/losses/*.safetensors. The safetensors layout is written as in
scripts/make_safetensors_fixtures.py (the package is not in Debian).
Run: LF_TAMING_DIR=/work/refs/CompVis+taming-transformers /usr/bin/python3 scripts/make_loss_fixtures.py
"""
import importlib
import json
import os
import struct
import sys
import types

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "losses")
TAMING = os.environ.get("LF_TAMING_DIR", "/work/refs/CompVis+taming-transformers")
SD = os.environ.get("LF_SD_DIR", "/work/refs/CompVis+stable-diffusion")

# Position in the reference library's Dtype enum (alignment order), and the names.
RANK = {"U8": 1, "F32": 11, "F64": 12, "I64": 13}
DTYPE = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64",
         torch.uint8: "U8"}


def save(name, tensors):
    """tensors: {key: torch.Tensor}; writes NAME.safetensors like Python's safetensors."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    order = sorted(tensors, key=lambda k: (-RANK[DTYPE[tensors[k].dtype]], k.encode("utf-8")))
    header, buffers, offset = {}, [], 0
    for key in order:
        t = tensors[key]
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": DTYPE[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        buffers.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    blob = struct.pack("<Q", len(text)) + text + b"".join(buffers)
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(blob)
    print(f"{name}.safetensors: {len(blob)} bytes")


# ---- Deterministic LPIPS weights (same formula in tests/losses/loss_test_util.h) ----------------

def formula(numel, phase, amp, offset=0.0):
    """amp * (offset + sin(0.37 * i + phase)) over the flat index i, computed in float64."""
    i = np.arange(numel, dtype=np.float64)
    return amp * (offset + np.sin(0.37 * i + phase))


def lpips_weight(key, shape):
    """The value of one LPIPS tensor under taming's key, e.g. net.slice2.5.weight, lin3.model.1.weight."""
    numel = int(np.prod(shape))
    parts = key.split(".")
    if parts[0] == "net":
        index = int(parts[2])
        if parts[3] == "weight":
            fan_in = shape[1] * shape[2] * shape[3]
            v = formula(numel, index, np.sqrt(6.0 / fan_in))
        else:
            v = formula(numel, index + 0.5, 0.01)
    else:
        v = formula(numel, 100 + int(parts[0][3:]), 0.1, 1.5)
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


# ---- Importing the references -------------------------------------------------------------------

def vgg16_features():
    """torchvision.models.vgg16().features: config D with ReLU(inplace) and 2x2 max pools."""
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


def import_references():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tv.models = types.ModuleType("torchvision.models")
        tv.models.vgg16 = lambda pretrained=False, **kw: types.SimpleNamespace(features=vgg16_features())
        sys.modules["torchvision"], sys.modules["torchvision.models"] = tv, tv.models
    for name in ["tqdm", "requests"]:  # taming.util's download helpers, unused here
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
            sys.modules[name].tqdm = None  # `from tqdm import tqdm`
    sys.path.insert(0, TAMING)
    sys.path.insert(0, SD)
    lpips = importlib.import_module("taming.modules.losses.lpips")
    lpips.LPIPS.load_from_pretrained = lambda self, name="vgg_lpips": None  # no download
    vqp = importlib.import_module("taming.modules.losses.vqperceptual")
    disc = importlib.import_module("taming.modules.discriminator.model")
    cont = importlib.import_module("ldm.modules.losses.contperceptual")
    return lpips, vqp, disc, cont


def set_lpips_weights(module):
    """Fills an LPIPS (or a loss holding one as perceptual_loss) with the formula weights."""
    with torch.no_grad():
        for key, p in module.named_parameters():
            p.copy_(lpips_weight(key, tuple(p.shape)))


def disc_state(d):
    """A copy (state_dict() aliases the live tensors) under "disc."."""
    return {"disc." + k: v.clone() for k, v in d.state_dict().items()}


# ---- Fixtures ----------------------------------------------------------------------------------

def make_lpips(lpips):
    net = lpips.LPIPS().eval()
    set_lpips_weights(net)
    net.double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    y = (x + 0.5 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)
    x, y = x.double().requires_grad_(True), y.double()
    d = net(x, y)  # [N, 1, 1, 1]
    d.sum().backward()
    save("lpips", {"x": x, "y": y, "out": d.flatten(), "grad_x": x.grad})


def make_discriminators(disc):
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2, 3, 32, 32, generator=g).double()
    x1 = torch.randn(2, 3, 32, 32, generator=g).double()

    torch.manual_seed(3)
    d = disc.NLayerDiscriminator(input_nc=3, ndf=4, n_layers=3, use_actnorm=False)
    d.apply(disc.weights_init)
    d.double().train()
    with torch.no_grad():
        for _ in range(3):  # non-trivial running statistics
            d((torch.randn(4, 3, 32, 32, generator=g) * 1.5 + 0.3).double())
        train_out = d(x0)  # batch statistics (also updates the running ones once more)
    d.eval()
    with torch.no_grad():
        eval_out = d(x1)
    save("disc_bn", {**disc_state(d), "x0": x0, "x1": x1, "train_out": train_out,
                     "eval_out": eval_out})

    torch.manual_seed(4)
    a = disc.NLayerDiscriminator(input_nc=3, ndf=4, n_layers=3, use_actnorm=True)
    a.apply(disc.weights_init)
    a.double()
    before = disc_state(a)
    a.train()
    with torch.no_grad():
        train_out = a(x0)  # first training batch: data-dependent init of every ActNorm
    after = {k.replace("disc.", "init."): v for k, v in disc_state(a).items()
             if k.endswith((".loc", ".scale", ".initialized"))}
    a.eval()
    with torch.no_grad():
        eval_out = a(x1)
    save("disc_actnorm", {**before, **after, "x0": x0, "x1": x1, "train_out": train_out,
                          "eval_out": eval_out})


def loss_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    h = torch.randn(2, 4, 32, 32, generator=g)
    last_layer = 0.1 * torch.randn(3, 4, 3, 3, generator=g)
    return x.double(), h.double(), last_layer.double().requires_grad_(True)


def run_loss(loss, call, x, h, last_layer, step, name, extra):
    """Generator then discriminator pass in training mode, as in the reference training_step.
    call(x, x_rec, optimizer_idx, step, last_layer) -> (loss, log)."""
    loss.train()
    # train() would also switch on the Dropout(0.5) in LPIPS' heads (as happens in the references'
    # training); ours keeps LPIPS in eval mode, so does the fixture.
    loss.perceptual_loss.eval()
    state = disc_state(loss.discriminator)
    x_rec = torch.nn.functional.conv2d(h, last_layer, padding=1)  # "decoder" ending in last_layer
    g_loss, g_log = call(x, x_rec, 0, step, last_layer)
    g_loss.backward()
    d_loss, d_log = call(x, x_rec, 1, step, last_layer)
    out = {**state, "x": x, "h": h, "last_layer": last_layer.detach(),
           "grad_last_layer": last_layer.grad, "step": torch.tensor(step, dtype=torch.int64),
           "out.loss": g_loss.reshape(()), "out.loss_d": d_loss.reshape(())}
    for k, v in list(g_log.items()) + list(d_log.items()):
        out["log." + k.split("/")[1]] = torch.as_tensor(v, dtype=torch.float64).mean().reshape(())
    out.update(extra)
    save(name, out)


class Posterior:
    """What LPIPSWithDiscriminator reads of a DiagonalGaussianDistribution: kl() -> [N]."""

    def __init__(self, kl):
        self.kl_value = kl

    def kl(self):
        return self.kl_value


def make_losses(vqp, disc, cont):
    x, h, last_layer = loss_inputs(5)
    torch.manual_seed(6)
    vq = vqp.VQLPIPSWithDiscriminator(disc_start=3, codebook_weight=0.7, disc_weight=0.5,
                                      disc_ndf=4, disc_factor=0.8)
    set_lpips_weights(vq.perceptual_loss)
    vq.double()
    codebook_loss = torch.tensor(0.125, dtype=torch.float64)
    run_loss(vq, lambda x, x_rec, idx, step, ll: vq(codebook_loss, x, x_rec, idx, step,
                                                    last_layer=ll),
             x, h, last_layer, 10, "loss_vq", {"regulariser": codebook_loss})

    x, h, last_layer = loss_inputs(7)
    torch.manual_seed(8)
    kl = cont.LPIPSWithDiscriminator(disc_start=3, logvar_init=0.3, kl_weight=0.01,
                                     disc_weight=0.5, disc_loss="vanilla")
    # ldm passes no ndf (64); a 4-filter discriminator keeps the fixture small.
    kl.discriminator = disc.NLayerDiscriminator(input_nc=3, ndf=4, n_layers=3).apply(
        disc.weights_init)
    set_lpips_weights(kl.perceptual_loss)
    kl.double()
    kl_value = torch.tensor([3.5, 1.25], dtype=torch.float64)
    posterior = Posterior(kl_value)
    run_loss(kl, lambda x, x_rec, idx, step, ll: kl(x, x_rec, posterior, idx, step, last_layer=ll),
             x, h, last_layer, 10, "loss_kl",
             {"regulariser": kl_value, "logvar": kl.logvar.detach().reshape(())})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    lpips, vqp, disc, cont = import_references()
    make_lpips(lpips)
    make_discriminators(disc)
    make_losses(vqp, disc, cont)


if __name__ == "__main__":
    main()
