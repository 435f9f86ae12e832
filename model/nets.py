"""Encoder/decoder architectures by name: `conv4` (fast default) and `paper` (the original network).

Both map images x [B, C, H, W] in [0, 1] to posterior parameters (mu, logvar) [B, L] and latents
z [B, L] back to pixel logits [B, C, H, W] (apply sigmoid for images). Any square size >= 16 works.

- `conv4`: the field's standard 64×64 VAE network (4 convolutions 32, 32, 64, 64 channels, 4×4
  stride 2, a 256-unit layer; the decoder is its mirror with transposed convolutions). Fewer
  convolutions for small images (32×32: 3) so the last feature map stays about 4×4; odd sizes are
  restored exactly with output padding.
- `paper`: `init_network2_150_mv` of the authors' code: 5×5 convolutions 96, 48, 24 without padding,
  each followed by 2×2 max-pooling; linear heads for mu and logvar; decoder linear → 24×d×d, then four
  blocks of nearest ×2 upsampling + 7×7 convolution without padding (48, 96, 96, C channels). At
  150×150 it is exact (d = 15). Other sizes: d = ceil((size + 90) / 16), and the decoder's output is
  centre-cropped to the size; below 64 pixels the encoder pads its convolutions (else it would
  shrink to nothing).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from config import ConfigError, ModelConfig
from model.latents import mirror_parity

ARCHS = ("conv4", "paper")
MIN_SIZE = 16


class VAE(nn.Module):
    """An encoder producing (mu, logvar) and a decoder producing logits; the DC-IGN and the baseline
    share this class; only their training differs.

    `parity` (optional, [L] of -1, +1, 0) makes the encoder mirror-equivariant: a horizontally flipped
    image is the render of the mirrored mesh at azimuth -a and light -l (elevation unchanged), so a
    latent of parity -1 is made odd under the flip, mu(flip x) = -mu(x), one of parity +1 even, and
    0 leaves a latent free. It is an inductive bias from the rendering's geometry, not in the paper
    (`model.mirror`); it rules out the "switch" the paper saw, where the azimuth latent folds back
    for one profile. Costs one more encoder pass.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, parity: Sequence[int] | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("parity", None if parity is None else torch.tensor(parity, dtype=torch.float32),
                             persistent=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.parity is None:
            return self.encoder(x)
        mu2, logvar2 = self.encoder(torch.cat([x, x.flip(-1)]))  # one batched pass for both views
        (mu, mu_flip), (logvar, logvar_flip) = mu2.chunk(2), logvar2.chunk(2)
        tied = self.parity != 0
        mu = torch.where(tied, 0.5 * (mu + self.parity * mu_flip), mu)
        logvar = torch.where(tied, 0.5 * (logvar + logvar_flip), logvar)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


def build(arch: str, size: int, channels: int, latents: int, parity: Sequence[int] | None = None) -> VAE:
    """`parity`: see `VAE`; `model.latents.mirror_parity` derives it from the model config."""
    if arch not in ARCHS:
        raise ConfigError(f"model.arch: unknown architecture '{arch}'; choose one of: {', '.join(ARCHS)}")
    if size < MIN_SIZE:
        raise ConfigError(f"image size {size} is too small for the model; render at least {MIN_SIZE} pixels")
    if arch == "conv4":
        return VAE(_Conv4Encoder(size, channels, latents), _Conv4Decoder(size, channels, latents), parity)
    return VAE(_PaperEncoder(size, channels, latents), _PaperDecoder(size, channels, latents), parity)


def from_config(mc: ModelConfig, size: int, channels: int) -> VAE:
    """The network `params.yaml`'s `model:` section describes, for images of that size and channels."""
    parity = mirror_parity(mc.owned, mc.latents) if mc.mirror else None
    return build(mc.arch, size, channels, mc.latents, parity)


class _Heads(nn.Module):
    """Two linear heads (mu, logvar) fused into one matrix multiply."""

    def __init__(self, features: int, latents: int):
        super().__init__()
        self.linear = nn.Linear(features, 2 * latents)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.linear(h).chunk(2, dim=1)
        return mu, logvar


# ------------------------------------------------------------------------------------ conv4

CONV4_CHANNELS = (32, 32, 64, 64)
CONV4_HIDDEN = 256


def _conv4_sizes(size: int) -> list[int]:
    """Spatial sizes after each stride-2 convolution: up to 4 layers, stopping near 4×4."""
    sizes = [size]
    while len(sizes) <= len(CONV4_CHANNELS) and sizes[-1] >= 8:
        sizes.append(sizes[-1] // 2)  # 4×4 kernel, stride 2, padding 1
    return sizes


class _Conv4Encoder(nn.Module):
    def __init__(self, size: int, channels: int, latents: int):
        super().__init__()
        sizes = _conv4_sizes(size)
        chans = (channels,) + CONV4_CHANNELS[: len(sizes) - 1]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
        features = chans[-1] * sizes[-1] ** 2
        layers += [nn.Flatten(), nn.Linear(features, CONV4_HIDDEN), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.heads = _Heads(CONV4_HIDDEN, latents)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.body(x))


class _Conv4Decoder(nn.Module):
    def __init__(self, size: int, channels: int, latents: int):
        super().__init__()
        sizes = _conv4_sizes(size)
        chans = (channels,) + CONV4_CHANNELS[: len(sizes) - 1]
        self.shape = (chans[-1], sizes[-1], sizes[-1])
        layers: list[nn.Module] = [
            nn.Linear(latents, CONV4_HIDDEN), nn.ReLU(inplace=True),
            nn.Linear(CONV4_HIDDEN, math.prod(self.shape)), nn.ReLU(inplace=True),
            nn.Unflatten(1, self.shape),
        ]
        steps = list(zip(chans[:-1], chans[1:], sizes[:-1], sizes[1:]))[::-1]
        for i, (cout, cin, big, small) in enumerate(steps):
            # output_padding restores odd sizes that the encoder's floor division dropped
            layers.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, output_padding=big - 2 * small))
            if i < len(steps) - 1:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


# ------------------------------------------------------------------------------------ paper

PAPER_ENC_CHANNELS = (96, 48, 24)
PAPER_DEC_CHANNELS = (48, 96, 96)
PAPER_ENC_KERNEL, PAPER_DEC_KERNEL = 5, 7


def _paper_encoder_sizes(size: int, padding: int) -> list[int]:
    sizes = [size]
    for _ in PAPER_ENC_CHANNELS:
        sizes.append((sizes[-1] + 2 * padding - PAPER_ENC_KERNEL + 1) // 2)
    return sizes


def _paper_padding(size: int) -> int:
    return 0 if _paper_encoder_sizes(size, 0)[-1] >= 4 else PAPER_ENC_KERNEL // 2


class _PaperEncoder(nn.Module):
    def __init__(self, size: int, channels: int, latents: int):
        super().__init__()
        padding = _paper_padding(size)
        layers: list[nn.Module] = []
        cin = channels
        for cout in PAPER_ENC_CHANNELS:
            layers += [nn.Conv2d(cin, cout, PAPER_ENC_KERNEL, padding=padding), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        self.heads = _Heads(cin * _paper_encoder_sizes(size, padding)[-1] ** 2, latents)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.body(x))


class _PaperDecoder(nn.Module):
    def __init__(self, size: int, channels: int, latents: int):
        super().__init__()
        shrink = PAPER_DEC_KERNEL - 1
        # each block maps d -> 2d - 6, so four blocks map d -> 16d - 90
        d = math.ceil((size + 15 * shrink) / 16)
        self.size = size
        cin = PAPER_ENC_CHANNELS[-1]
        layers: list[nn.Module] = [nn.Linear(latents, cin * d * d), nn.ReLU(inplace=True), nn.Unflatten(1, (cin, d, d))]
        outs = PAPER_DEC_CHANNELS + (channels,)
        for i, cout in enumerate(outs):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, PAPER_DEC_KERNEL)]
            if i < len(outs) - 1:
                layers.append(nn.ReLU(inplace=True))
            cin = cout
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.body(z)
        extra = out.shape[-1] - self.size
        if extra:
            lo = extra // 2
            out = out[..., lo : lo + self.size, lo : lo + self.size]
        return out
