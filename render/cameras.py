"""Camera geometry of a frame, as pure functions (no Blender): intrinsics, pose, passes, cameras.json.

Convention (docs/passes.md): the OpenCV camera frame, x right, y down, z forward (the viewing
direction), in scene units (objects have unit size). `world_to_camera` maps homogeneous world points
(Blender's world: +Z up, objects face -Y) to that frame; `intrinsics` maps camera points to pixel
coordinates in which pixel (row i, column j) covers [j, j + 1) x [i, i + 1), so its centre is
(j + 0.5, i + 0.5), and row 0 is the top row of the PNG. A world point X projects to
u = K @ (R X + t) / z. Depth is z (distance along the view axis, not along the ray); normals are
unit vectors in the same camera frame.

The pose is the one `render.scene.Scene.set_state` gives the Blender camera: placed at
distance * direction(azimuth, elevation), its -Z axis aimed at the origin and its Y axis as close
to world +Z as possible (`to_track_quat("-Z", "Y")`), then turned by its roll about that axis (a
`camera_roll` factor; 0 otherwise); Blender's camera axes are x right, y up,
-z forward, so the OpenCV frame is Blender's with y and z negated. tests/test_passes.py checks these
matrices against what bpy reports.
"""
from __future__ import annotations

import json
import math
from typing import Sequence

import numpy as np

from render.plan import Frame
from render.scene import SceneSpec, direction
from render.state import FrameState

CAMERAS_FILE = "cameras.json"
CAMERAS_FORMAT = 1
CONVENTION = "opencv: x right, y down, z forward; pixel (row i, col j) centre at (j + 0.5, i + 0.5)"
NO_DEPTH = 0.0
"""Depth and normal value where no surface is seen (background)."""


def intrinsics(size: int, fov: float) -> np.ndarray:
    """K (3x3, pixels) of a square `size` x `size` image with a full field of view `fov` degrees.
    Blender's `sensor_fit: AUTO` applies the angle to the larger side; the image is square."""
    f = (size / 2.0) / math.tan(math.radians(fov) / 2.0)
    c = size / 2.0
    return np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])


def rotation(azimuth: float, elevation: float, roll: float = 0.0) -> np.ndarray:
    """World-to-camera rotation R (rows: the camera's x, y, z axes in world coordinates)."""
    forward = -direction(azimuth, elevation)
    az = math.radians(azimuth)
    # Blender's track-to keeps the camera's x axis horizontal: perpendicular to world +Z and to the
    # viewing direction, pointing right in the image; it is (cos az, sin az, 0) for every elevation.
    right = np.array([math.cos(az), math.sin(az), 0.0])
    down = np.cross(forward, right)
    if roll:  # Blender turns the camera by +roll about its local z (backward): right toward up (-down)
        c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        right, down = c * right - s * down, s * right + c * down
    return np.stack([right, down, forward])


def world_to_camera(azimuth: float, elevation: float, distance: float, roll: float = 0.0) -> np.ndarray:
    """4x4 world-to-camera matrix (OpenCV frame) of a frame's pose."""
    m = np.eye(4)
    m[:3, :3] = rotation(azimuth, elevation, roll)
    # t = -R @ eye, with eye = -distance * forward: exactly (0, 0, distance), the origin straight
    # ahead (written out, so no rounding noise of the product lands in cameras.json).
    m[:3, 3] = (0.0, 0.0, distance)
    return m


def camera_to_blender() -> np.ndarray:
    """Maps OpenCV camera axes to Blender camera axes (y and z negated); its own inverse."""
    return np.diag([1.0, -1.0, -1.0, 1.0])


def normals_to_camera(world: np.ndarray, state: FrameState) -> np.ndarray:
    """World-space normals [..., 3] -> unit normals in the camera frame; zero vectors stay zero.
    Cycles averages a pixel's samples, so normals at silhouettes come out shorter than 1."""
    cam = world.astype(np.float64) @ rotation(state.camera_azimuth, state.camera_elevation, state.camera_roll).T
    norm = np.linalg.norm(cam, axis=-1, keepdims=True)
    return np.divide(cam, norm, out=np.zeros_like(cam), where=norm > 0).astype(np.float32)


def backproject(depth: np.ndarray, k: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    """World points [H, W, 3] of every pixel centre at its depth (docs/passes.md, "Back-projecting")."""
    h, w = depth.shape
    j, i = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([j, i, np.ones_like(j)], axis=-1) @ np.linalg.inv(k).T  # z = 1 on every ray
    cam = rays * depth[..., None]
    c2w = np.linalg.inv(w2c)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def camera_matrix(state: FrameState) -> np.ndarray:
    """The world-to-camera matrix of a frame's scene setting."""
    return world_to_camera(state.camera_azimuth, state.camera_elevation, state.camera_distance, state.camera_roll)


def cameras_record(frames: Sequence[Frame], spec: SceneSpec) -> dict:
    """The content of a render set's cameras.json (every frame, in plan order)."""
    camera, size = spec.camera, spec.render.size
    k = intrinsics(size, camera.fov)
    states = [spec.state(f.values) for f in frames]
    return {
        "format": CAMERAS_FORMAT,
        "convention": CONVENTION,
        "image_size": [size, size],
        "camera": {"distance": camera.distance, "fov": camera.fov},
        "passes": list(spec.render.pass_names),
        "frames": [{"file": f.file, "azimuth": s.camera_azimuth, "elevation": s.camera_elevation,
                    "K": _rows(k), "world_to_camera": _rows(camera_matrix(s))}
                   for f, s in zip(frames, states)],
    }


def cameras_json(frames: Sequence[Frame], spec: SceneSpec) -> bytes:
    # Python's float repr is exact and platform-independent: the same frames give the same bytes.
    return (json.dumps(cameras_record(frames, spec), indent=1) + "\n").encode()


def _rows(m: np.ndarray) -> list[list[float]]:
    return [[float(v) + 0.0 for v in row] for row in m]  # + 0.0: no -0.0 in the file


def pass_arrays(depth: np.ndarray, normal_world: np.ndarray, index: np.ndarray,
                state: FrameState) -> dict[str, np.ndarray]:
    """Cycles' raw passes of one frame (rows top-down) -> the stored passes, background zeroed:
    depth float32 [H, W] (Cycles' Z pass is already the distance along the view axis, measured
    against a sphere: docs/passes.md), normal float32 [H, W, 3] in the camera frame, mask uint8 [H, W]
    (1 on the object). The mask comes from the Object Index pass, which is never blended."""
    mask = index > 0.5
    normal = normals_to_camera(normal_world, state)
    normal[~mask] = NO_DEPTH
    return {"depth": np.where(mask, depth, NO_DEPTH).astype(np.float32),
            "normal": np.ascontiguousarray(normal, dtype=np.float32),
            "mask": mask.astype(np.uint8)}
