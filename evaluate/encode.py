"""The only torch in the evaluation: encoder means, decoded images and reconstruction error, in batches.

Images go in as the shards store them (uint8 [N, H, W] or [N, H, W, C]) and come out as float arrays
[N, H, W, C] in [0, 1], so every measure downstream is plain numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.loader import to_tensor

BATCH = 256


@dataclass(frozen=True)
class Encoded:
    """Encoder means of a set of sweeps, flattened: row n belongs to sweep `group[n]`."""

    codes: np.ndarray  # float64 [N, L]
    labels: np.ndarray  # float32 [N, F], the dataset's factor order
    mesh: np.ndarray  # int [N]
    group: np.ndarray  # int [N]

    def __len__(self) -> int:
        return len(self.codes)


@torch.no_grad()
def encode(model, images: np.ndarray) -> np.ndarray:
    """Encoder means [N, L] (float64) of uint8 images."""
    out = [model.encode(to_tensor(images[i:i + BATCH]))[0].double().numpy() for i in range(0, len(images), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, 0))


@torch.no_grad()
def decode(model, codes: np.ndarray) -> np.ndarray:
    """Decoded images float32 [N, H, W, C] in [0, 1] of latents [N, L]."""
    out = []
    for i in range(0, len(codes), BATCH):
        z = torch.as_tensor(codes[i:i + BATCH], dtype=torch.float32)
        out.append(torch.sigmoid(model.decode(z)).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W(, C)] -> float32 [N, H, W, C] in [0, 1] (the layout `decode` returns)."""
    x = images.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


def encode_sweeps(model, sweeps: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Encoded:
    """Encode every sweep of an iterator of (images, labels, mesh), keeping which sweep each row is."""
    codes, labels, mesh, group = [], [], [], []
    for g, (images, lab, m) in enumerate(sweeps):
        codes.append(encode(model, images))
        labels.append(lab)
        mesh.append(m)
        group.append(np.full(len(images), g))
    if not codes:
        return Encoded(np.zeros((0, 0)), np.zeros((0, 3), np.float32), np.zeros(0, int), np.zeros(0, int))
    return Encoded(np.concatenate(codes), np.concatenate(labels), np.concatenate(mesh), np.concatenate(group))


@torch.no_grad()
def reconstruction_error(model, images: np.ndarray) -> dict[str, float]:
    """Mean per-pixel binary cross-entropy and squared error of decode(encoder mean) vs the image."""
    bce = mse = 0.0
    pixels = 0
    for i in range(0, len(images), BATCH):
        x = to_tensor(images[i:i + BATCH])
        logits = model.decode(model.encode(x)[0])
        bce += F.binary_cross_entropy_with_logits(logits, x, reduction="sum").item()
        mse += F.mse_loss(torch.sigmoid(logits), x, reduction="sum").item()
        pixels += x.numel()
    return {"bce": bce / pixels, "mse": mse / pixels}
