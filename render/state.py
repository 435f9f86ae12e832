"""What a frame's factor values set in the scene: a pure function, no Blender.

A dataset declares its factors by kind (`factors.KINDS`); a frame carries one value per factor. Every
kind the dataset does not declare keeps its fixed value: the camera at azimuth, elevation and roll 0 and
`camera.distance` away, the sun at azimuth 0, `light.elevation`, `light.strength` and white, the object's
own albedo, hue and size. `FrameState` is the whole scene setting of one frame; `render.scene.Scene`
applies it and `render.cameras` derives the frame's camera matrices from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from config import CameraSettings, LightSettings


@dataclass(frozen=True)
class FrameState:
    """One frame's scene setting, a field per factor kind (`factors.KINDS`, whose units these are)."""

    camera_azimuth: float = 0.0  # degrees; 0 sees the front
    camera_elevation: float = 0.0  # degrees; > 0 looks down
    camera_distance: float = 3.0  # scene units from the object's centre
    camera_roll: float = 0.0  # degrees about the viewing axis
    light_azimuth: float = 0.0  # degrees, in `light.frame`'s frame
    light_elevation: float = 30.0  # degrees above the horizon
    light_strength: float = 3.0  # W/m²
    light_temperature: float | None = None  # kelvin of the sun's black-body colour; None: white
    object_hue: float = 0.0  # degrees the albedo's hue turns
    object_albedo: float = 1.0  # times the albedo
    object_scale: float = 1.0  # times the object's size


def frame_state(kinds: Sequence[str], values: Sequence[float], camera: CameraSettings,
                light: LightSettings) -> FrameState:
    """The scene setting of a frame whose factors of `kinds` take `values` (same order)."""
    fixed = FrameState(camera_distance=camera.distance, light_elevation=light.elevation, light_strength=light.strength)
    return FrameState(**{**vars(fixed), **{k: float(v) for k, v in zip(kinds, values, strict=True)}})


def uses_material(kinds: Sequence[str]) -> bool:
    """The frames change the albedo (its hue or its scale): the material needs its colour node."""
    return "object_hue" in kinds or "object_albedo" in kinds


def blackbody_rgb(kelvin: float) -> tuple[float, float, float]:
    """Linear RGB of a black body at `kelvin`, brightest channel 1: Tanner Helland's published curve fit
    of the black-body colour in sRGB (good to the eye over 1000-40000 K; 6600 K is white)."""
    t = kelvin / 100.0
    if t <= 66.0:
        r = 255.0
        g = 99.4708025861 * math.log(t) - 161.1195681661
        b = 0.0 if t <= 19.0 else 138.5177312231 * math.log(t - 10.0) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60.0) ** -0.1332047592
        g = 288.1221695283 * (t - 60.0) ** -0.0755148492
        b = 255.0
    srgb = np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    lin = lin / lin.max()
    return float(lin[0]), float(lin[1]), float(lin[2])

