"""Render throughput against the engine's floor, measured side by side in one run.

    .venv/bin/python bench/render.py [--groups 12] [--steps 16] [--repeats 2] [--workers 0]

Both sides render the same frames (face light sweeps, 64x64, 16 spp, one process per core with one
Cycles thread each, the same spawn pool and sweep-per-task split) from a cold start:
- floor: a bare bpy loop per process: build the scene, set mesh and pose, render, write nothing;
- ours:  `render.runner.render_set` end to end: plan, mesh validation, .plan.json, PNG to scratch,
         OpenCV re-encode, atomic write, labels.csv.
Runs alternate (floor, ours, floor, ours, ...) so machine load hits both alike; the ratio uses the
best run of each. Needs the face generator (assets/faces.py).
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
    from render.runner import _scene_for

    scene = _scene_for(task.spec)
    for frame in task.frames:
        path = task.meshes[frame.mesh]
        if scene.mesh_key != path:
            scene.set_mesh(read_ply(path), key=path)
        scene.set_pose(*frame.angles)
        scene.render_only()
    return len(task.frames)


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
    from render.runner import RenderJob, SweepTask, render_set
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
        spec = SceneSpec(settings, ds.camera, ds.light, params.seed)
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
        print(f"ratio ours/floor: {best_ours / best_floor:.3f} (target >= 0.9)")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
