"""Which images to render: a pure, seeded function of the parameters (no Blender here).

A *sweep* is one group of K frames in which exactly one thing varies:
- factor sweeps (one per factor the dataset declares, e.g. azimuth, elevation, light): that factor
  takes K values spread over its range (evenly spaced, both ends included except for a full turn of
  a periodic kind, whose end repeats its start; or sorted uniform draws with `spacing: random`); every
  other factor and the mesh are drawn once for the whole sweep, each from its own range;
  A camera-azimuth sweep never takes a mesh that looks the same after a turn within its range (a round
  stool on three legs: 120 degrees; `distinct_views`): no picture of it shows the azimuth;
- intrinsic sweeps: K different meshes under one pose and light drawn once for the sweep;
- the iid set: every frame draws every factor and its mesh independently; frames are stored in
  groups of `iid.group_size` only for packing.

Each (dataset, set, split) has its own random stream derived from the seed and those names, so
changing the number of light sweeps never changes an azimuth sweep, and train sweeps draw train
meshes only, test sweeps test meshes only. Angles are rounded to 1e-4 degrees so that labels
survive a text round trip exactly. A frame's values follow the dataset's factor order.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

import factors as vocabulary
from assets.symmetry import ambiguous_turn
from config import INTRINSIC, IID, SPLITS, ConfigError, DatasetConfig, check_factor, check_steps

ANGLE_DECIMALS = 4
LABEL_COLUMNS = ("file", "split", "group", "index", "mesh")
"""The first columns of a set's labels.csv; one column per declared factor follows, in the dataset's order."""
PASS_SUFFIXES = {"depth": ".depth.npy", "normal": ".normal.npy", "mask": ".mask.png"}
"""File name endings of the ground-truth passes (`render.passes`, docs/passes.md)."""


@dataclass(frozen=True)
class Frame:
    split: str
    group: int
    index: int
    mesh: int
    values: tuple[float, ...]
    """One value per factor the dataset declares, in its factor order (degrees for angles)."""

    @property
    def file(self) -> str:
        """Path of the frame's PNG relative to the set's render folder."""
        return f"{self.split}/{self.group:05d}_{self.index:03d}.png"

    def pass_file(self, name: str) -> str:
        """Path of the frame's ground-truth pass `name` (config.PASSES), beside its PNG."""
        return self.file.removesuffix(".png") + PASS_SUFFIXES[name]

    def key(self) -> tuple:
        """The frame as `.plan.json`'s key hashes it: (split, group, index, mesh, *values)."""
        return (self.split, self.group, self.index, self.mesh, *self.values)


@dataclass(frozen=True)
class Sweep:
    """One render job: frames rendered in order by one worker (one mesh for factor sweeps)."""

    dataset: str
    factor: str
    split: str
    group: int
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan for one (dataset, factor): parameters plus the CLI's overrides."""

    dataset: DatasetConfig
    factor: str
    seed: int
    train_meshes: Sequence[int]
    test_meshes: Sequence[int]
    groups: int | None = None
    """Training sweeps (iid: training groups); None = from params."""
    steps: int | None = None
    value_range: tuple[float, float] | None = None
    """Override of the active factor's range (factor sweeps only)."""
    turn_orders: Mapping[int, int] | None = None
    """Mesh id -> `assets.symmetry.turn_order` for meshes with a symmetric turn (the catalog's
    `turn_orders()`); camera-azimuth sweeps leave out those whose turn is shorter than the range."""


def plan(req: PlanRequest) -> list[Sweep]:
    """All sweeps for one dataset and factor, train split first. Deterministic in `req`."""
    ds = req.dataset
    factor = check_factor(req.factor, ds.render_sets)
    steps = ds.steps if req.steps is None else req.steps
    check_steps(steps, "--steps")
    ranges = dict(ds.ranges)
    if req.value_range is not None:
        if factor not in ds.factors:
            raise ConfigError(f"--range applies to {', '.join(ds.factors)} sweeps, not to '{factor}'")
        vocabulary.check_range(ds.factors[factor], *req.value_range, "--range", ConfigError)
        ranges[factor] = tuple(float(v) for v in req.value_range)
    meshes = {"train": list(req.train_meshes), "test": list(req.test_meshes)}
    if factor in ds.factors:
        meshes = {split: distinct_views(ds, factor, ranges[factor], ids, req.turn_orders or {})
                  for split, ids in meshes.items()}

    sweeps: list[Sweep] = []
    for split in SPLITS:
        count = _count(req, split)
        if count == 0:
            continue
        if not meshes[split]:
            if req.turn_orders and (req.train_meshes if split == "train" else req.test_meshes):
                raise ConfigError(f"every {split} mesh of '{ds.name}' looks the same after a turn shorter than the "
                                  f"{factor} range {ranges[factor][0]:g}..{ranges[factor][1]:g}, so no picture shows "
                                  f"its {factor}; narrow datasets.{ds.name}.ranges.{factor} or add meshes that are not "
                                  "turn-symmetric")
            raise ConfigError(f"dataset '{ds.name}' has no {split} meshes; raise datasets.{ds.name}.meshes.{split}")
        rng = np.random.default_rng(_stream(req.seed, ds.name, factor, split))
        if factor == IID:
            sweeps += _iid(ds, split, count, ranges, meshes[split], rng)
        else:
            for g in range(count):
                sweeps.append(_sweep(ds, factor, split, g, steps, ranges, meshes[split], rng))
    return sweeps


def distinct_views(ds: DatasetConfig, factor: str, value_range: tuple[float, float], meshes: Sequence[int],
                   turn_orders: Mapping[int, int]) -> list[int]:
    """The meshes whose pictures tell every value of `factor` in `value_range` apart, for sweeps of it.

    Only a camera azimuth can be hidden by the mesh: a mesh that maps onto itself under a turn of 360/n
    degrees shows the same picture at azimuths that far apart, when the light turns with the camera
    (`light.frame: camera`). With the light fixed to the object the shading still tells them apart."""
    if ds.factors[factor] != "camera_azimuth" or ds.light.frame != "camera":
        return list(meshes)
    width = value_range[1] - value_range[0]
    return [m for m in meshes if not ambiguous_turn(turn_orders.get(m, 1), width)]


def frames_of(sweeps: Sequence[Sweep]) -> list[Frame]:
    return [f for s in sweeps for f in s.frames]


def _count(req: PlanRequest, split: str) -> int:
    ds = req.dataset
    if req.factor == IID:
        if split == "train":
            return ds.iid.train if req.groups is None else req.groups
        return ds.iid.test
    if split == "train":
        return ds.groups[req.factor] if req.groups is None else req.groups
    return ds.test_groups


def _stream(seed: int, *names: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed] + [zlib.crc32(n.encode()) for n in names])


def _draw(rng: np.random.Generator, lo: float, hi: float, size: int | None = None):
    return rng.uniform(lo, hi, size)


def _sweep(ds: DatasetConfig, factor: str, split: str, group: int, steps: int,
           ranges: dict, meshes: list[int], rng: np.random.Generator) -> Sweep:
    # Draw every fixed factor and the mesh first, in a fixed order, so each sweep consumes the
    # same amount of randomness whatever its type.
    fixed = {f: _draw(rng, *ranges[f]) for f in ds.factors}
    if factor == INTRINSIC:
        replace = len(meshes) < steps
        mesh_ids = rng.choice(meshes, size=steps, replace=replace)
        if len(set(mesh_ids.tolist())) < 2:
            if len(set(meshes)) < 2:
                raise ConfigError(f"an intrinsic sweep needs at least 2 distinct {split} meshes; "
                                  f"raise datasets.{ds.name}.meshes.{split}")
            # Drawn with replacement from few meshes, every draw hit one mesh: the last frame takes another
            # (only such sweeps draw this extra number, so every other sweep stays as it was).
            others = [m for m in meshes if m != mesh_ids[0]]
            mesh_ids[-1] = others[int(rng.integers(len(others)))]
        values = [fixed] * steps
    else:
        mesh_ids = np.full(steps, rng.choice(meshes))
        lo, hi = ranges[factor]
        if ds.spacing == "even":
            # A full turn (chairs: -180..180) would render its first view twice: leave out the end.
            active = np.linspace(lo, hi, steps, endpoint=not vocabulary.full_turn(ds.factors[factor], lo, hi))
        else:
            active = np.sort(_draw(rng, lo, hi, steps))
        values = [{**fixed, factor: a} for a in active]
    frames = tuple(
        Frame(split, group, i, int(m), tuple(_round(v[f]) for f in ds.factors))
        for i, (m, v) in enumerate(zip(mesh_ids, values))
    )
    return Sweep(ds.name, factor, split, group, frames)


def _iid(ds: DatasetConfig, split: str, groups: int, ranges: dict,
         meshes: list[int], rng: np.random.Generator) -> list[Sweep]:
    group_size = ds.iid.group_size
    count = groups * group_size
    values = np.stack([_draw(rng, *ranges[f], count) for f in ds.factors], axis=1)
    mesh_ids = rng.choice(meshes, size=count)
    sweeps = []
    for g in range(groups):
        idx = range(g * group_size, (g + 1) * group_size)
        frames = tuple(Frame(split, g, i % group_size, int(mesh_ids[i]), tuple(map(_round, values[i]))) for i in idx)
        sweeps.append(Sweep(ds.name, IID, split, g, frames))
    return sweeps


def _round(x: float) -> float:
    # +0.0 turns a rounded -0.0 into 0.0 so labels print the same way everywhere.
    return round(float(x), ANGLE_DECIMALS) + 0.0
