"""Portrait framing for heads made elsewhere: a canonical mesh in, the same mesh framed on its head out.

The face generator frames every bust on the head itself (chin to crown `faces.HEAD_SIZE` tall, centred
at the origin), so the camera pivots on the head and the head fills the same part of every image.
A file made elsewhere is usually framed by its whole bounding box instead: a bust with a chest then
puts a small head high in the frame, which moves through the image as the camera's elevation changes.
A model trained on generated heads reads that as something else than elevation.

`frame_on_head` finds the neck as the narrowest horizontal slice in the lower part of the mesh with
something clearly wider below it (shoulders, a chest), and scales and moves what lies above the neck
so that it is as wide as a generated head and its crown as high. A mesh with no neck (a head cut at
the chin) is framed as a whole.
"""
from __future__ import annotations

import numpy as np

from assets import geometry
from assets.mesh import Mesh

HEAD_WIDTH = 0.61
CROWN = 0.445
"""Where the face generator puts a head, measured on it as this module measures a file made elsewhere
(median over generated heads; `tests/test_framing.py` measures them again): the widest horizontal slice
of the head (ears and hair included) and the height of the crown (hair included). Width rather than
height sets the scale: the chin of a bust is hard to find, and hats and hair make heights differ more."""
NECK_SEARCH = (0.3, 1.0)
"""Where the neck is looked for: from this share of the mesh's height below the crown to the bottom."""
SHOULDERS_WIDER = 1.3
"""A neck is a slice that something below it is at least this much wider than."""
BANDS = 60
SAMPLES = 40_000


def neck_height(mesh: Mesh, points: np.ndarray | None = None) -> float:
    """Z of the narrowest horizontal slice in the lower part of a +Z-up mesh (its lowest Z if none).

    Widths are measured on points sampled evenly over the surface (a seeded draw, so the same mesh
    gives the same answer), which sees a neck even where a coarse mesh has no vertices.
    """
    points = surface_points(mesh, SAMPLES) if points is None else points
    width = band_widths(points)
    # A running median of three ignores one band thinned by a crease or a gap in the sampling.
    padded = np.concatenate([width[:1], width, width[-1:]])
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    # A neck has something clearly wider below it (shoulders, a chest, a collar); the narrowing end of a
    # rounded bust or of a head cut at the chin does not.
    below = np.maximum.accumulate(smooth[::-1])[::-1]
    below = np.concatenate([below[1:], [0.0]])
    first = int(NECK_SEARCH[0] * BANDS)
    candidates = [i for i in range(first, BANDS) if 0 < smooth[i] and below[i] >= SHOULDERS_WIDER * smooth[i]]
    z = points[:, 2]
    if not candidates:
        return float(z.min())
    i = min(candidates, key=lambda k: smooth[k])
    return float(z.max() - (i + 0.5) * (z.max() - z.min()) / BANDS)


def band_widths(points: np.ndarray) -> np.ndarray:
    """Left-to-right width (2nd to 98th percentile of x) of BANDS horizontal slices, top to bottom;
    0 where a slice holds too few points to say."""
    z = points[:, 2]
    edges = np.linspace(z.max(), z.min(), BANDS + 1)
    width = np.zeros(BANDS)
    for i in range(BANDS):
        x = points[(z <= edges[i]) & (z >= edges[i + 1]), 0]
        if len(x) >= 8:
            lo, hi = np.percentile(x, [2, 98])
            width[i] = hi - lo
    return width


def frame_on_head(mesh: Mesh) -> Mesh:
    """The mesh scaled and moved so that its head (everything above the neck) sits as a generated head:
    as wide, its crown as high, centred left to right and front to back."""
    v = mesh.vertices.astype(np.float64)
    points = surface_points(mesh, SAMPLES)
    head = points[points[:, 2] >= neck_height(mesh, points)]
    scale = HEAD_WIDTH / max(float(band_widths(head).max()), 1e-9)
    lo, hi = head.min(axis=0), head.max(axis=0)
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2] - CROWN / scale])
    return Mesh((v - centre) * scale, mesh.faces, mesh.colors)


def surface_points(mesh: Mesh, n: int, seed: int = 0) -> np.ndarray:
    """n points drawn uniformly over the surface by area (seeded: the same mesh gives the same points)."""
    v = mesh.vertices.astype(np.float64)
    area = geometry.triangle_areas(v, mesh.faces)
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(area), size=n, p=area / area.sum())
    a, b = rng.random((2, n))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    corners = v[mesh.faces[tri]]
    return corners[:, 0] + a[:, None] * (corners[:, 1] - corners[:, 0]) + b[:, None] * (corners[:, 2] - corners[:, 0])
