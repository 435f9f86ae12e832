"""Data-parallel training for real: two CPU processes under torchrun (gloo) against one process."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from config import UserError, load_params
from model import checkpoint as ckpt
from model.distributed import World
from model.train import TrainJob, train
from tests.train_fixtures import make_shards, write_params

ROOT = Path(__file__).resolve().parents[1]
STEPS = 8  # 2 warm-start (VAE) steps, then DC-IGN steps of 2 sweeps: one per rank


def test_shares_are_equal_contiguous_and_cover_the_step():
    parts = [World(rank, 4).share(8, "x") for rank in range(4)]
    assert [list(range(8))[p] for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert World().share(5, "x") == slice(0, 5)


def test_a_step_that_does_not_split_is_a_one_line_error():
    with pytest.raises(UserError, match="train.sweeps_per_step is 3, which does not split over 2 processes"):
        World(0, 2).share(3, "train.sweeps_per_step")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    _, shard_dir = make_shards(root)
    write_params(root / "params.yaml", steps=STEPS, warm_start=2, checkpoint_every=4)
    return root, shard_dir


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=root, capture_output=True, text=True,
                          timeout=600)


def train_cli(root: Path, shard_dir: Path, out: str, *extra: str, kind: str = "dcign") -> dict:
    res = cli(root, "train", "--dataset", "toy", "--model", kind, "--shards", str(shard_dir), "--out", out,
              "--no-live", *extra)
    assert res.returncode == 0, res.stderr[-3000:]
    assert_ranks(res, 2 if "--nproc" in extra else 1, kind)
    return ckpt.load(root / out)


def assert_ranks(res: subprocess.CompletedProcess, n: int, kind: str = "dcign") -> None:
    """Each of n ranks said it joined (a single process says nothing): --nproc was not ignored."""
    joined = sorted(re.findall(rf"toy-{kind}: rank \d+/\d+ joined on cpu", res.stderr))
    assert joined == ([f"toy-{kind}: rank {r}/{n} joined on cpu" for r in range(n)] if n > 1 else []), res.stderr


def assert_close(a: dict, b: dict) -> None:
    """Weights equal up to float summation order (gloo sums gradients in another order)."""
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), (k, (a[k] - b[k]).abs().max().item())


@pytest.fixture(scope="module")
def single(project):
    root, shard_dir = project
    return train_cli(root, shard_dir, "single.pt")


def test_two_processes_match_one_process_with_the_same_effective_batch(project, single):
    root, shard_dir = project
    double = train_cli(root, shard_dir, "double.pt", "--nproc", "2")
    assert double["step"] == STEPS
    assert_close(double["model"], single["model"])
    initial = make_initial(root, shard_dir)
    moved = sum((single["model"][k] - initial[k]).abs().sum().item() for k in initial)
    assert moved > 0  # the comparison is between trained weights, not two copies of the start
    assert not (root / "checkpoints" / "toy-dcign.pt").exists()  # rank 0 cleaned up its resume checkpoint


def test_two_processes_draw_the_same_pairs_as_one(project):
    """Ada-GVAE pairs images within sweeps: each rank must pair its share as one process would."""
    root, shard_dir = project
    one = train_cli(root, shard_dir, "ada1.pt", kind="adagvae")
    two = train_cli(root, shard_dir, "ada2.pt", "--nproc", "2", kind="adagvae")
    assert_close(two["model"], one["model"])


def make_initial(root: Path, shard_dir: Path) -> dict:
    from model.nets import from_config

    params = load_params(root / "params.yaml")
    torch.manual_seed(params.seed)
    return from_config(params.model, 32, 1).state_dict()


def test_two_processes_resume_a_checkpoint_to_the_same_weights(project, single):
    root, shard_dir = project
    params = load_params(root / "params.yaml")
    resume = root / "checkpoints" / "toy-dcign.pt"
    job = TrainJob(dataset="toy", kind="dcign", shard_dir=shard_dir, out=root / "resumed.pt", resume=resume,
                   live_dir=None, progress=False)
    train(params, job, stop_after=3)  # one process stops mid-run, inside the DC-IGN phase
    assert ckpt.load(resume)["step"] == 3
    res = cli(root, "train", "--dataset", "toy", "--model", "dcign", "--shards", str(shard_dir), "--out", "resumed.pt",
              "--no-live", "--nproc", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_ranks(res, 2)
    assert "resuming toy-dcign from step 3" in res.stderr + res.stdout
    assert_close(ckpt.load(root / "resumed.pt")["model"], single["model"])


def test_nproc_that_does_not_split_the_step_exits_2_before_launching(project):
    root, shard_dir = project
    res = cli(root, "train", "--dataset", "toy", "--model", "dcign", "--shards", str(shard_dir), "--out", "x.pt",
              "--nproc", "3")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "does not split over 3 processes" in res.stderr
    assert not (root / "x.pt").exists()
