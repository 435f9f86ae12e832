"""Loaders over real shards: sweep batches, mixing ratio, shuffled images, determinism and resume."""
from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
import torch

from config import ConfigError, ShardSettings
from pipeline.loader import ImageBatches, SweepSampler, open_split
from pipeline.shards import pack_dataset
from fixtures.renders import TRAIN_MESHES, tiny_dataset, write_renders

PAPER_MIX = {"azimuth": 1, "elevation": 1, "light": 1, "intrinsic": 10}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Faces shards with more sweeps than the tiny profile, split over several shards per type."""
    root = tmp_path_factory.mktemp("loader")
    ds = tiny_dataset(groups={"azimuth": 5, "elevation": 4, "light": 3, "intrinsic": 6})
    write_renders(root, ds, size=16)
    pack_dataset(ds, ShardSettings(max_mb=2 * 4 * 16 * 16 / 2**20), root, root / "shards", progress=False)
    return root / "shards"


def lookup(shard_dir, split="train"):
    """image bytes -> (labels, mesh) over every image of the split (images are unique noise)."""
    images, labels, mesh = open_split(shard_dir, split).all_images()
    return {im.tobytes(): (tuple(lb.tolist()), int(m)) for im, lb, m in zip(images, labels, mesh)}


def test_sweep_batches_are_whole_sweeps_with_aligned_labels(shards):
    table = lookup(shards)
    sampler = SweepSampler(shards, "train", PAPER_MIX, seed=1)
    for batch in itertools.islice(sampler, 60):
        assert batch.images.dtype == torch.float32 and batch.images.shape == (4, 1, 16, 16)
        assert batch.labels.dtype == torch.float32 and batch.mesh.dtype == torch.int64
        assert 0.0 <= batch.images.min() and batch.images.max() <= 1.0
        for image, label, mesh in zip(batch.images, batch.labels, batch.mesh):
            raw = (image[0] * 255).round().to(torch.uint8).numpy().tobytes()
            assert table[raw] == (tuple(label.tolist()), int(mesh))
        labels = batch.labels.numpy()
        varying = [f for i, f in enumerate(("azimuth", "elevation", "light")) if np.ptp(labels[:, i]) > 0]
        if batch.factor == "intrinsic":
            assert varying == [] and len(set(batch.mesh.tolist())) > 1
        else:
            assert varying == [batch.factor] and len(set(batch.mesh.tolist())) == 1
        assert set(batch.mesh.tolist()) <= set(TRAIN_MESHES)


def test_mixing_ratio_follows_the_mix(shards):
    n = 6500
    counts = collections.Counter(b.factor for b in itertools.islice(SweepSampler(shards, mix=PAPER_MIX, seed=5), n))
    expected = {f: n * w / 13 for f, w in PAPER_MIX.items()}
    chi2 = sum((counts[f] - e) ** 2 / e for f, e in expected.items())
    assert chi2 < 16.3, (counts, chi2)  # p = 0.001 for 3 degrees of freedom
    # each sweep of a type is drawn about equally often
    azimuth = collections.Counter()
    sampler = SweepSampler(shards, mix={"azimuth": 1}, seed=2)
    for b in itertools.islice(sampler, 1000):
        azimuth[tuple(b.labels[:, 1:].flatten().tolist())] += 1
    assert len(azimuth) == 5 and min(azimuth.values()) > 150


def test_types_without_weight_or_shards_are_never_drawn(shards, tmp_path):
    drawn = {b.factor for b in itertools.islice(SweepSampler(shards, mix={"light": 1, "intrinsic": 0}, seed=0), 50)}
    assert drawn == {"light"}
    ds = tiny_dataset(groups={"azimuth": 2, "elevation": 2, "light": 0, "intrinsic": 2})
    write_renders(tmp_path, ds)
    pack_dataset(ds, ShardSettings(), tmp_path, tmp_path / "shards", progress=False)
    drawn = {b.factor for b in itertools.islice(SweepSampler(tmp_path / "shards", mix=PAPER_MIX, seed=0), 200)}
    assert drawn == {"azimuth", "elevation", "intrinsic"}
    with pytest.raises(ConfigError, match=r"mix gives weight 0 to every sweep type.*present: azimuth"):
        SweepSampler(tmp_path / "shards", mix={"light": 1, "intrinsic": 0})
    with pytest.raises(ConfigError, match=r"unknown sweep type 'pose'"):
        SweepSampler(shards, mix={"pose": 1})


def test_sweep_sampler_is_seeded_and_resumes(shards):
    def stream(sampler, n):
        return [(b.factor, b.labels.numpy().tobytes(), b.images.numpy().tobytes()) for b in itertools.islice(sampler, n)]

    full = stream(SweepSampler(shards, mix=PAPER_MIX, seed=9), 30)
    assert full == stream(SweepSampler(shards, mix=PAPER_MIX, seed=9), 30)
    assert full != stream(SweepSampler(shards, mix=PAPER_MIX, seed=10), 30)
    first = SweepSampler(shards, mix=PAPER_MIX, seed=9)
    stream(first, 12)
    resumed = SweepSampler(shards, mix=PAPER_MIX, seed=9)
    resumed.load_state_dict(first.state_dict())
    assert stream(resumed, 18) == full[12:]
    with pytest.raises(ConfigError, match="same seed"):
        SweepSampler(shards, mix=PAPER_MIX, seed=1).load_state_dict(first.state_dict())


def test_image_batches_cover_each_epoch_once_without_iid(shards):
    table = lookup(shards)
    iid = {im.tobytes() for im in open_split(shards, "train", "iid").all_images()[0]}
    assert iid
    table = {k: v for k, v in table.items() if k not in iid}
    total = len(table)  # every train image but the iid ones
    loader = ImageBatches(shards, "train", batch_size=8, seed=3)
    assert loader.total == total and total % 8 == 0
    epochs = [[], []]
    for step, batch in enumerate(itertools.islice(loader, 2 * total // 8)):
        assert batch.images.shape == (8, 1, 16, 16) and batch.labels.shape == (8, 3)
        for image, label, mesh in zip(batch.images, batch.labels, batch.mesh):
            raw = (image[0] * 255).round().to(torch.uint8).numpy().tobytes()
            assert table[raw] == (tuple(label.tolist()), int(mesh)) and raw not in iid
            epochs[step * 8 // total].append(raw)
    assert sorted(epochs[0]) == sorted(table) == sorted(epochs[1])
    assert epochs[0] != epochs[1]  # a fresh permutation each epoch


def test_image_batches_are_seeded_and_resume_across_epochs(shards):
    def stream(loader, n):
        return [b.images.numpy().tobytes() for b in itertools.islice(loader, n)]

    full = stream(ImageBatches(shards, batch_size=7, seed=4), 40)  # 7 does not divide the epoch
    first = ImageBatches(shards, batch_size=7, seed=4)
    stream(first, 25)
    resumed = ImageBatches(shards, batch_size=7, seed=4)
    resumed.load_state_dict(first.state_dict())
    assert stream(resumed, 15) == full[25:]
    assert full != stream(ImageBatches(shards, batch_size=7, seed=5), 40)


def test_split_arrays_helpers(shards):
    test = open_split(shards, "test")
    assert test.factors() == ["azimuth", "elevation", "light", "intrinsic", "iid"]
    images, labels, mesh = test.all_images("iid")
    assert images.shape == (8, 16, 16) and labels.shape == (8, 3) and mesh.shape == (8,)
    assert sum(1 for _ in test.sweeps("light")) == test.count("light") == 2
    with pytest.raises(ConfigError, match="no iid shards"):
        open_split(shards, "train", "azimuth").all_images("iid")


def test_passes_align_with_sweeps_and_all_images(tmp_path):
    from tests.test_shards import fake_passes, write_passes

    ds = tiny_dataset()
    write_renders(tmp_path, ds, size=16)
    write_passes(tmp_path, ds, passes=("depth", "mask"))
    pack_dataset(ds, ShardSettings(max_mb=2 * 4 * 16 * 16 * 6 / 2**20), tmp_path, tmp_path / "shards", progress=False)
    train = open_split(tmp_path / "shards", "train")
    assert train.pass_names == ("depth", "mask")
    images, _, _ = train.all_images("light")
    passes = train.passes("light")
    assert sorted(passes) == ["K", "depth", "mask", "world_to_camera"] and len(passes["depth"]) == len(images)
    # The fixture's images and passes are seeded by file: find each image's file through its pixels.
    from fixtures.renders import pixels

    files = [r.split(",")[0] for r in (ds.render_dir("light", tmp_path) / "labels.csv").read_text().splitlines()[1:]
             if ",train," in r]
    by_image = {pixels("light", f, 16, 1).tobytes(): f for f in files}
    for n, image in enumerate(images):
        np.testing.assert_array_equal(passes["depth"][n], fake_passes("light", by_image[image.tobytes()], 16)["depth"])
    sweeps = list(train.sweeps("light"))
    per_sweep = list(train.sweep_passes("light"))
    assert len(sweeps) == len(per_sweep) == train.count("light")
    flat = np.concatenate([p["mask"] for p in per_sweep])
    np.testing.assert_array_equal(flat, passes["mask"])
    assert all(p["world_to_camera"].shape == (len(s[0]), 4, 4) for s, p in zip(sweeps, per_sweep))
    everything = train.passes()
    assert len(everything["depth"]) == len(train.all_images()[0])
