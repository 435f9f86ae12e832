"""Scaling out, measured on this machine: Ray render nodes against the local pool, and torchrun ranks.

    .venv/bin/python bench/scale.py [--groups 12] [--steps 16] [--train-steps 40 200]

Render: the same face light sweeps (64x64, 16 spp, 1 Cycles thread per process) through
- the local process pool (one process per core),
- the Ray executor on a 1-node loopback cluster (all cores on the head),
- the Ray executor on a 2-node loopback cluster (the cores split between two node processes),
each from a cold start (Blender start-up in every worker included), outputs checked byte-identical.
On one machine the nodes share its cores, so the 2-node figure measures Ray's overhead, not a
speed-up; the projection for N real nodes is N x the per-node rate of the 1-node cluster, valid while
the driver keeps up (it only writes the PNG bytes it receives, timed here per sweep).

Train: `cli.py train --nproc N` on data/shards/faces (run `dvc repro shard@faces` first), DC-IGN
steps of the default profile, 1 process x all cores against N processes x 1 thread. Each is run
for two step counts and the rate is the difference, so start-up (torchrun, process group, shard
opening) cancels out.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: this file's name would shadow the `render` package

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from config import MeshCounts, load_params  # noqa: E402


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def bench_render(groups: int, steps: int) -> None:
    from assets.catalog import ensure_meshes
    from fixtures.ray_cluster import loopback_cluster
    from render.runner import RenderJob, render_set
    import durable

    params = load_params(ROOT / "params.yaml")
    ds = dataclasses.replace(params.dataset("faces"), meshes=MeshCounts(train=8, test=2), test_groups=0)
    cores = os.cpu_count() or 1
    local = dataclasses.replace(params.render, size=64, samples=16, threads=1, workers=0, executor="local")
    params = dataclasses.replace(params, render=local, datasets={"faces": ds})
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    os.chdir(work)
    try:
        ensure_meshes(ds, params.seed)
        job = dict(groups=groups, steps=steps)
        print(f"render: {groups} light sweeps x {steps} frames, 64x64, 16 spp, {cores} cores", flush=True)

        def run(name: str, settings) -> float:
            start = time.perf_counter()
            render_set(dataclasses.replace(params, render=settings), RenderJob("faces", "light", work / name, **job))
            wall = time.perf_counter() - start
            print(f"  {name:<22} {wall:6.1f} s   {groups / wall:5.2f} sweeps/s   {groups * steps / wall:5.1f} img/s",
                  flush=True)
            return wall

        walls = {"local pool": run("local pool", local)}
        for nodes in (1, 2):
            with loopback_cluster(nodes=nodes, cpus=cores // nodes) as address:
                ray = dataclasses.replace(local, executor="ray", address=address)
                walls[f"ray {nodes} node(s)"] = run(f"ray {nodes} node(s)", ray)
        reference = folder_bytes(work / "local pool")
        same = all(folder_bytes(work / name) == reference for name in walls)
        print(f"  outputs byte-identical to the local pool: {same}")
        for name, wall in walls.items():
            print(f"  {name:<22} {walls['local pool'] / wall:5.2f}x the local pool")
        pngs = list((work / "local pool").rglob("*.png"))
        data = [p.read_bytes() for p in pngs]
        (work / "driver-write").mkdir()
        start = time.perf_counter()
        for i, blob in enumerate(data):
            durable.write_bytes(work / "driver-write" / f"{i}.png", blob, sync=False)
        per_sweep = (time.perf_counter() - start) / len(data) * steps
        per_node = groups / walls["ray 1 node(s)"]
        print(f"  driver write: {1000 * per_sweep:.1f} ms per sweep -> one driver keeps up with "
              f"~{1 / per_sweep:.0f} sweeps/s")
        for n in (4, 16, 64):
            print(f"  projected {n:>2} nodes of {cores} cores: {n * per_node:6.1f} sweeps/s")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


def bench_train(step_counts: tuple[int, int], shards: Path) -> None:
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    try:
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        print(f"train: DC-IGN faces ({shards}), {raw['train']['sweeps_per_step']} sweeps/step, no warm start",
              flush=True)
        for nproc, threads in ((1, cores), (2, 1)):
            raw["train"].update(threads=threads, warm_start=0, checkpoint_every=10**6)
            (work / "params.yaml").write_text(yaml.safe_dump(raw))
            walls = []
            for steps in step_counts:
                shutil.rmtree(work / "checkpoints", ignore_errors=True)
                start = time.perf_counter()
                subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--dataset", "faces", "--model", "dcign",
                                "--shards", str(shards), "--out", str(work / "m.pt"), "--no-live",
                                "--steps", str(steps), "--nproc", str(nproc)],
                               cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                walls.append(time.perf_counter() - start)
            rate = (step_counts[1] - step_counts[0]) / (walls[1] - walls[0])
            print(f"  {nproc} process(es) x {threads} thread(s): {rate:5.2f} steps/s "
                  f"({rate * 16 * raw['train']['sweeps_per_step']:.0f} img/s), start-up {walls[0] - step_counts[0] / rate:.1f} s",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=12)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--train-steps", type=int, nargs=2, default=(40, 200))
    ap.add_argument("--shards", type=Path, default=ROOT / "data/shards/faces")
    ap.add_argument("--skip", choices=["render", "train"], default=None)
    args = ap.parse_args()
    if args.skip != "render":
        bench_render(args.groups, args.steps)
    if args.skip != "train":
        bench_train(tuple(args.train_steps), args.shards.resolve())


if __name__ == "__main__":
    main()
