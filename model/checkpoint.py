"""Checkpoints: atomic save, safe load (`torch.load(weights_only=True)`), and `load_model`.

A checkpoint is one dict of tensors and plain Python values (nothing that needs unpickling code):
    format, meta (ModelMeta as a dict), model (state_dict), and, for resuming, optimizer,
    samplers (data-order state), rng (torch RNG states), fingerprint (what the run depends on).
The final model `models/<dataset>-<model>.pt` has the same layout, so it can be resumed or extended.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import durable
from config import MODEL_KINDS, ModelConfig, UserError
from model.latents import paper_flips
from model.nets import VAE, from_config

FORMAT = 1
KINDS = MODEL_KINDS
ASSIGNED_KINDS = ("dcign", "gvae")
"""Models trained to give each factor its own latents (`meta.owned`); the others are scored on the single
latent that varies most with each factor."""
LATER_MODEL_KEYS = ("likelihood", "sigma", "decoder_width")
"""`model:` keys added after the first checkpoints: stored only when not at their default, so an older
checkpoint (which lacks them) reads as the default, and a model of the default settings keeps its bytes."""


def stored_config(config: ModelConfig) -> dict[str, Any]:
    """The `model:` settings as a checkpoint stores them: LATER_MODEL_KEYS only where not at their default."""
    out, default = dataclasses.asdict(config), ModelConfig()
    for key in LATER_MODEL_KEYS:
        if out[key] == getattr(default, key):
            del out[key]
    return out


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable, or not one of ours."""


@dataclass(frozen=True)
class ModelMeta:
    kind: str
    """One of KINDS."""
    dataset: str
    size: int
    channels: int
    latents: int
    owned: dict[str, list[int]]
    """Latent indices per factor, in the dataset's factor order; all other latents are intrinsic."""
    step: int
    """Optimiser steps done."""
    config: ModelConfig
    flips: dict[str, int] = dataclasses.field(default_factory=dict)
    """How a horizontal flip acts on each factor (its kind's); stored only when not the paper's factors'
    (`model.latents.paper_flips`), so the paper's checkpoints keep their bytes."""

    def __post_init__(self):
        if not self.flips:  # a checkpoint of the paper's factors stores none
            object.__setattr__(self, "flips", paper_flips(self.owned) or {})

    def to_dict(self) -> dict[str, Any]:
        out = {**dataclasses.asdict(self), "config": stored_config(self.config)}
        if self.flips == paper_flips(self.owned):
            del out["flips"]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ModelMeta":
        return cls(**{**raw, "config": ModelConfig(**raw["config"])})


def save(path: Path | str, state: dict[str, Any]) -> None:
    """Write `state` to `path` durably: a kill or a power loss leaves the old file or the new one, never half."""
    with durable.replacing(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load(path: Path | str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint dict without executing pickled code. Raises CheckpointError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train one with `python cli.py train` or pass the right path")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason}); retrain it or pass the right file") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "meta" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a DC-IGN checkpoint of format {FORMAT}; retrain it with `python cli.py train`")
    return state


def model_from_state(state: dict[str, Any], device: str | torch.device = "cpu") -> tuple[VAE, ModelMeta]:
    meta = ModelMeta.from_dict(state["meta"])
    model = from_config(meta.config, meta.size, meta.channels, meta.flips)
    model.load_state_dict(state["model"])
    return model.to(device), meta


def load_model(path: Path | str, device: str | torch.device = "cpu") -> tuple[VAE, ModelMeta]:
    """The trained model (in eval mode, on `device`) and its metadata."""
    try:
        model, meta = model_from_state(load(path, device), device)
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: checkpoint does not match the model code ({type(err).__name__}); retrain it") from None
    return model.eval(), meta
