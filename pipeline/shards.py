"""Packing renders into factor-grouped shards, the manifest that lists them, and verifying them.

Layout of `data/shards/<dataset>/`:
    manifest.json                {"format", "dataset", "image_size": [H, W], "channels", "factors",
                                  "sets", "shards": [{"path", "split", "factor", "groups", "steps",
                                  "bytes", "sha256"}]}
    train/<set>-NNNN.npz         one set (sweep type or iid) per shard:
    test/<set>-NNNN.npz            images uint8 [groups, steps, H, W(, 3)], labels float32
                                   [groups, steps, 3] (FACTORS order, degrees), mesh int32 [groups, steps]

Shards are stored npz files (see `pipeline.npzfile`), byte-identical for identical renders, at most
`shard.max_mb` of image data each (at least one group). The folder is built under a temporary
sibling and renamed into place, so it is complete or absent.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

import durable
from config import FACTORS, RENDER_SETS, SPLITS, DatasetConfig, ShardSettings, UserError
from pipeline.npzfile import NpzLayoutError, open_members, write_npz

FORMAT = 1
MANIFEST = "manifest.json"
LABELS = "labels.csv"
MB = 2**20


class ShardError(UserError):
    """Missing, incomplete or corrupt renders or shards."""


@dataclass(frozen=True)
class ShardEntry:
    path: str
    """Relative to the shard folder, e.g. `train/azimuth-0000.npz`."""
    split: str
    factor: str
    groups: int
    steps: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    format: int
    dataset: str
    image_size: tuple[int, int]
    channels: int
    factors: tuple[str, ...]
    """Column order of every label array."""
    sets: tuple[str, ...]
    shards: tuple[ShardEntry, ...]

    def select(self, split: str | None = None, factor: str | None = None) -> list[ShardEntry]:
        return [s for s in self.shards if split in (None, s.split) and factor in (None, s.factor)]


@dataclass
class Shard:
    """One opened shard: read-only memory maps of its three arrays."""

    path: Path
    split: str
    factor: str
    images: np.ndarray
    labels: np.ndarray
    mesh: np.ndarray

    @property
    def groups(self) -> int:
        return self.images.shape[0]

    @property
    def steps(self) -> int:
        return self.images.shape[1]


# ------------------------------------------------------------------------------ reading renders


@dataclass(frozen=True)
class RenderedGroup:
    """One sweep (or iid group) as listed in a set's labels.csv, frames in index order."""

    files: tuple[Path, ...]
    labels: np.ndarray  # float32 [steps, 3]
    mesh: np.ndarray  # int32 [steps]


def read_rendered_set(render_dir: Path, dataset: str, name: str) -> dict[str, list[RenderedGroup]]:
    """The groups of one finished render set per split, in group order. Raises ShardError."""
    labels_path = render_dir / LABELS
    if not labels_path.is_file():
        raise ShardError(f"{render_dir}: renders of set '{name}' are missing or unfinished (no {LABELS}); "
                         f"run `python cli.py render --factor {name} --dataset {dataset}`")
    rows: dict[str, dict[int, list[tuple[int, str, int, tuple[float, ...]]]]] = {s: {} for s in SPLITS}
    try:
        with open(labels_path, newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                split = row["split"]
                if split not in rows:
                    raise ValueError(f"line {line}: unknown split '{split}'")
                angles = tuple(float(row[k]) for k in FACTORS)
                rows[split].setdefault(int(row["group"]), []).append(
                    (int(row["index"]), row["file"], int(row["mesh"]), angles))
    except (KeyError, ValueError, TypeError) as err:
        raise ShardError(f"{labels_path}: unreadable ({err}); re-render with "
                         f"`python cli.py render --factor {name} --dataset {dataset}`") from None
    out: dict[str, list[RenderedGroup]] = {}
    for split, groups in rows.items():
        out[split] = []
        for g in sorted(groups):
            frames = sorted(groups[g])
            if [fr[0] for fr in frames] != list(range(len(frames))):
                raise ShardError(f"{labels_path}: {split} group {g} has frame indices "
                                 f"{[fr[0] for fr in frames]}, expected 0..{len(frames) - 1}; re-render the set")
            out[split].append(RenderedGroup(
                files=tuple(render_dir / fr[1] for fr in frames),
                labels=np.array([fr[3] for fr in frames], dtype=np.float32),
                mesh=np.array([fr[2] for fr in frames], dtype=np.int32)))
        steps = {len(g.files) for g in out[split]}
        if len(steps) > 1:
            raise ShardError(f"{labels_path}: {split} groups have different lengths {sorted(steps)}; re-render the set")
    return out


def read_image(path: Path) -> np.ndarray:
    """An 8-bit PNG as uint8 [H, W] (gray) or [H, W, 3] (RGB order; alpha dropped)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ShardError(f"{path}: missing or not a readable image; re-render its set")
    if image.dtype != np.uint8:
        raise ShardError(f"{path}: is {image.dtype}, expected 8-bit; re-render its set")
    if image.ndim == 3:
        image = image[:, :, 2::-1]  # BGR(A) -> RGB
    return image


# ------------------------------------------------------------------------------ packing


def pack_dataset(ds: DatasetConfig, settings: ShardSettings, renders_root: Path | str = "data/renders",
                 out: Path | str | None = None, workers: int = 0, progress: bool = True) -> Manifest:
    """Pack every render set of `ds` into shards under `out` (default data/shards/<dataset>)."""
    out = Path(out) if out is not None else ds.shard_dir()
    _refuse_foreign(out)
    sets = {name: read_rendered_set(ds.render_dir(name, renders_root), ds.name, name) for name in RENDER_SETS}
    total = sum(len(g.files) for per_split in sets.values() for groups in per_split.values() for g in groups)
    first = next((g.files[0] for per_split in sets.values() for groups in per_split.values() for g in groups), None)
    if first is None:
        raise ShardError(f"{ds.name}: every render set is empty; raise datasets.{ds.name}.groups and re-render")
    shape = read_image(first).shape

    # An unreadable PNG or a kill leaves no half-packed folder; `out` is replaced only when it is ours.
    with durable.building(out, MANIFEST, _listed, "shard") as tmp:
        manifest = _pack(ds, settings, sets, shape, total, tmp, workers, progress)
    return manifest


def _refuse_foreign(out: Path) -> None:
    """`out` is replaced as a whole: only when it is missing, empty, or a shard folder holding only what
    its manifest lists (checked before any work, and again before the replacement)."""
    durable.check_replaceable(out, MANIFEST, _listed, "shard")


def _listed(out: Path) -> list[str]:
    return [entry["path"] for entry in json.loads((out / MANIFEST).read_text())["shards"]]


def _pack(ds: DatasetConfig, settings: ShardSettings, sets: dict, shape: tuple[int, ...], total: int, tmp: Path,
          workers: int, progress: bool) -> Manifest:
    entries: list[ShardEntry] = []
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, \
            tqdm(total=total, unit="img", desc=f"shard {ds.name}", disable=not progress) as bar:
        for name, per_split in sets.items():
            for split in SPLITS:
                groups = per_split[split]
                if not groups:
                    continue
                steps = len(groups[0].files)
                per_shard = max(1, int(settings.max_mb * MB // (steps * int(np.prod(shape)))))
                for n, start in enumerate(range(0, len(groups), per_shard)):
                    chunk = groups[start:start + per_shard]
                    rel = f"{split}/{name}-{n:04d}.npz"
                    images = _read_chunk(pool, chunk, shape, bar)
                    path = tmp / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_npz(path, {"images": images,
                                     "labels": np.stack([g.labels for g in chunk]),
                                     "mesh": np.stack([g.mesh for g in chunk])})
                    entries.append(ShardEntry(rel, split, name, len(chunk), steps, path.stat().st_size, sha256(path)))
    manifest = Manifest(FORMAT, ds.name, (shape[0], shape[1]), 1 if len(shape) == 2 else shape[2],
                        FACTORS, RENDER_SETS, tuple(entries))
    _write_manifest(tmp / MANIFEST, manifest)
    return manifest


def _read_chunk(pool: ThreadPoolExecutor, chunk: Sequence[RenderedGroup], shape: tuple[int, ...],
                bar: tqdm) -> np.ndarray:
    steps = len(chunk[0].files)
    images = np.empty((len(chunk), steps) + tuple(shape), dtype=np.uint8)
    flat = images.reshape((-1,) + tuple(shape))
    files = [f for g in chunk for f in g.files]
    # cv2 releases the GIL while decoding, so threads decode PNGs in parallel.
    for i, image in enumerate(pool.map(read_image, files, chunksize=16)):
        if image.shape != shape:
            raise ShardError(f"{files[i]}: image is {image.shape}, others are {shape}; re-render the dataset "
                             "with one render.size and render.color")
        flat[i] = image
        bar.update()
    return images


def _write_manifest(path: Path, manifest: Manifest) -> None:
    durable.write_text(path, json.dumps(asdict(manifest), indent=1) + "\n")


def sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MB), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ reading shards


def read_manifest(shard_dir: Path | str) -> Manifest:
    shard_dir = Path(shard_dir)
    path = shard_dir / MANIFEST
    hint = f"run `python cli.py shard --dataset {shard_dir.name}`"
    if not path.is_file():
        raise ShardError(f"{path}: not found; {hint}")
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ShardError(f"{path}: is JSON but not a manifest (a {type(raw).__name__}, not an object); {hint}")
        if raw.get("format") != FORMAT:
            raise ShardError(f"{path}: format {raw.get('format')!r} is not {FORMAT}; {hint}")
        return Manifest(raw["format"], raw["dataset"], tuple(raw["image_size"]), int(raw["channels"]),
                        tuple(raw["factors"]), tuple(raw["sets"]),
                        tuple(ShardEntry(**s) for s in raw["shards"]))
    except (ValueError, KeyError, TypeError) as err:
        raise ShardError(f"{path}: unreadable manifest ({type(err).__name__}: {err}); {hint}") from None


def open_shard(shard_dir: Path | str, manifest: Manifest, entry: ShardEntry, verify: bool = True) -> Shard:
    """Memory-map one shard, checking size, layout and shapes (and its sha256 if `verify`)."""
    path = Path(shard_dir) / entry.path
    fix = f"rebuild with `python cli.py shard --dataset {manifest.dataset}`"
    if not path.is_file():
        raise ShardError(f"{path}: shard listed in the manifest is missing; {fix}")
    size = path.stat().st_size
    if size != entry.bytes:
        raise ShardError(f"{path}: shard is truncated or changed ({size} bytes, manifest says {entry.bytes}); {fix}")
    if verify and sha256(path) != entry.sha256:
        raise ShardError(f"{path}: shard checksum does not match the manifest (file corrupt or changed); {fix}")
    try:
        arrays = open_members(path)
    except NpzLayoutError as err:
        raise ShardError(f"{path}: not a readable shard ({err}); {fix}") from None
    h, w = manifest.image_size
    image_shape = (entry.groups, entry.steps, h, w) + (() if manifest.channels == 1 else (manifest.channels,))
    expected = {"images": (image_shape, np.uint8), "labels": ((entry.groups, entry.steps, len(manifest.factors)), np.float32),
                "mesh": ((entry.groups, entry.steps), np.int32)}
    for key, (shape, dtype) in expected.items():
        array = arrays.get(key)
        if array is None or array.shape != shape or array.dtype != dtype:
            got = "missing" if array is None else f"{array.dtype} {list(array.shape)}"
            raise ShardError(f"{path}: '{key}' is {got}, expected {np.dtype(dtype)} {list(shape)}; {fix}")
    return Shard(path, entry.split, entry.factor, arrays["images"], arrays["labels"], arrays["mesh"])


def verify_dir(shard_dir: Path | str) -> Manifest:
    """Check every shard listed in the manifest (checksums included). Raises ShardError."""
    manifest = read_manifest(shard_dir)
    for entry in manifest.shards:
        open_shard(shard_dir, manifest, entry, verify=True)
    return manifest


def iter_shards(shard_dir: Path | str, split: str | None = None, factor: str | None = None,
                verify: bool = True) -> Iterator[Shard]:
    manifest = read_manifest(shard_dir)
    for entry in manifest.select(split, factor):
        yield open_shard(shard_dir, manifest, entry, verify)
