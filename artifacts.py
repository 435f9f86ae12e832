"""Where every artifact lives, relative to the repository root (`dvc.yaml` names the same paths).

    data/meshes/<dataset>/ ...              DatasetConfig.mesh_dir / render_dir / shard_dir
    models/<run>.pt                          a trained model; <run> = <dataset>-<model>
    checkpoints/<run>.pt                     its resumable checkpoint while training
    dvclive/<run>/                           its training logs
    metrics/<run>.json, -codes.npz, -mapping.json, plots/<run>/     its evaluation
    reports/<dataset>.md, plots/<dataset>-comparison.png            the report stage
    models|checkpoints|metrics/benchmark/<run>-s<seed>..., tmp/benchmark/   the benchmark's runs
    reports/benchmark-<dataset>.md, plots/benchmark-<dataset>-azimuth.png   the benchmark's report

Nothing else builds these paths; stages take them from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    """The files of one trained model and its evaluation."""

    checkpoint: Path
    resume: Path
    live_dir: Path
    metrics: Path
    codes: Path
    mapping: Path
    plots: Path

    @classmethod
    def named(cls, name: str, root: Path | str = ".") -> "RunPaths":
        """The DVC stages' run `name` (e.g. faces-dcign)."""
        root = Path(root)
        return cls(checkpoint=root / "models" / f"{name}.pt", resume=root / "checkpoints" / f"{name}.pt",
                   live_dir=root / "dvclive" / name, **_evaluation(root / "metrics", root / "plots", name))

    @classmethod
    def benchmark(cls, name: str, root: Path | str = ".") -> "RunPaths":
        """A benchmark run (e.g. faces-gvae-s1): numbers kept in git, figures and logs under tmp/."""
        root = Path(root)
        scratch = root / "tmp" / "benchmark"
        return cls(checkpoint=root / "models" / "benchmark" / f"{name}.pt",
                   resume=root / "checkpoints" / "benchmark" / f"{name}.pt", live_dir=scratch / "dvclive" / name,
                   **_evaluation(root / "metrics" / "benchmark", scratch / "plots", name))


def _evaluation(metrics: Path, plots: Path, name: str) -> dict[str, Path]:
    return dict(metrics=metrics / f"{name}.json", codes=metrics / f"{name}-codes.npz",
                mapping=metrics / f"{name}-mapping.json", plots=plots / name)


def mapping_of(checkpoint: Path | str, root: Path | str = ".") -> Path:
    """The factor -> latent mapping the evaluate stage wrote for a checkpoint (named after its file)."""
    return Path(root) / "metrics" / f"{Path(checkpoint).stem}-mapping.json"


def report(dataset: str, root: Path | str = ".") -> tuple[Path, Path]:
    """The report stage's markdown and comparison figure."""
    root = Path(root)
    return root / "reports" / f"{dataset}.md", root / "plots" / f"{dataset}-comparison.png"


def benchmark_report(dataset: str, root: Path | str = ".") -> tuple[Path, Path]:
    """The benchmark's markdown and azimuth figure."""
    root = Path(root)
    return root / "reports" / f"benchmark-{dataset}.md", root / "plots" / f"benchmark-{dataset}-azimuth.png"
