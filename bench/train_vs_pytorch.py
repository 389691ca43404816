#!/usr/bin/env python3
"""Training throughput of latentforge vs the same networks in PyTorch, measured in one run.

For each config, runs `latentforge bench train` (ours: data loader + forward + backward + Adam),
reads the resolved model options it prints, builds the same network in PyTorch (Debian's
python3-torch, same threads, same batch, same Fashion-MNIST batches from memory) and times the
same steps. Prints a table with the ratio ours / PyTorch (> 1 means we are faster).

The VQGAN and KL configs are measured twice: before disc_start (reconstruction and codebook / KL
terms only) and from disc_start on (the adversarial term with its adaptive weight, which takes two
extra gradient evaluations at the last layer, then the discriminator's own step on the detached
reconstruction). Their PyTorch side is the reference code itself: taming's VQModel and ldm's
AutoencoderKL (Encoder, Decoder, VectorQuantizer2, DiagonalGaussianDistribution) and taming's
NLayerDiscriminator with its weights_init, imported from the checkouts named by LF_TAMING_DIR and
LF_LDM_DIR as scripts/make_ldm_fixtures.py does; the loss is taming's VQLPIPSWithDiscriminator /
ldm's LPIPSWithDiscriminator formula written out here (their modules import torchvision for LPIPS,
which is off in these configs), in a plain loop that, like ours, runs the autoencoder once per
step and skips the discriminator pass before disc_start (the Lightning loop of the originals runs
the autoencoder once per optimizer, twice per step: slower than this reference).

With --rounds N every measurement (ours and each reference) is repeated N times, interleaved, and
each cell is the median over the rounds; the ratio column is then the ratio of the medians, and
the range column gives the lowest and highest ratio of a single round (the machine's own drift
moves single runs of the small GAN configs by 10-20%).

  /usr/bin/python3 bench/train_vs_pytorch.py [--binary build/latentforge] [--steps 30] [--threads N]
                                             [--rounds 1] [--configs configs/vqgan_fashion.yaml ...]
"""
import argparse
import contextlib
import gzip
import io
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = ["configs/vqvae_fashion.yaml", "configs/vae_fashion.yaml", "configs/ae_fashion.yaml",
           "configs/vqgan_fashion.yaml", "configs/kl_fashion.yaml"]
GAN_KINDS = ("vqgan", "autoencoder_kl")
FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def act(x, silu):
    return F.silu(x) if silu else F.relu(x)


class ResidualBlock(nn.Module):  # x + conv1x1(act(conv3x3(act(x))))
    def __init__(self, c, silu):
        super().__init__()
        self.conv1, self.conv2, self.silu = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 1), silu

    def forward(self, x):
        return x + self.conv2(act(self.conv1(act(x, self.silu)), self.silu))


class ConvEncoder(nn.Module):  # stride-2 4x4 convs, residual blocks, 1x1 out
    def __init__(self, cin, hidden, nres, cout, silu):
        super().__init__()
        chans = [cin] + list(hidden)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans, chans[1:]))
        self.res = nn.ModuleList(ResidualBlock(hidden[-1], silu) for _ in range(nres))
        self.conv_out, self.silu = nn.Conv2d(hidden[-1], cout, 1), silu

    def forward(self, x):
        for conv in self.down:
            x = act(conv(x), self.silu)
        for block in self.res:
            x = block(x)
        if len(self.res):
            x = act(x, self.silu)
        return self.conv_out(x)


class ConvDecoder(nn.Module):  # 3x3 in, residual blocks, stride-2 4x4 transposed convs, 3x3 out
    def __init__(self, cin, hidden, nres, cout, silu):
        super().__init__()
        self.conv_in = nn.Conv2d(cin, hidden[-1], 3, padding=1)
        self.res = nn.ModuleList(ResidualBlock(hidden[-1], silu) for _ in range(nres))
        n = len(hidden)
        self.up = nn.ModuleList(nn.ConvTranspose2d(hidden[i], hidden[max(i - 1, 0)], 4, 2, 1) for i in range(n - 1, -1, -1))
        self.conv_out, self.silu = nn.Conv2d(hidden[0], cout, 3, padding=1), silu

    def forward(self, z):
        z = self.conv_in(z)
        for block in self.res:
            z = block(z)
        z = act(z, self.silu)
        for conv in self.up:
            z = act(conv(z), self.silu)
        return self.conv_out(z)


class Quantizer(nn.Module):
    """Nearest code by ||e||^2 - 2 z e^T, straight-through, beta on the commitment term, optional EMA."""

    def __init__(self, q):
        super().__init__()
        self.k, self.d, self.beta = q["num_codes"], q["code_dim"], q["beta"]
        self.use_ema, self.decay, self.eps = q.get("use_ema", False), q.get("ema_decay", 0.99), q.get("ema_epsilon", 1e-5)
        self.embedding = nn.Embedding(self.k, self.d)
        self.embedding.weight.data.uniform_(-1.0 / self.k, 1.0 / self.k)
        if self.use_ema:
            self.embedding.weight.requires_grad_(False)
            self.register_buffer("cluster", torch.ones(self.k))
            self.register_buffer("embed_sum", self.embedding.weight.data.clone())

    def forward(self, z):
        zf = z.permute(0, 2, 3, 1).reshape(-1, self.d)
        e = self.embedding.weight
        with torch.no_grad():
            idx = ((e * e).sum(1)[None, :] - 2 * zf @ e.t()).argmin(1)
        zq = e[idx]
        commit = F.mse_loss(zf, zq.detach())
        if self.use_ema:
            with torch.no_grad():
                onehot = F.one_hot(idx, self.k).type(zf.dtype)
                self.cluster.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_sum.mul_(self.decay).add_(onehot.t() @ zf, alpha=1 - self.decay)
                n = self.cluster.sum()
                size = (self.cluster + self.eps) / (n + self.k * self.eps) * n
                self.embedding.weight.data.copy_(self.embed_sum / size[:, None])
            loss = self.beta * commit
        else:
            loss = F.mse_loss(zq, zf.detach()) + self.beta * commit
        zq = zf + (zq - zf).detach()
        return zq.view(z.shape[0], z.shape[2], z.shape[3], self.d).permute(0, 3, 1, 2), loss


class VQVAE(nn.Module):
    def __init__(self, o):
        super().__init__()
        silu, q = o.get("activation") == "silu", o["quantizer"]
        self.encoder = ConvEncoder(o["in_channels"], o["hidden"], o["num_res_blocks"], q["code_dim"], silu)
        self.quantize = Quantizer(q)
        self.decoder = ConvDecoder(q["code_dim"], o["hidden"], o["num_res_blocks"], o["in_channels"], silu)

    def loss(self, x):
        zq, lq = self.quantize(self.encoder(x))
        return F.mse_loss(self.decoder(zq), x) + lq


class AE(nn.Module):
    def __init__(self, o):
        super().__init__()
        silu = o.get("activation") == "silu"
        self.encoder = ConvEncoder(o["in_channels"], o["hidden"], o["num_res_blocks"], o["latent_channels"], silu)
        self.decoder = ConvDecoder(o["latent_channels"], o["hidden"], o["num_res_blocks"], o["in_channels"], silu)

    def loss(self, x):
        return F.mse_loss(self.decoder(self.encoder(x)), x)


class SeedVAE(nn.Module):
    """The seed's conv VAE: stride-2 conv+BN+ReLU, linear mean/logvar heads, transposed-conv decoder."""

    def __init__(self, o):
        super().__init__()
        hidden, prev, size = o["hidden"], o["in_channels"], o["image_size"]
        mods = []
        for c in hidden:
            mods.append(nn.Sequential(nn.Conv2d(prev, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU()))
            prev, size = c, size // 2
        self.encoder = nn.Sequential(*mods)
        flat = prev * size * size
        self.mean_linear, self.var_linear = nn.Linear(flat, o["latent_dim"]), nn.Linear(flat, o["latent_dim"])
        self.decoder_projection, self.chw = nn.Linear(o["latent_dim"], flat), (prev, size, size)
        mods = [nn.Sequential(nn.ConvTranspose2d(hidden[i], hidden[i - 1], 3, 2, 1, 1), nn.BatchNorm2d(hidden[i - 1]), nn.ReLU())
                for i in range(len(hidden) - 1, 0, -1)]
        mods.append(nn.Sequential(nn.ConvTranspose2d(hidden[0], hidden[0], 3, 2, 1, 1), nn.BatchNorm2d(hidden[0]), nn.ReLU(),
                                  nn.Conv2d(hidden[0], o["in_channels"], 3, 1, 1)))
        self.decoder, self.kl_weight = nn.Sequential(*mods), o["kl_weight"]

    def loss(self, x):
        h = torch.flatten(self.encoder(x), 1)
        mean, logvar = self.mean_linear(h), self.var_linear(h)
        z = mean + torch.exp(logvar / 2) * torch.randn_like(logvar)
        y = self.decoder(self.decoder_projection(z).view(-1, *self.chw))
        kl = torch.mean(-0.5 * torch.sum(1 + logvar - mean ** 2 - torch.exp(logvar), 1), 0)
        return F.mse_loss(y, x) + self.kl_weight * kl


_REFERENCE = None


def reference_classes():
    """taming's VQModel, ldm's AutoencoderKL and taming's NLayerDiscriminator + weights_init."""
    global _REFERENCE
    if _REFERENCE is None:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        import make_ldm_fixtures  # noqa: E402  (the reference import with its documented stubs)
        vq_model, autoencoder_kl, _, _ = make_ldm_fixtures.import_reference()
        import importlib
        disc = importlib.import_module("taming.modules.discriminator.model")
        _REFERENCE = (vq_model, autoencoder_kl, disc.NLayerDiscriminator, disc.weights_init)
    return _REFERENCE


class ReferenceGAN(nn.Module):
    """taming VQModel / ldm AutoencoderKL with the loss of VQLPIPSWithDiscriminator /
    LPIPSWithDiscriminator (pixel L1, LPIPS off, hinge, adaptive weight)."""

    def __init__(self, o):
        super().__init__()
        vq_model, autoencoder_kl, discriminator, weights_init = reference_classes()
        loss, identity = o["loss"], {"target": "torch.nn.Identity"}
        self.kl = o["type"] == "autoencoder_kl"
        if self.kl:
            self.ae = autoencoder_kl(o["ddconfig"], identity, o["embed_dim"])
            self.logvar = nn.Parameter(torch.ones(()) * loss["logvar_init"])
        else:
            self.ae = vq_model(o["ddconfig"], identity, o["n_embed"], o["embed_dim"])
        self.discriminator = discriminator(input_nc=loss["disc_in_channels"], ndf=loss["disc_ndf"],
                                           n_layers=loss["disc_num_layers"],
                                           use_actnorm=loss["use_actnorm"]).apply(weights_init)
        self.o, self.step = loss, 0

    def generator_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]

    def adaptive_weight(self, nll_loss, g_loss):
        last = self.ae.get_last_layer()
        nll_grads = torch.autograd.grad(nll_loss, last, retain_graph=True)[0]
        g_grads = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
        return torch.clamp(d_weight, 0.0, 1e4).detach() * self.o["disc_weight"]

    def loss(self, x):
        adversarial = self.step >= self.o["disc_start"]
        if self.kl:
            xrec, posterior = self.ae(x)
            rec = torch.abs(x.contiguous() - xrec.contiguous()) * self.o["pixel_weight"]
            nll_loss = torch.sum(rec / torch.exp(self.logvar) + self.logvar) / x.shape[0]
            loss = nll_loss + self.o["kl_weight"] * torch.sum(posterior.kl()) / x.shape[0]
        else:
            xrec, qloss = self.ae(x)
            rec = torch.abs(x.contiguous() - xrec.contiguous()) * self.o["pixel_weight"]
            nll_loss = torch.mean(rec)
            loss = nll_loss + self.o["codebook_weight"] * qloss.mean()
        if adversarial:
            g_loss = -torch.mean(self.discriminator(xrec.contiguous()))
            loss = loss + self.adaptive_weight(nll_loss, g_loss) * self.o["disc_factor"] * g_loss
        self.xrec = xrec
        return loss

    def discriminator_loss(self, x):
        logits_real = self.discriminator(x.contiguous().detach())
        logits_fake = self.discriminator(self.xrec.contiguous().detach())
        d_loss = 0.5 * (torch.mean(F.relu(1. - logits_real)) + torch.mean(F.relu(1. + logits_fake)))
        return self.o["disc_factor"] * d_loss


def build(model_options):
    kind = model_options["type"]
    if kind in GAN_KINDS:
        with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its shapes
            return ReferenceGAN(model_options)
    if kind == "vqvae":
        return VQVAE(model_options)
    if kind == "ae":
        return AE(model_options)
    if kind == "vae" and model_options.get("variant", "conv") == "conv":
        return SeedVAE(model_options)
    raise SystemExit(f"train_vs_pytorch.py: no PyTorch mirror for {kind} {model_options.get('variant', '')}")


def fashion_batches(batch, size=28):
    with gzip.open(FASHION, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    images = torch.from_numpy(data.copy()).float().div_(127.5).sub_(1.0)
    if size != 28:  # resized once here, not per batch: in the reference's favour
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    generator = torch.Generator().manual_seed(0)
    while True:
        perm = torch.randperm(images.shape[0], generator=generator)
        for i in range(0, images.shape[0] - batch + 1, batch):
            yield images[perm[i:i + batch]]


def time_pytorch(ours, steps, warmup):
    model_options, batch = ours["model"], ours["batch_size"]
    model = build(model_options).train()
    gan = isinstance(model, ReferenceGAN)
    params = model.generator_parameters() if gan else model.parameters()
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=1e-4)
    disc_opt = torch.optim.Adam(model.discriminator.parameters(), lr=1e-4) if gan else None
    if gan:
        model.step = ours["step"]
    size = model_options.get("ddconfig", {}).get("resolution", 28)
    batches = fashion_batches(batch, size)
    grad_clip = ours.get("grad_clip", 0)

    def step():
        x = next(batches)  # a fancy-index copy per batch, as a DataLoader without workers would do
        opt.zero_grad(set_to_none=False)
        if gan:  # no discriminator gradients in the generator's backward (Lightning's toggle)
            model.discriminator.requires_grad_(False)
        model.loss(x).backward()
        if gan:
            model.discriminator.requires_grad_(True)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], grad_clip)
        opt.step()
        if gan and ours["discriminator"]:
            disc_opt.zero_grad(set_to_none=False)
            model.discriminator_loss(x).backward()
            disc_opt.step()

    for _ in range(warmup):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"images_per_s": batch * steps / seconds,
            "step_ms": 1000 * seconds / steps,
            "minor_faults_per_step": (after.ru_minflt - before.ru_minflt) // steps,
            "system_ms_per_step": 1000 * (after.ru_stime - before.ru_stime) / steps,
            "peak_rss_mb": after.ru_maxrss / 1024}


JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def reference_in_child(ours, threads, steps, warmup, jemalloc):
    """The PyTorch reference's timing (img/s, and what the kernel charged per timed step) in a fresh
    process; with jemalloc preloaded and set up as latentforge links it (freed pages kept:
    src/core/process_defaults.cpp) when asked."""
    env = dict(os.environ)
    if jemalloc:
        env["LD_PRELOAD"] = JEMALLOC
        env["MALLOC_CONF"] = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--reference-child", json.dumps(ours),
                          "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def median_run(runs):
    """The run with the median images/s (the lower middle one of an even count), whole: its faults,
    system time and peak RSS come with it."""
    ordered = sorted(runs, key=lambda r: r["images_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="build/latentforge")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--configs", nargs="*", default=CONFIGS)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement, report medians")
    parser.add_argument("--reference-child", help=argparse.SUPPRESS)  # internal: one reference run
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.reference_child:
        print(json.dumps(time_pytorch(json.loads(args.reference_child), args.steps, args.warmup)))
        return 0
    if not os.path.exists(JEMALLOC):
        raise SystemExit(f"train_vs_pytorch.py: {JEMALLOC} is missing (Debian's libjemalloc2, installed by "
                         "scripts/setup.sh)")

    runs = []
    for config in args.configs:
        with open(config) as f:
            gan = any(line.split("#")[0].strip() in (f"type: {k}" for k in GAN_KINDS) for line in f)
        if not gan:
            runs.append((config, 0, os.path.basename(config)))
            continue
        runs.append((config, 0, os.path.basename(config) + ", before disc_start"))
        runs.append((config, None, os.path.basename(config) + ", with discriminator"))

    rows = []
    for config, step, name in runs:
        command = [args.binary, "--threads", str(args.threads), "--log-level", "error", "bench", "train",
                   "--config", config, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        if step is None:  # the discriminator's start, read from what the model resolved
            probe = json.loads(subprocess.run(command[:-4] + ["--steps", "1", "--warmup", "0"], check=True,
                                              capture_output=True, text=True).stdout)
            step = probe["model"]["loss"]["disc_start"]
        # PyTorch at the same thread count and at one thread (on some machines one thread is
        # faster: OpenMP threads spinning), each as users run it and with our allocator; the ratios
        # are taken against the better thread count of each.
        variants = [(t, j) for j in (False, True) for t in sorted({args.threads, 1})]
        rounds_ours, rounds_ref, round_ratios = [], {v: [] for v in variants}, []
        for _ in range(max(1, args.rounds)):
            out = subprocess.run(command + ["--step", str(step)], check=True, capture_output=True,
                                 text=True).stdout
            ours = json.loads(out)
            rounds_ours.append(ours)
            this_round = {v: reference_in_child(ours, v[0], args.steps, args.warmup, v[1]) for v in variants}
            for v, r in this_round.items():
                rounds_ref[v].append(r)
            best_now = max(r["images_per_s"] for (t, j), r in this_round.items() if not j)
            round_ratios.append(ours["images_per_s"] / best_now)
        ours = median_run(rounds_ours)
        ref = {v: median_run(runs) for v, runs in rounds_ref.items()}
        best = max((r for (t, j), r in ref.items() if not j), key=lambda r: r["images_per_s"])
        best_jemalloc = max((r for (t, j), r in ref.items() if j), key=lambda r: r["images_per_s"])
        rows.append((name, ours, ref[(args.threads, False)], ref[(1, False)], best, best_jemalloc,
                     (min(round_ratios), max(round_ratios))))

    print(f"training throughput, {args.threads} threads, torch {torch.__version__} (PyTorch reference in the same run; "
          f"each reference measurement in a fresh process; median of {max(1, args.rounds)} round(s))")
    print(f"| config | batch | latentforge img/s | ms/step | PyTorch img/s ({args.threads} threads) | PyTorch img/s (1 thread) "
          "| PyTorch + jemalloc img/s (better thread count) | ratio vs best PyTorch | ratio vs best PyTorch + jemalloc "
          "| ratio vs best PyTorch, single rounds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, ours, ref_n, ref_1, best, best_j, spread in rows:
        ips = ours["images_per_s"]
        print(f"| {name} | {ours['batch_size']} | {ips:.0f} | {ours['step_ms']:.1f} | {ref_n['images_per_s']:.0f} "
              f"| {ref_1['images_per_s']:.0f} | {best_j['images_per_s']:.0f} | {ips / best['images_per_s']:.2f} "
              f"| {ips / best_j['images_per_s']:.2f} | {spread[0]:.2f}-{spread[1]:.2f} |")
    print()
    print("what the kernel charged per timed step (minor page faults / system ms), and each process's peak RSS "
          "(MB); PyTorch at the thread count of its best run")
    print("| config | latentforge | PyTorch | PyTorch + jemalloc |")
    print("|---|---|---|---|")
    for name, ours, _, _, best, best_j, _ in rows:
        cells = [f"{r['minor_faults_per_step']} / {r['system_ms_per_step']:.1f} / {r['peak_rss_mb']:.0f}"
                 for r in (ours, best, best_j)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
