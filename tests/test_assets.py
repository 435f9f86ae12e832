"""Assets: generated faces and chairs, the catalog on disk, and the user's own mesh files (no Blender)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from assets import chairs, faces, geometry
from assets.catalog import build_meshes, open_catalog
from assets.mesh import Mesh, MeshError, read_ply, write_ply
from assets.userfiles import axis_rotation, load_folder
from config import load_params

ROOT = Path(__file__).resolve().parents[1]
GENERATORS = {"faces": faces, "chairs": chairs}


def _identity(gen, i: int) -> dict:
    return gen.sample(np.random.default_rng([123, i]))


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, capture_output=True, text=True)


def _shells(mesh: Mesh) -> list[trimesh.Trimesh]:
    """The mesh's parts, with coincident vertices welded (sharp edges are split on purpose)."""
    welded = trimesh.Trimesh(mesh.vertices.astype(np.float64), mesh.faces, process=False)
    welded.merge_vertices(digits_vertex=6)
    return welded.split(only_watertight=False)


def _silhouette(mesh: Mesh, size: int = 48) -> np.ndarray:
    """Front orthographic silhouette (X right, Z up) from the vertices, rasterised coarsely."""
    v = mesh.vertices
    ix = np.clip(((v[:, 0] + 0.5) * (size - 1)).round().astype(int), 0, size - 1)
    iz = np.clip(((v[:, 2] + 0.5) * (size - 1)).round().astype(int), 0, size - 1)
    img = np.zeros((size, size), bool)
    img[iz, ix] = True
    return img


# ------------------------------------------------------------------------------ generators


@pytest.mark.parametrize("name", GENERATORS)
def test_generated_meshes_are_valid_canonical_and_closed_outward(name):
    gen = GENERATORS[name]
    for i in range(6):
        mesh = gen.build(_identity(gen, i))
        v = mesh.vertices.astype(np.float64)
        assert np.isfinite(v).all() and np.isfinite(mesh.colors).all()
        assert mesh.colors.min() >= 0 and mesh.colors.max() <= 1
        assert mesh.faces.min() >= 0 and mesh.faces.max() < len(v)
        lo, hi = v.min(axis=0), v.max(axis=0)
        assert np.allclose((lo + hi) / 2, 0, atol=1e-5), "bounding box must be centred"
        assert abs((hi - lo).max() - 1.0) < 1e-5, "largest extent must be 1"
        assert geometry.triangle_areas(v, mesh.faces).min() > 1e-10, "degenerate triangle"
        for shell in _shells(mesh):
            assert shell.is_watertight, "every part is a closed shell"
            assert geometry.signed_volume(shell.vertices, shell.faces) > 0, "a part is inside out"
        if name == "faces":
            assert len(mesh.faces) >= 5000


def test_faces_face_minus_y_and_stand_up():
    mesh = faces.build(_identity(faces, 0))
    v = mesh.vertices
    # The nose tip is the most forward point: central in X, toward -Y, in the upper half of the mesh.
    tip = v[np.argmin(v[:, 1])]
    assert abs(tip[0]) < 0.05 and tip[2] > -0.2
    # The neck stump is at the bottom, behind the face.
    assert v[np.argmin(v[:, 2])][1] > tip[1]


def test_chairs_stand_on_the_floor_with_the_back_behind():
    for i in range(6):
        p = _identity(chairs, i)
        v = chairs.build(p).vertices
        top = v[v[:, 2] > v[:, 2].max() - 0.05]
        assert top[:, 1].mean() > 0, "the top of the back must be behind the seat (+Y)"
        assert np.isclose(v[:, 2].min(), -0.5 * np.ptp(v[:, 2]), atol=1e-5)


def test_faces_have_at_least_twenty_continuous_parameters_within_ranges():
    p = _identity(faces, 0)
    assert len(faces.PARAMS) >= 20 and set(p) == set(faces.PARAMS)
    for k, (lo, hi) in faces.PARAMS.items():
        assert lo <= p[k] <= hi and p[k] == round(p[k], 6)


def test_chair_styles_are_all_reachable_and_numeric():
    seen = {k: set() for k in chairs.CHOICES}
    for i in range(60):
        p = _identity(chairs, i)
        assert all(isinstance(x, float) for x in p.values())
        for k in chairs.CHOICES:
            seen[k].add(int(p[k]))
    assert all(len(seen[k]) == n for k, n in chairs.CHOICES.items())
    for style in range(len(chairs.LEG_STYLES)):
        for back in range(len(chairs.BACK_STYLES)):
            p = dict(_identity(chairs, 0), leg_style=float(style), back_style=float(back), arms=1.0, stretchers=1.0)
            assert np.isfinite(chairs.build(p).vertices).all()


@pytest.mark.parametrize("name", GENERATORS)
def test_identity_parameters_change_the_geometry(name):
    gen = GENERATORS[name]
    a, b = gen.build(_identity(gen, 0)), gen.build(_identity(gen, 1))
    if a.vertices.shape == b.vertices.shape:
        assert np.abs(a.vertices - b.vertices).max() > 0.01
    assert (_silhouette(a) != _silhouette(b)).sum() > 10
    # Each single shape parameter moves the mesh by itself.
    base = _identity(gen, 0)
    ranges = faces.PARAMS if name == "faces" else chairs.DIMENSIONS
    for key, (lo, hi) in ranges.items():
        if key.endswith("tone") or key in ("lip_tint", "hairline"):
            continue  # albedo parameters
        if name == "chairs" and not _chair_uses(base, key):
            continue
        m_lo, m_hi = gen.build(dict(base, **{key: lo})), gen.build(dict(base, **{key: hi}))
        assert np.abs(m_lo.vertices - m_hi.vertices).max() > 1e-3, f"{key} does not change the mesh"


def _chair_uses(p: dict, key: str) -> bool:
    leg = chairs.LEG_STYLES[int(p["leg_style"])]
    return not (
        (key == "arm_height" and not p["arms"])
        or (key == "stretcher_height" and (not p["stretchers"] or leg == "pedestal"))
        or (key == "leg_splay" and leg != "splayed")
        or (key == "corner_radius" and chairs.SEAT_SHAPES[int(p["seat_shape"])] != "rounded")
        or (key in ("leg_inset",) and leg == "pedestal")
    )


def test_face_albedo_varies_between_identities():
    a, b = faces.build(dict(_identity(faces, 0), skin_tone=0.0)), faces.build(dict(_identity(faces, 0), skin_tone=1.0))
    assert a.colors.mean() - b.colors.mean() > 0.2


# ------------------------------------------------------------------------------ catalog and CLI


def test_cli_assets_is_byte_deterministic_and_gives_distinct_meshes(tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        r = _cli("assets", "--dataset", "faces", "--count", "3", "--out", str(out))
        assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == ["0000.ply", "0001.ply", "0002.ply", "index.json"]
    assert all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files)
    hashes = {(outs[0] / f).read_bytes() for f in files if f.endswith(".ply")}
    assert len(hashes) == 3
    r = _cli("assets", "--dataset", "faces", "--count", "3", "--out", str(outs[0]), "--seed", "1")
    assert r.returncode == 0 and (outs[0] / "0000.ply").read_bytes() != (outs[1] / "0000.ply").read_bytes()


def test_catalog_split_never_shares_a_mesh(tmp_path):
    params = load_params(ROOT / "params.yaml")
    cat = build_meshes(params.dataset("chairs"), 0, tmp_path / "c", count=10)
    train, test = cat.ids("train"), cat.ids("test")
    assert train and test and not set(train) & set(test)
    assert max(train) < min(test), "train meshes come first"
    blobs = [cat.path(i).read_bytes() for i in range(len(cat))]
    assert len(set(blobs)) == len(blobs)
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    assert [m["split"] for m in index["meshes"]] == ["train"] * len(train) + ["test"] * len(test)
    assert open_catalog(tmp_path / "c").load(0).vertices.shape == read_ply(cat.path(0)).vertices.shape


def test_catalog_refuses_to_replace_a_folder_that_is_not_a_mesh_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = _cli("assets", "--dataset", "chairs", "--count", "2", "--out", str(tmp_path / "mine"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------ user meshes


def _folder_params(tmp_path: Path, folder: Path, up="Z", forward="-Y") -> Path:
    text = (ROOT / "params.yaml").read_text().replace(
        "source: {kind: generator, generator: chairs}",
        f"source: {{kind: folder, path: {folder}, up_axis: '{up}', forward_axis: '{forward}'}}")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def _chair_trimesh() -> trimesh.Trimesh:
    m = chairs.build(_identity(chairs, 3))
    return trimesh.Trimesh(m.vertices * 2.0 + [5.0, 0.0, 1.0], m.faces, vertex_colors=(m.colors * 255).astype(np.uint8),
                           process=False)


def _export(mesh: trimesh.Trimesh, path: Path) -> None:
    if path.suffix == ".gltf":  # self-contained: trimesh's default buffer names would collide in one folder
        data = trimesh.exchange.gltf.export_gltf(mesh.scene(), embed_buffers=True)
        path.write_bytes(data["model.gltf"])
    else:
        mesh.export(path)


@pytest.mark.parametrize("ext", ["obj", "ply", "gltf", "glb"])
def test_user_mesh_formats_load_and_normalise(tmp_path, ext):
    folder = tmp_path / "in"
    folder.mkdir()
    box = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    box.apply_translation((10.0, -3.0, 7.0))
    _export(box, folder / f"box.{ext}")
    _export(_chair_trimesh(), folder / f"chair.{ext}")
    params = load_params(_folder_params(tmp_path, folder))
    meshes, p, splits = load_folder(params.dataset("chairs"), 0, 60, 12)
    assert sorted(x["source_file"] for x in p) == [f"box.{ext}", f"chair.{ext}"]
    assert sorted(splits) == ["test", "train"]
    for mesh in meshes:
        v = mesh.vertices.astype(np.float64)
        assert np.allclose((v.min(0) + v.max(0)) / 2, 0, atol=1e-5)
        assert abs(np.ptp(v, axis=0).max() - 1) < 1e-5
    box_mesh = meshes[[x["source_file"] for x in p].index(f"box.{ext}")]
    assert np.allclose(np.ptp(box_mesh.vertices, axis=0), [1.0, 0.5, 0.25], atol=1e-5)


def test_user_mesh_axis_conversion(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    # A Y-up file whose front faces +Z (the glTF convention): extents X 4, Y (up) 2, Z (front) 1.
    trimesh.creation.box(extents=(4.0, 2.0, 1.0)).export(folder / "a.ply")
    trimesh.creation.box(extents=(1.0, 1.0, 1.0)).export(folder / "b.ply")
    params = load_params(_folder_params(tmp_path, folder, up="Y", forward="Z"))
    meshes, p, _ = load_folder(params.dataset("chairs"), 0, 1, 1)
    a = meshes[[x["source_file"] for x in p].index("a.ply")]
    assert np.allclose(np.ptp(a.vertices, axis=0), [1.0, 0.25, 0.5], atol=1e-5)
    rot = axis_rotation("Y", "Z")
    assert np.allclose(rot @ [0, 1, 0], [0, 0, 1]) and np.allclose(rot @ [0, 0, 1], [0, -1, 0])
    assert np.isclose(np.linalg.det(rot), 1.0)
    assert np.allclose(axis_rotation("Z", "-Y"), np.eye(3))


def test_user_folder_through_the_cli_keeps_vertex_colours_and_splits(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        _chair_trimesh().export(folder / f"chair{k}.obj" if k % 2 else folder / f"chair{k}.ply")
    params = _folder_params(tmp_path, folder)
    out = tmp_path / "out"
    r = _cli("--params", str(params), "assets", "--dataset", "chairs", "--out", str(out))
    assert r.returncode == 0, r.stderr
    cat = open_catalog(out)
    assert len(cat) == 4 and cat.ids("train") and cat.ids("test")
    assert not set(cat.ids("train")) & set(cat.ids("test"))
    ply = [e for e in cat.entries if e.params["source_file"].endswith(".ply")][0]
    original = chairs.build(_identity(chairs, 3)).colors
    assert abs(cat.load(ply.id).colors.mean() - original.mean()) < 0.02
    # Editing a file rebuilds the folder (the fingerprint covers file contents).
    before = cat.fingerprint
    trimesh.creation.box().export(folder / "chair0.ply")
    assert _cli("--params", str(params), "assets", "--dataset", "chairs", "--out", str(out)).returncode == 0
    assert open_catalog(out).fingerprint != before


BAD_FILES = {
    "garbage.obj": b"\x00\x01 this is not a mesh \xff\xfe" * 50,
    "garbage.glb": b"glTF\x02\x00\x00\x00 not really",
    "garbage.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nend_header\n\x00\x01",
    "empty.obj": b"",
    "points.ply": b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                  b"end_header\n0 0 0\n1 0 0\n0 1 0\n",
    "lines.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2\n",
}


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_bad_user_file_exits_2_naming_the_file_and_writes_nothing(tmp_path, bad):
    folder = tmp_path / "in"
    folder.mkdir()
    trimesh.creation.box().export(folder / "a_good.ply")
    (folder / bad).write_bytes(BAD_FILES[bad])
    out = tmp_path / "out"
    r = _cli("--params", str(_folder_params(tmp_path, folder)), "assets", "--dataset", "chairs", "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and bad in lines[0]
    assert not out.exists() and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("case", ["missing", "empty", "only_other_files"])
def test_missing_or_empty_user_folder_exits_2(tmp_path, case):
    folder = tmp_path / "in"
    if case != "missing":
        folder.mkdir()
    if case == "only_other_files":
        (folder / "readme.txt").write_text("no meshes here")
    out = tmp_path / "out"
    r = _cli("--params", str(_folder_params(tmp_path, folder)), "assets", "--dataset", "chairs", "--out", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and str(folder) in r.stderr
    assert not out.exists()


def test_any_dataset_name_can_use_a_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    trimesh.creation.icosphere().export(folder / "ball.glb")
    trimesh.creation.box().export(folder / "cube.obj")
    text = (ROOT / "params.yaml").read_text()
    start = text.index("  chairs:\n")
    chairs_block = text[start:text.index("\nshard:")]
    mugs = chairs_block.replace("  chairs:\n", "  mugs:\n").replace(
        "source: {kind: generator, generator: chairs}", f"source: {{kind: folder, path: {folder}}}")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(chairs_block, chairs_block + "\n" + mugs))
    r = _cli("--params", str(path), "assets", "--dataset", "mugs", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert len(open_catalog(tmp_path / "out")) == 2


def test_written_meshes_round_trip(tmp_path):
    mesh = chairs.build(_identity(chairs, 0))
    write_ply(tmp_path / "m.ply", mesh)
    back = read_ply(tmp_path / "m.ply")
    assert np.array_equal(back.vertices, mesh.vertices) and np.array_equal(back.faces, mesh.faces)
    with pytest.raises(MeshError):
        read_ply(tmp_path / "missing.ply")
