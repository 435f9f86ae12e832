"""The benchmark command on tiny real shards: every model x seed trains and evaluates, the report has
one row per model with mean ± sd, an interrupted benchmark resumes without redoing finished runs, and
every model kind's checkpoint re-renders through `rerender`."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import MODEL_KINDS, load_params
from evaluate.benchmark import plan, run_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory):
    from tests.train_fixtures import make_shards

    root = tmp_path_factory.mktemp("bench")
    (root / "build").mkdir()
    params, shard_dir = make_shards(root / "build")
    (root / "data" / "shards").mkdir(parents=True)
    os.symlink(shard_dir, root / "data" / "shards" / "toy")
    params = dataclasses.replace(
        params, train=dataclasses.replace(params.train, models=MODEL_KINDS, seeds=(0, 1), steps=6),
        evaluate=dataclasses.replace(params.evaluate, votes_train=200, votes_eval=100))
    report = run_benchmark(params, "toy", root, progress=False)
    return root, params, report


def test_every_model_and_seed_is_trained_evaluated_and_reported(benchmarked):
    root, params, report = benchmarked
    assert len(plan(params, "toy")) == len(MODEL_KINDS) * 2
    for run in plan(params, "toy"):
        paths = run.paths(params, root)
        assert paths.checkpoint.is_file() and paths.metrics.is_file() and paths.mapping.is_file(), run.name
    text = report.read_text()
    for name in ("DC-IGN", "baseline VAE", "β-VAE", "Ada-GVAE", "Ada-ML-VAE", "GVAE (told the factor)"):
        assert f"| {name} |" in text
    assert " ± " in text and "## Ranking" in text and "seeds 0, 1" in text
    assert (root / "plots" / "benchmark-toy-azimuth.png").stat().st_size > 1000


def test_a_rerun_redoes_no_finished_run(benchmarked):
    root, params, _ = benchmarked
    first = plan(params, "toy")[0].paths(params, root)
    stamps = {p: p.stat().st_mtime_ns for p in (first.checkpoint, first.metrics)}
    run_benchmark(params, "toy", root, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_model_kind_loads_in_rerender(benchmarked, kind, tmp_path):
    root, params, _ = benchmarked
    from tests.train_fixtures import image
    import cv2

    run = next(r for r in plan(params, "toy") if r.model == kind)
    paths = run.paths(params, root)
    source = tmp_path / "in.png"
    cv2.imwrite(str(source), image(0.0, 0.0, 0.0, 1))
    out = tmp_path / "grid.png"
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "rerender", str(source), "--model", str(paths.checkpoint),
                           "--mapping", str(paths.mapping), "--factor", "azimuth", "--values", "-30", "0", "30",
                           "--out", str(out)], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 500


def test_the_benchmark_profile_lists_every_model_and_three_seeds():
    bench = load_params(ROOT / "profiles" / "benchmark.yaml")
    default = load_params(ROOT / "params.yaml")
    assert set(bench.train.models) == set(MODEL_KINDS) and len(bench.train.seeds) == 3
    # the same data as the default profile: only train differs
    assert (bench.seed, bench.render, bench.datasets, bench.shard, bench.model) == \
        (default.seed, default.render, default.datasets, default.shard, default.model)
