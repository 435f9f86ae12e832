"""Command line of the DC-IGN pipeline: a thin click layer over the stage packages.

    python cli.py assets   --dataset faces            # meshes           -> data/meshes/<dataset>/
    python cli.py render   --factor light             # Blender renders  -> data/renders/<dataset>/<factor>/
    python cli.py shard    --dataset faces            # packed sweeps    -> data/shards/<dataset>/
    python cli.py train    --dataset faces --model dcign    # -> models/<dataset>-<model>.pt
    python cli.py train    --dataset faces --model dcign --nproc 2   # the same, data-parallel (torchrun)
    python cli.py evaluate --dataset faces --model dcign    # -> metrics/, plots/, reports/
    python cli.py benchmark --dataset faces               # every model x seed -> reports/benchmark-<dataset>.md
    python cli.py rerender IMAGE --model models/faces-dcign.pt --factor azimuth --values -60 0 60
    python cli.py export   --dataset faces --format hf --out DIR   # Hugging Face datasets or WebDataset

Every command reads `params.yaml` (or `--params FILE`) once; options override single values.
Bad input prints one line starting with `error:` and exits with code 2.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from pathlib import Path

import click

import artifacts
import durable
from config import (MODEL_KINDS as KINDS, ConfigError, Params, UserError, check_dataset_name,
                    check_factor, check_seed, load_params)


def user_errors(fn):
    """Turn UserError into a one-line message and exit code 2 (no traceback for bad input)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except OSError as err:
            if not durable.disk_full(err):
                raise
            # Nothing half-written is left (durable.py); finished work stays and a rerun resumes it.
            where = f" writing {err.filename}" if err.filename else ""
            click.echo(f"error: disk full{where} ({err.strerror}); free some space and run the command again: "
                       "finished work is kept", err=True)
            sys.exit(2)

    return wrapper


class OneLineUsageError(click.UsageError):
    """A click usage error printed as the project prints bad input: one `error:` line, exit code 2."""

    def show(self, file=None) -> None:
        message = " ".join(self.format_message().split())  # click's messages may quote a value with newlines
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"error: {message}{hint}", err=True)


@contextlib.contextmanager
def one_line_usage_errors():
    try:
        yield
    except (OneLineUsageError, click.exceptions.NoArgsIsHelpError):  # the help for a bare command stays
        raise
    except click.UsageError as err:
        raise OneLineUsageError(err.format_message(), err.ctx) from None


class OneLineGroup(click.Group):
    """Click's own errors for a bad command line (a value of the wrong type or out of an IntRange, a missing
    or unknown option, an unknown command) keep the promise too: one line and exit code 2, not a usage block
    and `Error:`. The group parses its options in make_context and each command's in invoke."""

    def make_context(self, *args, **kwargs):
        with one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with one_line_usage_errors():
            return super().invoke(ctx)


def one_dataset(params: Params, name: str) -> str:
    check_dataset_name(name, "--dataset")  # a path such as ../x is refused as such, never looked up
    params.dataset(name)  # raises a one-line error for an unknown name
    return name


def dataset_names(params: Params, choice: str) -> list[str]:
    return list(params.datasets) if choice == "all" else [one_dataset(params, choice)]


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Parameters file.")
@click.pass_context
def main(ctx: click.Context, params_path: str) -> None:
    """DC-IGN: procedural meshes, Blender renders, factor-grouped shards, model, evaluation."""
    ctx.obj = params_path


def _params(ctx: click.Context, seed: int | None = None) -> Params:
    params = load_params(ctx.obj)
    if seed is None:
        return params
    check_seed(seed, "--seed")  # --seed overrides the top-level seed; the same rule, named as the option
    return dataclasses.replace(params, seed=seed)


# ------------------------------------------------------------------------------------ assets


@main.command()
@click.option("--dataset", default="all", show_default=True, help="Dataset name from params.yaml, or 'all'.")
@click.option("--count", type=int, default=None,
              help="Number of meshes (default: train + test from params.yaml; the first are train).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default data/meshes/<dataset>; with several datasets, DIR/<dataset>).")
@click.option("--seed", type=int, default=None, help="Random seed (default: params.yaml seed).")
@click.option("--preview", type=click.Path(dir_okay=False), default=None,
              help="Also render a contact sheet of the meshes to this PNG (needs Blender).")
@click.pass_context
@user_errors
def assets(ctx, dataset, count, out, seed, preview):
    """Generate (or import and normalise) a dataset's meshes."""
    from assets.catalog import build_meshes

    params = _params(ctx, seed)
    names = dataset_names(params, dataset)
    for name in names:
        ds = params.dataset(name)
        target = Path(out) / name if (out and len(names) > 1) else Path(out) if out else ds.mesh_dir()
        catalog = build_meshes(ds, params.seed, target, count=count)
        click.echo(f"{name}: {len(catalog)} meshes -> {target}")
        if preview:
            from render.preview import contact_sheet

            sheet = Path(preview) if len(names) == 1 else Path(preview).with_name(f"{name}-{Path(preview).name}")
            contact_sheet(catalog, params, ds, sheet)
            click.echo(f"{name}: contact sheet -> {sheet}")


# ------------------------------------------------------------------------------------ render


@main.command()
@click.option("--factor", required=True, metavar="FACTOR|intrinsic|iid|all",
              help="Which set to render: a factor's sweeps (the dataset's factors in params.yaml), the identity "
                   "sweeps, the i.i.d. set, or all of them in turn.")
@click.option("--dataset", default="all", show_default=True, help="Dataset name from params.yaml, or 'all'.")
@click.option("--groups", type=click.IntRange(min=0), default=None,
              help="Training sweeps (iid: training groups); default from params.yaml.")
@click.option("--steps", type=int, default=None, help="Images per sweep (>= 2); default from params.yaml.")
@click.option("--range", "value_range", type=float, nargs=2, default=None, metavar="MIN MAX",
              help="Range of the swept factor, in its unit (factor sweeps only).")
@click.option("--size", type=int, default=None, help="Image size in pixels (>= 8).")
@click.option("--samples", type=int, default=None, help="Cycles samples per pixel.")
@click.option("--workers", type=int, default=None,
              help="Render processes, or Ray actors (0 = one per core, of the cluster with --executor ray).")
@click.option("--executor", default=None, metavar="local|ray",
              help="Where sweeps render: this machine's process pool, or a Ray cluster (default: render.executor).")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="Ray cluster head to join with --executor ray (default: render.address).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default data/renders/<dataset>/<factor>; with several datasets, DIR/<dataset>).")
@click.option("--seed", type=int, default=None, help="Random seed (default: params.yaml seed).")
@click.pass_context
@user_errors
def render(ctx, factor, dataset, groups, steps, value_range, size, samples, workers, executor, address, out, seed):
    """Render sweeps of one factor with Blender (Cycles): PNGs and labels.csv."""
    from render.runner import RenderJob, render_set

    params = _params(ctx, seed)
    overrides = {k: v for k, v in dict(size=size, samples=samples, workers=workers, executor=executor,
                                       address=address).items() if v is not None}
    if overrides:
        settings = dataclasses.replace(params.render, **overrides)
        settings.check("render")  # the options override render.* keys; errors name those keys
        params = dataclasses.replace(params, render=settings)
    if address is not None and params.render.executor != "ray":
        raise ConfigError("--address names a Ray cluster; add --executor ray (or set render.executor: ray)")
    if factor == "all" and (out or value_range or groups is not None):
        raise ConfigError("--factor all renders every set of params.yaml into data/renders/<dataset>/<set>; "
                          "drop --out, --range and --groups, or render one set")
    names = dataset_names(params, dataset)
    for name in names:
        ds = params.dataset(name)
        sets = ds.render_sets if factor == "all" else (check_factor(factor, ds.render_sets),)
        for name_of_set in sets:
            folder = Path(out) / name if (out and len(names) > 1) else Path(out) if out else ds.render_dir(name_of_set)
            render_set(params, RenderJob(dataset=name, factor=name_of_set, out=folder, groups=groups, steps=steps,
                                         value_range=tuple(value_range) if value_range else None))


# ------------------------------------------------------------------------------------ shard


@main.command()
@click.option("--dataset", default="all", show_default=True, help="Dataset name from params.yaml, or 'all'.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default data/shards/<dataset>; with several datasets, DIR/<dataset>).")
@click.option("--verify", "verify_only", is_flag=True, help="Only check existing shards against the manifest.")
@click.pass_context
@user_errors
def shard(ctx, dataset, out, verify_only):
    """Pack a dataset's renders into factor-grouped shards (+ manifest.json)."""
    from pipeline.shards import pack_dataset, verify_dir

    params = _params(ctx)
    names = dataset_names(params, dataset)
    for name in names:
        ds = params.dataset(name)
        target = Path(out) / name if (out and len(names) > 1) else Path(out) if out else ds.shard_dir()
        manifest = verify_dir(target) if verify_only else pack_dataset(ds, params.shard, out=target)
        click.echo(f"{name}: {len(manifest.shards)} shards {'verified' if verify_only else '->'} {target}")


# ------------------------------------------------------------------------------------ train


@main.command()
@click.option("--dataset", required=True, help="Dataset name from params.yaml.")
@click.option("--model", "kind", required=True, metavar="|".join(KINDS),
              help="dcign (clamped sweep training), vae (the entangled baseline), betavae, or the weakly-supervised "
                   "adagvae, adamlvae and gvae (pairs from within sweeps).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Optimiser steps (default: train.steps).")
@click.option("--shards", type=click.Path(file_okay=False), default=None,
              help="Shard folder (default data/shards/<dataset>).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Final checkpoint (default models/<dataset>-<model>.pt).")
@click.option("--seed", type=int, default=None, help="Random seed (default: params.yaml seed).")
@click.option("--no-live", is_flag=True, help="Do not write DVCLive logs (dvclive/<dataset>-<model>).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Data-parallel processes on this machine (launches torchrun; gloo on CPU, nccl on GPUs).")
@click.pass_context
@user_errors
def train(ctx, dataset, kind, steps, shards, out, seed, no_live, nproc):
    """Train a DC-IGN, a baseline or a weakly-supervised model on a dataset's shards (resumes)."""
    from model.train import TrainJob, check_kind, train as run

    check_kind(kind)
    params = _params(ctx, seed)
    one_dataset(params, dataset)
    if steps is not None:
        settings = dataclasses.replace(params.train, steps=steps)
        settings.check("train")  # --steps overrides train.steps; errors name that key
        params = dataclasses.replace(params, train=settings)
    overrides = {k: Path(v) for k, v in dict(shard_dir=shards, out=out).items() if v is not None}
    if no_live:
        overrides["live_dir"] = None
    job = TrainJob.default(params, dataset, kind, **overrides)
    if nproc > 1:
        _launch_ranks(params, job, nproc)
        return
    path = run(params, job)
    click.echo(f"{dataset}-{kind}: {params.train.steps} steps -> {path}")


def _launch_ranks(params: Params, job, nproc: int) -> None:
    """`train --nproc N`: check what would fail on every rank, then run this command under torchrun."""
    import os

    from model.distributed import World, launch
    from model.train import check_split
    from pipeline.shards import read_manifest

    if "WORLD_SIZE" in os.environ:
        raise UserError("--nproc launches torchrun; this process already runs under it, so leave --nproc out")
    check_split(job.kind, params.train, World(size=nproc))
    read_manifest(job.shard_dir)  # a missing or foreign shard folder: one line here, not N tracebacks
    argv = sys.argv[1:]
    i = next(i for i, a in enumerate(argv) if a == "--nproc" or a.startswith("--nproc="))
    argv = argv[:i] + argv[i + (1 if "=" in argv[i] else 2):]
    code = launch(nproc, [str(Path(__file__).resolve()), *argv])
    if code:
        raise UserError(f"the {nproc} training processes stopped with exit code {code}; see their messages above")
    click.echo(f"{job.dataset}-{job.kind}: {params.train.steps} steps on {nproc} processes -> {job.out}")


# ------------------------------------------------------------------------------------ evaluate


@main.command()
@click.option("--dataset", required=True, help="Dataset name from params.yaml (its shards are scored).")
@click.option("--model", "model_name", default=None, metavar="|".join(KINDS),
              help="Evaluate models/<dataset>-<model>.pt.")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
              help="Evaluate this checkpoint instead, e.g. one trained on another dataset: "
                   "--dataset myheads --checkpoint models/faces-dcign.pt -> metrics/myheads-from-faces-dcign.json.")
@click.pass_context
@user_errors
def evaluate(ctx, dataset, model_name, checkpoint):
    """Metrics, codes, factor->latent mapping and figures of a trained model on a dataset's test meshes."""
    from evaluate.run import evaluate_checkpoint, evaluate_model

    if (model_name is None) == (checkpoint is None):
        raise UserError("give exactly one of --model (models/<dataset>-<model>.pt) and --checkpoint FILE")
    params = _params(ctx)
    one_dataset(params, dataset)
    if checkpoint is None:
        metrics = evaluate_model(params, dataset, model_name)
        out = artifacts.RunPaths.named(f"{dataset}-{model_name}").metrics
    else:
        metrics, paths = evaluate_checkpoint(params, dataset, checkpoint)
        out = paths.metrics
    d, tied = metrics["disentanglement"], metrics["tied"]
    click.echo(f"{out.stem}: recon MSE {metrics['reconstruction']['mse']:.4g}, MIG {d['mig']:.3f}, "
               + ", ".join(f"{f} |rho| {t['spearman']:.3f}" for f, t in tied.items()) + f" -> {out}")
    if checkpoint is not None:
        click.echo(per_mesh_table(metrics))


def per_mesh_table(metrics: dict) -> str:
    """Per test mesh |Spearman| of each tied latent, as printed after a --checkpoint evaluation."""
    tied, names = metrics["tied"], metrics.get("mesh_names", {})
    factors = list(tied)
    lines = ["mesh".ljust(28) + "".join(f.rjust(11) for f in factors)]
    for mesh in tied[factors[0]]["per_mesh"]:
        label = f"{mesh} {names.get(mesh, '')}".strip()[:27]
        lines.append(label.ljust(28) + "".join(f"{tied[f]['per_mesh'].get(mesh, float('nan')):11.3f}" for f in factors))
    lines.append("mean over meshes".ljust(28) + "".join(f"{tied[f]['per_mesh_mean']:11.3f}" for f in factors))
    return "\n".join(lines)


def _dataset_step(name: str, target: str, doc: str):
    """A command that runs one `module:function(params, dataset)` and prints the path it returns."""

    @main.command(name=name, help=doc)
    @click.option("--dataset", required=True, help="Dataset name from params.yaml.")
    @click.pass_context
    @user_errors
    def command(ctx, dataset):
        import importlib

        module, function = target.split(":")
        step = getattr(importlib.import_module(module), function)
        params = _params(ctx)
        click.echo(f"{dataset}: {name} -> {step(params, one_dataset(params, dataset))}")

    return command


report = _dataset_step("report", "evaluate.report:write_report",
                       "reports/<dataset>.md and the comparison figure, from both models' metrics.")
benchmark = _dataset_step("benchmark", "evaluate.benchmark:run_benchmark",
                          "Every model of train.models, once per seed of train.seeds: reports/benchmark-<dataset>.md "
                          "(resumes).")


# ------------------------------------------------------------------------------------ export


@main.command()
@click.option("--dataset", required=True, help="Dataset name from params.yaml.")
@click.option("--format", "fmt", required=True, metavar="hf|webdataset",
              help="hf: a Hugging Face `datasets` folder (load_from_disk, load_dataset); "
                   "webdataset: tar shards for streaming. Needs requirements-export.txt.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder (new, empty, or an earlier export, which is replaced).")
@click.option("--shards", type=click.Path(file_okay=False), default=None,
              help="Shard folder (default data/shards/<dataset>).")
@click.pass_context
@user_errors
def export(ctx, dataset, fmt, out, shards):
    """Export a dataset's shards for others, with a dataset card and a contact sheet (docs/export.md)."""
    from pipeline.export import check_format, export_dataset

    check_format(fmt)
    params = _params(ctx)
    one_dataset(params, dataset)
    result = export_dataset(params, dataset, fmt, Path(out), shard_dir=Path(shards) if shards else None)
    click.echo(f"{dataset}: {result.images:,} images -> {out} ({fmt})")


# ignore_unknown_options lets `--values -60 -30 0` list negative numbers: click would read "-30" as an option.
@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("more_values", nargs=-1, type=click.UNPROCESSED)
@click.option("--model", "checkpoint", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint, e.g. models/faces-dcign.pt.")
@click.option("--factor", required=True, metavar="FACTOR",
              help="Which factor to set: one the model's dataset declares (e.g. azimuth, elevation, light).")
@click.option("--values", "first_value", required=True, metavar="V [V...]",
              help="Target values in the factor's unit (degrees for angles), e.g. --values -60 -30 0 30 60.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output grid PNG.")
@click.option("--gif", type=click.Path(dir_okay=False), default=None, help="Also write a smooth sweep as a GIF.")
@click.option("--mapping", type=click.Path(dir_okay=False), default=None,
              help="Factor->latent mapping (default metrics/<checkpoint name>-mapping.json, from `evaluate`).")
@user_errors
def rerender(image, more_values, checkpoint, factor, first_value, out, gif, mapping):
    """Re-render IMAGE (PNG/JPEG, centre-cropped and resized) with FACTOR set to each of the values."""
    from evaluate.rerender import parse_degrees, rerender_file

    values = parse_degrees([first_value, *more_values])
    click.echo(f"-> {rerender_file(image, checkpoint, factor, values, out, gif, mapping)}")


if __name__ == "__main__":
    main()
