"""Typed, validated run configuration: `params.yaml` in, frozen dataclasses out.

Everything a run depends on lives in `params.yaml`. It is read once, here, by `load_params`,
and every other module receives the typed objects below instead of raw dicts. Unknown keys
are errors (a typo must not silently fall back to a default), and every error is one line
naming the key and what to do: `ConfigError`, which the CLI turns into exit code 2.

Conventions used throughout the project:
- Each dataset declares its scene factors (`datasets.<name>.factors`, kinds from `factors.KINDS`; the
  default is the paper's azimuth, elevation and light); their order is the column order of every label
  array. Angles are in degrees.
- Camera azimuth 0 looks at the object's front; positive azimuth moves the camera toward the
  object's left side (counter-clockwise seen from above, +Z up). Elevation > 0 looks down from
  above. Light azimuth uses the same convention as camera azimuth, measured in the camera's frame
  by default (`light.frame`), as in the paper where the face turned before a fixed light.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

import factors as vocabulary
from factors import FactorKind

INTRINSIC = "intrinsic"
"""The sweep type in which the mesh (identity/shape) varies; every dataset has it beside its factors."""
IID = "iid"
"""The i.i.d. set (every factor and the mesh drawn independently), for the disentanglement metrics."""
SPLITS: tuple[str, ...] = ("train", "test")
EXECUTORS: tuple[str, ...] = ("local", "ray")
"""Where `render` runs its sweeps (`render.executor`)."""
PASSES: tuple[str, ...] = ("depth", "normal", "mask")
"""Ground-truth passes `render.passes` may list, in the order files, manifests and shards use."""


class UserError(Exception):
    """Bad input from the user (parameters, arguments, files). The message is one line naming the
    problem and what to do; the CLI prints it and exits with code 2. Every package raises
    subclasses of this for input it rejects, and nothing else for such input."""


class ConfigError(UserError, ValueError):
    """A bad parameter or command-line argument."""


# --------------------------------------------------------------------------------------------
# Sections of params.yaml
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderSettings:
    size: int = 64
    """Output image width and height in pixels."""
    samples: int = 16
    """Cycles samples per pixel (adaptive sampling off: the count is exact)."""
    color: Literal["gray", "rgb"] = "gray"
    max_bounces: int = 4
    denoise: bool = False
    device: Literal["cpu", "gpu"] = "cpu"
    """`gpu` uses Cycles GPU compute (CUDA/OptiX/HIP/Metal, whichever Blender finds)."""
    workers: int = 0
    """Render processes; 0 = one per CPU core."""
    threads: int = 1
    """Cycles threads per worker process (several single-threaded processes win at small sizes)."""
    executor: Literal["local", "ray"] = "local"
    """Where sweeps render: `local` (a process pool on this machine) or `ray` (one Blender actor per
    worker process of a Ray cluster; `pip install -r requirements-ray.txt`). Output is identical."""
    address: str = ""
    """Ray cluster to join (executor `ray`): `HOST:PORT` of its head (`ray start --head --port PORT`),
    or empty: the RAY_ADDRESS environment variable if set, else a private Ray on this machine."""
    passes: tuple[Literal["depth", "normal", "mask"], ...] = ()
    """Ground-truth passes written beside each PNG (docs/passes.md): any of depth, normal, mask.
    Empty (the default) renders exactly what it did before passes existed."""

    def check(self, at: str) -> None:
        _require(self.size >= 8, f"{at}.size", f"is {self.size}; use at least 8 pixels")
        _require(self.samples >= 1, f"{at}.samples", f"is {self.samples}; use at least 1")
        _require(self.max_bounces >= 0, f"{at}.max_bounces", "must be >= 0")
        _require(self.workers >= 0, f"{at}.workers", "must be >= 0 (0 = one per core)")
        _require(self.threads >= 1, f"{at}.threads", "must be >= 1")
        # Checked here as well as when parsing: a command-line override replaces the field directly.
        _require(self.executor in EXECUTORS, f"{at}.executor",
                 f"is {self.executor!r}; choose one of: {', '.join(EXECUTORS)}")
        _require(_is_cluster_address(self.address), f"{at}.address",
                 f"is {self.address!r}; give HOST:PORT of the Ray head (e.g. 10.0.0.5:6379) or leave it empty")
        # Checked here as well as when parsing: a command-line override replaces the field directly.
        for name in self.passes:
            _require(name in PASSES, f"{at}.passes", f"lists {_show(name)}; choose from: {', '.join(PASSES)}")
            _require(self.passes.count(name) == 1, f"{at}.passes", f"lists {name!r} twice; list each pass once")

    @property
    def pass_names(self) -> tuple[str, ...]:
        """The enabled passes in canonical order (PASSES), whatever order params.yaml lists them in."""
        return tuple(p for p in PASSES if p in self.passes)

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)


@dataclass(frozen=True)
class CameraSettings:
    distance: float = 3.0
    """Distance from the object's centre (objects are normalised to unit size)."""
    fov: float = 30.0
    """Full field of view in degrees."""

    def check(self, at: str) -> None:
        _require(self.distance > 0.5, f"{at}.distance", f"is {self.distance}; must exceed 0.5 (objects have unit size)")
        _require(1.0 <= self.fov <= 170.0, f"{at}.fov", f"is {self.fov}; use 1..170 degrees")


@dataclass(frozen=True)
class LightSettings:
    elevation: float = 30.0
    """Elevation of the sun light above the horizon, in degrees; its azimuth is the `light` factor."""
    strength: float = 3.0
    """Sun strength (irradiance, W/m²)."""
    ambient: float = 0.08
    """Uniform fill light, so the unlit side is not pure black. Background stays black."""
    fill: Literal["world", "flat"] = "world"
    """How the fill light shades: `world`, a uniform white sky that the object shadows itself from (ambient
    occlusion, which Cycles samples: grainy at few samples wherever the sky is half hidden, as under a
    jaw above the shoulders); `flat`, an unshadowed ambient term, albedo x ambient, as in a rasteriser
    (noise-free at any sample count)."""
    frame: Literal["camera", "object"] = "camera"
    """Frame of the light's azimuth: `camera` (the paper: the object turns before a fixed camera and
    light, so the light factor is independent of pose in the image) or `object` (light fixed in the
    world while the camera orbits)."""

    def check(self, at: str) -> None:
        _require(-90.0 <= self.elevation <= 90.0, f"{at}.elevation", "must lie in [-90, 90]")
        _require(self.strength >= 0, f"{at}.strength", "must be >= 0")
        _require(self.ambient >= 0, f"{at}.ambient", "must be >= 0")


@dataclass(frozen=True)
class MeshSource:
    kind: Literal["generator", "folder"] = "generator"
    generator: str = ""
    """`faces` or `chairs` when kind is `generator` (defaults to the dataset's name)."""
    path: str = ""
    """Folder of OBJ/PLY/glTF/GLB files when kind is `folder`."""
    up_axis: Literal["X", "Y", "Z", "-X", "-Y", "-Z"] = "Z"
    """Axis of the user's files that points up; it becomes +Z."""
    forward_axis: Literal["X", "Y", "Z", "-X", "-Y", "-Z"] = "-Y"
    """Axis of the user's files the object faces; it becomes -Y (toward the camera at azimuth 0)."""
    framing: Literal["object", "head"] = "object"
    """`object`: the whole mesh fills the frame (bounding box centred, largest extent 1). `head`: busts
    and heads framed as the face generator frames its heads, on the head above the neck (`assets.framing`)."""

    def check(self, at: str) -> None:
        if self.kind == "folder":
            _require(bool(self.path), f"{at}.path", "is empty; set the folder that holds the mesh files")
            _require(self.up_axis.lstrip("-") != self.forward_axis.lstrip("-"), f"{at}",
                     f"up_axis {self.up_axis} and forward_axis {self.forward_axis} must be different axes")


@dataclass(frozen=True)
class MeshCounts:
    train: int = 40
    test: int = 10

    def check(self, at: str) -> None:
        _require(self.train >= 1, f"{at}.train", "must be >= 1")
        _require(self.test >= 1, f"{at}.test", "must be >= 1 (the evaluation needs held-out meshes)")


@dataclass(frozen=True)
class IidSettings:
    """The i.i.d. set: every factor and the mesh drawn independently (for disentanglement metrics)."""

    train: int = 0
    """Number of i.i.d. groups on training meshes."""
    test: int = 32
    """Number of i.i.d. groups on test meshes."""
    group_size: int = 16
    """Images per i.i.d. group (groups exist only to store the set like sweeps)."""

    def check(self, at: str) -> None:
        _require(self.train >= 0 and self.test >= 0, f"{at}", "group counts must be >= 0")
        _require(self.group_size >= 1, f"{at}.group_size", "must be >= 1")


Range = tuple[float, float]


@dataclass(frozen=True)
class DatasetConfig:
    name: str = ""
    source: MeshSource = field(default_factory=MeshSource)
    meshes: MeshCounts = field(default_factory=MeshCounts)
    steps: int = 16
    """Images per sweep (the paper used 20)."""
    spacing: Literal["even", "random"] = "even"
    """How the active factor's values spread over its range within a sweep."""
    factors: dict[str, FactorKind] = field(default_factory=lambda: dict(vocabulary.PAPER))
    """The scene factors this dataset sweeps, name -> kind (`factors.KINDS`), in label column order."""
    ranges: dict[str, Range] = field(default_factory=dict)
    """[min, max] of each factor, in its kind's unit."""
    groups: dict[str, int] = field(default_factory=dict)
    """Number of training sweeps for each factor and for `intrinsic`."""
    test_groups: int = 16
    """Number of test sweeps per sweep type, on test meshes only."""
    iid: IidSettings = field(default_factory=IidSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    light: LightSettings = field(default_factory=LightSettings)

    def check(self, at: str) -> None:
        _require(bool(self.factors), f"{at}.factors", "is empty; declare at least one factor, e.g. azimuth: camera_azimuth")
        seen: dict[str, str] = {}
        for name, kind in self.factors.items():
            check_dataset_name(name, f"{at}.factors", "factor")  # it names folders and files: data/renders/<d>/<f>
            _require(name not in vocabulary.RESERVED, f"{at}.factors.{name}",
                     f"'{name}' is reserved ({', '.join(vocabulary.RESERVED)}); give the factor another name")
            _require(kind not in seen, f"{at}.factors.{name}",
                     f"has kind {kind}, as '{seen.get(kind)}' does; a kind can be declared once per dataset")
            seen[kind] = name
        _require(set(self.ranges) == set(self.factors), f"{at}.ranges",
                 f"has {sorted(self.ranges)}; give exactly the declared factors {list(self.factors)}")
        for f, (lo, hi) in self.ranges.items():
            vocabulary.check_range(self.factors[f], lo, hi, f"{at}.ranges.{f}", ConfigError)
        _require(set(self.groups) == set(self.sweeps), f"{at}.groups",
                 f"has {sorted(self.groups)}; give exactly {list(self.sweeps)}")
        for f, n in self.groups.items():
            _require(n >= 0, f"{at}.groups.{f}", f"is {n}; must be >= 0")
        check_steps(self.steps, f"{at}.steps")
        _require(self.test_groups >= 1, f"{at}.test_groups",
                 f"is {self.test_groups}; must be >= 1 (the evaluation scores the test sweeps)")

    @property
    def generator(self) -> str:
        return self.source.generator or self.name

    @property
    def factor_names(self) -> tuple[str, ...]:
        """The declared factors, in the column order of every label array."""
        return tuple(self.factors)

    @property
    def sweeps(self) -> tuple[str, ...]:
        """Training sweep types: one factor varies, or the mesh does (`intrinsic`)."""
        return self.factor_names + (INTRINSIC,)

    @property
    def render_sets(self) -> tuple[str, ...]:
        """What `render --factor` renders: the sweeps, and the i.i.d. set for the disentanglement metrics."""
        return self.sweeps + (IID,)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The declared factors' kinds, in factor order."""
        return tuple(self.factors.values())

    def column(self, factor: str) -> int:
        """Column of `factor` in this dataset's label arrays."""
        return self.factor_names.index(factor)

    def flips(self) -> dict[str, int]:
        """How a horizontal image flip acts on each factor (-1: its sign turns, +1: it stays)."""
        return {f: vocabulary.KINDS[k].flip for f, k in self.factors.items()}

    def mesh_dir(self, root: Path | str = "data/meshes") -> Path:
        return Path(root) / self.name

    def render_dir(self, factor: str, root: Path | str = "data/renders") -> Path:
        return Path(root) / self.name / factor

    def shard_dir(self, root: Path | str = "data/shards") -> Path:
        return Path(root) / self.name


@dataclass(frozen=True)
class ShardSettings:
    max_mb: float = 32.0
    """Target upper size of one shard file, in MB (uncompressed image bytes)."""

    def check(self, at: str) -> None:
        _require(self.max_mb > 0, f"{at}.max_mb", "must be > 0")


@dataclass(frozen=True)
class ModelConfig:
    arch: Literal["conv4", "paper"] = "conv4"
    latents: int = 32
    """Latent size (the paper: 200)."""
    owned: dict[str, int] = field(default_factory=lambda: {f: 1 for f in vocabulary.PAPER})
    """How many latents each factor owns, by factor name (z1.. in a dataset's factor order); the rest are
    intrinsic. Every factor a dataset declares needs a count."""
    mirror: bool = False
    """Mirror-equivariant encoder (not in the paper): each factor's latent odd or even under a horizontal
    flip of the image as its kind is (`factors.Kind.flip`; azimuth and light odd, elevation even)."""
    likelihood: Literal["bernoulli", "gaussian", "calibrated"] = "bernoulli"
    """p(x|z) of the pixels (`model.loss.reconstruction`): bernoulli (the paper), gaussian of a fixed
    `sigma`, or calibrated (a Gaussian whose σ² is the batch's mean squared error; not in the paper)."""
    sigma: float = 0.1
    """σ of the `gaussian` likelihood, in pixel units of [0, 1]."""
    decoder_width: int = 1
    """conv4 only: the decoder's channels and hidden units times this (1 = the encoder's mirror, the
    field's standard network)."""

    def check(self, at: str) -> None:
        _require(self.sigma > 0, f"{at}.sigma", f"is {self.sigma}; give a positive standard deviation, e.g. 0.1")
        _require(self.decoder_width >= 1, f"{at}.decoder_width", f"is {self.decoder_width}; must be >= 1")
        _require(self.decoder_width == 1 or self.arch == "conv4", f"{at}.decoder_width",
                 "applies to the conv4 network only; set it to 1 with arch: paper")
        for f, n in self.owned.items():
            _require(n >= 1, f"{at}.owned.{f}", f"is {n}; every factor owns at least 1 latent")


ModelKind = Literal["dcign", "vae", "betavae", "adagvae", "adamlvae", "gvae"]
MODEL_KINDS: tuple[str, ...] = typing.get_args(ModelKind)
"""What `train --model` trains: DC-IGN, the entangled VAE (the paper's baseline), and the later
methods on the same network and shards: beta-VAE, Ada-GVAE, Ada-ML-VAE, GVAE (`model.weak`)."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    """Optimiser steps (mini-batches)."""
    batch_size: int = 16
    """Images per batch for the entangled `vae` baseline (DC-IGN batches are whole sweeps)."""
    lr: float = 5e-4
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Learning rate over the run: `constant` (the paper, the original code) or `cosine`, which decays it
    from `lr` to zero at `steps` along half a cosine (Loshchilov & Hutter 2017); a pure function of the
    step, so a resumed run follows the same curve. Raising `steps` of a finished cosine run re-stretches
    the curve rather than continuing it."""
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    beta: float = 1.0
    """Weight of the KL term (1 = the SGVB bound)."""
    clamp: Literal["mean", "first"] = "mean"
    """Value that replaces non-owned latents in a batch: batch mean (paper) or first sample (original code)."""
    clamp_target: Literal["mu_logvar", "z"] = "mu_logvar"
    """Clamp the posterior parameters (original code) or the sampled z."""
    pull: float = 0.01
    """Strength of the invariance pull of clamped latents toward their batch mean (0 = off)."""
    free_bits: float = 0.0
    """Nats of KL per tied latent (batch average) left unpenalised in DC-IGN steps (0 = off): a tied
    latent whose factor shows little in the picture cannot die by collapsing to the prior."""
    mix: dict[str, float] = field(default_factory=lambda: {**{f: 1.0 for f in vocabulary.PAPER}, INTRINSIC: 10.0})
    """Relative frequency of sweep types in training, by factor name and `intrinsic` (the paper: about
    1:1:1:10). Every factor a dataset declares needs a weight."""
    warm_start: int = 0
    """Steps of plain VAE training on shuffled images before DC-IGN training (0 = none)."""
    vae_every: int = 0
    """After the warm start, every `vae_every`-th DC-IGN step is a plain VAE step on shuffled images
    instead (0 = never, the paper): the decoder keeps learning to render from unclamped codes."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Arithmetic of the networks' convolutions and linear layers in training: `fp32` (the paper) or `bf16`
    (autocast; weights, optimiser, posterior heads and losses stay fp32). On CPUs with AVX512-BF16 or AMX,
    and on recent GPUs, bf16 trains about 1.5x more images per second (`bench/train.py`)."""
    ssim_weight: float = 0.0
    """Weight of a structural term, pixels × (1 − SSIM) of the decoded image (`model.loss.structural`),
    added to −log p(x|z) in every step of every model (0 = the paper: the likelihood alone)."""
    view_shift: float = 0.0
    """What the encoder sees (not in the paper: 0): each training image moved by up to this many pixels in each
    direction (sub-pixel, uniform), while the decoder's target stays the render itself (`model.augment`), so no
    latent can read a factor off where the object sits in the frame. Every step of every model."""
    view_scale: float = 0.0
    """The encoder's view of each training image also scaled by a factor within 1 ± this about the centre,
    the target unscaled, as `view_shift` (not in the paper: 0)."""
    beta_intrinsic: float = 1.0
    """KL weight of the intrinsic (identity) latents relative to `beta` in DC-IGN training (1 = the paper);
    below 1 the identity code keeps more detail. The baseline `vae` is not affected."""
    sweeps_per_step: int = 4
    """Sweeps stacked into one DC-IGN optimiser step, each clamped on its own (the same as accumulating
    the gradients of that many one-sweep mini-batches); larger steps use the CPU better."""
    models: tuple[ModelKind, ...] = ("dcign", "vae")
    """The models `dvc repro` trains and evaluates for every dataset (one `train@`/`evaluate@` stage each)."""
    betavae_beta: float = 4.0
    """KL weight of the `betavae` model (Higgins et al. 2017; disentanglement_lib sweeps 1-16)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds of `python cli.py benchmark` (each model once per seed; `seed` is the data's and
    the DVC stages' seed)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0
    """CPU threads for torch (0 = one per core). Fixed, so the same seed gives the same weights."""
    checkpoint_every: int = 250
    log_every: int = 50
    image_every: int = 500
    """Steps between logged grids of sample reconstructions."""

    def check(self, at: str) -> None:
        _require(self.steps >= 1, f"{at}.steps", "must be >= 1")
        _require(0 <= self.warm_start < self.steps, f"{at}.warm_start",
                 f"is {self.warm_start}; use 0 <= warm_start < steps ({self.steps}) (warm-start steps are part of steps)")
        _require(self.sweeps_per_step >= 1, f"{at}.sweeps_per_step", "must be >= 1")
        _require(self.threads >= 0, f"{at}.threads", "must be >= 0 (0 = one per core)")
        _require(self.image_every >= 1, f"{at}.image_every", "must be >= 1")
        _require(self.batch_size >= 2, f"{at}.batch_size", "must be >= 2")
        _require(self.lr > 0, f"{at}.lr", "must be > 0")
        _require(self.weight_decay >= 0, f"{at}.weight_decay", "must be >= 0 (0 = off)")
        _require(all(0 <= b < 1 for b in self.betas), f"{at}.betas", "each must lie in [0, 1)")
        _require(self.beta >= 0 and self.pull >= 0, f"{at}", "beta and pull must be >= 0")
        _require(self.free_bits >= 0, f"{at}.free_bits", "must be >= 0 (nats; 0 = off)")
        _require(self.vae_every >= 0, f"{at}.vae_every", "must be >= 0 (0 = no interleaved VAE steps)")
        _require(self.beta_intrinsic >= 0, f"{at}.beta_intrinsic", "must be >= 0")
        _require(self.ssim_weight >= 0, f"{at}.ssim_weight", "must be >= 0 (0 = off, the paper)")
        _require(0 <= self.view_shift < math.inf, f"{at}.view_shift",
                 f"is {self.view_shift}; give pixels >= 0 (0 = off, the paper)")
        _require(0 <= self.view_scale < 0.5, f"{at}.view_scale",
                 f"is {self.view_scale}; give a fraction in [0, 0.5) (0 = off, the paper)")
        _require(INTRINSIC in self.mix, f"{at}.mix", "give a weight for intrinsic (the identity sweeps)")
        # A finite sum too: the weights are normalised by it (1e308 twice is inf, and every share 0).
        _require(all(w >= 0 for w in self.mix.values()) and 0 < sum(self.mix.values()) < math.inf, f"{at}.mix",
                 "weights must be >= 0, not all 0, and add up to a finite number")
        _require(self.checkpoint_every >= 1 and self.log_every >= 1, f"{at}", "checkpoint_every and log_every must be >= 1")
        _require(len(set(self.models)) == len(self.models) and {"dcign", "vae"} <= set(self.models), f"{at}.models",
                 f"list each model once, dcign and vae included (the report compares them); others: "
                 f"{', '.join(MODEL_KINDS[2:])}")
        _require(self.betavae_beta >= 0, f"{at}.betavae_beta", "must be >= 0")
        _require(bool(self.seeds) and len(set(self.seeds)) == len(self.seeds), f"{at}.seeds",
                 "list at least one seed, each once")
        for i, seed in enumerate(self.seeds):
            check_seed(seed, f"{at}.seeds[{i}]")


@dataclass(frozen=True)
class EvaluateConfig:
    factor_bins: int = 10
    """Equal-width bins that discretise each continuous factor for the disentanglement metrics."""
    votes_train: int = 10000
    """FactorVAE votes / BetaVAE features drawn from the i.i.d. set's training part (library default)."""
    votes_eval: int = 5000
    """... and from its test part (library default)."""
    mapping_bins: int = 16
    """Bins over a factor's range for the factor -> latent mapping (binned means of training codes)."""
    rerender_sources: int = 4
    """Source images per test sweep re-rendered to every other value of that sweep."""
    traversal_steps: int = 9
    """Columns of the latent traversal figures."""

    def check(self, at: str) -> None:
        _require(self.factor_bins >= 2, f"{at}.factor_bins", "must be >= 2")
        _require(self.votes_train >= 10 and self.votes_eval >= 10, f"{at}", "votes_train and votes_eval must be >= 10")
        _require(self.mapping_bins >= 2, f"{at}.mapping_bins", "must be >= 2")
        _require(self.rerender_sources >= 1, f"{at}.rerender_sources", "must be >= 1")
        _require(self.traversal_steps >= 2, f"{at}.traversal_steps", "must be >= 2")


@dataclass(frozen=True)
class Params:
    seed: int = 0
    render: RenderSettings = field(default_factory=RenderSettings)
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    shard: ShardSettings = field(default_factory=ShardSettings)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def check(self, at: str) -> None:
        check_seed(self.seed, "seed")
        _require(bool(self.datasets), "datasets", "is empty; define at least one dataset")
        for name in self.datasets:
            check_dataset_name(name, "datasets")
            _require(name != "all", "datasets", "'all' is not a dataset name: `--dataset all` means every dataset; "
                     "rename it")
        # model.owned and train.mix are keyed by factor name: exactly the factors some dataset declares.
        declared = {f for ds in self.datasets.values() for f in ds.factors}
        for key, given, extra in (("model.owned", self.model.owned, set()), ("train.mix", self.train.mix, {INTRINSIC})):
            for f in given:
                _require(f in declared | extra, f"{key}.{f}",
                         f"no dataset declares a factor '{f}' (declared: {', '.join(sorted(declared))}); remove it")
            for name, ds in self.datasets.items():
                for f in ds.factors:
                    _require(f in given, key, f"has no entry for factor '{f}' of dataset '{name}'; add `{f}: 1`")
        for name, ds in self.datasets.items():
            owned = sum(self.model.owned[f] for f in ds.factors)
            _require(self.model.latents > owned, "model.latents",
                     f"is {self.model.latents}; dataset '{name}' needs more than its {owned} owned latents, "
                     "to leave intrinsic ones")

    def owned(self, dataset: str) -> dict[str, int]:
        """Latents each factor of `dataset` owns, in its factor order (the layout z1.. of its models)."""
        return {f: self.model.owned[f] for f in self.dataset(dataset).factors}

    def model_for(self, dataset: str) -> "ModelConfig":
        """`model:` as `dataset`'s networks use it: `owned` lists exactly its factors, in its order."""
        return dataclasses.replace(self.model, owned=self.owned(dataset))

    def mix(self, dataset: str) -> dict[str, float]:
        """Sweep-type weights of `dataset`'s training, in its sweep order."""
        return {s: self.train.mix[s] for s in self.dataset(dataset).sweeps}

    def dataset(self, name: str) -> DatasetConfig:
        if name not in self.datasets:
            raise ConfigError(f"unknown dataset {_show(name)}; params.yaml defines: {', '.join(self.datasets)}")
        return self.datasets[name]


# --------------------------------------------------------------------------------------------
# Checks shared with the CLI's overrides
# --------------------------------------------------------------------------------------------


def check_steps(steps: int, at: str) -> None:
    _require(steps >= 2, at, f"is {steps}; a sweep needs at least 2 steps")


def check_seed(seed: int, at: str) -> None:
    # numpy's SeedSequence refuses negative seeds; scikit-learn's random_state needs them below 2**32.
    _require(0 <= seed < 2**32, at, f"is {_show(seed)}; must be >= 0 and < 2**32")


DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A dataset's name is a folder and file name (data/meshes/<name>, models/<name>-dcign.pt): no separators,
no leading dot (so neither `.` nor `..`), nothing that leaves the folder it is put in."""


def check_dataset_name(name: str, at: str, what: str = "dataset") -> None:
    """A dataset's or a factor's name: both name folders and files."""
    _require(DATASET_NAME.fullmatch(name) is not None, at,
             f"{_show(name)} is not a valid {what} name; use up to 64 letters, digits, '_', '.' and '-', "
             "starting with a letter or digit")


def check_factor(factor: str, allowed: tuple[str, ...]) -> str:
    if factor not in allowed:
        raise ConfigError(f"unknown factor {_show(factor)}; choose one of: {', '.join(allowed)}")
    return factor


_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")


def _is_cluster_address(address: str) -> bool:
    """`render.address`: empty, or HOST:PORT (IPv6 hosts in brackets)."""
    match = _ADDRESS.fullmatch(address)
    return address == "" or (match is not None and 1 <= int(match["port"]) <= 65535)


def _require(ok: bool, at: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"{at}: {problem}")


def _show(value: Any, limit: int = 60) -> str:
    """A value as messages quote it: its repr (one line: newlines are escaped), cut short if long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate `params.yaml`. Raises ConfigError (one line) on any problem."""
    path = Path(path)
    text = _read_text(path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}; fix the syntax") from None
    except ValueError as err:  # PyYAML builds `2001-13-45` as a date and lets datetime's error through
        raise ConfigError(f"{path}: a value cannot be read ({err}); quote it or fix it") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a parameters file") from None
    return parse_params(raw)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(f"{path}: parameters file not found; run from the repository root or pass --params") from None
    except OSError as err:  # unreadable, a name too long, ...
        raise ConfigError(f"{path}: cannot read the parameters file ({err.strerror or err}); check the path") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                          "save it as UTF-8") from None


def parse_params(raw: Mapping[str, Any]) -> Params:
    params = _build(Params, raw, "")
    # Dataset names come from their keys; a dataset section need not repeat its name.
    datasets = {name: dataclasses.replace(ds, name=name) for name, ds in params.datasets.items()}
    return dataclasses.replace(params, datasets=datasets)


def _build(cls: type, raw: Any, at: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{at or 'params'}: expected a mapping of keys, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - names, key=str)  # YAML keys need not be strings: `1:` or `null:`
    if unknown:
        raise ConfigError(f"{_join(at, unknown[0])}: unknown key; valid keys here: {', '.join(sorted(names))}")
    values = {k: _convert(hints[k], v, _join(at, k)) for k, v in raw.items()}
    obj = cls(**values)
    obj.check(at or "params")
    return obj


def _convert(tp: Any, value: Any, at: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, at)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{at}: is {_show(value)}; choose one of: {', '.join(map(str, choices))}")
        return value
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{at}: expected a mapping, got {_show(value)}")
        return {str(k): _convert(vt, v, _join(at, k)) for k, v in value.items()}
    if origin is tuple and typing.get_args(tp)[-1:] == (Ellipsis,):  # tuple[X, ...]: a list of any length
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{at}: expected a list, got {_show(value)}")
        item = typing.get_args(tp)[0]
        return tuple(_convert(item, v, f"{at}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{at}: expected a list of {len(args)} values, got {_show(value)}")
        return tuple(_convert(t, v, f"{at}[{i}]") for i, (t, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{at}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{at}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{at}: expected a number, got {_show(value)}")
        return _finite(value, at)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{at}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"config field {at} has unsupported type {tp}")  # a bug in this file, not user input


def _finite(value: int | float, at: str) -> float:
    """Every float setting is a finite quantity. NaN fails every comparison and inf passes one-sided
    ones (`lr > 0`), so neither may reach a field's range check, or a stage (`int(inf)` raises)."""
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the largest float
        number = math.inf
    _require(math.isfinite(number), at, f"is {_show(value, 20)}; must be a finite number")
    return number


def _join(at: str, key: Any) -> str:
    # Keys are the user's: one with a newline or of a page's length is quoted, to keep messages one line.
    key = key if isinstance(key, str) and key.isprintable() and len(key) <= 60 else _show(key)
    return f"{at}.{key}" if at else key
