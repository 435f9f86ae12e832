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

import functools

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


SSIM_SIGMA, SSIM_RADIUS = 1.5, 5
"""The Gaussian window of SSIM (Wang et al. 2004): σ 1.5 pixels, 11×11, as `evaluate.rerender.ssim`."""


@functools.lru_cache(maxsize=8)
def _blur_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[n, n] matrix G such that G @ v is the 11×11 window's 1-D Gaussian blur of v, with borders mirrored
    about the edge (scipy's `reflect`, d c b a | a b c d, as the evaluation's SSIM)."""
    t = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / SSIM_SIGMA) ** 2)
    k = k / k.sum()
    g = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for off, w in zip(range(-SSIM_RADIUS, SSIM_RADIUS + 1), k.tolist()):
            j = i + off
            while not 0 <= j < n:  # mirror about the edge until inside
                j = -j - 1 if j < 0 else 2 * n - j - 1
            g[i, j] += w
    return g.to(dtype=dtype, device=device)


def _gaussian_blur(x: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of [..., H, W] as two small matrix products (on a CPU much faster than
    depthwise convolutions of one channel)."""
    gh = _blur_matrix(x.shape[-2], x.dtype, x.device)
    gw = gh if x.shape[-1] == x.shape[-2] else _blur_matrix(x.shape[-1], x.dtype, x.device)
    return gh @ x.contiguous() @ gw.T


def ssim_from_moments(mu_a, mu_b, aa, bb, ab):
    """The SSIM map (Wang et al. 2004; K1 0.01, K2 0.03, data range 1) from the windowed means of a, b,
    a², b² and ab: torch tensors (the training loss) or numpy arrays (`evaluate.rerender.ssim`) alike."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    var_a, var_b, cov = aa - mu_a ** 2, bb - mu_b ** 2, ab - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def structural(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Pixels × (1 − SSIM) of the decoded mean sigmoid(logits) against x, per image [B]: a loss on local
    structure (means, contrasts, correlations in 11×11 windows), scaled by the pixel count like the summed
    −log p(x|z) it is added to (`train.ssim_weight`). Pixel-wise likelihoods forgive blur that SSIM
    does not: averaging plausible details lowers their error but flattens local contrast."""
    a = torch.sigmoid(logits)
    moments = _gaussian_blur(torch.stack([a, x, a * a, x * x, a * x])).unbind(0)  # one product for all five
    return (1.0 - ssim_from_moments(*moments)).flatten(1).sum(dim=1)


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
