"""The mesh every stage exchanges: numpy arrays, and their binary PLY file form.

Our own PLY writer and reader (little-endian binary, float32 positions, uint8 RGB albedo per
vertex, int32 triangle indices): the bytes depend only on the arrays, so generation is
byte-for-byte deterministic, and reading is one `np.frombuffer` per element.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config import UserError


class MeshError(UserError):
    """A mesh file that cannot be used (unreadable, empty, no faces)."""


@dataclass
class Mesh:
    vertices: np.ndarray
    """float32 [V, 3]."""
    faces: np.ndarray
    """int32 [F, 3], counter-clockwise seen from outside (normals face outward)."""
    colors: np.ndarray
    """float32 [V, 3], albedo in [0, 1] (stored as 8-bit sRGB-encoded values)."""

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if self.colors is None:
            self.colors = np.full_like(self.vertices, 0.8)
        self.colors = np.ascontiguousarray(self.colors, dtype=np.float32).reshape(-1, 3)


_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
_FACE = np.dtype([("n", "u1"), ("i", "<i4", (3,))])


def write_ply(path: Path | str, mesh: Mesh) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path = Path(path)
    v = np.empty(len(mesh.vertices), _VERTEX)
    v["x"], v["y"], v["z"] = mesh.vertices.T
    rgb = np.clip(np.rint(mesh.colors * 255.0), 0, 255).astype(np.uint8)
    v["red"], v["green"], v["blue"] = rgb.T
    f = np.empty(len(mesh.faces), _FACE)
    f["n"] = 3
    f["i"] = mesh.faces
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(v)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(f)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(header + v.tobytes() + f.tobytes())
    os.replace(tmp, path)


def read_ply(path: Path | str) -> Mesh:
    """Read a PLY written by `write_ply` (other PLY files go through `assets.userfiles`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MeshError(f"{path}: cannot read mesh ({err.strerror}); regenerate it with `python cli.py assets`") from None
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise MeshError(f"{path}: not a PLY file written by this project; regenerate it with `python cli.py assets`")
    header = data[:end].decode("ascii", "replace").split("\n")
    counts = {ln.split()[1]: int(ln.split()[2]) for ln in header if ln.startswith("element ")}
    nv, nf = counts.get("vertex", 0), counts.get("face", 0)
    body = memoryview(data)[end + len(b"end_header\n"):]
    if len(body) != nv * _VERTEX.itemsize + nf * _FACE.itemsize:
        raise MeshError(f"{path}: truncated or foreign PLY (size does not match its header); regenerate it")
    if nv == 0 or nf == 0:
        raise MeshError(f"{path}: mesh has no {'vertices' if nv == 0 else 'faces'}")
    v = np.frombuffer(body, _VERTEX, nv)
    f = np.frombuffer(body, _FACE, nf, offset=nv * _VERTEX.itemsize)
    vertices = np.stack([v["x"], v["y"], v["z"]], axis=1)
    colors = np.stack([v["red"], v["green"], v["blue"]], axis=1).astype(np.float32) / 255.0
    return Mesh(vertices, f["i"].copy(), colors)
