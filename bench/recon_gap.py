"""Reconstruction on training vs test meshes: how much of the blur is the decoder not knowing an identity.

    .venv/bin/python bench/recon_gap.py faces models/faces-dcign.pt [--images 1024]

Encodes and decodes (encoder means) the same number of images drawn from each split of
`data/shards/<dataset>` and prints MSE and SSIM per split (SSIM as the evaluation computes it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from config import load_params  # noqa: E402
from evaluate.encode import as_float, decode, encode  # noqa: E402
from evaluate.rerender import mse, ssim  # noqa: E402
from model.checkpoint import load_model  # noqa: E402
from pipeline.loader import open_split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("checkpoint")
    ap.add_argument("--images", type=int, default=1024)
    args = ap.parse_args()
    shard_dir = ROOT / load_params(ROOT / "params.yaml").dataset(args.dataset).shard_dir()
    model, _ = load_model(args.checkpoint)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        images, _, _ = open_split(shard_dir, split).all_images()
        chosen = images[np.sort(rng.choice(len(images), min(args.images, len(images)), replace=False))]
        recon, truth = decode(model, encode(model, chosen)), as_float(chosen)
        print(f"{args.dataset} {split}: {len(chosen)} images, MSE {mse(recon, truth).mean():.5f}, "
              f"SSIM {ssim(recon, truth).mean():.3f}")


if __name__ == "__main__":
    main()
