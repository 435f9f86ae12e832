"""The SGVB loss: reconstruction −log p(x|z) + β · analytic KL (optionally with free bits for the
tied latents).

The decoder always outputs logits; the pixel mean is sigmoid(logits). `model.likelihood` picks p(x|z):
- `bernoulli` (the paper and the original code): BCE on logits, summed over pixels.
- `gaussian`: independent Gaussians of a fixed σ (`model.sigma`) around the mean.
- `calibrated`: Gaussians whose one shared σ is the maximum-likelihood value, σ² = the batch's mean
  squared error (Rybkin et al. 2021, "σ-VAE"). A Bernoulli on gray pixels weighs an error like a
  Gaussian of σ ≈ 0.5, so the KL term outweighs the detail that makes a face recognisable; a σ that
  shrinks as the decoder improves keeps the two in the proportion the data calls for.

All functions return per-image values [B]; the training loop averages them over the batch so the
learning rate does not depend on how many images a step holds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


LIKELIHOODS = ("bernoulli", "gaussian", "calibrated")
MIN_SIGMA = 1e-3
"""Floor of the calibrated σ: a batch the decoder matches exactly must not divide by zero."""


def reconstruction(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli",
                   sigma: float = 0.1) -> torch.Tensor:
    """−log p(x|z) per image [B] (constants that do not depend on the network dropped).

    bernoulli: independent Bernoulli pixels of probability sigmoid(logits). gaussian: independent
    Gaussians N(sigmoid(logits), sigma²). calibrated: the same with σ² the mean squared error over
    the whole batch, held fixed in the gradient, plus its log-normaliser D·log σ."""
    if likelihood == "bernoulli":
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return bce.flatten(1).sum(dim=1)
    squared = (torch.sigmoid(logits) - x).pow(2).flatten(1)
    if likelihood == "gaussian":
        return 0.5 * squared.sum(dim=1) / sigma ** 2
    if likelihood == "calibrated":
        var = squared.detach().mean().clamp_min(MIN_SIGMA ** 2)
        return 0.5 * squared.sum(dim=1) / var + 0.5 * squared.shape[1] * var.log()
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")


def kl_per_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) of each latent of each image, [B, L]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latents, per image."""
    return kl_per_latent(mu, logvar).sum(dim=1)


def free_bits_kl(kl: torch.Tensor, free: torch.Tensor, nats: float) -> torch.Tensor:
    """The KL term with free bits (Kingma et al. 2016) for some latents: a latent in `free` whose KL,
    averaged over the images of the batch, is below `nats` is not penalised at all, so the optimiser
    gains nothing by letting it collapse to the prior (a dead latent) while it carries little.

    kl: [B, L] per image and latent; free: bool [L]. Returns the per-image KL to average, [B]."""
    below = kl.detach().mean(dim=0) < nats
    return (kl * ~(free & below)).sum(dim=1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = μ + σ·ε; `eps` (standard normal, any shape with μ's element count) is drawn here if not given."""
    eps = torch.randn_like(mu) if eps is None else eps.view_as(mu)
    return mu + torch.exp(0.5 * logvar) * eps
