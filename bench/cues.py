"""Benchmark: what in the picture a tied latent reads its factor from (a probe of a trained encoder).

    .venv/bin/python bench/cues.py --checkpoint models/faces-dcign.pt --shards data/shards/faces
    .venv/bin/python bench/cues.py --checkpoint models/faces-dcign.pt --shards tmp/elsewhere/data/shards/faces-elsewhere

On the test sweeps of `--factor` (default elevation) in `--shards`, with the checkpoint's tied latent:
1. position: how far rolling the whole picture a few pixels up or down, or scaling it, moves the latent,
   in degrees of the factor (the latent's least-squares slope on those sweeps);
2. regions: the mean within-sweep Spearman r of latent and factor with the bottom or top rows blacked
   out (does the latent read the shoulders? the crown?);
3. per sweep: within-sweep r and spread of the latent, with the sweep's other factors. On meshes made
   elsewhere this tells offsets between sweeps (every r near 1) from a latent that runs the wrong way
   in some sweeps (r near -1).
Nothing is written; the tables go to stdout.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--shards", required=True, type=Path)
    ap.add_argument("--factor", default="elevation")
    ap.add_argument("--split", default="test", choices=["train", "test"])
    args = ap.parse_args()

    import cv2
    from scipy.stats import spearmanr

    from evaluate.encode import encode
    from model.checkpoint import load_model
    from pipeline.loader import open_split
    from pipeline.shards import read_manifest

    model, meta = load_model(args.checkpoint)
    names = list(read_manifest(args.shards).factors)
    col, latent = names.index(args.factor), meta.owned[args.factor][0]
    sweeps = list(open_split(args.shards, args.split).sweeps(args.factor))
    images = np.concatenate([im for im, _, _ in sweeps])
    truth = np.concatenate([lab[:, col] for _, lab, _ in sweeps])
    base = encode(model, images)[:, latent]
    slope = np.polyfit(truth, base, 1)[0]
    print(f"{args.checkpoint} on {len(sweeps)} {args.split} sweeps of {args.factor} in {args.shards}: latent z{latent}, "
          f"slope {slope:.4f} per degree\n")

    h, w = images.shape[1:3]
    print("| picture rolled (np.roll) | latent moves by (degrees of the factor) |\n|---|---|")
    for dy in (-4, -2, 2, 4):
        moved = np.roll(images, dy, axis=1)
        print(f"| {abs(dy)} px {'up' if dy < 0 else 'down'} | {(encode(model, moved)[:, latent] - base).mean() / slope:+.1f} |")
    for s in (0.9, 1.1):
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0, s)
        scaled = np.stack([cv2.warpAffine(im, m, (w, h)) for im in images]).reshape(images.shape)
        print(f"| scaled x{s} | {(encode(model, scaled)[:, latent] - base).mean() / slope:+.1f} |")

    starts = np.cumsum([0] + [len(im) for im, _, _ in sweeps])

    def within(latents: np.ndarray) -> np.ndarray:
        """Within-sweep Spearman r of the latent (all sweeps' frames, in order) and the factor."""
        return np.array([spearmanr(latents[a:b], truth[a:b])[0] for a, b in zip(starts, starts[1:])])

    print("\n| rows blacked out | mean within-sweep r | sweeps with r < 0.5 |\n|---|---|---|")
    for name, rows in (("none", None), ("bottom 8", slice(h - 8, h)), ("bottom 16", slice(h - 16, h)),
                       ("bottom 24", slice(h - 24, h)), ("top 16", slice(0, 16)), ("top 24", slice(0, 24))):
        masked = images.copy()
        if rows is not None:
            masked[:, rows] = 0
        r = within(base if rows is None else encode(model, masked)[:, latent])
        print(f"| {name} | {r.mean():.2f} | {(r < 0.5).mean():.0%} |")

    others = [n for n in names if n != args.factor]
    r = within(base)
    print(f"\n| mesh | {' | '.join(others)} | within-sweep r | latent sd |\n|---|{'---|' * len(others)}---|---|")
    order = sorted(range(len(sweeps)), key=lambda i: (int(sweeps[i][2][0]), *sweeps[i][1][0]))
    for i in order:
        _, lab, mesh = sweeps[i]
        fixed = " | ".join(f"{lab[0, names.index(n)]:.0f}" for n in others)
        print(f"| {int(mesh[0])} | {fixed} | {r[i]:+.2f} | {base[starts[i]:starts[i + 1]].std():.2f} |")


if __name__ == "__main__":
    main()
