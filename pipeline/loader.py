"""Reading shards for training and evaluation: memory-mapped arrays, sweep batches, image batches.

- `open_split(dir, split)`      every shard of a split, memory-mapped (`SplitArrays`);
- `SweepSampler(dir, mix=...)`  DC-IGN: endless mini-batches that are one sweep each, sweep types
                                drawn by the mix ratio (the paper: about 1:1:1:10);
- `ImageBatches(dir, batch_size=...)`  the entangled baseline: endless shuffled single images.

Ground-truth passes (shards packed from renders with `render.passes`, docs/passes.md): a split's
`passes(factor)` returns them stacked in the order of `all_images(factor)`, and `sweep_passes(factor)`
yields them sweep by sweep in the order of `sweeps(factor)`, as dicts with a key per enabled pass
(`depth` f32 [..., H, W], `normal` f32 [..., H, W, 3], `mask` u8 [..., H, W] 0/1) plus the frames'
cameras (`K` f32 [..., 3, 3], `world_to_camera` f32 [..., 4, 4]); both are empty dicts for shards
without passes. `pass_names` lists the enabled passes.

Both iterators are deterministic in (seed, step): batch n is the same whether the run started at 0
or resumed from `load_state_dict({"step": n, ...})`, so a resumed training run sees the same stream.
Nothing is read until a batch needs it, so a dataset larger than RAM trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple

import numpy as np
import torch

from config import IID, PASSES, ConfigError
from pipeline.shards import Shard, iter_shards, read_manifest


class SweepBatch(NamedTuple):
    images: torch.Tensor  # float32 [K, C, H, W] in [0, 1]
    labels: torch.Tensor  # float32 [K, F], the manifest's factor order
    mesh: torch.Tensor  # int64 [K]
    factor: str


class ImageBatch(NamedTuple):
    images: torch.Tensor  # float32 [B, C, H, W] in [0, 1]
    labels: torch.Tensor  # float32 [B, F]
    mesh: torch.Tensor  # int64 [B]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] or [N, H, W, C] -> float32 [N, C, H, W] in [0, 1]."""
    # One numpy pass (uint8 -> scaled float32) copies out of the read-only memory map; torch's
    # intra-op thread pool costs more than it saves on arrays this small.
    t = torch.from_numpy(np.divide(images, np.float32(255), dtype=np.float32))
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


# ------------------------------------------------------------------------------ split arrays


@dataclass
class SplitArrays:
    """The shards of one split, memory-mapped; arrays are read only when indexed."""

    shards: list[Shard]
    label_names: tuple[str, ...] = ()
    """The factors of the label columns, in order (the manifest's `factors`)."""
    set_names: tuple[str, ...] = ()
    """Every set the dataset has (the manifest's `sets`: its factors, intrinsic, iid)."""

    def factors(self) -> list[str]:
        """The sets present in this split, in the manifest's order."""
        return [f for f in self.set_names if any(s.factor == f for s in self.shards)]

    def column(self, factor: str) -> int:
        """Column of `factor` in the label arrays."""
        return self.label_names.index(factor)

    def count(self, factor: str) -> int:
        """Number of sweeps (groups) of one set."""
        return sum(s.groups for s in self.shards if s.factor == factor)

    def sweeps(self, factor: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each sweep of `factor`: (images uint8 [K, H, W(, C)], labels f32 [K, F], mesh i32 [K])."""
        for shard in self.shards:
            if shard.factor == factor:
                for g in range(shard.groups):
                    yield np.array(shard.images[g]), np.array(shard.labels[g]), np.array(shard.mesh[g])

    @property
    def pass_names(self) -> tuple[str, ...]:
        """The ground-truth passes these shards hold (PASSES order); () without passes."""
        return tuple(p for p in PASSES if self.shards and p in self.shards[0].passes)

    def sweep_passes(self, factor: str) -> Iterator[dict[str, np.ndarray]]:
        """Each sweep's passes and cameras ([K, ...] arrays), aligned with `sweeps(factor)`."""
        for shard in self.shards:
            if shard.factor == factor:
                for g in range(shard.groups):
                    yield {key: np.array(array[g]) for key, array in shard.passes.items()}

    def passes(self, factor: str | None = None) -> dict[str, np.ndarray]:
        """Every image's passes and cameras ([N, ...] arrays), aligned with `all_images(factor)`."""
        chosen = self._chosen(factor)
        return {key: np.concatenate([_flat(s.passes[key]) for s in chosen]) for key in chosen[0].passes}

    def _chosen(self, factor: str | None) -> list[Shard]:
        chosen = [s for s in self.shards if factor in (None, s.factor)]
        if not chosen:
            raise ConfigError(f"no {factor or ''} shards in this split; sets present: {', '.join(self.factors()) or 'none'}")
        return chosen

    def all_images(self, factor: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every image of one set (or of all sets), stacked: images [N, H, W(, C)], labels [N, F], mesh [N]."""
        chosen = self._chosen(factor)
        return (np.concatenate([_flat(s.images) for s in chosen]),
                np.concatenate([_flat(s.labels) for s in chosen]),
                np.concatenate([_flat(s.mesh) for s in chosen]))


def _flat(array: np.ndarray) -> np.ndarray:
    """[groups, steps, ...] -> [groups * steps, ...] (read from the memory map)."""
    return np.asarray(array).reshape((-1,) + array.shape[2:])


def open_split(shard_dir: Path | str, split: str, factor: str | None = None, verify: bool = True) -> SplitArrays:
    """Open (and with `verify`, checksum) the shards of `split`, optionally of one set only."""
    manifest = read_manifest(shard_dir)
    return SplitArrays(list(iter_shards(shard_dir, split, factor, verify, manifest)), manifest.factors, manifest.sets)


# ------------------------------------------------------------------------------ sweep sampler


class _Resumable:
    """Streams whose batch n depends only on (seed, n): the state is the step counter."""

    seed: int
    step: int

    def state_dict(self) -> dict:
        return {"seed": self.seed, "step": self.step}

    def load_state_dict(self, state: Mapping) -> None:
        if int(state["seed"]) != self.seed:
            raise ConfigError(f"loader state was saved with seed {state['seed']}, this loader has seed {self.seed}; "
                              "resume with the same seed")
        self.step = int(state["step"])

    def __iter__(self):
        return self

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.step])


class SweepSampler(_Resumable, torch.utils.data.IterableDataset):
    """Endless DC-IGN mini-batches: each `next()` is one whole sweep of one type.

    The type is drawn with probability proportional to `mix[type]` among the types that have
    shards (types without shards get weight 0), then a sweep of that type uniformly.
    """

    def __init__(self, shard_dir: Path | str, split: str = "train", mix: Mapping[str, float] | None = None,
                 seed: int = 0, verify: bool = True):
        mix = dict(mix or {})
        if any(w < 0 for w in mix.values()):
            raise ConfigError("mix: weights must be >= 0")
        self.arrays = open_split(shard_dir, split, verify=verify)
        unknown = sorted(set(mix) - set(self.arrays.set_names))
        if unknown:
            raise ConfigError(f"mix: unknown sweep type '{unknown[0]}' (the shards in {shard_dir} hold: "
                              f"{', '.join(self.arrays.set_names)}); fix train.mix or rebuild the shards")
        self.types = [f for f in mix if mix[f] > 0 and self.arrays.count(f) > 0]
        if not self.types:
            raise ConfigError(f"mix gives weight 0 to every sweep type with {split} shards in {shard_dir} "
                              f"(present: {', '.join(self.arrays.factors()) or 'none'}); raise a weight in train.mix "
                              "or render those sweeps")
        weights = np.array([mix[f] for f in self.types], dtype=np.float64)
        self.probs = weights / weights.sum()
        # (shard, group) of every sweep of each type, in manifest order.
        self.index = {f: [(s, g) for s in self.arrays.shards if s.factor == f for g in range(s.groups)]
                      for f in self.types}
        self.seed, self.step = int(seed), 0

    def __next__(self) -> SweepBatch:
        return self.read(self.draw())

    def draw(self) -> tuple[str, Shard, int]:
        """The next sweep's (type, shard, group), without reading its images (a data-parallel rank
        draws every sweep of a step, to keep the stream, and reads only its own)."""
        rng = self._rng()
        factor = self.types[rng.choice(len(self.types), p=self.probs)]
        shard, g = self.index[factor][rng.integers(len(self.index[factor]))]
        self.step += 1
        return factor, shard, g

    @staticmethod
    def read(drawn: tuple[str, Shard, int]) -> SweepBatch:
        factor, shard, g = drawn
        return SweepBatch(to_tensor(shard.images[g]), torch.from_numpy(np.array(shard.labels[g])),
                          torch.from_numpy(shard.mesh[g].astype(np.int64)), factor)


# ------------------------------------------------------------------------------ image batches


class ImageBatches(_Resumable, torch.utils.data.IterableDataset):
    """Endless batches of single training images from every sweep (factor and intrinsic, not iid),
    in a fresh seeded permutation each epoch; batches run across epoch boundaries."""

    def __init__(self, shard_dir: Path | str, split: str = "train", batch_size: int = 16, seed: int = 0,
                 verify: bool = True):
        if batch_size < 1:
            raise ConfigError(f"batch_size is {batch_size}; use at least 1")
        self.shards = [s for s in open_split(shard_dir, split, verify=verify).shards if s.factor != IID]
        sizes = np.array([s.groups * s.steps for s in self.shards], dtype=np.int64)
        self.total = int(sizes.sum())
        if self.total == 0:
            raise ConfigError(f"no {split} images in {shard_dir}; render some sweeps and run `python cli.py shard`")
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.batch_size, self.seed, self.step = batch_size, int(seed), 0
        self._perm_epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm_epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.total)
        return self._perm

    def positions(self, step: int) -> np.ndarray:
        """Global image numbers of batch `step` (pure in seed and step)."""
        epoch, k = np.divmod(np.arange(step * self.batch_size, (step + 1) * self.batch_size), self.total)
        out = np.empty(self.batch_size, dtype=np.int64)
        for e in np.unique(epoch):  # one epoch, or two where the batch crosses a boundary
            here = epoch == e
            out[here] = self._permutation(int(e))[k[here]]
        return out

    def __next__(self) -> ImageBatch:
        return self.take()

    def take(self, part: slice = slice(None)) -> ImageBatch:
        """The next batch, or only the rows `part` of it (a data-parallel rank's share)."""
        pos = self.positions(self.step)[part]
        self.step += 1
        which = np.searchsorted(self.starts, pos, side="right") - 1
        first = self.shards[0]
        images = np.empty((len(pos),) + first.images.shape[2:], dtype=np.uint8)
        labels = np.empty((len(pos), first.labels.shape[2]), dtype=np.float32)
        mesh = np.empty(len(pos), dtype=np.int64)
        for s_idx in np.unique(which):
            here = np.flatnonzero(which == s_idx)
            shard = self.shards[s_idx]
            local = pos[here] - self.starts[s_idx]
            g, k = np.divmod(local, shard.steps)
            images[here] = shard.images[g, k]  # one gather per shard, straight from the memory map
            labels[here] = shard.labels[g, k]
            mesh[here] = shard.mesh[g, k]
        return ImageBatch(to_tensor(images), torch.from_numpy(labels), torch.from_numpy(mesh))


__all__ = ["open_split", "SplitArrays", "SweepSampler", "SweepBatch", "ImageBatches", "ImageBatch", "to_tensor"]
