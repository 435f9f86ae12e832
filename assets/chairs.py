"""Parametric chairs: a design (discrete styles as numbers, dimensions in metres) in, a mesh out.

A chair is built on the floor (z = 0) with its seat front toward -Y, from closed parts: a seat slab
(square, rounded or round), legs (four straight, splayed or tapered posts, square or round, or a
pedestal column on radiating feet), a back (solid panel, horizontal slats, vertical bars, or a
partial panel high on two posts), optional arms and optional stretcher bars. Then it is moved to
the canonical frame: centred, unit size, +Z up, front toward -Y.
Discrete choices are stored as whole numbers in the identity (`seat_shape`, `leg_style`, ...),
so every identity is a flat dict of floats.
"""
from __future__ import annotations

import numpy as np

from assets import geometry as g
from assets.mesh import Mesh

SEAT_SHAPES = ("square", "rounded", "round")
LEG_STYLES = ("straight", "splayed", "tapered", "pedestal")
BACK_STYLES = ("solid", "slats", "bars", "partial")

CHOICES: dict[str, int] = {  # name -> number of options (drawn uniformly)
    "seat_shape": len(SEAT_SHAPES),
    "leg_style": len(LEG_STYLES),
    "leg_round": 2,
    "back_style": len(BACK_STYLES),
    "back_count": 4,  # slats or bars: 2..5
    "arms": 2,
    "stretchers": 2,
    "upholstered": 2,
}
DIMENSIONS: dict[str, tuple[float, float]] = {
    "seat_width": (0.40, 0.56),
    "seat_depth": (0.38, 0.52),
    "seat_height": (0.40, 0.50),
    "seat_thickness": (0.02, 0.07),
    "corner_radius": (0.04, 0.14),
    "leg_thickness": (0.025, 0.05),
    "leg_inset": (0.0, 0.04),
    "leg_splay": (5.0, 14.0),  # degrees
    "back_height": (0.32, 0.58),
    "back_tilt": (2.0, 16.0),  # degrees
    "back_thickness": (0.018, 0.045),
    "arm_height": (0.18, 0.26),
    "stretcher_height": (0.10, 0.20),
    "frame_tone": (0.0, 1.0),  # light wood to dark wood / black
    "seat_tone": (0.0, 1.0),
}


def sample(rng: np.random.Generator) -> dict[str, float]:
    p = {name: float(rng.integers(n)) for name, n in CHOICES.items()}
    p.update({name: round(float(rng.uniform(lo, hi)), 6) for name, (lo, hi) in DIMENSIONS.items()})
    return p


def build(p: dict[str, float]) -> Mesh:
    frame = _tone(p["frame_tone"])
    cushion = _fabric(p["seat_tone"]) if p["upholstered"] else frame
    w, d, h, t = p["seat_width"], p["seat_depth"], p["seat_height"], p["seat_thickness"]
    shape = SEAT_SHAPES[int(p["seat_shape"])]
    parts = [_seat(shape, w, d, h, t, p["corner_radius"], cushion)]
    legs = _legs(p, shape, frame)
    parts += [leg for leg, _, _ in legs]
    if p["stretchers"] and LEG_STYLES[int(p["leg_style"])] != "pedestal":
        parts += _stretchers(p, legs, frame)
    parts += _back(p, shape, frame, cushion)
    if p["arms"]:
        parts += _arms(p, frame)
    return g.normalise(g.merge(parts))


def _seat(shape: str, w: float, d: float, h: float, t: float, radius: float, color) -> Mesh:
    if shape == "round":
        outline = g.ellipse(w, d, 48)
    else:
        outline = g.rounded_rect(w, d, radius if shape == "rounded" else 0.006, per_corner=8)
    return g.extrude(outline, h - t, h, color)


def _leg_tops(shape: str, w: float, d: float, inset: float, thick: float) -> list[np.ndarray]:
    """Where the four legs meet the seat's underside: front-left, front-right, back-right, back-left."""
    if shape == "round":
        ax, ay = (w / 2 - inset - thick) * 0.72, (d / 2 - inset - thick) * 0.72
    else:
        ax, ay = w / 2 - inset - thick / 2, d / 2 - inset - thick / 2
        if shape == "rounded":
            ax, ay = ax - 0.015, ay - 0.015
    return [np.array([sx * ax, sy * ay]) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def _legs(p: dict[str, float], shape: str, color) -> list[tuple[Mesh, np.ndarray, np.ndarray]]:
    """Each leg with its top and bottom centre points (stretchers attach along that axis)."""
    style = LEG_STYLES[int(p["leg_style"])]
    w, d, h, t = p["seat_width"], p["seat_depth"], p["seat_height"], p["seat_thickness"]
    thick = p["leg_thickness"]
    top_z = h - t + 0.004  # into the seat, so no gap shows
    if style == "pedestal":
        return _pedestal(p, top_z, color)
    sides, spin, r = (16, 0.0, thick / 2) if p["leg_round"] else (4, 45.0, thick / np.sqrt(2))
    r_bottom = r * (0.5 if style == "tapered" else 1.0)
    spread = np.tan(np.radians(p["leg_splay"])) * top_z if style == "splayed" else 0.0
    legs = []
    for xy in _leg_tops(shape, w, d, p["leg_inset"], thick):
        top = np.array([xy[0], xy[1], top_z])
        bottom = np.array([xy[0] + np.sign(xy[0]) * spread * 0.7, xy[1] + np.sign(xy[1]) * spread * 0.7, 0.0])
        legs.append((g.tube(bottom, top, r_bottom, r, color, sides=sides, spin=spin), top, bottom))
    return legs


def _pedestal(p: dict[str, float], top_z: float, color) -> list[tuple[Mesh, np.ndarray, np.ndarray]]:
    r = max(p["leg_thickness"], 0.03)
    base_z = 0.07
    parts = [
        (g.tube((0, 0, base_z), (0, 0, top_z), r, r * 0.8, color, sides=24), None, None),
        (g.tube((0, 0, top_z - 0.03), (0, 0, top_z), 0.09, 0.09, color, sides=24), None, None),
    ]
    reach = min(p["seat_width"], p["seat_depth"]) * 0.62
    for k in range(5):
        a = np.radians(90 + 72 * k)  # one foot straight back, none straight at the camera
        end = np.array([reach * np.cos(a), reach * np.sin(a), 0.025])
        parts.append((g.tube((0, 0, base_z), end, 0.022, 0.016, color, sides=4, spin=45.0), None, None))
        parts.append((g.tube(end, end - np.array([0, 0, 0.025]), 0.018, 0.018, (0.08, 0.08, 0.08), sides=12), None, None))
    return parts


def _stretchers(p: dict[str, float], legs, color) -> list[Mesh]:
    z = p["stretcher_height"]
    at = []
    for _, top, bottom in legs:
        f = z / top[2]
        at.append(bottom + (top - bottom) * f)
    r = p["leg_thickness"] * 0.3
    fl, fr, br, bl = at
    bars = [(fl, bl), (fr, br), ((fl + bl) / 2, (fr + br) / 2)]  # the classic H
    return [g.tube(a, b, r, r, color, sides=8) for a, b in bars]


def _back(p: dict[str, float], shape: str, frame, cushion) -> list[Mesh]:
    """The back is built flat in its own plane (x across, z up from the seat top), then tilted."""
    w, d, h = p["seat_width"], p["seat_depth"], p["seat_height"]
    style = BACK_STYLES[int(p["back_style"])]
    bh, bt = p["back_height"], p["back_thickness"]
    post = max(p["leg_thickness"] * 0.9, bt)
    half = (w / 2 - post / 2 - 0.01) if shape != "round" else w * 0.3
    y_back = (d / 2 - post / 2 - 0.005) if shape != "round" else d * 0.38
    parts: list[Mesh] = []
    posts = style != "solid"
    if posts:
        for sx in (-1, 1):
            parts.append(g.box((sx * half - post / 2, -post / 2, -0.01), (sx * half + post / 2, post / 2, bh), frame))
    inner = half - post / 2 + 0.003
    n = int(p["back_count"]) + 2
    if style == "solid":
        parts.append(g.box((-half - post / 2, -bt / 2, -0.01), (half + post / 2, bt / 2, bh), cushion))
    elif style == "slats":
        span = bh * 0.6
        slat = span / (2 * n - 1)
        for k in range(n):
            z1 = bh - 2 * k * slat
            parts.append(g.box((-inner, -bt / 2, z1 - slat), (inner, bt / 2, z1), frame))
    elif style == "bars":
        rail = max(0.04, bh * 0.14)
        parts.append(g.box((-inner, -bt / 2, bh - rail), (inner, bt / 2, bh), frame))
        parts.append(g.box((-inner, -bt / 2, 0.02), (inner, bt / 2, 0.05), frame))
        for k in range(n):
            x = -inner + (k + 1) * 2 * inner / (n + 1)
            parts.append(g.box((x - 0.008, -bt * 0.35, 0.04), (x + 0.008, bt * 0.35, bh - rail + 0.005), frame))
    else:  # partial: a padded band high on the posts, open below
        band = bh * 0.4
        parts.append(g.box((-inner, -bt / 2, bh - band), (inner, bt / 2, bh - 0.01), cushion))
    tilt = g.rotation_x(-p["back_tilt"])  # top leans back (+Y)
    return [g.transform(m, tilt, (0.0, y_back, h)) for m in parts]


def _arms(p: dict[str, float], color) -> list[Mesh]:
    w, d, h = p["seat_width"], p["seat_depth"], p["seat_height"]
    ah = h + p["arm_height"]
    parts = []
    round_seat = SEAT_SHAPES[int(p["seat_shape"])] == "round"
    # On a round seat the arms stand on the rim, not beside the seat.
    across, front = (0.8 * w / 2, -0.6 * d / 2 + 0.03) if round_seat else (w / 2 + 0.01, -d / 2 + 0.06)
    for sx in (-1, 1):
        x = sx * across
        parts.append(g.box((x - 0.025, front - 0.04, ah - 0.025), (x + 0.025, d / 2 - 0.01, ah), color))
        parts.append(g.tube((x, front, h - 0.02), (x, front, ah - 0.01), 0.014, 0.014, color, sides=12))
    return parts


def _tone(t: float) -> np.ndarray:
    light, dark, black = np.array([0.78, 0.60, 0.40]), np.array([0.32, 0.18, 0.09]), np.array([0.06, 0.06, 0.06])
    return light + (dark - light) * min(t / 0.85, 1.0) + (black - dark) * max((t - 0.85) / 0.15, 0.0)


def _fabric(t: float) -> np.ndarray:
    palette = np.array([[0.85, 0.82, 0.75], [0.55, 0.12, 0.10], [0.15, 0.25, 0.50], [0.25, 0.45, 0.30], [0.20, 0.20, 0.22]])
    k = t * (len(palette) - 1)
    i = min(int(k), len(palette) - 2)
    return palette[i] + (palette[i + 1] - palette[i]) * (k - i)
