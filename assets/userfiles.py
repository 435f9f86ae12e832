"""The user's own meshes: a folder of OBJ / PLY / glTF / GLB files in, normalised meshes out.

Every mesh file in the folder (sorted by name) is read with trimesh; a scene's parts (glTF nodes,
OBJ objects/materials) are merged into one mesh with their node transforms applied. What real files
carry is repaired (`assets.repair`: double-sided and duplicate faces, degenerate faces, inconsistent
winding, unused vertices), with one log line per repaired file on stderr. The mesh is then
turned into the canonical frame (the configured up axis becomes +Z, the forward axis -Y), centred
and scaled to unit size, or with `source.framing: head` framed on the head as generated heads are
(`assets.framing`). Albedo comes from the file's vertex colours (or its texture, sampled at the
vertices) when it has them, else a neutral grey. A seeded shuffle splits the files into train and
test in the configured proportion; train meshes come first, as for generated meshes.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from assets import framing, geometry, repair
from assets.mesh import Mesh, MeshError
from config import DatasetConfig, MeshSource

EXTENSIONS = (".obj", ".ply", ".gltf", ".glb")
DEFAULT_ALBEDO = 0.55
"""Albedo of a file without colours or texture (most scans): a mid grey in the range of the generators'
one-albedo sculptures. At 0.8 the key light saturated 4-9 % of a scanned head's pixels, out of what the
faces models were trained on; heads made elsewhere, elevation |Spearman| 0.30 -> 0.37 (BENCHMARKS.md)."""
_SPLIT_STREAM = 0x5E11  # separates the split shuffle from the generators' random streams
log = logging.getLogger(__name__)


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
    """Content hash of the folder's mesh files (and any side files they reference), so edits rebuild.

    The loading and repair code is hashed in too: a changed loader rebuilds the folder, as a changed
    generator does.
    """
    folder = Path(source.path)
    if not folder.is_dir():
        return "missing"
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for code in ("userfiles.py", "repair.py", "framing.py"):
        h.update((here / code).read_bytes())
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def axis_rotation(up_axis: str, forward_axis: str) -> np.ndarray:
    """The rotation taking the file's up axis to +Z and its forward axis to -Y."""
    up, forward = _axis(up_axis), _axis(forward_axis)
    y = -forward
    return np.stack([np.cross(y, up), y, up])


def load_mesh(path: Path, source: MeshSource) -> Mesh:
    """One file as a canonical, repaired mesh; MeshError naming the file if it cannot be used."""
    import trimesh  # only the user-file path needs it

    if path.stat().st_size == 0:
        raise MeshError(f"{path}: file is empty; remove it from the folder or replace it with a mesh")
    try:
        scene = trimesh.load_scene(str(path), process=False)
    except Exception as err:  # trimesh raises many types for malformed files
        if isinstance(err, IndexError) and path.suffix.lower() == ".obj":
            raise MeshError(_obj_index_error(path)) from None
        raise MeshError(f"{path}: cannot read mesh ({type(err).__name__}: {_first_line(err)}); "
                        "re-export it as OBJ, PLY, glTF or GLB") from None
    vertices, faces, colors, n_parts = _merge_parts(scene, path)
    if not np.isfinite(vertices).all():
        raise MeshError(f"{path}: mesh has NaN or infinite vertex positions; repair or remove it")
    if np.ptp(vertices, axis=0).max() <= 0:
        raise MeshError(f"{path}: mesh has zero size (all vertices coincide); repair or remove it")
    vertices, faces, colors, report = repair.repair(vertices, faces, colors)
    report.parts = n_parts
    if len(faces) == 0:
        raise MeshError(f"{path}: all {report.degenerate} faces are degenerate (zero area); repair or remove it")
    if report.summary():
        log.warning(f"{path.name}: {report.summary()}")
    vertices = vertices @ axis_rotation(source.up_axis, source.forward_axis).T
    mesh = geometry.normalise(Mesh(vertices, faces, colors))
    return framing.frame_on_head(mesh) if source.framing == "head" else mesh


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


def _merge_parts(scene, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(vertices float64, faces, colours, part count): every triangle part of the scene, placed by its node."""
    import trimesh

    vertices, faces, colors = [], [], []
    offset = 0
    albedo: dict = {}
    nodes = sorted(scene.graph.nodes_geometry, key=str)  # a fixed order: the same file gives the same bytes
    for node in nodes:
        matrix, name = scene.graph[node]
        part = scene.geometry.get(name)
        if not isinstance(part, trimesh.Trimesh) or part.faces is None or len(part.faces) == 0:
            continue  # points, lines, empty geometry
        f = np.asarray(part.faces, dtype=np.int64)
        v = np.asarray(part.vertices, dtype=np.float64)
        repair.check_faces(f, len(v), str(path) if len(nodes) == 1 else f"{path} (part {node})")
        if name not in albedo:
            albedo[name] = _albedo(part, path)
        matrix = np.asarray(matrix, dtype=np.float64)
        v = v @ matrix[:3, :3].T + matrix[:3, 3]
        if np.linalg.det(matrix[:3, :3]) < 0:
            f = f[:, [0, 2, 1]]  # a mirroring transform turns the triangles inside out: turn them back
        vertices.append(v)
        faces.append(f + offset)
        colors.append(albedo[name])
        offset += len(v)
    if not faces:
        raise MeshError(f"{path}: mesh has no faces (a point cloud or an empty scene); export triangles or remove it")
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(colors), len(faces)


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
        log.warning(
            f"warning: {path}: cannot sample its texture ({type(err).__name__}); using grey albedo {DEFAULT_ALBEDO}")
    return np.full((n, 3), DEFAULT_ALBEDO)


def _axis(name: str) -> np.ndarray:
    v = np.zeros(3)
    v["XYZ".index(name[-1])] = -1.0 if name.startswith("-") else 1.0
    return v


def _obj_index_error(path: Path) -> str:
    """The one-line message for an OBJ whose faces refer to vertices it does not have."""
    bad = []
    with open(path, errors="replace") as fh:
        lines = fh.readlines()
    n_vertices = sum(1 for ln in lines if ln.startswith("v "))
    for number, ln in enumerate(lines, 1):
        if ln.startswith("f "):
            for token in ln.split()[1:]:
                try:
                    i = int(token.split("/")[0])
                except ValueError:
                    continue
                if not (1 <= i <= n_vertices or -n_vertices <= i <= -1):
                    bad.append((number, i))
    if bad:
        return (f"{path}: line {bad[0][0]}: face refers to vertex {bad[0][1]} but the file has {n_vertices} vertices "
                f"({len(bad)} bad indices); re-export the mesh or remove the file")
    return (f"{path}: a face refers to a vertex, texture coordinate or normal the file does not have; "
            "re-export the mesh or remove the file")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:120] if text else "unknown error"
