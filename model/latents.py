"""Which latent indices each factor owns, and which latents a sweep type clamps (pure functions).

Layout (as in the paper): the owned latents come first, in the dataset's factor order (the paper's
z1 = azimuth, z2 = elevation, z3 = light with one latent each); every later latent is intrinsic
(shape, texture). `owned` maps each factor to its latent count, in that order (`Params.owned`).
"""
from __future__ import annotations

from typing import Mapping

import torch

import factors as vocabulary
from config import INTRINSIC, ConfigError


def owned_indices(owned: Mapping[str, int]) -> dict[str, list[int]]:
    """Latent indices per factor, in `owned`'s order, e.g. {azimuth: [0], elevation: [1], light: [2]}."""
    out, start = {}, 0
    for f, n in owned.items():
        out[f] = list(range(start, start + n))
        start += n
    return out


def paper_flips(owned: Mapping[str, int]) -> dict[str, int] | None:
    """The flips of the paper's factors (azimuth and light change sign, elevation does not) when `owned`
    names only those; None otherwise. What a checkpoint without stored flips means."""
    if not set(owned) <= set(vocabulary.PAPER):
        return None
    return {f: vocabulary.KINDS[vocabulary.PAPER[f]].flip for f in owned}


def mirror_parity(owned: Mapping[str, int], latents: int, flips: Mapping[str, int]) -> list[int]:
    """[latents] parity of each latent under a horizontal flip (`model.nets.VAE`): a factor's first
    latent takes the factor's flip (`flips`, from its kind), a second one is even (the cosine beside the
    sine of a full turn), intrinsic latents are free (0; a mirrored identity is another identity)."""
    parity = [0] * latents
    for f, idx in owned_indices(owned).items():
        for k, i in enumerate(idx):
            parity[i] = flips[f] if k == 0 else 1
    return parity


def tied_mask(owned: Mapping[str, int], latents: int) -> torch.Tensor:
    """Bool [latents]: True for the latents a factor owns (z1..), False for the intrinsic ones."""
    mask = torch.zeros(latents, dtype=torch.bool)
    mask[: sum(owned.values())] = True
    return mask


def free_indices(sweep: str, owned: Mapping[str, int], latents: int) -> list[int]:
    """Latents that stay free (per-sample) in a sweep of type `sweep`; all others are clamped.

    A factor sweep frees only that factor's latents. An intrinsic sweep (the mesh changes) frees
    the intrinsic latents and clamps every factor-owned one.
    """
    if sweep == INTRINSIC:
        return list(range(sum(owned.values()), latents))
    if sweep not in owned:
        raise ConfigError(f"unknown sweep type '{sweep}'; choose one of: {', '.join([*owned, INTRINSIC])}")
    return owned_indices(owned)[sweep]


def clamp_mask(sweeps: list[str] | tuple[str, ...], owned: Mapping[str, int], latents: int) -> torch.Tensor:
    """Bool [S, latents]: True where sweep s clamps the latent (replaces it by one value for the sweep)."""
    mask = torch.ones(len(sweeps), latents, dtype=torch.bool)
    for s, sweep in enumerate(sweeps):
        mask[s, free_indices(sweep, owned, latents)] = False
    return mask
