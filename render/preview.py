"""Contact sheet: a dataset's meshes rendered at one 3/4 view, tiled into a single PNG.

In:  a `MeshCatalog`, params, the dataset's config. Out: one PNG (grid of cells, each labelled
with the mesh id and split). Used by `python cli.py assets --preview sheet.png` to eyeball what a
generator makes. Rendering goes through the same worker seam as the sweeps (`render_sweep_bytes`).
"""
from __future__ import annotations

import dataclasses
import math
import multiprocessing
from pathlib import Path

import numpy as np

import durable
from config import DatasetConfig, Params
from render.plan import Frame
from render.scene import SceneSpec

MAX_MESHES = 24
VIEW = {"camera_azimuth": 30.0, "camera_elevation": 10.0, "light_azimuth": -40.0}
"""Standard 3/4 view: turned toward the object's left, slightly from above, lit from its right (every other
factor kind at its fixed value, whatever the dataset sweeps)."""
MIN_CELL = 128


def contact_sheet(catalog, params: Params, ds: DatasetConfig, path: Path | str, cell: int = MIN_CELL) -> Path:
    """Render up to `MAX_MESHES` meshes of `catalog` and write the tiled sheet to `path`."""
    import cv2

    from render.worker import render_sweep_bytes

    path = Path(path)
    ids = list(range(min(len(catalog), MAX_MESHES)))
    settings = dataclasses.replace(params.render, size=max(cell, params.render.size), color="gray", threads=1)
    spec = SceneSpec(settings, ds.camera, ds.light, params.seed, tuple(VIEW))
    split_of = {e.id: e.split for e in catalog.entries}
    frames = [Frame(split_of[i], 0, i, i, tuple(VIEW.values())) for i in ids]
    meshes = {i: str(catalog.path(i).resolve()) for i in ids}
    workers = max(1, min(settings.worker_count(), len(frames)))
    chunks = [frames[w::workers] for w in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.starmap(render_sweep_bytes, [(spec, meshes, chunk) for chunk in chunks])
    pngs = {f.mesh: png for chunk, res in zip(chunks, results) for f, png in zip(chunk, res)}

    size = settings.size
    cols = math.ceil(math.sqrt(len(ids)))
    rows = math.ceil(len(ids) / cols)
    sheet = np.zeros((rows * size, cols * size), np.uint8)
    for k, i in enumerate(ids):
        image = cv2.imdecode(np.frombuffer(pngs[i], np.uint8), cv2.IMREAD_GRAYSCALE)
        cv2.putText(image, f"{i} {split_of[i]}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 255, 1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = image
    ok, data = cv2.imencode(".png", sheet)
    durable.write_bytes(path, data.tobytes())
    return path
