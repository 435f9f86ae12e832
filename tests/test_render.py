"""The Blender renderer, for real (bpy, Cycles), at 32x32 and 4 spp on a few blob meshes."""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import render.runner as runner
import render.worker as worker
import durable
from config import load_params
from render.runner import LABELS_FILE, PLAN_FILE, RenderJob, render_set
from render.worker import RenderError
from tests.render_fixtures import inside, make_project, render_into, raw_params

pytestmark = pytest.mark.blender
ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, str(ROOT / "cli.py")]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    with inside(root, make_project(root)) as project:
        yield project


@pytest.fixture(scope="module")
def light_set(project):
    """2 train sweeps x 3 steps + 1 test sweep of light, rendered with 2 workers."""
    return render_into(project, "light", "light")


def labels(folder: Path) -> list[dict]:
    with open(folder / LABELS_FILE, newline="") as fh:
        return list(csv.DictReader(fh))


def image(folder: Path, name: str) -> np.ndarray:
    return cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_writes_pngs_and_labels_in_plan_order(light_set):
    rows = labels(light_set)
    assert list(rows[0]) == ["file", "split", "group", "index", "mesh", "azimuth", "elevation", "light"]
    assert [r["split"] for r in rows] == ["train"] * 6 + ["test"] * 3
    assert sorted(p.name for p in (light_set / "train").iterdir()) == sorted(Path(r["file"]).name for r in rows[:6])
    for r in rows:
        img = image(light_set, r["file"])
        assert img.shape == (32, 32) and img.dtype == np.uint8
    for group in ("0", "1"):
        sweep = [r for r in rows if r["split"] == "train" and r["group"] == group]
        assert len({r["light"] for r in sweep}) == 3
        assert len({(r["azimuth"], r["elevation"], r["mesh"]) for r in sweep}) == 1
    assert {r["mesh"] for r in rows if r["split"] == "test"} <= {"3", "4"}


def test_object_is_visible_centred_on_black(light_set):
    for r in labels(light_set):
        img = image(light_set, r["file"]).astype(float)
        mask = img > 0
        assert 0.1 < mask.mean() < 0.7
        ys, xs = np.nonzero(mask)
        assert abs(xs.mean() - 15.5) < 5 and abs(ys.mean() - 15.5) < 5
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        assert not border.any()  # plain black background: no dither noise, no ambient seen by the camera


def test_light_azimuth_moves_the_shading_not_the_silhouette(light_set):
    rows = [r for r in labels(light_set) if r["group"] == "0" and r["split"] == "train"]
    imgs = [image(light_set, r["file"]).astype(float) for r in rows]
    assert [float(r["light"]) for r in rows] == [-80.0, 0.0, 80.0]
    assert np.array_equal(imgs[0] > 0, imgs[2] > 0) or np.mean((imgs[0] > 0) != (imgs[2] > 0)) < 0.02
    balance = [im[:, :16].sum() - im[:, 16:].sum() for im in imgs]  # image left minus right
    # light -80 comes from the object's right, which the camera sees on the image's left
    assert balance[0] > 0 > balance[2]
    assert np.abs(imgs[0] - imgs[2]).mean() > 5


def test_azimuth_changes_the_silhouette_in_the_documented_direction(project):
    root, params = project
    out = root / "azimuth"
    render_set(params, RenderJob("faces", "azimuth", out, groups=1, steps=3))
    rows = [r for r in labels(out) if r["split"] == "train"]
    masks = [image(out, r["file"]) > 0 for r in rows]
    assert [float(r["azimuth"]) for r in rows] == [-60.0, 0.0, 60.0]
    assert np.mean(masks[0] != masks[2]) > 0.03
    # The blob's nose points to -Y: seen from azimuth +60 (camera toward +X) it sticks out to the
    # image's left, from -60 to the right.
    centre_x = [np.nonzero(m)[1].mean() for m in masks]
    assert centre_x[0] > centre_x[2] + 1


def test_azimuth_sweeps_skip_the_meshes_the_catalog_marks_turn_symmetric(tmp_path):
    """The runner hands the catalog's turn orders to the planner: a cylinder in the train split (order 8)
    never appears in the azimuth set, though the same plan without the record would take it."""
    import json

    from assets import geometry
    from assets.mesh import write_ply
    from assets.symmetry import turn_order
    from render.plan import PlanRequest, plan

    params = make_project(tmp_path)
    ds = params.dataset("faces")
    mesh_dir = tmp_path / ds.mesh_dir()
    cylinder = geometry.normalise(geometry.extrude(geometry.ellipse(0.6, 0.6, n=48), -0.5, 0.5, (0.6, 0.6, 0.6)))
    write_ply(mesh_dir / "0000.ply", cylinder)
    index = json.loads((mesh_dir / "index.json").read_text())
    index["meshes"][0]["turn_order"] = turn_order(cylinder)
    (mesh_dir / "index.json").write_text(json.dumps(index))
    assert index["meshes"][0]["turn_order"] > 1
    train = list(range(ds.meshes.train))
    unmarked = plan(PlanRequest(ds, "azimuth", params.seed, train, [3, 4], groups=6, steps=2))
    assert 0 in {f.mesh for s in unmarked for f in s.frames}
    with inside(tmp_path, params):
        render_set(params, RenderJob("faces", "azimuth", tmp_path / "azimuth", groups=6, steps=2))
    meshes = {int(r["mesh"]) for r in labels(tmp_path / "azimuth")}
    assert 0 not in meshes and {1, 2} <= meshes


def test_byte_identical_whatever_the_worker_count(project, light_set):
    root, params = project
    one = dataclasses.replace(params, render=dataclasses.replace(params.render, workers=1))
    render_set(one, RenderJob("faces", "light", root / "light-1worker"))
    assert folder_bytes(root / "light-1worker") == folder_bytes(light_set)


def test_intrinsic_sweeps_swap_meshes_and_stay_byte_identical_across_worker_counts(project):
    root, params = project
    for workers in (2, 1):
        p = dataclasses.replace(params, render=dataclasses.replace(params.render, workers=workers))
        render_set(p, RenderJob("faces", "intrinsic", root / f"intrinsic-{workers}"))
    assert folder_bytes(root / "intrinsic-1") == folder_bytes(root / "intrinsic-2")
    rows = [r for r in labels(root / "intrinsic-1") if r["group"] == "0" and r["split"] == "train"]
    assert len({r["mesh"] for r in rows}) == 3
    imgs = [image(root / "intrinsic-1", r["file"]).astype(float) for r in rows]
    assert np.abs(imgs[0] - imgs[1]).mean() > 1 and np.abs(imgs[1] - imgs[2]).mean() > 1  # other meshes


def test_resume_renders_only_what_is_missing(project, light_set):
    root, params = project
    out = root / "light-resume"
    shutil.copytree(light_set, out)
    old = 1_000_000_000
    for p in out.rglob("*.png"):
        os.utime(p, (old, old))
    gone = ["train/00001_002.png", "test/00000_000.png"]
    for name in gone + [LABELS_FILE]:
        (out / name).unlink()
    (out / "train" / ".00000_000.png.tmp-123").write_bytes(b"half")  # left by a killed worker
    render_set(params, RenderJob("faces", "light", out))
    assert folder_bytes(out) == folder_bytes(light_set)
    fresh = sorted(str(p.relative_to(out)) for p in out.rglob("*.png") if p.stat().st_mtime > old)
    assert fresh == sorted(gone)


def test_complete_set_does_not_start_blender(project, light_set, monkeypatch):
    root, params = project
    before = folder_bytes(light_set)

    def must_not_run(*args, **kwargs):
        raise AssertionError("Blender workers started for a complete set")

    monkeypatch.setattr(runner, "run_tasks", must_not_run)
    render_set(params, RenderJob("faces", "light", light_set))
    (light_set / LABELS_FILE).unlink()
    render_set(params, RenderJob("faces", "light", light_set))  # only labels.csv is rewritten
    assert folder_bytes(light_set) == before


def test_folder_of_a_different_plan_is_cleared_and_rerendered(project, light_set, caplog):
    root, params = project
    out = root / "light-stale"
    shutil.copytree(light_set, out)
    other = dataclasses.replace(params, render=dataclasses.replace(params.render, samples=2))
    render_set(other, RenderJob("faces", "light", out, steps=2))
    assert "different plan" in caplog.text
    rows = labels(out)
    assert len(rows) == 6 and sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == sorted(r["file"] for r in rows)
    assert (out / rows[0]["file"]).read_bytes() != (light_set / rows[0]["file"]).read_bytes()


def test_unreadable_plan_record_means_rerender_everything(project, light_set, caplog):
    root, params = project
    out = root / "light-garbled"
    shutil.copytree(light_set, out)
    (out / PLAN_FILE).write_text("{garbled")
    (out / "train" / "00000_000.png").write_bytes(b"not a png")
    render_set(params, RenderJob("faces", "light", out))
    assert "different plan" in caplog.text
    assert folder_bytes(out) == folder_bytes(light_set)


def test_foreign_folder_is_refused_untouched(project):
    root, params = project
    out = root / "foreign"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RenderError, match="not made by `render`"):
        render_set(params, RenderJob("faces", "light", out))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_rgb_output_has_three_channels(project):
    root, params = project
    rgb = dataclasses.replace(params, render=dataclasses.replace(params.render, color="rgb", workers=1))
    render_set(rgb, RenderJob("faces", "iid", root / "iid-rgb"))
    img = image(root / "iid-rgb", labels(root / "iid-rgb")[0]["file"])
    assert img.shape == (32, 32, 3)


def test_contact_sheet_tiles_every_mesh(project):
    from assets.catalog import open_catalog
    from render.preview import contact_sheet

    root, params = project
    ds = params.dataset("faces")
    sheet = contact_sheet(open_catalog(ds.mesh_dir()), params, ds, root / "sheet.png")
    img = cv2.imread(str(sheet), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (2 * 128, 3 * 128)  # 5 meshes -> 3 columns x 2 rows of 128 px
    cells = [img[r * 128 + 20:(r + 1) * 128, c * 128:(c + 1) * 128] for r in range(2) for c in range(3)]
    assert all((cell > 0).mean() > 0.1 for cell in cells[:5]) and cells[5].max() == 0


def test_metallic_finish_renders_unlike_a_matte_one_of_the_same_albedo(tmp_path):
    """Per-vertex roughness and metallic reach Cycles: from PLY files through the production render path."""
    import multiprocessing

    from assets.mesh import DEFAULT_FINISH, Mesh, write_ply
    from render.plan import Frame
    from render.scene import SceneSpec
    from tests.render_fixtures import blob

    base = blob(0)
    finishes = {"none": None, "default": DEFAULT_FINISH, "metal": (0.3, 1.0), "matte_metal": (1.0, 1.0)}
    meshes = {}
    for k, (name, finish) in enumerate(finishes.items()):
        f = None if finish is None else np.tile(np.array(finish, dtype=np.float32), (len(base.vertices), 1))
        write_ply(tmp_path / f"{name}.ply", Mesh(base.vertices, base.faces, base.colors, f))
        meshes[k] = str(tmp_path / f"{name}.ply")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params()))
    params = load_params(tmp_path / "params.yaml")
    ds = params.dataset("faces")
    spec = SceneSpec(params.render, ds.camera, ds.light, params.seed)
    frames = [Frame("train", 0, k, k, (30.0, 10.0, -40.0)) for k in meshes]
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # Blender in its own process, as in production
        pngs = pool.apply(worker.render_sweep_bytes, (spec, meshes, frames))
    img = {name: cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE).astype(float)
           for name, png in zip(finishes, pngs)}
    mask = img["none"] > 0
    assert 0.1 < mask.mean() < 0.7
    diff = lambda a, b: np.abs(img[a] - img[b])[mask].mean()  # noqa: E731
    # The default finish written out (0.85 stored as 217/255) renders like a mesh without one.
    assert diff("default", "none") < 1.0
    assert diff("metal", "none") > 8, "a metallic finish must change the shading"
    assert diff("metal", "matte_metal") > 3, "roughness must change the shading"


# ------------------------------------------------------------------------------- the CLI


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=root, capture_output=True, text=True, timeout=120)


def test_cli_acceptance_light_sweeps_byte_identical(project):
    root, _ = project
    for out in ("cli-a", "cli-b"):
        res = cli(root, "render", "--factor", "light", "--dataset", "faces", "--groups", "2", "--steps", "5",
                  "--out", out, *(["--workers", "1"] if out == "cli-b" else []))
        assert res.returncode == 0, res.stderr
    rows = labels(root / "cli-a")
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 10 and len(list((root / "cli-a" / "train").glob("*.png"))) == 10
    assert len(rows) == 10 + 5 * 1  # test_groups: 1
    for g in ("0", "1"):
        sweep = [r for r in train if r["group"] == g]
        assert len({r["light"] for r in sweep}) == 5
        assert len({(r["azimuth"], r["elevation"], r["mesh"]) for r in sweep}) == 1
    assert folder_bytes(root / "cli-a") == folder_bytes(root / "cli-b")


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """Projects whose inputs are bad: corrupt meshes; a folder source that does not exist."""
    root = tmp_path_factory.mktemp("broken")
    make_project(root)
    for ply in (root / "data/meshes/faces").glob("*.ply"):
        ply.write_bytes(ply.read_bytes()[:-10])  # header intact, body cut short
    raw = raw_params()
    raw["datasets"]["faces"]["source"] = {"kind": "folder", "path": "no/such/folder"}
    (root / "folder.yaml").write_text(yaml.safe_dump(raw))
    return root


def run_bad(root: Path, args: list[str], words: str) -> None:
    res = cli(root, *args, "--out", "out")
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and words in res.stderr, res.stderr
    assert not (root / "out").exists()


@pytest.mark.parametrize("args, words", [
    (["--factor", "bogus"], "unknown factor 'bogus'"),
    (["--factor", "light", "--dataset", "cars"], "unknown dataset 'cars'"),
    (["--factor", "light", "--range", "10", "-10"], "min 10 > max -10"),
    (["--factor", "light", "--steps", "1"], "a sweep needs at least 2 steps"),
    (["--factor", "light", "--size", "4"], "render.size: is 4"),
    (["--factor", "intrinsic", "--range", "0", "1"], "--range applies to"),
])
def test_cli_bad_arguments_exit_2_with_one_line_and_write_nothing(tmp_path, args, words):
    # A fresh checkout: no meshes yet, so not even the meshes may be generated for a bad request.
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params()))
    run_bad(tmp_path, ["render"] + args, words)
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


def test_cli_unreadable_mesh_exits_2_and_writes_nothing(broken):
    run_bad(broken, ["render", "--factor", "light"], "truncated or foreign PLY")


def test_cli_missing_mesh_folder_exits_2_and_writes_nothing(broken):
    run_bad(broken, ["--params", "folder.yaml", "render", "--factor", "light"], "no/such/folder' does not exist")


def test_gpu_without_a_gpu_is_a_one_line_error_before_any_write(project):
    root, _ = project
    raw = raw_params(device="gpu")
    (root / "gpu.yaml").write_text(yaml.safe_dump(raw))
    res = cli(root, "--params", "gpu.yaml", "render", "--factor", "light", "--out", "gpu-out")
    if res.returncode == 0:
        pytest.skip("this machine has a GPU: the no-GPU error path cannot be exercised here")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "finds no GPU" in res.stderr, res.stderr
    assert not (root / "gpu-out").exists()


def test_killed_render_resumes_without_redoing_finished_images(project):
    root, _ = project
    args = CLI + ["render", "--factor", "azimuth", "--groups", "6", "--steps", "6", "--out", "killed"]
    proc = subprocess.Popen(args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    out = root / "killed"
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("train/*.png"))) < 8 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # driver and its workers, mid-render
        proc.wait()
    survivors = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    assert 8 <= len(survivors) < 42 and not (out / LABELS_FILE).exists()
    for p in survivors:
        assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape == (32, 32)  # no half-written PNG
    res = cli(root, "render", "--factor", "azimuth", "--groups", "6", "--steps", "6", "--out", "killed")
    assert res.returncode == 0, res.stderr
    assert len(labels(out)) == 42 and len(list(out.rglob("*.png"))) == 42
    assert all(p.stat().st_mtime_ns == t for p, t in survivors.items())
    assert not list(out.rglob(durable.TEMPORARY))


def test_a_truncated_png_in_a_finished_set_is_rendered_again_and_nothing_else(project):
    root, _ = project
    args = ["render", "--factor", "light", "--groups", "2", "--steps", "4", "--out", "cut"]
    assert cli(root, *args).returncode == 0
    out = root / "cut"
    before = folder_bytes(out)
    victim = out / labels(out)[3]["file"]
    victim.write_bytes(before[labels(out)[3]["file"]][:200])  # a copy or a disk that failed mid-file
    others = {p: p.stat().st_mtime_ns for p in out.rglob("*.png") if p != victim}
    res = cli(root, *args)
    assert res.returncode == 0, res.stderr
    assert "1 incomplete PNGs" in res.stderr and labels(out)[3]["file"] in res.stderr, res.stderr
    assert folder_bytes(out) == before
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())


def test_a_finished_set_says_so_and_renders_nothing(project):
    root, _ = project
    args = ["render", "--factor", "light", "--groups", "2", "--steps", "4", "--out", "done"]
    assert cli(root, *args).returncode == 0
    mtimes = {p: p.stat().st_mtime_ns for p in (root / "done").rglob("*.png")}
    res = cli(root, *args)
    assert res.returncode == 0, res.stderr
    assert f"faces/light: all {len(mtimes)} images already rendered in done" in res.stderr, res.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())


def test_gpu_without_a_gpu_fails_before_the_meshes_are_generated(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params(device="gpu")))
    res = cli(tmp_path, "render", "--factor", "light", "--out", "gpu-out")
    if res.returncode == 0:
        pytest.skip("this machine has a GPU: the no-GPU error path cannot be exercised here")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "finds no GPU" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no data/meshes either


def _plant_and_render(spec, meshes, frames, victim: str) -> list[bytes]:
    """In a worker: plant a symlink where a predictable scratch name would be, then render."""
    planted = [os.path.join(folder, f"dcign-render-{os.getpid()}.png") for folder in ("/dev/shm", tempfile.gettempdir())]
    for link in planted:
        with contextlib.suppress(OSError):
            os.symlink(victim, link)
    try:
        return worker.render_sweep_bytes(spec, meshes, frames)
    finally:
        for link in planted:
            with contextlib.suppress(OSError):
                os.unlink(link)


def test_render_scratch_file_cannot_be_planted(project, tmp_path):
    root, params = project
    from assets.catalog import open_catalog
    from render.plan import Frame

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    ds = params.dataset("faces")
    spec = runner.SceneSpec(params.render, ds.camera, ds.light, params.seed)
    frames = (Frame("train", 0, 0, 0, (0.0, 0.0, 0.0)),)
    meshes = {0: str(open_catalog(root / ds.mesh_dir()).path(0))}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        (png,) = pool.apply(_plant_and_render, (spec, meshes, frames, str(victim)))
    assert png.startswith(b"\x89PNG") and victim.read_text() == "keep me"


def test_cli_refuses_a_folder_it_did_not_make(project):
    root, _ = project
    (root / "theirs").mkdir()
    (root / "theirs" / "data.bin").write_bytes(b"x")
    res = cli(root, "render", "--factor", "light", "--out", "theirs")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "not made by `render`" in res.stderr
    assert [p.name for p in (root / "theirs").iterdir()] == ["data.bin"]


def test_every_option_is_in_help():
    res = subprocess.run(CLI + ["render", "--help"], capture_output=True, text=True, cwd=ROOT)
    for option in ("--factor", "--dataset", "--groups", "--steps", "--range", "--size", "--samples",
                   "--workers", "--out", "--seed"):
        assert option in res.stdout


def test_flat_fill_has_no_sampling_grain_where_the_world_fill_has(tmp_path):
    """`light.fill: flat` shades the fill as albedo x ambient without sampling: at 4 spp it matches 64 spp,
    while the world fill's ambient occlusion under an overhang is grainy (the faces' jaw above shoulders)."""
    import dataclasses
    import multiprocessing

    from assets.geometry import merge
    from assets.mesh import Mesh, write_ply
    from render.plan import Frame
    from render.scene import SceneSpec
    from tests.render_fixtures import blob

    head = blob(0)
    plate = Mesh(np.array([[-1.0, -1.0, -0.2], [1.0, -1.0, -0.2], [1.0, 1.0, -0.2], [-1.0, 1.0, -0.2]]) * [1, 1, 1],
                 np.array([[0, 1, 2], [0, 2, 3]]), np.full((4, 3), 0.6))
    head = Mesh(head.vertices + [0, 0, 0.35], head.faces, head.colors)
    write_ply(tmp_path / "scene.ply", merge([head, plate]))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params(max_bounces=0, size=64)))
    params = load_params(tmp_path / "params.yaml")
    ds = params.dataset("faces")
    frames = [Frame("train", 0, 0, 0, (20.0, 5.0, 60.0))]
    images = {}
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # Blender in its own process, as in production
        for fill in ("world", "flat"):
            for spp in (4, 64):
                spec = SceneSpec(dataclasses.replace(params.render, samples=spp),
                                 ds.camera, dataclasses.replace(ds.light, fill=fill, ambient=0.3), params.seed)
                (png,) = pool.apply(worker.render_sweep_bytes, (spec, {0: str(tmp_path / "scene.ply")}, frames))
                images[fill, spp] = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE).astype(float)
    # inside the object, away from its silhouette (anti-aliasing differs there at any fill)
    mask = cv2.erode((images["world", 64] > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    grain = {fill: np.abs(images[fill, 4] - images[fill, 64])[mask].mean() for fill in ("world", "flat")}
    assert grain["world"] > 2.5, grain  # the world fill's occlusion is sampled: grainy at 4 spp
    assert grain["flat"] < 0.4 * grain["world"], grain  # what remains is the sun's soft shadow edge
    # the fill still lights what the sun does not reach (the plate under the blob's shadow)
    assert images["flat", 64][mask].min() > 20 and images["world", 64][mask].min() > 0
