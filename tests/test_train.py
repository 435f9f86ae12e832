"""Real training runs on a tiny real shard set (32×32, synthetic renders packed by the real pipeline):
the loss drops, runs are deterministic, an interrupted or killed run resumes to the same weights,
a diverging run stops and keeps its last good checkpoint, and the CLI rejects bad input with exit 2."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from config import load_params
from model import checkpoint as ckpt
from model.loss import kl_divergence, reconstruction
from model.nets import build
from model.train import TrainJob, TrainingDiverged, learning_rate, train
from tests.train_fixtures import make_shards, write_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("toy"))


def job(tmp: Path, shard_dir: Path, kind: str = "dcign", name: str = "run", live: bool = False) -> TrainJob:
    return TrainJob(dataset="toy", kind=kind, shard_dir=shard_dir, out=tmp / f"{name}.pt",
                    resume=tmp / "ckpt" / f"{name}.pt", live_dir=tmp / f"live-{name}" if live else None,
                    progress=False)


def with_train(params, **train):
    return dataclasses.replace(params, train=dataclasses.replace(params.train, **train))


def mean_loss(model, x: torch.Tensor) -> float:
    with torch.no_grad():
        mu, logvar = model.encode(x)
        return (reconstruction(model.decode(mu), x) + kl_divergence(mu, logvar)).mean().item()


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ckpt.KINDS)
def test_short_training_lowers_the_loss_and_logs(shards, tmp_path, kind):
    params, shard_dir = shards
    params = with_train(params, steps=30, warm_start=5 if kind == "dcign" else 0, free_bits=2.0)  # as params.yaml
    from pipeline.loader import open_split, to_tensor

    x = to_tensor(open_split(shard_dir, "test").all_images()[0])
    torch.manual_seed(params.seed)
    before = mean_loss(build("conv4", 32, 1, params.model.latents), x)  # the run's initial weights
    out = train(params, job(tmp_path, shard_dir, kind, live=True))
    model, meta = ckpt.load_model(out)
    assert (meta.kind, meta.step, meta.size, meta.owned["azimuth"]) == (kind, 30, 32, [0])
    assert mean_loss(model, x) < 0.8 * before
    live = tmp_path / "live-run"
    assert (live / "plots" / "images" / "reconstructions.png").is_file()
    assert (live / "plots" / "metrics" / "train" / "recon.tsv").is_file()
    if kind == "dcign":
        assert (live / "plots" / "metrics" / "train" / "intrinsic" / "kl.tsv").is_file()
    assert not (tmp_path / "ckpt" / "run.pt").exists()  # the resumable checkpoint is gone once done


def test_bf16_training_with_the_structural_term_lowers_the_loss_and_keeps_fp32_weights(shards, tmp_path):
    params, shard_dir = shards
    from pipeline.loader import open_split, to_tensor

    x = to_tensor(open_split(shard_dir, "test").all_images()[0])
    torch.manual_seed(params.seed)
    before = mean_loss(build("conv4", 32, 1, params.model.latents), x)
    fp32 = ckpt.load(train(with_train(params, steps=30, warm_start=5), job(tmp_path, shard_dir, name="fp32")))
    # with the structural term: its blurs and divisions must stay fp32 (in bf16 the loss became -inf)
    out = train(with_train(params, steps=30, warm_start=5, precision="bf16", ssim_weight=1.0),
                job(tmp_path, shard_dir, name="bf16"))
    model, _ = ckpt.load_model(out)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert mean_loss(model, x) < 0.8 * before
    assert not same_weights(ckpt.load(out)["model"], fp32["model"])  # the option is not ignored


@pytest.mark.parametrize("kind,schedule,views", [("dcign", "constant", 0), ("adagvae", "constant", 0),
                                                 ("dcign", "cosine", 0), ("dcign", "constant", 2)])
def test_interrupted_run_resumes_to_identical_weights(shards, tmp_path, kind, schedule, views):
    # adagvae: the pairs, drawn per step, too; cosine: the learning rate picks up where it stopped;
    # views: the encoder's moved views, drawn per step
    params, shard_dir = shards
    params = with_train(params, steps=10, warm_start=3, lr_schedule=schedule,  # the interruption falls in the DC-IGN phase
                        view_shift=views, view_scale=0.05 * bool(views))
    straight = ckpt.load(train(params, job(tmp_path, shard_dir, kind, name="a")))
    partial = train(params, job(tmp_path, shard_dir, kind, name="b"), stop_after=6)
    assert ckpt.load(partial)["step"] == 6
    resumed = ckpt.load(train(params, job(tmp_path, shard_dir, kind, name="b")))
    assert resumed["step"] == 10
    assert same_weights(straight["model"], resumed["model"])  # bitwise, and the same seed gives the same weights
    assert torch.equal(straight["rng"]["torch"], resumed["rng"]["torch"])
    last_lr = straight["optimizer"]["param_groups"][0]["lr"]  # the rate the loop used for its last step
    assert last_lr == (params.train.lr if schedule == "constant" else learning_rate(params.train, 9)) < 2 * params.train.lr
    assert schedule == "constant" or last_lr < 0.05 * params.train.lr


def test_killed_cli_run_resumes_from_its_last_checkpoint(shards, tmp_path):
    _, shard_dir = shards
    params_file = write_params(tmp_path / "params.yaml", steps=24, checkpoint_every=3)
    cmd = [sys.executable, str(ROOT / "cli.py"), "--params", str(params_file), "train", "--dataset", "toy",
           "--model", "dcign", "--shards", str(shard_dir), "--out", str(tmp_path / "killed.pt"), "--no-live"]
    resume = tmp_path / "checkpoints" / "toy-dcign.pt"
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed.pt").exists(), "the run finished before it could be killed"
    killed_at = ckpt.load(resume)["step"]
    assert 3 <= killed_at < 24
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming toy-dcign from step {killed_at}" in done.stdout
    params = load_params(params_file)
    straight = ckpt.load(train(params, job(tmp_path, shard_dir, name="straight")))
    assert same_weights(straight["model"], ckpt.load(tmp_path / "killed.pt")["model"])


def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path):
    params, shard_dir = shards
    params = with_train(params, steps=200, lr=1e6, checkpoint_every=1)
    j = job(tmp_path, shard_dir)
    with pytest.raises(TrainingDiverged, match="NaN|nan|inf") as err:
        train(params, j)
    assert "\n" not in str(err.value) and str(j.resume) in str(err.value)
    assert not j.out.exists()
    state = ckpt.load(j.resume)
    assert state["step"] >= 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def _cli(tmp_path, *args):
    params_file = write_params(tmp_path / "params.yaml")
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "--params", str(params_file), *args],
                          cwd=tmp_path, capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "toy", "--model", "gan"], "unknown model 'gan'"),
    (["train", "--dataset", "nope", "--model", "vae"], "unknown dataset 'nope'"),
    (["train", "--dataset", "toy", "--model", "vae"], "manifest.json: not found"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, args, message):
    result = _cli(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "models").exists() and not (tmp_path / "checkpoints").exists()
