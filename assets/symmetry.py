"""Turn symmetry: whether a mesh looks the same after a turn about the up axis (a mesh in, an order out).

A round stool on three legs looks the same from azimuth 0 and 120: no picture of it tells those camera
azimuths apart, so neither a model nor an evaluation can read the azimuth of such a sweep. The render
planner (`render.plan`) keeps such meshes out of the camera-azimuth sweeps whose range is wider than
the mesh's symmetric turn. Elevation, light and identity sweeps are unaffected: the light turns with the
camera and elevation does not depend on a turn of the object.

`turn_order(mesh)` is the largest n in 2..`MAX_ORDER` such that turning the mesh by 360/n degrees about
the vertical axis (+Z in the canonical frame) through its surface's centroid maps its surface and its
albedo onto themselves, or 1 when no turn does. The surface is compared on
points sampled by area with fixed seeds, so the answer is deterministic and does not depend on how the
file is triangulated.
"""
from __future__ import annotations

import numpy as np

from assets import geometry
from assets.mesh import Mesh

MAX_ORDER = 8
"""Turns of 45 degrees and less count as 8: a cylinder has every order."""
SAMPLES = 4000
SLACK = 1.5
"""A turn maps the mesh onto itself when the turned sample lies about as close to the surface as a second,
independent sample of the unturned surface does: its mean and 99th-percentile distances within this factor
of that baseline's (the baseline is the sampling's own spacing, so the test does not depend on how finely
the mesh is sampled or tessellated)."""
COLOR_SLACK = 0.02
"""Matched points may differ in albedo by this much more than the baseline's: a stool painted on one side is
not symmetric."""


def turn_order(mesh: Mesh) -> int:
    from scipy.spatial import cKDTree  # here: the render planner imports this module for `ambiguous_turn`

    v, f = mesh.vertices.astype(np.float64), mesh.faces
    areas = geometry.triangle_areas(v, f) if len(f) else np.zeros(0)
    if areas.sum() <= 0:
        return 1
    # The turn is about the vertical axis through the surface's centroid: a stool whose splayed legs reach
    # past its seat on one side is centred by its bounding box a little off its own axis, and the views a
    # symmetric turn apart then differ only by a shift of a pixel or two.
    axis = (v[f].mean(axis=1) * areas[:, None]).sum(axis=0) / areas.sum()
    axis[2] = 0.0
    cumulative = np.cumsum(areas)
    first, first_colors = _surface_samples(mesh, cumulative, seed=0)
    second, second_colors = _surface_samples(mesh, cumulative, seed=1)
    first, second = first - axis, second - axis
    tree = cKDTree(first)

    def distances(points: np.ndarray) -> tuple[float, float, float]:
        dist, idx = tree.query(points)
        return dist.mean(), np.quantile(dist, 0.99), np.abs(first_colors[idx] - second_colors).mean()

    mean0, q0, color0 = distances(second)
    for n in range(MAX_ORDER, 1, -1):
        turned = second @ geometry.rotation_z(360.0 / n).T
        if tree.query(turned[:SAMPLES // 10])[0].mean() > 2 * SLACK * mean0:
            continue  # clearly not a symmetric turn: a tenth of the points tells (most meshes stop here)
        mean, q, color = distances(turned)
        if mean < SLACK * mean0 and q < SLACK * q0 and color < color0 + COLOR_SLACK:
            return n
    return 1


def ambiguous_turn(order: int, width: float) -> bool:
    """Whether a camera-azimuth range `width` degrees wide holds two views of the same picture."""
    return order > 1 and 360.0 / order < width


def _surface_samples(mesh: Mesh, cumulative_area: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`SAMPLES` points uniform over the surface (by area) and their interpolated albedo."""
    rng = np.random.default_rng(seed)
    tri = np.minimum(np.searchsorted(cumulative_area, rng.random(SAMPLES) * cumulative_area[-1]), len(mesh.faces) - 1)
    a, b = rng.random((2, SAMPLES, 1))
    flip = (a + b) > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    corners = mesh.faces[tri]
    w = np.concatenate([1 - a - b, a, b], axis=1)[:, :, None]
    points = (mesh.vertices[corners].astype(np.float64) * w).sum(axis=1)
    colors = (mesh.colors[corners].astype(np.float64) * w).sum(axis=1)
    return points, colors
