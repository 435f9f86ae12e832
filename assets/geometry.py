"""Closed-mesh primitives and whole-mesh operations shared by the generators and the user-file loader.

Every primitive returns a closed `Mesh` with counter-clockwise (outward) triangles. Edges that should
look sharp (box corners, cap rims) get separate vertices, so smooth shading in the renderer keeps them
sharp; round surfaces share vertices so they shade smoothly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from assets.mesh import Mesh

Color = Sequence[float]


def merge(parts: Sequence[Mesh]) -> Mesh:
    """One mesh holding all parts (each part stays its own closed shell)."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return Mesh(
        np.concatenate([p.vertices for p in parts]),
        np.concatenate([p.faces + o for p, o in zip(parts, offsets)]),
        np.concatenate([p.colors for p in parts]),
    )


def normalise(mesh: Mesh) -> Mesh:
    """The canonical frame's size and position: bounding-box centre at the origin, largest extent 1."""
    v = mesh.vertices.astype(np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    extent = float((hi - lo).max())
    v = (v - (lo + hi) / 2.0) / (extent if extent > 0 else 1.0)
    return Mesh(v, mesh.faces, mesh.colors)


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed mesh; positive when its triangles face outward."""
    v = vertices.astype(np.float64)[faces]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    v = vertices.astype(np.float64)[faces]
    return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)


def transform(mesh: Mesh, rotation: np.ndarray | None = None, offset: Sequence[float] = (0, 0, 0)) -> Mesh:
    v = mesh.vertices.astype(np.float64)
    if rotation is not None:
        v = v @ np.asarray(rotation, dtype=np.float64).T
    return Mesh(v + np.asarray(offset, dtype=np.float64), mesh.faces, mesh.colors)


def rotation_x(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_y(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rotation_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def sphere_grid(theta: np.ndarray | int, phi: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A closed UV sphere with poles on ±Z: (unit directions [V,3], faces, polar angle, azimuth).

    `theta`: polar angles of the rings strictly between the poles (or their count), `phi`: the
    azimuths of one ring in [-pi, pi) (or their count). Azimuth 0 points to -Y (the front),
    increasing toward +X; the seam is at the back (+Y) and rings wrap by index (no crack).
    """
    if np.isscalar(theta):
        theta = np.linspace(0.0, np.pi, int(theta) + 1)[1:-1]
    if np.isscalar(phi):
        phi = np.linspace(-np.pi, np.pi, int(phi), endpoint=False)
    n_lon, rings = len(phi), len(theta)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    th = np.concatenate([[0.0], th.ravel(), [np.pi]])
    ph = np.concatenate([[0.0], ph.ravel(), [0.0]])
    dirs = np.stack([np.sin(th) * np.sin(ph), -np.sin(th) * np.cos(ph), np.cos(th)], axis=1)
    ring = lambda r, j: 1 + r * n_lon + (j % n_lon)  # noqa: E731
    j = np.arange(n_lon)
    top = np.stack([np.zeros(n_lon, int), ring(0, j + 1), ring(0, j)], axis=1)
    bottom_pole = 1 + rings * n_lon
    bottom = np.stack([np.full(n_lon, bottom_pole), ring(rings - 1, j), ring(rings - 1, j + 1)], axis=1)
    r, jj = np.meshgrid(np.arange(rings - 1), j, indexing="ij")
    r, jj = r.ravel(), jj.ravel()
    a, b, c, d = ring(r, jj), ring(r, jj + 1), ring(r + 1, jj), ring(r + 1, jj + 1)
    quads = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    faces = np.concatenate([top, quads, bottom])[:, [0, 2, 1]]  # rings run counter-clockwise seen from +Z
    return dirs, faces, th, ph


def warped_samples(n: int, lo: float, hi: float, centre: float, width: float, gain: float,
                   endpoint: bool = True) -> np.ndarray:
    """n values from lo to hi, `1 + gain` times denser near `centre` (detail where it is needed)."""
    fine = np.linspace(lo, hi, 4096)
    density = 1.0 + gain * np.exp(-(((fine - centre) / width) ** 2))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    cdf /= cdf[-1]
    u = np.linspace(0.0, 1.0, n) if endpoint else np.arange(n) / n
    return np.interp(u, cdf, fine)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals."""
    v = vertices.astype(np.float64)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        n[:, k] = np.bincount(faces.ravel(), weights=np.repeat(fn[:, k], 3), minlength=len(v))
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def ellipsoid(center: Sequence[float], radii: Sequence[float], color: Color,
              rotation: np.ndarray | None = None, n_lon: int = 24, n_lat: int = 12) -> Mesh:
    dirs, faces, _, _ = sphere_grid(n_lon, n_lat)
    mesh = Mesh(dirs * np.asarray(radii, dtype=np.float64), faces, _fill(len(dirs), color))
    return transform(mesh, rotation, center)


def extrude(outline: np.ndarray, z0: float, z1: float, color: Color, sharp: bool = False) -> Mesh:
    """A prism: a convex counter-clockwise outline [N,2] in the XY plane, from z0 up to z1.

    `sharp` gives each side quad its own vertices (flat sides, e.g. a box); otherwise the side
    shades smoothly around the outline (e.g. a cylinder or a rounded seat).
    """
    p = np.asarray(outline, dtype=np.float64)
    n = len(p)
    centre = p.mean(axis=0)
    bottom = np.column_stack([np.vstack([centre, p]), np.full(n + 1, z0)])
    top = np.column_stack([np.vstack([centre, p]), np.full(n + 1, z1)])
    i = np.arange(n)
    k = (i + 1) % n
    cap_top = np.stack([np.zeros(n, int), 1 + i, 1 + k], axis=1)
    cap_bottom = np.stack([np.zeros(n, int), 1 + k, 1 + i], axis=1) + (n + 1)
    verts = [top, bottom]
    base = 2 * (n + 1)
    if sharp:
        b0, b1 = bottom[1 + i], bottom[1 + k]
        t0, t1 = top[1 + i], top[1 + k]
        side_v = np.stack([b0, b1, t1, t0], axis=1).reshape(-1, 3)
        q = base + 4 * i
        side = np.concatenate([np.stack([q, q + 1, q + 2], 1), np.stack([q, q + 2, q + 3], 1)])
    else:
        side_v = np.vstack([bottom[1:], top[1:]])
        b0, b1, t0, t1 = base + i, base + k, base + n + i, base + n + k
        side = np.concatenate([np.stack([b0, b1, t1], 1), np.stack([b0, t1, t0], 1)])
    verts.append(side_v)
    v = np.vstack(verts)
    return Mesh(v, np.concatenate([cap_top, cap_bottom, side]), _fill(len(v), color))


def box(lo: Sequence[float], hi: Sequence[float], color: Color) -> Mesh:
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    outline = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return extrude(outline, z0, z1, color, sharp=True)


def tube(p0: Sequence[float], p1: Sequence[float], r0: float, r1: float, color: Color,
         sides: int = 16, spin: float = 0.0) -> Mesh:
    """A closed frustum from p0 (radius r0) to p1 (radius r1); `sides=4` makes a square post."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    length = float(np.linalg.norm(p1 - p0))
    angle = np.radians(spin) + 2 * np.pi * np.arange(sides) / sides
    ring = np.column_stack([np.cos(angle), np.sin(angle)])
    prism = extrude(ring, 0.0, length, color, sharp=sides <= 6)
    # Taper: scale each vertex's XY by the radius at its height.
    v = prism.vertices.astype(np.float64)
    v[:, :2] *= (r0 + (r1 - r0) * v[:, 2:3] / length)
    return transform(Mesh(v, prism.faces, prism.colors), _frame_along(p1 - p0), p0)


def rounded_rect(width: float, depth: float, radius: float, per_corner: int = 6) -> np.ndarray:
    """Counter-clockwise outline of a rectangle centred at the origin with rounded corners."""
    radius = min(radius, width / 2 * 0.999, depth / 2 * 0.999)
    if radius <= 1e-6:
        w, d = width / 2, depth / 2
        return np.array([[-w, -d], [w, -d], [w, d], [-w, d]])
    cx, cy = width / 2 - radius, depth / 2 - radius
    pts = []
    for k, (sx, sy) in enumerate([(1, -1), (1, 1), (-1, 1), (-1, -1)]):
        a = np.radians(-90 + 90 * k) + np.linspace(0, np.pi / 2, per_corner)
        pts.append(np.column_stack([sx * cx + radius * np.cos(a), sy * cy + radius * np.sin(a)]))
    return np.vstack(pts)


def ellipse(width: float, depth: float, n: int = 40) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    return np.column_stack([width / 2 * np.cos(a), depth / 2 * np.sin(a)])


def _frame_along(axis: np.ndarray) -> np.ndarray:
    """A rotation taking +Z to `axis` (columns: new X, Y, Z)."""
    z = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def _fill(n: int, color: Color) -> np.ndarray:
    return np.tile(np.asarray(color, dtype=np.float64), (n, 1))
