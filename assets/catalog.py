"""A dataset's meshes on disk: building them (generator or user folder) and finding them again.

Layout of `data/meshes/<dataset>/`:
    index.json   {"format": 2, "dataset", "source", "fingerprint",
                  "meshes": [{"id", "file", "split", "params", "turn_order"}]}
    0000.ply ... one binary PLY per mesh (see `assets.mesh`)

Mesh ids are 0..N-1; the first ones are train meshes, the rest test meshes, so a test mesh can
never appear in a train sweep (the plan draws each split's meshes from its own id list).
The folder is written to a temporary sibling and renamed into place: it is complete or absent.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

import durable
from assets.mesh import Mesh, MeshError, read_ply, write_ply
from assets.symmetry import turn_order
from config import ConfigError, DatasetConfig, MeshSource, UserError

INDEX = "index.json"
FORMAT = 2
"""2: every entry records its `turn_order`."""
GENERATORS = ("faces", "chairs")


@dataclass(frozen=True)
class MeshEntry:
    id: int
    file: str
    split: str
    params: dict
    turn_order: int = 1
    """`assets.symmetry.turn_order`: n when a turn of 360/n degrees about the up axis maps the mesh
    onto itself (a round stool on three legs: 3), else 1. Camera-azimuth sweeps skip meshes whose
    turn is shorter than their range (`render.plan`)."""


class MeshCatalog:
    def __init__(self, root: Path, entries: Sequence[MeshEntry], fingerprint: str = ""):
        self.root = Path(root)
        self.entries = list(entries)
        self.fingerprint = fingerprint

    def __len__(self) -> int:
        return len(self.entries)

    def ids(self, split: str) -> list[int]:
        return [e.id for e in self.entries if e.split == split]

    def turn_orders(self) -> dict[int, int]:
        """Mesh id -> turn order, for the meshes that have a symmetric turn."""
        return {e.id: e.turn_order for e in self.entries if e.turn_order > 1}

    def path(self, mesh_id: int) -> Path:
        return self.root / self.entries[mesh_id].file

    def load(self, mesh_id: int) -> Mesh:
        return read_ply(self.path(mesh_id))


def split_counts(ds: DatasetConfig, count: int | None) -> tuple[int, int]:
    """(train, test) mesh counts; `count` overrides the total and keeps the test fraction."""
    train, test = ds.meshes.train, ds.meshes.test
    if count is None:
        return train, test
    if count < 1:
        raise ConfigError(f"--count is {count}; ask for at least 1 mesh")
    n_test = 0 if count == 1 else max(1, round(count * test / (train + test)))
    return count - n_test, n_test


def source_record(source: MeshSource) -> dict:
    """The source's settings as the index and the fingerprint record them. Options added later are left
    out at their default, so a folder built before they existed stays current (and byte-identical)."""
    record = asdict(source)
    for name, default in LATER_DEFAULTS.items():
        if record.get(name) == default:
            del record[name]
    return record


LATER_DEFAULTS = {"framing": "object"}


def fingerprint(ds: DatasetConfig, seed: int, count: int | None) -> str:
    """Identifies what a mesh folder was built from, so a stale folder is rebuilt, not reused."""
    key = {"source": source_record(ds.source), "counts": split_counts(ds, count), "seed": seed, "format": FORMAT}
    if ds.source.kind == "folder":
        from assets.userfiles import folder_digest

        key["files"] = folder_digest(ds.source)  # edited user files must rebuild the folder
    else:
        key["code"] = _generator_digest(ds.generator)  # a changed generator must rebuild the folder
    key["symmetry"] = _digest("symmetry.py")  # a changed symmetry test must rebuild the index
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def build_meshes(ds: DatasetConfig, seed: int, out: Path | str, count: int | None = None) -> MeshCatalog:
    """Write the dataset's meshes to `out`, unless `out` already holds exactly these meshes."""
    out = Path(out)
    fp = fingerprint(ds, seed, count)
    existing = _try_open(out)
    if existing is not None and existing.fingerprint == fp:
        return existing
    durable.check_replaceable(out, INDEX, _listed, "assets")
    n_train, n_test = split_counts(ds, count)
    if ds.source.kind == "generator":
        meshes, params = _generate(ds, seed, n_train + n_test)
        splits = ["train"] * n_train + ["test"] * n_test
    else:
        from assets.userfiles import load_folder

        meshes, params, splits = load_folder(ds, seed, n_train, n_test)

    with durable.building(out, INDEX, _listed, "assets") as tmp:
        entries = []
        for i, (mesh, p, split) in enumerate(zip(meshes, params, splits)):
            name = f"{i:04d}.ply"
            write_ply(tmp / name, mesh)
            entries.append(MeshEntry(i, name, split, p, turn_order(mesh)))
        index = {"format": FORMAT, "dataset": ds.name, "source": source_record(ds.source), "fingerprint": fp,
                 "meshes": [asdict(e) for e in entries]}
        (tmp / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return MeshCatalog(out, entries, fp)


def _listed(out: Path) -> list[str]:
    return [entry["file"] for entry in json.loads((out / INDEX).read_text())["meshes"]]


def open_catalog(root: Path | str, dataset: str = "") -> MeshCatalog:
    root = Path(root)
    catalog = _try_open(root)
    if catalog is None:
        hint = f" --dataset {dataset}" if dataset else ""
        raise MeshError(f"mesh folder {root} is missing or has no {INDEX}; run `python cli.py assets{hint}` first")
    return catalog


def ensure_meshes(ds: DatasetConfig, seed: int, root: Path | str | None = None) -> MeshCatalog:
    """The dataset's meshes, building them first if the folder is missing or stale."""
    return build_meshes(ds, seed, root or ds.mesh_dir())


def meshes_current(ds: DatasetConfig, seed: int, root: Path | str | None = None) -> bool:
    """Whether `ensure_meshes` would use the folder as it is (build nothing)."""
    existing = _try_open(Path(root or ds.mesh_dir()))
    return existing is not None and existing.fingerprint == fingerprint(ds, seed, None)


def _try_open(root: Path) -> MeshCatalog | None:
    try:
        index = json.loads((root / INDEX).read_text())
        entries = [MeshEntry(**e) for e in index["meshes"]]
        return MeshCatalog(root, entries, index.get("fingerprint", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _generator_digest(name: str) -> str:
    return _digest(f"{name}.py", "geometry.py", "mesh.py")


def _digest(*files: str) -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in files:
        if (here / f).is_file():
            h.update((here / f).read_bytes())
    return h.hexdigest()[:16]


def _generate(ds: DatasetConfig, seed: int, count: int) -> tuple[list[Mesh], list[dict]]:
    name = ds.generator
    if name not in GENERATORS:
        raise ConfigError(f"datasets.{ds.name}.source.generator: is '{name}'; choose one of: {', '.join(GENERATORS)}, "
                          "or use kind: folder")
    gen = importlib.import_module(f"assets.{name}")
    meshes, params = [], []
    for i in tqdm(range(count), desc=f"{ds.name} meshes", unit="mesh", leave=False, disable=count < 20):
        # One stream per mesh: mesh i is the same whatever the total count.
        rng = np.random.default_rng([seed, i])
        p = gen.sample(rng)
        meshes.append(gen.build(p))
        params.append(p)
    return meshes, params


__all__ = ["MeshCatalog", "MeshEntry", "build_meshes", "open_catalog", "ensure_meshes", "split_counts", "UserError"]
