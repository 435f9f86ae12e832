"""The training loop: shards in, `models/<dataset>-<model>.pt` (+ DVCLive logs) out.

`dcign`: each step stacks `train.sweeps_per_step` sweeps from `SweepSampler` (types drawn by
`train.mix`); every sweep is clamped on its own (`model.clamp`), so a step equals accumulating the
gradients of that many one-sweep mini-batches. The first `train.warm_start` steps are plain VAE
steps on shuffled images (the authors recommended starting from a plainly trained VAE).
`vae`: the entangled baseline; the same network as a plain VAE on shuffled images (`train.batch_size`).
`betavae`: the same with the KL weighted by `train.betavae_beta`.
`adagvae`, `adamlvae`, `gvae`: pairs from within the sampler's sweeps (`model.weak`), `train.sweeps_per_step`
sweeps per step like DC-IGN, so every model sees the same number of images per step.

Choices where the paper and the original code differ (see docs in params.yaml / config.py):
- clamp value: sweep mean (paper, default) or first sample (code), `train.clamp`;
- clamp target: μ and log σ² (code, default; ε is still drawn per sample) or the sampled z;
- KL: per-sample analytic KL of the posterior the decoder actually samples from. With the μ/log σ²
  clamp that is the clamped posterior, whose clamped coordinates are constants (detached), so a
  latent gets KL gradient only in sweeps where it is free; the invariance pull is then its only
  signal (the code's "no gradient except the invariance signal"). With the z clamp the posterior
  itself is unclamped, so every latent gets KL gradient.
- pull: ½·pull·Σ(t − mean)² over clamped coordinates (its gradient is the code's (t − mean)·0.01);
  applied to μ and log σ² (μ/log σ² clamp) or to μ (z clamp).
- encoder views (not in the paper, `train.view_shift`, `train.view_scale`): the encoder sees each image
  moved and scaled a little, the decoder's target is the render (`model.augment`), so no latent reads a
  factor off where the object sits in the frame.
- free bits (not in the paper, `train.free_bits`): a tied latent whose KL, averaged over the step, is
  below the floor gets no KL gradient. Without it a factor that shows little in the picture (faces
  elevation, ±20°) can collapse to the prior early in training and never recover, depending on the seed.

Data-parallel (torchrun, `model.distributed`): every rank draws the whole step and reads and trains
on its share; DistributedDataParallel averages the gradients, so N ranks take the single-process
step. Rank 0 writes checkpoints and logs.

A killed run resumes from `checkpoints/<dataset>-<model>.pt` (written atomically every
`train.checkpoint_every` steps with model, optimiser, loader and RNG state) and ends in the same
weights as an uninterrupted run. A non-finite loss stops training (`TrainingDiverged`, exit 2) and
leaves the last good checkpoint in place.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import artifacts
from config import ModelConfig, Params, TrainConfig, UserError
from model import checkpoint as ckpt
from model import distributed
from model.augment import apply_views, draw_views
from model.distributed import World
from model.clamp import clamp, pull_loss
from model.latents import clamp_mask, owned_indices, tied_mask
from model.loss import free_bits_kl, kl_per_latent, reconstruction, reparameterise, structural
from model.nets import VAE, from_config
from model.weak import AGGREGATION, WEAK_KINDS, pair_indices, paired_posteriors

KINDS = ckpt.KINDS


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainJob:
    dataset: str
    kind: str
    """`dcign` or `vae`."""
    shard_dir: Path
    out: Path
    """Final checkpoint, e.g. models/faces-dcign.pt."""
    resume: Path
    """In-progress checkpoint, e.g. checkpoints/faces-dcign.pt (removed once `out` is written)."""
    live_dir: Path | None = None
    """DVCLive folder, e.g. dvclive/faces-dcign; None = no DVCLive logging."""
    progress: bool = True

    @classmethod
    def default(cls, params: Params, dataset: str, kind: str, **overrides: Any) -> "TrainJob":
        run = artifacts.RunPaths.named(f"{dataset}-{kind}")
        paths = dict(shard_dir=params.dataset(dataset).shard_dir(), out=run.checkpoint, resume=run.resume,
                     live_dir=run.live_dir)
        return cls(dataset=dataset, kind=kind, **{**paths, **overrides})


@dataclass
class StepResult:
    loss: torch.Tensor
    recon: torch.Tensor  # per image [N]
    kl: torch.Tensor  # per image [N]
    pull: torch.Tensor  # scalar
    sweeps: list[str]  # the type of each image's sweep ("shuffled" for VAE steps)


# ------------------------------------------------------------------------------ one step (pure)


def image_loss(logits: torch.Tensor, x: torch.Tensor, mc: ModelConfig, tc: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(−log p(x|z), the loss that stands for it) per image: the likelihood plus `train.ssim_weight` times
    the structural term."""
    with torch.autocast(logits.device.type, enabled=False):  # in fp32 under bf16 autocast too
        recon = reconstruction(logits, x, mc.likelihood, mc.sigma)
        return recon, (recon + tc.ssim_weight * structural(logits, x) if tc.ssim_weight else recon)


def vae_step(model: VAE, x: torch.Tensor, mc: ModelConfig, tc: TrainConfig, eps: torch.Tensor | None = None,
             kl_weight: torch.Tensor | None = None, beta: float | None = None,
             view: torch.Tensor | None = None) -> StepResult:
    """A plain VAE step; `kl_weight` [L] scales each latent's KL (None = all 1); `beta` (default
    `train.beta`) weighs the KL; `view`: what the encoder sees instead of x (`model.augment`; x stays the
    target)."""
    mu, logvar = model.encode(x if view is None else view)
    logits = model.decode(reparameterise(mu, logvar, eps))
    (recon, fit), kl_each = image_loss(logits, x, mc, tc), kl_per_latent(mu, logvar)
    kl = kl_each.sum(dim=1)
    weighted = kl if kl_weight is None else (kl_each * kl_weight).sum(dim=1)
    loss = fit.mean() + (tc.beta if beta is None else beta) * weighted.mean()
    return StepResult(loss, recon, kl, torch.zeros(()), ["shuffled"] * len(x))


def latent_kl_weight(mc: ModelConfig, tc: TrainConfig, device: torch.device | None = None) -> torch.Tensor | None:
    """[L] KL weight of each latent in DC-IGN training relative to beta: 1 for tied latents,
    `train.beta_intrinsic` for intrinsic ones; None when that is 1 (the paper: one weight for all)."""
    if tc.beta_intrinsic == 1.0:
        return None
    tied = tied_mask(mc.owned, mc.latents)
    return torch.where(tied, 1.0, tc.beta_intrinsic).to(device)


def dcign_step(model: VAE, x: torch.Tensor, sweeps: list[str], mc: ModelConfig, tc: TrainConfig,
               eps: torch.Tensor | None = None, view: torch.Tensor | None = None) -> StepResult:
    """One DC-IGN step on S stacked sweeps of K images each (x: [S*K, C, H, W], sweep s = rows s*K..);
    `eps`: the sampling noise [S*K, L] (drawn here if None); `view`: as in `vae_step`."""
    S, L = len(sweeps), mc.latents
    K = x.shape[0] // S
    mask = clamp_mask(sweeps, mc.owned, L).to(x.device)
    mu, logvar = model.encode(x if view is None else view)
    mu3, lv3 = mu.view(S, K, L), logvar.view(S, K, L)
    if tc.clamp_target == "mu_logvar":
        cmu, clv = clamp(mu3, mask, tc.clamp), clamp(lv3, mask, tc.clamp)
        z = reparameterise(cmu, clv, eps).view(S * K, L)
        kl_each = kl_per_latent(cmu.view(S * K, L), clv.view(S * K, L))
        pull = pull_loss(mu3, mask) + pull_loss(lv3, mask)
    else:
        z = clamp(reparameterise(mu3, lv3, eps), mask, tc.clamp).view(S * K, L)
        kl_each = kl_per_latent(mu, logvar)
        pull = pull_loss(mu3, mask)
    kl = kl_each.sum(dim=1)
    weight = latent_kl_weight(mc, tc, x.device)
    weighted = kl_each if weight is None else kl_each * weight
    penalised = (free_bits_kl(weighted, tied_mask(mc.owned, L).to(x.device), tc.free_bits) if tc.free_bits
                 else weighted.sum(dim=1))
    recon, fit = image_loss(model.decode(z), x, mc, tc)
    loss = fit.mean() + tc.beta * penalised.mean() + tc.pull * pull
    return StepResult(loss, recon, kl, pull.detach(), [s for s in sweeps for _ in range(K)])


def pair_step(model: VAE, x: torch.Tensor, sweeps: list[str], pairs: torch.Tensor, kind: str, mc: ModelConfig,
              tc: TrainConfig, eps: torch.Tensor | None = None, view: torch.Tensor | None = None) -> StepResult:
    """One step of a weakly-supervised model (`model.weak`) on S stacked sweeps (x as in `dcign_step`),
    paired off by `pairs` [S*K/2, 2]. `gvae` shares what DC-IGN would clamp in each sweep; the adaptive
    kinds choose per pair and never look at `sweeps` (kept for the per-type logs). `view`: as in `vae_step`."""
    K = x.shape[0] // len(sweeps)
    mu, logvar = model.encode(x if view is None else view)
    shared = None
    if kind == "gvae":
        shared = clamp_mask(sweeps, mc.owned, mc.latents).to(x.device)[pairs[:, 0] // K]
    pmu, plv = paired_posteriors(mu, logvar, pairs, AGGREGATION[kind], shared)
    recon, fit = image_loss(model.decode(reparameterise(pmu, plv, eps)), x, mc, tc)
    kl = kl_per_latent(pmu, plv).sum(dim=1)
    loss = fit.mean() + tc.beta * kl.mean()
    return StepResult(loss, recon, kl, torch.zeros(()), [s for s in sweeps for _ in range(K)])


class Objective(nn.Module):
    """One step's loss as a module (`forward(x, eps, sweeps)`; sweeps None = a VAE step), the unit
    DistributedDataParallel wraps: the clamp sits between encoder and decoder, inside forward."""

    def __init__(self, model: VAE, mc: ModelConfig, tc: TrainConfig, kind: str = "dcign"):
        super().__init__()
        self.model, self.mc, self.tc, self.kind = model, mc, tc, kind

    def forward(self, x: torch.Tensor, eps: torch.Tensor, sweeps: list[str] | None,
                pairs: torch.Tensor | None = None, view: torch.Tensor | None = None) -> StepResult:
        if sweeps is None:  # the baselines, or a DC-IGN warm-start / interleaved VAE step
            weight = latent_kl_weight(self.mc, self.tc, x.device) if self.kind == "dcign" else None
            beta = self.tc.betavae_beta if self.kind == "betavae" else None
            return vae_step(self.model, x, self.mc, self.tc, eps, weight, beta, view)
        if self.kind in WEAK_KINDS:
            return pair_step(self.model, x, sweeps, pairs, self.kind, self.mc, self.tc, eps, view)
        return dcign_step(self.model, x, sweeps, self.mc, self.tc, eps, view)


# ------------------------------------------------------------------------------ setup


def pick_device(choice: str, world: World = World()) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device is cuda but no CUDA device is available; set train.device to auto or cpu")
    return torch.device("cuda", world.local_rank) if choice == "cuda" else torch.device(choice)


def configure_torch(tc: TrainConfig, world: World = World()) -> None:
    """Fixed thread count and deterministic kernels: the same seed gives the same weights.
    threads 0: this machine's cores, split between the ranks running on it."""
    torch.set_num_threads(tc.threads or max(1, (os.cpu_count() or 1) // world.local_size))
    torch.use_deterministic_algorithms(True, warn_only=True)


def memory_format(arch: str, device: torch.device) -> torch.memory_format:
    # channels_last makes oneDNN's small strided convolutions ~1.4x faster on CPU (bench/train.py)
    return torch.channels_last if device.type == "cpu" and arch == "conv4" else torch.contiguous_format


def autocast(tc: TrainConfig, device: torch.device) -> torch.autocast:
    """The arithmetic of a training step's networks (`train.precision`)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.precision == "bf16")


def make_optimizer(model: VAE, tc: TrainConfig) -> torch.optim.Adam:
    # fused: one kernel per step instead of several per parameter tensor (small nets are overhead-bound)
    return torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay, fused=True)


def learning_rate(tc: TrainConfig, step: int) -> float:
    """The learning rate of optimiser step `step` (0-based), from `train.lr` and `train.lr_schedule`."""
    if tc.lr_schedule == "constant":
        return tc.lr
    return 0.5 * tc.lr * (1.0 + math.cos(math.pi * min(step, tc.steps) / tc.steps))


def fingerprint(params: Params, job: TrainJob, shard_dir: Path) -> str:
    """What a resumable checkpoint depends on. Step count, logging and threads are left out, so a
    finished run can be extended by raising train.steps; so are the lists of models and seeds (they
    choose runs, they do not change one), and β-VAE's β for every other model. `model:` keys are
    those the checkpoint's meta stores (`ModelMeta.to_dict`)."""
    tc = dataclasses.asdict(params.train)
    for k in ("steps", "checkpoint_every", "log_every", "image_every", "device", "threads", "models", "seeds"):
        tc.pop(k)
    if job.kind != "betavae":
        tc.pop("betavae_beta")
    manifest = shard_dir / "manifest.json"
    blob = json.dumps({"kind": job.kind, "dataset": job.dataset, "seed": params.seed, "train": tc,
                       "model": ckpt.stored_config(params.model_for(job.dataset)),
                       "data": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None},
                      sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


class Data:
    """The loaders a run draws from, opened lazily (a VAE run needs no sweep sampler)."""

    def __init__(self, params: Params, job: TrainJob):
        self.params, self.job = params, job
        self.sweeps = None
        self.images = None

    def sweep_sampler(self):
        if self.sweeps is None:
            from pipeline.loader import SweepSampler

            self.sweeps = SweepSampler(self.job.shard_dir, "train", mix=self.params.mix(self.job.dataset),
                                       seed=self.params.seed)
        return self.sweeps

    def image_batches(self):
        if self.images is None:
            from pipeline.loader import ImageBatches

            self.images = ImageBatches(self.job.shard_dir, "train", batch_size=self.params.train.batch_size,
                                       seed=self.params.seed)
        return self.images

    def state_dict(self) -> dict:
        return {k: v.state_dict() for k, v in (("sweeps", self.sweeps), ("images", self.images)) if v is not None}

    def load_state_dict(self, state: dict) -> None:
        if "sweeps" in state:
            self.sweep_sampler().load_state_dict(state["sweeps"])
        if "images" in state:
            self.image_batches().load_state_dict(state["images"])

    def image_shape(self) -> tuple[int, int]:
        """(size, channels) of the training images."""
        from pipeline.shards import check_declared, read_manifest

        m = read_manifest(self.job.shard_dir)
        check_declared(m, self.params.dataset(self.job.dataset), self.job.shard_dir)
        if m.image_size[0] != m.image_size[1]:
            raise UserError(f"{self.job.shard_dir}: images are {m.image_size[0]}x{m.image_size[1]}; the model needs "
                            "square images; re-render with a square render.size")
        return m.image_size[0], m.channels


PLAIN_KINDS = ("vae", "betavae")
"""Models trained on shuffled images; the others on sweeps."""


def check_split(kind: str, tc: TrainConfig, world: World) -> None:
    """Each rank takes an equal share of every step: fail before training if a step does not split."""
    if kind in PLAIN_KINDS or (kind == "dcign" and (tc.warm_start or tc.vae_every)):
        world.share(tc.batch_size, "train.batch_size")
    if kind not in PLAIN_KINDS:
        world.share(tc.sweeps_per_step, "train.sweeps_per_step")


def is_vae_step(step: int, kind: str, tc: TrainConfig) -> bool:
    """Whether step `step` (0-based) is a plain VAE step on shuffled images: every step of the
    baselines; for DC-IGN the warm start, then every `train.vae_every`-th step; never for the weakly
    supervised models (the warm start is the DC-IGN authors' advice for DC-IGN)."""
    if kind in PLAIN_KINDS:
        return True
    if kind != "dcign":
        return False
    if step < tc.warm_start:
        return True
    return tc.vae_every > 0 and (step - tc.warm_start) % tc.vae_every == tc.vae_every - 1


def next_batch(data: Data, step: int, kind: str, tc: TrainConfig,
               world: World = World()) -> tuple[torch.Tensor, list[str] | None]:
    """This rank's images of step `step` and, for a DC-IGN step, the sweep type of each stacked sweep."""
    if is_vae_step(step, kind, tc):
        return data.image_batches().take(world.share(tc.batch_size, "train.batch_size")).images, None
    sampler = data.sweep_sampler()
    drawn = [sampler.draw() for _ in range(tc.sweeps_per_step)]  # the whole step: every rank keeps the stream
    batches = [sampler.read(d) for d in drawn[world.share(tc.sweeps_per_step, "train.sweeps_per_step")]]
    if len({b.images.shape for b in batches}) > 1:
        raise UserError(f"{data.job.shard_dir}: sweeps have different lengths; re-shard the dataset")
    return torch.cat([b.images for b in batches]), [b.factor for b in batches]


# ------------------------------------------------------------------------------ the loop


def train(params: Params, job: TrainJob, stop_after: int | None = None) -> Path:
    """Train (or resume) and write `job.out`. `stop_after` ends the process early after that many
    steps of this call, leaving only the resumable checkpoint (to test resuming). Under torchrun,
    every rank calls this; rank 0 writes."""
    if job.kind not in KINDS:
        raise UserError(f"unknown model '{job.kind}'; choose one of: {', '.join(KINDS)}")
    tc, mc = params.train, params.model_for(job.dataset)
    flips = params.dataset(job.dataset).flips()
    world = World.from_env()
    check_split(job.kind, tc, world)
    configure_torch(tc, world)
    device = pick_device(tc.device, world)
    data = Data(params, job)
    size, channels = data.image_shape()
    torch.manual_seed(params.seed)
    model = from_config(mc, size, channels, flips).to(device)
    fmt = memory_format(mc.arch, device)
    model = model.to(memory_format=fmt)
    optimizer = make_optimizer(model, tc)
    if not world.main:
        job = dataclasses.replace(job, live_dir=None, progress=False)
    print_fn = _printer(job.progress)
    distributed.start(world, device)
    if world.distributed:  # one line per rank: proof that every process joined, and on which device
        # One write of one short line: the ranks share stderr, and such a write is not interleaved.
        os.write(sys.stderr.fileno(), f"{job.dataset}-{job.kind}: rank {world.rank}/{world.size} joined on {device}\n".encode())
    try:
        finger = fingerprint(params, job, job.shard_dir)
        step = 0
        saved = ckpt.load(job.resume, device) if world.main and job.resume.is_file() else None
        saved = distributed.from_main(saved, world)  # ranks need no access to rank 0's disk
        if saved is not None and saved.get("fingerprint") == finger:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            data.load_state_dict(saved["samplers"])
            _set_rng(saved["rng"])
            step = int(saved["step"])
            print_fn(f"resuming {job.dataset}-{job.kind} from step {step} ({job.resume})")
        elif saved is not None:
            print_fn(f"{job.resume}: saved with other parameters or data; starting afresh")
        del saved

        def meta(at: int) -> ckpt.ModelMeta:
            return ckpt.ModelMeta(kind=job.kind, dataset=job.dataset, size=size, channels=channels,
                                  latents=mc.latents, owned=owned_indices(mc.owned), step=at, config=mc,
                                  flips=flips)

        def save(path: Path, at: int) -> None:
            if world.main:
                ckpt.save(path, {"meta": meta(at).to_dict(), "model": model.state_dict(),
                                 "optimizer": optimizer.state_dict(), "samplers": data.state_dict(),
                                 "rng": _get_rng(), "step": at, "fingerprint": finger})

        objective = Objective(model, mc, tc, job.kind)
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
        live = _open_live(job, resume=step > 0)
        try:
            run = _Run(objective, model, optimizer, data, job, params, device, fmt, live, world, save)
            step = run.loop(step, stop_after)
        finally:
            if live is not None:
                live.end()
        if step < tc.steps:  # stopped early on purpose (stop_after): only the resumable checkpoint
            save(job.resume, step)
            return job.resume
        _require_finite(model, step, job)
        save(job.out, step)
        if world.main:
            job.resume.unlink(missing_ok=True)
        return job.out
    finally:
        distributed.stop()


@dataclass
class _Run:
    """What the step loop works with."""

    objective: nn.Module
    model: VAE
    optimizer: torch.optim.Optimizer
    data: Data
    job: TrainJob
    params: Params
    device: torch.device
    fmt: torch.memory_format
    live: Any
    world: World
    save: Any  # save(path, step): rank 0 writes a checkpoint

    def loop(self, step: int, stop_after: int | None) -> int:
        """Run steps until train.steps (or stop_after more); returns the step reached."""
        from tqdm import tqdm

        tc, job, world = self.params.train, self.job, self.world
        log = _Log(self.live, tc, job.kind)
        end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
        self.model.train()
        with tqdm(total=tc.steps, initial=step, desc=f"train {job.dataset}-{job.kind}", unit="step",
                  disable=not job.progress, dynamic_ncols=True) as bar:
            while step < end:
                x, sweeps = next_batch(self.data, step, job.kind, tc, world)
                x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt)
                eps = self.noise(len(x))
                view = self.view(step, x)
                with autocast(tc, self.device):
                    result = self.objective(x, eps, sweeps, self.pairs(step, sweeps, len(x)), view)
                if not distributed.all_finite(result.loss, world):
                    kept = (f"the last good checkpoint is {job.resume}" if job.resume.is_file()
                            else "no checkpoint was written yet")
                    raise TrainingDiverged(f"loss became {result.loss.item()} at step {step + 1} of "
                                           f"{job.dataset}-{job.kind}; {kept}; lower train.lr or check the shards")
                self.optimizer.zero_grad(set_to_none=True)
                result.loss.backward()
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate(tc, step)
                self.optimizer.step()
                step += 1
                rate = log.add(step, result, len(x) * world.size, self.optimizer.param_groups[0]["lr"])
                bar.update(1)
                bar.set_postfix(loss=f"{result.loss.item():.1f}", img_s=f"{rate:.0f}", refresh=False)
                if self.live is not None and (step % tc.image_every == 0 or step == tc.steps):
                    _log_reconstructions(self.live, self.model, x)
                if step % tc.checkpoint_every == 0 and step < tc.steps:
                    _require_finite(self.model, step, job)  # never replace a good checkpoint by a broken one
                    self.save(job.resume, step)
        return step

    def pairs(self, step: int, sweeps: list[str] | None, rows: int) -> torch.Tensor | None:
        """This rank's pairs of a weakly-supervised step (None otherwise): drawn for the whole step from
        a generator seeded by (seed, step), so they are the same whatever the number of ranks."""
        if sweeps is None or self.job.kind not in WEAK_KINDS:
            return None
        k = rows // len(sweeps)
        if k % 2:
            raise UserError(f"{self.job.kind} pairs off the images of each sweep, and these sweeps have {k}; "
                            f"set datasets.{self.job.dataset}.steps to an even number and re-render")
        generator = torch.Generator().manual_seed(self.params.seed * 1_000_003 + step)
        whole = pair_indices(self.params.train.sweeps_per_step, k, generator)
        mine = self.world.share(self.params.train.sweeps_per_step, "train.sweeps_per_step")
        return (whole[mine.start * k // 2: mine.stop * k // 2] - mine.start * k).to(self.device)

    def view(self, step: int, x: torch.Tensor) -> torch.Tensor | None:
        """What the encoder sees of this rank's images (`train.view_shift`, `train.view_scale`; None = x
        itself): drawn for the whole step from a generator seeded by (seed, step), so the same whatever the
        number of ranks and after a resume."""
        tc = self.params.train
        if tc.view_shift == 0 and tc.view_scale == 0:
            return None
        rows = len(x) * self.world.size
        generator = torch.Generator().manual_seed(_stream_seed("view", self.params.seed, step))
        views = draw_views(rows, tc.view_shift, tc.view_scale, generator)[self.world.share(rows, "the step")]
        return apply_views(x, views).contiguous(memory_format=self.fmt)

    def noise(self, rows: int) -> torch.Tensor:
        """This rank's rows of the step's sampling noise, drawn for the whole step on every rank (the
        same numbers as one process drawing for the whole step)."""
        latents = self.params.model.latents
        eps = torch.randn((rows * self.world.size, latents), device=self.device)
        return eps[self.world.share(rows * self.world.size, "the step")]


def _stream_seed(name: str, *values: int) -> int:
    """A 63-bit seed of its own for each named random stream and (seed, step)."""
    digest = hashlib.sha256(" ".join([name, *map(str, values)]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _require_finite(model: VAE, step: int, job: TrainJob) -> None:
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        kept = f"the last good checkpoint is {job.resume}" if job.resume.is_file() else "no checkpoint was written yet"
        raise TrainingDiverged(f"weights became NaN or infinite by step {step} of {job.dataset}-{job.kind}; {kept}; "
                               "lower train.lr or check the shards")


def _get_rng() -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


def _printer(enabled: bool):
    from tqdm import tqdm

    return tqdm.write if enabled else (lambda *_: None)


# ------------------------------------------------------------------------------ logging


def _open_live(job: TrainJob, resume: bool):
    if job.live_dir is None:
        return None
    from dvclive import Live

    return Live(dir=str(job.live_dir), resume=resume, save_dvc_exp=False, dvcyaml=False, report=None)


class _Log:
    """Averages losses over `log_every` steps (overall and per sweep type) and measures images/s."""

    def __init__(self, live, tc: TrainConfig, kind: str):
        self.live, self.every = live, tc.log_every
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.images, self.steps, self.t0 = 0, 0, time.perf_counter()
        self.rate = 0.0

    def add(self, step: int, r: StepResult, images: int, lr: float) -> float:
        self.images += images
        self.steps += 1
        self.sums["loss"] += r.loss.item()
        self.sums["pull"] += r.pull.item()
        recon, kl = r.recon.detach().cpu(), r.kl.detach().cpu()
        self.sums["recon"] += recon.mean().item()
        self.sums["kl"] += kl.mean().item()
        for sweep in set(r.sweeps):
            rows = torch.tensor([s == sweep for s in r.sweeps])
            self.sums[f"recon/{sweep}"] += recon[rows].sum().item()
            self.sums[f"kl/{sweep}"] += kl[rows].sum().item()
            self.counts[sweep] += int(rows.sum())
        elapsed = time.perf_counter() - self.t0
        rate = self.images / elapsed if elapsed > 0 else 0.0
        if step % self.every == 0:
            if self.live is not None:
                self.live.step = step  # metrics are stamped with the step current when logged
                for key in ("loss", "recon", "kl", "pull"):
                    self.live.log_metric(f"train/{key}", self.sums[key] / self.steps)
                for key, total in self.sums.items():
                    if "/" in key:
                        term, sweep = key.split("/")
                        self.live.log_metric(f"train/{sweep}/{term}", total / self.counts[sweep])
                self.live.log_metric("train/lr", lr)
                self.live.log_metric("train/images_per_s", rate)
                self.live.next_step()
            self.reset()
            self.rate = rate
        return rate


@torch.no_grad()
def _log_reconstructions(live, model: VAE, x: torch.Tensor, n: int = 8) -> None:
    """A grid: the first n inputs on top, their reconstructions (from the encoder mean) below."""
    was_training = model.training
    model.eval()
    x = x[:n]
    recon = torch.sigmoid(model.decode(model.encode(x)[0]))
    model.train(was_training)
    rows = [torch.cat(list(t.float().cpu()), dim=-1) for t in (x, recon)]  # each [C, H, n*W]
    grid = torch.cat(rows, dim=-2)
    image = (grid.clamp(0, 1) * 255).round().to(torch.uint8)
    image = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)
    live.log_image("reconstructions.png", image.numpy())


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UserError(f"unknown model {kind!r}; choose one of: {', '.join(KINDS)}")
    return kind
