"""Benchmark of the evaluate stage's parts at the default profile's sizes (params.yaml), side by side.

An untrained `conv4` model of the default size (the cost of a forward pass does not depend on the
weights) and random images of the default counts stand in for a trained model and real shards, so it
runs without renders. Target: the whole evaluation under ~1 minute per model on 2 CPU cores.

    .venv/bin/python bench/evaluate.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import load_params  # noqa: E402
from evaluate import disentanglement as dis  # noqa: E402
from evaluate import figures  # noqa: E402
from evaluate.encode import encode, reconstruction_error  # noqa: E402
from evaluate.mapping import FactorMapping  # noqa: E402
from evaluate.rerender import rerender_sweeps, summarise  # noqa: E402
from model.nets import build  # noqa: E402


def main() -> None:
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    ds, ev, size = params.dataset("faces"), params.evaluate, params.render.size
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build(params.model.arch, size, params.render.channels, params.model.latents).eval()
    k = ds.steps
    n_train = sum(ds.groups[f] for f in ds.factors) * k
    n_test = 4 * ds.test_groups * k + ds.iid.test * ds.iid.group_size
    n_iid = ds.iid.test * ds.iid.group_size
    images = lambda n: rng.integers(0, 256, (n, size, size), dtype=np.uint8)  # noqa: E731
    timings = {}

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        return out

    timed(f"encode training sweeps ({n_train} images)", lambda: encode(model, images(n_train)))
    timed(f"reconstruction of all test images ({n_test})", lambda: reconstruction_error(model, images(n_test)))
    codes = rng.normal(size=(n_iid, params.model.latents))
    classes = dis.discretize_factors(rng.uniform(-1, 1, (n_iid, 3)), ev.factor_bins, [(-1, 1)] * 3)
    sizes = dis.MetricSizes(train=ev.votes_train, eval=ev.votes_eval)
    timed(f"MIG ({n_iid} iid codes)", lambda: dis.mig(codes, classes))
    timed("DCI (gradient boosting)", lambda: dis.dci(codes, classes))
    timed("SAP", lambda: dis.sap(codes, classes))
    timed(f"FactorVAE ({ev.votes_train}+{ev.votes_eval} votes)", lambda: dis.factor_vae(codes, classes, 0, sizes))
    timed(f"BetaVAE ({ev.votes_train}+{ev.votes_eval} features)", lambda: dis.beta_vae(codes, classes, 0, sizes))
    timed("modularity + explicitness", lambda: dis.modularity_explicitness(codes, classes))
    deg = np.linspace(-90, 90, 200)
    mapping = FactorMapping.fit(deg, rng.normal(size=(200, params.model.latents)), [0], (-90, 90), ev.mapping_bins)
    labels = np.zeros((k, 3), np.float32)
    labels[:, 0] = np.linspace(-90, 90, k)
    sweeps = [(images(k), labels) for _ in range(ds.test_groups)]
    timed(f"re-rendering, one factor ({ds.test_groups} sweeps x {ev.rerender_sources} sources x {k})",
          lambda: summarise(rerender_sweeps(model, sweeps, mapping, 0, (-90, 90), ev.rerender_sources)))
    with tempfile.TemporaryDirectory() as tmp:
        timed("one traversal figure", lambda: figures.traversal(model, images(4), mapping, "azimuth", (-90, 90),
                                                                ev.traversal_steps, Path(tmp) / "t.png", "bench"))
    per_model = sum(v for n, v in timings.items() if "one factor" not in n and "one traversal" not in n)
    per_model += 3 * timings[next(n for n in timings if "one factor" in n)]
    per_model += 5 * timings["one traversal figure"]  # 3 traversals + scatter + re-render figure, about alike
    width = max(map(len, timings))
    print(f"evaluate stage parts at the default profile ({size}x{size}, {params.model.latents} latents), "
          f"torch threads {torch.get_num_threads()}")
    for name, secs in timings.items():
        print(f"  {name:<{width}}  {secs:7.2f} s")
    print(f"  {'estimated whole evaluation of one model':<{width}}  {per_model:7.2f} s  (target < 60 s)")


if __name__ == "__main__":
    main()
