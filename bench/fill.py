"""Render cost and grain of the fill-light settings, side by side in one run.

    .venv/bin/python bench/fill.py [--meshes 8] [--frames 12] [--repeats 2]

Renders the same frames (generated faces, the default profile's camera, light, size and samples) under
each setting, alternating settings between repeats so machine load hits them alike:
- `world, 4 bounces`: the previous default (a white sky the object shadows itself from, bounce light);
- `world, 0 bounces`: the sky without bounce light;
- `flat, 0 bounces`:  the current default (unshadowed ambient term, direct light only).
Grain is the mean absolute difference (grey levels, object pixels away from the silhouette) between a
frame at the profile's samples and the same frame at 128 spp of the same setting: what the sampling
adds to the picture, which no model can learn and which lowers every SSIM against the ground truth.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: this file's name would shadow the `render` package

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import multiprocessing  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from config import load_params  # noqa: E402

SETTINGS = {"world, 4 bounces": ("world", 4), "world, 0 bounces": ("world", 0), "flat, 0 bounces": ("flat", 0)}
REFERENCE_SPP = 128


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshes", type=int, default=8)
    ap.add_argument("--frames", type=int, default=12, help="frames per mesh (poses and lights drawn at random)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import cv2

    from assets.catalog import build_meshes
    from render.plan import Frame
    from render.worker import render_sweep_bytes
    from render.scene import SceneSpec

    params = load_params(ROOT / "params.yaml")
    ds = params.dataset("faces")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = build_meshes(ds, params.seed, Path(tmp) / "faces", count=args.meshes)
        meshes = {i: str(catalog.path(i)) for i in range(len(catalog))}
        tasks = [[Frame("test", m, k, m, tuple(float(rng.uniform(*ds.ranges[f])) for f in ds.factors))
                  for k in range(args.frames)] for m in meshes]

        def spec(fill: str, bounces: int, samples: int) -> SceneSpec:
            render = dataclasses.replace(params.render, max_bounces=bounces, samples=samples)
            return SceneSpec(render, ds.camera, dataclasses.replace(ds.light, fill=fill), params.seed, ds.kinds)

        times = {name: [] for name in SETTINGS}
        images = {}
        workers = params.render.worker_count()
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for name, (fill, bounces) in SETTINGS.items():  # warm the workers' scenes, untimed
                pool.starmap(render_sweep_bytes, [(spec(fill, bounces, params.render.samples), meshes, t[:1]) for t in tasks])
            for _ in range(args.repeats):
                for name, (fill, bounces) in SETTINGS.items():
                    start = time.perf_counter()
                    out = pool.starmap(render_sweep_bytes, [(spec(fill, bounces, params.render.samples), meshes, t)
                                                            for t in tasks])
                    times[name].append(time.perf_counter() - start)
                    images[name] = [png for sweep in out for png in sweep]
            reference = {name: [png for sweep in pool.starmap(
                render_sweep_bytes, [(spec(fill, bounces, REFERENCE_SPP), meshes, t[:2]) for t in tasks]) for png in sweep]
                for name, (fill, bounces) in SETTINGS.items()}

    decode = lambda png: cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED).astype(float)  # noqa: E731
    n = len(tasks) * args.frames
    print(f"{n} frames of {args.meshes} faces, {params.render.size} px, {params.render.samples} spp, {workers} processes; "
          f"grain against {REFERENCE_SPP} spp on {2 * len(tasks)} frames\n")
    print("| setting | img/s (best) | img/s (all runs) | grain (grey levels) |\n|---|---|---|---|")
    for name in SETTINGS:
        fast = [images[name][m * args.frames + k] for m in range(len(tasks)) for k in range(2)]
        grains = []
        for png, ref in zip(fast, reference[name]):
            a, b = decode(png), decode(ref)
            mask = cv2.erode((b > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            grains.append(np.abs(a - b)[mask].mean())
        print(f"| {name} | {n / min(times[name]):.1f} | {n * len(times[name]) / sum(times[name]):.1f} | "
              f"{np.mean(grains):.2f} |")


if __name__ == "__main__":
    main()
