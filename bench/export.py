"""Benchmark: `export` to both formats (images/s), with and without ground-truth passes.

    .venv/bin/python bench/export.py [--params params.yaml] [--dataset faces] [--repeat 3] [--passes]

Exports data/shards/<dataset> if it exists (the real renders of `dvc repro`). Otherwise it packs
synthetic renders of the profile's size first (seeded noise PNGs, fixtures/renders.py, with the real
`pack_dataset`): noise is the worst case for PNG encoding, which is most of an export's work; real
renders, mostly flat background, encode faster. `--passes` adds the passes contract's arrays to every
shard (depth, normal, mask, K, world_to_camera) to measure an export that carries them.
Prints images/s per format (best of --repeat) and the machine's load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from config import load_params  # noqa: E402
from pipeline.export import FORMATS, export_dataset  # noqa: E402
from pipeline.npzfile import open_members, write_npz  # noqa: E402
from pipeline.shards import MANIFEST, pack_dataset, sha256  # noqa: E402
from fixtures.renders import write_renders  # noqa: E402


def synthetic_shards(params, dataset: str, root: Path) -> Path:
    ds = params.dataset(dataset)
    write_renders(root, ds, size=params.render.size, channels=params.render.channels)
    pack_dataset(ds, params.shard, root, root / "shards", progress=False)
    return root / "shards"


def add_passes(shards: Path) -> None:
    """Rewrite every shard with the passes contract's members, as `shard` will write them."""
    raw = json.loads((shards / MANIFEST).read_text())
    rng = np.random.default_rng(0)
    for entry in raw["shards"]:
        path = shards / entry["path"]
        arrays = {k: np.array(v) for k, v in open_members(path).items()}
        g, k, h, w = arrays["images"].shape[:4]
        arrays.update(depth=rng.uniform(1, 4, (g, k, h, w)).astype(np.float32),
                      normal=rng.uniform(-1, 1, (g, k, h, w, 3)).astype(np.float32),
                      mask=(rng.uniform(size=(g, k, h, w)) > 0.5).astype(np.uint8),
                      K=rng.normal(size=(g, k, 3, 3)).astype(np.float32),
                      world_to_camera=rng.normal(size=(g, k, 4, 4)).astype(np.float32))
        write_npz(path, arrays)
        entry["bytes"], entry["sha256"] = path.stat().st_size, sha256(path)
    raw["passes"] = ["depth", "normal", "mask"]
    (shards / MANIFEST).write_text(json.dumps(raw))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", default="faces")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--passes", action="store_true", help="add synthetic passes to (synthetic) shards")
    args = ap.parse_args()
    params = load_params(args.params)
    real = params.dataset(args.dataset).shard_dir()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if real.is_dir() and not args.passes:
            shards, what = real, f"{real} (real renders)"
        else:
            t = time.perf_counter()
            shards = synthetic_shards(params, args.dataset, root)
            if args.passes:
                add_passes(shards)
            what = f"synthetic noise shards of {args.params}{' with passes' if args.passes else ''} " \
                   f"(built in {time.perf_counter() - t:.1f} s)"
        mb = sum(p.stat().st_size for p in shards.rglob("*.npz")) / 2**20
        print(f"{args.dataset}: {what}, {mb:.1f} MB of shards; load average before {os.getloadavg()[0]:.2f}")
        for fmt in FORMATS:
            best, images, size = float("inf"), 0, 0
            for _ in range(args.repeat):
                out = root / f"out-{fmt}"
                t = time.perf_counter()
                result = export_dataset(params, args.dataset, fmt, out, shard_dir=shards, progress=False)
                best = min(best, time.perf_counter() - t)
                images = result.images
                size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
            print(f"{fmt:>10}: {images / best:8.0f} images/s  ({images:,} images in {best:.2f} s, best of "
                  f"{args.repeat}; {size:.1f} MB written; load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
