"""What the encoder sees: training images moved and scaled a little, while the decoder's target stays the
render itself (`train.view_shift`, `train.view_scale`; not in the paper).

In: one step's images [N, C, H, W] and a seeded generator. Out: the encoder's view of each image, moved by
a sub-pixel offset of up to `shift` pixels in each direction and scaled by a factor within 1 ± `scale`
about the centre (bilinear, border pixels repeated into what moves in), one draw per image.

Why: a camera elevated 20 degrees puts a head's neck a few pixels lower, so an encoder can read elevation
off where the head sits in the frame, and then it breaks on meshes framed a little differently (2 pixels
moved the faces elevation latent as much as 9-16 degrees; BENCHMARKS.md "Meshes made elsewhere"). Moving
the *training* images with the target (a jitter tried earlier) taught the decoder offsets and the encoder
nothing. Here the target does not move, so every latent must map a moved view to the unmoved render: the
code must not depend on where the object sits, and the factor must be read off the object's own change.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def draw_views(images: int, shift: float, scale: float, generator: torch.Generator) -> torch.Tensor:
    """float32 [images, 3] of (dy, dx, s): offsets uniform on [-shift, shift] pixels, scale factors
    uniform on [1 - scale, 1 + scale]."""
    u = torch.rand((images, 3), generator=generator) * 2 - 1
    return torch.stack([u[:, 0] * shift, u[:, 1] * shift, 1 + u[:, 2] * scale], dim=1)


def apply_views(x: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Each image of x [N, C, H, W] moved by its (dy, dx) pixels (positive: down, right) and scaled by its
    s about the image centre (s > 1 enlarges), sampled bilinearly with the border repeated outwards."""
    if len(views) != len(x):
        raise ValueError(f"{len(views)} views for {len(x)} images")
    h, w = x.shape[-2:]
    dy, dx, s = views.to(x.device, torch.float32).unbind(1)
    theta = torch.zeros(len(x), 2, 3, device=x.device)
    # affine_grid maps output coordinates (in [-1, 1]) to input ones: input = output / s - offset / s
    theta[:, 0, 0], theta[:, 1, 1] = 1 / s, 1 / s
    theta[:, 0, 2], theta[:, 1, 2] = -dx * 2 / w / s, -dy * 2 / h / s
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved.to(x.dtype).contiguous(memory_format=torch.contiguous_format)
