"""The benchmark: every model of `train.models`, once per seed of `train.seeds`, on one dataset's shards.

In: `data/shards/<dataset>` and params (the `profiles/benchmark.yaml` profile lists every model).
Out, per run (model, seed), named `<dataset>-<model>-s<seed>`:
    models/benchmark/<run>.pt             the trained model (resumable via checkpoints/benchmark/<run>.pt)
    metrics/benchmark/<run>.json          every number of `evaluate.run` (+ -mapping.json, -codes.npz)
    tmp/benchmark/plots/<run>/            the per-model figures (not kept in git)
and for the dataset:
    reports/benchmark-<dataset>.md        model x metric, mean ± sd over seeds, and the wall time
    plots/benchmark-<dataset>-azimuth.png the same held-out image re-rendered across azimuth by each model

A run whose metrics file exists is not redone, so an interrupted benchmark resumes where it stopped
(and training resumes inside a run). Every model gets the same network, shards, steps and evaluation.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import artifacts
import durable
from config import Params
from evaluate.report import NAMES, dig, load_metrics
from evaluate.run import EvalPaths, evaluate_model, gif_factors

RHO = "\\|ρ\\| {}"
"""Column of a factor's |Spearman| (pipes escaped for markdown tables)."""


def metric_columns(factors: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Columns of the ranking table, as (column, path into the metrics JSON), for a dataset's factors.
    "tied" is the tied (DC-IGN, GVAE) or best single latent. SSIM: re-render against Blender within half
    the factor's range."""
    return (
        *[(RHO.format(f), ("tied", f, "spearman")) for f in factors],
        ("MIG", ("disentanglement", "mig")),
        ("DCI D", ("disentanglement", "dci", "disentanglement")),
        ("DCI C", ("disentanglement", "dci", "completeness")),
        ("DCI I", ("disentanglement", "dci", "informativeness_test")),
        ("SAP", ("disentanglement", "sap")),
        ("FactorVAE", ("disentanglement", "factor_vae", "eval_accuracy")),
        ("BetaVAE", ("disentanglement", "beta_vae", "eval_accuracy")),
        ("recon MSE", ("reconstruction", "mse")),
        *[(f"SSIM {f}", ("rerender", f, "within_half", "ssim")) for f in factors],
    )


@dataclass(frozen=True)
class Run:
    dataset: str
    model: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.model}-s{self.seed}"

    def files(self, root: Path) -> artifacts.RunPaths:
        return artifacts.RunPaths.benchmark(self.name, root)

    def paths(self, params: Params, root: Path) -> EvalPaths:
        return EvalPaths.of(self.files(root), root / params.dataset(self.dataset).shard_dir())


def plan(params: Params, dataset: str) -> list[Run]:
    """Every (model, seed) of the params, models in `train.models` order."""
    return [Run(dataset, m, s) for m in params.train.models for s in params.train.seeds]


def run_benchmark(params: Params, dataset: str, root: Path | str = ".", progress: bool = True) -> Path:
    """Train and evaluate every run not yet done, then write the report and figure; returns the report."""
    from model.train import TrainJob, train

    root = Path(root)
    params.dataset(dataset)
    start = time.perf_counter()
    for run in plan(params, dataset):
        paths = run.paths(params, root)
        if paths.metrics.is_file():
            continue
        seeded = dataclasses.replace(params, seed=run.seed)
        train(seeded, TrainJob(dataset=dataset, kind=run.model, shard_dir=paths.shard_dir, out=paths.checkpoint,
                               resume=run.files(root).resume, live_dir=paths.live_dir,
                               progress=progress))
        evaluate_model(seeded, dataset, run.model, paths, progress)
    minutes = (time.perf_counter() - start) / 60
    return write_benchmark_report(params, dataset, root, minutes)


def summary(params: Params, dataset: str, root: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """model -> column -> (mean, sd over seeds); a value missing from a run counts as NaN."""
    out = {}
    for model in params.train.models:
        runs = [load_metrics(Run(dataset, model, s).files(root).metrics) for s in params.train.seeds]
        out[model] = {}
        for column, path in metric_columns(params.dataset(dataset).factor_names):
            values = np.array([dig(m, path) for m in runs], dtype=np.float64)  # None -> nan
            out[model][column] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
    return out


def write_benchmark_report(params: Params, dataset: str, root: Path | str = ".", minutes: float | None = None) -> Path:
    root = Path(root)
    table = summary(params, dataset, root)
    report, figure = artifacts.benchmark_report(dataset, root)
    azimuth_figure(params, dataset, root, figure)
    durable.write_text(report, render_markdown(params, dataset, table, figure.relative_to(root), minutes))
    return report


def azimuth_figure(params: Params, dataset: str, root: Path, out: Path) -> Path:
    """One held-out test image, its azimuth (the camera-azimuth factor, or the first) re-rendered by each
    model (first seed)."""
    from evaluate import figures
    from evaluate.mapping import load_mapping
    from model.checkpoint import load_model
    from pipeline.loader import open_split

    ds = params.dataset(dataset)
    factor = gif_factors(ds)[0]
    models = {}
    for model in params.train.models:
        paths = Run(dataset, model, params.train.seeds[0]).paths(params, root)
        net, _ = load_model(paths.checkpoint)
        models[NAMES[model]] = (net, {factor: load_mapping(paths.mapping, factor)})
    test = open_split(root / ds.shard_dir(), "test")
    image = next(test.sweeps(factor))[0][0]
    return figures.comparison({factor: image}, models, {factor: tuple(ds.ranges[factor])},
                              params.evaluate.traversal_steps, out,
                              f"{dataset}: one held-out image re-rendered across {factor} by each model (seed "
                              f"{params.train.seeds[0]})")


def render_markdown(params: Params, dataset: str, table: dict, figure: Path, minutes: float | None) -> str:
    seeds = ", ".join(map(str, params.train.seeds))
    lines = [f"# Benchmark: {dataset}", "",
             f"Every model on the same network (`{params.model.arch}`, {params.model.latents} latents), the same "
             f"shards and {params.train.steps} steps, seeds {seeds}; mean ± sd over seeds. Written by "
             f"`python cli.py benchmark --dataset {dataset}`; per-run numbers in `metrics/benchmark/`.", "",
             "- |ρ|: |Spearman| between a factor's latent and its true value on test meshes: the tied latent for "
             "DC-IGN and GVAE (trained to own it), the single latent varying most with the factor for the others.",
             "- SSIM: re-rendered through the decoder against Blender, targets within half the factor's range.",
             f"- β-VAE's β: {params.train.betavae_beta:g}; every other model's KL weight: {params.train.beta:g}.", ""]
    if minutes is not None:
        lines += [f"Wall time of the runs this invocation did: {minutes:.1f} min.", ""]
    columns = [c for c, _ in metric_columns(params.dataset(dataset).factor_names)]
    lines += ["| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for model, row in table.items():
        cells = [f"{m:.3f} ± {s:.3f}" if c != "recon MSE" else f"{m:.5f} ± {s:.5f}" for c, (m, s) in row.items()]
        lines.append(f"| {NAMES[model]} | " + " | ".join(cells) + " |")
    lines += ["", f"![{dataset}: azimuth re-rendered by each model]({Path('..') / figure})", ""]
    lines += ranking(table, params.dataset(dataset).factor_names)
    return "\n".join(lines) + "\n"


def ranking(table: dict, factors: tuple[str, ...]) -> list[str]:
    """Where each model ranks on the mean tied |ρ| over factors and on MIG (1 = best)."""
    mean_rho = {m: float(np.mean([row[RHO.format(f)][0] for f in factors])) for m, row in table.items()}
    order = sorted(mean_rho, key=lambda m: -mean_rho[m])
    lines = ["| rank | model | mean \\|ρ\\| over factors | MIG |", "|---:|---|---:|---:|"]
    for i, m in enumerate(order, 1):
        lines.append(f"| {i} | {NAMES[m]} | {mean_rho[m]:.3f} | {table[m]['MIG'][0]:.3f} |")
    return ["## Ranking", ""] + lines
