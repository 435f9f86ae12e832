"""Benchmark: packing renders into shards (images/s), by reader thread count, in one run.

    .venv/bin/python bench/shards.py [--params params.yaml] [--dataset faces] [--workers 1 2]

Writes a render tree of the profile's size (noise PNGs: the worst case for decoding; real renders,
mostly flat background, decode faster) to a temporary folder, then packs it once per thread count.
Target: several thousand images/s.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import load_params  # noqa: E402
from pipeline.shards import pack_dataset  # noqa: E402
from fixtures.renders import write_renders  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", default="faces")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    params = load_params(args.params)
    ds = params.dataset(args.dataset)
    size, channels = params.render.size, params.render.channels
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        write_renders(root, ds, size=size, channels=channels)
        images = sum(1 for _ in root.rglob("*.png"))
        print(f"{args.dataset}: {images} PNGs of {size}x{size}x{channels} written in {time.perf_counter() - t:.1f} s")
        for workers in args.workers:
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                manifest = pack_dataset(ds, params.shard, root, root / "shards", workers=workers, progress=False)
                best = min(best, time.perf_counter() - t)
            mb = sum(e.bytes for e in manifest.shards) / 2**20
            print(f"workers={workers}: {images / best:8.0f} images/s  {mb / best:6.1f} MB/s  "
                  f"({best:.2f} s best of {args.repeat}, {len(manifest.shards)} shards, {mb:.1f} MB)")


if __name__ == "__main__":
    main()
