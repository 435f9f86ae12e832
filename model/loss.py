"""The SGVB loss: Bernoulli reconstruction (BCE on logits, summed over pixels) + β · analytic KL
(optionally with free bits for the tied latents).

All functions return per-image values [B]; the training loop averages them over the batch so the
learning rate does not depend on how many images a step holds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) under independent Bernoulli pixels with probabilities sigmoid(logits), per image."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return bce.flatten(1).sum(dim=1)


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
