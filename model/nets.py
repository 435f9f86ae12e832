"""Encoder/decoder architectures by name: `conv4` (fast default) and `paper` (the original network).

Both map images x [B, C, H, W] in [0, 1] to posterior parameters (mu, logvar) [B, L] and latents
z [B, L] back to pixel logits [B, C, H, W] (apply sigmoid for images). Any square size >= 16 works.

- `conv4`: the field's standard 64×64 VAE network (4 convolutions 32, 32, 64, 64 channels, 4×4
  stride 2, a 256-unit layer; the decoder is its mirror with transposed convolutions). Fewer
  convolutions for small images (32×32: 3) so the last feature map stays about 4×4; odd sizes are
  restored exactly with output padding. With `model.mirror` at even sizes the encoder's convolutions
  and hidden layer come in mirror pairs (`_MirrorConv2d`, `_MirrorLinear`), which makes the
  mirror-equivariant encoder cost one pass instead of two.
- `paper`: `init_network2_150_mv` of the authors' code: 5×5 convolutions 96, 48, 24 without padding,
  each followed by 2×2 max-pooling; linear heads for mu and logvar; decoder linear → 24×d×d, then four
  blocks of nearest ×2 upsampling + 7×7 convolution without padding (48, 96, 96, C channels). At
  150×150 it is exact (d = 15). Other sizes: d = ceil((size + 90) / 16), and the decoder's output is
  centre-cropped to the size; below 64 pixels the encoder pads its convolutions (else it would
  shrink to nothing).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from config import ConfigError, ModelConfig
from model.latents import mirror_parity, paper_flips

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
    for one profile.

    How: an encoder whose features are flip-equivariant by construction (`_Conv4Encoder` at even
    sizes: flipping the image swaps the two halves of its feature vector) is run once, and its heads
    read the features and their swapped copy; any other encoder is run a second time on the
    flipped image (one more encoder pass).
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
        if getattr(self.encoder, "equivariant", False):
            h = self.encoder.body(x)
            mu2, logvar2 = self.encoder.heads(torch.cat([h, self.encoder.flip_features(h)]))
        else:
            mu2, logvar2 = self.encoder(torch.cat([x, x.flip(-1)]))  # one batched pass for both views
        (mu, mu_flip), (logvar, logvar_flip) = mu2.chunk(2), logvar2.chunk(2)
        tied = self.parity != 0
        mu = torch.where(tied, 0.5 * (mu + self.parity * mu_flip), mu)
        logvar = torch.where(tied, 0.5 * (logvar + logvar_flip), logvar)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).float()  # the losses in fp32 under bf16 autocast (a no-op otherwise)


def build(arch: str, size: int, channels: int, latents: int, parity: Sequence[int] | None = None,
          decoder_width: int = 1) -> VAE:
    """`parity`: see `VAE`; `model.latents.mirror_parity` derives it from the model config.
    `decoder_width`: the conv4 decoder's channels and hidden units times this (1 = the mirror of the encoder)."""
    if arch not in ARCHS:
        raise ConfigError(f"model.arch: unknown architecture '{arch}'; choose one of: {', '.join(ARCHS)}")
    if size < MIN_SIZE:
        raise ConfigError(f"image size {size} is too small for the model; render at least {MIN_SIZE} pixels")
    if arch == "conv4":
        equivariant = parity is not None and all(n % 2 == 0 for n in _conv4_sizes(size)[:-1])
        return VAE(_Conv4Encoder(size, channels, latents, equivariant),
                   _Conv4Decoder(size, channels, latents, decoder_width), parity)
    return VAE(_PaperEncoder(size, channels, latents), _PaperDecoder(size, channels, latents), parity)


def from_config(mc: ModelConfig, size: int, channels: int, flips: Mapping[str, int] | None = None) -> VAE:
    """The network `params.yaml`'s `model:` section describes (`Params.model_for`: `owned` in the dataset's
    factor order), for images of that size and channels. `flips`: how a horizontal flip acts on each
    factor (`DatasetConfig.flips`); None = the paper's factors' (`model.latents.paper_flips`)."""
    flips = paper_flips(mc.owned) if flips is None else flips
    if mc.mirror and flips is None:
        raise ConfigError("model.mirror needs each factor's flip; pass the dataset's (DatasetConfig.flips)")
    parity = mirror_parity(mc.owned, mc.latents, flips) if mc.mirror else None
    return build(mc.arch, size, channels, mc.latents, parity, mc.decoder_width)


class _Heads(nn.Module):
    """Two linear heads (mu, logvar) fused into one matrix multiply."""

    def __init__(self, features: int, latents: int):
        super().__init__()
        self.linear = nn.Linear(features, 2 * latents)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # in fp32 even under bf16 autocast: a tied latent's value is the factor, to more than 3 digits
        with torch.autocast(h.device.type, enabled=False):
            mu, logvar = self.linear(h.float()).chunk(2, dim=1)
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
    """`equivariant`: the body is built from `_MirrorConv2d` / `_MirrorLinear`, so that
    body(flip x) = flip_features(body(x)) exactly (needs an even size at every convolution: a 4×4,
    stride-2, padding-1 window is then symmetric under the flip). Same FLOPs, half the free
    encoder weights; `VAE` then gets the mirrored view without a second pass."""

    def __init__(self, size: int, channels: int, latents: int, equivariant: bool = False):
        super().__init__()
        self.equivariant = equivariant
        sizes = _conv4_sizes(size)
        chans = (channels,) + CONV4_CHANNELS[: len(sizes) - 1]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
            conv = _MirrorConv2d(cin, cout, paired_input=i > 0) if equivariant else nn.Conv2d(cin, cout, 4, stride=2, padding=1)
            layers += [conv, nn.ReLU(inplace=True)]
        shape = (chans[-1], sizes[-1], sizes[-1])
        linear = _MirrorLinear(shape, CONV4_HIDDEN) if equivariant else nn.Linear(math.prod(shape), CONV4_HIDDEN)
        layers += [nn.Flatten(), linear, nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.heads = _Heads(CONV4_HIDDEN, latents)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.body(x))

    @staticmethod
    def flip_features(h: torch.Tensor) -> torch.Tensor:
        """The features of the flipped image, from those of the image (equivariant body only)."""
        return h.roll(h.shape[1] // 2, dims=1)


class _MirrorConv2d(nn.Module):
    """A 4×4, stride-2, padding-1 convolution whose output channels come in mirror pairs: channel
    c + C/2 applies channel c's kernel flipped left-right. Flipping the input (and, with
    `paired_input`, swapping the halves of its channels, the previous layer's pairs) flips the output
    and swaps the halves of its channels. Half the free weights of a plain convolution."""

    def __init__(self, cin: int, cout: int, paired_input: bool):
        super().__init__()
        if cout % 2 or (paired_input and cin % 2):
            raise ValueError(f"mirror pairs need even channel counts, got {cin} -> {cout}")
        plain = nn.Conv2d(cin, cout // 2, 4)  # for PyTorch's default initialisation
        self.weight, self.bias = plain.weight, plain.bias
        self.paired_input = paired_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        partner = self.weight.flip(-1)
        if self.paired_input:
            partner = partner.roll(self.weight.shape[1] // 2, dims=1)
        weight = torch.cat([self.weight, partner])
        return nn.functional.conv2d(x, weight, torch.cat([self.bias, self.bias]), stride=2, padding=1)


class _MirrorLinear(nn.Module):
    """A linear layer from a [C, H, W] feature map (channel halves are mirror pairs) whose outputs come
    in mirror pairs, like `_MirrorConv2d`: unit u + N/2 reads the map flipped left-right with its
    channel halves swapped."""

    def __init__(self, shape: tuple[int, int, int], out: int):
        super().__init__()
        if out % 2 or shape[0] % 2:
            raise ValueError(f"mirror pairs need even sizes, got {shape} -> {out}")
        plain = nn.Linear(math.prod(shape), out // 2)
        self.weight, self.bias = plain.weight, plain.bias
        self.shape = shape

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        w = self.weight.view(-1, *self.shape)
        partner = w.flip(-1).roll(self.shape[0] // 2, dims=1).reshape_as(self.weight)
        return nn.functional.linear(h, torch.cat([self.weight, partner]), torch.cat([self.bias, self.bias]))


class _Conv4Decoder(nn.Module):
    def __init__(self, size: int, channels: int, latents: int, width: int = 1):
        super().__init__()
        sizes = _conv4_sizes(size)
        chans = (channels,) + tuple(width * c for c in CONV4_CHANNELS[: len(sizes) - 1])
        self.shape = (chans[-1], sizes[-1], sizes[-1])
        layers: list[nn.Module] = [
            nn.Linear(latents, width * CONV4_HIDDEN), nn.ReLU(inplace=True),
            nn.Linear(width * CONV4_HIDDEN, math.prod(self.shape)), nn.ReLU(inplace=True),
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
