#!/usr/bin/python3
"""CPU float32 timing of the reference Stable Diffusion 1.x VAE (ldm AutoencoderKL), to compare
with our C++ implementation measured in the same session on the same machine.

The network is the reference code itself (ldm.models.autoencoder.AutoencoderKL, imported from the
checkout given by LF_LDM_DIR / LF_TAMING_DIR exactly as scripts/make_ldm_fixtures.py does) at the
full SD 1.x first-stage size: ch 128, ch_mult [1,2,4,4], num_res_blocks 2, z 4, embed 4,
attention only in the mid blocks. Weights are random (seeded); timing does not depend on them.

Parts timed, batch 1, under torch.no_grad():
  encode   encoder + quant_conv            (image [1,3,S,S] -> moments [1,8,S/8,S/8])
  decode   post_quant_conv + decoder       (latent [1,4,S/8,S/8] -> image [1,3,S,S])
Each (part, size) is run once to warm up, then --repeats times; one JSON line per (part, size)
with the median and what the kernel charged per call (minor page faults, system and user time), e.g.
  {"impl": "pytorch-reference", "part": "decode", "size": 256, "ms": 1234.5, ...}

--flops adds the analytic count of each part (convolutions, including the 1x1 q/k/v/proj_out and
quant convs, and the two attention matmuls; GroupNorm, SiLU, softmax, padding and upsampling are
not counted): "macs" and "flops" = 2 * macs, and "gflop_per_s" on each timing line.
--matmul-peak also times a large float32 matmul with the same thread count, as the machine's
reference FLOP/s.

  /usr/bin/python3 bench/sd_vae_reference.py [--sizes 256 512] [--parts encode decode]
      [--repeats 3] [--threads N] [--flops] [--matmul-peak] [--count-only]
"""
import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import sys
import time

import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import make_ldm_fixtures as fixtures  # noqa: E402  (reference import + seeded init)

SD_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
               "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
               "dropout": 0.0}
SD_EMBED_DIM = 4


# ----------------------------------------------------------------------------- analytic count

def conv_macs(cin, cout, k, h_out, w_out):
    return cin * cout * k * k * h_out * w_out


def resnet_macs(cin, cout, h, w):
    m = conv_macs(cin, cout, 3, h, w) + conv_macs(cout, cout, 3, h, w)
    return m + (conv_macs(cin, cout, 1, h, w) if cin != cout else 0)  # nin_shortcut


def attn_macs(c, h, w):
    n = h * w
    return 4 * conv_macs(c, c, 1, h, w) + 2 * n * n * c  # q,k,v,proj_out; q^T k and v w^T


def encoder_macs(cfg, embed_dim, h, w):
    ch, mult, nrb = cfg["ch"], cfg["ch_mult"], cfg["num_res_blocks"]
    m = conv_macs(cfg["in_channels"], ch, 3, h, w)
    curr_res, in_mult = cfg["resolution"], [1] + list(mult)
    block_in = ch
    for i, cm in enumerate(mult):
        block_in, block_out = ch * in_mult[i], ch * cm
        for _ in range(nrb):
            m += resnet_macs(block_in, block_out, h, w)
            block_in = block_out
            if curr_res in cfg["attn_resolutions"]:
                m += attn_macs(block_in, h, w)
        if i != len(mult) - 1:
            h, w = h // 2, w // 2  # 3x3 stride 2 on the (0,1,0,1)-padded map
            m += conv_macs(block_in, block_in, 3, h, w)
            curr_res //= 2
    m += 2 * resnet_macs(block_in, block_in, h, w) + attn_macs(block_in, h, w)
    z = cfg["z_channels"] * (2 if cfg["double_z"] else 1)
    m += conv_macs(block_in, z, 3, h, w)
    return m + conv_macs(z, 2 * embed_dim if cfg["double_z"] else embed_dim, 1, h, w)  # quant_conv


def decoder_macs(cfg, embed_dim, h, w):
    """h, w: the latent size."""
    ch, mult, nrb = cfg["ch"], cfg["ch_mult"], cfg["num_res_blocks"]
    block_in = ch * mult[-1]
    curr_res = cfg["resolution"] // 2 ** (len(mult) - 1)
    m = conv_macs(embed_dim, cfg["z_channels"], 1, h, w)  # post_quant_conv
    m += conv_macs(cfg["z_channels"], block_in, 3, h, w)
    m += 2 * resnet_macs(block_in, block_in, h, w) + attn_macs(block_in, h, w)
    for i in reversed(range(len(mult))):
        block_out = ch * mult[i]
        for _ in range(nrb + 1):
            m += resnet_macs(block_in, block_out, h, w)
            block_in = block_out
            if curr_res in cfg["attn_resolutions"]:
                m += attn_macs(block_in, h, w)
        if i != 0:
            h, w = h * 2, w * 2  # nearest x2, then 3x3
            m += conv_macs(block_in, block_in, 3, h, w)
            curr_res *= 2
    return m + conv_macs(block_in, cfg["out_ch"], 3, h, w)


def counted_macs(model, part, x):
    """The same count from the running network (conv output shapes; bmm shapes), as a check."""
    total = [0]

    def conv_hook(m, i, o):
        total[0] += (m.in_channels // m.groups) * m.out_channels * m.kernel_size[0] \
            * m.kernel_size[1] * o.shape[-2] * o.shape[-1] * o.shape[0]

    real_bmm = torch.bmm

    def bmm(a, b):
        total[0] += a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        return real_bmm(a, b)

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    torch.bmm = bmm
    try:
        with torch.no_grad():
            run_part(model, part, x)
    finally:
        torch.bmm = real_bmm
        for hk in hooks:
            hk.remove()
    return total[0]


# ----------------------------------------------------------------------------- timing

def run_part(model, part, x):
    if part == "encode":
        return model.quant_conv(model.encoder(x))
    return model.decoder(model.post_quant_conv(x))


def part_input(part, size, gen):
    if part == "encode":
        return torch.rand((1, 3, size, size), generator=gen) * 2 - 1
    return torch.randn((1, SD_EMBED_DIM, size // 8, size // 8), generator=gen)


def time_call(fn, repeats):
    fn()  # warm-up
    runs = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1e3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    usage = {"minflt_per_call": (after.ru_minflt - before.ru_minflt) // repeats,
             "sys_s_per_call": round((after.ru_stime - before.ru_stime) / repeats, 3),
             "user_s_per_call": round((after.ru_utime - before.ru_utime) / repeats, 3),
             "peak_rss_mb": round(after.ru_maxrss / 1024)}
    return statistics.median(runs), runs, usage


def matmul_peak(threads, n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms, _, _ = time_call(lambda: torch.mm(a, b), repeats)
    return {"impl": "pytorch-reference", "part": "matmul_peak", "n": n, "threads": threads,
            "ms": round(ms, 3), "gflop_per_s": round(2 * n ** 3 / ms / 1e6, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--parts", nargs="+", choices=["encode", "decode"], default=["encode", "decode"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--flops", action="store_true", help="print and use the analytic FLOP counts")
    ap.add_argument("--count-only", action="store_true", help="with --flops: count, do not time")
    ap.add_argument("--matmul-peak", action="store_true", help="also time a 2048^3 float32 matmul")
    args = ap.parse_args()
    for s in args.sizes:
        if s % 8:
            ap.error(f"size {s} is not a multiple of 8")
    torch.set_num_threads(args.threads)

    VQModel, AutoencoderKL, _, _ = fixtures.import_reference()
    with contextlib.redirect_stdout(io.StringIO()):
        model = AutoencoderKL(SD_DDCONFIG, {"target": "torch.nn.Identity"}, SD_EMBED_DIM)
    model.eval()
    gen = torch.Generator().manual_seed(fixtures.SEED)
    fixtures.randomize(model, gen)
    params = {"encode": sum(p.numel() for n, p in model.named_parameters()
                            if n.startswith(("encoder.", "quant_conv."))),
              "decode": sum(p.numel() for n, p in model.named_parameters()
                            if n.startswith(("decoder.", "post_quant_conv.")))}

    if args.flops:
        # The analytic count must agree with the network as it runs (checked at a small size).
        for part in args.parts:
            x = part_input(part, 64, gen)
            want = encoder_macs(SD_DDCONFIG, SD_EMBED_DIM, 64, 64) if part == "encode" \
                else decoder_macs(SD_DDCONFIG, SD_EMBED_DIM, 8, 8)
            got = counted_macs(model, part, x)
            assert got == want, f"{part}: analytic {want} MACs != counted {got}"

    if args.matmul_peak:
        print(json.dumps(matmul_peak(args.threads)), flush=True)
    for size in args.sizes:
        for part in args.parts:
            line = {"impl": "pytorch-reference", "part": part, "size": size, "batch": 1,
                    "threads": args.threads, "dtype": "float32", "params": params[part]}
            if args.flops:
                macs = encoder_macs(SD_DDCONFIG, SD_EMBED_DIM, size, size) if part == "encode" \
                    else decoder_macs(SD_DDCONFIG, SD_EMBED_DIM, size // 8, size // 8)
                line.update(macs=macs, flops=2 * macs)
            if not args.count_only:
                x = part_input(part, size, gen)
                with torch.no_grad():
                    ms, runs, usage = time_call(lambda: run_part(model, part, x), args.repeats)
                line.update(ms=round(ms, 3), runs_ms=[round(r, 3) for r in runs],
                            repeats=args.repeats, **usage)
                if args.flops:
                    line["gflop_per_s"] = round(line["flops"] / ms / 1e6, 2)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
