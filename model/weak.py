"""Weakly-supervised baselines on the same sweeps (pure functions): Ada-GVAE, Ada-ML-VAE and GVAE.

Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises". Two images of one
sweep share every factor but the swept one, so each sweep is a source of pairs:

1. Encode both images of a pair: q1 = N(mu1, var1), q2 = N(mu2, var2).
2. Decide which latents the pair shares:
   - `adagvae`, `adamlvae` (adaptive, the sweep's factor is not revealed): per latent the symmetric
     KL between q1 and q2 (the mean of both directions); a latent is shared when its divergence is
     below the threshold halfway between the pair's smallest and largest divergence.
   - `gvae` (known groups, told which factor changed, as DC-IGN is): the latents DC-IGN would clamp in
     that sweep (`model.latents.clamp_mask`) are shared, the swept factor's own latents are not.
3. Replace both posteriors on the shared latents by one aggregate: GVAE the arithmetic mean of the two
   Gaussians' parameters (mean of means, mean of variances); ML-VAE their product, renormalised
   (precisions add, the mean is precision-weighted).
4. Loss: the ELBO of each image with its aggregated posterior (reconstruction + β · KL to the prior),
   averaged over images.
"""
from __future__ import annotations

import torch

AGGREGATION = {"adagvae": "mean", "adamlvae": "product", "gvae": "mean"}
"""How each weakly-supervised model aggregates the shared posteriors."""
WEAK_KINDS = tuple(AGGREGATION)


def symmetric_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """Per latent ½ (KL(q1 || q2) + KL(q2 || q1)) of diagonal Gaussians, [P, L]. The log terms cancel:
    ½ · ((var1 + (mu1 − mu2)²) / var2 + (var2 + (mu1 − mu2)²) / var1) / 2 − ½."""
    var1, var2 = logvar1.exp(), logvar2.exp()
    d2 = (mu1 - mu2).pow(2)
    return 0.25 * ((var1 + d2) / var2 + (var2 + d2) / var1) - 0.5


def adaptive_shared(delta: torch.Tensor) -> torch.Tensor:
    """Bool [P, L]: latents whose divergence is below τ = (max + min) / 2 of its pair's row."""
    tau = 0.5 * (delta.max(dim=1, keepdim=True).values + delta.min(dim=1, keepdim=True).values)
    return delta < tau


def aggregate(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor,
              how: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The one posterior (mu, logvar) that replaces both on shared latents: `mean` (GVAE) or `product`
    (ML-VAE: the normalised product of the two Gaussians)."""
    var1, var2 = logvar1.exp(), logvar2.exp()
    if how == "mean":
        return 0.5 * (mu1 + mu2), (0.5 * (var1 + var2)).log()
    if how == "product":
        var = 1.0 / (1.0 / var1 + 1.0 / var2)
        return var * (mu1 / var1 + mu2 / var2), var.log()
    raise ValueError(f"unknown aggregation {how!r}; choose mean or product")


def pair_indices(sweeps: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """[sweeps * steps // 2, 2] row indices into a stack of sweeps (sweep s = rows s*steps..): each sweep's
    images shuffled and paired off, so every image is in exactly one pair with another of its sweep.
    Drawn from `generator` (seeded per step), so the pairs do not depend on how ranks split a step."""
    if steps % 2:
        raise ValueError(f"pairs need an even number of images per sweep, got {steps}")
    rows = [s * steps + torch.randperm(steps, generator=generator) for s in range(sweeps)]
    return torch.cat(rows).view(-1, 2)


def paired_posteriors(mu: torch.Tensor, logvar: torch.Tensor, pairs: torch.Tensor, how: str,
                      shared: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's posterior after aggregation with its partner, [N, L] (rows of `mu`, `logvar`).

    pairs: [P, 2] rows; shared: bool [P, L] (None: chosen adaptively)."""
    a, b = pairs[:, 0], pairs[:, 1]
    if shared is None:
        shared = adaptive_shared(symmetric_kl(mu[a], logvar[a], mu[b], logvar[b]).detach())
    amu, alv = aggregate(mu[a], logvar[a], mu[b], logvar[b], how)
    out_mu, out_lv = mu.clone(), logvar.clone()
    out_mu[a], out_lv[a] = torch.where(shared, amu, mu[a]), torch.where(shared, alv, logvar[a])
    out_mu[b], out_lv[b] = torch.where(shared, amu, mu[b]), torch.where(shared, alv, logvar[b])
    return out_mu, out_lv
