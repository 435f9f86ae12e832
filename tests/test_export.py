"""`export`: Hugging Face datasets and WebDataset round trips against the shards, passes, determinism, the
dataset card, and bad input (one line, exit 2, nothing written). Shards come from synthetic renders packed
by the real `pack_dataset` (fixtures/renders.py), so no Blender is needed."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder never needs the Hub; fail fast rather than wait

from click.testing import CliRunner  # noqa: E402

import cli  # noqa: E402
from config import SPLITS, ShardSettings, load_params  # noqa: E402
from tests.render_fixtures import FACTORS, RENDER_SETS  # noqa: E402
from durable import PARTIAL_MARK  # noqa: E402
from pipeline.card import FOLDER_LICENCE, GENERATED_LICENCE  # noqa: E402
from pipeline.export import MARKER, export_dataset, git_commit  # noqa: E402
from pipeline.loader import open_split  # noqa: E402
from pipeline.npzfile import open_members, write_npz  # noqa: E402
from pipeline.shards import MANIFEST, ShardError, pack_dataset, sha256  # noqa: E402
from fixtures.renders import ROOT, tiny_dataset, write_renders  # noqa: E402

TINY = ROOT / "profiles" / "tiny.yaml"
SIZE = 32  # the tiny profile's render.size: the export checks the shards against params.yaml
TWO_GROUPS = 2 * 4 * SIZE * SIZE / 2**20  # shard.max_mb that puts 2 sweeps in a shard: sweep ids span shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    ds = tiny_dataset()
    write_renders(root, ds, size=SIZE)
    pack_dataset(ds, ShardSettings(max_mb=TWO_GROUPS), root, root / "shards", progress=False)
    return root / "shards"


@pytest.fixture(scope="module")
def params():
    return load_params(TINY)


def export(params, shards, fmt, out, **kw):
    kw.setdefault("mesh_dir", shards.parent / "no-meshes")
    return export_dataset(params, "faces", fmt, out, shard_dir=shards, progress=False, **kw)


def expected_rows(shards: Path, split: str) -> dict[tuple[str, int, int], tuple]:
    """(set, sweep, position) -> (image, labels, mesh), read through the project's own loader."""
    arrays = open_split(shards, split)
    rows = {}
    for name in RENDER_SETS:
        for sweep, (images, labels, mesh) in enumerate(arrays.sweeps(name)):
            for k in range(len(images)):
                rows[(name, sweep, k)] = (images[k], labels[k], int(mesh[k]))
    return rows


def check_rows(shards: Path, split: str, got: list[tuple[tuple, np.ndarray, list, int]]) -> None:
    expected = expected_rows(shards, split)
    assert [key for key, *_ in got] == list(expected)  # every image once, in sweep order
    for key, image, labels, mesh in got:
        image0, labels0, mesh0 = expected[key]
        np.testing.assert_array_equal(image, image0, err_msg=str(key))
        assert np.float32(labels).tolist() == labels0.tolist() and mesh == mesh0, key


# ------------------------------------------------------------------------------ round trips


def hf_rows(split_ds) -> list:
    return [((r["set"], r["sweep"], r["position"]), np.array(r["image"]), [r[f] for f in FACTORS], r["mesh"])
            for r in split_ds]


def test_hf_round_trip_load_from_disk_and_load_dataset(params, shards, tmp_path):
    import datasets

    out = tmp_path / "hf"
    result = export(params, shards, "hf", out)
    assert result.images == 96 and (out / "dataset_dict.json").is_file()
    for loaded in (datasets.load_from_disk(str(out)),
                   datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))):
        assert isinstance(loaded, datasets.DatasetDict) and set(loaded) == set(SPLITS)
        for split in SPLITS:
            features = loaded[split].features
            assert isinstance(features["image"], datasets.Image)
            assert all(features[f].dtype == "float32" for f in FACTORS)
            assert features["mesh"].dtype == "int32"
            check_rows(shards, split, hf_rows(loaded[split]))
            assert set(loaded[split]["mesh_file"]) == {""}  # generated meshes have no source file


def test_webdataset_round_trip_and_grouping(params, shards, tmp_path):
    import webdataset as wds

    out = tmp_path / "wds"
    export(params, shards, "webdataset", out, tar_mb=0.05)  # a few sweeps per tar
    for split in SPLITS:
        tars = sorted((out / split).glob("*.tar"))
        assert len(tars) > 1 and tars[0].name == f"{split}-000000.tar"
        samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode("l8"))
        got = [((s["json"]["set"], s["json"]["sweep"], s["json"]["position"]), s["png"],
                [s["json"][f] for f in FACTORS], s["json"]["mesh"]) for s in samples]
        check_rows(shards, split, got)
        assert {s["json"]["split"] for s in samples} == {split}
        assert all(s["__key__"] == "{set}-{sweep:06d}-{position:03d}".format(**s["json"]) for s in samples)
        tar_of_sweep = {}
        for s in samples:  # a sweep is never split across tars: a streaming reader gets it whole
            assert tar_of_sweep.setdefault((s["json"]["set"], s["json"]["sweep"]), s["__url__"]) == s["__url__"]


def test_webdataset_folder_also_loads_with_load_dataset(params, shards, tmp_path):
    """The card's `configs` point the `datasets` library's webdataset reader at the tars."""
    import datasets

    out = tmp_path / "wds"
    export(params, shards, "webdataset", out, tar_mb=0.05)
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    for split in SPLITS:
        got = [((r["json"]["set"], r["json"]["sweep"], r["json"]["position"]), np.array(r["png"]),
                [r["json"][f] for f in FACTORS], r["json"]["mesh"]) for r in loaded[split]]
        check_rows(shards, split, got)


def test_webdataset_tars_are_byte_identical_for_the_same_shards(params, shards, tmp_path):
    export(params, shards, "webdataset", tmp_path / "a", tar_mb=0.05)
    time.sleep(1.1)  # tar mtimes have 1 s resolution: a clock-stamped member would differ now
    export(params, shards, "webdataset", tmp_path / "b", tar_mb=0.05)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert any(f.suffix == ".tar" for f in files)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_rgb_renders_keep_their_channel_order(params, tmp_path):
    """OpenCV encodes BGR: a swapped red and blue would pass every gray test."""
    import datasets
    import webdataset as wds

    ds = tiny_dataset()
    write_renders(tmp_path, ds, size=SIZE, channels=3, sets=RENDER_SETS)
    pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "shards", progress=False)
    rgb = dataclasses.replace(params, render=dataclasses.replace(params.render, color="rgb"))
    export(rgb, tmp_path / "shards", "hf", tmp_path / "hf")
    export(rgb, tmp_path / "shards", "webdataset", tmp_path / "wds")
    check_rows(tmp_path / "shards", "test", hf_rows(datasets.load_from_disk(str(tmp_path / "hf"))["test"]))
    samples = wds.WebDataset(sorted(str(t) for t in (tmp_path / "wds" / "test").glob("*.tar")),
                             shardshuffle=False).decode("rgb8")
    check_rows(tmp_path / "shards", "test", [((s["json"]["set"], s["json"]["sweep"], s["json"]["position"]), s["png"],
                                              [s["json"][f] for f in FACTORS], s["json"]["mesh"]) for s in samples])


# ------------------------------------------------------------------------------ passes


PASS_SHAPES = {"depth": ((), np.float32), "normal": ((3,), np.float32), "mask": ((), np.uint8)}


@pytest.fixture(scope="module")
def shards_with_passes(shards, tmp_path_factory) -> Path:
    """A copy of the shards with the passes contract's extra members, added as the packer will add them."""
    copy = tmp_path_factory.mktemp("passes") / "faces"
    raw = json.loads((shards / MANIFEST).read_text())
    for entry in raw["shards"]:
        arrays = {k: np.array(v) for k, v in open_members(shards / entry["path"]).items()}
        g, k = arrays["mesh"].shape
        rng = np.random.default_rng(zlib.crc32(entry["path"].encode()))
        for name, (tail, dtype) in PASS_SHAPES.items():
            values = rng.uniform(0, 5, (g, k, SIZE, SIZE) + tail)
            arrays[name] = values.astype(dtype) if dtype != np.uint8 else (values > 2.5).astype(np.uint8)
        arrays["K"] = rng.normal(size=(g, k, 3, 3)).astype(np.float32)
        arrays["world_to_camera"] = rng.normal(size=(g, k, 4, 4)).astype(np.float32)
        path = copy / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, arrays)
        entry["bytes"], entry["sha256"] = path.stat().st_size, sha256(path)
    raw["passes"] = list(PASS_SHAPES)
    (copy / MANIFEST).write_text(json.dumps(raw))
    return copy


def expected_extras(shards: Path, split: str) -> dict[tuple[str, int, int], dict[str, np.ndarray]]:
    raw = json.loads((shards / MANIFEST).read_text())
    counters, out = {}, {}
    for entry in raw["shards"]:
        if entry["split"] != split:
            continue
        members = open_members(shards / entry["path"])
        for g in range(entry["groups"]):
            sweep = counters[entry["factor"]] = counters.get(entry["factor"], -1) + 1
            for k in range(entry["steps"]):
                out[(entry["factor"], sweep, k)] = {n: np.array(members[n][g, k]) for n in
                                                   ("depth", "normal", "mask", "K", "world_to_camera")}
    return out


def test_passes_round_trip_hf(params, shards_with_passes, tmp_path):
    import datasets

    out = tmp_path / "hf"
    export(params, shards_with_passes, "hf", out)
    loaded = datasets.load_from_disk(str(out))
    features = loaded["train"].features
    assert list(features)[-5:] == ["depth", "normal", "mask", "K", "world_to_camera"]
    assert features["depth"] == datasets.Array2D((SIZE, SIZE), "float32")
    assert features["normal"] == datasets.Array3D((SIZE, SIZE, 3), "float32")
    assert features["mask"] == datasets.Array2D((SIZE, SIZE), "uint8")
    assert features["K"] == datasets.Array2D((3, 3), "float32")
    for split in SPLITS:
        check_rows(shards_with_passes, split, hf_rows(loaded[split]))
        expected = expected_extras(shards_with_passes, split)
        # Stored as the shards hold them (datasets' numpy format widens integers to int64 when read).
        assert str(loaded[split].data.schema.field("mask").type.storage_type) == "list<item: list<item: uint8>>"
        for row in loaded[split].with_format("numpy"):
            want = expected[(str(row["set"]), int(row["sweep"]), int(row["position"]))]
            for name, array in want.items():
                assert row[name].dtype == array.dtype or name == "mask"
                np.testing.assert_array_equal(row[name], array)
    card = (out / "README.md").read_text()
    assert "| depth | ground-truth pass, float32 [32, 32] |" in card and "| K | per-image array, float32 [3, 3] |" in card


def test_passes_round_trip_webdataset(params, shards_with_passes, tmp_path):
    import webdataset as wds

    out = tmp_path / "wds"
    export(params, shards_with_passes, "webdataset", out)
    for split in SPLITS:
        expected = expected_extras(shards_with_passes, split)
        samples = list(wds.WebDataset(sorted(str(t) for t in (out / split).glob("*.tar")), shardshuffle=False).decode("l8"))
        assert len(samples) == len(expected)
        for s in samples:
            want = expected[(s["json"]["set"], s["json"]["sweep"], s["json"]["position"])]
            for name, array in want.items():
                got = s[f"{name.lower()}.npy"]  # WebDataset lowercases suffixes: the tar holds k.npy
                assert got.dtype == array.dtype
                np.testing.assert_array_equal(got, array)


def test_a_pass_listed_in_the_manifest_but_missing_is_one_line(params, shards_with_passes, tmp_path):
    copy = tmp_path / "faces"
    raw = json.loads((shards_with_passes / MANIFEST).read_text())
    for entry in raw["shards"]:
        (copy / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        (copy / entry["path"]).write_bytes((shards_with_passes / entry["path"]).read_bytes())
    last = raw["shards"][-1]
    arrays = {k: np.array(v) for k, v in open_members(copy / last["path"]).items() if k != "mask"}
    write_npz(copy / last["path"], arrays)
    last["bytes"], last["sha256"] = (copy / last["path"]).stat().st_size, sha256(copy / last["path"])
    (copy / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=rf"{last['path']}: 'mask' is missing, expected uint8") as err:
        export(params, copy, "webdataset", tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# ------------------------------------------------------------------------------ the card


def test_card_contents_and_contact_sheet(params, shards, tmp_path):
    out = tmp_path / "hf"
    export(params, shards, "hf", out)
    text = (out / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "train/*.arrow"},
                                                 {"split": "test", "path": "test/*.arrow"}]
    for factor, kind, (lo, hi) in (("azimuth", "camera_azimuth", (-90, 90)), ("elevation", "camera_elevation", (-20, 20)),
                                   ("light", "light_azimuth", (-80, 80))):
        assert f"| {factor} | {kind} (degrees) | {lo} .. {hi} | {lo} .. {hi} |" in text
    assert "96 images; meshes: 6 in train, 4 in test" in text
    assert "| train | azimuth | 3 | 12 |" in text and "| test | iid | 2 | 8 |" in text
    assert "- seed: 0\n" in text and "4 samples per pixel" in text and "field of view 30 degrees" in text
    commit = git_commit()
    assert len(commit) == 40 and f"commit: `{commit}`" in text  # this test runs in the project's checkout
    assert "procedurally generated by this project's assets/faces.py" in text and f"- licence: {GENERATED_LICENCE}" in text
    assert "](contact-sheet.png)" in text
    sheet = cv2.imread(str(out / "contact-sheet.png"), cv2.IMREAD_UNCHANGED)
    assert sheet is not None and sheet.shape[0] == 4 * 2 * 64  # 2 sweeps of each of 4 types, 32 px shown at 64
    marker = json.loads((out / MARKER).read_text())
    assert marker["export_format"] == "hf" and marker["commit"] == commit
    assert sorted(marker["files"]) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                                             if p.is_file() and p.name != MARKER)


def test_git_commit_outside_a_checkout_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_folder_meshes_give_their_files_and_the_users_licence(params, shards, tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    index = {"format": 1, "dataset": "faces", "source": {"kind": "folder", "path": "my_heads"},
             "meshes": [{"id": i, "file": f"{i:04d}.ply", "split": "train" if i < 6 else "test",
                         "params": {"source_file": f"head{i}.obj"}} for i in range(10)]}
    (meshes / "index.json").write_text(json.dumps(index))
    out = tmp_path / "wds"
    export(params, shards, "webdataset", out, mesh_dir=meshes)
    text = (out / "README.md").read_text()
    assert "the user's mesh files in the folder `my_heads`" in text and f"- licence: {FOLDER_LICENCE}" in text
    import webdataset as wds

    for s in wds.WebDataset(sorted(str(t) for t in (out / "test").glob("*.tar")), shardshuffle=False).decode("l8"):
        assert s["json"]["mesh_file"] == f"head{s['json']['mesh']}.obj"


# ------------------------------------------------------------------------------ the command line


def run_cli(tmp_path, *args):
    """`export` in process (click's runner); params are the tiny profile."""
    return CliRunner().invoke(cli.main, ["--params", str(TINY), "export", *args])


def one_error_line(result) -> bool:
    lines = result.stderr.strip().splitlines()
    return result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr


def tree(path: Path) -> dict:
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} if path.exists() else {}


@pytest.mark.parametrize("case", ["dataset", "format", "shards", "foreign", "file"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(shards, tmp_path, case):
    out = tmp_path / "out"
    args = {"dataset": ["--dataset", "nope", "--format", "hf"],
            "format": ["--dataset", "faces", "--format", "parquet"],
            "shards": ["--dataset", "faces", "--format", "hf"],
            }.get(case, ["--dataset", "faces", "--format", "webdataset"])
    source = tmp_path / "missing" if case == "shards" else shards
    if case == "foreign":
        out.mkdir()
        (out / "thesis.tex").write_text("months of work")
    if case == "file":
        out = tmp_path / "a-file"
        out.write_text("mine")
    before = tree(tmp_path)
    result = run_cli(tmp_path, *args, "--out", str(out), "--shards", str(source))
    assert one_error_line(result), result.stderr
    assert tree(tmp_path) == before and not out.with_name(out.name + ".partial").exists()
    expected = {"dataset": "unknown dataset 'nope'", "format": "unknown export format 'parquet'",
                "shards": "manifest.json: not found", "foreign": "was not made by `export` (no export.json)",
                "file": "a-file' is a file"}[case]
    assert expected in result.stderr


def test_a_corrupt_shard_keeps_the_previous_export(params, shards, tmp_path):
    copy = tmp_path / "faces"
    for p in shards.rglob("*"):
        if p.is_file():
            (copy / p.relative_to(shards)).parent.mkdir(parents=True, exist_ok=True)
            (copy / p.relative_to(shards)).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    export(params, copy, "webdataset", out)
    before = tree(out)
    last = json.loads((copy / MANIFEST).read_text())["shards"][-1]["path"]  # read after others were written
    data = bytearray((copy / last).read_bytes())
    data[open_members(copy / last)["images"].offset + 3] ^= 0xFF
    (copy / last).write_bytes(bytes(data))
    result = run_cli(tmp_path, "--dataset", "faces", "--format", "hf", "--out", str(out), "--shards", str(copy))
    # Every shard is checked before the export starts: one line, no progress bar, nothing written.
    assert one_error_line(result) and "shard checksum does not match" in result.stderr
    assert tree(out) == before and not (tmp_path / "out.partial").exists()


def test_reexport_replaces_our_export_but_not_a_file_put_in_it(params, shards, tmp_path):
    out = tmp_path / "out"
    export(params, shards, "webdataset", out)
    export(params, shards, "hf", out)  # our own export: replaced whole, the tars are gone
    assert (out / "dataset_dict.json").is_file()
    assert not list(out.rglob("*.tar")) and json.loads((out / MARKER).read_text())["export_format"] == "hf"
    (out / "notes.md").write_text("mine")
    result = run_cli(tmp_path, "--dataset", "faces", "--format", "hf", "--out", str(out), "--shards", str(shards))
    assert one_error_line(result) and "holds 1 files its export.json does not list (e.g. notes.md)" in result.stderr
    assert (out / "notes.md").read_text() == "mine"
    # Our own leftover build folder (a killed export) is cleared and the export goes on.
    (out / "notes.md").unlink()
    leftover = tmp_path / "out.partial"
    leftover.mkdir()
    (leftover / PARTIAL_MARK).touch()
    (leftover / "half.tar").write_bytes(b"x")
    export(params, shards, "hf", out)
    assert not leftover.exists()


def test_cli_export_in_a_subprocess(shards, tmp_path):
    (tmp_path / "params.yaml").write_text(TINY.read_text())
    out = tmp_path / "exported"
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "export", "--dataset", "faces", "--format", "webdataset",
                          "--out", str(out), "--shards", str(shards)], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"faces: 96 images -> {out} (webdataset)\n"
    assert "export faces (webdataset)" in run.stderr  # the progress bar
    assert (out / "README.md").is_file() and (out / MARKER).is_file()


def test_a_missing_library_is_one_line_naming_the_requirements_file(shards, tmp_path):
    # `None` in sys.modules makes `import datasets` fail as it does where the package is not installed.
    code = "import sys; sys.modules['datasets'] = None; import cli; cli.main()"
    run = subprocess.run([sys.executable, "-c", code, "--params", str(TINY), "export", "--dataset", "faces", "--format",
                          "hf", "--out", str(tmp_path / "out"), "--shards", str(shards)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("error: export --format hf needs the `datasets` library") and "requirements-export.txt" in run.stderr
    assert not (tmp_path / "out").exists()
