"""The evaluate stage for one (dataset, model): checkpoint + shards in; metrics, codes, mapping, figures out.

    metrics/<d>-<m>.json          every number (DVC metrics)
    metrics/<d>-<m>-codes.npz     encoder means of the iid test set: codes [N, L], factors [N, F], mesh [N]
    metrics/<d>-<m>-mapping.json  factor -> latent mapping (fitted on training sweeps; `rerender` reads it)
    plots/<d>-<m>/*.png           traversals, latent-vs-truth scatter, re-rendering vs Blender, training curves

Which latent is "tied" to factor f: for DC-IGN and GVAE, the latent(s) it was trained to own
(`meta.owned[f]`; with several, the one varying most over training sweeps of f is scored); for the
other models, the single latent varying most over training sweeps of f (the paper's choice for its
baseline). Everything is chosen or fitted on training sweeps and scored on test meshes only. Every
factor the dataset declares is scored; the disentanglement metrics also score the identity (the mesh, as
a categorical factor), as disentanglement_lib scores every ground-truth factor.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sklearn
from tqdm import tqdm

import artifacts
import durable
from config import IID, INTRINSIC, Params, UserError
from evaluate import disentanglement as dis
from evaluate import figures
from evaluate.encode import Encoded, as_float, decode, encode, encode_sweeps, reconstruction_error
from evaluate.invariance import invariance, owners_of
from evaluate.mapping import FactorMapping, save_mappings
from evaluate.rerender import rerender_sweeps, source_frames, summarise
from evaluate.tied import best_latent, probe_scores, spearman_abs, tied_scores
from model.checkpoint import ASSIGNED_KINDS, KINDS
from pipeline.npzfile import write_npz
from pipeline.shards import check_declared, read_manifest

MODELS = KINDS
FIGURE_ROWS = 4
MIN_IID = 6
"""Input rows of the traversal figure, and test sweeps shown in the re-rendering figure (half)."""


class EvaluateError(UserError):
    """Inputs of the evaluation are missing or do not fit together."""


@dataclass(frozen=True)
class EvalPaths:
    checkpoint: Path
    shard_dir: Path
    metrics: Path
    codes: Path
    mapping: Path
    plots: Path
    live_dir: Path

    @classmethod
    def of(cls, run: artifacts.RunPaths, shard_dir: Path) -> "EvalPaths":
        return cls(checkpoint=run.checkpoint, shard_dir=shard_dir, metrics=run.metrics, codes=run.codes,
                   mapping=run.mapping, plots=run.plots, live_dir=run.live_dir)

    @classmethod
    def default(cls, params: Params, dataset: str, model: str, root: Path | str = ".") -> "EvalPaths":
        shard_dir = Path(root) / params.dataset(dataset).shard_dir()
        return cls.of(artifacts.RunPaths.named(f"{dataset}-{model}", root), shard_dir)

    @classmethod
    def for_checkpoint(cls, params: Params, dataset: str, checkpoint: Path | str, trained_on: str,
                       root: Path | str = ".") -> "EvalPaths":
        """Any checkpoint: named after its file, or `<dataset>-from-<file>` when it was trained on another
        dataset (so it never overwrites the checkpoint's own evaluation); its training curves are its own."""
        checkpoint = Path(checkpoint)
        name = checkpoint.stem if trained_on == dataset else f"{dataset}-from-{checkpoint.stem}"
        paths = cls.of(artifacts.RunPaths.named(name, root), Path(root) / params.dataset(dataset).shard_dir())
        return dataclasses.replace(paths, checkpoint=checkpoint,
                                   live_dir=artifacts.RunPaths.named(checkpoint.stem, root).live_dir)


def evaluate_checkpoint(params: Params, dataset: str, checkpoint: Path | str, root: Path | str = ".",
                        progress: bool = True) -> tuple[dict, EvalPaths]:
    """Evaluate any checkpoint on `dataset`'s shards. A checkpoint trained on another dataset (e.g. the
    faces model on heads made elsewhere) is a transfer test: nothing is refitted in the network, the
    tied latents stay the ones it was trained with, and the outputs are named `<dataset>-from-<name>`."""
    from model.checkpoint import load_model

    _, meta = load_model(checkpoint)
    paths = EvalPaths.for_checkpoint(params, dataset, checkpoint, meta.dataset, root)
    return evaluate_model(params, dataset, meta.kind, paths, progress, transfer=meta.dataset != dataset), paths


def evaluate_model(params: Params, dataset: str, model_name: str, paths: EvalPaths | None = None,
                   progress: bool = True, transfer: bool = False) -> dict:
    """Run the whole evaluation of one model; returns the metrics dict it wrote. `transfer` allows a
    checkpoint trained on another dataset (see `evaluate_checkpoint`)."""
    from model.checkpoint import load_model
    from pipeline.loader import open_split

    if model_name not in MODELS:
        raise EvaluateError(f"unknown model {model_name!r}; choose one of: {', '.join(MODELS)}")
    ds = params.dataset(dataset)
    ev = params.evaluate
    paths = paths or EvalPaths.default(params, dataset, model_name)
    model, meta = load_model(paths.checkpoint)
    if meta.dataset != dataset and not transfer:
        raise EvaluateError(f"{paths.checkpoint}: trained on '{meta.dataset}', not '{dataset}'; pass the matching --dataset "
                            f"(or --checkpoint {paths.checkpoint} to test it on '{dataset}')")
    check_declared(read_manifest(paths.shard_dir), ds, paths.shard_dir)
    factors, col = ds.factor_names, {f: ds.column(f) for f in ds.factor_names}
    train, test = open_split(paths.shard_dir, "train"), open_split(paths.shard_dir, "test")
    missing = [f for f in factors if train.count(f) == 0 or test.count(f) == 0] + ([IID] if test.count(IID) == 0 else [])
    if missing:
        raise EvaluateError(f"{paths.shard_dir}: no train/test sweeps of {', '.join(missing)}; render them and re-run "
                            f"`python cli.py shard --dataset {dataset}`")
    unowned = [f for f in factors if meta.kind in ASSIGNED_KINDS and f not in meta.owned]
    if unowned:
        raise EvaluateError(f"{paths.checkpoint}: the model owns no latent for factor '{unowned[0]}' of '{dataset}' (it "
                            f"owns {', '.join(meta.owned)}); evaluate it on a dataset that declares its factors")
    _check_fits(meta, next(iter(test.sweeps(factors[0])))[0], paths.checkpoint, paths.shard_dir)
    # Every check before the first write: a refused evaluation leaves no mapping or metrics behind.
    iid_images, iid_labels, iid_mesh = test.all_images("iid")
    if len(iid_images) < MIN_IID:
        raise EvaluateError(f"{paths.shard_dir}: only {len(iid_images)} iid test images; the disentanglement metrics "
                            f"need at least {MIN_IID}: raise datasets.{dataset}.iid.test and re-render the iid set")
    ranges = {f: tuple(ds.ranges[f]) for f in factors}
    classes = np.concatenate([dis.discretize_factors(iid_labels, ev.factor_bins, [ranges[f] for f in factors]),
                              np.unique(iid_mesh, return_inverse=True)[1].reshape(-1, 1)], axis=1)
    if not dis.varying_factors(classes, params.seed):
        raise EvaluateError(f"{paths.shard_dir}: no factor varies across the {len(iid_images)} iid test images (one mesh, every "
                            f"value in one of evaluate.factor_bins); raise datasets.{dataset}.iid.test and re-render the iid set")
    bar = tqdm(total=7, desc=f"evaluate {dataset}-{model_name}", unit="part", disable=not progress)

    # 1. codes of training sweeps: tied-latent choice, regressions, mapping
    train_enc = {f: encode_sweeps(model, train.sweeps(f)) for f in factors}
    test_enc = {s: encode_sweeps(model, test.sweeps(s)) for s in ds.sweeps if test.count(s)}
    if meta.kind in ASSIGNED_KINDS:
        mapped = {f: list(meta.owned[f]) for f in factors}
        scored = {f: best_latent(train_enc[f].codes, train_enc[f].group, mapped[f]) for f in factors}
    else:
        scored = {f: best_latent(train_enc[f].codes, train_enc[f].group) for f in factors}
        mapped = {f: [scored[f]] for f in factors}
    mappings = {f: FactorMapping.fit(train_enc[f].labels[:, col[f]], train_enc[f].codes, mapped[f],
                                     ranges[f], ev.mapping_bins) for f in factors}
    save_mappings(paths.mapping, dataset, model_name, mappings)
    bar.update()

    # 2. tied latents and the linear probe
    tied, probe = {}, {}
    for f in factors:
        c, a, b = col[f], train_enc[f], test_enc[f]
        tied[f] = {"latent": scored[f], **tied_scores(a.codes[:, scored[f]], a.labels[:, c],
                                                       b.codes[:, scored[f]], b.labels[:, c])}
        probe[f] = probe_scores(a.codes, a.labels[:, c], b.codes, b.labels[:, c])
    bar.update()

    # Per mesh, on test meshes; a transfer run never saw any mesh of this dataset, so it scores them all.
    for f in factors:
        parts = [test_enc[f]] + ([train_enc[f]] if transfer else [])
        per_mesh = per_mesh_spearman(np.concatenate([e.codes[:, scored[f]] for e in parts]),
                                     np.concatenate([e.labels[:, col[f]] for e in parts]),
                                     np.concatenate([e.mesh for e in parts]))
        tied[f].update(per_mesh=per_mesh, per_mesh_mean=float(np.mean(list(per_mesh.values()))))

    # 3. invariance over test sweeps
    reference = np.concatenate([e.codes for e in test_enc.values()])
    owners = owners_of(meta.latents, mapped)
    inv = {s: invariance(e.codes, e.group, reference, s, owners) for s, e in test_enc.items()}
    bar.update()

    # 4. reconstruction of every test image
    images, _, _ = test.all_images()
    recon = reconstruction_error(model, images)
    bar.update()

    # 5. disentanglement metrics and codes of the iid test set
    iid_codes = encode(model, iid_images)
    sizes = dis.MetricSizes(train=ev.votes_train, eval=ev.votes_eval)
    disentangle = dis.all_metrics(iid_codes, classes, params.seed, sizes)
    disentangle["factors_used"] = ",".join((*factors, INTRINSIC)[j] for j in disentangle["factors_used"])
    _write_npz(paths.codes, codes=iid_codes.astype(np.float32), factors=iid_labels.astype(np.float32),
               mesh=iid_mesh.astype(np.int32))
    bar.update()

    # 6. re-rendering against Blender's ground truth
    rerender = {f: summarise(rerender_sweeps(model, ((im, lab) for im, lab, _ in test.sweeps(f)), mappings[f],
                                             col[f], ranges[f], ev.rerender_sources)) for f in factors}
    bar.update()

    # 7. figures
    _figures(params, ds, model_name, model, test, test_enc, mappings, scored, paths)
    bar.update()
    bar.close()

    metrics = {
        "dataset": dataset, "model": model_name, "kind": meta.kind, "latents": meta.latents,
        "trained_on": meta.dataset, "checkpoint": paths.checkpoint.as_posix(), "mesh_names": mesh_names(ds),
        "factor_bins": ev.factor_bins, "sklearn_version": sklearn.__version__,
        "sizes": {"train_sweeps": {f: train.count(f) for f in factors}, "test_sweeps": {s: test.count(s) for s in ds.sweeps},
                  "test_images": int(len(images)), "iid_test_images": int(len(iid_images)),
                  "image_size": int(meta.size), "channels": int(meta.channels), "train_steps": int(meta.step)},
        "reconstruction": recon,
        "tied": tied,
        "probe": probe,
        "invariance": inv,
        "disentanglement": disentangle,
        "rerender": rerender,
    }
    _write_json(paths.metrics, metrics)
    return metrics


def per_mesh_spearman(latent: np.ndarray, factor: np.ndarray, mesh: np.ndarray) -> dict[str, float]:
    """|Spearman| of one latent against its factor over each mesh's sweeps: {mesh id: |rho|}."""
    return {str(int(m)): spearman_abs(latent[mesh == m], factor[mesh == m]) for m in sorted(np.unique(mesh))}


def mesh_names(ds) -> dict[str, str]:
    """Mesh id -> source file name for a folder dataset (empty for generated meshes or no mesh index)."""
    try:
        index = json.loads((ds.mesh_dir() / "index.json").read_text())
        return {str(e["id"]): e["params"]["source_file"] for e in index["meshes"] if "source_file" in e["params"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _check_fits(meta, images: np.ndarray, checkpoint: Path, shard_dir: Path) -> None:
    """A checkpoint only reads images of the size and colour it was trained on."""
    size, channels = images.shape[1], (images.shape[3] if images.ndim == 4 else 1)
    if (meta.size, meta.channels) != (size, channels):
        raise EvaluateError(f"{checkpoint}: trained on {meta.size}px images with {meta.channels} channel(s), but "
                            f"{shard_dir} holds {size}px with {channels}; render that dataset with the "
                            "checkpoint's render.size and render.color")


def _figures(params, ds, model_name, model, test, test_enc, mappings, scored, paths: EvalPaths) -> None:
    title = f"{ds.name} {model_name}"
    ev = params.evaluate
    for f in ds.factors:
        firsts = np.stack([im[0] for im, _, _ in _take(test.sweeps(f), FIGURE_ROWS)])
        figures.traversal(model, firsts, mappings[f], f, ds.ranges[f], ev.traversal_steps,
                          paths.plots / f"traversal-{f}.png", title)
    points = {}
    for f in ds.factors:
        enc: Encoded = test_enc[f]
        points[f] = (enc.labels[:, ds.column(f)], enc.codes[:, scored[f]], scored[f])
    figures.scatter(points, paths.plots / "latent-vs-truth.png", f"{title}: tied latent vs ground truth (test meshes)")
    rows = []
    for f in ds.factors:
        for images, labels, mesh in _take(test.sweeps(f), max(1, FIGURE_ROWS // 2)):
            cols = source_frames(len(images), ev.traversal_steps)
            src = len(images) // 2
            code = encode(model, images[src:src + 1])
            moved = decode(model, mappings[f].apply(np.repeat(code, len(cols), axis=0), labels[cols, ds.column(f)]))
            rows.append((f"{f}, mesh {int(mesh[0])}", as_float(images[cols]), moved, labels[cols, ds.column(f)]))
    figures.rerender_vs_truth(rows, paths.plots / "rerender.png",
                              f"{title}: middle frame re-rendered to each frame's value vs Blender")
    # The animation of the README: one held-out head (the first test sweep's mesh) turning, then relit
    # (the factors of those kinds; a dataset without them shows its first two factors).
    clips = []
    for f in gif_factors(ds):
        images, labels, _ = next(iter(test.sweeps(f)))
        src = len(images) // 2
        code = encode(model, images[src:src + 1])
        moved = decode(model, mappings[f].apply(np.repeat(code, len(images), axis=0), labels[:, ds.column(f)]))
        clips.append(figures.side_by_side(as_float(images), moved))
    figures.save_gif(np.concatenate(clips), paths.plots / "rerender.gif", size=192, ms=120)
    figures.training_curves(paths.live_dir, paths.plots / "training-curves.png", f"{title}: training (DVCLive)")


def gif_factors(ds) -> list[str]:
    """The factors the re-render animation shows: camera azimuth then light azimuth, where declared."""
    chosen = [f for kind in ("camera_azimuth", "light_azimuth") for f, k in ds.factors.items() if k == kind]
    return chosen or list(ds.factor_names[:2])


def _take(iterator, n: int) -> list:
    out = []
    for item in iterator:
        if len(out) == n:
            break
        out.append(item)
    return out


def _finite(value):
    """NaN/inf (e.g. an AUC with one class in a tiny test part) -> null: strict JSON for DVC."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_json(path: Path, body: dict) -> None:
    durable.write_text(path, json.dumps(_finite(body), indent=2, allow_nan=False) + "\n")


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(path, arrays)  # fixed zip timestamps: byte-identical for identical codes
