"""artifacts.py names the same files as dvc.yaml's stages: a path changed in one and not the other fails here."""
from __future__ import annotations

from pathlib import Path

import yaml

import artifacts

ROOT = Path(__file__).resolve().parents[1]


def stage_paths(stage: str, dataset: str, model: str = "") -> set[str]:
    """Every out, metric and plot path of a dvc.yaml stage, with ${item.*} filled in."""
    body = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    out = set()
    for key in ("outs", "metrics", "plots"):
        for entry in body.get(key, []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            out.add(path.replace("${item.dataset}", dataset).replace("${item.model}", model))
    return out


def test_run_paths_are_the_train_and_evaluate_stages_outputs():
    run = artifacts.RunPaths.named("faces-dcign")
    assert {run.checkpoint.as_posix(), run.live_dir.as_posix()} == stage_paths("train", "faces", "dcign")
    assert {run.metrics.as_posix(), run.codes.as_posix(), run.mapping.as_posix(), run.plots.as_posix()} == \
        stage_paths("evaluate", "faces", "dcign")
    assert artifacts.mapping_of(run.checkpoint) == run.mapping  # what `rerender` reads by default


def test_report_paths_are_the_report_stages_outputs():
    assert {p.as_posix() for p in artifacts.report("chairs")} == stage_paths("report", "chairs")


def test_benchmark_runs_never_collide_with_the_stages_files():
    stage = artifacts.RunPaths.named("faces-dcign-s0")
    bench = artifacts.RunPaths.benchmark("faces-dcign-s0")
    assert not {str(v) for v in vars(stage).values()} & {str(v) for v in vars(bench).values()}
