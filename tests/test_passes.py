"""Ground-truth passes (`render.passes`) and cameras.json: config, pure camera geometry, and real
Blender renders checked against the meshes themselves (docs/passes.md).

Geometry tolerances (objects have unit size; measured errors in parentheses, 48 px, 4 spp):
- every masked pixel's depth, back-projected with K and the pose, lies within 1e-3 scene units
  (0.1 % of the object) of the mesh surface (measured: max 2.6e-5, median 8e-6);
- normals, away from silhouettes (the pixel's 3x3 neighbourhood is all object), agree with the
  mesh's smooth normals (angle-weighted vertex normals interpolated at the back-projected point, as
  Blender shades) to 99th percentile < 5 deg and max < 10 deg (measured: p99 3.9, max 8.6 deg), and
  with the face normals to a median < 3 deg (measured 1.7). At silhouettes Cycles bends shading
  normals toward the viewer at grazing angles (up to ~15 deg), so they are not checked there;
- the mask equals "the PNG is not background" except within 1 px of the silhouette (anti-aliasing).
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import render.runner as runner
import render.worker as worker
from assets.mesh import read_ply, write_ply
from config import ConfigError, load_params, parse_params
from render.cameras import CAMERAS_FILE, backproject, intrinsics, rotation, world_to_camera
from render.plan import Frame
from render.runner import PLAN_FILE, RenderJob, render_set
from render.state import FrameState
from render.worker import RenderError
from render.scene import SceneSpec, direction
from tests.render_fixtures import blob, inside, make_project, raw_params, render_into

ROOT = Path(__file__).resolve().parents[1]
ALL = ["depth", "normal", "mask"]
SIZE = 48
SURFACE_TOL = 1e-3
NORMAL_P99_DEG, NORMAL_MAX_DEG, FACE_MEDIAN_DEG = 5.0, 10.0, 3.0


# ------------------------------------------------------------------------------ config (no Blender)


def test_passes_default_off_and_any_order_is_canonical():
    assert parse_params(raw_params()).render.passes == ()
    settings = parse_params(raw_params(passes=["mask", "depth"])).render
    assert settings.passes == ("mask", "depth") and settings.pass_names == ("depth", "mask")


@pytest.mark.parametrize("value, says", [
    (["depth", "depth"], "twice"), (["albedo"], "choose one of: depth, normal, mask"),
    ("depth", "expected a list"), ([1], "choose one of"), ({"depth": 1}, "expected a list"),
])
def test_bad_passes_are_one_line_naming_the_key(value, says):
    with pytest.raises(ConfigError) as err:
        parse_params(raw_params(passes=value))
    message = str(err.value)
    assert message.startswith("render.passes") and says in message and "\n" not in message


def test_cli_refuses_bad_passes_with_exit_2_and_writes_nothing(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params(passes=["depth", "nope"])))
    res = subprocess.run([sys.executable, str(ROOT / "cli.py"), "render", "--factor", "light"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "render.passes" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_missing_openexr_is_one_line_naming_the_requirements_file(tmp_path, monkeypatch):
    params = make_project(tmp_path, passes=ALL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # what an environment without the package looks like
    with pytest.raises(RenderError, match="requirements-passes.txt"):
        render_set(params, RenderJob("faces", "light", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ camera geometry (pure)


@pytest.mark.parametrize("az, el", [(0.0, 0.0), (37.5, 12.0), (-120.0, -25.0), (180.0, 60.0)])
def test_pose_is_rigid_and_looks_at_the_origin_from_the_documented_place(az, el):
    m = world_to_camera(az, el, 2.5)
    r = m[:3, :3]
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    eye = direction(az, el) * 2.5
    assert np.allclose(r @ eye + m[:3, 3], 0)  # the camera centre maps to the camera origin
    assert np.allclose(m @ [0, 0, 0, 1], [0, 0, 2.5, 1])  # the origin is straight ahead at the distance
    assert abs(r[0, 2]) < 1e-12  # the image's x axis stays horizontal
    assert r[1] @ [0, 0, 1] < 0  # image y points down: world up is -y


def test_front_view_axes_follow_the_conventions():
    r = rotation(0.0, 0.0)  # camera on -Y looking at the object's front
    assert np.allclose(r, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    k = intrinsics(SIZE, 30.0)
    u = k @ (world_to_camera(0, 0, 3.0) @ [0.3, 0, 0, 1])[:3]
    assert u[0] / u[2] > SIZE / 2  # the object's left (+X) is on the image's right, as the README says


def test_backproject_inverts_projection():
    k, m = intrinsics(SIZE, 30.0), world_to_camera(25.0, -10.0, 3.0)
    depth = np.full((SIZE, SIZE), 2.7)
    pts = backproject(depth, k, m)
    cam = pts @ m[:3, :3].T + m[:3, 3]
    uv = cam @ k.T
    j, i = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5)
    assert np.allclose(cam[..., 2], 2.7) and np.allclose(uv[..., 0] / uv[..., 2], j) and np.allclose(uv[..., 1] / uv[..., 2], i)


# ------------------------------------------------------------------------------ Blender

def _blender_camera(spec: SceneSpec, poses, points):
    """In a Blender worker: per pose, the camera's matrix_world, its projection, and
    `world_to_camera_view` of `points` (x, y in [0, 1] from the bottom left, z = depth along the axis)."""
    scene = worker.scene_for(spec)  # imports bpy, which puts bpy_extras and mathutils on the path
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    out = []
    for az, el, roll in poses:
        scene.set_state(FrameState(camera_azimuth=az, camera_elevation=el, camera_distance=spec.camera.distance,
                                   camera_roll=roll))
        scene.bpy.context.view_layer.update()
        cam = scene.camera
        depsgraph = scene.bpy.context.evaluated_depsgraph_get()
        proj = cam.calc_matrix_camera(depsgraph, x=spec.render.size, y=spec.render.size)
        views = [tuple(world_to_camera_view(scene.scene, cam, Vector(p))) for p in points]
        out.append((np.array(cam.matrix_world), np.array(proj), np.array(views)))
    return out


@pytest.mark.blender
def test_cameras_equal_what_blender_reports(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params(size=SIZE)))
    params = load_params(tmp_path / "params.yaml")
    ds = params.dataset("faces")
    spec = SceneSpec(params.render, ds.camera, ds.light, params.seed)
    poses = [(0.0, 0.0, 0.0), (-60.0, 20.0, 0.0), (37.25, -15.5, 30.0), (150.0, 45.0, -75.0)]  # (az, el, roll)
    points = np.random.default_rng(0).uniform(-0.5, 0.5, (20, 3))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        reported = pool.apply(_blender_camera, (spec, poses, [tuple(p) for p in points]))
    k = intrinsics(SIZE, ds.camera.fov)
    for (az, el, roll), (matrix_world, proj, views) in zip(poses, reported):
        m = world_to_camera(az, el, ds.camera.distance, roll)
        # Blender's camera axes are OpenCV's with y and z negated.
        assert np.allclose(np.linalg.inv(m) @ np.diag([1, -1, -1, 1]), matrix_world, atol=1e-5)
        assert np.isclose(proj[0, 0] * SIZE / 2, k[0, 0], rtol=1e-5) and np.isclose(proj[1, 1] * SIZE / 2, k[1, 1], rtol=1e-5)
        assert np.allclose(proj[:2, 2], 0) and np.allclose(k[:2, 2], SIZE / 2)
        cam = points @ m[:3, :3].T + m[:3, 3]
        uv = cam @ k.T
        assert np.allclose(uv[:, 0] / uv[:, 2] / SIZE, views[:, 0], atol=1e-5)
        assert np.allclose(1 - uv[:, 1] / uv[:, 2] / SIZE, views[:, 1], atol=1e-5)  # Blender's y runs up
        assert np.allclose(cam[:, 2], views[:, 2], atol=1e-5)  # depth along the view axis


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project at 48 px whose blobs are finer than render_fixtures' (so smooth and face normals are close)."""
    root = tmp_path_factory.mktemp("passes")
    params = make_project(root, passes=ALL, size=SIZE)
    mesh_dir = root / params.dataset("faces").mesh_dir()
    for ply in sorted(mesh_dir.glob("*.ply")):
        write_ply(ply, blob(int(ply.stem), n=48))
    with inside(root, params) as project:
        yield project


@pytest.fixture(scope="module")
def rendered(project):
    return render_into(project, "azimuth", "on")


def frames_of(folder: Path) -> list[dict]:
    return json.loads((folder / CAMERAS_FILE).read_text())["frames"]


def load_passes(folder: Path, file: str):
    stem = folder / file.removesuffix(".png")
    depth = np.load(f"{stem}.depth.npy")
    normal = np.load(f"{stem}.normal.npy")
    mask = cv2.imread(f"{stem}.mask.png", cv2.IMREAD_UNCHANGED)
    image = cv2.imread(str(folder / file), cv2.IMREAD_UNCHANGED)
    return depth, normal, mask, image


@pytest.mark.blender
def test_files_beside_each_png_and_cameras_json(rendered, project):
    _, params = project
    record = json.loads((rendered / CAMERAS_FILE).read_text())
    assert record["image_size"] == [SIZE, SIZE] and record["passes"] == ALL
    plan_files = json.loads((rendered / PLAN_FILE).read_text())["files"]
    for f in record["frames"]:
        depth, normal, mask, image = load_passes(rendered, f["file"])
        assert depth.dtype == np.float32 and depth.shape == (SIZE, SIZE)
        assert normal.dtype == np.float32 and normal.shape == (SIZE, SIZE, 3)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
        assert not depth[mask == 0].any() and not normal[mask == 0].any()  # background is 0
        on = mask > 0
        assert np.allclose(np.linalg.norm(normal[on], axis=-1), 1, atol=1e-5)
        assert (depth[on] > params.dataset("faces").camera.distance - 1).all()
        stem = f["file"].removesuffix(".png")
        assert {f["file"], f"{stem}.depth.npy", f"{stem}.normal.npy", f"{stem}.mask.png"} <= set(plan_files)
        assert np.allclose(f["world_to_camera"], world_to_camera(f["azimuth"], f["elevation"], 3.0))
    rows = (rendered / "labels.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f["file"] for f in record["frames"]]
    assert [float(r.split(",")[5]) for r in rows] == [f["azimuth"] for f in record["frames"]]


# -- geometry against the mesh

def closest_points(points: np.ndarray, v: np.ndarray, f: np.ndarray, chunk: int = 16):
    """Distance from each point to the mesh and the nearest triangle's index and closest point
    (exact point-triangle distance, Ericson's "Real-Time Collision Detection" 5.1.5, vectorised)."""
    a, b, c = (v[f[:, k]][None] for k in range(3))
    dist, tri, near = np.empty(len(points)), np.empty(len(points), int), np.empty((len(points), 3))
    for s in range(0, len(points), chunk):
        p = points[s:s + chunk, None, :]
        q = _closest_on_triangles(p, a, b, c)
        d = np.linalg.norm(q - p, axis=-1)
        best = d.argmin(1)
        dist[s:s + chunk], tri[s:s + chunk] = d.min(1), best
        near[s:s + chunk] = q[np.arange(len(best)), best]
    return dist, tri, near


def _closest_on_triangles(p, a, b, c):
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = a + ab * (vb / (va + vb + vc))[..., None] + ac * (vc / (va + vb + vc))[..., None]
        on_ab = a + ab * (d1 / (d1 - d3))[..., None]
        on_ac = a + ac * (d2 / (d2 - d6))[..., None]
        on_bc = b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))[..., None]
    shape = inside.shape
    regions = [((d1 <= 0) & (d2 <= 0), np.broadcast_to(a, shape)), ((d3 >= 0) & (d4 <= d3), np.broadcast_to(b, shape)),
               ((d6 >= 0) & (d5 <= d6), np.broadcast_to(c, shape)), ((vc <= 0) & (d1 >= 0) & (d3 <= 0), on_ab),
               ((vb <= 0) & (d2 >= 0) & (d6 <= 0), on_ac), ((va <= 0) & (d4 >= d3) & (d5 >= d6), on_bc)]
    out = inside
    for cond, point in reversed(regions):  # the first region that holds wins
        out = np.where(cond[..., None], point, out)
    return out


def test_closest_points_helper_is_exact():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    f = np.array([[0, 1, 2]])
    pts = np.array([[0.2, 0.2, 0.5], [-1, -1, 0], [2, 0, 0.0], [0.5, 0.5, 1], [0.5, -1, 0]])
    dist, _, near = closest_points(pts, v, f)
    assert np.allclose(near, [[0.2, 0.2, 0], [0, 0, 0], [1, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0]])
    assert np.allclose(dist, [0.5, np.sqrt(2), 1, 1, 1])


def smooth_normals(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertex normals weighted by corner angle, as Blender computes them; face normals)."""
    face = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    vertex = np.zeros_like(v)
    for k in range(3):
        e1, e2 = v[f[:, (k + 1) % 3]] - v[f[:, k]], v[f[:, (k + 2) % 3]] - v[f[:, k]]
        cos = (e1 * e2).sum(1) / np.linalg.norm(e1, axis=1) / np.linalg.norm(e2, axis=1)
        np.add.at(vertex, f[:, k], face * np.arccos(np.clip(cos, -1, 1))[:, None])
    return vertex / np.linalg.norm(vertex, axis=1, keepdims=True), face


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1, 1)))


@pytest.mark.blender
def test_depth_back_projects_onto_the_mesh_and_normals_agree(rendered, project):
    root, params = project
    labels = {r.split(",")[0]: int(r.split(",")[4]) for r in (rendered / "labels.csv").read_text().splitlines()[1:]}
    frames = frames_of(rendered)
    checked = 0
    for f in frames[::2]:  # every other frame: several poses and meshes, a few seconds of distance checks
        mesh = read_ply(root / params.dataset("faces").mesh_dir() / f"{labels[f['file']]:04d}.ply")
        v, tris = mesh.vertices.astype(np.float64), mesh.faces
        depth, normal, mask, _ = load_passes(rendered, f["file"])
        k, m = np.array(f["K"]), np.array(f["world_to_camera"])
        on = mask > 0
        points = backproject(depth.astype(np.float64), k, m)[on]
        dist, tri, near = closest_points(points, v, tris)
        assert dist.max() < SURFACE_TOL, f"{f['file']}: a pixel lies {dist.max():.2e} off the mesh"

        vertex_n, face_n = smooth_normals(v, tris)
        corners = tris[tri]
        bary = _barycentric(near, v[corners[:, 0]], v[corners[:, 1]], v[corners[:, 2]])
        smooth = (vertex_n[corners] * bary[..., None]).sum(1)
        smooth = smooth / np.linalg.norm(smooth, axis=1, keepdims=True) @ m[:3, :3].T
        inner = cv2.erode(on.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)[on]
        err = angles(normal[on].astype(np.float64), smooth)[inner]
        assert np.percentile(err, 99) < NORMAL_P99_DEG and err.max() < NORMAL_MAX_DEG, (f["file"], err.max())
        face_err = angles(normal[on].astype(np.float64), face_n[tri] @ m[:3, :3].T)[inner]
        assert np.median(face_err) < FACE_MEDIAN_DEG
        checked += int(on.sum())
    assert checked > 1000


def _barycentric(p, a, b, c):
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = d00 * d11 - d01 * d01
    v, w = (d11 * d20 - d01 * d21) / den, (d00 * d21 - d01 * d20) / den
    return np.stack([1 - v - w, v, w], -1)


@pytest.mark.blender
def test_mask_is_where_the_png_shows_the_object(rendered):
    for f in frames_of(rendered):
        _, _, mask, image = load_passes(rendered, f["file"])
        on, seen = mask > 0, image > 0  # the background is pure black (no dither, no sky seen)
        near_edge = cv2.dilate(on.astype(np.uint8), np.ones((3, 3), np.uint8)) != cv2.erode(on.astype(np.uint8), np.ones((3, 3), np.uint8))
        assert not (on != seen)[~near_edge].any(), f["file"]
        assert 0.1 < on.mean() < 0.7


@pytest.mark.blender
def test_passes_off_renders_the_same_pngs_and_no_trace_of_passes(rendered, project):
    root, params = project
    off = dataclasses.replace(params, render=dataclasses.replace(params.render, passes=()))
    render_set(off, RenderJob("faces", "azimuth", root / "off"))
    spec = SceneSpec(off.render, off.dataset("faces").camera, off.dataset("faces").light, off.seed)
    assert "passes" not in spec.pixel_key()
    files = sorted(str(p.relative_to(root / "off")) for p in (root / "off").rglob("*") if p.is_file())
    assert all(f.endswith(".png") and ".mask" not in f for f in files if "/" in f)
    assert sorted(f for f in files if "/" not in f) == [PLAN_FILE, "labels.csv"]  # no cameras.json
    record = json.loads((root / "off" / PLAN_FILE).read_text())
    assert "passes" not in json.dumps(record) and all(f.endswith(".png") for f in record["files"])
    for f in frames_of(rendered):
        assert (root / "off" / f["file"]).read_bytes() == (rendered / f["file"]).read_bytes(), f["file"]
    assert (root / "off" / "labels.csv").read_bytes() == (rendered / "labels.csv").read_bytes()


@pytest.mark.blender
def test_passes_are_byte_identical_across_worker_counts(rendered, project):
    root, params = project
    one = dataclasses.replace(params, render=dataclasses.replace(params.render, workers=1))
    render_set(one, RenderJob("faces", "azimuth", root / "on-1worker"))
    assert _folder_bytes(root / "on-1worker") == _folder_bytes(rendered)


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.blender
@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_resume_renders_again_only_the_frame_whose_pass_is_missing(rendered, project, damage):
    root, params = project
    out = root / f"resume-{damage}"
    render_set(params, RenderJob("faces", "azimuth", out))
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    frame = frames_of(out)[4]["file"]
    victim = out / frame.replace(".png", ".normal.npy")
    if damage == "delete":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-10])
    render_set(params, RenderJob("faces", "azimuth", out))
    stem = frame.removesuffix(".png")
    redone = {p for p in before if p.name.startswith(Path(stem).name) and p.parent.name == Path(frame).parent.name}
    assert len(redone) == 4  # the PNG and its three passes
    for p, stamp in before.items():
        if p not in redone and p.name not in (PLAN_FILE, "labels.csv", CAMERAS_FILE):  # rewritten by every run
            assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, f"{p} was rewritten"
    assert _folder_bytes(out) == _folder_bytes(rendered)


@pytest.mark.blender
def test_the_executor_seam_returns_the_pass_files_the_pool_writes(rendered, project, tmp_path):
    """What a Ray actor sends back (`render_sweep_files`) and how the driver writes it
    (`write_frame_files`) give the local pool's bytes."""
    root, params = project
    ds = params.dataset("faces")
    spec = SceneSpec(params.render, ds.camera, ds.light, params.seed)
    labels = [r.split(",") for r in (rendered / "labels.csv").read_text().splitlines()[1:4]]
    frames = [Frame(r[1], int(r[2]), int(r[3]), int(r[4]), tuple(float(v) for v in r[5:8])) for r in labels]
    meshes = {fr.mesh: str((root / ds.mesh_dir() / f"{fr.mesh:04d}.ply").resolve()) for fr in frames}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.apply(worker.render_sweep_files, (spec, meshes, frames))
    for fr, files in zip(frames, results):
        assert list(files)[-1] == fr.file and len(files) == 4  # passes first, PNG last
        (tmp_path / fr.split).mkdir(exist_ok=True)
        worker.write_frame_files(tmp_path, files)
        for name in files:
            assert (tmp_path / name).read_bytes() == (rendered / name).read_bytes(), name


@pytest.mark.blender
def test_ray_executor_writes_the_same_passes_as_the_local_pool(project, rendered, tmp_path_factory):
    """On a real two-node Ray cluster on loopback: actors send each frame's pass files back with its PNG."""
    pytest.importorskip("ray", reason="Ray is optional: `make setup-ray` installs it")
    from fixtures.ray_cluster import loopback_cluster

    root, params = project
    ray_params = dataclasses.replace(params, render=dataclasses.replace(params.render, executor="ray", workers=2))
    with loopback_cluster(nodes=2, cpus=1, log_dir=tmp_path_factory.mktemp("ray-logs")) as address:
        ray_params = dataclasses.replace(ray_params, render=dataclasses.replace(ray_params.render, address=address))
        render_set(ray_params, RenderJob("faces", "azimuth", root / "on-ray"))
    assert _folder_bytes(root / "on-ray") == _folder_bytes(rendered)
