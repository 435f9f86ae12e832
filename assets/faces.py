"""Parametric human busts: an identity (a flat dict of floats) in, a closed, portrait-framed mesh out.

In: `sample(rng)` draws an identity: 8 discrete choices stored as whole numbers (`CHOICES`: sex, hair
style and colour, facial hair, bust, neckline, clothing colour, painted or plain finish) and continuous numbers (`PARAMS`:
skull, face, ears, age, neck and shoulders, hair, albedo), with realistic correlations (men have
squarer jaws, heavier brows and often short hair or a beard; grey hair and a receding hairline
come with age). Out: `build(p)`, a `Mesh` of closed, outward-wound shells with per-vertex albedo.

Construction (all numpy, some tens of milliseconds per head), in centimetres before framing:
- the skull: a UV sphere shaped into a head (superelliptic cross-sections, a cranium that is
  widest above the ears, a jaw that narrows toward the chin, squarer or rounder, a back of the
  head that tucks in toward the nape), with its poles on the Z axis so none falls on the face;
- facial features: smooth displacement fields along the skull's normals (brow ridge, eye sockets,
  raised eyebrows, nose with bridge, tip and alae, cheekbones and cheeks, lips and the mouth line,
  chin, forehead slope; with age, nasolabial folds, bags under the eyes and jowls);
- separate closed shells: two eyeballs (bright sclera, iris, pupil, painted eyelids and lash
  line) seated in the sockets, two cupped ears, a neck, and optionally shoulders and upper torso
  in clothes (crew, V or scoop neckline);
- hair: a shell offset outward from the scalp above a hairline that is high at the front, dips to
  sideburns in front of the ears, passes over the ears and runs down to the nape (`HAIR_STYLES`:
  bald or a horseshoe fringe, buzz cut, short, medium and long (a cap plus a hanging curtain),
  afro, bun, ponytail; optional bangs); elsewhere the same shell sinks under the skin, so it is
  one closed surface;
- facial hair: stubble (albedo), or a moustache or full beard (albedo plus a thin shell over the
  lower face, open around the lips);
- albedo: skin tone from very light to very dark, lips that stand out from it (darker and redder on
  light skin, pinker on dark), eyebrows always darker than the skin, hair in black, brown, blond,
  red or grey (greying with age), eye colour, clothing colour (kept below 0.46 sRGB: brighter
  clothes bounce enough light into the shadowed jaw to make 8-sample renders grainy).
Canonical frame (portrait framing): the head itself (skull and face, without hair, ears, neck or
shoulders) has its bounding box centred at the origin and a height of `HEAD_SIZE`, +Z up, the face
looking toward -Y. Hair, neck and shoulders extend beyond it (shoulders leave the camera's frame at
the bottom), so the head is the same size and place in every image; everything lies in [-1, 1]^3.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assets import geometry as g
from assets.mesh import Mesh

SEXES = ("female", "male")
HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "afro", "bun", "ponytail")
HAIR_COLORS = ("black", "brown", "blond", "red", "grey")
FACIAL_HAIR = ("none", "stubble", "moustache", "beard")
BUSTS = ("neck", "shoulders")
FINISHES = ("painted", "plain")
"""`plain`: one albedo for the whole bust, as a plaster, stone or bronze sculpture, or a scan without a
texture: pose and light must then be read from shading and silhouette alone (one head in six)."""
NECKLINES = ("crew", "v", "scoop")
CLOTHES = ("white", "black", "navy", "grey", "red", "green", "beige", "blue")
_BANGS = ("medium", "long", "bun", "ponytail")  # the styles that can have bangs (`fringe`)

CHOICES: dict[str, int] = {  # name -> number of options (stored as whole-number floats)
    "sex": len(SEXES),
    "hair_style": len(HAIR_STYLES),
    "hair_color": len(HAIR_COLORS),
    "facial_hair": len(FACIAL_HAIR),
    "bust": len(BUSTS),
    "neckline": len(NECKLINES),
    "clothing_color": len(CLOTHES),
    "finish": len(FINISHES),
}

PARAMS: dict[str, tuple[float, float]] = {
    # skull (cm)
    "head_width": (13.2, 16.8),
    "head_length": (17.0, 21.0),
    "head_height": (20.5, 25.0),
    "jaw_width": (0.62, 0.92),  # jaw width / head width
    "jaw_square": (0.0, 1.0),  # rounded (0) to square (1) jaw
    "chin_projection": (0.1, 1.5),
    "chin_height": (1.6, 3.4),
    "forehead_slope": (0.0, 2.0),
    # eyes and brows
    "eye_spacing": (5.6, 7.2),
    "eye_height": (-0.8, 0.8),
    "eye_depth": (0.6, 1.4),
    "eye_size": (1.0, 1.3),
    "eye_opening": (0.0, 1.0),  # narrow to wide lid opening
    "eye_tilt": (-1.0, 1.0),  # outer corners down (-1) or up (+1)
    "brow_ridge": (0.0, 1.0),
    "brow_height": (1.3, 2.5),
    "brow_thickness": (0.0, 1.0),
    "brow_arch": (0.0, 1.0),
    # nose
    "nose_length": (4.2, 6.0),
    "nose_width": (2.9, 4.8),
    "nose_projection": (1.5, 3.0),
    "nose_bridge": (0.3, 1.3),
    # cheeks and mouth
    "cheekbones": (0.1, 1.0),
    "cheek_fullness": (-0.5, 0.8),
    "mouth_width": (4.2, 6.0),
    "mouth_gap": (1.6, 2.6),  # nose bottom to mouth line
    "lip_fullness": (0.2, 0.95),
    # ears
    "ear_size": (5.2, 7.4),
    "ear_protrusion": (5.0, 38.0),  # degrees
    "ear_height": (-0.8, 0.8),
    # age: about 18 (0) to 80 (1) years
    "age": (0.0, 1.0),
    # neck and shoulders
    "neck_width": (9.5, 13.5),
    "shoulder_width": (1.55, 2.15),  # / head height
    "shoulder_slope": (0.0, 1.0),
    # hair
    "hair_volume": (0.0, 1.0),
    "hair_length": (0.0, 1.0),  # medium: to the jaw or below; long: chin to past the shoulders; bun: nape to
    #                             crown; ponytail: 10 to 30 cm
    "hairline": (0.0, 1.0),  # receding (0) to full (1)
    "fringe": (0.0, 1.0),  # bangs over the forehead (medium, long, bun, ponytail); a ponytail's height
    "beard_length": (0.0, 1.0),
    # albedo
    "skin_tone": (0.0, 1.0),  # very light to very dark
    "skin_undertone": (0.0, 1.0),  # olive to rosy
    "lip_tint": (0.0, 1.0),
    "hair_shade": (0.0, 1.0),  # dark to light within the hair colour
    "iris_tone": (0.0, 1.0),  # dark brown, hazel, green, blue-grey
    "clothing_tone": (0.0, 1.0),  # darker to lighter within the clothing colour
}

ALBEDO = ("eye_opening", "eye_tilt", "skin_tone", "skin_undertone", "lip_tint", "hair_shade", "iris_tone",
          "clothing_tone")
"""Parameters that change only colours, never the geometry."""

SEXED: dict[str, float] = {
    # The share of a parameter's range that only one sex reaches: + for larger values in men.
    "head_width": 0.2, "head_length": 0.2, "head_height": 0.2, "jaw_width": 0.4, "jaw_square": 0.45,
    "chin_height": 0.3, "forehead_slope": 0.3, "brow_ridge": 0.5, "brow_thickness": 0.3, "nose_length": 0.2,
    "nose_width": 0.2, "nose_projection": 0.15, "cheek_fullness": -0.15, "lip_fullness": -0.25, "eye_size": -0.2,
    "ear_size": 0.15, "neck_width": 0.5, "shoulder_width": 0.5, "lip_tint": -0.35, "eye_opening": -0.2,
}

HEAD_SIZE = 0.8
"""Height of the head (chin to crown, hair excluded) in the canonical frame."""

# Mesh resolution: denser where the features are (the front, and from the eyes to the chin).
N_LON, N_LAT = 176, 132
_PHI = g.warped_samples(N_LON, -np.pi, np.pi, 0.0, 0.9, 2.0, endpoint=False)
_THETA = g.warped_samples(N_LAT + 1, 0.0, np.pi, 0.62 * np.pi, 0.35, 1.5)[1:-1]
_GRID = g.sphere_grid(_THETA, _PHI)
HEAD_VERTICES = len(_GRID[0])
"""The head shell is the first part of every mesh: its first HEAD_VERTICES vertices."""

def _azimuths(n: int, peaks: tuple[float, ...], width: float, gain: float) -> np.ndarray:
    """n azimuths in [-pi, pi), denser around each of `peaks`."""
    fine = np.linspace(-np.pi, np.pi, 4096)
    density = 1.0 + gain * sum(np.exp(-(((fine - c) / width) ** 2)) for c in peaks)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return np.interp(np.arange(n) / n, cdf / cdf[-1], fine)


# The hair's walls rise at the temples and beside the ears: more columns there.
_HAIR_GRID = g.sphere_grid(g.warped_samples(67, 0.0, np.pi, 0.45 * np.pi, 0.3, 0.8)[1:-1],
                           _azimuths(128, (-1.25, 1.25), 0.45, 1.2))
_EYE_GRID = g.sphere_grid(20, 32)
_EAR_GRID = g.sphere_grid(14, 24)
_TORSO_GRID = g.sphere_grid(28, 44)
_BUN_GRID = g.sphere_grid(12, 20)


def sample(rng: np.random.Generator) -> dict[str, float]:
    male = int(rng.integers(2))
    u = rng.uniform(size=len(PARAMS))
    p: dict[str, float] = {}
    for (name, (lo, hi)), x in zip(PARAMS.items(), u):
        s = SEXED.get(name, 0.0)
        if s:
            x = (1 - abs(s)) * x + (abs(s) if (s > 0) == bool(male) else 0.0)
        p[name] = x
    p["age"] = p["age"] ** 1.25  # fewer old people than young
    age = p["age"]
    p["hairline"] = p["hairline"] * (1 - 0.8 * age) if male else 0.45 + 0.55 * p["hairline"]
    p["lip_fullness"] *= 1 - 0.3 * age
    p["ear_size"] += (1 - p["ear_size"]) * 0.3 * age
    p["fringe"] = max(0.0, 2 * p["fringe"] - 1)  # half of the people have no bangs
    for name, (lo, hi) in PARAMS.items():
        p[name] = round(lo + (hi - lo) * float(np.clip(p[name], 0.0, 1.0)), 6)

    styles = ([0.10 + 0.3 * age, 0.18, 0.32, 0.12, 0.05, 0.07, 0.03, 0.03] if male
              else [0.01, 0.03, 0.12, 0.22, 0.30, 0.08, 0.12, 0.12])
    grey = 0.02 + 1.0 * _smooth(0.4, 1.0, age)
    fair = 0.15 if p["skin_tone"] > 0.55 else 1.0  # blond and red hair are rare with dark skin
    colours = [0.42, 0.32, 0.14 * fair, 0.06 * fair, grey]
    facial = [0.38, 0.24, 0.13, 0.25] if male else [1.0, 0.0, 0.0, 0.0]
    choice = {
        "sex": float(male),
        "hair_style": _pick(rng, styles),
        "hair_color": _pick(rng, colours),
        "facial_hair": _pick(rng, facial),
        "bust": float(rng.integers(2)),
        "neckline": float(rng.integers(len(NECKLINES))),
        "clothing_color": float(rng.integers(len(CLOTHES))),
        "finish": _pick(rng, [5.0, 1.0]),  # drawn last: the other numbers of a seed stay what they were
    }
    return {**choice, **p}


def _pick(rng: np.random.Generator, weights) -> float:
    w = np.asarray(weights, dtype=np.float64)
    return float(rng.choice(len(w), p=w / w.sum()))


def build(p: dict[str, float]) -> Mesh:
    f = _Frame.of(p)
    look = _Look.of(p)
    head = _head(p, f, look)
    parts = [head]
    parts += [_eyeball(p, f, head, side, look) for side in (-1, 1)]
    parts += [_ear(p, f, head, side, look) for side in (-1, 1)]
    parts.append(_neck(p, f, look))
    if BUSTS[int(p["bust"])] == "shoulders":
        parts.append(_torso(p, f, look))
    parts += _hair(p, f, look)
    if FACIAL_HAIR[int(p["facial_hair"])] in ("moustache", "beard"):
        parts.append(_beard(p, f, look))
    mesh = g.merge(parts)
    if FINISHES[int(p["finish"])] == "plain":
        mesh = Mesh(mesh.vertices, mesh.faces, np.full_like(mesh.colors, _plain_tone(p)))
    return _portrait(mesh, head.vertices)


def _plain_tone(p: dict[str, float]) -> float:
    """A sculpture's albedo, from white plaster to dark bronze, set by the skin-tone number."""
    return 0.82 - 0.55 * (p["skin_tone"] - PARAMS["skin_tone"][0]) / (PARAMS["skin_tone"][1] - PARAMS["skin_tone"][0])


def _portrait(mesh: Mesh, head: np.ndarray) -> Mesh:
    """Frame on the head alone: its box centred at the origin, its height HEAD_SIZE.

    (`geometry.normalise` frames the whole mesh, which would shrink and shift the head whenever
    shoulders or tall hair are present.)
    """
    h = head.astype(np.float64)
    lo, hi = h.min(axis=0), h.max(axis=0)
    v = (mesh.vertices.astype(np.float64) - (lo + hi) / 2.0) * (HEAD_SIZE / (hi[2] - lo[2]))
    return Mesh(v, mesh.faces, mesh.colors)


# ------------------------------------------------------------------------------- landmarks


@dataclass(frozen=True)
class _Frame:
    """Landmark heights and half-widths of one head (cm; head centre at the origin)."""

    a: float  # half width, half length, half height of the skull
    b: float
    c: float
    eye_z: float
    ex: float  # eye centre |x|
    brow_z: float
    nose_top: float
    nose_bottom: float
    mouth_z: float
    chin_z: float
    mw: float  # half mouth width
    ear_z: float  # ear centre
    ear_h: float
    ear_y: float  # where the ear's front edge meets the head
    ear_psi: tuple[float, float]  # azimuth (deg from the front) of the ear's front and back edges
    male: bool
    age: float

    @staticmethod
    def of(p: dict[str, float]) -> "_Frame":
        a, b, c = p["head_width"] / 2, p["head_length"] / 2, p["head_height"] / 2
        eye_z = p["eye_height"]
        nose_bottom = eye_z - p["nose_length"]
        mouth_z = nose_bottom - p["mouth_gap"]
        ear_h = p["ear_size"]
        ry = _ear_half_depth(p)
        ear_y = 0.6
        psi0 = np.degrees(np.arctan2(a, -(ear_y - 0.4)))
        psi1 = np.degrees(np.arctan2(a * 0.92, -(ear_y + 1.8 * ry + 0.4)))
        return _Frame(a, b, c, eye_z, p["eye_spacing"] / 2, eye_z + p["brow_height"], eye_z + 0.6, nose_bottom,
                      mouth_z, -c + p["chin_height"] * 0.55, p["mouth_width"] / 2, eye_z - 1.5 + p["ear_height"],
                      ear_h, ear_y, (float(psi0), float(psi1)), bool(p["sex"]), p["age"])


@dataclass(frozen=True)
class _Look:
    """The identity's colours (sRGB albedo)."""

    skin: np.ndarray
    lips: np.ndarray
    hair: np.ndarray
    brows: np.ndarray
    iris: np.ndarray
    cloth: np.ndarray

    @staticmethod
    def of(p: dict[str, float]) -> "_Look":
        skin = _skin_color(p)
        hair = _hair_color(p)
        tint = p["lip_tint"]
        lips = skin * np.array([0.80, 0.50, 0.50]) * (0.92 - 0.2 * tint) + np.array([0.10, 0.0, 0.01]) * tint
        # On dark skin the lips are pinker and lighter than the skin around them.
        lips = _blend(lips[None], np.array([0.48, 0.28, 0.27]), np.array([0.6 * _smooth(0.5, 1.0, p["skin_tone"])]))[0]
        lum = _luminance(skin)
        brows = hair * 0.8
        if HAIR_COLORS[int(p["hair_color"])] in ("blond", "grey"):
            brows = 0.55 * hair + 0.45 * np.array([0.30, 0.22, 0.15])  # fair hair: darker brows
        brows = brows * min(1.0, 0.55 * lum / max(_luminance(brows), 1e-3))  # brows always darker than skin
        return _Look(skin, lips, hair, brows, _iris_color(p), _cloth_color(p))


# ------------------------------------------------------------------------------------- skull


def _smooth(edge0: float, edge1: float, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _bump(x, z, cx, cz, sx, sz, power: float = 2.0):
    return np.exp(-(np.abs((x - cx) / sx) ** power) - ((z - cz) / sz) ** 2)


def _skull(p: dict[str, float], th: np.ndarray, ph: np.ndarray) -> np.ndarray:
    """Skull surface points at polar angles `th` and azimuths `ph` (0 = the front)."""
    a, b, c = p["head_width"] / 2, p["head_length"] / 2, p["head_height"] / 2
    # Horizontal cross-sections are superellipses: squarer at the face and cheeks than an ellipse.
    n = np.where(np.cos(ph) > 0, 2.6 + 0.5 * p["jaw_square"], 2.2)
    cx, cy = np.sin(ph), -np.cos(ph)
    r = (np.abs(cx) ** n + np.abs(cy) ** n) ** (-1.0 / n)
    s, ct = np.sin(th), np.cos(th)
    # A blunter crown than an ellipsoid's.
    x, y, z = a * s * r * cx, b * s * r * cy, c * np.sign(ct) * np.abs(ct) ** np.where(ct > 0, 0.85, 1.0)
    below = _smooth(0.0, -c, z)  # 0 at the eyes, 1 at the chin
    above = _smooth(0.0, c, z)
    # A square jaw keeps its width lower down, then turns sharply into the chin.
    narrow = (1 - p["jaw_width"]) * below ** (1.3 + 1.8 * p["jaw_square"])
    x = x * (1.0 + 0.24 * above * (1 - above) - narrow)
    # Below the eyes the head is a jaw, not a dome: its sections shrink and slide forward, so the
    # chin sits at the front-bottom and the underside of the jaw runs back to the neck.
    y = np.where(y > 0, y * (1.0 - 0.5 * below ** 1.2), y * (1.0 - 0.3 * below ** 2)) - 0.42 * b * below ** 1.5
    # The occiput bulges behind the ears.
    y = y + np.where(y > 0, 0.08 * b * above * (1 - above) * 4 * np.clip(cy, 0, 1), 0.0)
    # Forehead slope: the upper face leans back.
    y = y + p["forehead_slope"] * 1.5 * _smooth(0.25 * c, c, z) * np.clip(-y / b, 0.0, 1.0)
    return np.stack([x, y, z], axis=1)


def _surface(p: dict[str, float], f: _Frame, th: np.ndarray, ph: np.ndarray, faces: np.ndarray):
    """(skin points with the facial features, the smooth skull's unit normals) at (th, ph)."""
    v = _skull(p, th, ph)
    normals = g.vertex_normals(v, faces)
    if np.einsum("ij,ij->", normals, v) < 0:  # a patch's triangles may run either way round
        normals = -normals
    return v + normals * _features(p, f, v, normals)[:, None], normals


def _segment_distance(x, z, x0, z0, x1, z1):
    dx, dz = x1 - x0, z1 - z0
    t = np.clip(((x - x0) * dx + (z - z0) * dz) / (dx * dx + dz * dz), 0.0, 1.0)
    return np.hypot(x - x0 - t * dx, z - z0 - t * dz), t


def _brow_mask(p: dict[str, float], f: _Frame, x, z) -> np.ndarray:
    """Eyebrows: thick at the inner end, tapering outward, arched."""
    ax = np.abs(x)
    inner, outer = f.ex - 1.45, f.ex + 2.0
    t = np.clip((ax - inner) / (outer - inner), 0.0, 1.0)
    arch = 0.1 + 0.45 * p["brow_arch"]
    centre = f.brow_z - 0.15 + arch * np.sin(np.pi * np.clip(t * 1.15, 0, 1)) - 0.25 * t ** 2
    half = (0.22 + 0.22 * p["brow_thickness"] + 0.08 * f.male) * (1.0 - 0.55 * t ** 1.5)
    along = _smooth(inner - 0.25, inner + 0.2, ax) * (1.0 - _smooth(outer - 0.3, outer + 0.15, ax))
    return along * np.exp(-(np.abs((z - centre) / half) ** 3))


def _features(p: dict[str, float], f: _Frame, v: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Displacement along the skull normal: the face, on the front of the head only."""
    x, z = v[:, 0], v[:, 2]
    facing = np.clip(-normals[:, 1], 0.0, 1.0) ** 0.7
    eye_z, ex, mw = f.eye_z, f.ex, f.mw
    d = np.zeros(len(v))
    # Brow ridge over both eyes, the sockets under it, the eyebrows on it.
    ridge = p["brow_ridge"] * 1.1
    d += ridge * (_bump(x, z, -ex, f.brow_z, 2.0, 0.8) + _bump(x, z, ex, f.brow_z, 2.0, 0.8))
    d += ridge * 0.6 * _bump(x, z, 0.0, f.brow_z - 0.2, 1.2, 0.7)  # glabella
    d -= p["eye_depth"] * (_bump(x, z, -ex, eye_z + 0.1, 1.55, 1.05) + _bump(x, z, ex, eye_z + 0.1, 1.55, 1.05))
    d += (0.1 + 0.12 * p["brow_thickness"]) * _brow_mask(p, f, x, z)
    # Nose: a ridge whose projection grows from the bridge to the tip and whose width grows too.
    t = (f.nose_top - z) / (f.nose_top - f.nose_bottom)
    profile = p["nose_bridge"] + (p["nose_projection"] - p["nose_bridge"]) * np.clip(t, 0, 1) ** 1.6
    envelope = _smooth(-0.25, 0.05, t) * (1.0 - _smooth(0.86, 1.04, t))
    half = 0.55 + (p["nose_width"] / 2 - 0.9) * np.clip(t, 0, 1) ** 2.2
    d += profile * envelope * np.exp(-((x / half) ** 2))
    alae_x, alae_z = p["nose_width"] / 2 - 0.55, f.nose_bottom + 0.55
    d += 0.65 * (_bump(x, z, -alae_x, alae_z, 0.6, 0.55) + _bump(x, z, alae_x, alae_z, 0.6, 0.55))
    # Cheekbones and cheeks; with age the cheeks sag into jowls.
    d += p["cheekbones"] * (_bump(x, z, -(ex + 1.5), eye_z - 1.9, 1.7, 1.1)
                            + _bump(x, z, ex + 1.5, eye_z - 1.9, 1.7, 1.1))
    sag = 0.9 * f.age
    full = p["cheek_fullness"]
    d += full * (_bump(x, z, -(ex + 1.2), f.mouth_z + 0.8 - sag, 1.8, 1.8)
                 + _bump(x, z, ex + 1.2, f.mouth_z + 0.8 - sag, 1.8, 1.8))
    jowl = 0.35 * f.age
    d += jowl * (_bump(x, z, -(mw + 1.6), f.mouth_z - 1.6, 1.2, 1.0) + _bump(x, z, mw + 1.6, f.mouth_z - 1.6, 1.2, 1.0))
    # Bags under the eyes, and the nasolabial folds from the nose wings to the mouth corners.
    d += 0.22 * f.age * (_bump(x, z, -ex, eye_z - 1.45, 1.0, 0.35) + _bump(x, z, ex, eye_z - 1.45, 1.0, 0.35))
    dist, along = _segment_distance(np.abs(x), z, alae_x + 0.75, alae_z + 0.1, mw + 0.55, f.mouth_z - 0.7)
    ends = _smooth(0.0, 0.15, along) * (1 - _smooth(0.85, 1.0, along))
    d -= (0.08 + 0.4 * f.age) * np.exp(-((dist / 0.32) ** 2)) * ends
    # Mouth: the rounded muzzle, two lips that end at the corners, the line between them.
    d += 0.7 * _bump(x, z, 0.0, f.mouth_z, mw + 0.8, 2.4)
    lip = p["lip_fullness"]
    d += lip * _bump(x, z, 0.0, f.mouth_z + 0.42, mw * 0.95, 0.38, power=4)
    d += lip * 1.1 * _bump(x, z, 0.0, f.mouth_z - 0.5, mw * 0.85, 0.45, power=4)
    d -= 0.35 * _bump(x, z, 0.0, f.mouth_z, mw, 0.16, power=4)
    d -= 0.25 * _bump(x, z, 0.0, f.mouth_z - 1.35, mw * 0.7, 0.4)
    # Philtrum groove under the nose, chin (wider and flatter on a square jaw).
    d -= 0.12 * _bump(x, z, 0.0, (f.nose_bottom + f.mouth_z) / 2 + 0.2, 0.35, 0.5)
    d += p["chin_projection"] * _bump(x, z, 0.0, f.chin_z, 1.9 + 1.1 * p["jaw_square"], 1.3,
                                      power=2 + 2 * p["jaw_square"])
    return d * facing


def _head(p: dict[str, float], f: _Frame, look: _Look) -> Mesh:
    dirs, faces, th, ph = _GRID
    v, _ = _surface(p, f, th, ph, faces)
    x, z = v[:, 0], v[:, 2]
    front = v[:, 1] < 0
    mw = f.mw
    col = np.tile(look.skin, (len(v), 1))
    # Slightly darker around the eyes and in the folds, a little colour on the cheeks.
    cheeks = _bump(np.abs(x), z, f.ex + 1.4, f.eye_z - 2.4, 1.6, 1.4) * front
    col = _blend(col, look.skin * np.array([1.02, 0.93, 0.92]), 0.5 * cheeks)
    lips = (_bump(x, z, 0.0, f.mouth_z + 0.4, mw * 0.95, 0.34, power=4)
            + _bump(x, z, 0.0, f.mouth_z - 0.5, mw * 0.85, 0.42, power=4)) * front
    col = _blend(col, look.lips, np.clip(lips * 1.2, 0, 1))
    col = _blend(col, look.skin * 0.3, np.clip(_bump(x, z, 0.0, f.mouth_z, mw * 0.95, 0.12, power=4) * front, 0, 1))
    col = _blend(col, look.brows, np.clip(_brow_mask(p, f, x, z) * front * 1.3, 0, 1))
    beard = FACIAL_HAIR[int(p["facial_hair"])]
    if beard != "none":
        m = _beard_mask(p, f, v, beard)
        col = _blend(col, look.hair * 0.9, np.clip(m * (0.45 if beard == "stubble" else 0.9), 0, 1))
    scalp = _scalp_mask(p, f, v)
    col = _blend(col, look.hair * 0.85, scalp)
    return Mesh(v, faces, np.clip(col, 0, 1))


# --------------------------------------------------------------------------------------- hair


def _hairline(p: dict[str, float], f: _Frame, style: str, psi: np.ndarray) -> np.ndarray:
    """Height (z) of the hairline at azimuth |psi| (degrees from the front, 0..180)."""
    receding = 1.0 - p["hairline"]
    front = f.brow_z + 2.6 + 3.2 * receding
    temple = front - 0.6 + 2.6 * receding
    ear_top, ear_mid, ear_bottom = f.ear_z + f.ear_h / 2, f.ear_z + 0.3, f.ear_z - f.ear_h / 2
    nape = f.mouth_z - 0.3
    over, burn, behind = ear_top + 0.7, ear_mid, ear_mid - 0.6
    if style == "medium":
        over, burn, behind, nape = ear_mid, ear_mid - 0.5, ear_bottom, nape - 1.5
    elif style in ("long", "afro"):
        over, burn, behind, nape = ear_bottom - 0.5, ear_bottom - 0.5, ear_bottom - 1.0, nape - 2.0
    elif not f.male:
        burn = ear_top - 0.6
    side = f.eye_z + 2.6
    if style == "afro":  # no widow's peak or temple corners, and a gentle slope down the sides
        temple, side = front - 0.8, f.eye_z + 0.8
    bangs = p["fringe"] if style in _BANGS else 0.0
    low = f.brow_z + 0.55
    front = front + (low - front) * bangs
    temple = temple + (low + 0.9 - temple) * bangs
    e0, e1 = f.ear_psi
    knots = [0.0, 30.0, 46.0, 62.0, e0 - 13.0, e0 - 4.0, e0 + 3.0, e1 - 2.0, e1 + 9.0, 150.0, 180.0]
    height = [front, front + 0.25 * (temple - front), temple, side, burn, burn, over, over, behind,
              nape + 1.2, nape]
    return np.interp(np.abs(psi), knots, height)


def _azimuth(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(v[:, 0], -(v[:, 1] - 0.3)))


def _scalp_mask(p: dict[str, float], f: _Frame, v: np.ndarray) -> np.ndarray:
    """Weight of hair colour on the head's own skin (under the hair shell, and for a buzz cut)."""
    style = HAIR_STYLES[int(p["hair_style"])]
    if style == "bald" and p["hair_volume"] < 0.5:
        return np.zeros(len(v))
    s = v[:, 2] - _hairline(p, f, style, _azimuth(v))
    m = _smooth(-0.2, 0.5, s)
    if style == "bald":
        m = m * _horseshoe(f, v)
    return m


def _horseshoe(f: _Frame, v: np.ndarray) -> np.ndarray:
    """A bald crown: hair only around the sides and the back."""
    top = f.ear_z + f.ear_h / 2 + 3.0 + 1.5 * np.clip(v[:, 1] / f.b, 0, 1)
    return (1 - _smooth(top - 0.6, top + 0.4, v[:, 2])) * _smooth(70.0, 95.0, np.abs(_azimuth(v)))


# (top, side, back) thickness in cm at hair_volume 0, and what volume adds.
_HAIR_DEPTH = {
    "bald": ((0.25, 0.25, 0.25), (0.2, 0.2, 0.2)),
    "buzz": ((0.18, 0.15, 0.15), (0.2, 0.15, 0.15)),
    "short": ((0.6, 0.35, 0.4), (1.1, 0.45, 0.55)),
    "medium": ((1.3, 1.4, 1.5), (2.0, 1.5, 1.7)),
    "long": ((0.9, 1.3, 1.2), (1.1, 1.0, 1.0)),
    "afro": ((3.0, 3.0, 3.0), (4.0, 3.0, 3.5)),
    "bun": ((0.35, 0.3, 0.35), (0.3, 0.2, 0.2)),
    "ponytail": ((0.35, 0.3, 0.35), (0.3, 0.2, 0.2)),
}


def _hair(p: dict[str, float], f: _Frame, look: _Look) -> list[Mesh]:
    style = HAIR_STYLES[int(p["hair_style"])]
    vol = p["hair_volume"]
    if style == "bald" and vol < 0.5:
        return []
    dirs, faces, th, ph = _HAIR_GRID
    v, n = _surface(p, f, th, ph, faces)
    base, extra = _HAIR_DEPTH[style]
    top, side, back = (b + e * vol for b, e in zip(base, extra))
    front = 0.7 * top
    if style in _BANGS:  # bangs lie flat on the forehead
        front = front + (min(front, 0.5 + 0.6 * vol) - front) * _smooth(0.0, 0.3, p["fringe"])
    wt, wf = np.clip(n[:, 2], 0, 1) ** 2, np.clip(-n[:, 1], 0, 1) ** 2
    ws, wb = n[:, 0] ** 2, np.clip(n[:, 1], 0, 1) ** 2
    depth = (top * wt + front * wf + side * ws + back * wb) / (wt + wf + ws + wb + 1e-9)
    s = v[:, 2] - _hairline(p, f, style, _azimuth(v))
    grow = 0.5 + (0.5 if style == "afro" else 0.3) * depth
    lift = _smooth(0.0, grow, s)
    if style == "bald":
        lift = lift * _horseshoe(f, v)
    sink = 1.0 - _smooth(-1.2, 0.0, s) * (1.0 if style != "bald" else _smooth(0.2, 0.5, _horseshoe(f, v)))
    offset = depth * lift - 2.0 * sink
    direction = n
    if style == "afro":  # rounder: push outward from the head's centre as much as along the normal
        radial = v - np.array([0.0, 0.8, f.eye_z + 1.5])
        radial /= np.linalg.norm(radial, axis=1, keepdims=True)
        direction = n + 1.5 * radial
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    shell = v + direction * offset[:, None]
    # Hair is darker toward its roots at the hairline, lighter where it is thick.
    col = _blend(np.tile(look.hair, (len(v), 1)), look.hair * 0.7, 1.0 - _smooth(0.0, 2.0 * grow, s))
    parts = [Mesh(shell, faces, np.clip(col, 0, 1))]
    if style in ("medium", "long"):
        parts.append(_curtain(p, f, look, style, shell, s))
    elif style == "bun":
        parts.append(_bun(p, f, look, shell, n))
    elif style == "ponytail":
        parts.append(_ponytail(p, f, look, shell))
    return parts


def _curtain(p, f: _Frame, look: _Look, style: str, cap: np.ndarray, s: np.ndarray) -> Mesh:
    """Hair hanging from the widest part of the head: a closed sheet, thick in the middle, thin at the edges."""
    c, vol, length = f.c, p["hair_volume"], p["hair_length"]
    z_top = f.eye_z + 1.5
    if style == "medium":
        z_bot = f.mouth_z - 0.5 - 3.0 * length
        psi0 = 72.0
    else:
        z_bot = -c - 3.0 - length * 0.5 * 2 * c
        psi0 = 72.0 - 6.0 * vol
    # The cap's outer radius around the vertical axis, per azimuth, near its widest level.
    band = (cap[:, 2] > f.eye_z - 1.0) & (cap[:, 2] < f.eye_z + 3.5) & (s > 0.5)
    psi_cap = _azimuth(cap[band])
    rad_cap = np.hypot(cap[band, 0], cap[band, 1] - 0.3)
    bins = np.linspace(0.0, 180.0, 19)
    idx = np.clip(np.digitize(np.abs(psi_cap), bins) - 1, 0, 17)
    rmax = np.zeros(18)
    np.maximum.at(rmax, idx, rad_cap)
    centres = (bins[:-1] + bins[1:]) / 2
    full = rmax > 0
    rmax = np.interp(centres, centres[full], rmax[full])  # fill azimuths the band missed
    nu, nv = 40, 22
    u = np.linspace(0.0, 1.0, nu)
    w = np.linspace(0.0, 1.0, nv)
    psi = psi0 + u * (360.0 - 2 * psi0)  # through the back (180)
    apsi = np.where(psi > 180.0, 360.0 - psi, psi)
    r_out = np.interp(apsi, centres, rmax) - 0.25
    # Thick up to its front edges (hair falls in locks, not a sheet), wispy at the bottom, shorter
    # at the front than at the back, hugging the jaw a little on the way down, flaring at the ends.
    thick = (1.0 + 1.3 * vol) * (_smooth(0.0, 0.05, u) * _smooth(0.0, 0.05, 1 - u))[:, None] \
        * (_smooth(0.0, 0.2, w) * _smooth(0.0, 0.12, 1 - w) ** 0.5)[None, :]
    sides = np.sin(np.pi * u) ** 0.7
    bottom = z_bot + (1.0 - sides) * (z_top - z_bot) * 0.25
    z = z_top + (bottom[:, None] - z_top) * w[None, :]
    hug = 1.2 * _smooth(0.0, 0.45, w) * (1.0 - 0.5 * sides)[:, None]
    flare = (0.3 + 1.2 * vol) * w ** 2
    rad = r_out[:, None] + flare[None, :] - hug - thick / 2
    ang = np.radians(psi)[:, None]
    normal = np.stack(np.broadcast_arrays(np.sin(ang), -np.cos(ang), np.zeros_like(ang)), axis=-1)
    normal = np.broadcast_to(normal, (nu, nv, 3))
    mid = np.stack(np.broadcast_arrays(np.sin(ang) * rad, 0.3 - np.cos(ang) * rad, z), axis=-1)
    mesh = _lens(mid, normal, thick / 2, thick / 2)
    return Mesh(mesh.vertices, mesh.faces, np.tile(look.hair * 0.95, (len(mesh.vertices), 1)))


def _bun(p, f: _Frame, look: _Look, cap: np.ndarray, n: np.ndarray) -> Mesh:
    el = np.radians(10.0 + 65.0 * p["hair_length"])  # low bun at the nape up to a top knot
    target = np.array([0.0, np.cos(el), np.sin(el)])
    k = int(np.argmax((cap - np.array([0.0, 0.5, f.eye_z + 1.5])) @ target))
    rb = 2.6 + 1.8 * p["hair_volume"]
    axis = n[k] / np.linalg.norm(n[k])
    dirs, faces, _, _ = _BUN_GRID
    local = dirs * rb
    local = local - np.outer(local @ axis, axis) * 0.25  # flattened against the head
    v = cap[k] + axis * rb * 0.5 + local
    return Mesh(v, faces, np.tile(look.hair * 0.92, (len(v), 1)))


def _ponytail(p, f: _Frame, look: _Look, cap: np.ndarray) -> Mesh:
    z0 = f.eye_z + 1.0 + 3.0 * p["fringe"]  # lower or higher on the back of the head
    near = np.abs(cap[:, 2] - z0) < 1.0
    k = np.flatnonzero(near)[int(np.argmax(cap[near, 1]))]
    start = cap[k] - np.array([0.0, 0.6, 0.0])
    length = 10.0 + 20.0 * p["hair_length"]
    s = np.linspace(0.0, 1.0, 18)
    # A quadratic curve: out from the head, then falling.
    p0, p1, p2 = start, start + np.array([0.0, 4.5, -0.5]), start + np.array([0.0, 4.0, -length])
    path = ((1 - s) ** 2)[:, None] * p0 + (2 * s * (1 - s))[:, None] * p1 + (s ** 2)[:, None] * p2
    r0 = 1.4 + 1.2 * p["hair_volume"]
    radius = r0 * (1.0 - 0.78 * s ** 1.3) * (1.0 - 0.3 * np.exp(-(((s - 0.08) / 0.04) ** 2)))
    return _sweep(path, radius, look.hair * 0.92, sides=14)


def _beard_mask(p: dict[str, float], f: _Frame, v: np.ndarray, kind: str) -> np.ndarray:
    x, z = v[:, 0], v[:, 2]
    ax = np.abs(x)
    mw = f.mw
    psi = np.abs(_azimuth(v))
    e0 = f.ear_psi[0]
    ahead = 1.0 - _smooth(e0 - 14.0, e0 - 6.0, psi)
    front = _smooth(2.0, -1.0, v[:, 1] - 1.0)  # not on the neck behind the jaw
    # Moustache: from under the nose down to the upper lip, drooping past the mouth corners.
    low = f.mouth_z + 0.75 - 0.8 * _smooth(mw - 0.5, mw + 0.5, ax)
    high = f.nose_bottom - 0.2 - 0.8 * (ax / (mw + 0.5)) ** 2
    moustache = _smooth(low - 0.1, low + 0.2, z) * (1 - _smooth(high - 0.25, high + 0.05, z))
    moustache = moustache * (1 - _smooth(mw + 0.1, mw + 0.7, ax))
    if kind == "moustache":
        return moustache * ahead
    cheek = np.interp(ax, [0.0, mw + 0.6, f.ex + 2.6, f.a + 2.0], [f.nose_bottom - 0.2, f.nose_bottom - 0.2,
                                                                   f.eye_z - 2.1, f.eye_z - 0.3])
    below_cheek = 1 - _smooth(cheek - 0.3, cheek + 0.4, z)
    e = (x / (mw + 0.25)) ** 2 + ((z - f.mouth_z + 0.05) / np.where(z > f.mouth_z, 0.85, 0.75)) ** 2
    lips = _smooth(0.85, 1.3, e)
    return np.maximum(below_cheek * lips, moustache) * ahead * front


def _beard(p: dict[str, float], f: _Frame, look: _Look) -> Mesh:
    kind = FACIAL_HAIR[int(p["facial_hair"])]
    e0 = np.radians(f.ear_psi[0] + 4.0)
    th_top = np.arccos(np.clip((f.eye_z - 0.4) / f.c, -1, 1))
    nu, nv = 70, 44
    ph = g.warped_samples(nu, -e0, e0, 0.0, 0.5, 1.5)
    th = g.warped_samples(nv, th_top, 0.975 * np.pi, np.arccos(np.clip(f.mouth_z / f.c, -1, 1)), 0.25, 1.0)
    TH, PH = np.meshgrid(th, ph, indexing="xy")  # [nu, nv]
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    idx = i * nv + j
    quad = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    tris = np.concatenate([quad[:, [0, 1, 2]], quad[:, [0, 2, 3]]])
    v, n = _surface(p, f, TH.ravel(), PH.ravel(), tris)
    m = _beard_mask(p, f, v, kind)
    rim = (_smooth(0, 3, i) * _smooth(0, 3, nu - 1 - i) * _smooth(0, 3, j) * _smooth(0, 3, nv - 1 - j)).ravel()
    m = m * rim
    if kind == "moustache":
        depth = (0.25 + 0.35 * p["beard_length"]) * (1 - 0.5 * _smooth(0.0, f.mw + 0.6, np.abs(v[:, 0])))
    else:
        chin = _bump(v[:, 0], v[:, 2], 0.0, -f.c + 0.5, 3.0, 2.0)
        depth = (0.35 + 1.5 * p["beard_length"]) * (1.0 + 0.8 * p["beard_length"] * chin)
    near_lips = np.exp(-((v[:, 0] / (f.mw + 0.8)) ** 2) - ((v[:, 2] - f.mouth_z) / 1.3) ** 2)
    sink = 0.3 + 0.5 * near_lips
    out = depth * m - sink * (1 - m)
    inn = sink + 0.5 * rim
    shape = (nu, nv, 3)
    mesh = _lens(v.reshape(shape), n.reshape(shape), out.reshape(nu, nv), inn.reshape(nu, nv))
    return Mesh(mesh.vertices, mesh.faces, np.tile(look.hair * 0.9, (len(mesh.vertices), 1)))


# ---------------------------------------------------------------------------- closed sheets


def _lens(mid: np.ndarray, normal: np.ndarray, out: np.ndarray, inn: np.ndarray) -> Mesh:
    """A closed shell from a grid [nu, nv] of points: an outer sheet `mid + normal * out` and an inner
    sheet `mid - normal * inn` that share the grid's border (where the outer sheet's points are used)."""
    nu, nv = out.shape
    outer = (mid + normal * out[..., None]).reshape(-1, 3)
    inner = (mid - normal * inn[..., None])[1:-1, 1:-1].reshape(-1, 3)
    io = np.arange(nu * nv).reshape(nu, nv)
    ii = io.copy()
    ii[1:-1, 1:-1] = nu * nv + np.arange((nu - 2) * (nv - 2)).reshape(nu - 2, nv - 2)
    rim = np.ones((nu, nv), bool)
    rim[1:-1, 1:-1] = False

    def quads(ix):
        return np.stack([ix[:-1, :-1], ix[1:, :-1], ix[1:, 1:], ix[:-1, 1:]], -1).reshape(-1, 4)

    q, qi, qr = quads(io), quads(ii), quads(rim)
    # Two corner quads have three corners on the border: split them along the other diagonal, so
    # that no triangle lies wholly on the border (it would belong to both sheets).
    alt = (qr[:, 0] & qr[:, 2])[:, None]
    first = np.where(alt, [0, 1, 3], [0, 1, 2])
    second = np.where(alt, [1, 2, 3], [0, 2, 3])
    pick = lambda qq, k: np.take_along_axis(qq, k, axis=1)  # noqa: E731
    tris = np.concatenate([pick(q, first), pick(q, second),
                           pick(qi, first)[:, ::-1], pick(qi, second)[:, ::-1]])
    return _outward(Mesh(np.concatenate([outer, inner]), tris, None))


def _sweep(path: np.ndarray, radius: np.ndarray, color, sides: int = 14) -> Mesh:
    """A closed tube along a polyline with a radius per point, rounded at both ends."""
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.cross(tangent[0], [1.0, 0.0, 0.0])
    normal /= np.linalg.norm(normal)
    rings = []
    a = 2 * np.pi * np.arange(sides) / sides
    for t, pt, r in zip(tangent, path, radius):
        normal = normal - t * (normal @ t)  # parallel transport
        normal /= np.linalg.norm(normal)
        binormal = np.cross(t, normal)
        rings.append(pt + r * (np.outer(np.cos(a), normal) + np.outer(np.sin(a), binormal)))
    k = len(path)
    verts = np.concatenate([np.concatenate(rings), [path[0] - tangent[0] * radius[0] * 0.6],
                            [path[-1] + tangent[-1] * radius[-1] * 0.8]])
    ring = lambda r, j: r * sides + (j % sides)  # noqa: E731
    j = np.arange(sides)
    r, jj = np.meshgrid(np.arange(k - 1), j, indexing="ij")
    r, jj = r.ravel(), jj.ravel()
    quads = np.concatenate([np.stack([ring(r, jj), ring(r, jj + 1), ring(r + 1, jj + 1)], 1),
                            np.stack([ring(r, jj), ring(r + 1, jj + 1), ring(r + 1, jj)], 1)])
    start = np.stack([np.full(sides, k * sides), ring(0, j + 1), ring(0, j)], 1)
    end = np.stack([np.full(sides, k * sides + 1), ring(k - 1, j), ring(k - 1, j + 1)], 1)
    return _outward(Mesh(verts, np.concatenate([quads, start, end]), np.tile(color, (len(verts), 1))))


def _outward(mesh: Mesh) -> Mesh:
    if g.signed_volume(mesh.vertices, mesh.faces) < 0:
        return Mesh(mesh.vertices, mesh.faces[:, [0, 2, 1]], mesh.colors)
    return mesh


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


def _eyeball(p: dict[str, float], f: _Frame, head: Mesh, side: int, look: _Look) -> Mesh:
    r = p["eye_size"]
    socket = _surface_point(head, side * f.ex, f.eye_z)
    centre = socket + np.array([0.0, r - 0.45, 0.0])  # the cornea stands just out of the socket
    dirs, faces, th, ph = _EYE_GRID
    forward = -dirs[:, 1]
    dx, dz = dirs[:, 0] * side, dirs[:, 2]  # dx > 0 toward the outer corner
    col = np.tile([0.93, 0.91, 0.88], (len(dirs), 1))
    col = _blend(col, look.iris, _smooth(0.80, 0.84, forward))
    col = _blend(col, np.array([0.02, 0.02, 0.02]), _smooth(0.955, 0.97, forward))
    # Eyelids painted on the ball: an almond opening, tilted, with a dark lash line along the top.
    opening = 0.4 + 0.2 * p["eye_opening"]
    shape = np.clip(1.0 - (dx / 0.8) ** 2, 0.0, 1.0)
    tilt = 0.12 * p["eye_tilt"] * dx
    upper = -0.08 + (opening + 0.08) * shape + tilt
    lower = -0.1 - 0.5 * opening * shape + tilt
    lash = 0.07 + 0.05 * (not f.male)
    lid = np.maximum(_smooth(upper, upper + 0.03, dz), 1.0 - _smooth(lower - 0.03, lower, dz))
    lid = np.maximum(lid, _smooth(0.25, -0.05, forward))
    col = _blend(col, look.skin * 0.9, lid)
    lashes = _smooth(upper - 0.02, upper + 0.01, dz) * (1.0 - _smooth(upper + lash, upper + lash + 0.03, dz))
    lashes = lashes * _smooth(0.1, 0.35, forward)
    col = _blend(col, np.array([0.05, 0.04, 0.04]), np.clip(lashes, 0, 1))
    lower_line = np.exp(-(((dz - lower + 0.02) / 0.03) ** 2)) * _smooth(0.1, 0.35, forward) * 0.5
    col = _blend(col, look.skin * 0.55, lower_line)
    return Mesh(centre + dirs * r, faces, col)


def _ear_half_depth(p: dict[str, float]) -> float:
    return 0.55 * p["ear_size"] / 2


def _ear(p: dict[str, float], f: _Frame, head: Mesh, side: int, look: _Look) -> Mesh:
    h = p["ear_size"]
    ry, rz, thick = _ear_half_depth(p), h / 2, 0.35
    dirs, faces, _, _ = _EAR_GRID
    ly, lz = dirs[:, 1] * ry, dirs[:, 2] * rz
    rim = 1.0 - (dirs[:, 1] ** 2 + dirs[:, 2] ** 2)
    # A cupped disc: both faces bowed inward, so the outer face is a hollow with a rim; a lobe.
    lx = dirs[:, 0] * thick - 0.9 * rim
    lz = lz - 0.12 * rz * np.clip(-dirs[:, 2], 0, 1) ** 3
    local = np.stack([lx * side, ly, lz], axis=1)
    if side < 0:
        faces = faces[:, [0, 2, 1]]  # mirroring flips the winding
    attach = _side_point(head, side, f.ear_y, f.ear_z)
    protrusion = p["ear_protrusion"]
    style = HAIR_STYLES[int(p["hair_style"])]
    if style in ("long", "afro"):
        protrusion = min(protrusion, 6.0)  # tucked under the hair
    elif style == "medium":
        protrusion = min(protrusion, 12.0)
    rot = g.rotation_z(-side * protrusion) @ g.rotation_x(-12.0)
    # Rotate about the ear's front edge so it swings out from the head, then seat it on the skin.
    hinge = np.array([0.0, -ry, 0.0])
    v = (local - hinge) @ rot.T + hinge + attach + np.array([side * 0.05, ry * 0.8, 0.0])
    col = np.tile(look.skin * 0.95, (len(v), 1))
    col = _blend(col, look.skin * 0.8, np.clip(rim * (dirs[:, 0] * side > 0), 0, 1) * 0.6)  # the hollow
    return Mesh(v, faces, col)


def _neck(p: dict[str, float], f: _Frame, look: _Look) -> Mesh:
    c = f.c
    r = p["neck_width"] / 2
    shoulders = BUSTS[int(p["bust"])] == "shoulders"
    top = (0.0, 1.4, -0.3 * c)
    bottom = (0.0, 1.4, -c - (9.0 if shoulders else 3.5))
    neck = g.tube(top, bottom, r * 0.95, r * (1.05 if shoulders else 1.0), look.skin, sides=40)
    v = neck.vertices.astype(np.float64)
    v[:, 1] = 1.4 + (v[:, 1] - 1.4) * 0.85  # a neck is less deep than wide
    if f.male:  # the Adam's apple
        bump = np.exp(-((v[:, 0] / 1.0) ** 2) - ((v[:, 2] - (-c - 1.8)) / 1.2) ** 2) * (v[:, 1] < 1.4)
        v[:, 1] -= 0.6 * bump
    col = _blend(np.tile(look.skin * 0.97, (len(v), 1)), look.skin * 0.85, _smooth(-0.3 * c, -c, v[:, 2]) * 0.5)
    return Mesh(v, neck.faces, col)


def _torso(p: dict[str, float], f: _Frame, look: _Look) -> Mesh:
    """Shoulders and upper chest in clothes: a rounded box with a trapezius slope up to the neck."""
    c = f.c
    dirs, faces, th, ph = _TORSO_GRID
    W = p["shoulder_width"] * c  # half width: shoulder_width is in head heights
    D = 0.26 * W + 4.0
    neck_r = p["neck_width"] / 2
    z_sh = -c - 6.5 - 2.5 * p["shoulder_slope"]  # top of the shoulders, out at the arms
    z_bottom = -c - 1.2 * c
    H = (z_sh - z_bottom) / 2
    z_c = (z_sh + z_bottom) / 2
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    hs = np.hypot(dx, dy)
    n_h, n_v = 3.2, 3.0
    pole = hs < 1e-9
    cx, cy = np.where(pole, 1.0, dx / np.maximum(hs, 1e-9)), np.where(pole, 0.0, dy / np.maximum(hs, 1e-9))
    r_h = (np.abs(cx) ** n_h + np.abs(cy) ** n_h) ** (-1 / n_h)
    r_v = (hs ** n_v + np.abs(dz) ** n_v) ** (-1 / n_v)
    x, y, z = W * dx * r_h * r_v, D * dy * r_h * r_v, H * dz * r_v
    ax = np.abs(x)
    top = _smooth(0.0, 0.7, dz)
    rise = (-c - 3.2) - z_sh  # up to the neck's base
    z = z + rise * (1 - _smooth(neck_r * 0.7, W * 0.75, ax)) * top
    # The chest is in front of the neck, the back behind it; the shoulders roll slightly forward.
    y = y + 1.4 + 0.8 - 1.0 * _smooth(W * 0.5, W, ax)
    v = np.stack([x, y, z + z_c], axis=1)
    # Clothes, with skin inside the neckline.
    neckline = NECKLINES[int(p["neckline"])]
    rn = np.hypot(v[:, 0], (v[:, 1] - 1.4) * 1.2)
    z_top = -c - 3.2
    if neckline == "crew":
        skin = (1 - _smooth(neck_r + 0.6, neck_r + 1.2, rn)) * _smooth(z_top - 3.0, z_top - 2.0, v[:, 2])
    elif neckline == "v":
        depth = z_top - 8.0
        width = neck_r + 0.8 + 0.0 * v[:, 2]
        front = v[:, 1] < 1.4
        half = np.where(front, np.clip((v[:, 2] - depth) * 0.55, 0, None), 0.0) + np.where(front, 0.0, neck_r + 0.8)
        skin = 1 - _smooth(half, half + 0.6, np.abs(v[:, 0]))
        skin = np.maximum(skin * (v[:, 2] > depth - 1), (1 - _smooth(width, width + 0.6, rn)) * (v[:, 2] > z_top - 3.0))
    else:  # scoop: a wide round neck showing the collarbones
        e = (v[:, 0] / (neck_r + 5.0)) ** 2 + ((v[:, 2] - z_top) / 6.0) ** 2
        skin = (1 - _smooth(0.85, 1.05, e)) * (v[:, 1] < 1.4 + 2.0)
        skin = np.maximum(skin, (1 - _smooth(neck_r + 3.0, neck_r + 3.6, rn)) * (v[:, 2] > z_top - 3.5))
    col = _blend(np.tile(look.cloth, (len(v), 1)), look.skin * 0.95, np.clip(skin, 0, 1))
    return _outward(Mesh(v, faces, np.clip(col, 0, 1)))


# ----------------------------------------------------------------------------------- colours


def _luminance(rgb) -> float:
    lin = np.where(np.asarray(rgb) <= 0.04045, np.asarray(rgb) / 12.92, ((np.asarray(rgb) + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))


def _ramp(stops: np.ndarray, t: float) -> np.ndarray:
    k = len(stops) - 1
    i = min(int(t * k), k - 1)
    return stops[i] + (stops[i + 1] - stops[i]) * (t * k - i)


# Very light to very dark, a little darker than measured skin reflectance: the renders' key light
# saturates albedo above about 0.8 (sRGB), and lips, brows and eyes must stay distinct on any skin.
_SKIN = np.array([[0.90, 0.77, 0.69], [0.84, 0.68, 0.57], [0.76, 0.58, 0.46], [0.63, 0.45, 0.33],
                  [0.47, 0.32, 0.22], [0.32, 0.21, 0.15], [0.21, 0.14, 0.10]])


def _skin_color(p: dict[str, float]) -> np.ndarray:
    base = _ramp(_SKIN, p["skin_tone"])
    olive, rosy = np.array([0.98, 1.0, 0.91]), np.array([1.04, 0.95, 0.98])
    tint = olive + (rosy - olive) * p["skin_undertone"]
    return np.clip(base * tint, 0, 1)


_HAIR = {
    "black": ([0.05, 0.045, 0.04], [0.14, 0.11, 0.09]),
    "brown": ([0.20, 0.12, 0.07], [0.46, 0.32, 0.19]),
    "blond": ([0.62, 0.49, 0.30], [0.90, 0.82, 0.62]),
    "red": ([0.42, 0.15, 0.06], [0.74, 0.40, 0.19]),
    "grey": ([0.45, 0.45, 0.45], [0.93, 0.93, 0.91]),
}


def _hair_color(p: dict[str, float]) -> np.ndarray:
    name = HAIR_COLORS[int(p["hair_color"])]
    lo, hi = (np.array(c) for c in _HAIR[name])
    col = lo + (hi - lo) * p["hair_shade"]
    if name != "grey":  # salt and pepper with age
        col = _blend(col[None], np.array([0.62, 0.62, 0.62]), np.array([0.6 * _smooth(0.55, 1.0, p["age"])]))[0]
    return col


def _iris_color(p: dict[str, float]) -> np.ndarray:
    stops = np.array([[0.16, 0.09, 0.05], [0.33, 0.22, 0.11], [0.33, 0.40, 0.25], [0.42, 0.53, 0.64]])
    return _ramp(stops, p["iris_tone"])


# Clothes are kept below about 0.45 (sRGB): a bright shirt lit by the key light bounces so much light
# into the shadowed jaw and neck that 8-sample renders turn grainy there.
_CLOTHES = {
    "white": (0.46, 0.46, 0.45), "black": (0.05, 0.05, 0.06), "navy": (0.08, 0.10, 0.21), "grey": (0.28, 0.28, 0.30),
    "red": (0.42, 0.07, 0.07), "green": (0.14, 0.27, 0.15), "beige": (0.45, 0.39, 0.30), "blue": (0.20, 0.32, 0.50),
}


def _cloth_color(p: dict[str, float]) -> np.ndarray:
    base = np.array(_CLOTHES[CLOTHES[int(p["clothing_color"])]])
    return base * (0.75 + 0.25 * p["clothing_tone"])


def _blend(col: np.ndarray, target: np.ndarray, w: np.ndarray) -> np.ndarray:
    return col + (np.asarray(target) - col) * np.asarray(w)[:, None]
