"""Render folders written with OpenCV (no Blender), laid out exactly like the renderer's output.

Frames come from the real sweep plan (`render.plan`), so groups, labels and mesh ids are the ones
the renderer would produce; each PNG holds seeded noise unique to its (set, file), so a test can
tell every image apart and check that packing and loading keep images and labels aligned.
"""
from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import cv2
import numpy as np

from config import RENDER_SETS, DatasetConfig, load_params
from render.plan import PlanRequest, frames_of, plan

ROOT = Path(__file__).resolve().parents[1]
TRAIN_MESHES = list(range(6))
TEST_MESHES = list(range(6, 10))
COLUMNS = "file,split,group,index,mesh,azimuth,elevation,light"


def tiny_dataset(name: str = "faces", **changes) -> DatasetConfig:
    ds = load_params(ROOT / "profiles" / "tiny.yaml").dataset(name)
    return dataclasses.replace(ds, **changes)


def pixels(name: str, file: str, size: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(f"{name}/{file}".encode()))
    shape = (size, size) if channels == 1 else (size, size, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_renders(root: Path, ds: DatasetConfig, size: int = 16, channels: int = 1,
                  sets=RENDER_SETS, seed: int = 0) -> Path:
    """Write data/renders/<dataset>/<set>/ for `sets` under `root`; returns `root`."""
    for name in sets:
        out = ds.render_dir(name, root)
        frames = frames_of(plan(PlanRequest(ds, name, seed, TRAIN_MESHES, TEST_MESHES)))
        rows = [COLUMNS]
        for f in frames:
            path = out / f.file
            path.parent.mkdir(parents=True, exist_ok=True)
            image = pixels(name, f.file, size, channels)
            # OpenCV writes BGR; store the RGB pixels so that reading back gives `pixels`.
            assert cv2.imwrite(str(path), image if channels == 1 else image[:, :, ::-1])
            rows.append(f"{f.file},{f.split},{f.group},{f.index},{f.mesh},{f.azimuth!r},{f.elevation!r},{f.light!r}")
        (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
