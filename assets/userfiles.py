"""The user's own meshes: a folder of OBJ / PLY / glTF / GLB files in, normalised meshes out.

Every mesh file in the folder (sorted by name) is read with trimesh (scenes merged into one mesh),
turned into the canonical frame (the configured up axis becomes +Z, the forward axis -Y), centred
and scaled to unit size. Albedo comes from the file's vertex colours (or its texture, sampled at the
vertices) when it has them, else a neutral grey. A seeded shuffle splits the files into train and
test in the configured proportion; train meshes come first, as for generated meshes.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from assets import geometry
from assets.mesh import Mesh, MeshError
from config import DatasetConfig, MeshSource

EXTENSIONS = (".obj", ".ply", ".gltf", ".glb")
DEFAULT_ALBEDO = 0.8
_SPLIT_STREAM = 0x5E11  # separates the split shuffle from the generators' random streams


def mesh_files(source: MeshSource) -> list[Path]:
    """The folder's mesh files, sorted by name; a one-line error if there are none."""
    folder = Path(source.path)
    if not folder.is_dir():
        raise MeshError(f"mesh folder {folder} not found; set source.path to a folder of "
                        f"{'/'.join(e[1:].upper() for e in EXTENSIONS)} files")
    files = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in EXTENSIONS), key=lambda f: f.name)
    if not files:
        raise MeshError(f"mesh folder {folder} holds no {', '.join(EXTENSIONS)} files; add some or fix source.path")
    return files


def folder_digest(source: MeshSource) -> str:
    """Content hash of the folder's mesh files (and any side files they reference), so edits rebuild."""
    folder = Path(source.path)
    if not folder.is_dir():
        return "missing"
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def axis_rotation(up_axis: str, forward_axis: str) -> np.ndarray:
    """The rotation taking the file's up axis to +Z and its forward axis to -Y."""
    up, forward = _axis(up_axis), _axis(forward_axis)
    y = -forward
    return np.stack([np.cross(y, up), y, up])


def load_mesh(path: Path, source: MeshSource) -> Mesh:
    """One file as a canonical mesh; MeshError naming the file if it cannot be used."""
    import trimesh  # only the user-file path needs it

    if path.stat().st_size == 0:
        raise MeshError(f"{path}: file is empty; remove it from the folder or replace it with a mesh")
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for malformed files
        raise MeshError(f"{path}: cannot read mesh ({type(err).__name__}: {_first_line(err)}); "
                        "re-export it as OBJ, PLY, glTF or GLB") from None
    faces = getattr(loaded, "faces", None)
    if not isinstance(loaded, trimesh.Trimesh) or faces is None or len(faces) == 0:
        raise MeshError(f"{path}: mesh has no faces (a point cloud or an empty scene); export triangles or remove it")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    if not np.isfinite(vertices).all():
        raise MeshError(f"{path}: mesh has NaN or infinite vertex positions; repair or remove it")
    if np.ptp(vertices, axis=0).max() <= 0:
        raise MeshError(f"{path}: mesh has zero size (all vertices coincide); repair or remove it")
    vertices = vertices @ axis_rotation(source.up_axis, source.forward_axis).T
    mesh = Mesh(vertices, np.asarray(loaded.faces), _albedo(loaded, path))
    return geometry.normalise(mesh)


def split_files(files: list[Path], seed: int, n_train: int, n_test: int) -> tuple[list[Path], list[Path]]:
    """Seeded shuffle into (train, test), in the n_train : n_test proportion, >= 1 each from 2 files."""
    n = len(files)
    if n < 2:
        return list(files), []
    k = min(n - 1, max(1, round(n * n_test / (n_train + n_test))))
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(n)
    test = sorted(order[:k])
    train = sorted(order[k:])
    return [files[i] for i in train], [files[i] for i in test]


def load_folder(ds: DatasetConfig, seed: int, n_train: int, n_test: int) -> tuple[list[Mesh], list[dict], list[str]]:
    """(meshes, params, splits) for the catalog: train meshes first, then test meshes."""
    train, test = split_files(mesh_files(ds.source), seed, n_train, n_test)
    ordered = [(f, "train") for f in train] + [(f, "test") for f in test]
    meshes = [load_mesh(f, ds.source) for f, _ in ordered]
    return meshes, [{"source_file": f.name} for f, _ in ordered], [s for _, s in ordered]


def _albedo(loaded, path: Path) -> np.ndarray:
    n = len(loaded.vertices)
    visual = getattr(loaded, "visual", None)
    try:
        if visual is not None and visual.kind == "texture":
            visual = visual.to_color()
        if visual is not None and visual.kind in ("vertex", "face"):
            rgb = np.asarray(visual.vertex_colors)[:, :3]
            if len(rgb) == n:
                return rgb.astype(np.float64) / 255.0
    except Exception as err:  # a texture trimesh cannot sample: the mesh is still usable, say so
        logging.getLogger(__name__).warning(
            f"warning: {path}: cannot sample its texture ({type(err).__name__}); using grey albedo {DEFAULT_ALBEDO}")
    return np.full((n, 3), DEFAULT_ALBEDO)


def _axis(name: str) -> np.ndarray:
    v = np.zeros(3)
    v["XYZ".index(name[-1])] = -1.0 if name.startswith("-") else 1.0
    return v


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:120] if text else "unknown error"
