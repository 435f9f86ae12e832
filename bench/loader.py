"""Benchmark: loader batches/s against the cost of a training step, measured side by side.

    .venv/bin/python bench/loader.py [--params params.yaml] [--dataset faces] [--batches 2000]

Packs a shard set of the profile's size (noise PNGs) into a temporary folder, then times
- SweepSampler: one sweep (K images) per batch, the paper's 1:1:1:10 mix;
- ImageBatches: shuffled single images, batch size train.batch_size;
- a training step: forward + backward + Adam update of the project's conv4 VAE on one batch of
  the same shape (model.nets.build), on the CPU threads torch would use.
Target: each loader delivers batches at least 10x faster than a training step consumes them.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from config import load_params  # noqa: E402
from model.nets import build  # noqa: E402
from pipeline.loader import ImageBatches, SweepSampler  # noqa: E402
from pipeline.shards import pack_dataset  # noqa: E402
from fixtures.renders import write_renders  # noqa: E402


def per_second(fn, n: int) -> float:
    fn()  # warm up (page cache, allocator, first permutation)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", default="faces")
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    params = load_params(args.params)
    ds = params.dataset(args.dataset)
    size, channels, batch = params.render.size, params.render.channels, params.train.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_renders(root, ds, size=size, channels=channels)
        pack_dataset(ds, params.shard, root, root / "shards", progress=False)
        sweeps = SweepSampler(root / "shards", mix=params.train.mix, seed=0)
        images = ImageBatches(root / "shards", batch_size=batch, seed=0)
        sweep_rate = per_second(lambda: next(sweeps), args.batches)
        image_rate = per_second(lambda: next(images), args.batches)

        net = build("conv4", size, channels, params.model.latents)
        opt = torch.optim.Adam(net.parameters(), lr=params.train.lr)
        results = {}
        for name, loader in (("sweep", sweeps), ("image", images)):
            x = next(loader).images

            def step():
                mu, logvar = net.encode(x)
                z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                loss = F.binary_cross_entropy_with_logits(net.decode(z), x, reduction="sum") \
                    - 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()

            results[name] = per_second(step, args.steps)
    print(f"{args.dataset} {size}x{size}x{channels}, torch threads {torch.get_num_threads()}")
    print(f"SweepSampler  (K={ds.steps}):  {sweep_rate:8.0f} batches/s   train step {results['sweep']:6.1f}/s   "
          f"ratio {sweep_rate / results['sweep']:6.0f}x")
    print(f"ImageBatches  (B={batch}):  {image_rate:8.0f} batches/s   train step {results['image']:6.1f}/s   "
          f"ratio {image_rate / results['image']:6.0f}x")


if __name__ == "__main__":
    main()
