"""Packing renders into factor-grouped shards, the manifest that lists them, and verifying them.

Layout of `data/shards/<dataset>/`:
    manifest.json                {"format", "dataset", "image_size": [H, W], "channels", "factors",
                                  "sets", "shards": [{"path", "split", "factor", "groups", "steps",
                                  "bytes", "sha256"}]}
    train/<set>-NNNN.npz         one set (sweep type or iid) per shard:
    test/<set>-NNNN.npz            images uint8 [groups, steps, H, W(, 3)], labels float32
                                   [groups, steps, F] (the dataset's F factors, in the manifest's
                                   `factors` order), mesh int32 [groups, steps]

With ground-truth passes (`render.passes`, docs/passes.md: the render sets hold `cameras.json`), the
manifest gains `"passes": [...]` (order depth, normal, mask) and every shard gains, per enabled pass,
    depth float32 [groups, steps, H, W]      distance along the view axis, 0 on the background
    normal float32 [groups, steps, H, W, 3]  unit normal in the camera frame (OpenCV), 0 on the background
    mask uint8 [groups, steps, H, W]         1 on the object, 0 elsewhere
and the cameras of its frames, K float32 [groups, steps, 3, 3] and world_to_camera float32
[groups, steps, 4, 4]. Without passes neither the manifest nor the shards change by a byte.

Shards are stored npz files (see `pipeline.npzfile`), byte-identical for identical renders, at most
`shard.max_mb` of data each (images, plus passes and cameras when on; at least one group). The folder
is built under a temporary sibling and renamed into place, so it is complete or absent.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

import durable
from config import PASSES, SPLITS, DatasetConfig, ShardSettings, UserError
from pipeline.npzfile import NpzLayoutError, open_members, write_npz
from render.cameras import CAMERAS_FILE
from render.plan import LABEL_COLUMNS, PASS_SUFFIXES

FORMAT = 1
MANIFEST = "manifest.json"
LABELS = "labels.csv"
MB = 2**20
PASS_LAYOUT = {"depth": ((), np.float32), "normal": ((3,), np.float32), "mask": ((), np.uint8)}
"""Per pixel of each pass: its trailing axes and dtype (a pass is [H, W, *axes])."""
CAMERA_LAYOUT = {"K": (3, 3), "world_to_camera": (4, 4)}
"""Per frame, float32: the camera arrays a shard holds when passes are on."""


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
    passes: tuple[str, ...] = ()
    """Ground-truth passes the shards hold (PASSES order); written to manifest.json only when non-empty."""

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
    passes: dict[str, np.ndarray] = field(default_factory=dict)
    """Memory maps of the enabled passes and the cameras (`K`, `world_to_camera`); empty without passes."""

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
    labels: np.ndarray  # float32 [steps, F], the dataset's factor order
    mesh: np.ndarray  # int32 [steps]
    cameras: dict[str, np.ndarray] = field(default_factory=dict)
    """With passes: `K` float32 [steps, 3, 3], `world_to_camera` float32 [steps, 4, 4] (cameras.json)."""


def read_rendered_set(render_dir: Path, dataset: str, name: str,
                      factors: Sequence[str]) -> dict[str, list[RenderedGroup]]:
    """The groups of one finished render set per split, in group order, with the values of `factors` as
    labels (in that order). Raises ShardError."""
    labels_path = render_dir / LABELS
    if not labels_path.is_file():
        raise ShardError(f"{render_dir}: renders of set '{name}' are missing or unfinished (no {LABELS}); "
                         f"run `python cli.py render --factor {name} --dataset {dataset}`")
    rows: dict[str, dict[int, list[tuple[int, str, int, tuple[float, ...]]]]] = {s: {} for s in SPLITS}
    try:
        with open(labels_path, newline="") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])[len(LABEL_COLUMNS):]
            if columns != list(factors):
                raise ShardError(f"{labels_path}: labels factors {columns} but datasets.{dataset}.factors declares "
                                 f"{list(factors)}; re-render with `python cli.py render --factor {name} --dataset {dataset}`")
            for line, row in enumerate(reader, start=2):
                split = row["split"]
                if split not in rows:
                    raise ValueError(f"line {line}: unknown split '{split}'")
                angles = tuple(float(row[k]) for k in factors)
                rows[split].setdefault(int(row["group"]), []).append(
                    (int(row["index"]), row["file"], int(row["mesh"]), angles))
    except (KeyError, ValueError, TypeError) as err:
        raise ShardError(f"{labels_path}: unreadable ({err}); re-render with "
                         f"`python cli.py render --factor {name} --dataset {dataset}`") from None
    cameras = read_cameras(render_dir, dataset, name)[1]
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
                mesh=np.array([fr[2] for fr in frames], dtype=np.int32),
                cameras=_group_cameras(cameras, [fr[1] for fr in frames], render_dir, dataset, name)))
        steps = {len(g.files) for g in out[split]}
        if len(steps) > 1:
            raise ShardError(f"{labels_path}: {split} groups have different lengths {sorted(steps)}; re-render the set")
    return out


def read_cameras(render_dir: Path, dataset: str, name: str) -> tuple[tuple[str, ...], dict[str, tuple]]:
    """A set's passes and per-file cameras from its cameras.json (K, world_to_camera as float64
    arrays); ((), {}) for a set rendered without passes (it has no cameras.json)."""
    path = render_dir / CAMERAS_FILE
    if not path.is_file():
        return (), {}
    try:
        raw = json.loads(path.read_text())
        passes = tuple(raw["passes"])
        if not passes or any(p not in PASSES for p in passes):
            raise ValueError(f"passes {list(passes)} are not a list drawn from {list(PASSES)}")
        cameras = {str(f["file"]): (np.array(f["K"], dtype=np.float64).reshape(3, 3),
                                    np.array(f["world_to_camera"], dtype=np.float64).reshape(4, 4))
                   for f in raw["frames"]}
    except (ValueError, KeyError, TypeError) as err:
        raise ShardError(f"{path}: unreadable ({type(err).__name__}: {err}); re-render with "
                         f"`python cli.py render --factor {name} --dataset {dataset}`") from None
    return tuple(p for p in PASSES if p in passes), cameras


def _group_cameras(cameras: dict[str, tuple], files: list[str], render_dir: Path, dataset: str,
                   name: str) -> dict[str, np.ndarray]:
    if not cameras:
        return {}
    missing = [f for f in files if f not in cameras]
    if missing:
        raise ShardError(f"{render_dir / CAMERAS_FILE}: no camera for {missing[0]}; re-render with "
                         f"`python cli.py render --factor {name} --dataset {dataset}`")
    return {"K": np.stack([cameras[f][0] for f in files]).astype(np.float32),
            "world_to_camera": np.stack([cameras[f][1] for f in files]).astype(np.float32)}


def pass_path(png: Path, name: str) -> Path:
    """The file of pass `name` beside a frame's PNG (render.plan.Frame.pass_file)."""
    return png.with_name(png.name.removesuffix(".png") + PASS_SUFFIXES[name])


def read_pass(path: Path, name: str, shape: tuple[int, int]) -> np.ndarray:
    """One frame's pass as the shard stores it: depth f32 [H, W], normal f32 [H, W, 3], mask u8 [H, W] 0/1."""
    axes, dtype = PASS_LAYOUT[name]
    expected = (shape + axes, dtype)
    if name == "mask":
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        array = None if image is None else (image > 127).astype(np.uint8)  # stored 0/255, viewable
    else:
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            array = None
    if array is None:
        raise ShardError(f"{path}: {name} pass missing or unreadable; re-render its set")
    if array.shape != expected[0] or array.dtype != expected[1]:
        raise ShardError(f"{path}: {name} pass is {array.dtype} {list(array.shape)}, expected "
                         f"{np.dtype(expected[1])} {list(expected[0])}; re-render its set")
    return array


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
    sets = {name: read_rendered_set(ds.render_dir(name, renders_root), ds.name, name, ds.factor_names)
            for name in ds.render_sets}
    total = sum(len(g.files) for per_split in sets.values() for groups in per_split.values() for g in groups)
    first = next((g.files[0] for per_split in sets.values() for groups in per_split.values() for g in groups), None)
    if first is None:
        raise ShardError(f"{ds.name}: every render set is empty; raise datasets.{ds.name}.groups and re-render")
    shape = read_image(first).shape
    passes = _common_passes(ds, renders_root)

    # An unreadable PNG or a kill leaves no half-packed folder; `out` is replaced only when it is ours.
    with durable.building(out, MANIFEST, _listed, "shard") as tmp:
        manifest = _pack(ds, settings, sets, shape, passes, total, tmp, workers, progress)
    return manifest


def _common_passes(ds: DatasetConfig, renders_root: Path | str) -> tuple[str, ...]:
    """The passes every render set of `ds` holds: one shard folder has one layout."""
    found = {name: read_cameras(ds.render_dir(name, renders_root), ds.name, name)[0] for name in ds.render_sets}
    if len(set(found.values())) > 1:
        listing = "; ".join(f"{name}: {', '.join(p) or 'none'}" for name, p in found.items())
        raise ShardError(f"{ds.name}: render sets were rendered with different render.passes ({listing}); "
                         "re-render them all with one render.passes")
    return next(iter(found.values()))


def _refuse_foreign(out: Path) -> None:
    """`out` is replaced as a whole: only when it is missing, empty, or a shard folder holding only what
    its manifest lists (checked before any work, and again before the replacement)."""
    durable.check_replaceable(out, MANIFEST, _listed, "shard")


def _listed(out: Path) -> list[str]:
    return [entry["path"] for entry in json.loads((out / MANIFEST).read_text())["shards"]]


def _pack(ds: DatasetConfig, settings: ShardSettings, sets: dict, shape: tuple[int, ...], passes: tuple[str, ...],
          total: int, tmp: Path, workers: int, progress: bool) -> Manifest:
    entries: list[ShardEntry] = []
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, \
            tqdm(total=total, unit="img", desc=f"shard {ds.name}", disable=not progress) as bar:
        for name, per_split in sets.items():
            for split in SPLITS:
                groups = per_split[split]
                if not groups:
                    continue
                steps = len(groups[0].files)
                per_shard = max(1, int(settings.max_mb * MB // (steps * _frame_bytes(shape, passes))))
                for n, start in enumerate(range(0, len(groups), per_shard)):
                    chunk = groups[start:start + per_shard]
                    rel = f"{split}/{name}-{n:04d}.npz"
                    images = _read_chunk(pool, chunk, shape, bar)
                    path = tmp / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    # Without passes: exactly the three members shards always had, so their bytes stay.
                    write_npz(path, {"images": images,
                                     "labels": np.stack([g.labels for g in chunk]),
                                     "mesh": np.stack([g.mesh for g in chunk]),
                                     **_read_passes(pool, chunk, shape[:2], passes)})
                    entries.append(ShardEntry(rel, split, name, len(chunk), steps, path.stat().st_size, sha256(path)))
    manifest = Manifest(FORMAT, ds.name, (shape[0], shape[1]), 1 if len(shape) == 2 else shape[2],
                        ds.factor_names, ds.render_sets, tuple(entries), passes)
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


def _frame_bytes(shape: tuple[int, ...], passes: tuple[str, ...]) -> int:
    """Bytes one frame takes in a shard (for `shard.max_mb`): its image, plus its passes and camera."""
    pixels = shape[0] * shape[1]
    extra = sum(int(np.prod(PASS_LAYOUT[p][0])) * np.dtype(PASS_LAYOUT[p][1]).itemsize for p in passes) * pixels
    cameras = sum(4 * int(np.prod(s)) for s in CAMERA_LAYOUT.values()) if passes else 0
    return int(np.prod(shape)) + extra + cameras


def _read_passes(pool: ThreadPoolExecutor, chunk: Sequence[RenderedGroup], hw: tuple[int, int],
                 passes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The chunk's pass arrays [G, K, ...] in PASSES order, then its cameras; {} without passes."""
    if not passes:
        return {}
    files = [f for g in chunk for f in g.files]
    lead = (len(chunk), len(chunk[0].files))
    arrays = {}
    for name in passes:
        frames = list(pool.map(lambda f: read_pass(pass_path(f, name), name, hw), files, chunksize=16))
        arrays[name] = np.stack(frames).reshape(lead + frames[0].shape)
    for key in CAMERA_LAYOUT:
        arrays[key] = np.stack([g.cameras[key] for g in chunk])
    return arrays


def _write_manifest(path: Path, manifest: Manifest) -> None:
    record = asdict(manifest)
    if not manifest.passes:
        del record["passes"]  # a manifest without passes keeps the bytes it had before passes existed
    durable.write_text(path, json.dumps(record, indent=1) + "\n")


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
        passes = tuple(raw.get("passes", ()))
        if any(p not in PASSES for p in passes):
            raise ValueError(f"passes {list(passes)} are not drawn from {list(PASSES)}")
        return Manifest(raw["format"], raw["dataset"], tuple(raw["image_size"]), int(raw["channels"]),
                        tuple(raw["factors"]), tuple(raw["sets"]),
                        tuple(ShardEntry(**s) for s in raw["shards"]), passes)
    except (ValueError, KeyError, TypeError) as err:
        raise ShardError(f"{path}: unreadable manifest ({type(err).__name__}: {err}); {hint}") from None


def check_declared(manifest: Manifest, ds: DatasetConfig, shard_dir: Path | str) -> None:
    """The shards hold the factors `ds` declares, in its order (labels are read by column)."""
    if manifest.factors != ds.factor_names:
        raise ShardError(f"{shard_dir}: shards label the factors {list(manifest.factors)}, but datasets.{ds.name}.factors "
                         f"declares {list(ds.factor_names)}; rebuild them with `python cli.py render --factor all "
                         f"--dataset {ds.name}` and `python cli.py shard --dataset {ds.name}`")


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
    lead = (entry.groups, entry.steps)
    expected = {"images": (image_shape, np.uint8), "labels": (lead + (len(manifest.factors),), np.float32),
                "mesh": (lead, np.int32)}
    extra = {name: (lead + (h, w) + PASS_LAYOUT[name][0], PASS_LAYOUT[name][1]) for name in manifest.passes}
    if manifest.passes:
        extra |= {key: (lead + shape, np.float32) for key, shape in CAMERA_LAYOUT.items()}
    expected |= extra
    for key, (shape, dtype) in expected.items():
        array = arrays.get(key)
        if array is None or array.shape != shape or array.dtype != dtype:
            got = "missing" if array is None else f"{array.dtype} {list(array.shape)}"
            raise ShardError(f"{path}: '{key}' is {got}, expected {np.dtype(dtype)} {list(shape)}; {fix}")
    return Shard(path, entry.split, entry.factor, arrays["images"], arrays["labels"], arrays["mesh"],
                 {key: arrays[key] for key in extra})


def verify_dir(shard_dir: Path | str) -> Manifest:
    """Check every shard listed in the manifest (checksums included). Raises ShardError."""
    manifest = read_manifest(shard_dir)
    for entry in manifest.shards:
        open_shard(shard_dir, manifest, entry, verify=True)
    return manifest


def iter_shards(shard_dir: Path | str, split: str | None = None, factor: str | None = None,
                verify: bool = True, manifest: Manifest | None = None) -> Iterator[Shard]:
    """The shards of `split` and set `factor` (None: all), opened; `manifest`: the folder's, if already read."""
    manifest = manifest or read_manifest(shard_dir)
    for entry in manifest.select(split, factor):
        yield open_shard(shard_dir, manifest, entry, verify)
