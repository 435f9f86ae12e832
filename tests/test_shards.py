"""Packing renders into shards: round trip, layout, determinism, size limit, and corrupt-shard errors."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from config import SPLITS, ShardSettings
from tests.render_fixtures import RENDER_SETS
from pipeline.loader import open_split
from pipeline.npzfile import open_members, write_npz
from durable import PARTIAL_MARK, FolderError
from pipeline.shards import MANIFEST, ShardError, pack_dataset, read_image, read_manifest, sha256, verify_dir
from fixtures.renders import ROOT, TEST_MESHES, TRAIN_MESHES, pixels, tiny_dataset, write_renders


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Fake faces renders packed with a limit small enough that each set spans several shards."""
    root = tmp_path_factory.mktemp("renders")
    ds = tiny_dataset()
    write_renders(root, ds)
    out = root / "shards"
    manifest = pack_dataset(ds, ShardSettings(max_mb=2 * 4 * 16 * 16 / 2**20), root, out, progress=False)
    return root, ds, out, manifest


def csv_rows(render_dir: Path) -> list[dict]:
    with open(render_dir / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_round_trip_images_and_labels_aligned(packed):
    root, ds, out, _ = packed
    for split in SPLITS:
        arrays = open_split(out, split)
        for name in RENDER_SETS:
            rows = [r for r in csv_rows(ds.render_dir(name, root)) if r["split"] == split]
            images, labels, mesh = [], [], []
            for sweep_images, sweep_labels, sweep_mesh in arrays.sweeps(name):
                images += list(sweep_images)
                labels += list(sweep_labels)
                mesh += list(sweep_mesh)
            assert len(images) == len(rows) > 0
            for row, image, label, m in zip(rows, images, labels, mesh):
                np.testing.assert_array_equal(image, pixels(name, row["file"], 16, 1))
                assert label.tolist() == [np.float32(row[k]) for k in ("azimuth", "elevation", "light")]
                assert m == int(row["mesh"])


def test_layout_and_manifest(packed):
    _, ds, out, manifest = packed
    on_disk = read_manifest(out)
    assert on_disk == manifest
    assert (on_disk.dataset, on_disk.image_size, on_disk.channels) == ("faces", (16, 16), 1)
    # 2 groups per shard at this limit, so 3 training sweeps take two shards.
    light = on_disk.select("train", "light")
    assert [(e.path, e.groups) for e in light] == [("train/light-0000.npz", 2), ("train/light-0001.npz", 1)]
    present = {(e.split, e.factor) for e in on_disk.shards}
    assert present == {(s, f) for s in SPLITS for f in RENDER_SETS}
    for entry in on_disk.shards:
        path = out / entry.path
        assert sha256(path) == entry.sha256 and path.stat().st_size == entry.bytes
        with zipfile.ZipFile(path) as zf:  # stored members with a fixed timestamp
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        loaded = np.load(path)  # plain numpy still reads the shards
        assert loaded["images"].shape == (entry.groups, entry.steps, 16, 16)
        assert loaded["labels"].dtype == np.float32 and loaded["mesh"].dtype == np.int32
    assert not list(out.parent.glob("*.partial"))


def test_no_test_mesh_in_a_train_shard(packed):
    _, _, out, _ = packed
    for split, allowed in (("train", TRAIN_MESHES), ("test", TEST_MESHES)):
        meshes = set(open_split(out, split).all_images()[2].tolist())
        assert meshes and meshes <= set(allowed)


def test_arrays_are_memory_mapped(packed):
    _, _, out, _ = packed
    shard = open_split(out, "train", "azimuth").shards[0]
    assert all(isinstance(a, np.memmap) for a in (shard.images, shard.labels, shard.mesh))
    assert all(a.offset % 64 == 0 for a in (shard.images, shard.labels, shard.mesh))


def test_same_renders_give_identical_bytes(packed, tmp_path):
    root, ds, _, first = packed
    time.sleep(2.1)  # zip timestamps have 2 s resolution: a clock-stamped file would differ now
    again = pack_dataset(ds, ShardSettings(max_mb=2 * 4 * 16 * 16 / 2**20), root, tmp_path / "again", progress=False)
    assert again == first
    assert (tmp_path / "again" / MANIFEST).read_bytes() == (root / "shards" / MANIFEST).read_bytes()


def test_rgb_round_trip(tmp_path):
    ds = tiny_dataset()
    write_renders(tmp_path, ds, size=12, channels=3, sets=RENDER_SETS)
    manifest = pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "shards", progress=False)
    assert manifest.channels == 3 and len(manifest.select("train", "azimuth")) == 1
    images, _, _ = next(open_split(tmp_path / "shards", "train", "azimuth").sweeps("azimuth"))
    assert images.shape == (ds.steps, 12, 12, 3)
    np.testing.assert_array_equal(images[0], pixels("azimuth", "train/00000_000.png", 12, 3))
    assert read_image(tmp_path / "faces/azimuth/train/00000_000.png").shape == (12, 12, 3)


# ------------------------------------------------------------------------------ errors


@pytest.fixture
def shard_copy(packed, tmp_path):
    """A private copy of the packed folder that a test may damage."""
    _, _, out, manifest = packed
    copy = tmp_path / "faces"
    for entry in manifest.shards:
        (copy / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (copy / entry.path).write_bytes((out / entry.path).read_bytes())
    (copy / MANIFEST).write_bytes((out / MANIFEST).read_bytes())
    return copy, manifest.select("train", "azimuth")[0]


def test_checksum_mismatch_names_the_file(shard_copy):
    copy, entry = shard_copy
    path = copy / entry.path
    data = bytearray(path.read_bytes())
    offset = open_members(path)["images"].offset
    data[offset + 5] ^= 0xFF  # one pixel: size and layout stay valid, only the checksum can tell
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"{entry.path}: shard checksum does not match") as err:
        open_split(copy, "train")
    assert "\n" not in str(err.value)
    open_split(copy, "train", verify=False)  # opt-out for trusted data: no hashing


def test_truncated_shard_names_the_file(shard_copy):
    copy, entry = shard_copy
    path = copy / entry.path
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ShardError, match=rf"{entry.path}: shard is truncated"):
        open_split(copy, "train", verify=False)


def test_truncated_shard_with_matching_manifest_is_caught_by_layout(shard_copy):
    copy, entry = shard_copy
    path = copy / entry.path
    path.write_bytes(path.read_bytes()[:-100])
    raw = json.loads((copy / MANIFEST).read_text())
    for s in raw["shards"]:
        if s["path"] == entry.path:
            s["bytes"], s["sha256"] = path.stat().st_size, sha256(path)
    (copy / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=rf"{entry.path}: not a readable shard"):
        open_split(copy, "train")


def test_wrong_shapes_name_the_file(shard_copy):
    copy, entry = shard_copy
    path = copy / entry.path
    arrays = {k: np.array(v) for k, v in open_members(path).items()}
    write_npz(path, {**arrays, "labels": arrays["labels"][:, :, :2]})  # a consistent file with 2 label columns
    raw = json.loads((copy / MANIFEST).read_text())
    for s in raw["shards"]:
        if s["path"] == entry.path:
            s["bytes"], s["sha256"] = path.stat().st_size, sha256(path)
    (copy / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=rf"{entry.path}: 'labels' is float32 \[2, 4, 2\], expected float32 \[2, 4, 3\]"):
        verify_dir(copy)


def test_missing_manifest_says_how_to_build_it(tmp_path):
    with pytest.raises(ShardError, match=r"manifest.json: not found; run `python cli.py shard --dataset faces`"):
        open_split(tmp_path / "faces", "train")


@pytest.mark.parametrize("text", ["[1, 2]", '"manifest"', "3", "null"])
def test_a_manifest_that_is_json_but_not_an_object_is_one_line(tmp_path, text):
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / MANIFEST).write_text(text)
    with pytest.raises(ShardError, match=r"is JSON but not a manifest .*; run `python cli.py shard --dataset faces`"):
        read_manifest(tmp_path / "faces")


def test_unfinished_render_set_leaves_no_output(tmp_path):
    ds = tiny_dataset()
    write_renders(tmp_path, ds)
    (ds.render_dir("light", tmp_path) / "labels.csv").unlink()  # the renderer writes it last
    with pytest.raises(ShardError, match=r"renders of set 'light' are missing or unfinished.*--factor light"):
        pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "shards", progress=False)
    assert not (tmp_path / "shards").exists() and not (tmp_path / "shards.partial").exists()


def test_unreadable_png_leaves_previous_shards_intact(packed, tmp_path):
    root, ds, out, _ = packed
    write_renders(tmp_path, ds)
    target = tmp_path / "shards"
    pack_dataset(ds, ShardSettings(), tmp_path, target, progress=False)
    before = (target / MANIFEST).read_bytes()
    (ds.render_dir("elevation", tmp_path) / "test/00001_002.png").write_bytes(b"not a png")
    with pytest.raises(ShardError, match=r"elevation/test/00001_002.png: missing or not a readable image"):
        pack_dataset(ds, ShardSettings(), tmp_path, target, progress=False)
    assert (target / MANIFEST).read_bytes() == before
    assert not (tmp_path / "shards.partial").exists()  # nothing half-packed is left beside it


def test_shard_refuses_an_out_folder_it_did_not_make_and_deletes_nothing(tmp_path):
    ds = tiny_dataset()
    write_renders(tmp_path, ds)
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    with pytest.raises(FolderError, match=r"my-notes exists and was not made by `shard` \(no manifest.json\)"):
        pack_dataset(ds, ShardSettings(), tmp_path, mine, progress=False)
    assert (mine / "thesis.tex").read_text() == "months of work" and sorted(mine.iterdir()) == [mine / "thesis.tex"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FolderError, match="was not made by `shard`"):
        pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "a-file", progress=False)
    # an empty folder, and a shard folder of ours, are fine to (re)place
    (tmp_path / "empty").mkdir()
    pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "empty", progress=False)
    pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "empty", progress=False)
    assert verify_dir(tmp_path / "empty").dataset == ds.name
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--params", str(ROOT / "profiles" / "tiny.yaml"),
                          "shard", "--dataset", "faces", "--out", str(mine)], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and len(run.stderr.strip().splitlines()) == 1
    assert (mine / "thesis.tex").read_text() == "months of work"


def test_shard_never_deletes_a_users_file_put_in_its_folder_or_beside_it(tmp_path):
    ds = tiny_dataset()
    write_renders(tmp_path, ds)
    out = tmp_path / "shards"
    pack_dataset(ds, ShardSettings(), tmp_path, out, progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "train" / "my-analysis.ipynb").write_text("mine")
    with pytest.raises(FolderError, match=r"shards holds 1 files its manifest.json does not list \(e.g. train/my-analysis.ipynb\)"):
        pack_dataset(ds, ShardSettings(), tmp_path, out, progress=False)
    assert (out / "train" / "my-analysis.ipynb").read_text() == "mine"
    assert all(p.read_bytes() == b for p, b in before.items())
    (out / "train" / "my-analysis.ipynb").unlink()
    # A folder named like our build folder but not ours is refused too, not cleared.
    (tmp_path / "shards.partial").mkdir()
    (tmp_path / "shards.partial" / "keep.txt").write_text("mine")
    with pytest.raises(FolderError, match=r"shards.partial exists and was not made by `shard`"):
        pack_dataset(ds, ShardSettings(), tmp_path, out, progress=False)
    assert (tmp_path / "shards.partial" / "keep.txt").read_text() == "mine"
    # Our own leftover build folder (a killed run) is cleared and the run goes on.
    (tmp_path / "shards.partial" / "keep.txt").unlink()
    (tmp_path / "shards.partial" / PARTIAL_MARK).touch()
    (tmp_path / "shards.partial" / "half.npz").write_bytes(b"x")
    pack_dataset(ds, ShardSettings(), tmp_path, out, progress=False)
    assert not (tmp_path / "shards.partial").exists() and verify_dir(out).dataset == ds.name


def test_cli_shard_exit_code_2_on_missing_renders(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "profiles" / "tiny.yaml").read_text())
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "shard", "--dataset", "faces"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().startswith("error: ") and len(run.stderr.strip().splitlines()) == 1
    assert "python cli.py render --factor azimuth --dataset faces" in run.stderr


def test_cli_shard_packs_and_verifies(tmp_path):
    ds = tiny_dataset()
    write_renders(tmp_path / "data" / "renders", ds)
    (tmp_path / "params.yaml").write_text((ROOT / "profiles" / "tiny.yaml").read_text())
    cli = [sys.executable, str(ROOT / "cli.py"), "shard", "--dataset", "faces"]
    run = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert read_manifest(tmp_path / "data/shards/faces").dataset == "faces"
    run = subprocess.run(cli + ["--verify"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and "verified" in run.stdout


def test_a_full_disk_is_one_line_and_keeps_the_finished_shards(tmp_path, monkeypatch):
    """A disk that fills while the new shards are committed: exit 2, one `error: disk full` line, no
    `.partial` left, and the shards of the previous run intact. A full disk cannot be made in a test, so
    the flush of the new folder raises ENOSPC as the kernel would."""
    import errno

    from click.testing import CliRunner

    import cli
    import durable

    (tmp_path / "params.yaml").write_text((ROOT / "profiles" / "tiny.yaml").read_text())
    write_renders(tmp_path / "data" / "renders", tiny_dataset())
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli.main, ["shard", "--dataset", "faces"]).exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "data/shards/faces").rglob("*") if p.is_file()}
    real = durable.flush

    def full(path):
        if Path(path).is_dir():
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path)

    monkeypatch.setattr(durable, "flush", full)
    (tmp_path / "data/renders/faces/light/labels.csv").touch()  # the run must really repack
    result = CliRunner().invoke(cli.main, ["shard", "--dataset", "faces"])
    assert result.exit_code == 2, result.output
    last = result.stderr.rstrip("\n").split("\n")[-1]  # after the progress bar of the packing
    assert last.startswith("error: disk full writing data/shards/faces.partial") and "Traceback" not in result.stderr
    assert not (tmp_path / "data/shards/faces.partial").exists()
    assert {p: p.read_bytes() for p in (tmp_path / "data/shards/faces").rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------------------ ground-truth passes


def write_passes(root: Path, ds, size: int = 16, sets=RENDER_SETS, passes=("depth", "normal", "mask"), seed: int = 0) -> None:
    """Add to `write_renders` output what `render.passes` writes: seeded pass files beside every PNG
    (unique per frame, so alignment can be checked) and each set's cameras.json."""
    import cv2

    from config import RenderSettings
    from render.cameras import CAMERAS_FILE, cameras_json
    from render.plan import PlanRequest, frames_of, plan
    from render.scene import SceneSpec
    from render.worker import npy_bytes

    for name in sets:
        out = ds.render_dir(name, root)
        frames = frames_of(plan(PlanRequest(ds, name, seed, TRAIN_MESHES, TEST_MESHES)))
        for f in frames:
            arrays = fake_passes(name, f.file, size)
            for p in passes:
                if p == "mask":
                    assert cv2.imwrite(str(out / f.pass_file(p)), arrays["mask"] * np.uint8(255))
                else:
                    (out / f.pass_file(p)).write_bytes(npy_bytes(arrays[p]))
        spec = SceneSpec(RenderSettings(size=size, passes=tuple(passes)), ds.camera, ds.light, seed, ds.kinds)
        (out / CAMERAS_FILE).write_bytes(cameras_json(frames, spec))


def fake_passes(name: str, file: str, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([7, *map(ord, f"{name}/{file}")])
    return {"depth": rng.uniform(2, 3, (size, size)).astype(np.float32),
            "normal": rng.normal(size=(size, size, 3)).astype(np.float32),
            "mask": rng.integers(0, 2, (size, size), dtype=np.uint8)}


@pytest.fixture(scope="module")
def packed_passes(tmp_path_factory):
    root = tmp_path_factory.mktemp("passes")
    ds = tiny_dataset()
    write_renders(root, ds)
    write_passes(root, ds)
    out = root / "shards"
    manifest = pack_dataset(ds, ShardSettings(max_mb=2 * 4 * 16 * 16 * 18 / 2**20), root, out, progress=False)
    return root, ds, out, manifest


def test_shards_without_passes_have_no_trace_of_them(packed):
    _, _, out, manifest = packed
    assert manifest.passes == () and "passes" not in json.loads((out / MANIFEST).read_text())
    for entry in manifest.shards:
        with zipfile.ZipFile(out / entry.path) as zf:
            assert zf.namelist() == ["images.npy", "labels.npy", "mesh.npy"]
    assert open_split(out, "train").pass_names == () and open_split(out, "train").passes("azimuth") == {}


def test_shards_carry_the_passes_and_cameras_aligned_with_images(packed_passes):
    from render.cameras import world_to_camera

    root, ds, out, manifest = packed_passes
    raw = json.loads((out / MANIFEST).read_text())
    assert raw["passes"] == ["depth", "normal", "mask"] and manifest.passes == ("depth", "normal", "mask")
    assert read_manifest(out) == manifest
    with zipfile.ZipFile(out / manifest.shards[0].path) as zf:
        assert zf.namelist() == ["images.npy", "labels.npy", "mesh.npy", "depth.npy", "normal.npy", "mask.npy",
                                 "K.npy", "world_to_camera.npy"]
    for split in SPLITS:
        arrays = open_split(out, split)
        for name in RENDER_SETS:
            rows = [r for r in csv_rows(ds.render_dir(name, root)) if r["split"] == split]
            images, labels, _ = arrays.all_images(name)
            passes = arrays.passes(name)
            assert sorted(passes) == ["K", "depth", "mask", "normal", "world_to_camera"]
            assert len(rows) == len(images) == len(passes["depth"]) == len(passes["K"])
            for n, row in enumerate(rows):
                np.testing.assert_array_equal(images[n], pixels(name, row["file"], 16, 1))
                expected = fake_passes(name, row["file"], 16)
                for p in ("depth", "normal", "mask"):
                    np.testing.assert_array_equal(passes[p][n], expected[p])
                    assert passes[p].dtype == expected[p].dtype
                az, el = float(row["azimuth"]), float(row["elevation"])
                np.testing.assert_allclose(passes["world_to_camera"][n], world_to_camera(az, el, ds.camera.distance),
                                           atol=1e-6)
                assert passes["K"].dtype == np.float32 and passes["K"][n][0, 2] == 8.0


def test_shards_with_passes_are_byte_identical_and_respect_max_mb(packed_passes, tmp_path):
    root, ds, out, manifest = packed_passes
    again = pack_dataset(ds, ShardSettings(max_mb=2 * 4 * 16 * 16 * 18 / 2**20), root, tmp_path / "again", progress=False)
    assert [e.sha256 for e in again.shards] == [e.sha256 for e in manifest.shards]
    assert max(e.groups for e in manifest.shards) <= 2  # the limit counts pass bytes, not only images


def test_a_shard_with_a_wrong_pass_shape_names_the_member(packed_passes, tmp_path):
    import shutil

    _, _, out, manifest = packed_passes
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    entry = manifest.shards[0]
    members = {k: np.array(v) for k, v in open_members(copy / entry.path).items()}
    members["normal"] = members["normal"][..., :2]
    write_npz(copy / entry.path, members)
    raw = json.loads((copy / MANIFEST).read_text())
    raw["shards"][0].update(bytes=(copy / entry.path).stat().st_size, sha256=sha256(copy / entry.path))
    (copy / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=r"'normal' is float32 \[.*, 2\], expected float32"):
        verify_dir(copy)


def test_missing_pass_file_or_mixed_sets_are_one_line_and_leave_no_output(tmp_path):
    ds = tiny_dataset()
    write_renders(tmp_path, ds)
    write_passes(tmp_path, ds, sets=[s for s in RENDER_SETS if s != "iid"])
    with pytest.raises(ShardError, match="different render.passes") as err:
        pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "shards", progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "shards").exists()
    write_passes(tmp_path, ds, sets=["iid"])
    victim = next((ds.render_dir("light", tmp_path) / "train").glob("*.depth.npy"))
    victim.unlink()
    with pytest.raises(ShardError, match=f"{victim.name}: depth pass missing"):
        pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "shards", progress=False)
    assert not (tmp_path / "shards").exists()
