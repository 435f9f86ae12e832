"""Exporting a dataset's shards for others: a Hugging Face `datasets` folder or WebDataset tar shards.

    python cli.py export --dataset faces --format hf --out DIR          # datasets.load_from_disk(DIR)
    python cli.py export --dataset faces --format webdataset --out DIR  # DIR/<split>/<split>-NNNNNN.tar

Every image becomes one row (hf) or one sample (webdataset) carrying its factor values, its mesh, and its
place in the factor-grouped layout: `set` (azimuth, elevation, light, intrinsic, iid), `sweep` (unique
within split and set) and `position` in the sweep. The arrays a shard holds beside images, labels and
mesh when it was packed with passes (those the manifest's `passes` lists, and the camera's `K` and
`world_to_camera`) are exported per image too. Shards are read in manifest order and checked against their sha256.

`DIR` gets a dataset card (README.md), a contact sheet and the marker `export.json` that lists every
file written: the folder is built in `DIR.partial` and renamed into place (`durable.building`), and
only a folder holding that marker and nothing it does not list is ever replaced.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

import durable
from config import SPLITS, ConfigError, Params, UserError
from pipeline.card import encode_png, wds_suffix, write_card
from pipeline.shards import MANIFEST, Manifest, ShardEntry, ShardError, check_declared, open_shard, read_manifest

FORMATS = ("hf", "webdataset")
MARKER = "export.json"
MARKER_FORMAT = 1
REQUIREMENTS = "requirements-export.txt"
TAR_MB = 256
"""Target size of one WebDataset tar; a tar closes only between sweeps, so a sweep is never split."""
ROOT = Path(__file__).resolve().parents[1]


class ExportError(UserError):
    """Bad input for `export`: unknown format, a missing library, shards that do not match params.yaml."""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def require_library(fmt: str) -> None:
    """hf writes through `datasets`; webdataset tars are written with the standard library's tarfile
    (the `webdataset` library is needed only to read them), so only hf can miss a library here."""
    if fmt != "hf":
        return
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise ExportError(f"export --format hf needs the `datasets` library, which is not installed; run "
                          f"`pip install -r {REQUIREMENTS} -c constraints.txt`") from None


# ------------------------------------------------------------------------------ the source


@dataclass(frozen=True)
class Extra:
    """One per-image array a shard holds beyond images, labels and mesh, e.g. `depth` [G, K, H, W]."""

    name: str
    shape: tuple[int, ...]
    """Per image: the member's shape without its leading [groups, steps]."""
    dtype: str


@dataclass(frozen=True)
class Source:
    shard_dir: Path
    manifest: Manifest
    extras: tuple[Extra, ...]
    """Every extra member of the shards: the passes in the manifest's order, then the cameras (`K`,
    `world_to_camera`); none for shards without passes."""
    mesh_files: dict[int, str]
    """Mesh id -> the user's file it was imported from (folder sources); generated meshes have none."""
    mesh_index: dict | None
    """data/meshes/<dataset>/index.json, or None where it is missing or unreadable."""

    @property
    def passes(self) -> tuple[str, ...]:
        """The manifest's `passes` (ground-truth renders such as depth, normal, mask), in its order."""
        return self.manifest.passes

    @property
    def images(self) -> int:
        return sum(e.groups * e.steps for e in self.manifest.shards)

    def entries(self) -> Iterator[ShardEntry]:
        """Shards split by split (train first), each split's in manifest order (set by set)."""
        for split in SPLITS:
            yield from self.manifest.select(split)


def open_source(params: Params, dataset: str, shard_dir: Path, mesh_dir: Path) -> Source:
    """Read and check what an export needs before anything is written. Raises UserError."""
    manifest = read_manifest(shard_dir)
    _check_matches_params(params, dataset, manifest, shard_dir)
    if not manifest.shards:
        raise ShardError(f"{shard_dir / MANIFEST}: lists no shards; run `python cli.py shard --dataset {dataset}`")
    # `open_shard` checks every shard's checksum and the layout of every member the manifest implies
    # (the passes it lists and the cameras), before anything is written.
    shards = [open_shard(shard_dir, manifest, entry, verify=True) for entry in manifest.shards]
    extras = tuple(Extra(name, tuple(array.shape[2:]), array.dtype.name) for name, array in shards[0].passes.items())
    index = _read_index(mesh_dir)
    return Source(shard_dir, manifest, extras, _mesh_files(index), index)


def _check_matches_params(params: Params, dataset: str, manifest: Manifest, shard_dir: Path) -> None:
    """The card describes the renders from params.yaml: shards packed under other settings would make it lie."""
    size, channels = params.render.size, params.render.channels
    fix = "rerun `dvc repro` (or `python cli.py shard`) or pass the --params the shards were made with"
    if manifest.dataset != dataset:
        raise ExportError(f"{shard_dir}: holds shards of dataset {manifest.dataset!r}, not {dataset!r}; pass its --shards folder")
    if tuple(manifest.image_size) != (size, size) or manifest.channels != channels:
        raise ExportError(f"{shard_dir}: shards are {manifest.image_size[0]}x{manifest.image_size[1]}x{manifest.channels}, "
                          f"params.yaml renders {size}x{size}x{channels} (render.size, render.color); {fix}")
    check_declared(manifest, params.dataset(dataset), shard_dir)


def _read_index(mesh_dir: Path) -> dict | None:
    try:
        index = json.loads((mesh_dir / "index.json").read_text())
        return index if isinstance(index, dict) else None
    except (OSError, ValueError):
        return None


def _mesh_files(index: dict | None) -> dict[int, str]:
    files = {}
    for entry in (index or {}).get("meshes", []):
        try:
            source_file = (entry.get("params") or {}).get("source_file")
            if source_file:
                files[int(entry["id"])] = str(source_file)
        except (AttributeError, KeyError, TypeError, ValueError):
            continue  # an odd entry only loses its file name, not the export
    return files


# ------------------------------------------------------------------------------ sweeps


@dataclass
class Sweep:
    """One sweep (or iid group) as exported: K images in position order."""

    split: str
    set: str
    sweep: int
    pngs: list[bytes]
    images: np.ndarray  # uint8 [K, H, W(, C)], as in the shard
    labels: np.ndarray  # float32 [K, F], the manifest's factor order
    mesh: np.ndarray  # int32 [K]
    extras: dict[str, np.ndarray]  # name -> [K, ...]


def iter_sweeps(source: Source, pool: ThreadPoolExecutor) -> Iterator[Sweep]:
    """Every sweep of every verified shard; PNGs are encoded a shard at a time on `pool` (cv2 drops the GIL)."""
    counters: dict[tuple[str, str], int] = {}
    for entry in source.entries():
        shard = open_shard(source.shard_dir, source.manifest, entry, verify=False)  # verified by open_source
        flat = shard.images.reshape((-1,) + shard.images.shape[2:])
        pngs = list(pool.map(encode_png, flat, chunksize=32))
        for g in range(entry.groups):
            key = (entry.split, entry.factor)
            number = counters.get(key, 0)
            counters[key] = number + 1
            yield Sweep(entry.split, entry.factor, number, pngs[g * entry.steps:(g + 1) * entry.steps],
                        np.asarray(shard.images[g]), np.asarray(shard.labels[g]), np.asarray(shard.mesh[g]),
                        {e.name: np.asarray(shard.passes[e.name][g]) for e in source.extras})


def row_labels(source: Source, sweep: Sweep, k: int) -> dict:
    """The labels of image k of a sweep, as both formats store them (JSON-safe Python values)."""
    mesh = int(sweep.mesh[k])
    return {**{f: float(sweep.labels[k, i]) for i, f in enumerate(source.manifest.factors)},
            "mesh": mesh, "mesh_file": source.mesh_files.get(mesh, ""),
            "split": sweep.split, "set": sweep.set, "sweep": sweep.sweep, "position": k}


# ------------------------------------------------------------------------------ statistics for the card


@dataclass
class Stats:
    """What the card counts, gathered while exporting."""

    factors: tuple[str, ...] = ()
    """The label columns (the manifest's factors)."""
    sweeps: dict[tuple[str, str], int] = field(default_factory=dict)
    images: dict[tuple[str, str], int] = field(default_factory=dict)
    meshes: dict[str, set] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)

    def add(self, sweep: Sweep) -> None:
        key = (sweep.split, sweep.set)
        self.sweeps[key] = self.sweeps.get(key, 0) + 1
        self.images[key] = self.images.get(key, 0) + len(sweep.pngs)
        self.meshes.setdefault(sweep.split, set()).update(int(m) for m in sweep.mesh)
        for i, f in enumerate(self.factors):
            self.low[f] = min(self.low.get(f, np.inf), float(sweep.labels[:, i].min()))
            self.high[f] = max(self.high.get(f, -np.inf), float(sweep.labels[:, i].max()))

    @property
    def total(self) -> int:
        return sum(self.images.values())


# ------------------------------------------------------------------------------ writers


class HfWriter:
    """A `datasets.DatasetDict` (one Dataset per split) saved with `save_to_disk`.

    Rows are streamed into one Arrow file per split (`ArrowWriter`, a sweep per batch: memory stays one
    shard), which `save_to_disk` then lays out as `load_from_disk` expects; the first copy is deleted."""

    def __init__(self, source: Source, out: Path):
        import datasets
        from datasets.arrow_writer import ArrowWriter

        self.datasets, self.ArrowWriter = datasets, ArrowWriter
        self.out, self.work = out, out / ".build"
        self.work.mkdir()
        self.features = hf_features(source)
        self.source = source
        self.writers: dict = {}

    def add(self, sweep: Sweep) -> None:
        writer = self.writers.get(sweep.split)
        if writer is None:
            writer = self.writers[sweep.split] = self.ArrowWriter(features=self.features,
                                                                  path=str(self.work / f"{sweep.split}.arrow"))
        rows = [row_labels(self.source, sweep, k) for k in range(len(sweep.pngs))]
        batch = {"image": [{"bytes": png, "path": None} for png in sweep.pngs]}
        for name in self.features:
            if name in rows[0]:
                batch[name] = [r[name] for r in rows]
        batch.update(sweep.extras)
        writer.write_batch({name: batch[name] for name in self.features})

    def close(self) -> None:
        datasets = self.datasets
        for writer in self.writers.values():
            writer.finalize()
        splits = {split: datasets.Dataset.from_file(str(self.work / f"{split}.arrow"), split=split)
                  for split in SPLITS if split in self.writers}
        enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # our own bar counts the images; save_to_disk's would print twice
        try:
            datasets.DatasetDict(splits).save_to_disk(str(self.out))
        finally:
            if enabled:
                datasets.enable_progress_bars()
        del splits
        shutil.rmtree(self.work)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.close()


def hf_features(source: Source):
    import datasets

    columns = {"image": datasets.Image()}
    columns.update({f: datasets.Value("float32") for f in source.manifest.factors})
    columns.update(mesh=datasets.Value("int32"), mesh_file=datasets.Value("string"), set=datasets.Value("string"),
                   sweep=datasets.Value("int32"), position=datasets.Value("int32"))
    for extra in source.extras:
        columns[extra.name] = _array_feature(datasets, extra)
    return datasets.Features(columns)


def _array_feature(datasets, extra: Extra):
    n = len(extra.shape)
    if n == 0:
        return datasets.Value(extra.dtype)
    if n == 1:
        return datasets.List(datasets.Value(extra.dtype), length=extra.shape[0])
    array = {2: datasets.Array2D, 3: datasets.Array3D, 4: datasets.Array4D, 5: datasets.Array5D}[n]
    return array(shape=extra.shape, dtype=extra.dtype)


class WdsWriter:
    """WebDataset tar shards, `<split>/<split>-NNNNNN.tar`, byte-identical for identical shards.

    A sample is `<set>-<sweep>-<position>` with `.png`, `.json` (labels, mesh, split, set, sweep,
    position) and one `.<name>.npy` per extra array. Members carry fixed mtime, owner and mode, and come
    in sweep order, so nothing of the machine or the clock reaches the bytes."""

    def __init__(self, source: Source, out: Path, tar_mb: float = TAR_MB):
        self.source, self.out, self.limit = source, out, tar_mb * 2**20
        self.split: str | None = None
        self.number = 0
        self.file = None
        self.tar: tarfile.TarFile | None = None

    def add(self, sweep: Sweep) -> None:
        if sweep.split != self.split or (self.file is not None and self.file.tell() >= self.limit):
            self._next_tar(sweep.split)
        for k, png in enumerate(sweep.pngs):
            key = f"{sweep.set}-{sweep.sweep:06d}-{k:03d}"  # no dots: WebDataset splits a name at its first dot
            labels = row_labels(self.source, sweep, k)
            self._member(f"{key}.png", png)
            self._member(f"{key}.json", json.dumps(labels).encode())
            for name, array in sweep.extras.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(array[k]), allow_pickle=False)
                self._member(f"{key}.{wds_suffix(name)}", buf.getvalue())

    def _next_tar(self, split: str) -> None:
        self._close_tar()
        self.number = 0 if split != self.split else self.number + 1
        self.split = split
        path = self.out / split / f"{split}-{self.number:06d}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "wb")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.USTAR_FORMAT)

    def _member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self.tar.addfile(info, io.BytesIO(data))

    def _close_tar(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.file.close()
            self.tar = self.file = None

    def close(self) -> None:
        self._close_tar()

    abort = close


# ------------------------------------------------------------------------------ the export


@dataclass(frozen=True)
class ExportResult:
    out: Path
    format: str
    images: int
    files: tuple[str, ...]


def export_dataset(params: Params, dataset: str, fmt: str, out: Path | str, shard_dir: Path | str | None = None,
                   mesh_dir: Path | str | None = None, progress: bool = True, tar_mb: float = TAR_MB,
                   workers: int = 0) -> ExportResult:
    """Export `dataset`'s shards to `out` in format `fmt` (hf or webdataset), with its card and contact sheet.
    Every input is checked before anything is written; bad input raises UserError and leaves no trace."""

    check_format(fmt)
    ds = params.dataset(dataset)
    out = Path(out)
    require_library(fmt)
    source = open_source(params, dataset, Path(shard_dir or ds.shard_dir()), Path(mesh_dir or ds.mesh_dir()))
    durable.check_replaceable(out, MARKER, _listed, "export")
    commit = git_commit()
    with durable.building(out, MARKER, _listed, "export") as tmp:
        stats = _write(source, fmt, tmp, progress, tar_mb, workers)
        write_card(tmp, params, dataset, fmt, source, stats, commit)
        files = tuple(sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*")
                             if p.is_file() and p.name != durable.PARTIAL_MARK))
        marker = {"format": MARKER_FORMAT, "export_format": fmt, "dataset": dataset, "commit": commit,
                  "images": stats.total, "files": list(files)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return ExportResult(out, fmt, stats.total, files + (MARKER,))


def _write(source: Source, fmt: str, tmp: Path, progress: bool, tar_mb: float, workers: int) -> Stats:
    writer = HfWriter(source, tmp) if fmt == "hf" else WdsWriter(source, tmp, tar_mb)
    stats = Stats(source.manifest.factors)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, \
            tqdm(total=source.images, unit="img", desc=f"export {source.manifest.dataset} ({fmt})",
                 disable=not progress) as bar:
        try:
            for sweep in iter_sweeps(source, pool):
                writer.add(sweep)
                stats.add(sweep)
                bar.update(len(sweep.pngs))
        except BaseException:
            writer.abort()  # close open files; `durable.building` removes the folder
            raise
    writer.close()
    return stats


def _listed(out: Path) -> list[str]:
    return list(json.loads((out / MARKER).read_text())["files"])


def git_commit(root: Path = ROOT) -> str:
    """HEAD of the checkout the code runs from, or "unknown" (no git, or not a checkout)."""
    try:
        run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = run.stdout.strip()
    return commit if run.returncode == 0 and len(commit) == 40 else "unknown"


__all__ = ["FORMATS", "MARKER", "ExportError", "ExportResult", "check_format", "export_dataset", "git_commit",
           "encode_png"]
