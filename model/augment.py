"""Sweep-constant translation jitter of training images (`train.shift`; not in the paper).

In: one step's images [N, C, H, W], split into groups of consecutive rows (a sweep in a DC-IGN step,
one image in a plain VAE step), and a seeded generator. Out: the same images, each group moved by one
whole-pixel offset drawn for it, the border pixels repeated into what moves in.

Why: the rendered factors move the object in the frame (a camera elevated 20 degrees puts a head's neck
lower), and an encoder that reads the factor off where things sit in the frame breaks on meshes framed a
little differently (a 2-pixel shift moved the faces elevation latent as much as 9 degrees of elevation;
BENCHMARKS.md "Meshes made elsewhere"). One offset per sweep keeps what a sweep varies intact, so the tied
latent must explain the sweep from the object's own change, and the offset is one more thing the identity
latents carry.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def draw_offsets(groups: int, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """int64 [groups, 2] of (dy, dx), each uniform on [-max_shift, max_shift]."""
    return torch.randint(-max_shift, max_shift + 1, (groups, 2), generator=generator)


def shift_groups(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move each of len(offsets) equal groups of rows of `x` by its (dy, dx) (positive: down, right),
    repeating the border pixels into the vacated edge (the background, or a neck that leaves the frame)."""
    groups = len(offsets)
    if groups == 0 or len(x) % groups:
        raise ValueError(f"{len(x)} images do not split into {groups} equal groups")
    m = int(offsets.abs().max())
    if m == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (m, m, m, m), mode="replicate")
    k = len(x) // groups
    parts = [padded[g * k:(g + 1) * k, :, m - dy: m - dy + h, m - dx: m - dx + w]
             for g, (dy, dx) in enumerate(offsets.tolist())]
    return torch.cat(parts).contiguous(memory_format=torch.contiguous_format)
