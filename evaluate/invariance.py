"""Invariance: when only factor f changes, do the latents of everything else stay put?

In: codes of test sweeps of one type with their sweep ids, the whole test set's codes, and which
latents each owner (azimuth, elevation, light, intrinsic) holds. Out: for each other owner, the ratio
    sqrt(mean within-sweep variance of its latents) / sqrt(their variance over the whole test set),
averaged over that owner's latents: 0 = perfectly invariant, about 1 = they move as much within a
sweep of f as across all test images.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from evaluate.tied import sweep_variance


def spread_ratio(codes: np.ndarray, group: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """[L] within-sweep std of each latent relative to its std over `reference` codes."""
    total = reference.var(axis=0)
    within = sweep_variance(codes, group)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt(within / total)
    return np.where(total > 0, ratio, 0.0)  # a latent constant everywhere is trivially invariant


def invariance(codes: np.ndarray, group: np.ndarray, reference: np.ndarray, sweep: str,
               owners: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Per owner other than `sweep`: mean spread ratio of its latents within sweeps of `sweep`; plus
    `mean` over all those latents."""
    ratio = spread_ratio(codes, group, reference)
    out = {owner: float(np.mean(ratio[list(idx)])) for owner, idx in owners.items() if owner != sweep and len(idx)}
    others = [i for owner, idx in owners.items() if owner != sweep for i in idx]
    out["mean"] = float(np.mean(ratio[others])) if others else 0.0
    return out


def owners_of(latents: int, tied: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """Owner -> latent indices: the tied latents per factor, every other latent `intrinsic`."""
    taken = {i for idx in tied.values() for i in idx}
    return {**{f: list(idx) for f, idx in tied.items()}, "intrinsic": [i for i in range(latents) if i not in taken]}
