"""Parametric chairs: a design (discrete choices as numbers, dimensions in metres) in, a mesh out.

`chair_type` picks one of seven kinds of seat, each built on the floor (z = 0) with its front
toward -Y from closed parts:
- dining: a seat slab (square, rounded or round) on four straight, splayed or tapered legs (square
  or round), a back (solid panel, horizontal slats, vertical bars, or a band high on two posts),
  optional arms and an optional H of stretchers;
- armchair: an upholstered body: a padded base (on short legs or a skirt to the floor), a seat
  cushion, padded arms (square or rolled) and a padded back;
- wingback: the armchair with a taller back and padded wings beside the head;
- stool: no back; low or bar height, a round seat on three legs or a round, rounded or square one
  on four, with an optional footrest ring;
- bench: a wide seat on four (or six) legs or on two solid end panels, an optional back (any of
  the dining backs, across the width) and optional arms;
- swivel: a seat on a gas-lift column on a five-spoke star base, on casters or glides, with a
  padded or shell back on a spine and optional T-arms;
- rocking: the dining chair's seat, legs, back and arms standing on two curved rockers.
Then the chair is moved to the canonical frame: centred, unit size, +Z up, front toward -Y.

Every part belongs to a role with its own material: `frame` (legs, posts, rails, base, rockers),
`seat` (the hard seat and back: the frame's material, or wood, plastic or metal), `cover` (padding:
fabric or leather) and `trim` (black rubber wheels and glides). Materials set the albedo and the
per-vertex finish (roughness, metallic) the renderer reads: wood (several tones), metal (chrome,
steel, dark metal), plastic (a palette), fabric (a palette), leather. Two roles in different
materials make a two-tone chair.

Discrete choices are stored as whole numbers in the identity (`chair_type`, `seat_shape`, ...), so
every identity is a flat dict of floats. Every identity holds every parameter; a type reads only
the ones it uses (changing another leaves the mesh's bytes unchanged).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from assets import geometry as g
from assets.mesh import Mesh

CHAIR_TYPES = ("dining", "armchair", "wingback", "stool", "bench", "swivel", "rocking")
SEAT_SHAPES = ("square", "rounded", "round")
LEG_STYLES = ("straight", "splayed", "tapered")
BACK_STYLES = ("solid", "slats", "bars", "partial")
FRAME_MATERIALS = ("wood", "metal", "plastic")
SEAT_MATERIALS = ("frame", "wood", "plastic", "metal")  # "frame": the frame's material and tone
COVER_MATERIALS = ("fabric", "leather")

CHOICES: dict[str, int] = {  # name -> number of options (drawn uniformly)
    "chair_type": len(CHAIR_TYPES),
    "seat_shape": len(SEAT_SHAPES),
    "leg_style": len(LEG_STYLES),
    "leg_round": 2,
    "back_style": len(BACK_STYLES),
    "back_count": 4,  # slats or bars: 2..5
    "arms": 2,
    "stretchers": 2,  # dining, bench, rocking: an H of bars; stool: a footrest ring
    "upholstered": 2,  # a padded seat (and padded solid back) in the cover material
    "stool_legs": 2,  # 3 or 4
    "padded_base": 2,  # armchair, wingback: 0 short legs, 1 a skirt to the floor
    "rolled_arms": 2,  # armchair, wingback: a roll along the top of each arm
    "bench_back": 2,
    "bench_ends": 2,  # bench: 0 legs, 1 two solid end panels
    "casters": 2,  # swivel: 0 glides, 1 wheels
    "frame_material": len(FRAME_MATERIALS),
    "seat_material": len(SEAT_MATERIALS),
    "cover_material": len(COVER_MATERIALS),
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
    "stool_height": (0.42, 0.80),
    "bench_width": (0.90, 1.60),
    "cushion_thickness": (0.07, 0.16),
    "arm_width": (0.07, 0.18),
    "foot_height": (0.04, 0.14),
    "wing_depth": (0.14, 0.28),
    "rocker_radius": (0.90, 1.80),
    "rocker_overhang": (0.08, 0.22),
    "frame_tone": (0.0, 1.0),  # within the frame material's palette
    "seat_tone": (0.0, 1.0),
    "cover_tone": (0.0, 1.0),
}

Part = tuple[str, Mesh]  # (role, closed mesh); colours are set from the role's material at the end
NO_COLOR = (0.0, 0.0, 0.0)


def sample(rng: np.random.Generator) -> dict[str, float]:
    p = {name: float(rng.integers(n)) for name, n in CHOICES.items()}
    p.update({name: round(float(rng.uniform(lo, hi)), 6) for name, (lo, hi) in DIMENSIONS.items()})
    return p


def build(p: dict[str, float]) -> Mesh:
    kind = CHAIR_TYPES[int(p["chair_type"])]
    return _assemble(_BUILDERS[kind](p), p)


# ---------------------------------------------------------------------------------- chair types


def _seat_on_legs(p) -> tuple:
    """A four-legged chair's seat and where its legs meet it: (w, d, h, shape, parts, thick, tops, feet),
    feet the legs' (x, y) on the floor, splayed outward."""
    w, d, h = p["seat_width"], p["seat_depth"], p["seat_height"]
    shape = SEAT_SHAPES[int(p["seat_shape"])]
    parts, under = _seat(p, shape, w, d, h)
    thick = _leg_thickness(p)
    tops = [np.array([x, y, under + 0.004]) for x, y in _leg_tops(p, shape, w, d, thick)]
    spread = _splay(p, tops[0][2])
    return w, d, h, shape, parts, thick, tops, [t[:2] + _unit(t[:2]) * spread for t in tops]


def _dining(p) -> list[Part]:
    w, d, h, shape, parts, thick, tops, feet = _seat_on_legs(p)
    bottoms = [np.array([*f, 0.0]) for f in feet]
    parts += _legs(p, tops, bottoms, thick)
    if p["stretchers"]:
        parts += _h_stretchers(p, tops, bottoms, p["stretcher_height"], thick)
    parts += _back(p, shape, w, d, h, p["back_height"], thick)
    if p["arms"]:
        parts += _arms(p, shape, w, d, h)
    return parts


def _rocking(p) -> list[Part]:
    w, d, h, shape, parts, thick, tops, feet = _seat_on_legs(p)
    radius, overhang = p["rocker_radius"], p["rocker_overhang"]
    rocker_h, rocker_w = 0.035, max(thick * 0.9, 0.022)
    ys = [f[1] for f in feet]
    y0, y1 = min(ys) - overhang, max(ys) + overhang * 1.4  # the tail is longer, behind the back

    def z_bottom(y):
        return radius - np.sqrt(radius**2 - (np.asarray(y) - 0.02) ** 2)  # lowest just behind the centre

    bottoms = [np.array([f[0], f[1], z_bottom(f[1]) + rocker_h * 0.8]) for f in feet]
    parts += _legs(p, tops, bottoms, thick)
    for side in (0, 1):  # front-left + back-left, front-right + back-right
        x = (feet[side][0] + feet[3 - side][0]) / 2
        parts.append(("frame", _rocker(x, rocker_w / 2, np.linspace(y0, y1, 32), z_bottom, rocker_h)))
    if p["stretchers"]:
        parts += _h_stretchers(p, tops, bottoms, p["stretcher_height"] + rocker_h + 0.02, thick)
    parts += _back(p, shape, w, d, h, p["back_height"] + 0.12, thick)
    if p["arms"]:
        parts += _arms(p, shape, w, d, h)
    return parts


def _stool(p) -> list[Part]:
    sw, h = p["seat_width"] * 0.8, p["stool_height"]
    n = 3 + int(p["stool_legs"])
    # Three legs stand under a round seat, as they do in furniture: a square seat on three legs has no turn
    # that maps it onto itself, yet its views 90 degrees apart differ only in where the thin legs are.
    shape = "round" if n == 3 else SEAT_SHAPES[int(p["seat_shape"])]
    parts, under = _seat(p, shape, sw, sw, h)
    thick = _leg_thickness(p)
    inset = p["leg_inset"]
    if n == 4 and shape != "round":
        tops_xy = _leg_tops(p, shape, sw, sw, thick)
    else:
        rho = (sw / 2 - inset - thick) * (0.78 if n == 3 else 0.8)
        angles = np.radians(90.0 + 120.0 * np.arange(3)) if n == 3 else np.radians(45.0 + 90.0 * np.arange(4) + 180.0)
        tops_xy = [rho * np.array([np.cos(a), np.sin(a)]) for a in angles]
    tops = [np.array([x, y, under + 0.004]) for x, y in tops_xy]
    spread = _splay(p, tops[0][2])
    bottoms = [np.array([*(t[:2] + _unit(t[:2]) * spread), 0.0]) for t in tops]
    parts += _legs(p, tops, bottoms, thick)
    if p["stretchers"]:  # a footrest ring, higher on a tall stool
        z = p["stretcher_height"] * 1.2 * h / 0.45
        at = [_along(b, t, z) for t, b in zip(tops, bottoms)]
        r = max(thick * 0.35, 0.008)
        parts += [("frame", g.tube(at[k], at[(k + 1) % n], r, r, NO_COLOR, sides=8)) for k in range(n)]
    return parts


def _bench(p) -> list[Part]:
    W, d, h = p["bench_width"], p["seat_depth"], p["seat_height"]
    shape = SEAT_SHAPES[int(p["seat_shape"])]  # "round": a stadium (fully rounded ends)
    parts, under = _seat(p, shape, W, d, h, stadium=True)
    thick = _leg_thickness(p)
    corner = _corner(p, shape, d)
    inset = p["leg_inset"] + 0.35 * corner
    if p["bench_ends"]:
        pt = max(thick, 0.03) * 1.2
        x = W / 2 - inset - pt / 2 - 0.02
        for sx in (-1, 1):
            half_d = d * (0.42 if shape != "round" else 0.3)
            panel = g.box((sx * x - pt / 2, -half_d, 0.0), (sx * x + pt / 2, half_d, under + 0.004), NO_COLOR)
            parts.append(("frame", panel))
        if p["stretchers"]:
            z, r = p["stretcher_height"], thick * 0.35
            parts.append(("frame", g.tube((-x, 0, z), (x, 0, z), r, r, NO_COLOR, sides=8)))
    else:
        ax, ay = W / 2 - inset - thick / 2, d / 2 - p["leg_inset"] - thick / 2 - 0.35 * corner
        xs = (-ax, ax) if W < 1.25 else (-ax, 0.0, ax)
        tops_xy = [(x, -ay) for x in xs] + [(x, ay) for x in xs[::-1]]
        tops = [np.array([x, y, under + 0.004]) for x, y in tops_xy]
        spread = _splay(p, tops[0][2])
        # Legs splay outward from the nearer end (the middle pair front/back only).
        bottoms = [np.array([t[0] + np.sign(t[0]) * spread * 0.7, t[1] + np.sign(t[1]) * spread * 0.7, 0.0]) for t in tops]
        parts += _legs(p, tops, bottoms, thick)
        if p["stretchers"]:
            m = len(tops)
            ends = [0, m // 2 - 1, m // 2, m - 1]  # front-left, front-right, back-right, back-left
            parts += _h_stretchers(p, [tops[k] for k in ends], [bottoms[k] for k in ends], p["stretcher_height"], thick)
    if p["bench_back"]:
        parts += _back(p, shape, W, d, h, p["back_height"] * 0.85, thick, stadium=True)
    if p["arms"]:
        parts += _arms(p, shape, W, d, h, stadium=True)
    return parts


def _swivel(p) -> list[Part]:
    w, d, h = p["seat_width"], p["seat_depth"], p["seat_height"]
    shape = SEAT_SHAPES[int(p["seat_shape"])]
    parts, under = _seat(p, shape, w, d, h)
    plate_z = under - 0.03
    parts.append(("frame", g.box((-0.1, -0.1, plate_z), (0.1, 0.1, under + 0.002), NO_COLOR)))
    casters = bool(p["casters"])
    hub_z = 0.12 if casters else 0.075
    end_z = 0.075 if casters else 0.03
    mid = hub_z + (plate_z - hub_z) * 0.5
    parts += [
        ("frame", g.tube((0, 0, hub_z - 0.035), (0, 0, hub_z + 0.02), 0.045, 0.04, NO_COLOR, sides=24)),
        ("frame", g.tube((0, 0, hub_z), (0, 0, mid), 0.032, 0.032, NO_COLOR, sides=24)),
        ("frame", g.tube((0, 0, mid - 0.01), (0, 0, plate_z + 0.005), 0.02, 0.02, NO_COLOR, sides=24)),
    ]
    reach = max(w, d) * 0.64
    for k in range(5):
        a = np.radians(90 + 72 * k)  # one spoke straight back, none straight at the camera
        end = np.array([reach * np.cos(a), reach * np.sin(a), end_z])
        parts.append(("frame", g.tube((0, 0, hub_z), end, 0.024, 0.016, NO_COLOR, sides=4, spin=45.0)))
        if casters:
            tangent = np.array([-np.sin(a), np.cos(a), 0.0])
            wheel = np.array([end[0], end[1], 0.026])
            parts.append(("trim", g.tube(wheel + [0, 0, 0.01], end + [0, 0, 0.005], 0.011, 0.011, NO_COLOR, sides=8)))
            tyre = g.tube(wheel - 0.013 * tangent, wheel + 0.013 * tangent, 0.026, 0.026, NO_COLOR, sides=16)
            parts.append(("trim", tyre))
        else:
            parts.append(("trim", g.tube(end * [1, 1, 0], end + [0, 0, 0.004], 0.02, 0.018, NO_COLOR, sides=12)))
    parts += _swivel_back(p, shape, w, d, h, under)
    if p["arms"]:
        ah = h + p["arm_height"]
        pad = "cover" if p["upholstered"] else "trim"
        for sx in (-1, 1):
            x = sx * (w / 2 + 0.035)
            bracket = g.box((min(sx * 0.06, x), -0.02, plate_z), (max(sx * 0.06, x), 0.02, plate_z + 0.022), NO_COLOR)
            parts.append(("frame", bracket))
            parts.append(("frame", g.box((x - 0.015, -0.02, plate_z), (x + 0.015, 0.02, ah - 0.02), NO_COLOR)))
            parts.append((pad, _pad((x - 0.035, -d * 0.32, ah - 0.03), (x + 0.035, d * 0.22, ah), 2, 0.03, 0.012)))
    return parts


def _swivel_back(p, shape, w, d, h, under) -> list[Part]:
    """An office back: a panel (padded or a shell) on a spine from under the seat; tilted as a whole."""
    style = BACK_STYLES[int(p["back_style"])]
    bh = p["back_height"]
    low, high = {"solid": (0.06, bh), "slats": (0.06, 0.1 + bh * 0.7), "bars": (0.06, bh + 0.12),
                 "partial": (bh * 0.4, bh)}[style]  # full, low (task chair), high (executive), lumbar gap
    width = w * (0.9 if shape == "square" else 0.82)
    corner = p["corner_radius"] if shape != "square" else 0.02
    if p["upholstered"]:
        bt = 0.05 + p["back_thickness"]
        panel = ("cover", _pad((-width / 2, -bt / 2, low), (width / 2, bt / 2, high), 1, corner, bt * 0.45))
    else:
        bt = p["back_thickness"]
        panel = ("seat", _pad((-width / 2, -bt / 2, low), (width / 2, bt / 2, high), 1, corner, 0.006))
    y_back = (d / 2 if shape != "round" else d * 0.42) - bt / 2
    spine = g.box((-0.03, bt / 2 - 0.004, under - h - 0.03), (0.03, bt / 2 + 0.016, low + (high - low) * 0.6), NO_COLOR)
    tilt = g.rotation_x(-p["back_tilt"])
    parts = [(role, g.transform(m, tilt, (0.0, y_back, h))) for role, m in (panel, ("frame", spine))]
    parts.append(("frame", g.box((-0.03, 0.0, under - 0.03), (0.03, y_back + bt / 2 + 0.03, under - 0.005), NO_COLOR)))
    return parts


def _armchair(p, wingback: bool = False) -> list[Part]:
    sw, aw = p["seat_width"] * 1.1, p["arm_width"]
    W, D = sw + 2 * aw, p["seat_depth"] * 1.25 + 0.12
    top, ct = p["seat_height"], p["cushion_thickness"]
    base_top = top - ct
    legs = not p["padded_base"]
    z0 = p["foot_height"] if legs else 0.0
    bt = 0.08 + 2 * p["back_thickness"]
    ah = top + p["arm_height"]
    parts: list[Part] = [
        ("cover", _pad((-W / 2 + 0.01, -D / 2 + 0.02, z0), (W / 2 - 0.01, D / 2 - 0.01, base_top + 0.01), 2, 0.03, 0.025)),
        ("cover", _pad((-sw / 2 - 0.005, -D / 2, base_top), (sw / 2 + 0.005, D / 2 - bt + 0.01, top), 2, 0.04, ct * 0.45)),
    ]
    for sx in (-1, 1):
        x0, x1 = sorted((sx * W / 2, sx * (W / 2 - aw)))
        if p["rolled_arms"]:
            r = aw * 0.62
            xc = sx * (W / 2 - aw / 2 + 0.12 * aw)  # the roll overhangs the arm a little
            parts.append(("cover", _pad((x0, -D / 2 + 0.01, z0), (x1, D / 2 - bt / 2, ah - r * 0.5), 0, 0.03, aw * 0.3)))
            parts.append(("cover", g.tube((xc, -D / 2, ah - r), (xc, D / 2 - bt / 2, ah - r), r, r, NO_COLOR, sides=20)))
        else:
            parts.append(("cover", _pad((x0, -D / 2 + 0.01, z0), (x1, D / 2 - bt / 2, ah), 0, 0.05, aw * 0.35)))
    bh = p["back_height"] + (0.24 if wingback else 0.0)
    back: list[Part] = [("cover", _pad((-W / 2, 0.0, base_top - top), (W / 2, bt, bh), 1, 0.05, bt * 0.4))]
    if wingback:
        wt, wd = max(aw * 0.55, 0.05), p["wing_depth"]
        low = ah - top - 0.08
        for sx in (-1, 1):
            x0, x1 = sorted((sx * W / 2, sx * (W / 2 - wt)))
            back.append(("cover", _pad((x0, -wd, low), (x1, bt * 0.7, bh - 0.03), 0, 0.4 * min(wd, bh - low), wt * 0.4)))
    # Tilt (less than a dining back: the arms stay upright) about the back's front edge at seat level:
    # the lower part swings into the base, so no gap shows.
    tilt = g.rotation_x(-p["back_tilt"] * 0.6)
    parts += [(role, g.transform(m, tilt, (0.0, D / 2 - bt, top))) for role, m in back]
    if legs:
        r = _leg_thickness(p) * 0.7
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x, y = sx * (W / 2 - 0.06), sy * (D / 2 - 0.07)
            parts.append(("frame", g.tube((x, y, 0.0), (x, y, z0 + 0.01), r * 0.7, r, NO_COLOR,
                                          sides=16 if p["leg_round"] else 4, spin=0.0 if p["leg_round"] else 45.0)))
    return parts


_BUILDERS: dict[str, Callable[[dict], list[Part]]] = {
    "dining": _dining, "armchair": _armchair, "wingback": lambda p: _armchair(p, wingback=True),
    "stool": _stool, "bench": _bench, "swivel": _swivel, "rocking": _rocking,
}


# ---------------------------------------------------------------------------------- shared parts


def _corner(p, shape: str, depth: float) -> float:
    """Plan-view corner radius of a seat outline (square seats get a barely rounded corner)."""
    if shape == "square":
        return 0.006
    return p["corner_radius"] if shape == "rounded" else depth / 2


def _seat_outline(p, shape: str, w: float, d: float, stadium: bool = False, min_corner: float = 0.0) -> np.ndarray:
    if shape == "round" and not stadium:
        return g.ellipse(w, d, 48)
    return g.rounded_rect(w, d, max(_corner(p, shape, d), min_corner), per_corner=8)


def _seat(p, shape: str, w: float, d: float, h: float, stadium: bool = False) -> tuple[list[Part], float]:
    """The seat, its top at `h`: a hard slab, or a thinner slab under a cushion. Returns its underside."""
    t = p["seat_thickness"]
    outline = _seat_outline(p, shape, w, d, stadium)
    if not p["upholstered"]:
        return [("seat", g.extrude(outline, h - t, h, NO_COLOR))], h - t
    pad = 0.6 * p["cushion_thickness"]
    slab = ("seat", g.extrude(outline, h - pad - t, h - pad + 0.002, NO_COLOR))
    cushion = _pillow(_seat_outline(p, shape, w, d, stadium, min_corner=pad * 0.5), h - pad, h, pad * 0.45)
    return [slab, ("cover", cushion)], h - pad - t


def _leg_thickness(p) -> float:
    metal = FRAME_MATERIALS[int(p["frame_material"])] == "metal"
    return p["leg_thickness"] * (0.7 if metal else 1.0)  # steel tube is thinner than wood


def _splay(p, top_z: float) -> float:
    return np.tan(np.radians(p["leg_splay"])) * top_z if LEG_STYLES[int(p["leg_style"])] == "splayed" else 0.0


def _leg_tops(p, shape: str, w: float, d: float, thick: float) -> list[np.ndarray]:
    """Where four legs meet the seat's underside: front-left, front-right, back-right, back-left."""
    inset = p["leg_inset"]
    if shape == "round":
        ax, ay = (w / 2 - inset - thick) * 0.72, (d / 2 - inset - thick) * 0.72
    else:
        ax, ay = w / 2 - inset - thick / 2, d / 2 - inset - thick / 2
        if shape == "rounded":  # clear of the rounded corner
            ax, ay = ax - 0.3 * p["corner_radius"], ay - 0.3 * p["corner_radius"]
    return [np.array([sx * ax, sy * ay]) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def _legs(p, tops: Sequence[np.ndarray], bottoms: Sequence[np.ndarray], thick: float) -> list[Part]:
    style = LEG_STYLES[int(p["leg_style"])]
    sides, spin, r = (16, 0.0, thick / 2) if p["leg_round"] else (4, 45.0, thick / np.sqrt(2))
    r_bottom = r * (0.5 if style == "tapered" else 1.0)
    return [("frame", g.tube(b, t, r_bottom, r, NO_COLOR, sides=sides, spin=spin)) for t, b in zip(tops, bottoms)]


def _along(bottom: np.ndarray, top: np.ndarray, z: float) -> np.ndarray:
    """The point at height z on the leg axis from bottom to top."""
    return bottom + (top - bottom) * (z - bottom[2]) / (top[2] - bottom[2])


def _h_stretchers(p, tops, bottoms, z: float, thick: float) -> list[Part]:
    """The classic H: a bar along each side and one across the middle (four legs in leg-top order)."""
    fl, fr, br, bl = [_along(b, t, z) for t, b in zip(tops, bottoms)]
    r = thick * 0.3
    bars = [(fl, bl), (fr, br), ((fl + bl) / 2, (fr + br) / 2)]
    return [("frame", g.tube(a, b, r, r, NO_COLOR, sides=8)) for a, b in bars]


def _back(p, shape: str, w: float, d: float, h: float, bh: float, thick: float, stadium: bool = False) -> list[Part]:
    """The back is built flat in its own plane (x across, z up from the seat top), then tilted."""
    style = BACK_STYLES[int(p["back_style"])]
    bt = p["back_thickness"]
    post = max(thick * 0.9, bt)
    if shape == "round" and not stadium:
        half, y_back = w * 0.3, d * 0.38
    else:
        clear = 0.3 * _corner(p, shape, d) if shape != "square" else 0.0
        half, y_back = w / 2 - post / 2 - 0.01 - clear, d / 2 - post / 2 - 0.005 - clear
    panel = "cover" if p["upholstered"] else "seat"
    parts: list[Part] = []
    if style != "solid":
        for sx in (-1, 1):
            x0, x1 = sx * half - post / 2, sx * half + post / 2
            parts.append(("frame", g.box((x0, -post / 2, -0.01), (x1, post / 2, bh), NO_COLOR)))
    inner = half - post / 2 + 0.003
    if style == "solid":
        lo, hi = (-half - post / 2, -bt / 2, -0.01), (half + post / 2, bt / 2, bh)
        if p["upholstered"]:
            pt = bt + 0.03
            lo, hi = (lo[0], -pt / 2, 0.02), (hi[0], pt / 2, bh)
            parts.append((panel, _pad(lo, hi, 1, 0.04, pt * 0.45)))
            parts.append(("seat", g.box((-half * 0.8, -bt / 2, -0.01), (half * 0.8, bt / 2, 0.03), NO_COLOR)))
        else:
            parts.append((panel, g.box(lo, hi, NO_COLOR)))
    elif style == "slats":
        n = int(p["back_count"]) + 2
        span = bh * 0.6
        slat = span / (2 * n - 1)
        for k in range(n):
            z1 = bh - 2 * k * slat
            parts.append(("frame", g.box((-inner, -bt / 2, z1 - slat), (inner, bt / 2, z1), NO_COLOR)))
    elif style == "bars":
        rail = max(0.04, bh * 0.14)
        parts.append(("frame", g.box((-inner, -bt / 2, bh - rail), (inner, bt / 2, bh), NO_COLOR)))
        parts.append(("frame", g.box((-inner, -bt / 2, 0.02), (inner, bt / 2, 0.05), NO_COLOR)))
        n = int(p["back_count"]) + 2
        n = max(n, int(round(n * w / 0.5)))  # a bench's wide back keeps the spacing of a chair's
        for k in range(n):
            x = -inner + (k + 1) * 2 * inner / (n + 1)
            bar = g.box((x - 0.008, -bt * 0.35, 0.04), (x + 0.008, bt * 0.35, bh - rail + 0.005), NO_COLOR)
            parts.append(("frame", bar))
    else:  # partial: a band high on the posts, open below
        band = bh * 0.4
        if p["upholstered"]:
            pt = bt + 0.03
            lo, hi = (-inner - 0.005, -pt / 2, bh - band), (inner + 0.005, pt / 2, bh - 0.01)
            parts.append((panel, _pad(lo, hi, 1, 0.03, pt * 0.4)))
        else:
            parts.append((panel, g.box((-inner, -bt / 2, bh - band), (inner, bt / 2, bh - 0.01), NO_COLOR)))
    tilt = g.rotation_x(-p["back_tilt"])  # top leans back (+Y)
    return [(role, g.transform(m, tilt, (0.0, y_back, h))) for role, m in parts]


def _arms(p, shape: str, w: float, d: float, h: float, stadium: bool = False) -> list[Part]:
    ah = h + p["arm_height"]
    parts: list[Part] = []
    # On a round seat the arms stand on the rim, not beside the seat; on a rounded one, clear of the corner.
    if shape == "round" and not stadium:
        across, front = 0.8 * w / 2, -0.6 * d / 2 + 0.03
    else:
        corner = _corner(p, shape, d) if shape != "square" else 0.0
        across, front = w / 2 + 0.01 - 0.3 * corner, -d / 2 + 0.06
    for sx in (-1, 1):
        x = sx * across
        parts.append(("frame", g.box((x - 0.025, front - 0.04, ah - 0.025), (x + 0.025, d / 2 - 0.01, ah), NO_COLOR)))
        parts.append(("frame", g.tube((x, front, h - 0.02), (x, front, ah - 0.01), 0.014, 0.014, NO_COLOR, sides=12)))
    return parts


# ---------------------------------------------------------------------------------- primitives


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.zeros_like(v)


def _pillow(outline: np.ndarray, z0: float, z1: float, edge: float, steps: int = 3) -> Mesh:
    """A padded slab: a convex counter-clockwise outline from z0 to z1 whose rim is rounded with
    radius `edge` (quarter circles at top and bottom, straight between); smooth all round."""
    o = np.asarray(outline, dtype=np.float64)
    n = len(o)
    e = np.roll(o, -1, axis=0) - o
    en = np.column_stack([e[:, 1], -e[:, 0]]) / np.linalg.norm(e, axis=1, keepdims=True)  # outward edge normals
    prev = np.roll(en, 1, axis=0)
    miter = (prev + en) / (1.0 + (prev * en).sum(axis=1, keepdims=True))  # moves both edges by 1
    edge = max(min(edge, (z1 - z0) / 2), 0.002)
    a = np.linspace(0.0, np.pi / 2, steps + 1)
    rings = [(edge * (1 - np.cos(x)), z0 + edge - edge * np.sin(x)) for x in a[::-1]]  # bottom arc, up
    if z1 - z0 - 2 * edge > 1e-5:
        rings += [(edge * (1 - np.cos(x)), z1 - edge + edge * np.sin(x)) for x in a]
    else:
        rings += [(edge * (1 - np.cos(x)), z1 - edge + edge * np.sin(x)) for x in a[1:]]
    centre = o.mean(axis=0)
    loops = [np.column_stack([o - miter * inset, np.full(n, z)]) for inset, z in rings]
    # The flat caps get their own copies of the outermost loops: a flat normal across the whole cap
    # (shared with the rim, the rim's tilt would shade creases along the cap's fan triangles).
    v = np.vstack([[*centre, z0], loops[0]] + loops + [loops[-1], [[*centre, z1]]])
    m = len(loops)
    i = np.arange(n)
    k = (i + 1) % n
    ring = lambda r, j: 1 + n + r * n + j  # noqa: E731  (rim loop r)
    bottom = np.stack([np.zeros(n, int), 1 + k, 1 + i], axis=1)
    top_ring = 1 + n + m * n
    top = np.stack([np.full(n, len(v) - 1), top_ring + i, top_ring + k], axis=1)
    r = np.repeat(np.arange(m - 1), n)
    ii, kk = np.tile(i, m - 1), np.tile(k, m - 1)
    b0, b1, t0, t1 = ring(r, ii), ring(r, kk), ring(r + 1, ii), ring(r + 1, kk)
    side = np.concatenate([np.stack([b0, b1, t1], 1), np.stack([b0, t1, t0], 1)])
    return Mesh(v, np.concatenate([bottom, side, top]), np.zeros_like(v))


_AXES = {  # thickness axis -> rotation taking local (outline u, outline v, thickness) to world
    2: np.eye(3),
    1: np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),  # u -> x, v -> z, thickness -> y
    0: np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]),  # u -> y, v -> z, thickness -> x
}


def _pad(lo: Sequence[float], hi: Sequence[float], axis: int, corner: float, edge: float) -> Mesh:
    """A cushion filling the box lo..hi: a rounded rectangle (corner radius `corner`) across the two
    other axes, padded (rim radius `edge`) through its thickness along `axis`."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    rot = _AXES[axis]
    size = np.abs(rot.T @ (hi - lo))  # (u, v, thickness) extents
    edge = min(edge, size[2] / 2, 0.45 * min(size[0], size[1]))
    corner = min(max(corner, edge * 1.05), 0.499 * min(size[0], size[1]))
    outline = g.rounded_rect(size[0], size[1], corner, per_corner=5)
    mesh = _pillow(outline, -size[2] / 2, size[2] / 2, edge)
    return g.transform(mesh, rot, (lo + hi) / 2)


def _rocker(x: float, half_w: float, ys: np.ndarray, z_bottom, height: float) -> Mesh:
    """A curved runner of rectangular section, width 2 half_w, following z_bottom(y) along ys."""
    zb = z_bottom(ys)
    m = len(ys)
    section = [(x - half_w, zb), (x + half_w, zb), (x + half_w, zb + height), (x - half_w, zb + height)]
    lines = [np.column_stack([np.full(m, sx), ys, sz]) for sx, sz in section]
    verts, faces = [], []
    j = np.arange(m - 1)
    for c in range(4):  # each long side gets its own vertices: sharp edges
        a, b = lines[c], lines[(c + 1) % 4]
        base = sum(len(v) for v in verts)
        verts.append(np.vstack([a, b]))
        a0, a1, b0, b1 = base + j, base + j + 1, base + m + j, base + m + j + 1
        faces += [np.stack([a0, a1, b1], 1), np.stack([a0, b1, b0], 1)]
    for end, flip in ((0, False), (m - 1, True)):
        base = sum(len(v) for v in verts)
        verts.append(np.array([line[end] for line in lines]))
        quad = np.array([[0, 1, 2], [0, 2, 3]]) if not flip else np.array([[0, 2, 1], [0, 3, 2]])
        faces.append(base + quad)
    v = np.vstack(verts)
    return Mesh(v, np.concatenate(faces), np.zeros_like(v))


# ---------------------------------------------------------------------------------- materials

WOOD = np.array([[0.84, 0.68, 0.47], [0.70, 0.50, 0.30], [0.54, 0.33, 0.17], [0.38, 0.23, 0.12], [0.22, 0.13, 0.08]])
METAL = np.array([[0.93, 0.93, 0.94], [0.66, 0.67, 0.69], [0.30, 0.30, 0.32]])  # chrome, steel, dark metal
METAL_ROUGHNESS = np.array([0.28, 0.34, 0.42])
SHEET_METAL_ROUGHNESS = 0.55
PLASTIC = np.array([[0.92, 0.92, 0.90], [0.90, 0.72, 0.12], [0.78, 0.14, 0.10], [0.13, 0.30, 0.66],
                    [0.55, 0.56, 0.58], [0.09, 0.09, 0.09]])
FABRIC = np.array([[0.88, 0.85, 0.78], [0.80, 0.62, 0.22], [0.58, 0.12, 0.10], [0.25, 0.45, 0.30],
                   [0.15, 0.25, 0.50], [0.50, 0.50, 0.52], [0.22, 0.22, 0.24]])
LEATHER = np.array([[0.66, 0.43, 0.24], [0.45, 0.22, 0.10], [0.32, 0.09, 0.07], [0.09, 0.08, 0.08]])
TRIM = ((0.05, 0.05, 0.05), 0.6, 0.0)  # black rubber and plastic: wheels, glides


def material(kind: str, tone: float) -> tuple[np.ndarray, float, float]:
    """(albedo, roughness, metallic) of a material kind at a tone in [0, 1] along its palette."""
    if kind == "wood":
        return _palette(WOOD, tone), 0.55, 0.0  # varnished: a soft sheen
    if kind == "metal":
        return _palette(METAL, tone), float(np.interp(tone, np.linspace(0, 1, len(METAL)), METAL_ROUGHNESS)), 1.0
    if kind == "plastic":
        return _palette(PLASTIC, tone), 0.3, 0.0
    if kind == "fabric":
        return _palette(FABRIC, tone), 1.0, 0.0
    if kind == "leather":
        return _palette(LEATHER, tone), 0.45, 0.0
    raise ValueError(f"unknown material {kind!r}")


def _palette(colors: np.ndarray, t: float) -> np.ndarray:
    k = min(max(t, 0.0), 1.0) * (len(colors) - 1)
    i = min(int(k), len(colors) - 2)
    return colors[i] + (colors[i + 1] - colors[i]) * (k - i)


def _role_material(role: str, p) -> tuple[np.ndarray, float, float]:
    if role == "frame":
        return material(FRAME_MATERIALS[int(p["frame_material"])], p["frame_tone"])
    if role == "seat":
        kind = SEAT_MATERIALS[int(p["seat_material"])]
        if kind == "frame":
            rgb, rough, metal = material(FRAME_MATERIALS[int(p["frame_material"])], p["frame_tone"])
        else:
            rgb, rough, metal = material(kind, p["seat_tone"])
        # Broad metal panels facing each other (seat and back) sparkle with fireflies at a few samples
        # when polished (glossy-to-glossy paths to the near-point sun): sheet metal is brushed.
        return rgb, max(rough, SHEET_METAL_ROUGHNESS) if metal else rough, metal
    if role == "cover":
        return material(COVER_MATERIALS[int(p["cover_material"])], p["cover_tone"])
    return np.array(TRIM[0]), TRIM[1], TRIM[2]


def _assemble(parts: list[Part], p) -> Mesh:
    """Merge the parts, colour each from its role's material, move to the canonical frame."""
    materials = {role: _role_material(role, p) for role in dict.fromkeys(role for role, _ in parts)}
    counts = [len(m.vertices) for _, m in parts]
    colors = np.repeat(np.array([materials[role][0] for role, _ in parts]), counts, axis=0)
    finish = np.repeat(np.array([materials[role][1:] for role, _ in parts]), counts, axis=0)
    mesh = g.normalise(g.merge([m for _, m in parts]))
    return Mesh(mesh.vertices, mesh.faces, colors, finish)
