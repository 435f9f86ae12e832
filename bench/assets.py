"""Benchmark: generate and write 200 faces and 200 chairs (target: under a minute on 2 cores).

    .venv/bin/python bench/assets.py [--count 200]

Times `assets.catalog.build_meshes` end to end (generation + PLY writing + index) per dataset, in a
temporary folder, and prints per-mesh figures and the total.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.catalog import build_meshes  # noqa: E402
from config import load_params  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("faces", "chairs"):
            start = time.perf_counter()
            cat = build_meshes(params.dataset(name), params.seed, Path(tmp) / name, count=args.count)
            took = time.perf_counter() - start
            total += took
            size = sum(cat.path(i).stat().st_size for i in range(len(cat))) / 1e6
            tris = sum(len(cat.load(i).faces) for i in range(len(cat))) / len(cat)
            print(f"{name}: {len(cat)} meshes in {took:.2f} s ({1000 * took / len(cat):.1f} ms/mesh), "
                  f"{tris:.0f} triangles/mesh, {size:.1f} MB")
    print(f"total: {total:.2f} s for {2 * args.count} meshes (target < 60 s)")


if __name__ == "__main__":
    main()
