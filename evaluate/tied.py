"""How well one latent tracks its factor: |Spearman| and the R² of a small non-linear regression.

In: codes [N, L] and the true factor value [N] of training and test sweeps of that factor. Out: floats.

- `sweep_variance` / `best_latent`: the paper's choice of the baseline's "azimuth latent", the one that
  varies most over sweeps of that factor (mean within-sweep variance), chosen on training sweeps only.
- `tied_scores`: |Spearman| between the latent and the factor on test sweeps (monotone and robust to
  the sign "switch" the paper saw for azimuth), and the test R² of `Curve`, a degree-5 polynomial
  ridge regression latent -> factor fitted on training sweeps (out of sample, so a flexible curve
  cannot score by memorising).
- `probe_scores`: the same two numbers for a linear regression from all latents (the paper's
  comparison for the entangled baseline: the information may be there, spread over many latents).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.stats
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score

DEGREE = 5


def sweep_variance(codes: np.ndarray, group: np.ndarray) -> np.ndarray:
    """[L] mean over sweeps of each latent's variance within the sweep."""
    groups = np.unique(group)
    return np.mean([codes[group == g].var(axis=0) for g in groups], axis=0)


def best_latent(codes: np.ndarray, group: np.ndarray, candidates: Sequence[int] | None = None) -> int:
    """The latent (among `candidates`, default all) with the largest mean within-sweep variance."""
    var = sweep_variance(codes, group)
    pool = np.arange(codes.shape[1]) if candidates is None else np.asarray(candidates)
    return int(pool[np.argmax(var[pool])])


def spearman_abs(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0  # a constant latent carries no rank information
    return float(abs(scipy.stats.spearmanr(x, y).statistic))


@dataclass(frozen=True)
class Curve:
    """Polynomial ridge regression of one variable, inputs standardised and clipped to the fitted range
    (a polynomial must not extrapolate)."""

    lo: float
    hi: float
    mean: float
    scale: float
    model: Ridge

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, degree: int = DEGREE) -> "Curve":
        x = np.asarray(x, np.float64)
        mean, scale = float(x.mean()), float(x.std()) or 1.0
        model = Ridge(alpha=1e-3).fit(_powers((x - mean) / scale, degree), y)
        return cls(float(x.min()), float(x.max()), mean, scale, model)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = (np.clip(np.asarray(x, np.float64), self.lo, self.hi) - self.mean) / self.scale
        return self.model.predict(_powers(t, self.model.coef_.shape[-1]))


def _powers(t: np.ndarray, degree: int) -> np.ndarray:
    return np.stack([t ** k for k in range(1, degree + 1)], axis=1)


def tied_scores(train_latent: np.ndarray, train_factor: np.ndarray,
                test_latent: np.ndarray, test_factor: np.ndarray) -> dict[str, float]:
    """|Spearman| on the test sweeps, and R² on them of a curve latent -> factor fitted on training."""
    curve = Curve.fit(train_latent, train_factor)
    return {"spearman": spearman_abs(test_latent, test_factor),
            "r2": float(r2_score(test_factor, curve(test_latent)))}


def probe_scores(train_codes: np.ndarray, train_factor: np.ndarray,
                 test_codes: np.ndarray, test_factor: np.ndarray) -> dict[str, float]:
    """A linear regression from all latents, fitted on training sweeps: |Spearman| of its prediction
    and its R² on test sweeps."""
    pred = LinearRegression().fit(train_codes, train_factor).predict(test_codes)
    return {"spearman": spearman_abs(pred, test_factor), "r2": float(r2_score(test_factor, pred))}
