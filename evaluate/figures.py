"""Figures (matplotlib, Agg): traversals, latent-vs-truth scatter, re-rendering vs Blender, training
curves, entangled-vs-disentangled comparison, and the `rerender` command's grid and GIF.

Images come in as float [H, W, C] in [0, 1]; every file is written to a temporary name first and moved
into place, so an interrupted run never leaves half a PNG.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import durable  # noqa: E402
from evaluate.encode import as_float, decode, encode  # noqa: E402
from evaluate.mapping import FactorMapping  # noqa: E402

CELL = 1.0
"""Inches per image cell."""


def _save(fig, path: Path) -> Path:
    try:
        with durable.replacing(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str] | None = None,
          row_labels: Sequence[str] | None = None, suptitle: str = ""):
    """Images laid out as one mosaic in one axes (far faster than an axes per image), with column
    titles above and row labels to the left."""
    h, w, c = np.asarray(rows[0][0]).shape
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    gap = max(1, h // 16)
    mosaic = np.ones((n_rows * (h + gap) - gap, n_cols * (w + gap) - gap, c), dtype=np.float32)
    for r, row in enumerate(rows):
        for k, image in enumerate(row):
            mosaic[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = np.clip(image, 0, 1)
    fig = plt.figure(figsize=(CELL * n_cols + (1.2 if row_labels else 0.2), CELL * n_rows + 0.6))
    ax = fig.add_axes((0.12 if row_labels else 0.01, 0.01, 0.87 if row_labels else 0.98, 0.9))
    ax.imshow(mosaic[..., 0] if c == 1 else mosaic, cmap="gray" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([(w + gap) * k + w / 2 for k in range(len(titles or []))])
    ax.set_xticklabels(list(titles or []), fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([(h + gap) * r + h / 2 for r in range(len(row_labels or []))])
    ax.set_yticklabels(list(row_labels or []), fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9, y=1.0)
    return fig


# ------------------------------------------------------------------------------------- stage figures


def traversal(model, images: np.ndarray, mapping: FactorMapping, factor: str, value_range: tuple[float, float],
              steps: int, path: Path, title: str) -> Path:
    """Paper figs 4/5/7: one input per row (first column), then its tied latent swept over the factor's
    range through the mapping (columns labelled in degrees)."""
    degrees = np.linspace(value_range[0], value_range[1], steps)
    codes = encode(model, images)
    rows = []
    for i, image in enumerate(as_float(images)):
        moved = decode(model, mapping.apply(np.repeat(codes[i:i + 1], steps, axis=0), degrees))
        rows.append([image, *moved])
    titles = ["input"] + [f"{d:.0f}°" for d in degrees]
    return _save(_grid(rows, titles, suptitle=f"{title}: {factor} latent z{list(mapping.latents)} swept"), path)


def scatter(points: Mapping[str, tuple[np.ndarray, np.ndarray, int]], path: Path, title: str) -> Path:
    """Inferred tied latent against the true value, one panel per factor (the paper's quantitative
    figure). `points[factor] = (true degrees, latent values, latent index)`."""
    fig, axes = plt.subplots(1, len(points), figsize=(3.2 * len(points), 3.0), squeeze=False)
    for ax, (factor, (truth, latent, index)) in zip(axes[0], points.items()):
        ax.scatter(truth, latent, s=4, alpha=0.5)
        ax.set_xlabel(f"true {factor} (°)")
        ax.set_ylabel(f"z{index} (encoder mean)")
        ax.set_title(factor, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.35, hspace=0.6)
    return _save(fig, path)


def rerender_vs_truth(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Pairs of rows per test sweep: Blender's frames, then the source frame re-rendered to each of them.
    `rows` = (label, truth float [K, H, W, C], re-rendered [K, H, W, C], degrees [K])."""
    grid, labels = [], []
    for label, truth, moved, degrees in rows:
        grid += [list(truth), list(moved)]
        labels += [f"{label}\nBlender, {degrees[0]:.0f}° to {degrees[-1]:.0f}°", f"{label}\nre-rendered"]
    return _save(_grid(grid, column_titles([r[3] for r in rows]), labels, suptitle=title), path)


def column_titles(degrees: Sequence[np.ndarray]) -> list[str] | None:
    """Degrees above the columns when every row shows the same values; otherwise none (each row's
    label gives its own range: sweeps of different factors have different ranges)."""
    if not degrees or any(len(d) != len(degrees[0]) or not np.allclose(d, degrees[0]) for d in degrees):
        return None
    return [f"{d:.0f}°" for d in degrees[0]]


def training_curves(log_dir: Path, path: Path, title: str) -> Path | None:
    """Every DVCLive metric series under `log_dir/plots/metrics` (TSV: step, value), one panel each.
    None when there are no logs (a model trained outside DVCLive)."""
    files = sorted((log_dir / "plots" / "metrics").rglob("*.tsv")) if log_dir.is_dir() else []
    series = []
    for f in files:
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows and "step" in rows[0]:
            key = next(k for k in rows[0] if k not in ("step", "timestamp"))
            series.append((str(f.relative_to(log_dir / "plots" / "metrics").with_suffix("")),
                           [float(r["step"]) for r in rows], [float(r[key]) for r in rows]))
    if not series:
        return None
    cols = min(3, len(series))
    n_rows = -(-len(series) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.4 * cols, 2.6 * n_rows), squeeze=False)
    for ax, (name, steps, values) in zip(axes.flat, series):
        ax.plot(steps, values, lw=1)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.35, hspace=0.6)
    return _save(fig, path)


def comparison(inputs: Mapping[str, np.ndarray], models: Mapping[str, tuple[object, Mapping[str, FactorMapping]]],
               ranges: Mapping[str, tuple[float, float]], steps: int, path: Path, title: str) -> Path:
    """Entangled vs disentangled: per factor, the same input transformed through each model's tied
    (DC-IGN) or best single (baseline) latent. `inputs[factor]` uint8 [H, W(, C)]."""
    grid, labels, sweeps = [], [], []
    for factor, image in inputs.items():
        degrees = np.linspace(*ranges[factor], steps)
        for name, (model, mappings) in models.items():
            mapping = mappings[factor]
            code = encode(model, image[None])
            moved = decode(model, mapping.apply(np.repeat(code, steps, axis=0), degrees))
            grid.append([as_float(image[None])[0], *moved])
            labels.append(f"{factor} {degrees[0]:.0f}° to {degrees[-1]:.0f}°\n{name} z{list(mapping.latents)}")
            sweeps.append(degrees)
    shared = column_titles(sweeps)
    return _save(_grid(grid, ["input", *shared] if shared else ["input"], labels, suptitle=title), path)


# ------------------------------------------------------------------------------------- command output


def side_by_side(truth: np.ndarray, rendered: np.ndarray, gap: int = 2) -> np.ndarray:
    """Frames [N, H, W, C]: Blender's ground truth on the left, the decoder's re-render on the right."""
    line = np.ones(truth.shape[:2] + (gap,) + truth.shape[3:], dtype=truth.dtype)
    return np.concatenate([truth, line, rendered], axis=2)


def save_rerender_grid(image: np.ndarray, frames: np.ndarray, values: Sequence[float], factor: str, path: Path) -> Path:
    titles = ["input"] + [f"{factor} {v:g}°" for v in values]
    return _save(_grid([[image, *frames]], titles), path)


def save_gif(frames: np.ndarray, path: Path, size: int = 128, ms: int = 80) -> Path:
    """Frames [N, H, W, C] in [0, 1] as a looping GIF `size` pixels high (the width keeps the aspect)."""
    pics = []
    for f in np.clip(frames, 0, 1):
        arr = (f[..., 0] if f.shape[-1] == 1 else f) * 255
        width = round(f.shape[1] * size / f.shape[0])
        pics.append(Image.fromarray(arr.round().astype(np.uint8)).resize((width, size), Image.NEAREST))
    with durable.replacing(path) as tmp:
        pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:], duration=ms, loop=0)
    return path
