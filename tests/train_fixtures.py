"""A tiny real shard set for the training tests, without Blender.

Synthetic "renders" (a shaded ellipse whose position follows azimuth and elevation, whose shading
follows the light azimuth and whose shape follows the mesh) are written as PNGs + labels.csv in the
render layout and packed by the real `pipeline.shards.pack_dataset`, so the tests train through the
real shards and loaders. The Blender renders themselves are covered by the render tests.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import yaml

from config import Params, load_params
from tests.render_fixtures import FACTORS, RENDER_SETS

SIZE, STEPS = 32, 8
RANGES = {"azimuth": (-60.0, 60.0), "elevation": (-20.0, 20.0), "light": (-80.0, 80.0)}


def image(azimuth: float, elevation: float, light: float, mesh: int, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size - 0.5
    cx, cy = 0.25 * azimuth / 60.0, -0.25 * elevation / 20.0
    rx, ry = 0.18 + 0.03 * (mesh % 3), 0.24 - 0.02 * (mesh % 2)
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    shade = 0.55 + 0.4 * np.clip(np.sin(np.radians(light)) * (xx - cx) / rx, -1, 1)
    return np.where(inside, shade * 255, 10).round().astype(np.uint8)


def write_renders(root: Path, dataset: str, groups: int = 3, test_groups: int = 1, seed: int = 0,
                  size: int = SIZE) -> None:
    rng = np.random.default_rng(seed)
    for name in RENDER_SETS:
        out = root / dataset / name
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for split, count, meshes in (("train", groups if name != "iid" else 0, (0, 4)), ("test", test_groups, (4, 6))):
            for g in range(count):
                base = {f: rng.uniform(*RANGES[f]) for f in FACTORS}
                mesh0 = int(rng.integers(*meshes))
                for i in range(STEPS):
                    v, mesh = dict(base), mesh0
                    if name in FACTORS:
                        lo, hi = RANGES[name]
                        v[name] = lo + (hi - lo) * i / (STEPS - 1)
                    elif name == "intrinsic":
                        mesh = int(rng.integers(*meshes))
                    elif name == "iid":
                        v, mesh = {f: rng.uniform(*RANGES[f]) for f in FACTORS}, int(rng.integers(*meshes))
                    file = f"{split}-{g:04d}-{i:02d}.png"
                    cv2.imwrite(str(out / file), image(v["azimuth"], v["elevation"], v["light"], mesh, size))
                    rows.append({"split": split, "group": g, "index": i, "file": file, "mesh": mesh, **v})
        with open(out / "labels.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["split", "group", "index", "file", "mesh", *FACTORS])
            w.writeheader()
            w.writerows(rows)


def raw_params(**train) -> dict:
    ds = {
        "source": {"kind": "generator", "generator": "faces"},
        "meshes": {"train": 4, "test": 2},
        "steps": STEPS,
        "ranges": {f: list(r) for f, r in RANGES.items()},
        "groups": {"azimuth": 3, "elevation": 3, "light": 3, "intrinsic": 3},
        "test_groups": 1,
    }
    return {
        "seed": 3,
        "render": {"size": SIZE},
        "datasets": {"toy": ds},
        "model": {"arch": "conv4", "latents": 8},
        "train": {"steps": 12, "batch_size": 16, "sweeps_per_step": 2, "threads": 1, "checkpoint_every": 4,
                  "log_every": 2, "image_every": 6, "device": "cpu", **train},
    }


def write_params(path: Path, **train) -> Path:
    path.write_text(yaml.safe_dump(raw_params(**train)))
    return path


def make_shards(root: Path) -> tuple[Params, Path]:
    """Renders + shards under `root`; returns the params and the shard folder."""
    from pipeline.shards import pack_dataset

    params = load_params(write_params(root / "params.yaml"))
    write_renders(root / "renders", "toy")
    shard_dir = root / "shards" / "toy"
    pack_dataset(params.dataset("toy"), params.shard, root / "renders", shard_dir, progress=False)
    return params, shard_dir
