"""Repairs of real-world mesh files (assets.repair, through assets.userfiles), and their renders.

Pure-function tests on small hand-made meshes, files written here and loaded through the folder
source, the CLI's log line, and real Blender renders: a double-sided model (every face twice, with
opposite winding, as ShapeNet / 3D Warehouse chairs come) must render like its single-sided
original, while the same model unrepaired renders as speckle.
"""
from __future__ import annotations

import logging
import multiprocessing
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from assets import chairs, geometry
from assets.catalog import build_meshes
from assets.mesh import Mesh, MeshError, write_ply
from assets.repair import RepairReport, repair
from assets.userfiles import DEFAULT_ALBEDO, load_mesh
from config import CameraSettings, LightSettings, MeshSource, RenderSettings, load_params

ROOT = Path(__file__).resolve().parents[1]
QUAD = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64)
SOURCE = MeshSource(kind="folder", path=".")


def _box() -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(1.0, 0.7, 0.5))


def _chair() -> Mesh:
    return chairs.build(chairs.sample(np.random.default_rng([0, 3])))


def _triangles(faces: np.ndarray) -> set[tuple[int, ...]]:
    """Faces as a set of triangles, each rotated to start at its smallest index (winding kept)."""
    return {tuple(np.roll(f, -int(np.argmin(f)))) for f in np.asarray(faces)}


def _write_obj(path: Path, v: np.ndarray, f: np.ndarray, double: bool = False, split: bool = False,
               quads: np.ndarray | None = None) -> Path:
    """An OBJ as exporters write them. `double`: every face again, reversed (a double-sided model);
    `split`: one normal per face (`f a//n`), so the reader splits vertices per face and winding, as
    real exports with normals or UVs are; `quads`: polygon faces instead of triangles."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(v, dtype=np.float64)]
    polys = [tuple(int(i) for i in p) for p in (quads if quads is not None else f)]
    if double:
        polys += [p[::-1] for p in polys]
    if split:
        for p in polys:
            a, b, c = np.asarray(v, dtype=np.float64)[list(p[:3])]
            n = np.cross(b - a, c - a)
            lines.append("vn {:.6f} {:.6f} {:.6f}".format(*(n / np.linalg.norm(n))))
        lines += ["f " + " ".join(f"{i + 1}//{k + 1}" for i in p) for k, p in enumerate(polys)]
    else:
        lines += ["f " + " ".join(str(i + 1) for i in p) for p in polys]
    path.write_text("\n".join(lines) + "\n")
    return path


def _params_file(tmp_path: Path, folder: Path) -> Path:
    text = (ROOT / "params.yaml").read_text()
    assert "source: {kind: generator, generator: chairs}" in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("source: {kind: generator, generator: chairs}",
                                 f"source: {{kind: folder, path: {folder}}}"))
    return path


# ------------------------------------------------------------------------------ pure repairs


def test_double_sided_quad_becomes_two_triangles():
    faces = np.array([[0, 1, 2], [0, 2, 3], [2, 1, 0], [3, 2, 0]])
    v, f, _, report = repair(QUAD, faces)
    assert np.array_equal(f, faces[:2]) and np.array_equal(v, QUAD)
    assert (report.double_sided, report.duplicates, report.degenerate, report.reoriented) == (2, 0, 0, 0)
    assert report.summary() == "removed 2 double-sided duplicate faces"


def test_double_sided_quad_with_its_own_vertices_and_other_diagonal():
    # OBJ `f 1 2 3 4` + `f 4 3 2 1` with per-face normals: the back copy has its own four vertices,
    # and the reader triangulates it along the other diagonal.
    v = np.vstack([QUAD, QUAD])
    faces = np.array([[0, 1, 2], [2, 3, 0], [7, 6, 5], [5, 4, 7]])
    v2, f, _, report = repair(v, faces)
    assert report.double_sided == 2 and len(f) == 2
    assert np.array_equal(v2, QUAD) and np.array_equal(f, faces[:2])


def test_duplicate_faces_with_the_same_winding_are_dropped():
    box = _box()
    faces = np.vstack([box.faces, box.faces[[0, 5, 7]], box.faces[[5]][:, [1, 2, 0]]])
    _, f, _, report = repair(box.vertices, faces)
    assert np.array_equal(f, box.faces)
    assert (report.duplicates, report.double_sided) == (4, 0)
    assert report.summary() == "removed 4 duplicate faces"


def test_degenerate_faces_are_dropped_and_thin_ones_kept():
    v = np.vstack([QUAD, [[0.5, 0.5, 0], [2.0, 0, 0], [1.0, 1e-9, 0], [1.0, 1e-3, 0]]])
    faces = np.array([[0, 1, 2], [0, 2, 3],
                      [0, 0, 1],   # a repeated index
                      [0, 4, 2],   # three distinct but collinear vertices
                      [0, 5, 6],   # height 1e-9: zero area at this size
                      [0, 5, 7]])  # height 1e-3: a thin sliver, but real
    _, f, _, report = repair(v, faces)
    assert report.degenerate == 3
    assert _triangles(f) == _triangles(np.array([[0, 1, 2], [0, 2, 3], [0, 4, 5]]))  # vertex 4 and 6 unused now
    assert report.summary() == "removed 3 degenerate faces"


def test_near_coincident_copies_weld_within_the_tolerance():
    # The back copy's vertices differ by float32 round-off of a big coordinate: still the same triangle.
    v = np.vstack([QUAD * 1000.0 + 5000.0, (QUAD * 1000.0 + 5000.0).astype(np.float32).astype(np.float64) + 1e-4])
    faces = np.array([[0, 1, 2], [0, 2, 3], [6, 5, 4], [7, 6, 4]])
    _, f, _, report = repair(v, faces)
    assert report.double_sided == 2 and len(f) == 2


@pytest.mark.parametrize("flipped", [[1, 4, 7], list(range(12)), [0, 1, 2, 3, 4, 5, 6]])
def test_a_cube_with_flipped_faces_becomes_consistent_and_outward(flipped):
    box = _box()
    faces = box.faces.copy()
    faces[flipped] = faces[flipped][:, ::-1]
    v, f, _, report = repair(box.vertices, faces)
    assert _triangles(f) == _triangles(box.faces)
    assert geometry.signed_volume(v, f) == pytest.approx(0.35)
    assert report.reoriented == 1 and report.summary() == "re-oriented 1 part"


def test_flipped_faces_keep_split_vertices_split():
    # Every face with its own three vertices (flat-shaded export): orientation is decided on the
    # welded topology, but the output keeps the file's vertices (no welding in the result).
    box = _box()
    v = box.vertices[box.faces].reshape(-1, 3)
    faces = np.arange(len(v)).reshape(-1, 3)
    faces[[2, 3, 9]] = faces[[2, 3, 9]][:, ::-1]
    v2, f, _, report = repair(v, faces)
    assert np.array_equal(v2, v) and len(f) == 12
    assert geometry.signed_volume(v2, f) == pytest.approx(0.35)
    assert np.all(geometry.triangle_areas(v2, f) > 0) and report.reoriented == 1
    assert len(np.unique(f)) == 36  # still split


def test_open_sheet_gets_one_winding_the_one_of_most_of_its_area():
    grid = trimesh.creation.box().subdivide().subdivide()  # any mesh; cut it open at the top
    grid.update_faces(grid.triangles_center[:, 2] < 0.49)
    grid.remove_unreferenced_vertices()
    faces = grid.faces
    wrong = np.arange(len(faces)) % 5 == 0
    flipped = faces.copy()
    flipped[wrong] = flipped[wrong][:, ::-1]
    _, f, _, report = repair(grid.vertices, flipped)
    assert _triangles(f) == _triangles(faces)
    assert report.reoriented == 1


def test_two_parts_are_oriented_each_on_its_own():
    a, b = _box(), _box()
    b.apply_translation([3, 0, 0])
    v = np.vstack([a.vertices, b.vertices])
    faces = np.vstack([a.faces[:, ::-1], b.faces + len(a.vertices)])  # part a inside out, part b fine
    _, f, _, report = repair(v, faces)
    assert _triangles(f) == _triangles(np.vstack([a.faces, b.faces + len(a.vertices)]))
    assert report.reoriented == 1


def test_double_sided_closed_shell_keeps_the_outward_copy():
    # The inward copy comes first in the file: the outward copy is kept, with its own vertices.
    box = _box()
    n = len(box.vertices)
    v = np.vstack([box.vertices, box.vertices])
    faces = np.vstack([box.faces[:, ::-1], box.faces + n])
    v2, f, _, report = repair(v, faces)
    assert np.array_equal(v2, box.vertices) and np.array_equal(f, box.faces)
    assert report.summary() == "removed 12 double-sided duplicate faces"


def test_generated_meshes_pass_unchanged_with_their_sharp_splits():
    m = _chair()
    v, f, c, report = repair(m.vertices, m.faces, m.colors)
    assert report.summary() == ""
    assert np.array_equal(v, m.vertices.astype(np.float64)) and np.array_equal(f, m.faces)
    assert np.array_equal(c, m.colors)


def test_unused_vertices_are_dropped_with_their_colours():
    v = np.vstack([[[50.0, 50, 50]], QUAD])
    colors = np.array([[1.0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]])
    v2, f, c, report = repair(v, np.array([[1, 2, 3], [1, 3, 4]]), colors)
    assert np.array_equal(v2, QUAD) and np.array_equal(f, [[0, 1, 2], [0, 2, 3]]) and np.all(c == [0, 1, 0])
    assert report.summary() == "dropped 1 unused vertex"


def test_summary_is_one_line_and_empty_when_nothing_was_repaired():
    assert RepairReport().summary() == ""
    r = RepairReport(double_sided=5120, duplicates=1, degenerate=3, reoriented=2, parts=7)
    assert r.summary() == ("removed 5120 double-sided duplicate faces, 1 duplicate face, 3 degenerate faces; "
                           "re-oriented 2 parts; merged 7 parts")


# ------------------------------------------------------------------------------ files


def test_double_sided_obj_loads_like_the_single_sided_one(tmp_path, caplog):
    m = _chair()
    v = m.vertices.astype(np.float64)
    single = load_mesh(_write_obj(tmp_path / "single.obj", v, m.faces), SOURCE)
    with caplog.at_level(logging.WARNING, logger="assets.userfiles"):
        double = load_mesh(_write_obj(tmp_path / "double.obj", v, m.faces, double=True), SOURCE)
        split = load_mesh(_write_obj(tmp_path / "split.obj", v, m.faces, double=True, split=True), SOURCE)
    assert np.array_equal(double.vertices, single.vertices) and np.array_equal(double.faces, single.faces)
    n = len(m.faces)
    assert [r.getMessage() for r in caplog.records] == [f"double.obj: removed {n} double-sided duplicate faces",
                                                        f"split.obj: removed {n} double-sided duplicate faces"]
    assert len(split.faces) == n
    assert geometry.signed_volume(split.vertices, split.faces) == pytest.approx(
        geometry.signed_volume(single.vertices, single.faces), rel=1e-4)


def test_double_sided_quads_in_an_obj(tmp_path):
    # A box of 6 quads written twice (`f 1 2 3 4` and `f 4 3 2 1`): the reader splits the two copies
    # of a quad along different diagonals, so no triangle repeats; the quads still do.
    corners = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
    v = np.array(corners) * [1.0, 0.7, 0.5]
    quads = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [2, 3, 7, 6], [0, 4, 7, 3], [1, 2, 6, 5]])
    single = load_mesh(_write_obj(tmp_path / "single.obj", v, None, quads=quads), SOURCE)
    double = load_mesh(_write_obj(tmp_path / "double.obj", v, None, double=True, split=True, quads=quads), SOURCE)
    assert len(single.faces) == len(double.faces) == 12
    assert geometry.signed_volume(single.vertices, single.faces) == pytest.approx(0.35)
    assert geometry.signed_volume(double.vertices, double.faces) == pytest.approx(0.35)


@pytest.mark.parametrize("ext", ["glb", "gltf", "obj"])
def test_a_multi_part_scene_loads_every_part_in_place(tmp_path, caplog, ext):
    box, ball = _box(), trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    box.visual.vertex_colors = [255, 0, 0, 255]
    scene = trimesh.Scene()
    scene.add_geometry(box, node_name="box", transform=trimesh.transformations.translation_matrix([3.0, 0, 0]))
    mirror = np.diag([-1.0, 1, 1, 1]) @ trimesh.transformations.translation_matrix([3.0, 0, 1.0])
    scene.add_geometry(ball, node_name="ball", transform=mirror)  # ends at (-3, 0, 1), mirrored
    path = tmp_path / f"scene.{ext}"
    if ext == "gltf":
        path.write_bytes(trimesh.exchange.gltf.export_gltf(scene, embed_buffers=True)["model.gltf"])
    elif ext == "obj":  # OBJ has no transforms: two objects with the parts already placed
        placed = [box.copy(), ball.copy()]
        placed[0].apply_translation([3.0, 0, 0])
        placed[1].apply_transform(mirror)
        lines, base = [], 0
        for name, part in zip(["box", "ball"], placed):
            lines += [f"o {name}", f"usemtl {name}"] + [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in part.vertices]
            lines += [f"f {a + base + 1} {b + base + 1} {c + base + 1}" for a, b, c in part.faces]
            base += len(part.vertices)
        path.write_text("\n".join(lines) + "\n")
    else:
        scene.export(path)
    with caplog.at_level(logging.WARNING, logger="assets.userfiles"):
        mesh = load_mesh(path, SOURCE)
    assert [r.getMessage() for r in caplog.records] == [f"scene.{ext}: merged 2 parts"]
    # In place: together the parts span x -3.5..3.5, y -0.5..0.5, z -0.25..1.5; normalised, that is
    # centred on (0, 0, 0.625) and divided by 7.
    v = mesh.vertices.astype(np.float64)
    parts = trimesh.Trimesh(v, mesh.faces, process=False)
    parts.merge_vertices()
    shells = sorted(parts.split(only_watertight=False), key=lambda s: s.bounds[0][0])
    assert len(shells) == 2
    ball_part, box_part = shells
    centre = np.array([0, 0, 0.625])
    assert np.allclose(box_part.bounds, (np.array([[2.5, -0.35, -0.25], [3.5, 0.35, 0.25]]) - centre) / 7, atol=1e-5)
    assert np.allclose(ball_part.bounds.mean(axis=0), (np.array([-3.0, 0, 1.0]) - centre) / 7, atol=1e-3)
    # Each part keeps its own albedo: the box its red vertex colours, the uncoloured ball the default grey.
    red = [1, 0, 0] if ext != "obj" else [DEFAULT_ALBEDO] * 3  # OBJ keeps no vertex colours
    assert np.allclose(mesh.colors[v[:, 0] > 0], red, atol=1 / 255)
    assert np.allclose(mesh.colors[v[:, 0] < 0], DEFAULT_ALBEDO, atol=1 / 255)
    assert box_part.volume > 0 and ball_part.volume > 0  # the mirrored part is turned back outward


def test_out_of_range_face_indices_are_a_one_line_error(tmp_path):
    obj = tmp_path / "broken.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n")
    with pytest.raises(MeshError) as err:
        load_mesh(obj, SOURCE)
    msg = str(err.value)
    assert "\n" not in msg and "broken.obj" in msg and "line 5" in msg and "vertex 9" in msg and "3 vertices" in msg
    ply = tmp_path / "broken.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                   "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
                   "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n3 0 1 7\n")
    with pytest.raises(MeshError) as err:
        load_mesh(ply, SOURCE)
    msg = str(err.value)
    assert "\n" not in msg and "broken.ply" in msg and "face 1 refers to vertex 7" in msg and "re-export" in msg


def test_cli_logs_one_line_per_repaired_file_and_writes_the_same_bytes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    m = _chair()
    _write_obj(folder / "chair_double.obj", m.vertices, m.faces, double=True, split=True)
    _box().export(folder / "clean.ply")
    params = _params_file(tmp_path, folder)
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--params", str(params), "assets", "--dataset",
                            "chairs", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        expected = f"chair_double.obj: removed {len(m.faces)} double-sided duplicate faces"
        assert r.stderr.strip().splitlines() == [expected]  # one line for the repaired file, none for the clean one
        outs.append(out)
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == ["0000.ply", "0001.ply", "index.json"]
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


# ------------------------------------------------------------------------------ renders (Blender)

VIEW = (30.0, 20.0, -40.0)  # azimuth, elevation, light: three sides of a box in view


def _speckle(image: np.ndarray, clean: np.ndarray) -> float:
    """Share of the clean render's object pixels that are more than a quarter of their grey level (and 10
    levels) off in `image` (coincident opposite faces shadow each other at random: dark salt-and-pepper,
    or all dark). Relative, so it does not depend on the albedo of untextured files."""
    mask = clean > 0
    off = np.abs(image.astype(int) - clean.astype(int))[mask]
    return float((off > np.maximum(10, clean[mask] / 4)).mean())


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Single-sided, double-sided (repaired on load) and double-sided raw versions of a box and a
    chair, loaded through the folder source and rendered by the production render path."""
    from render.plan import Frame
    from render.worker import render_sweep_bytes
    from render.scene import SceneSpec

    tmp = tmp_path_factory.mktemp("double-sided")
    folder = tmp / "in"
    folder.mkdir()
    box, chair = _box(), _chair()
    shapes = {"box": (box.vertices, box.faces), "chair": (chair.vertices.astype(np.float64), chair.faces)}
    models = []
    for name, (v, f) in shapes.items():
        for split in (False, True):  # vertices shared by the two copies, or one set per copy (as with normals)
            tag = f"{name}_{'split' if split else 'shared'}"
            _write_obj(folder / f"{tag}_single.obj", v, f, split=split)
            _write_obj(folder / f"{tag}_double.obj", v, f, double=True, split=split)
            models.append(tag)
    params = load_params(_params_file(tmp, folder))
    catalog = build_meshes(params.dataset("chairs"), params.seed, tmp / "meshes")
    paths = {e.params["source_file"][:-4]: str(catalog.path(e.id)) for e in catalog.entries}
    for name in models:  # the double-sided file as it would be without the repair
        raw = trimesh.load(str(folder / f"{name}_double.obj"), force="mesh", process=False)
        raw_mesh = geometry.normalise(Mesh(np.asarray(raw.vertices), np.asarray(raw.faces), None))
        write_ply(tmp / f"{name}_raw.ply", raw_mesh)
        paths[f"{name}_raw"] = str(tmp / f"{name}_raw.ply")
    names = sorted(paths)
    spec = SceneSpec(RenderSettings(size=48, samples=8, threads=1), CameraSettings(distance=3.0, fov=30.0),
                     LightSettings(elevation=30.0, strength=4.0, ambient=0.08), seed=7)
    frames = [Frame("train", 0, k, k, VIEW) for k in range(len(names))]
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # Blender in its own process, as in production
        pngs = pool.apply(render_sweep_bytes, (spec, dict(enumerate(paths[n] for n in names)), frames))
    return {n: cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_GRAYSCALE) for n, p in zip(names, pngs)}


MODELS = ["box_shared", "box_split", "chair_shared", "chair_split"]


@pytest.mark.blender
@pytest.mark.parametrize("model", MODELS)
def test_double_sided_model_renders_like_the_single_sided_one(renders, model):
    clean, repaired = renders[f"{model}_single"], renders[f"{model}_double"]
    assert 0.05 < (clean > 0).mean() < 0.8, "the object is in view"
    diff = np.abs(repaired.astype(int) - clean.astype(int))
    assert diff.max() <= 2, f"max difference {diff.max()}"
    assert _speckle(repaired, clean) == 0.0


@pytest.mark.blender
@pytest.mark.parametrize("model", MODELS)
def test_without_the_repair_the_double_sided_model_renders_as_speckle(renders, model):
    clean, raw = renders[f"{model}_single"], renders[f"{model}_raw"]
    assert _speckle(raw, clean) > 0.3, _speckle(raw, clean)  # measured 0.5 to 0.98
