"""Parametric human heads: an identity (28 numbers) in, a closed, smooth head mesh out.

Construction (all numpy, a few milliseconds per head), in centimetres before normalisation:
- the skull: a UV sphere shaped into a head (superelliptic cross-sections, a cranium that is
  widest above the ears, a jaw that narrows toward the chin, a back of the head that tucks in
  toward the nape), with its poles on the Z axis so none falls on the face;
- facial features: smooth displacement fields along the skull's normals (brow ridge, eye sockets,
  nose with bridge, tip and alae, cheekbones, lips and the mouth line, chin, forehead slope);
- separate closed shells: two eyeballs (sclera, iris, pupil) seated in the sockets, two cupped
  ears, and a neck stump;
- albedo: skin tone, redder lips, darker brows, a hairline, eye colour.
Canonical frame: centred, unit size, +Z up, the face looking toward -Y.
"""
from __future__ import annotations

import numpy as np

from assets import geometry as g
from assets.mesh import Mesh

PARAMS: dict[str, tuple[float, float]] = {
    # skull (cm)
    "head_width": (13.8, 16.2),
    "head_length": (17.5, 20.5),
    "head_height": (21.0, 24.5),
    "jaw_width": (0.66, 0.88),  # jaw width / head width
    "chin_projection": (0.3, 1.3),
    "chin_height": (1.8, 3.2),
    "forehead_slope": (0.0, 1.6),
    # eyes and brow
    "eye_spacing": (5.7, 7.0),
    "eye_height": (-0.6, 0.6),
    "eye_depth": (0.7, 1.3),
    "eye_size": (1.05, 1.3),
    "brow_ridge": (0.2, 0.8),
    "brow_height": (1.5, 2.3),
    # nose
    "nose_length": (4.4, 5.8),
    "nose_width": (3.0, 4.2),
    "nose_projection": (1.7, 2.8),
    "nose_bridge": (0.4, 1.2),
    # cheeks, mouth, ears, neck
    "cheekbones": (0.2, 0.9),
    "cheek_fullness": (-0.4, 0.5),
    "mouth_width": (4.4, 5.8),
    "mouth_gap": (1.7, 2.5),  # nose bottom to mouth line
    "lip_fullness": (0.25, 0.75),
    "ear_size": (5.5, 7.0),
    "ear_protrusion": (8.0, 32.0),  # degrees
    "neck_width": (10.0, 12.5),
    # albedo
    "skin_tone": (0.0, 1.0),  # light to dark
    "lip_tint": (0.0, 1.0),
    "hair_tone": (0.0, 1.0),  # dark to fair
    "hairline": (0.0, 1.0),  # receding (0) to full (1)
    "iris_tone": (0.0, 1.0),  # dark brown to grey-blue
}

# Mesh resolution: denser where the features are (the front, and from the eyes to the chin).
N_LON, N_LAT = 176, 132
_PHI = g.warped_samples(N_LON, -np.pi, np.pi, 0.0, 0.9, 2.0, endpoint=False)
_THETA = g.warped_samples(N_LAT + 1, 0.0, np.pi, 0.62 * np.pi, 0.35, 1.5)[1:-1]
_GRID = g.sphere_grid(_THETA, _PHI)


def sample(rng: np.random.Generator) -> dict[str, float]:
    return {name: round(float(rng.uniform(lo, hi)), 6) for name, (lo, hi) in PARAMS.items()}


def build(p: dict[str, float]) -> Mesh:
    skin = _skin_color(p)
    head, eye_z = _head(p, skin)
    eyes = [_eyeball(p, head, side, eye_z) for side in (-1, 1)]
    ears = [_ear(p, head, side, eye_z, skin) for side in (-1, 1)]
    neck = _neck(p, skin)
    return g.normalise(g.merge([head, *eyes, *ears, neck]))


# ------------------------------------------------------------------------------------- skull


def _smooth(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _bump(x, z, cx, cz, sx, sz, power: float = 2.0):
    return np.exp(-(np.abs((x - cx) / sx) ** power) - ((z - cz) / sz) ** 2)


def _skull(p: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    dirs, faces, th, ph = _GRID
    a, b, c = p["head_width"] / 2, p["head_length"] / 2, p["head_height"] / 2
    # Horizontal cross-sections are superellipses: squarer at the face and cheeks than an ellipse.
    front = np.cos(ph) > 0
    n = np.where(front, 2.6, 2.2)
    cx, cy = np.sin(ph), -np.cos(ph)
    r = (np.abs(cx) ** n + np.abs(cy) ** n) ** (-1.0 / n)
    s, ct = np.sin(th), np.cos(th)
    # A blunter crown than an ellipsoid's.
    x, y, z = a * s * r * cx, b * s * r * cy, c * np.sign(ct) * np.abs(ct) ** np.where(ct > 0, 0.85, 1.0)
    below = _smooth(0.0, -c, z)  # 0 at the eyes, 1 at the chin
    above = _smooth(0.0, c, z)
    x = x * (1.0 + 0.24 * above * (1 - above) - (1 - p["jaw_width"]) * below ** 1.3)
    # Below the eyes the head is a jaw, not a dome: its sections shrink and slide forward, so the
    # chin sits at the front-bottom and the underside of the jaw runs back to the neck.
    y = np.where(y > 0, y * (1.0 - 0.5 * below ** 1.2), y * (1.0 - 0.3 * below ** 2)) - 0.42 * b * below ** 1.5
    # The occiput bulges behind the ears.
    y = y + np.where(y > 0, 0.08 * b * above * (1 - above) * 4 * np.clip(cy, 0, 1), 0.0)
    # Forehead slope: the upper face leans back.
    y = y + np.where(y < 0, p["forehead_slope"] * _smooth(0.25 * c, c, z) * 1.5, 0.0)
    return np.stack([x, y, z], axis=1), faces


def _head(p: dict[str, float], skin: np.ndarray) -> tuple[Mesh, float]:
    v, faces = _skull(p)
    normals = g.vertex_normals(v, faces)
    x, z = v[:, 0], v[:, 2]
    facing = np.clip(-normals[:, 1], 0.0, 1.0) ** 0.7  # features live on the front only
    c = p["head_height"] / 2
    eye_z, ex = p["eye_height"], p["eye_spacing"] / 2
    nose_top, nose_bottom = eye_z + 0.6, eye_z - p["nose_length"]
    mouth_z = nose_bottom - p["mouth_gap"]
    chin_z = -c + p["chin_height"] * 0.55
    mw = p["mouth_width"] / 2

    d = np.zeros(len(v))
    # Brow ridge over both eyes, and the sockets under it.
    d += p["brow_ridge"] * (_bump(x, z, -ex, eye_z + p["brow_height"], 2.0, 0.8)
                            + _bump(x, z, ex, eye_z + p["brow_height"], 2.0, 0.8))
    d -= p["eye_depth"] * (_bump(x, z, -ex, eye_z + 0.1, 1.55, 1.05) + _bump(x, z, ex, eye_z + 0.1, 1.55, 1.05))
    # Nose: a ridge whose projection grows from the bridge to the tip and whose width grows too.
    t = (nose_top - z) / (nose_top - nose_bottom)
    profile = p["nose_bridge"] + (p["nose_projection"] - p["nose_bridge"]) * np.clip(t, 0, 1) ** 1.6
    envelope = _smooth(-0.25, 0.05, t) * (1.0 - _smooth(0.86, 1.04, t))
    half = 0.55 + (p["nose_width"] / 2 - 0.9) * np.clip(t, 0, 1) ** 2.2
    d += profile * envelope * np.exp(-((x / half) ** 2))
    alae_z = nose_bottom + 0.55
    d += 0.65 * (_bump(x, z, -(p["nose_width"] / 2 - 0.55), alae_z, 0.6, 0.55)
                 + _bump(x, z, p["nose_width"] / 2 - 0.55, alae_z, 0.6, 0.55))
    # Cheekbones and cheeks.
    d += p["cheekbones"] * (_bump(x, z, -(ex + 1.5), eye_z - 1.9, 1.7, 1.1) + _bump(x, z, ex + 1.5, eye_z - 1.9, 1.7, 1.1))
    d += p["cheek_fullness"] * (_bump(x, z, -(ex + 1.2), mouth_z + 0.8, 1.8, 1.8)
                                + _bump(x, z, ex + 1.2, mouth_z + 0.8, 1.8, 1.8))
    # Mouth: the rounded muzzle, two lips that end at the corners, the line between them.
    d += 0.7 * _bump(x, z, 0.0, mouth_z, mw + 0.8, 2.4)
    lip = p["lip_fullness"]
    d += lip * _bump(x, z, 0.0, mouth_z + 0.42, mw * 0.95, 0.38, power=4)
    d += lip * 1.1 * _bump(x, z, 0.0, mouth_z - 0.5, mw * 0.85, 0.45, power=4)
    d -= 0.35 * _bump(x, z, 0.0, mouth_z, mw, 0.16, power=4)
    d -= 0.25 * _bump(x, z, 0.0, mouth_z - 1.35, mw * 0.7, 0.4)
    # Philtrum groove under the nose, chin.
    d -= 0.12 * _bump(x, z, 0.0, (nose_bottom + mouth_z) / 2 + 0.2, 0.35, 0.5)
    d += p["chin_projection"] * _bump(x, z, 0.0, chin_z, 1.9, 1.3)
    v = v + normals * (d * facing)[:, None]

    # Albedo, blended with the same soft masks.
    col = np.tile(skin, (len(v), 1))
    lips = (_bump(x, z, 0.0, mouth_z + 0.4, mw * 0.95, 0.34, power=4)
            + _bump(x, z, 0.0, mouth_z - 0.5, mw * 0.85, 0.42, power=4)) * facing
    lip_col = skin * np.array([0.88, 0.62, 0.62]) * (1.0 - 0.25 * p["lip_tint"]) + np.array([0.08, 0.0, 0.0]) * p["lip_tint"]
    col = _blend(col, lip_col, np.clip(lips, 0, 1))
    col = _blend(col, skin * 0.35, np.clip(_bump(x, z, 0.0, mouth_z, mw * 0.95, 0.12, power=4) * facing, 0, 1))
    hair = _hair_color(p)
    brows = (_bump(x, z, -ex - 0.2, eye_z + p["brow_height"] - 0.1, 1.6, 0.32, power=3)
             + _bump(x, z, ex + 0.2, eye_z + p["brow_height"] - 0.1, 1.6, 0.32, power=3)) * facing
    col = _blend(col, hair * 0.8, np.clip(brows * 0.9, 0, 1))
    col = _blend(col, hair, _scalp(p, v, eye_z))
    return Mesh(v, faces, col), eye_z


def _scalp(p: dict[str, float], v: np.ndarray, eye_z: float) -> np.ndarray:
    """Weight of hair colour: above a hairline that is high at the front and low at the back."""
    c = p["head_height"] / 2
    back = _smooth(-0.3, 0.9, v[:, 1] / (p["head_length"] / 2))
    side = np.abs(v[:, 0]) / (p["head_width"] / 2)
    front_line = eye_z + p["brow_height"] + 2.5 + (1.0 - p["hairline"]) * 0.35 * c
    line = front_line + (eye_z - 1.0 - front_line) * np.maximum(back, 0.6 * side ** 3)
    return _smooth(line - 0.3, line + 0.6, v[:, 2])


# ---------------------------------------------------------------------------- eyes, ears, neck


def _surface_point(head: Mesh, x: float, z: float) -> np.ndarray:
    """The front-facing head vertex nearest to (x, z) in the face plane."""
    v = head.vertices.astype(np.float64)
    dist = (v[:, 0] - x) ** 2 + (v[:, 2] - z) ** 2 + np.where(v[:, 1] < 0, 0.0, 1e6)
    return v[int(np.argmin(dist))]


def _side_point(head: Mesh, side: int, y: float, z: float) -> np.ndarray:
    v = head.vertices.astype(np.float64)
    dist = (v[:, 1] - y) ** 2 + (v[:, 2] - z) ** 2 + np.where(v[:, 0] * side > 0, 0.0, 1e6)
    return v[int(np.argmin(dist))]


def _eyeball(p: dict[str, float], head: Mesh, side: int, eye_z: float) -> Mesh:
    r = p["eye_size"]
    socket = _surface_point(head, side * p["eye_spacing"] / 2, eye_z)
    centre = socket + np.array([0.0, r - 0.45, 0.0])  # the cornea stands just out of the socket
    dirs, faces, th, ph = g.sphere_grid(20, 32)
    forward = -dirs[:, 1]
    iris = np.array([0.28, 0.17, 0.10]) * (1 - p["iris_tone"]) + np.array([0.38, 0.45, 0.52]) * p["iris_tone"]
    col = np.tile([0.78, 0.76, 0.72], (len(dirs), 1))
    col = _blend(col, iris, _smooth(0.76, 0.82, forward))
    col = _blend(col, np.array([0.03, 0.03, 0.03]), _smooth(0.94, 0.96, forward))
    return Mesh(centre + dirs * r, faces, col)


def _ear(p: dict[str, float], head: Mesh, side: int, eye_z: float, skin: np.ndarray) -> Mesh:
    h = p["ear_size"]
    ry, rz, thick = 0.55 * h / 2, h / 2, 0.35
    dirs, faces, _, _ = g.sphere_grid(14, 24)
    ly, lz = dirs[:, 1] * ry, dirs[:, 2] * rz
    rim = 1.0 - (dirs[:, 1] ** 2 + dirs[:, 2] ** 2)
    # A cupped disc: both faces bowed inward, so the outer face is a hollow with a rim.
    lx = dirs[:, 0] * thick - 0.9 * rim
    local = np.stack([lx * side, ly, lz], axis=1)
    if side < 0:
        faces = faces[:, [0, 2, 1]]  # mirroring flips the winding
    centre_z = eye_z - 1.5
    attach = _side_point(head, side, 0.6, centre_z)
    rot = g.rotation_z(-side * p["ear_protrusion"]) @ g.rotation_x(-12.0)
    # Rotate about the ear's front edge so it swings out from the head, then seat it on the skin.
    hinge = np.array([0.0, -ry, 0.0])
    v = (local - hinge) @ rot.T + hinge + attach + np.array([side * 0.05, ry * 0.8, 0.0])
    return Mesh(v, faces, np.tile(skin * 0.95, (len(v), 1)))


def _neck(p: dict[str, float], skin: np.ndarray) -> Mesh:
    c = p["head_height"] / 2
    r = p["neck_width"] / 2
    top = (0.0, 1.4, -0.3 * c)
    bottom = (0.0, 1.4, -c - 2.5)
    neck = g.tube(top, bottom, r * 0.95, r, skin * 0.97, sides=40)
    v = neck.vertices.astype(np.float64)
    v[:, 1] = 1.4 + (v[:, 1] - 1.4) * 0.85  # a neck is less deep than wide
    return Mesh(v, neck.faces, neck.colors)


# ----------------------------------------------------------------------------------- colours


def _skin_color(p: dict[str, float]) -> np.ndarray:
    light, mid, dark = np.array([0.90, 0.74, 0.63]), np.array([0.72, 0.52, 0.38]), np.array([0.36, 0.23, 0.15])
    t = p["skin_tone"]
    return light + (mid - light) * min(t * 2, 1.0) + (dark - mid) * max(t * 2 - 1, 0.0)


def _hair_color(p: dict[str, float]) -> np.ndarray:
    dark, brown, fair = np.array([0.05, 0.04, 0.035]), np.array([0.30, 0.19, 0.10]), np.array([0.75, 0.60, 0.36])
    t = p["hair_tone"] ** 1.5  # most people have dark hair
    return dark + (brown - dark) * min(t * 2, 1.0) + (fair - brown) * max(t * 2 - 1, 0.0)


def _blend(col: np.ndarray, target: np.ndarray, w: np.ndarray) -> np.ndarray:
    return col + (np.asarray(target) - col) * w[:, None]
