"""Benchmark: the trained models on meshes made elsewhere (a folder of OBJ / PLY / glTF files).

    .venv/bin/python bench/elsewhere.py --dataset faces --folder examples/heads [--up Y --forward Z] [--framing head]
    .venv/bin/python bench/elsewhere.py --dataset chairs --folder ~/shapenet-chairs --work /tmp/elsewhere

Declares a folder dataset `<dataset>-elsewhere` with every setting of `<dataset>` in params.yaml (camera,
light, ranges, sweep length; two meshes for the training split, which intrinsic sweeps need, the rest
held out), renders every set
with Blender, packs the shards, and scores `models/<dataset>-{dcign,vae}.pt` on them through
`evaluate.run.evaluate_checkpoint` (the same code as `python cli.py evaluate --checkpoint`). Prints the
per-mesh |Spearman| of each tied latent as a Markdown table for BENCHMARKS.md. Everything it writes
goes under --work (default tmp/elsewhere): data/, metrics/ and plots/ of that folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import MeshCounts, MeshSource, load_params  # noqa: E402

GROUPS = 12  # training sweeps per type on the one training mesh: enough to fit the mapping curves
TEST_GROUPS = 24


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="Dataset whose settings and models to use (faces, chairs).")
    ap.add_argument("--folder", required=True, type=Path, help="Folder of mesh files made elsewhere.")
    ap.add_argument("--up", default="Y", help="Up axis of the files (default Y, as glTF).")
    ap.add_argument("--forward", default="Z", help="Axis the objects face (default Z, as glTF).")
    ap.add_argument("--framing", choices=["object", "head"], default="object",
                    help="source.framing: `head` frames busts on the head, as generated heads are framed.")
    ap.add_argument("--models", nargs="+", default=["dcign", "vae"])
    ap.add_argument("--checkpoint", type=Path, action="append", default=[],
                    help="Score these checkpoints instead of models/<dataset>-<model>.pt (e.g. a bench/tune.py run).")
    ap.add_argument("--work", type=Path, default=ROOT / "tmp" / "elsewhere")
    args = ap.parse_args()

    from evaluate.run import evaluate_checkpoint
    from pipeline.shards import pack_dataset
    from render.runner import RenderJob, render_set

    params = load_params(ROOT / "params.yaml")
    base = params.dataset(args.dataset)
    files = sorted(p for p in args.folder.resolve().iterdir() if p.suffix.lower() in (".obj", ".ply", ".gltf", ".glb"))
    name = f"{args.dataset}-elsewhere"
    ds = dataclasses.replace(
        base, name=name, meshes=MeshCounts(train=2, test=max(1, len(files) - 2)),
        source=MeshSource(kind="folder", path=str(args.folder.resolve()), up_axis=args.up, forward_axis=args.forward,
                          framing=args.framing),
        groups={s: GROUPS for s in base.groups}, test_groups=TEST_GROUPS)
    params = dataclasses.replace(params, datasets={**params.datasets, name: ds})
    args.work.mkdir(parents=True, exist_ok=True)
    # A tuning run's checkpoint is tmp/tune/<dataset>/<run>/model.pt: named after its run folder, so the
    # outputs (<dataset>-elsewhere-from-<name>) of two runs do not overwrite each other.
    checkpoints = ({c.parent.name if c.stem == "model" else c.stem: c.resolve() for c in args.checkpoint}
                   if args.checkpoint else {f"{args.dataset}-{m}": ROOT / "models" / f"{args.dataset}-{m}.pt"
                                            for m in args.models})
    missing = [str(c) for c in checkpoints.values() if not c.is_file()]
    if missing:
        sys.exit(f"error: checkpoint {missing[0]} not found; run `dvc repro` first or pass --checkpoint FILE")
    os.chdir(args.work)  # data/, metrics/ and plots/ of the run live here

    start = time.perf_counter()
    for render_set_name in ds.render_sets:
        render_set(params, RenderJob(dataset=name, factor=render_set_name, out=ds.render_dir(render_set_name)))
    pack_dataset(ds, params.shard, progress=True)
    built = time.perf_counter() - start
    for model, checkpoint in checkpoints.items():
        if checkpoint.stem != model:  # evaluate_checkpoint names its outputs after the file
            named = args.work / "checkpoints" / f"{model.replace(' ', '_').replace(',', '')}.pt"
            named.parent.mkdir(exist_ok=True)
            shutil.copyfile(checkpoint, named)
            checkpoint = named
        metrics, paths = evaluate_checkpoint(params, name, checkpoint, args.work)
        print(f"\n{model} on {len(files)} meshes from {args.folder} ({paths.metrics}):\n")
        print(markdown(metrics))
    print(f"\nrenders + shards {built:.0f} s, total {time.perf_counter() - start:.0f} s")


def markdown(metrics: dict) -> str:
    tied, names = metrics["tied"], metrics["mesh_names"]
    factors = list(tied)
    meshes = sorted({m for f in factors for m in tied[f]["per_mesh"]}, key=int)
    rows = ["| mesh | " + " | ".join(factors) + " |", "|---|" + "---|" * len(factors)]
    for m in meshes:
        rows.append(f"| {names.get(m, m)} | " + " | ".join(_cell(tied[f]["per_mesh"].get(m)) for f in factors) + " |")
    rows.append("| **mean over meshes** | " + " | ".join(f"**{tied[f]['per_mesh_mean']:.3f}**" for f in factors) + " |")
    return "\n".join(rows)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
