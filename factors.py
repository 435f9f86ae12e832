"""The vocabulary of scene factors: what a dataset may declare under `datasets.<name>.factors`.

A dataset lists its factors by name, each with a *kind* from `KINDS`, in the column order of every
label array (`labels.csv`, shard `labels` [G, K, F], the model's owned latents z1..). The scene
(`render.scene`) knows how to apply each kind; this module says, without Blender, what each kind
means: its unit, the values it may take, whether a full turn of it wraps around, how a horizontal flip
of the image acts on it (the mirror encoder's parity, `model.latents`), and what it is when a dataset
does not declare it. `intrinsic` (the mesh, identity/shape) is not a kind: it is the one factor that
changes the mesh, and every dataset has it.

The paper's three factors are the default declaration (`PAPER`): camera azimuth, camera elevation and
light azimuth, named `azimuth`, `elevation` and `light`.
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

FactorKind = Literal["camera_azimuth", "camera_elevation", "camera_distance", "camera_roll",
                     "light_azimuth", "light_elevation", "light_strength", "light_temperature",
                     "object_hue", "object_albedo", "object_scale"]
FACTOR_KINDS: tuple[str, ...] = typing.get_args(FactorKind)

PAPER: dict[str, str] = {"azimuth": "camera_azimuth", "elevation": "camera_elevation", "light": "light_azimuth"}
"""The default declaration: the paper's three factors, by name and kind."""
PAPER_KINDS: tuple[str, ...] = tuple(PAPER.values())

RESERVED = ("intrinsic", "iid", "all")
"""Names a factor cannot take: the identity sweeps, the i.i.d. set, and `render --factor all`."""


@dataclass(frozen=True)
class Kind:
    unit: str
    """What the values are: degrees, scene units, W/m², kelvin, or a factor (times the default)."""
    bounds: tuple[float, float]
    """Closed interval every value of the kind must lie in."""
    flip: int
    """A horizontal image flip maps a value v to flip * v: -1 for the kinds whose sign turns the picture
    left-right (azimuths, roll), +1 for the others."""
    periodic: bool = False
    """A turn of 360 wraps around (even sweeps over a full turn leave out the repeated end)."""
    what: str = ""


KINDS: dict[str, Kind] = {
    "camera_azimuth": Kind("degrees", (-360.0, 360.0), -1, True, "camera turns around the vertical axis; 0 sees the front"),
    "camera_elevation": Kind("degrees", (-89.0, 89.0), 1, False, "camera above (> 0) or below the object"),
    "camera_distance": Kind("scene units", (0.6, 100.0), 1, False, "camera distance from the object's centre (objects are unit size)"),
    "camera_roll": Kind("degrees", (-180.0, 180.0), -1, True, "camera turns about its viewing axis"),
    "light_azimuth": Kind("degrees", (-360.0, 360.0), -1, True, "the sun's azimuth, in light.frame's frame"),
    "light_elevation": Kind("degrees", (-90.0, 90.0), 1, False, "the sun's elevation above the horizon"),
    "light_strength": Kind("W/m²", (0.0, 1000.0), 1, False, "the sun's irradiance"),
    "light_temperature": Kind("kelvin", (1000.0, 40000.0), 1, False, "the sun's colour, as a black body's"),
    "object_hue": Kind("degrees", (-180.0, 180.0), 1, True, "the albedo's hue turned by this angle"),
    "object_albedo": Kind("times", (0.0, 4.0), 1, False, "the albedo scaled by this factor"),
    "object_scale": Kind("times", (0.05, 4.0), 1, False, "the object scaled by this factor about its centre"),
}
assert set(KINDS) == set(FACTOR_KINDS)


def check_range(kind: str, lo: float, hi: float, at: str, error: type[Exception]) -> None:
    """A factor's [min, max]: finite, min < max, inside the kind's bounds. Raises `error` (one line)."""
    # `--range` comes here straight from the command line, where click reads nan and inf as floats.
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise error(f"{at}: is [{lo:g}, {hi:g}]; give finite numbers ({KINDS[kind].unit})")
    # min == max would make every sweep of this factor copies of one image (and fix it in all others).
    if not lo < hi:
        raise error(f"{at}: min {lo:g} {'>' if lo > hi else '='} max {hi:g}; give [min, max] with min < max")
    b_lo, b_hi = KINDS[kind].bounds
    if lo < b_lo or hi > b_hi:
        raise error(f"{at}: {kind} is in {KINDS[kind].unit} and must lie in [{b_lo:g}, {b_hi:g}]")


def full_turn(kind: str, lo: float, hi: float) -> bool:
    """The range wraps around: an even sweep over it would show its first value twice."""
    return KINDS[kind].periodic and hi - lo >= 360.0
