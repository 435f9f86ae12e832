"""Render one (dataset, set) into a folder: plan, validate, fan sweeps out to Blender workers, label.

Flow of `render_set`:
1. validate everything first (factor, dataset, overrides, mesh folder, every mesh the pending
   frames use, the output folder's ownership); nothing is written before this passes;
2. `.plan.json` in the output folder records a hash of the plan and of every pixel-affecting
   setting plus the list of files; a folder made by a different plan is cleared (its listed files
   only) and re-rendered; a non-empty folder without `.plan.json` is refused (it is not ours);
3. only missing PNGs are rendered (resume); when none are missing Blender is not started;
4. sweeps are the unit of work, rendered by the executor `render.executor` names: `local`, a
   spawn-context pool of `render.worker_count()` processes, or `ray`, one actor per worker process
   of a Ray cluster (`render.cluster`); either way each process imports bpy and builds the scene
   once and renders whole sweeps (one mesh stays loaded for the frames of a factor sweep, so
   persistent data keeps its BVH); every PNG is written to a temporary name in its target folder,
   then renamed (by the pool's workers, or by this driver from the bytes Ray workers send back);
5. `labels.csv` is written last, atomically: it exists only when the set is complete.

With `render.passes` on (docs/passes.md), the same render of each frame also writes its ground-truth
passes beside the PNG (`train/00000_000.depth.npy`, `.normal.npy`, `.mask.png`), before the PNG; a
frame counts as rendered only when its PNG and every enabled pass are present and complete, and
`cameras.json` (intrinsics and pose of every frame) is written just before `labels.csv`. With
passes off nothing of this exists and every output keeps the bytes it had before passes existed.

Pixels depend only on the frame and the settings (fixed Cycles seed, PNG re-encoded by OpenCV with
fixed options), so the output is byte-identical whatever the worker count.

Seam for executors elsewhere than this machine: `render_sweep_bytes(spec, meshes, frames)` renders
one sweep in the calling process and returns its encoded PNGs (the Ray actors call it); the local
pool uses the same `render_frames` loop with a sink that writes files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import logging
import multiprocessing
import os
import queue
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

import durable
from config import SPLITS, DatasetConfig, Params, RenderSettings, check_factor
from render.cameras import CAMERAS_FILE, cameras_json
from render.plan import LABEL_COLUMNS, Frame, PlanRequest, Sweep, frames_of, plan
from render.scene import SceneSpec
from render.worker import RenderError, SweepTask, build_scene, init_worker, render_task, scratch_dir

log = logging.getLogger(__name__)

PLAN_FILE = ".plan.json"
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class RenderJob:
    """One `render` invocation for one dataset; None = take the value from params.yaml."""

    dataset: str
    factor: str
    out: Path
    groups: int | None = None
    steps: int | None = None
    value_range: tuple[float, float] | None = None


# ------------------------------------------------------------------------------------ driver


def render_set(params: Params, job: RenderJob) -> None:
    """Render `job` into `job.out` (resuming), then write its `labels.csv`."""
    from assets.catalog import ensure_meshes, meshes_current, split_counts
    from assets.mesh import read_ply

    ds = params.dataset(job.dataset)
    check_factor(job.factor, ds.render_sets)
    passes = params.render.pass_names
    if passes:
        check_passes_installed()
    if ds.source.kind == "folder" and not Path(ds.source.path).is_dir():
        raise RenderError(f"datasets.{ds.name}.source.path: mesh folder '{ds.source.path}' does not exist; "
                          "fix the path or put the mesh files there")
    out = Path(job.out)
    _check_out_folder(out)

    def request(train: Sequence[int], test: Sequence[int], turn_orders=None) -> PlanRequest:
        return PlanRequest(ds, job.factor, params.seed, train, test,
                           groups=job.groups, steps=job.steps, value_range=job.value_range, turn_orders=turn_orders)

    # Planning on the ids the catalog will have rejects bad overrides before any mesh is generated.
    n_train, n_test = split_counts(ds, None)
    draft = plan(request(range(n_train), range(n_train, n_train + n_test)))
    spec = scene_spec(params, ds)
    with contextlib.ExitStack() as stack:
        executor: list[Callable] = []

        def start(sweep_count: int) -> None:
            # The executor starts (GPU probe, cluster and its actors) before the first write.
            executor.append(stack.enter_context(open_executor(params.render, spec, sweep_count)))

        if not meshes_current(ds, params.seed):
            start(len(draft))  # meshes to generate: every sweep is pending; check the executor first
        catalog = ensure_meshes(ds, params.seed)
        sweeps = plan(request(catalog.ids("train"), catalog.ids("test"), catalog.turn_orders()))
        frames = frames_of(sweeps)
        key = plan_key(frames, spec, catalog.fingerprint)
        stale = _stale_files(out, key)
        broken = [] if stale is not None else _incomplete_pngs(out, frames)
        no_passes = [] if stale is not None else _incomplete_passes(out, frames, passes)
        pending = [s for s in (_missing(s, out, stale, broken + no_passes) for s in sweeps) if s.frames]
        for mesh_id in sorted({f.mesh for s in pending for f in s.frames}):
            read_ply(catalog.path(mesh_id))  # raises a one-line MeshError before anything is written
        if pending and not executor:
            start(len(pending))

        # ---- validated: from here on we write.
        if stale is not None:
            log.warning("%s: made by a different plan or settings; removing its %d files and re-rendering",
                        out, len(stale))
            for name in stale + [LABELS_FILE, CAMERAS_FILE]:
                (out / name).unlink(missing_ok=True)
        if broken:
            log.warning("%s: %d incomplete PNGs (e.g. %s, truncated); rendering them again", out, len(broken), broken[0])
        if no_passes:
            log.warning("%s: %d frames with a pass file missing or truncated (e.g. %s); rendering them again",
                        out, len(no_passes), no_passes[0])
        for split in SPLITS:
            (out / split).mkdir(parents=True, exist_ok=True)
        _remove_temporaries(out)
        durable.write_bytes(out / PLAN_FILE, json.dumps(
            {"format": 1, "dataset": ds.name, "factor": job.factor, "key": key,
             "files": planned_files(frames, passes)}, indent=1).encode() + b"\n")
        if pending:
            (out / LABELS_FILE).unlink(missing_ok=True)  # incomplete set: no labels
            (out / CAMERAS_FILE).unlink(missing_ok=True)
            meshes = {m: str(catalog.path(m).resolve()) for m in {f.mesh for s in pending for f in s.frames}}
            tasks = [SweepTask(spec, {f.mesh: meshes[f.mesh] for f in s.frames}, s.frames, str(out.resolve()))
                     for s in pending]
            executor[0](tasks, f"{ds.name}/{job.factor}")
        else:
            log.warning("%s/%s: all %d images already rendered in %s; nothing to do",
                        ds.name, job.factor, len(frames), out)
    if passes and not (out / CAMERAS_FILE).is_file():
        durable.write_bytes(out / CAMERAS_FILE, cameras_json(frames, spec))
    if not (out / LABELS_FILE).is_file():
        durable.write_bytes(out / LABELS_FILE, labels_csv(frames, ds.factor_names).encode())  # last: the set is complete


def scene_spec(params: Params, ds: DatasetConfig) -> SceneSpec:
    """What fixes the pixels of `ds`'s frames besides their meshes and factor values."""
    return SceneSpec(params.render, ds.camera, ds.light, params.seed, ds.kinds)


@contextlib.contextmanager
def open_executor(settings: RenderSettings, spec: SceneSpec, sweeps: int):
    """Start the executor `settings.executor` names for `sweeps` sweeps and check it can render (a
    missing GPU, an unreachable cluster fail here); yields `execute(tasks, desc)`."""
    if settings.executor == "ray":
        from render.cluster import ray_executor

        with ray_executor(settings, spec, sweeps) as pool:
            yield pool.run
        return
    if settings.device == "gpu":
        probe_device(spec)
    workers = settings.worker_count()
    yield lambda tasks, desc: run_tasks(tasks, workers, desc)


def run_tasks(tasks: Sequence[SweepTask], workers: int, desc: str) -> None:
    """Render `tasks` on a spawn pool with a per-image progress bar (images/s, ETA)."""
    from tqdm import tqdm

    workers = max(1, min(workers, len(tasks)))
    total = sum(len(t.frames) for t in tasks)
    progress = multiprocessing.get_context("spawn").Queue()
    with tqdm(total=total, desc=desc, unit="img", smoothing=0.1) as bar, _pool(workers, progress) as pool:
        result = pool.map_async(render_task, tasks, chunksize=1)
        while not result.ready():  # a failed task makes it ready at once; get() re-raises its error
            try:
                bar.update(progress.get(timeout=0.2))
            except queue.Empty:
                pass
        result.get()
        bar.update(total - bar.n)  # frames whose report was still in the queue


def probe_device(spec: SceneSpec) -> None:
    """Build the scene once in a throw-away worker: a missing GPU fails here, before any write."""
    with _pool(1) as pool:
        pool.apply(build_scene, (spec,))


@contextlib.contextmanager
def _pool(workers: int, progress=None):
    """A spawn pool whose workers keep Blender's session temp folders inside one folder of ours.

    Pool workers are terminated, so no exit handler of theirs runs: each would leave its Blender
    session folder (`render.scene.import_bpy`) behind; removing our folder afterwards cleans up.
    """
    with tempfile.TemporaryDirectory(prefix="dcign-blender-", dir=scratch_dir()) as tmp, \
            multiprocessing.get_context("spawn").Pool(workers, initializer=init_worker,
                                                      initargs=(progress, tmp)) as pool:
        yield pool


def plan_key(frames: Sequence[Frame], spec: SceneSpec, meshes: str) -> str:
    """Hash of everything that decides the folder's content (not worker or thread counts)."""
    blob = json.dumps({"frames": [f.key() for f in frames], "pixels": spec.pixel_key(),
                       "meshes": meshes}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def labels_csv(frames: Iterable[Frame], factors: Sequence[str]) -> str:
    """A set's labels.csv: LABEL_COLUMNS, then one column per factor (`factors`, the frames' value order)."""
    rows = [",".join(LABEL_COLUMNS + tuple(factors))]
    # repr() of a float is its shortest exact form: labels survive a text round trip.
    rows += [",".join([f.file, f.split, str(f.group), str(f.index), str(f.mesh), *map(repr, f.values)])
             for f in frames]
    return "\n".join(rows) + "\n"


def _check_out_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RenderError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / PLAN_FILE).is_file():
        raise RenderError(f"--out {out} is not empty and has no {PLAN_FILE}, so it was not made by `render`; "
                          "choose another folder or empty it")


def _stale_files(out: Path, key: str) -> list[str] | None:
    """Files of a previous, different plan in `out` (None when `out` is new or made by this plan)."""
    if not (out / PLAN_FILE).is_file():
        return None
    try:
        previous = json.loads((out / PLAN_FILE).read_text())
        if previous.get("key") == key:
            return None
        listed = [str(f) for f in previous["files"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # Unreadable record (it is written atomically, so a hand edit): our PNGs are all it can list.
        # (A mask PNG ends in .png too; the other passes are .npy files.)
        listed = [str(p.relative_to(out)) for split in SPLITS for pattern in ("*.png", "*.npy")
                  for p in (out / split).glob(pattern)] + [CAMERAS_FILE]
    return [f for f in listed if not Path(f).is_absolute() and ".." not in Path(f).parts]


def _missing(sweep: Sweep, out: Path, stale: list[str] | None, broken: Sequence[str]) -> Sweep:
    if stale is not None:  # everything in the folder is going away
        return sweep
    redo = set(broken)
    return dataclasses.replace(sweep, frames=tuple(f for f in sweep.frames
                                                   if f.file in redo or not (out / f.file).is_file()))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
"""Every complete PNG starts with the signature and ends with the empty IEND chunk (and its CRC)."""


def _incomplete_pngs(out: Path, frames: Sequence[Frame]) -> list[str]:
    """Planned PNGs present in `out` but cut short (a copy or a disk that failed): resume must not trust
    that a file exists. Reads 8 + 12 bytes per file, so checking a finished set costs little."""
    return [f.file for f in frames if (out / f.file).is_file() and not _complete(out / f.file)]


def planned_files(frames: Sequence[Frame], passes: Sequence[str]) -> list[str]:
    """Every file of a set besides labels.csv, as `.plan.json` lists them (without passes: the PNGs only,
    as before passes existed, so such a set's `.plan.json` keeps its bytes)."""
    if not passes:
        return [f.file for f in frames]
    return [name for f in frames for name in (f.file, *(f.pass_file(p) for p in passes))] + [CAMERAS_FILE]


def check_passes_installed() -> None:
    """`render.passes` reads Cycles' passes from an EXR file: the optional OpenEXR package must be there."""
    if importlib.util.find_spec("OpenEXR") is None:
        raise RenderError("render.passes is set but the OpenEXR package is missing; "
                          "install it with `pip install -r requirements-passes.txt -c constraints.txt`")


def _incomplete_passes(out: Path, frames: Sequence[Frame], passes: Sequence[str]) -> list[str]:
    """Frames whose PNG is present but one of whose passes is missing or cut short: such a frame is
    rendered again whole (its passes come from the same render as its PNG). A frame without its PNG
    is pending anyway."""
    return [f.file for f in frames
            if passes and (out / f.file).is_file() and not all(_complete(out / f.pass_file(p)) for p in passes)]


def _complete(path: Path) -> bool:
    """A frame's file is whole: a PNG (the image, a mask) starts with the signature and ends with IEND;
    a .npy holds exactly what its header announces."""
    try:
        with open(path, "rb") as fh:
            if path.suffix == ".png":
                head = fh.read(len(PNG_SIGNATURE))
                fh.seek(-len(PNG_END), os.SEEK_END)
                return head == PNG_SIGNATURE and fh.read() == PNG_END
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(fh))
            if read_header is None:
                return False
            shape, fortran, dtype = read_header(fh)
            data = fh.tell()
            return not fortran and os.fstat(fh.fileno()).st_size == data + int(np.prod(shape)) * dtype.itemsize
    except (OSError, ValueError):  # missing, too short to seek back, or a header that does not parse
        return False


def _remove_temporaries(out: Path) -> None:
    # Left by a killed worker; a PNG itself is never half-written (temporary name, then rename).
    for split in SPLITS:
        for tmp in (out / split).glob(durable.TEMPORARY):
            tmp.unlink(missing_ok=True)


