"""Tuning runs: train and evaluate variants of params.yaml on existing shards, one table of what matters.

    .venv/bin/python bench/tune.py --dataset faces --set train.vae_every=2 --set train.beta_intrinsic=0.5
    .venv/bin/python bench/tune.py --dataset chairs --model vae --name vae-baseline

Each run trains `--model` (default dcign) on `data/shards/<dataset>` with params.yaml plus the `--set`
overrides (dotted keys, YAML values, validated like params.yaml itself), evaluates it on the test
meshes with the evaluate stage's own code, and appends one row to `tmp/tune/<dataset>.md`:
minutes of training, tied |Spearman| per factor, reconstruction MSE, re-render SSIM within half the
range per factor (and its minimum, the number the sharp-re-render targets use) and how far it rises above
the source's reconstruction held unmoved (what the decoder renders). Models, metrics and
figures go to `tmp/tune/<dataset>/<name>/` (look at `plots/rerender.png`: a number that passes while
the picture is mush is a number to question). Nothing under models/, metrics/ or plots/ is touched.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from config import parse_params  # noqa: E402


def override(raw: dict, assignment: str) -> dict:
    key, _, value = assignment.partition("=")
    out = copy.deepcopy(raw)
    node = out
    *parents, leaf = key.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[leaf] = yaml.safe_load(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", default="dcign", choices=["dcign", "vae"])
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--name", default=None, help="Run name (default: the overrides).")
    args = ap.parse_args()

    from evaluate.run import EvalPaths, evaluate_model
    from model.train import TrainJob, train

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for assignment in args.sets:
        raw = override(raw, assignment)
    params = parse_params(raw)
    name = args.name or (",".join(args.sets) or "default") + ("" if args.model == "dcign" else f",{args.model}")
    out = ROOT / "tmp" / "tune" / args.dataset / name.replace("/", "_")
    shard_dir = ROOT / params.dataset(args.dataset).shard_dir()
    paths = EvalPaths(checkpoint=out / "model.pt", shard_dir=shard_dir, metrics=out / "metrics.json",
                      codes=out / "codes.npz", mapping=out / "mapping.json", plots=out / "plots",
                      live_dir=out / "dvclive")
    start = time.perf_counter()
    train(params, TrainJob(dataset=args.dataset, kind=args.model, shard_dir=shard_dir, out=paths.checkpoint,
                           resume=out / "resume.pt", live_dir=paths.live_dir))
    minutes = (time.perf_counter() - start) / 60
    m = evaluate_model(params, args.dataset, args.model, paths)
    factors = params.dataset(args.dataset).factor_names
    half = {f: m["rerender"][f]["within_half"] for f in factors}
    ssim = {f: half[f]["ssim"] for f in factors}
    # What the decoder renders: the re-render's SSIM above its own source reconstruction held unmoved.
    gain = {f: half[f]["ssim"] - half[f]["held_ssim"] for f in factors}
    row = (f"| {name} | {minutes:.1f} | " + " | ".join(f"{m['tied'][f]['spearman']:.3f}" for f in factors)
           + f" | {m['reconstruction']['mse']:.5f} | " + " | ".join(f"{ssim[f]:.3f}" for f in factors)
           + f" | **{min(ssim.values()):.3f}** | " + " | ".join(f"{gain[f]:+.3f}" for f in factors) + " |")
    table = ROOT / "tmp" / "tune" / f"{args.dataset}.md"
    if not table.exists():
        table.write_text(f"| run | train min | {' | '.join(f'|rho| {f}' for f in factors)} | recon MSE | "
                         f"{' | '.join(f'SSIM {f}' for f in factors)} | SSIM min | "
                         f"{' | '.join(f'over held {f}' for f in factors)} |\n|---|" + "---|" * (3 + 3 * len(factors)) + "\n")
    with open(table, "a") as fh:
        fh.write(row + "\n")
    print(row)
    (out / "overrides.json").write_text(json.dumps(args.sets) + "\n")


if __name__ == "__main__":
    main()
