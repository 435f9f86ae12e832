"""The weakly-supervised objectives (model.weak, model.train.pair_step) on tiny hand-computed tensors."""
from __future__ import annotations

import math

import pytest
import torch

from config import ModelConfig, TrainConfig
from model.latents import clamp_mask
from model.nets import build
from model.train import pair_step, vae_step
from model.weak import adaptive_shared, aggregate, pair_indices, paired_posteriors, symmetric_kl


def test_symmetric_kl_per_latent_matches_hand_computation():
    # latent 0: N(0, 1) vs N(1, 1): each direction 0.5, mean 0.5
    # latent 1: N(0, 1) vs N(0, 4): KL(1||4) = 0.5 (1/4 - 1 + ln 4), KL(4||1) = 0.5 (4 - 1 - ln 4)
    mu1, lv1 = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    mu2, lv2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    forward, backward = 0.5 * (0.25 - 1 + math.log(4)), 0.5 * (4 - 1 - math.log(4))
    expected = torch.tensor([[0.5, 0.5 * (forward + backward)]])
    assert torch.allclose(symmetric_kl(mu1, lv1, mu2, lv2), expected, atol=1e-6)
    assert torch.allclose(symmetric_kl(mu2, lv2, mu1, lv1), expected, atol=1e-6)  # symmetric
    assert torch.equal(symmetric_kl(mu1, lv1, mu1, lv1), torch.zeros(1, 2))


def test_adaptive_threshold_is_halfway_between_the_rows_min_and_max():
    delta = torch.tensor([[0.0, 1.0, 4.9, 5.1, 10.0],   # tau 5: the first three are shared
                          [2.0, 2.0, 2.0, 6.0, 3.9]])  # tau 4: all but 6.0
    assert adaptive_shared(delta).tolist() == [[True, True, True, False, False], [True, True, True, False, True]]


def test_the_two_aggregations_match_hand_computation():
    mu1, lv1 = torch.tensor([[1.0]]), torch.tensor([[math.log(1.0)]])
    mu2, lv2 = torch.tensor([[3.0]]), torch.tensor([[math.log(3.0)]])
    mean_mu, mean_lv = aggregate(mu1, lv1, mu2, lv2, "mean")  # GVAE: mean of means, mean of variances
    assert mean_mu.item() == pytest.approx(2.0) and mean_lv.exp().item() == pytest.approx(2.0)
    prod_mu, prod_lv = aggregate(mu1, lv1, mu2, lv2, "product")  # ML-VAE: precisions add 1 + 1/3 = 4/3
    assert prod_lv.exp().item() == pytest.approx(0.75)
    assert prod_mu.item() == pytest.approx(0.75 * (1.0 / 1.0 + 3.0 / 3.0))  # precision-weighted: 1.5
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(mu1, lv1, mu2, lv2, "median")


def test_pairs_cover_each_sweep_once_and_stay_inside_it():
    pairs = pair_indices(3, 4, torch.Generator().manual_seed(0))
    assert pairs.shape == (6, 2)
    assert sorted(pairs.flatten().tolist()) == list(range(12))
    assert (pairs[:, 0] // 4 == pairs[:, 1] // 4).all()  # both images of a pair from one sweep
    again = pair_indices(3, 4, torch.Generator().manual_seed(0))
    assert torch.equal(pairs, again)
    with pytest.raises(ValueError, match="even number"):
        pair_indices(1, 5, torch.Generator())


def test_shared_latents_take_the_aggregate_and_the_others_their_own():
    mu = torch.tensor([[0.0, 5.0], [2.0, -5.0]])
    lv = torch.zeros(2, 2)
    pairs = torch.tensor([[0, 1]])
    out_mu, out_lv = paired_posteriors(mu, lv, pairs, "mean", shared=torch.tensor([[True, False]]))
    assert out_mu.tolist() == [[1.0, 5.0], [1.0, -5.0]] and torch.equal(out_lv, lv)
    # adaptive: latent 1 differs far more (delta 50 vs 2): latent 0 shared, latent 1 not
    assert torch.equal(paired_posteriors(mu, lv, pairs, "mean")[0], out_mu)


def _net(latents: int = 8):
    torch.manual_seed(0)
    return build("conv4", 16, 1, latents)


def test_gvae_shares_what_dcign_clamps_and_weighs_the_kl_by_beta():
    mc = ModelConfig(latents=8)
    model = _net()
    x, eps = torch.rand(8, 1, 16, 16), torch.randn(8, 8)
    sweeps = ["azimuth", "intrinsic"]
    pairs = pair_indices(2, 4, torch.Generator().manual_seed(1))
    steps = {b: pair_step(model, x, sweeps, pairs, "gvae", mc, TrainConfig(beta=b), eps) for b in (0.0, 1.0, 3.0)}
    kl = steps[1.0].kl.mean().item()
    assert steps[3.0].loss.item() - steps[0.0].loss.item() == pytest.approx(3.0 * kl, rel=1e-4)
    # by hand: the azimuth sweep's pairs share every latent but azimuth's (latent 0)
    mu, lv = model.encode(x)
    mask = clamp_mask(sweeps, mc.owned, 8)
    hand_mu, hand_lv = paired_posteriors(mu, lv, pairs, "mean", shared=mask[pairs[:, 0] // 4])
    hand_kl = (0.5 * (hand_mu ** 2 + hand_lv.exp() - 1 - hand_lv)).sum(dim=1)
    assert torch.allclose(steps[1.0].kl, hand_kl, atol=1e-5)
    assert mask[0].tolist() == [False] + [True] * 7


def test_betavae_weighs_the_kl_by_its_own_beta():
    mc = ModelConfig(latents=8)
    model = _net()
    x, eps = torch.rand(4, 1, 16, 16), torch.randn(4, 8)
    plain = vae_step(model, x, mc, TrainConfig(), eps)
    heavy = vae_step(model, x, mc, TrainConfig(), eps, beta=4.0)
    assert heavy.loss.item() - plain.loss.item() == pytest.approx(3.0 * plain.kl.mean().item(), rel=1e-4)
    assert TrainConfig().betavae_beta == 4.0
