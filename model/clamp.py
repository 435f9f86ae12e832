"""The DC-IGN clamp as a pure torch function.

Input: a latent tensor grouped by sweep, [S, K, L] (S sweeps of K images), and a bool mask [S, L]
(True = clamped in that sweep, from `model.latents.clamp_mask`).

Forward: every clamped latent is replaced, within its sweep, by one value: the sweep's mean
(the paper) or its first sample (the original Torch code). Backward: the replacement value is
detached, so clamped latents receive no reconstruction gradient at all; the only signal they get
is the optional invariance pull (`pull_loss`), which pulls each sample toward the sweep mean.
"""
from __future__ import annotations

from typing import Literal

import torch

ClampMode = Literal["mean", "first"]


def clamp(t: torch.Tensor, mask: torch.Tensor, mode: ClampMode = "mean") -> torch.Tensor:
    """Replace clamped latents by one detached value per sweep. t: [S, K, L]; mask: bool [S, L]."""
    if t.dim() != 3 or mask.shape != (t.shape[0], t.shape[2]):
        raise ValueError(f"clamp expects t [S,K,L] and mask [S,L], got {tuple(t.shape)} and {tuple(mask.shape)}")
    if mode == "mean":
        value = t.mean(dim=1, keepdim=True)
    elif mode == "first":
        value = t[:, :1]
    else:
        raise ValueError(f"unknown clamp mode {mode!r}")
    return torch.where(mask.unsqueeze(1), value.detach().expand_as(t), t)


def pull_loss(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Invariance pull: ½ Σ (t − mean_sweep(t))² over clamped latents, averaged over images.

    Its gradient w.r.t. each sample is (t − mean), the original code's signal; minimising it
    (scaled by the pull strength) shrinks the clamped latents' spread within a sweep.
    """
    centred = t - t.mean(dim=1, keepdim=True).detach()
    per_image = 0.5 * (centred.pow(2) * mask.unsqueeze(1)).sum(dim=2)
    return per_image.mean()
