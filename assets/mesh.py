"""The mesh every stage exchanges: numpy arrays, and their binary PLY file form.

Our own PLY writer and reader (little-endian binary, float32 positions, uint8 RGB albedo per
vertex, int32 triangle indices): the bytes depend only on the arrays, so generation is
byte-for-byte deterministic, and reading is one `np.frombuffer` per element.

A mesh may also carry a per-vertex finish (roughness, metallic), written as two more uint8 vertex
properties `roughness` and `metallic`; a mesh without one is written exactly as before (the
renderer then uses `DEFAULT_FINISH`), so the bytes of such meshes do not depend on the feature.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import durable
from config import UserError


class MeshError(UserError):
    """A mesh file that cannot be used (unreadable, empty, no faces, indices out of range)."""


DEFAULT_FINISH = (0.85, 0.0)
"""(roughness, metallic) of a mesh without a finish: a mostly matte, non-metal surface."""


@dataclass
class Mesh:
    vertices: np.ndarray
    """float32 [V, 3]."""
    faces: np.ndarray
    """int32 [F, 3], counter-clockwise seen from outside (normals face outward)."""
    colors: np.ndarray
    """float32 [V, 3], albedo in [0, 1] (stored as 8-bit sRGB-encoded values)."""
    finish: np.ndarray | None = None
    """float32 [V, 2]: roughness and metallic in [0, 1] (stored as 8-bit values), or None for
    `DEFAULT_FINISH` everywhere."""

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if self.colors is None:
            self.colors = np.full_like(self.vertices, 0.8)
        self.colors = np.ascontiguousarray(self.colors, dtype=np.float32).reshape(-1, 3)
        if self.finish is not None:
            self.finish = np.ascontiguousarray(self.finish, dtype=np.float32).reshape(-1, 2)
            if len(self.finish) != len(self.vertices):
                raise ValueError(f"finish has {len(self.finish)} rows for {len(self.vertices)} vertices")


_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
_VERTEX_FINISH = np.dtype(_VERTEX.descr + [("roughness", "u1"), ("metallic", "u1")])
_FACE = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
_FACE_PROPERTY = "property list uchar int vertex_indices"
_PLY_TYPES = {"f4": "float", "u1": "uchar"}


def _vertex_properties(dtype: np.dtype) -> list[str]:
    return [f"property {_PLY_TYPES[dtype[name].str[1:]]} {name}" for name in dtype.names]


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def write_ply(path: Path | str, mesh: Mesh) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path = Path(path)
    dtype = _VERTEX if mesh.finish is None else _VERTEX_FINISH
    v = np.empty(len(mesh.vertices), dtype)
    v["x"], v["y"], v["z"] = mesh.vertices.T
    v["red"], v["green"], v["blue"] = _to_u8(mesh.colors).T
    if mesh.finish is not None:
        v["roughness"], v["metallic"] = _to_u8(mesh.finish).T
    f = np.empty(len(mesh.faces), _FACE)
    f["n"] = 3
    f["i"] = mesh.faces
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(v)}\n"
        + "".join(line + "\n" for line in _vertex_properties(dtype))
        + f"element face {len(f)}\n{_FACE_PROPERTY}\nend_header\n"
    ).encode("ascii")
    durable.write_bytes(path, header + v.tobytes() + f.tobytes())


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
    counts, props, element = {}, {}, None
    for ln in header:
        words = ln.split()
        if ln.startswith("element ") and len(words) == 3 and words[2].isdigit():
            element = words[1]
            counts[element], props[element] = int(words[2]), []
        elif ln.startswith("property ") and element is not None:
            props[element].append(" ".join(words))
    nv, nf = counts.get("vertex", 0), counts.get("face", 0)
    layouts = {tuple(_vertex_properties(d)): d for d in (_VERTEX, _VERTEX_FINISH)}
    dtype = layouts.get(tuple(props.get("vertex", ())))
    body = memoryview(data)[end + len(b"end_header\n"):]
    if dtype is None or props.get("face") != [_FACE_PROPERTY]:
        raise MeshError(f"{path}: truncated or foreign PLY (not this project's vertex and face layout); regenerate it")
    if len(body) != nv * dtype.itemsize + nf * _FACE.itemsize:
        raise MeshError(f"{path}: truncated or foreign PLY (size does not match its header); regenerate it")
    if nv == 0 or nf == 0:
        raise MeshError(f"{path}: mesh has no {'vertices' if nv == 0 else 'faces'}")
    v = np.frombuffer(body, dtype, nv)
    f = np.frombuffer(body, _FACE, nf, offset=nv * dtype.itemsize)
    faces = f["i"].copy()
    if (f["n"] != 3).any() or faces.min() < 0 or faces.max() >= nv:
        raise MeshError(f"{path}: corrupt PLY (a face is not a triangle or an index is outside 0..{nv - 1}); "
                        "regenerate it with `python cli.py assets`")
    vertices = np.stack([v["x"], v["y"], v["z"]], axis=1)
    colors = np.stack([v["red"], v["green"], v["blue"]], axis=1).astype(np.float32) / 255.0
    finish = None
    if dtype is _VERTEX_FINISH:
        finish = np.stack([v["roughness"], v["metallic"]], axis=1).astype(np.float32) / 255.0
    return Mesh(vertices, faces, colors, finish)
