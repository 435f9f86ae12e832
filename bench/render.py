"""Render throughput against the engine's floor, measured side by side in one run.

    .venv/bin/python bench/render.py [--groups 12] [--steps 16] [--repeats 2] [--workers 0]

Both sides render the same frames (face light sweeps, 64x64, 16 spp, one process per core with one
Cycles thread each, the same spawn pool and sweep-per-task split) from a cold start:
- floor: a bare bpy loop per process: build the scene, set mesh and pose, render, write nothing;
- ours:  `render.runner.render_set` end to end: plan, mesh validation, .plan.json, PNG to scratch,
         OpenCV re-encode, atomic write, labels.csv.
Runs alternate (floor, ours, floor, ours, ...) so machine load hits both alike; the ratio uses the
best run of each, and over all runs. A last measurement interleaves the two per frame inside the same
worker processes (bare render, then render + encode + write of the same frame), which cancels the
load drift of a shared machine and isolates our per-frame overhead. Needs the face generator (assets/faces.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: this file's name would shadow the `render` package

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from config import MeshCounts, load_params  # noqa: E402


def _floor_task(task) -> int:
    from assets.mesh import read_ply
    from render.worker import scene_for

    scene = scene_for(task.spec)
    for frame in task.frames:
        path = task.meshes[frame.mesh]
        if scene.mesh_key != path:
            scene.set_mesh(read_ply(path), key=path)
        scene.set_state(scene.spec.state(frame.values))
        scene.render_only()
    return len(task.frames)


def _interleaved_task(task) -> tuple[float, float]:
    """Per frame, time a bare render and our render+encode+write of the same frame, alternating
    which goes first (persistent data makes the second render of a pose a little cheaper)."""
    from assets.mesh import read_ply
    import durable
    from render.worker import render_frames, scene_for

    scene = scene_for(task.spec)
    out = Path(task.out)
    bare = ours = 0.0
    for k, frame in enumerate(task.frames):
        path = task.meshes[frame.mesh]
        if scene.mesh_key != path:
            scene.set_mesh(read_ply(path), key=path)
        for first in ((k % 2 == 0), (k % 2 == 1)):
            start = time.perf_counter()
            if first:
                scene.set_state(scene.spec.state(frame.values))
                scene.render_only()
                bare += time.perf_counter() - start
            else:
                _render_frames(scene, task.meshes, [frame],
                               lambda f, png: durable.write_bytes(out / Path(f.file).name, png, sync=False))
                ours += time.perf_counter() - start
    return bare, ours


def floor(tasks, workers: int) -> float:
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        sum(pool.imap_unordered(_floor_task, tasks, chunksize=1))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=12)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    args = ap.parse_args()

    from assets.catalog import ensure_meshes
    from render.plan import PlanRequest, plan
    from render.runner import RenderJob, render_set
    from render.worker import SweepTask
    from render.scene import SceneSpec

    params = load_params(ROOT / "params.yaml")
    ds = dataclasses.replace(params.dataset("faces"), meshes=MeshCounts(train=8, test=2), test_groups=0)
    settings = dataclasses.replace(params.render, size=64, samples=16, threads=1, workers=args.workers)
    params = dataclasses.replace(params, render=settings, datasets={"faces": ds})
    workers = settings.worker_count()

    work = Path(tempfile.mkdtemp(prefix="bench-render-"))
    os.chdir(work)
    try:
        catalog = ensure_meshes(ds, params.seed)
        sweeps = plan(PlanRequest(ds, "light", params.seed, catalog.ids("train"), catalog.ids("test"),
                                  groups=args.groups, steps=args.steps))
        spec = SceneSpec(settings, ds.camera, ds.light, params.seed, ds.kinds)
        tasks = [SweepTask(spec, {f.mesh: str(catalog.path(f.mesh).resolve()) for f in s.frames}, s.frames, "")
                 for s in sweeps]
        frames = sum(len(s.frames) for s in sweeps)
        print(f"{frames} frames ({args.groups} light sweeps x {args.steps}), 64x64, 16 spp, "
              f"{workers} processes x 1 thread, os.cpu_count()={os.cpu_count()}")
        floors, ours = [], []
        for r in range(args.repeats):
            floors.append(floor(tasks, workers))
            out = work / f"out{r}"
            start = time.perf_counter()
            render_set(params, RenderJob("faces", "light", out, groups=args.groups, steps=args.steps))
            ours.append(time.perf_counter() - start)
            print(f"run {r}: floor {frames / floors[-1]:6.1f} img/s   ours {frames / ours[-1]:6.1f} img/s",
                  flush=True)
        best_floor, best_ours = frames / min(floors), frames / min(ours)
        print(f"floor (bare bpy loop, nothing written): {best_floor:.1f} img/s")
        print(f"render_set (PNGs + labels written):     {best_ours:.1f} img/s")
        print(f"ratio ours/floor: {best_ours / best_floor:.3f} best of each (target >= 0.9); "
              f"{sum(floors) / sum(ours):.3f} over all runs")
        scratch = work / "interleaved"
        scratch.mkdir()
        tasks = [dataclasses.replace(t, out=str(scratch)) for t in tasks]
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            times = pool.map(_interleaved_task, tasks, chunksize=1)
        bare, ours_s = sum(t[0] for t in times), sum(t[1] for t in times)
        print(f"interleaved per frame, same processes: bare {1000 * bare / frames:.1f} ms, "
              f"ours {1000 * ours_s / frames:.1f} ms, ratio {bare / ours_s:.3f}")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
