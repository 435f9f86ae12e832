"""The decoder as a rendering engine: re-render an image at other factor values, and score it.

- `rerender_sweeps`: for test sweeps of factor f (one mesh, only f changes), encode a few source
  frames, set the tied latent(s) to the value the mapping gives for every other frame's f, decode,
  and compare to Blender's render of that frame: MSE and SSIM per pair, with the target distance as a
  fraction of f's range. `summarise` bins them by distance, beside the reconstruction error of the
  same sweeps.
- `rerender_file`: the `rerender` command: any PNG/JPEG, centre-cropped, resized and converted to the
  model's input, re-rendered at given degrees into a labelled grid (and a smooth GIF).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

import artifacts
from config import UserError
from evaluate.encode import as_float, decode, encode
from evaluate.mapping import FactorMapping
from model.loss import ssim_from_moments

DISTANCE_EDGES = (0.0, 0.125, 0.25, 0.5, 1.0)
"""Target distance bins, as fractions of the factor's range."""
GRAY_WEIGHTS = (0.21, 0.72, 0.07)
"""RGB -> gray as the paper's data (dcign.md)."""


PAIR_KEYS = ("distance", "mse", "ssim", "held_ssim", "still_ssim")
"""Per (source, target) pair of `rerender_sweeps`."""


class RerenderError(UserError):
    """An input image for `rerender` is missing or unreadable, or a value is out of place."""


# ------------------------------------------------------------------------------------- scores


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image SSIM (Wang et al. 2004; Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 1,
    reflected borders) of float images [N, H, W, C] in [0, 1], averaged over pixels and channels."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    blur = lambda x: gaussian_filter(x, sigma=(0, 1.5, 1.5, 0), truncate=3.5)  # noqa: E731  (11x11 window)
    s = ssim_from_moments(blur(a), blur(b), blur(a * a), blur(b * b), blur(a * b))
    return s.mean(axis=(1, 2, 3))


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.mean((np.asarray(a, np.float64) - b) ** 2, axis=(1, 2, 3))


def source_frames(steps: int, sources: int) -> np.ndarray:
    """Evenly spread frame indices of a sweep used as re-rendering sources."""
    return np.unique(np.linspace(0, steps - 1, min(sources, steps)).round().astype(int))


def rerender_sweeps(model, sweeps: Iterable[tuple[np.ndarray, np.ndarray]], mapping: FactorMapping, col: int,
                    value_range: tuple[float, float], sources: int = 4) -> dict[str, np.ndarray]:
    """Per (source, target) pair of each sweep of one factor (its labels in column `col`): `distance`
    (fraction of the range), `mse`, `ssim`, and two references that render nothing: `held_ssim`, the
    source's own reconstruction left where it is (what the decoder scores if the tied latent did
    nothing), and `still_ssim`, Blender's source frame itself (a perfect copy that does not move);
    per frame: `recon_mse`, `recon_ssim` of the plain reconstruction."""
    width = (value_range[1] - value_range[0]) or 1.0
    out: dict[str, list] = {k: [] for k in PAIR_KEYS + ("recon_mse", "recon_ssim")}
    for images, labels in sweeps:
        truth = as_float(images)
        codes = encode(model, images)
        recon = decode(model, codes)
        out["recon_mse"].append(mse(recon, truth))
        out["recon_ssim"].append(ssim(recon, truth))
        for s in source_frames(len(images), sources):
            moved = decode(model, mapping.apply(np.repeat(codes[s:s + 1], len(images), axis=0), labels[:, col]))
            out["distance"].append(np.abs(labels[:, col] - labels[s, col]) / width)
            out["mse"].append(mse(moved, truth))
            out["ssim"].append(ssim(moved, truth))
            out["held_ssim"].append(ssim(np.repeat(recon[s:s + 1], len(images), axis=0), truth))
            out["still_ssim"].append(ssim(np.repeat(truth[s:s + 1], len(images), axis=0), truth))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def summarise(pairs: dict[str, np.ndarray], edges: Sequence[float] = DISTANCE_EDGES) -> dict:
    """Means overall, per distance bin, and within half the range (with its ratio to reconstruction)."""
    recon = {"mse": float(np.mean(pairs["recon_mse"])), "ssim": float(np.mean(pairs["recon_ssim"]))}
    d = pairs["distance"]
    by_distance = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = (d >= lo) & ((d < hi) if hi < edges[-1] else (d <= hi))
        by_distance[f"{lo:.3g}-{hi:.3g}"] = {"pairs": int(rows.sum()),
                                             "mse": float(np.mean(pairs["mse"][rows])) if rows.any() else None,
                                             "ssim": float(np.mean(pairs["ssim"][rows])) if rows.any() else None}
    half = d <= 0.5
    mean_half = lambda key: float(np.mean(pairs[key][half])) if half.any() else None  # noqa: E731
    within = mean_half("mse")
    return {"mse": float(np.mean(pairs["mse"])), "ssim": float(np.mean(pairs["ssim"])), "pairs": int(len(d)),
            "reconstruction": recon, "by_distance": by_distance,
            "within_half": {"mse": within, "ssim": mean_half("ssim"),
                            # a re-render that scores no better than `held_ssim` has not rendered the factor
                            "held_ssim": mean_half("held_ssim"), "still_ssim": mean_half("still_ssim"),
                            "ratio_to_reconstruction": within / recon["mse"] if within is not None and recon["mse"] > 0 else None}}


# ------------------------------------------------------------------------------------- command


def parse_degrees(tokens: Sequence[str]) -> list[float]:
    """The `--values` list of the rerender command; anything not a number is a one-line error."""
    out = []
    for t in tokens:
        try:
            out.append(float(t))
        except ValueError:
            raise RerenderError(f"--values: {t!r} is not a number of degrees (or an unknown option); "
                                "list numbers, e.g. --values -60 0 60") from None
    if not all(np.isfinite(out)):
        raise RerenderError("--values: give finite numbers of degrees")
    return out


def load_image(path: Path | str, size: int, channels: int) -> np.ndarray:
    """Any PNG/JPEG -> uint8 [size, size] (gray) or [size, size, 3]: centre-cropped to a square,
    resized with area averaging. Raises RerenderError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise RerenderError(f"{path}: image not found; give the path of a PNG or JPEG file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise RerenderError(f"{path}: not a readable image; give a PNG or JPEG file")
    if image.dtype != np.uint8:  # 16-bit PNGs
        image = (image.astype(np.float64) / np.iinfo(image.dtype).max * 255).round().astype(np.uint8)
    if image.ndim == 3:
        image = image[:, :, 2::-1][:, :, :3] if image.shape[2] >= 3 else image[:, :, 0]  # BGR(A) -> RGB
    h, w = image.shape[:2]
    side = min(h, w)
    image = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    if channels == 1 and image.ndim == 3:
        image = np.clip(image.astype(np.float64) @ np.array(GRAY_WEIGHTS), 0, 255).round().astype(np.uint8)
    elif channels == 3 and image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image


def rerender_image(model, image: np.ndarray, mapping: FactorMapping, degrees: Sequence[float]) -> np.ndarray:
    """float [len(degrees), H, W, C]: `image` re-rendered with the factor set to each value."""
    code = encode(model, image[None])
    return decode(model, mapping.apply(np.repeat(code, len(degrees), axis=0), np.asarray(degrees, np.float64)))


def rerender_file(image_path: Path | str, checkpoint: Path | str, factor: str, values: Sequence[float],
                  out: Path | str, gif: Path | str | None = None, mapping_path: Path | str | None = None,
                  gif_frames: int = 24) -> Path:
    """The `rerender` command. The mapping defaults to `metrics/<checkpoint stem>-mapping.json`."""
    from evaluate.figures import save_rerender_grid, save_gif
    from evaluate.mapping import load_mapping
    from model.checkpoint import load_model

    if not values:
        raise RerenderError("no --values given; list the target values in degrees, e.g. --values -60 0 60")
    model, meta = load_model(checkpoint)
    mapping = load_mapping(mapping_path or artifacts.mapping_of(checkpoint), factor)
    image = load_image(image_path, meta.size, meta.channels)
    frames = rerender_image(model, image, mapping, values)
    save_rerender_grid(as_float(image[None])[0], frames, list(values), factor, Path(out))
    if gif:
        sweep = np.concatenate([np.linspace(min(values), max(values), gif_frames // 2),
                                np.linspace(max(values), min(values), gif_frames // 2)])
        save_gif(rerender_image(model, image, mapping, sweep), Path(gif))
    return Path(out)


