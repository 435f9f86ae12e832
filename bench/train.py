"""Training throughput against the CPU floor, measured side by side in one run.

    .venv/bin/python bench/train.py [--threads 2] [--seconds 6]

For each case (architecture, image size, images per step) it times real DC-IGN training steps
(encode, clamp per sweep, decode, Bernoulli + KL + pull, backward, Adam) on random images and
compares with the floor: the FLOPs of one step (counted by torch.utils.flop_counter) divided by
this machine's matrix-multiply rate (a large torch.mm), measured in the same run. `of floor` is
measured images/s ÷ floor images/s (1.0 = as fast as a pure matmul of the same FLOPs).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from config import ModelConfig, TrainConfig  # noqa: E402
from model.nets import from_config  # noqa: E402
from model.train import autocast, dcign_step, make_optimizer, memory_format  # noqa: E402

SWEEP = 16  # images per sweep (params.yaml datasets.*.steps)
TYPES = ["azimuth", "intrinsic", "elevation", "intrinsic", "light", "intrinsic", "intrinsic", "intrinsic"]


def matmul_gflops(seconds: float, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - t0) / 1e9


def make_step(arch: str, size: int, sweeps: int, channels_last: bool | None, mirror: bool = False, **train):
    mc = ModelConfig(arch=arch, latents=32, mirror=mirror)
    tc = TrainConfig(**train)
    torch.manual_seed(0)
    model = from_config(mc, size, 1)
    fmt = memory_format(arch, torch.device("cpu")) if channels_last is None else (
        torch.channels_last if channels_last else torch.contiguous_format)
    model = model.to(memory_format=fmt)
    opt = make_optimizer(model, tc)
    x = torch.rand(sweeps * SWEEP, 1, size, size).contiguous(memory_format=fmt)
    types = (TYPES * sweeps)[:sweeps]

    def step():
        with autocast(tc, torch.device("cpu")):
            r = dcign_step(model, x, types, mc, tc)
        opt.zero_grad(set_to_none=True)
        r.loss.backward()
        opt.step()

    return step, len(x)


def step_flops(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def images_per_s(step, images: int, seconds: float) -> float:
    step()  # warm-up (allocations, oneDNN kernel selection)
    step()
    done, t0 = 0, time.perf_counter()
    while done < 2 or time.perf_counter() - t0 < seconds:
        step()
        done += 1
    return done * images / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0, help="timing window per case")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [  # (label, arch, size, sweeps per step, channels_last or None = what training uses[, mirror[, train]])
        ("conv4 64, fp32 (4 sweeps, channels_last, mirror)", "conv4", 64, 4, None, True),
        ("conv4 64, `train.precision: bf16`", "conv4", 64, 4, None, True, {"precision": "bf16"}),
        ("conv4 64, fp32, `train.ssim_weight: 1`", "conv4", 64, 4, None, True, {"ssim_weight": 1.0}),
        ("conv4 64, bf16 + `ssim_weight: 1` (params.yaml)", "conv4", 64, 4, None, True, {"precision": "bf16", "ssim_weight": 1.0}),
        ("conv4 64, 4 sweeps, no mirror", "conv4", 64, 4, None),
        ("conv4 64, 1 sweep/step", "conv4", 64, 1, None),
        ("conv4 64, 8 sweeps/step", "conv4", 64, 8, None),
        ("conv4 64, 4 sweeps, contiguous", "conv4", 64, 4, False),
        ("paper 64 (1 sweep)", "paper", 64, 1, None),
        ("paper 150 (1 sweep)", "paper", 150, 1, None),
    ]
    rate = matmul_gflops(args.seconds / 2)
    print(f"torch {torch.__version__}, {args.threads} threads; matmul 2048^3: {rate:.1f} GFLOP/s\n")
    print("| case | MFLOP/image (train step) | floor img/s | measured img/s | of floor |")
    print("|---|---:|---:|---:|---:|")
    for label, *case in cases:
        train = case.pop() if isinstance(case[-1], dict) else {}
        step, images = make_step(*case, **train)
        flops = step_flops(step) / images
        floor = rate * 1e9 / flops
        measured = images_per_s(step, images, args.seconds)
        print(f"| {label} | {flops / 1e6:.1f} | {floor:.0f} | {measured:.0f} | {measured / floor:.2f} |", flush=True)
    rate2 = matmul_gflops(args.seconds / 2)
    print(f"\nmatmul again at the end: {rate2:.1f} GFLOP/s (a large change means the shared machine's load moved)")


if __name__ == "__main__":
    main()
