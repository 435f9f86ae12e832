"""The per-process Blender side of rendering, shared by the local process pool and the Ray actors.

In: a `SceneSpec`, PLY paths and frames. Out: encoded PNG bytes and pass files, returned (Ray) or
written into a render folder (local pool). Each process imports bpy and builds its scene once
(`scene_for`), then renders whole sweeps. The driver side (planning, validation, resume, labels) is
`render.runner`, the Ray side `render.cluster`; both import this module, neither the other.
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import durable
from config import UserError
from render.plan import Frame
from render.scene import SceneSpec

PNG_COMPRESSION = 6
"""zlib level of the final PNGs (OpenCV); fixed so bytes are reproducible."""


class RenderError(UserError):
    """Bad input to a render: output folder not ours, missing mesh folder."""


@dataclass(frozen=True)
class SweepTask:
    """What a worker needs to render (part of) one sweep: picklable, self-contained."""

    spec: SceneSpec
    meshes: dict[int, str]
    """Mesh id -> PLY path, for the meshes this task's frames use."""
    frames: tuple[Frame, ...]
    out: str


# ------------------------------------------------------------------------------------ workers

_scene = None
"""This process's Blender scene, built on first use (never in the driver process)."""


def scene_for(spec: SceneSpec):
    """This process's Blender scene for `spec` (bpy imported and the scene built on first use)."""
    global _scene
    if _scene is None or _scene.spec != spec:
        from render.scene import Scene

        _scene = Scene(spec)
    return _scene


_progress = None
"""Queue to the driver's progress bar (pool workers only)."""


def init_worker(progress, tmp: str) -> None:
    global _progress, _worker_tmp
    _progress, _worker_tmp = progress, tmp
    os.environ["TMPDIR"] = tmp  # `render.scene.import_bpy` puts Blender's session folder under it


def build_scene(spec: SceneSpec) -> None:
    scene_for(spec)


def render_task(task: SweepTask) -> int:
    out = Path(task.out)

    def write(frame: Frame, png: bytes) -> None:
        durable.write_bytes(out / frame.file, png, sync=False)
        if _progress is not None:
            _progress.put(1)

    # Passes are written before their PNG (`write_frame_files`).
    render_frames(scene_for(task.spec), task.meshes, task.frames, write,
                   passes_sink=lambda _frame, passes: write_frame_files(out, passes))
    return len(task.frames)


def render_sweep_bytes(spec: SceneSpec, meshes: dict[int, str], frames: Sequence[Frame]) -> list[bytes]:
    """Render frames in this process; return their PNG bytes in order (the executor seam)."""
    pngs: list[bytes] = []
    render_frames(scene_for(spec), meshes, frames, lambda _frame, png: pngs.append(png))
    return pngs


def render_sweep_files(spec: SceneSpec, meshes: dict[int, str], frames: Sequence[Frame]) -> list[dict[str, bytes]]:
    """Render frames in this process; return each frame's files (relative path -> bytes: its passes,
    then its PNG, the order to write them in) in frame order: the executor seam with passes."""
    files: list[dict[str, bytes]] = []
    extra: dict[str, bytes] = {}
    render_frames(scene_for(spec), meshes, frames, lambda frame, png: files.append({**extra, frame.file: png}),
                   passes_sink=lambda _frame, passes: (extra.clear(), extra.update(passes)))
    return files


def write_frame_files(out: Path, files: dict[str, bytes]) -> None:
    """Write one frame's files in order (passes first, PNG last: resume takes a frame whose PNG is missing
    as not rendered, and checks the passes of one whose PNG is present)."""
    for name, data in files.items():
        durable.write_bytes(out / name, data, sync=False)


def render_frames(scene, meshes: dict[int, str], frames: Sequence[Frame],
                   sink: Callable[[Frame, bytes], None],
                   passes_sink: Callable[[Frame, dict[str, bytes]], None] | None = None) -> None:
    """Render `frames`; `sink` gets each PNG, `passes_sink` (called first) its pass files when passes are on."""
    import cv2

    from assets.mesh import read_ply

    # A private folder (mode 0700, unpredictable name): a predictable file name in a shared folder
    # could be planted as a symlink by another user, and Blender would write through it.
    folder = Path(tempfile.mkdtemp(prefix="dcign-render-", dir=scratch_dir()))
    scratch = folder / "frame.png"
    try:
        for frame in frames:
            if scene.mesh_key != meshes[frame.mesh]:  # read each mesh once per run of its frames
                scene.set_mesh(read_ply(meshes[frame.mesh]), key=meshes[frame.mesh])
            scene.set_state(scene.spec.state(frame.values))
            exr = scene.render(scratch)
            if exr is not None:
                if passes_sink is not None:  # callers that only want PNGs (previews) skip the decoding
                    passes_sink(frame, _pass_files(frame, exr, scene.spec))
                exr.unlink()
            sink(frame, encode_png(cv2.imread(str(scratch), cv2.IMREAD_UNCHANGED), f"frame {frame.file}"))
    finally:
        for leftover in folder.iterdir():  # the PNG, and the passes' EXR of a frame that failed
            leftover.unlink()
        folder.rmdir()


def _pass_files(frame: Frame, exr: Path, spec: SceneSpec) -> dict[str, bytes]:
    """Encoded pass files of one frame (relative path -> bytes) from Cycles' multilayer EXR."""
    import OpenEXR

    from render.cameras import pass_arrays

    channels = {}
    with OpenEXR.File(str(exr)) as f:  # one part per layer; rows top-down, as in the PNG
        for part in f.parts:
            channels.update({name: np.array(ch.pixels, dtype=np.float32) for name, ch in part.channels.items()})
    normal = np.stack([channels[f"Normal.{a}"] for a in "XYZ"], axis=-1)
    arrays = pass_arrays(channels["Depth.V"], normal, channels["Object Index.V"], spec.state(frame.values))
    files = {}
    for name in spec.render.pass_names:
        if name == "mask":
            files[frame.pass_file(name)] = encode_png(arrays["mask"] * np.uint8(255), f"the mask of {frame.file}")
        else:
            files[frame.pass_file(name)] = npy_bytes(arrays[name])
    return files


def encode_png(image: np.ndarray, what: str) -> bytes:
    """PNG bytes at the fixed compression level (same pixels, same bytes)."""
    import cv2

    ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:  # cannot happen for an 8-bit image; not user input
        raise RuntimeError(f"OpenCV could not encode {what}")
    return png.tobytes()


def npy_bytes(array: np.ndarray) -> bytes:
    """`.npy` bytes of an array: a fixed header for a given shape and dtype, so same array, same bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


_worker_tmp: str | None = None
"""A pool worker's share of the pool's temporary folder (removed with the pool, even after a kill)."""


def scratch_dir() -> str:
    # Blender can only hand pixels over through a file: keep that file in RAM when possible.
    if _worker_tmp is not None:
        return _worker_tmp
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()
