"""Small real inputs for the render tests: a params file and a mesh catalog of asymmetric blobs.

The blobs stand in for generated faces so these tests do not depend on the face generator: each is
a stretched sphere with a "nose" bump toward -Y (its front) and an "ear" bump toward +X (its left),
so azimuth changes the silhouette and light azimuth changes the shading.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml

from assets.catalog import INDEX, FORMAT, MeshEntry, fingerprint, source_record
from assets.mesh import Mesh, write_ply
from config import IID, INTRINSIC, Params, load_params
from factors import PAPER

SEED = 7
FACTORS = tuple(PAPER)
"""The paper's factors: what params.yaml and the test profiles declare (profiles/tiny-factors.yaml aside)."""
SWEEPS = FACTORS + (INTRINSIC,)
RENDER_SETS = SWEEPS + (IID,)


def blob(variant: int = 0, n: int = 24) -> Mesh:
    theta = np.linspace(0, np.pi, n)[1:-1]
    phi = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    d = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    d = np.vstack([d, [[0, 0, 1], [0, 0, -1]]])
    nose = 0.12 + 0.03 * variant
    r = (0.32 + nose * np.exp(-((d - [0, -1, 0]) ** 2).sum(1) / 0.1)
         + 0.12 * np.exp(-((d - [1, 0, 0]) ** 2).sum(1) / 0.15))
    vertices = d * r[:, None] * [1.0, 1.0 + 0.1 * variant, 1.3]
    rows, cols = len(theta), len(phi)

    def at(i, j):
        return i * cols + j % cols

    faces = []
    for i in range(rows - 1):
        for j in range(cols):
            a, b, c, e = at(i, j), at(i, j + 1), at(i + 1, j), at(i + 1, j + 1)
            faces += [[a, c, b], [b, c, e]]
    top, bottom = rows * cols, rows * cols + 1
    for j in range(cols):
        faces += [[top, at(0, j), at(0, j + 1)], [bottom, at(rows - 1, j + 1), at(rows - 1, j)]]
    colors = np.full_like(vertices, 0.55 + 0.08 * variant)
    return Mesh(vertices, np.array(faces), colors)


def raw_params(**render) -> dict:
    ds = {
        "source": {"kind": "generator", "generator": "faces"},
        "meshes": {"train": 3, "test": 2},
        "steps": 3,
        "ranges": {"azimuth": [-60, 60], "elevation": [-20, 20], "light": [-80, 80]},
        "groups": {"azimuth": 2, "elevation": 2, "light": 2, "intrinsic": 2},
        "test_groups": 1,
        "iid": {"train": 0, "test": 1, "group_size": 4},
        "camera": {"distance": 3.0, "fov": 30},
        "light": {"elevation": 30, "strength": 3.0, "ambient": 0.08},
    }
    return {"seed": SEED, "render": {"size": 32, "samples": 4, "workers": 2, **render}, "datasets": {"faces": ds}}


@contextlib.contextmanager
def inside(root: Path, params: Params) -> Iterator[tuple[Path, Params]]:
    """(root, params) with `root` as the working directory: the runner finds data/meshes/<dataset> there."""
    with contextlib.chdir(root):
        yield root, params


def render_into(project: tuple[Path, Params], factor: str, out: str) -> Path:
    """Render the faces set `factor` of an `inside` project into `<root>/<out>` (the real runner)."""
    from render.runner import RenderJob, render_set

    root, params = project
    render_set(params, RenderJob("faces", factor, root / out))
    return root / out


def make_project(root: Path, **render) -> Params:
    """`root/params.yaml` plus `root/data/meshes/faces` (a catalog the runner accepts as current)."""
    (root / "params.yaml").write_text(yaml.safe_dump(raw_params(**render)))
    params = load_params(root / "params.yaml")
    ds = params.dataset("faces")
    mesh_dir = root / ds.mesh_dir()
    mesh_dir.mkdir(parents=True)
    entries = []
    for i in range(ds.meshes.train + ds.meshes.test):
        write_ply(mesh_dir / f"{i:04d}.ply", blob(i))
        entries.append(MeshEntry(i, f"{i:04d}.ply", "train" if i < ds.meshes.train else "test", {"variant": i}))
    index = {"format": FORMAT, "dataset": "faces", "source": source_record(ds.source),
             "fingerprint": fingerprint(ds, params.seed, None), "meshes": [asdict(e) for e in entries]}
    (mesh_dir / INDEX).write_text(json.dumps(index))
    return params
