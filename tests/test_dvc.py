"""The real pipeline: the tiny profile end to end with `dvc repro` in a temporary git + DVC repository,
then parameter changes must make exactly the dependent stages stale (and run exactly those).

Expectations are computed from stage names: every stage after the renders (`shard@<dataset>`,
`train@<dataset>-<model>`, `evaluate@...`, `report@...`) belongs to the dataset its name starts
with, so stages added to dvc.yaml later are covered automatically.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from config import SPLITS
from tests.render_fixtures import RENDER_SETS
from pipeline.loader import open_split
from pipeline.shards import read_manifest, verify_dir

pytestmark = [pytest.mark.blender, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")]  # inside dvc 3.67

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Not part of a fresh clone's pipeline inputs: outputs, local state, and code no stage runs.
SKIP = {".git", ".venv", ".dvc", ".pytest_cache", "__pycache__", "data", "models", "dvclive", "metrics",
        "plots", "reports", "tmp", "tests", "bench", "docs", "params.yaml", "dvc.lock"}
UPSTREAM = ("assets", "render")


def run(args, cwd, env):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A scratch git + DVC repository holding the project's code and the tiny profile, reproduced."""
    return reproduced(tmp_path_factory.mktemp("repo"), "tiny.yaml")


def reproduced(path: Path, profile: str) -> tuple[Path, dict]:
    """`path` made a git + DVC repository of the project's code with profiles/`profile` as params.yaml,
    after `dvc repro`, committed."""
    shutil.copytree(ROOT, path, dirs_exist_ok=True,
                    ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith((".pyc", ".partial"))])
    shutil.copy(ROOT / "profiles" / profile, path / "params.yaml")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(path.parent / "dvc-site"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    run(["git", "init", "-q"], path, env)
    run([BIN / "dvc", "init", "-q"], path, env)
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-qm", "scratch"], path, env)
    run([BIN / "dvc", "repro"], path, env)
    run(["git", "add", "-A"], path, env)  # dvc.lock and the outputs' .gitignore: the state tests restore
    run(["git", "commit", "-qm", "reproduced"], path, env)
    return path, env


def stages(path) -> list[str]:
    from dvc.repo import Repo

    with contextlib.chdir(path), Repo(".") as r:  # names are relative to the working directory
        return [s.addressing for s in r.index.stages]


def stale(path) -> set[str]:
    from dvc.repo import Repo

    with contextlib.chdir(path), Repo(".") as r:
        return set(r.status())


def later(names) -> set[str]:
    return {n for n in names if n.split("@")[0] not in UPSTREAM}


def downstream(names, dataset: str) -> set[str]:
    return {n for n in later(names) if n.partition("@")[2].split("-")[0] == dataset}


def edit_params(path, change) -> str:
    """Apply `change(dict)` to params.yaml; returns the original text for restoring."""
    original = (path / "params.yaml").read_text()
    raw = yaml.safe_load(original)
    change(raw)
    (path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return original


def test_repro_is_complete_and_clean(repo):
    path, env = repo
    assert json.loads(run([BIN / "dvc", "status", "--json"], path, env)) == {}
    names = stages(path)
    datasets = ("faces", "chairs")
    assert {f"render@{d}" for d in datasets} <= set(names)
    for d in datasets:
        manifest = verify_dir(path / "data" / "shards" / d)  # every checksum matches its file
        present = {(e.split, e.factor) for e in manifest.shards}
        assert present == {(s, f) for s in SPLITS for f in RENDER_SETS}, d
        assert manifest.image_size == (32, 32) and manifest.channels == 1


def test_repro_writes_metrics_codes_figures_and_reports_that_dvc_shows(repo):
    path, env = repo
    (workspace,) = json.loads(run([BIN / "dvc", "metrics", "show", "--json"], path, env)).values()
    metrics = workspace["data"]  # metrics file -> {"data": its values}
    for d in ("faces", "chairs"):
        for m in ("dcign", "vae"):
            assert f"metrics/{d}-{m}.json" in metrics, sorted(metrics)
            values = metrics[f"metrics/{d}-{m}.json"]["data"]
            assert 0 <= values["disentanglement"]["mig"] <= 1 and values["factor_bins"] >= 2
            assert np.load(path / "metrics" / f"{d}-{m}-codes.npz")["codes"].shape[1] == values["latents"]
            assert {p.suffix for p in (path / "plots" / f"{d}-{m}").iterdir()} == {".png", ".gif"}
        report = (path / "reports" / f"{d}.md").read_text()
        assert "DC-IGN" in report and "](" in report  # tables and linked figures


def test_rendered_is_what_the_loader_yields(repo):
    """Real Blender renders: every PNG and its labels.csv row come back from the shards, aligned."""
    path, _ = repo
    import cv2

    for split in SPLITS:
        arrays = open_split(path / "data/shards/faces", split)
        for name in RENDER_SETS:
            render_dir = path / "data/renders/faces" / name
            with open(render_dir / "labels.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if r["split"] == split]
            frames = [fr for sweep in arrays.sweeps(name) for fr in zip(*sweep)]
            assert len(frames) == len(rows) > 0
            for row, (image, label, mesh) in zip(rows, frames):
                np.testing.assert_array_equal(image, cv2.imread(str(render_dir / row["file"]), cv2.IMREAD_UNCHANGED))
                assert label.tolist() == [np.float32(row[k]) for k in ("azimuth", "elevation", "light")]
                assert mesh == int(row["mesh"])
    train_meshes = set(open_split(path / "data/shards/faces", "train").all_images()[2].tolist())
    test_meshes = set(open_split(path / "data/shards/faces", "test").all_images()[2].tolist())
    assert train_meshes and test_meshes and not train_meshes & test_meshes


def test_a_faces_model_is_scored_on_heads_made_elsewhere(repo, tmp_path):
    """Cross-dataset evaluation on the tiny profile: head meshes from outside (OBJ files, Y up, facing +Z,
    as glTF exporters write them) go through the folder source, are rendered and sharded by the CLI, and
    the faces DC-IGN is scored on them with --checkpoint; its own evaluation is left untouched."""
    import trimesh

    from assets import faces

    path, env = repo
    heads = path / "elsewhere"
    heads.mkdir(exist_ok=True)
    to_y_up = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])  # canonical (+Z up, facing -Y) -> Y up, facing +Z
    for i in range(4):
        mesh = faces.build(faces.sample(np.random.default_rng([99, i])))
        trimesh.Trimesh(mesh.vertices @ to_y_up.T, mesh.faces, process=False).export(heads / f"head_{i}.obj")
    raw = yaml.safe_load((path / "params.yaml").read_text())
    other = json.loads(json.dumps(raw["datasets"]["faces"]))
    other.update(source={"kind": "folder", "path": "elsewhere", "up_axis": "Y", "forward_axis": "Z"},
                 meshes={"train": 2, "test": 2})  # intrinsic sweeps need 2 train meshes
    raw["datasets"]["elsewhere"] = other
    params = tmp_path / "params-elsewhere.yaml"  # the repository's params.yaml stays as it is
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    cli = [BIN / "python", "cli.py", "--params", str(params)]
    own = (path / "metrics" / "faces-dcign.json").read_bytes()

    run([*cli, "assets", "--dataset", "elsewhere"], path, env)
    run([*cli, "render", "--dataset", "elsewhere", "--factor", "all"], path, env)
    run([*cli, "shard", "--dataset", "elsewhere"], path, env)
    out = run([*cli, "evaluate", "--dataset", "elsewhere", "--checkpoint", "models/faces-dcign.pt"], path, env)

    metrics = json.loads((path / "metrics" / "elsewhere-from-faces-dcign.json").read_text())
    assert metrics["trained_on"] == "faces" and metrics["dataset"] == "elsewhere"
    assert set(metrics["mesh_names"].values()) == {f"head_{i}.obj" for i in range(4)}
    train_id = {str(i) for i in open_split(path / "data/shards/elsewhere", "train").all_images()[2].tolist()}
    for f in ("azimuth", "elevation", "light"):
        tied = metrics["tied"][f]
        assert tied["latent"] == ("azimuth", "elevation", "light").index(f)  # the latent it was trained to own
        # the model saw none of these meshes: the train split's mesh is scored too
        assert train_id & set(tied["per_mesh"]) and set(tied["per_mesh"]) <= {"0", "1", "2", "3"}
        assert all(0.0 <= v <= 1.0 for v in tied["per_mesh"].values())
        assert tied["per_mesh_mean"] == pytest.approx(np.mean(list(tied["per_mesh"].values())))
    assert "mean over meshes" in out and "head_" in out  # the per-mesh table names the files
    assert (path / "plots" / "elsewhere-from-faces-dcign" / "rerender.png").is_file()
    assert (path / "metrics" / "faces-dcign.json").read_bytes() == own


def test_new_chairs_azimuth_range_stales_the_chairs_renders_only(repo):
    path, _ = repo
    names = stages(path)
    original = edit_params(path, lambda p: p["datasets"]["chairs"]["ranges"].update(azimuth=[-150, 150]))
    try:
        found = stale(path)
    finally:
        (path / "params.yaml").write_text(original)
    assert "render@chairs" in found <= {"render@chairs"} | downstream(names, "chairs"), found


def test_the_train_and_evaluate_matrix_follows_train_models(repo):
    path, _ = repo
    original = edit_params(path, lambda p: p["train"].update(models=["dcign", "vae", "gvae"]))
    try:
        names, found = stages(path), stale(path)
    finally:
        (path / "params.yaml").write_text(original)
    added = {f"{stage}@{d}-gvae" for stage in ("train", "evaluate") for d in ("faces", "chairs")}
    assert added <= set(names) and added <= found
    assert not {n for n in found if n.split("@")[0] in UPSTREAM + ("shard",)}, found  # the data stays
    assert "train@faces-gvae" not in stages(path)  # restored


def test_a_dataset_added_in_params_alone_builds_with_dvc_repro(repo):
    """dvc.yaml takes its datasets from params.yaml: a copy of faces under another name gets every stage."""
    path, env = repo
    before = set(stages(path))
    edit_params(path, lambda p: p["datasets"].update(heads=p["datasets"]["faces"]))
    try:
        added = set(stages(path)) - before
        assert {n.split("@")[0] for n in added} == {"assets", "render", "shard", "train", "evaluate", "report"}, added
        assert all(n.partition("@")[2].startswith("heads") for n in added), added
        run([BIN / "dvc", "repro"], path, env)
        assert (path / "reports" / "heads.md").is_file() and (path / "metrics" / "heads-dcign.json").is_file()
        assert stale(path) == set()
        shown = run([BIN / "dvc", "metrics", "show", "--json"], path, env)
        assert "metrics/heads-dcign.json" in shown  # stage-level metrics: no top-level list to edit
    finally:
        run(["git", "checkout", "--", "."], path, env)
        run([BIN / "dvc", "checkout", "--force"], path, env)
    assert stale(path) == set()


def test_new_image_size_stales_every_render_but_no_assets(repo):
    path, _ = repo
    names = stages(path)
    original = edit_params(path, lambda p: p["render"].update(size=24))
    try:
        found = stale(path)
    finally:
        (path / "params.yaml").write_text(original)
    renders = {n for n in names if n.split("@")[0] == "render"}
    assert renders == {"render@faces", "render@chairs"} and renders <= found <= renders | later(names), found


def test_more_faces_light_sweeps_render_only_the_light_set_and_rerun_downstream(repo, monkeypatch):
    path, env = repo
    names = stages(path)
    before = yaml.safe_load((path / "params.yaml").read_text())["datasets"]["faces"]["groups"]["light"]
    renders = path / "data/renders/faces"
    untouched = {p: p.stat().st_mtime_ns for p in renders.glob("*/*/*.png")}
    edit_params(path, lambda p: p["datasets"]["faces"]["groups"].update(light=before + 1))
    try:
        found = stale(path)
        assert "render@faces" in found and found <= {"render@faces"} | downstream(names, "faces"), found

        from dvc.repo import Repo

        for key in ("PATH", "DVC_NO_ANALYTICS", "DVC_SITE_CACHE_DIR"):
            monkeypatch.setenv(key, env[key])
        with contextlib.chdir(path), Repo(".") as r:
            ran = {s.addressing for s in r.reproduce()}
        assert ran == {"render@faces"} | downstream(names, "faces"), ran
        assert stale(path) == set()
        light = read_manifest(path / "data/shards/faces").select("train", "light")
        assert sum(e.groups for e in light) == before + 1
        # The other sets were found complete and kept (same files); the light set was rendered again.
        kept = {p: t for p, t in untouched.items() if p.parent.parent.name != "light"}
        assert {p: p.stat().st_mtime_ns for p in kept} == kept
        new = set(renders.glob("*/*/*.png")) - set(untouched)
        steps = yaml.safe_load((path / "params.yaml").read_text())["datasets"]["faces"]["steps"]
        assert {p.parent.parent.name for p in new} == {"light"} and len(new) == steps, sorted(new)
    finally:  # back to the reproduced state (from git and DVC's cache), so no test depends on the order
        run(["git", "checkout", "--", "."], path, env)  # params.yaml, dvc.lock and the uncached metrics/plots
        run([BIN / "dvc", "checkout", "--force"], path, env)
    assert stale(path) == set()
    assert sum(e.groups for e in read_manifest(path / "data/shards/faces").select("train", "light")) == before


def test_the_five_factor_profile_reproduces_and_scores_every_factor(tmp_path_factory):
    """profiles/tiny-factors.yaml: the paper's three factors plus the sun's elevation and the albedo's hue,
    declared in params.yaml alone, through every stage; `rerender` sets a declared factor."""
    path, env = reproduced(tmp_path_factory.mktemp("factors"), "tiny-factors.yaml")
    factors = ["azimuth", "elevation", "light", "sun", "hue"]
    assert stale(path) == set() and {n.split("@")[0] for n in stages(path)} == {
        "assets", "render", "shard", "train", "evaluate", "report"}
    header = (path / "data/renders/faces/hue/labels.csv").read_text().splitlines()[0]
    assert header.split(",")[5:] == factors
    manifest = verify_dir(path / "data/shards/faces")
    assert list(manifest.factors) == factors and {e.factor for e in manifest.shards} == {*factors, "intrinsic", "iid"}
    images, labels, _ = next(open_split(path / "data/shards/faces", "train").sweeps("sun"))
    assert labels.shape == (len(images), 5) and len(set(labels[:, 3].tolist())) == len(images)
    for model in ("dcign", "vae"):
        metrics = json.loads((path / "metrics" / f"faces-{model}.json").read_text())
        assert list(metrics["tied"]) == factors == list(metrics["rerender"]) == list(metrics["probe"])
        assert set(metrics["sizes"]["test_sweeps"]) == {*factors, "intrinsic"}
        assert set(metrics["disentanglement"]["factors_used"].split(",")) <= {*factors, "intrinsic"}
        assert {f"traversal-{f}.png" for f in factors} <= {p.name for p in (path / "plots" / f"faces-{model}").iterdir()}
    dcign = json.loads((path / "metrics" / "faces-dcign.json").read_text())
    assert [dcign["tied"][f]["latent"] for f in factors] == [0, 1, 2, 3, 4]  # each owns its latent, in order
    report = (path / "reports" / "faces.md").read_text()
    assert "sun (light_elevation) [0.0, 60.0]" in report and "| hue |" in report
    source = path / "data/renders/faces/hue/test/00000_000.png"
    run([BIN / "python", "cli.py", "rerender", str(source), "--model", "models/faces-dcign.pt", "--factor", "hue",
         "--values", "-90", "0", "90", "--out", "hue.png"], path, env)
    assert (path / "hue.png").is_file()
