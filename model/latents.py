"""Which latent indices each factor owns, and which latents a sweep type clamps (pure functions).

Layout (as in the paper): the owned latents come first, in FACTORS order (z1 = azimuth,
z2 = elevation, z3 = light with one latent each); every later latent is intrinsic (shape, texture).
"""
from __future__ import annotations

from typing import Mapping

import torch

from config import FACTORS, SWEEPS, ConfigError


def owned_indices(owned: Mapping[str, int]) -> dict[str, list[int]]:
    """Latent indices per factor in FACTORS, e.g. {azimuth: [0], elevation: [1], light: [2]}."""
    out, start = {}, 0
    for f in FACTORS:
        out[f] = list(range(start, start + owned[f]))
        start += owned[f]
    return out


FLIP_PARITY = {"azimuth": -1, "elevation": 1, "light": -1}
"""How a horizontal image flip changes each factor: azimuth and light change sign, elevation does not."""


def mirror_parity(owned: Mapping[str, int], latents: int) -> list[int]:
    """[latents] parity of each latent under a horizontal flip (`model.nets.VAE`): a factor's first
    latent takes the factor's parity, a second one is even (the cosine beside the sine of a full turn),
    intrinsic latents are free (0; a mirrored identity is another identity)."""
    parity = [0] * latents
    for f, idx in owned_indices(owned).items():
        for k, i in enumerate(idx):
            parity[i] = FLIP_PARITY[f] if k == 0 else 1
    return parity


def tied_mask(owned: Mapping[str, int], latents: int) -> torch.Tensor:
    """Bool [latents]: True for the latents a factor owns (z1..), False for the intrinsic ones."""
    mask = torch.zeros(latents, dtype=torch.bool)
    mask[: sum(owned[f] for f in FACTORS)] = True
    return mask


def free_indices(sweep: str, owned: Mapping[str, int], latents: int) -> list[int]:
    """Latents that stay free (per-sample) in a sweep of type `sweep`; all others are clamped.

    A factor sweep frees only that factor's latents. An intrinsic sweep (the mesh changes) frees
    the intrinsic latents and clamps every factor-owned one.
    """
    if sweep not in SWEEPS:
        raise ConfigError(f"unknown sweep type '{sweep}'; choose one of: {', '.join(SWEEPS)}")
    n_owned = sum(owned[f] for f in FACTORS)
    if sweep == "intrinsic":
        return list(range(n_owned, latents))
    return owned_indices(owned)[sweep]


def clamp_mask(sweeps: list[str] | tuple[str, ...], owned: Mapping[str, int], latents: int) -> torch.Tensor:
    """Bool [S, latents]: True where sweep s clamps the latent (replaces it by one value for the sweep)."""
    mask = torch.ones(len(sweeps), latents, dtype=torch.bool)
    for s, sweep in enumerate(sweeps):
        mask[s, free_indices(sweep, owned, latents)] = False
    return mask
