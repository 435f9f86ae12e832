"""Factor value (degrees) -> latent value: what turns "azimuth 30°" into a setting of the tied latent.

Fitted by the evaluate stage on the training sweeps of each factor (encoder means of the tied latents
against the true value, averaged in `bins` equal-width bins over the factor's range, linearly
interpolated between bin centres, held constant beyond the outermost ones), and stored beside the
metrics as `metrics/<dataset>-<model>-mapping.json`, which `python cli.py rerender` reads:
    {"dataset", "model", "factors": {factor: {"latents": [i..], "degrees": [..], "values": [[..]..]}}}
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

import durable
from config import UserError


class MappingError(UserError):
    """A mapping file is missing or unreadable, or lacks the factor asked for."""


@dataclass(frozen=True)
class FactorMapping:
    latents: tuple[int, ...]
    degrees: tuple[float, ...]
    """Bin centres that held training points, increasing."""
    values: tuple[tuple[float, ...], ...]
    """Mean code of each latent in each bin: [len(degrees)][len(latents)]."""

    @classmethod
    def fit(cls, factor_values: np.ndarray, codes: np.ndarray, latents: list[int], value_range: tuple[float, float],
            bins: int = 16) -> "FactorMapping":
        lo, hi = value_range
        edges = np.linspace(lo, hi, bins + 1)
        which = np.clip(np.digitize(factor_values, edges) - 1, 0, bins - 1)
        centres, means = [], []
        for b in range(bins):
            rows = which == b
            if rows.any():
                centres.append(float((edges[b] + edges[b + 1]) / 2))
                means.append(tuple(float(v) for v in codes[rows][:, latents].mean(axis=0)))
        if not centres:
            raise ValueError("no training points to fit a factor -> latent mapping")
        return cls(tuple(int(i) for i in latents), tuple(centres), tuple(means))

    def __call__(self, degrees: np.ndarray) -> np.ndarray:
        """Latent values [n, len(latents)] for factor values [n] in degrees."""
        deg = np.atleast_1d(np.asarray(degrees, np.float64))
        table = np.asarray(self.values)
        return np.stack([np.interp(deg, self.degrees, table[:, k]) for k in range(len(self.latents))], axis=1)

    def apply(self, codes: np.ndarray, degrees: np.ndarray) -> np.ndarray:
        """Copies of `codes` [n, L] with the tied latents set to the values for `degrees` [n]."""
        out = np.array(codes, dtype=np.float64, copy=True)
        out[:, list(self.latents)] = self(degrees)
        return out


def save_mappings(path: Path | str, dataset: str, model: str, mappings: Mapping[str, FactorMapping]) -> None:
    body = {"dataset": dataset, "model": model,
            "factors": {f: {"latents": list(m.latents), "degrees": list(m.degrees), "values": [list(v) for v in m.values]}
                        for f, m in mappings.items()}}
    durable.write_text(path, json.dumps(body, indent=1) + "\n")


def load_mapping(path: Path | str, factor: str) -> FactorMapping:
    """The mapping of one factor from a mapping file. Raises MappingError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"{path}: factor -> latent mapping not found; run `python cli.py evaluate` for this model "
                           "first, or pass --mapping")
    try:
        factors = json.loads(path.read_text())["factors"]
        if not isinstance(factors, dict):
            raise TypeError("factors is not an object")
    except (ValueError, KeyError, TypeError):
        raise MappingError(f"{path}: not a readable mapping file; re-run `python cli.py evaluate`") from None
    if factor not in factors:
        raise MappingError(f"{path}: has no mapping for factor '{factor}'; it maps: {', '.join(factors) or 'nothing'}")
    m = factors[factor]
    try:
        return FactorMapping(tuple(m["latents"]), tuple(m["degrees"]), tuple(tuple(v) for v in m["values"]))
    except (KeyError, TypeError):
        raise MappingError(f"{path}: mapping of '{factor}' is malformed; re-run `python cli.py evaluate`") from None
