"""What ground-truth passes (`render.passes: [depth, normal, mask]`) cost, measured side by side in one run.

    .venv/bin/python bench/passes.py [--groups 8] [--steps 16] [--rounds 3] [--workers 0] [--size 64] [--samples 16]

Both sides render the same frames (face light sweeps of the default profile's settings, one process
per core with one Cycles thread each) in ONE spawn pool, through the production loop
`render.worker.render_frames`: render, OpenCV re-encode of the PNG, atomic writes; with passes also
the compositor's EXR, reading it back (OpenEXR), rotating normals, encoding the pass files and writing
them. Rounds alternate (off, on, off, on, ...) so machine load hits both alike. Each task times its
own frames after the scene is built (a worker rebuilds its Blender scene when the side changes: that
build is excluded from the per-frame figures and included in the wall-clock ones). Reports img/s per
side (best round, wall clock), per-frame milliseconds inside the workers (all rounds), and the ratio.
Needs the face generator (assets/faces.py) and OpenEXR (requirements-passes.txt).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: a file here must not shadow a package

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from config import MeshCounts, load_params  # noqa: E402


def _timed_task(task) -> tuple[int, float]:
    """Render one sweep the production way into a scratch folder; (frames, seconds after scene build)."""
    from render.worker import render_frames, scene_for, write_atomic, write_frame_files

    scene = scene_for(task.spec)  # built (or rebuilt, when the side changed) outside the timing
    out = Path(task.out)
    start = time.perf_counter()
    _render_frames(scene, task.meshes, task.frames, lambda f, png: write_atomic(out / Path(f.file).name, png),
                   passes_sink=lambda f, files: write_frame_files(out, {Path(n).name: b for n, b in files.items()}))
    return len(task.frames), time.perf_counter() - start


def run_round(pool, tasks) -> tuple[float, float, int]:
    """(wall seconds, summed in-worker seconds, frames) of one side's round."""
    start = time.perf_counter()
    results = pool.map(_timed_task, tasks, chunksize=1)
    return time.perf_counter() - start, sum(r[1] for r in results), sum(r[0] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating")
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args()

    from assets.catalog import ensure_meshes
    from render.plan import PlanRequest, plan
    from render.runner import check_passes_installed
    from render.worker import SweepTask
    from render.scene import SceneSpec

    check_passes_installed()
    params = load_params(ROOT / "params.yaml")
    ds = dataclasses.replace(params.dataset("faces"), meshes=MeshCounts(train=8, test=2), test_groups=0)
    off = dataclasses.replace(params.render, size=args.size, samples=args.samples, threads=1, workers=args.workers,
                              passes=())
    on = dataclasses.replace(off, passes=("depth", "normal", "mask"))
    workers = off.worker_count()

    work = Path(tempfile.mkdtemp(prefix="bench-passes-"))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        catalog = ensure_meshes(ds, params.seed)
        sweeps = plan(PlanRequest(ds, "light", params.seed, catalog.ids("train"), catalog.ids("test"),
                                  groups=args.groups, steps=args.steps))

        def tasks(settings, name):
            (work / name).mkdir(exist_ok=True)
            spec = SceneSpec(settings, ds.camera, ds.light, params.seed, ds.kinds)
            return [SweepTask(spec, {f.mesh: str(catalog.path(f.mesh).resolve()) for f in s.frames}, s.frames,
                              str(work / name)) for s in sweeps]

        sides = {"off": tasks(off, "off"), "on": tasks(on, "on")}
        frames = sum(len(s.frames) for s in sweeps)
        print(f"{frames} frames ({args.groups} light sweeps x {args.steps}), {args.size}x{args.size}, "
              f"{args.samples} spp, {workers} processes x 1 thread, os.cpu_count()={os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.2f}")
        wall = {k: [] for k in sides}
        inside = {k: 0.0 for k in sides}
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for r in range(args.rounds):
                for side in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    seconds, worker_s, n = run_round(pool, sides[side])
                    wall[side].append(seconds)
                    inside[side] += worker_s
                    print(f"round {r} {side:>3}: {n / seconds:6.1f} img/s wall", flush=True)
        best = {k: frames / min(v) for k, v in wall.items()}
        ms = {k: 1000 * inside[k] / (frames * args.rounds) for k in sides}
        print(f"passes off: {best['off']:.1f} img/s (best round), {ms['off']:.1f} ms/frame in a worker")
        print(f"passes on:  {best['on']:.1f} img/s (best round), {ms['on']:.1f} ms/frame in a worker")
        print(f"ratio on/off time per frame: {ms['on'] / ms['off']:.2f} (in-worker, all rounds); "
              f"throughput on/off {best['on'] / best['off']:.2f} (best rounds); "
              f"load average now {os.getloadavg()[0]:.2f}")
        sizes = {k: sum(p.stat().st_size for p in (work / k).iterdir()) / frames for k in sides}
        print(f"bytes per frame written: off {sizes['off']:.0f}, on {sizes['on']:.0f}")
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
