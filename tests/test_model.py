"""Model pieces without training data: latent layout, clamp (forward, backward, pull), loss values,
architecture shapes, checkpoint round trip and bad checkpoint files."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from config import ModelConfig, UserError, load_params
from model import checkpoint as ckpt
from model.clamp import clamp, pull_loss
from model.latents import clamp_mask, free_indices, mirror_parity, owned_indices, paper_flips, tied_mask
from model.loss import free_bits_kl, kl_divergence, kl_per_latent, reconstruction, reparameterise
from model.nets import build, from_config

ROOT = Path(__file__).resolve().parents[1]
OWNED = {"azimuth": 2, "elevation": 1, "light": 1}
L = 10


def test_owned_indices_follow_factor_order():
    assert owned_indices(OWNED) == {"azimuth": [0, 1], "elevation": [2], "light": [3]}
    assert free_indices("light", OWNED, L) == [3]
    assert free_indices("intrinsic", OWNED, L) == list(range(4, L))
    with pytest.raises(UserError):
        free_indices("colour", OWNED, L)


def test_mirror_parity_layout():
    # azimuth's first latent odd, its second (the cosine of a full turn) even; elevation even; light odd
    assert mirror_parity(OWNED, L, paper_flips(OWNED)) == [-1, 1, 1, -1] + [0] * (L - 4)
    # a factor's kind decides its flip: a hue (even) owning one latent, a roll (odd) owning two
    assert mirror_parity({"hue": 1, "roll": 2}, 5, {"hue": 1, "roll": -1}) == [1, -1, 1, 0, 0]


@pytest.mark.parametrize("arch,size,one_pass", [("conv4", 32, True), ("conv4", 36, False), ("paper", 32, False)])
def test_mirror_encoder_is_equivariant_to_a_horizontal_flip(arch, size, one_pass):
    torch.manual_seed(0)
    model = from_config(ModelConfig(arch=arch, latents=L, owned=OWNED, mirror=True), size, 1)
    # conv4 at sizes that stay even (32 -> 16 -> 8 -> 4) has a flip-equivariant body and runs once;
    # at 36 (-> 18 -> 9) the windows are not symmetric and the encoder runs on both views
    assert getattr(model.encoder, "equivariant", False) == one_pass
    x = torch.rand(4, 1, size, size)
    (mu, logvar), (mu_f, logvar_f) = model.encode(x), model.encode(x.flip(-1))
    odd, even, free = [0, 3], [1, 2], list(range(4, L))
    torch.testing.assert_close(mu_f[:, odd], -mu[:, odd])
    torch.testing.assert_close(mu_f[:, even], mu[:, even])
    torch.testing.assert_close(logvar_f[:, odd + even], logvar[:, odd + even])
    assert mu[:, odd].abs().min() > 0  # odd, not collapsed to zero
    assert not torch.allclose(mu_f[:, free], mu[:, free]) and not torch.allclose(mu_f[:, free], -mu[:, free])
    plain = from_config(ModelConfig(arch=arch, latents=L, owned=OWNED), size, 1)
    assert not torch.allclose(plain.encode(x.flip(-1))[0][:, odd], -plain.encode(x)[0][:, odd])
    if one_pass:  # the body itself: flipping the image swaps the halves of the feature vector
        body, swap = model.encoder.body, model.encoder.flip_features
        torch.testing.assert_close(body(x.flip(-1)), swap(body(x)))
        assert not torch.allclose(body(x.flip(-1)), body(x))


def _latents(S=3, K=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(S, K, L, generator=g, requires_grad=True)


@pytest.mark.parametrize("mode", ["mean", "first"])
def test_clamp_forward_makes_non_owned_constant_per_sweep(mode):
    sweeps = ["azimuth", "intrinsic", "light"]
    t = _latents()
    mask = clamp_mask(sweeps, OWNED, L)
    out = clamp(t, mask, mode)
    for s, sweep in enumerate(sweeps):
        free = free_indices(sweep, OWNED, L)
        clamped = [i for i in range(L) if i not in free]
        assert torch.equal(out[s, :, free], t[s, :, free])  # owned: untouched, differ across the sweep
        assert out[s, :, free].std(dim=0).min() > 0
        assert (out[s, :, clamped] == out[s, :1, clamped]).all()  # non-owned: one value for the sweep
        expected = t[s, :, clamped].mean(0) if mode == "mean" else t[s, 0, clamped]
        assert torch.allclose(out[s, 0, clamped], expected)
    # intrinsic sweeps clamp z1..z4 (the owned ones) and free the rest
    assert mask[1].tolist() == [True] * 4 + [False] * (L - 4)


@pytest.mark.parametrize("mode", ["mean", "first"])
def test_clamp_backward_gives_non_owned_no_reconstruction_gradient(mode):
    sweeps = ["elevation", "intrinsic"]
    t = _latents(S=2)
    mask = clamp_mask(sweeps, OWNED, L)
    decoder_weights = torch.randn(L)
    (clamp(t, mask, mode) * decoder_weights).pow(2).sum().backward()  # any downstream "reconstruction"
    assert (t.grad[mask.unsqueeze(1).expand_as(t)] == 0).all()
    assert (t.grad[~mask.unsqueeze(1).expand_as(t)] != 0).all()


def test_pull_reduces_spread_of_clamped_latents_only():
    sweeps = ["azimuth", "intrinsic"]
    t = _latents(S=2)
    mask = clamp_mask(sweeps, OWNED, L)
    pull_loss(t, mask).backward()
    assert (t.grad[~mask.unsqueeze(1).expand_as(t)] == 0).all()
    # a small step against the gradient (what minimising does) shrinks the within-sweep spread
    with torch.no_grad():
        stepped = t - 0.1 * t.grad
    spread = lambda x: x.var(dim=1)[mask]  # noqa: E731
    assert (spread(stepped) < spread(t.detach())).all()
    # its gradient is the original code's signal: (t - sweep mean), per image after averaging
    expected = (t - t.mean(1, keepdim=True)).detach() * mask.unsqueeze(1) / (t.shape[0] * t.shape[1])
    assert torch.allclose(t.grad, expected, atol=1e-7)


def test_loss_terms_match_hand_computation():
    x = torch.tensor([[[[1.0, 0.0], [0.5, 0.25]]]])
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])
    p = 1 / (1 + math.e ** -logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert torch.allclose(reconstruction(logits, x), bce.reshape(1), atol=1e-6)
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # KL(N(0.5,1)||N(0,1)) = 0.125; KL(N(-1,4)||N(0,1)) = 0.5 * (1 + 4 - 1 - ln 4)
    hand = 0.125 + 0.5 * (4.0 - math.log(4.0))
    assert kl_divergence(mu, logvar).item() == pytest.approx(hand, rel=1e-6)


def test_gaussian_likelihoods_match_hand_computation():
    x = torch.tensor([[[[1.0, 0.0], [0.5, 0.25]]], [[[0.0, 0.0], [1.0, 1.0]]]])
    logits = torch.zeros(2, 1, 2, 2, requires_grad=True)  # mean 0.5 everywhere
    sse = torch.tensor([0.25 + 0.25 + 0.0 + 0.0625, 4 * 0.25])
    assert torch.allclose(reconstruction(logits, x, "gaussian", sigma=0.1), 0.5 * sse / 0.01)
    # calibrated: one σ² for the batch, its maximum-likelihood value (the mean squared error over
    # every pixel), plus the normaliser D·log σ
    var = sse.sum() / 8
    calibrated = reconstruction(logits, x, "calibrated")
    assert torch.allclose(calibrated, 0.5 * sse / var + 0.5 * 4 * var.log())
    calibrated.sum().backward()  # σ is held fixed in the gradient: d/dmean = (mean - x) / σ²
    assert torch.allclose(logits.grad, (0.5 - x) / var * 0.25)  # sigmoid'(0) = 1/4
    with pytest.raises(ValueError, match="unknown likelihood"):
        reconstruction(logits, x, "poisson")


def test_a_wider_decoder_renders_the_same_shape_with_more_capacity():
    from model.nets import build

    narrow, wide = build("conv4", 64, 1, 16), build("conv4", 64, 1, 16, decoder_width=2)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(wide.decoder) > 3 * count(narrow.decoder) and count(wide.encoder) == count(narrow.encoder)
    z = torch.randn(3, 16)
    assert wide.decode(z).shape == narrow.decode(z).shape == (3, 1, 64, 64)


def test_a_perfect_batch_does_not_divide_by_zero_under_the_calibrated_likelihood():
    x = torch.full((2, 1, 4, 4), 0.5)
    value = reconstruction(torch.zeros_like(x), x, "calibrated")
    assert torch.isfinite(value).all()


def test_free_bits_spare_only_tied_latents_below_the_floor():
    assert tied_mask(OWNED, L).tolist() == [True] * 4 + [False] * (L - 4)
    mu = torch.zeros(3, 4)
    mu[:, 0] = 0.5  # tied, KL 0.125 nats: below a floor of 1 nat
    mu[:, 1] = 2.0  # tied, KL 2 nats: above it
    mu[:, 3] = 0.5  # intrinsic: always penalised
    mu.requires_grad_(True)
    kl = kl_per_latent(mu, torch.zeros(3, 4))
    free = torch.tensor([True, True, False, False])
    penalised = free_bits_kl(kl, free, nats=1.0)
    assert torch.allclose(penalised, torch.full((3,), 2.0 + 0.125))
    penalised.sum().backward()
    assert (mu.grad[:, 0] == 0).all()  # the spared latent gets no KL gradient ...
    assert (mu.grad[:, 1] > 0).all() and (mu.grad[:, 3] > 0).all()  # ... the others do
    assert torch.equal(free_bits_kl(kl, free, nats=0.0), kl.sum(dim=1))  # 0 nats: the plain KL


def test_interleaved_vae_steps_follow_the_schedule_and_the_paper_has_none():
    from config import TrainConfig
    from model.train import is_vae_step

    vae_steps = lambda tc, kind="dcign": [s for s in range(14) if is_vae_step(s, kind, tc)]  # noqa: E731
    assert vae_steps(TrainConfig(warm_start=3)) == [0, 1, 2]  # vae_every 0, the paper: none after the warm start
    assert vae_steps(TrainConfig(warm_start=3, vae_every=4)) == [0, 1, 2, 6, 10]
    assert vae_steps(TrainConfig(vae_every=2)) == [1, 3, 5, 7, 9, 11, 13]
    assert vae_steps(TrainConfig(vae_every=1)) == list(range(14))
    assert vae_steps(TrainConfig(), kind="vae") == list(range(14))  # the baseline: every step


def test_cosine_schedule_decays_the_learning_rate_to_zero_and_the_paper_keeps_it_constant():
    from config import TrainConfig
    from model.train import learning_rate

    assert TrainConfig().lr_schedule == "constant"  # the paper's (and the original code's) fixed rate
    assert load_params(ROOT / "profiles" / "paper.yaml").train.lr_schedule == "constant"
    constant = TrainConfig(lr=1e-3, steps=100)
    assert {learning_rate(constant, s) for s in range(100)} == {1e-3}
    cosine = TrainConfig(lr=1e-3, steps=100, lr_schedule="cosine")
    rates = [learning_rate(cosine, s) for s in range(100)]
    assert rates[0] == 1e-3 and rates[50] == pytest.approx(5e-4) and 0 < rates[-1] < 1e-6
    assert all(a > b for a, b in zip(rates, rates[1:]))  # strictly decreasing
    assert learning_rate(cosine, 25) == pytest.approx(1e-3 * (1 + 2 ** -0.5) / 2)


def test_structural_term_is_the_evaluations_ssim_and_the_paper_leaves_it_out():
    import numpy as np

    from config import TrainConfig
    from evaluate.rerender import ssim
    from model.loss import structural
    from model.train import image_loss, vae_step

    torch.manual_seed(0)
    x, logits = torch.rand(3, 1, 24, 20), 3 * torch.randn(3, 1, 24, 20)  # not square: both blur matrices
    want = ssim(torch.sigmoid(logits).permute(0, 2, 3, 1).numpy(), x.permute(0, 2, 3, 1).numpy())
    assert np.allclose(1 - structural(logits, x).numpy() / (24 * 20), want, atol=1e-5)
    assert structural(torch.logit(x.clamp(1e-4, 1 - 1e-4)), x).abs().max() < 1e-2  # a perfect image: no loss
    assert TrainConfig().ssim_weight == 0 and load_params(ROOT / "profiles" / "paper.yaml").train.ssim_weight == 0
    mc = ModelConfig(arch="conv4", latents=L, owned=OWNED, mirror=False)
    recon, fit = image_loss(logits, x, mc, TrainConfig())
    assert torch.equal(recon, fit)  # the paper: the likelihood alone
    recon2, fit2 = image_loss(logits, x, mc, TrainConfig(ssim_weight=2.0))
    assert torch.equal(recon2, recon) and torch.allclose(fit2 - recon, 2.0 * structural(logits, x))
    model = build("conv4", 16, 1, L)
    xb, eps = torch.rand(4, 1, 16, 16), torch.randn(4, L)
    plain, weighted = (vae_step(model, xb, mc, TrainConfig(ssim_weight=w), eps) for w in (0.0, 1.0))
    assert torch.equal(plain.recon, weighted.recon) and weighted.loss > plain.loss  # logged recon stays -log p


def test_intrinsic_kl_weight_scales_only_the_intrinsic_latents():
    from config import TrainConfig
    from model.train import dcign_step, latent_kl_weight, vae_step

    mc = ModelConfig(arch="conv4", latents=L, owned=OWNED, mirror=False)
    assert latent_kl_weight(mc, TrainConfig()) is None  # beta_intrinsic 1: the paper's single weight
    assert latent_kl_weight(mc, TrainConfig(beta_intrinsic=0.25)).tolist() == [1.0] * 4 + [0.25] * (L - 4)
    torch.manual_seed(0)
    model = build("conv4", 16, 1, L)
    with torch.no_grad():
        model.encoder.heads.linear.bias[:L] += 1.5  # posterior means away from 0: a KL of several nats
    x, eps = torch.rand(8, 1, 16, 16), torch.randn(8, L)
    sweeps = ["azimuth", "intrinsic"]
    loss = {b: dcign_step(model, x, sweeps, mc, TrainConfig(beta=2.0, beta_intrinsic=b, pull=0.0), eps).loss.item()
            for b in (0.0, 0.5, 1.0)}
    mu, logvar = model.encode(x)
    # the KL actually penalised is that of the clamped posterior; its intrinsic part is linear in the weight
    assert loss[1.0] - loss[0.5] == pytest.approx(loss[0.5] - loss[0.0], rel=1e-3) and loss[1.0] > loss[0.0] + 1
    plain = {b: vae_step(model, x, mc, TrainConfig(beta=2.0), eps, latent_kl_weight(mc, TrainConfig(beta_intrinsic=b)))
             for b in (0.0, 1.0)}
    intrinsic_kl = kl_per_latent(mu, logvar)[:, 4:].sum(dim=1).mean().item()
    assert plain[1.0].loss.item() - plain[0.0].loss.item() == pytest.approx(2.0 * intrinsic_kl, rel=1e-3)
    assert torch.equal(plain[0.0].kl, plain[1.0].kl)  # the logged KL stays the unweighted bound's


@pytest.mark.parametrize("arch", ["conv4", "paper"])
@pytest.mark.parametrize("size", [32, 64, 150])
def test_shapes(arch, size):
    model = build(arch, size, 1, 12)
    x = torch.rand(2, 1, size, size)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 12)
    assert model.decode(mu).shape == x.shape


def test_paper_architecture_at_150_is_the_original():
    model = build("paper", 150, 1, 200)
    params = sum(p.numel() for p in model.parameters())
    assert 4.0e6 < params < 4.3e6  # the reference notes: about 4.1 M
    assert model.encoder.heads.linear.in_features == 24 * 15 * 15


def test_rgb_and_unknown_arch():
    assert build("conv4", 64, 3, 8).decode(torch.zeros(1, 8)).shape == (1, 3, 64, 64)
    with pytest.raises(UserError, match="model.arch"):
        build("resnet", 64, 1, 8)


def _meta(step=7):
    return ckpt.ModelMeta(kind="dcign", dataset="faces", size=32, channels=1, latents=8,
                          owned=owned_indices({"azimuth": 1, "elevation": 1, "light": 1}), step=step,
                          config=ModelConfig(arch="conv4", latents=8))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build("conv4", 32, 1, 8)
    path = tmp_path / "m.pt"
    ckpt.save(path, {"meta": _meta().to_dict(), "model": model.state_dict()})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind
    loaded, meta = ckpt.load_model(path)
    assert meta == _meta()
    assert not loaded.training
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(loaded.encode(x)[0], model.encode(x)[0])


def test_checkpoint_keeps_the_mirror_encoder(tmp_path):
    config = ModelConfig(arch="conv4", latents=8, mirror=True)
    model = from_config(config, 32, 1)
    meta = dataclasses.replace(_meta(), config=config)
    ckpt.save(tmp_path / "m.pt", {"meta": meta.to_dict(), "model": model.state_dict()})
    loaded, _ = ckpt.load_model(tmp_path / "m.pt")
    x = torch.rand(3, 1, 32, 32)
    torch.testing.assert_close(loaded.encode(x.flip(-1))[0][:, 0], -loaded.encode(x)[0][:, 0])


def test_bad_checkpoints_are_one_line_user_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="not a readable checkpoint") as err:
        ckpt.load_model(junk)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ckpt.CheckpointError, match="not a DC-IGN checkpoint"):
        ckpt.load_model(foreign)
    # a pickled object is refused by weights_only loading, not executed: unpickling this one would
    # create a file (open(marker, "w")), so the file's absence proves nothing ran
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "meta": _Evil(str(marker)), "model": {}}, evil)
    assert not marker.exists()
    with pytest.raises(ckpt.CheckpointError, match="not a readable checkpoint"):
        ckpt.load_model(evil)
    assert not marker.exists()


class _Evil:
    """Pickles as a call to open(path, "w"): loading it with weights_only=False creates the file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_checkpoints_store_later_model_keys_only_when_set():
    from config import ModelConfig
    from model.checkpoint import ModelMeta

    def meta(config):
        return ModelMeta(kind="dcign", dataset="d", size=64, channels=1, latents=8,
                         owned={"azimuth": [0], "elevation": [1], "light": [2]}, step=1, config=config)

    plain = meta(ModelConfig(latents=8)).to_dict()["config"]
    assert not {"likelihood", "sigma", "decoder_width"} & set(plain)  # an older checkpoint reads the same
    assert ModelMeta.from_dict(meta(ModelConfig(latents=8)).to_dict()).config == ModelConfig(latents=8)
    wide = ModelConfig(latents=8, decoder_width=2, likelihood="calibrated")
    stored = meta(wide).to_dict()
    assert stored["config"]["decoder_width"] == 2 and ModelMeta.from_dict(stored).config == wide


def test_encoder_views_move_and_scale_the_input_and_leave_the_target():
    from config import TrainConfig
    from model.augment import apply_views, draw_views
    from model.train import dcign_step, vae_step

    torch.manual_seed(0)
    x = torch.rand(3, 1, 20, 20)
    moved = apply_views(x, torch.tensor([[2.0, -3.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
    assert torch.allclose(moved[0, :, 2:, :-3], x[0, :, :-2, 3:], atol=1e-5)  # 2 px down, 3 px left
    assert torch.allclose(moved[0, :, :2, :-3], x[0, :, :1, 3:].expand(-1, 2, -1), atol=1e-5)  # border repeated
    assert torch.allclose(moved[1], x[1], atol=1e-5)  # no move, no change
    dot = torch.zeros(1, 1, 20, 20)
    dot[..., 8:12, 8:12] = 1
    assert apply_views(dot, torch.tensor([[0.0, 0.0, 2.0]])).sum().item() == pytest.approx(4 * dot.sum().item(), rel=1e-4)  # about the centre
    views = draw_views(1000, 3.0, 0.1, torch.Generator().manual_seed(1))
    assert views[:, :2].abs().max() <= 3 and views[:, :2].abs().max() > 2.9
    assert views[:, 2].min() >= 0.9 and views[:, 2].max() <= 1.1 and views[:, 2].std() > 0.05
    assert torch.equal(views, draw_views(1000, 3.0, 0.1, torch.Generator().manual_seed(1)))
    assert TrainConfig().view_shift == TrainConfig().view_scale == 0  # the paper: the encoder sees the render
    paper = load_params(ROOT / "profiles" / "paper.yaml").train
    assert paper.view_shift == paper.view_scale == 0

    # the view goes to the encoder only: the target of the likelihood is still x
    mc = ModelConfig(arch="conv4", latents=L, owned=OWNED, mirror=False)
    model = build("conv4", 16, 1, L)
    xb, eps = torch.rand(4, 1, 16, 16), torch.randn(4, L)
    other = torch.rand(4, 1, 16, 16)
    for step in (lambda **kw: vae_step(model, xb, mc, TrainConfig(), eps, **kw),
                 lambda **kw: dcign_step(model, xb, ["azimuth"], mc, TrainConfig(), eps, **kw)):
        assert torch.equal(step().loss, step(view=xb).loss)
        assert not torch.equal(step().loss, step(view=other).loss)
    with torch.no_grad():
        mu, logvar = model.encode(other)
        want = reconstruction(model.decode(reparameterise(mu, logvar, eps)), xb)
    assert torch.allclose(vae_step(model, xb, mc, TrainConfig(), eps, view=other).recon, want)
