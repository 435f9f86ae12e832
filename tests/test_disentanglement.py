"""Disentanglement metrics on constructed codes whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from evaluate import disentanglement as dis

N = 420
BINS = 6
SIZES = dis.MetricSizes(train=1500, eval=750)


def _factors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    values = np.random.default_rng(seed).uniform(-1, 1, (N, 3))
    return values, dis.discretize_factors(values, BINS, [(-1, 1)] * 3)


def _codes(kind: str) -> np.ndarray:
    values, _ = _factors()
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (N, 3))
    if kind == "perfect":
        return np.concatenate([values, noise], axis=1)
    if kind == "permuted":
        return _codes("perfect")[:, [4, 2, 5, 0, 3, 1]]
    if kind == "random":
        return rng.normal(size=(N, 6))
    if kind == "two_in_one":  # code 0 mixes azimuth and elevation; nothing else carries them
        return np.concatenate([values[:, :1] + values[:, 1:2], values[:, 2:3], noise, noise[:, :1] * 0.5], axis=1)
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def scores() -> dict[str, dict]:
    _, classes = _factors()
    return {kind: dis.all_metrics(_codes(kind), classes, seed=0, sizes=SIZES)
            for kind in ("perfect", "permuted", "random", "two_in_one")}


def test_discretize_factors_equal_width_over_the_given_range():
    values = np.array([[-90.0], [-89.9], [-45.1], [0.0], [89.99], [90.0], [120.0]])
    classes = dis.discretize_factors(values, 4, [(-90, 90)])
    assert classes[:, 0].tolist() == [0, 0, 0, 2, 3, 3, 3]
    assert dis.discretize_factors(np.zeros((3, 1)), 4).tolist() == [[0], [0], [0]]


def test_histogram_discretize_is_disentanglement_lib_binning():
    codes = np.linspace(0, 1, 41)[:, None]
    binned = dis.histogram_discretize(codes, 20)
    assert binned.min() == 1 and binned.max() == 20
    assert np.all(np.diff(binned[:, 0]) >= 0)


def test_mig_exact_values_on_a_full_factorial_design():
    grid = np.array([(a, b) for a in range(4) for b in range(4)] * 5)
    assert dis.mig(grid.astype(float), grid) == pytest.approx(1.0)
    # a factor captured equally by two codes has no gap: MIG for it is 0
    duplicated = np.stack([grid[:, 0], grid[:, 0], grid[:, 1]], axis=1).astype(float)
    assert dis.mig(duplicated, grid) == pytest.approx(0.5)
    # MIG does not penalise one code holding both factors losslessly; DCI disentanglement does
    packed = np.stack([grid[:, 0] * 4 + grid[:, 1], np.zeros(len(grid))], axis=1).astype(float)
    assert dis.mig(packed, grid) == pytest.approx(1.0)
    assert dis.dci(packed, grid)["disentanglement"] < 0.1


def test_dci_scores_from_importance_matrices():
    assert dis.dci_disentanglement(np.eye(3)) == pytest.approx(1.0)
    assert dis.dci_completeness(np.eye(3)) == pytest.approx(1.0)
    assert dis.dci_disentanglement(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-9)
    assert dis.dci_completeness(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-9)
    one_code_two_factors = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert dis.dci_disentanglement(one_code_two_factors) == pytest.approx(0.0, abs=1e-6)
    assert dis.dci_completeness(one_code_two_factors) == pytest.approx(1.0, abs=1e-6)


def test_perfect_codes_score_high(scores):
    s = scores["perfect"]
    assert s["mig"] > 0.7
    assert s["dci"]["disentanglement"] > 0.95 and s["dci"]["completeness"] > 0.95
    assert s["dci"]["informativeness_test"] > 0.9
    assert s["factor_vae"]["eval_accuracy"] > 0.95
    assert s["beta_vae"]["eval_accuracy"] > 0.95
    assert s["explicitness_test"] > 0.85


def test_permutation_invariant_metrics_do_not_change(scores):
    a, b = scores["perfect"], scores["permuted"]
    for key in ("mig", "sap", "modularity", "explicitness_test"):
        assert b[key] == pytest.approx(a[key], abs=1e-6), key
    assert b["dci"]["disentanglement"] == pytest.approx(a["dci"]["disentanglement"], abs=0.02)
    assert b["factor_vae"] == a["factor_vae"]
    assert b["beta_vae"]["eval_accuracy"] == pytest.approx(a["beta_vae"]["eval_accuracy"], abs=0.01)


def test_random_codes_score_near_chance(scores):
    s, p = scores["random"], scores["perfect"]
    assert s["mig"] < 0.05
    assert s["dci"]["disentanglement"] < 0.1 and s["dci"]["informativeness_test"] < 0.35
    assert s["sap"] < 0.05 < p["sap"]
    assert s["factor_vae"]["eval_accuracy"] < 0.5
    assert s["beta_vae"]["eval_accuracy"] < 0.5
    assert s["explicitness_test"] < 0.6


def test_one_code_carrying_two_factors_scores_lower(scores):
    s, p = scores["two_in_one"], scores["perfect"]
    assert s["mig"] < p["mig"] - 0.3
    assert s["dci"]["disentanglement"] < p["dci"]["disentanglement"] - 0.3
    assert s["factor_vae"]["eval_accuracy"] < 0.8
    assert s["beta_vae"]["eval_accuracy"] < p["beta_vae"]["eval_accuracy"] - 0.1


def test_same_seed_same_numbers_and_constant_factors_are_left_out():
    values, classes = _factors(3)
    codes = _codes("perfect")[:120, :4]
    classes = classes[:120].copy()
    classes[:, 1] = 2  # elevation never varies
    small = dis.MetricSizes(train=200, eval=100)
    first = dis.all_metrics(codes, classes, seed=5, sizes=small)
    assert first == dis.all_metrics(codes, classes, seed=5, sizes=small)
    assert first["factors_used"] == [0, 2]
    with pytest.raises(ValueError):
        dis.all_metrics(codes[:3], classes[:3])


def test_one_varying_factor_gives_defined_scores_and_says_so(caplog):
    """With one factor, DCI disentanglement and modularity divide 0 by 0 (entropy base 1, F - 1 = 0):
    they are 1 by definition, as are FactorVAE / BetaVAE (one possible answer), and a warning says so."""
    import json
    import math

    rng = np.random.default_rng(5)
    factors = np.zeros((300, 3), dtype=np.int64)
    factors[:, 1] = rng.integers(0, 4, 300)
    codes = rng.normal(size=(300, 5))
    codes[:, 2] += 2 * factors[:, 1]
    with caplog.at_level("WARNING"):
        s = dis.all_metrics(codes, factors, 0, dis.MetricSizes(train=100, eval=50))
    assert "only one factor varies" in caplog.text
    flat = json.dumps(s)
    assert "NaN" not in flat and "Infinity" not in flat
    assert s["single_factor"] and s["factors_used"] == [1]
    assert s["dci"]["disentanglement"] == 1.0 and s["modularity"] == 1.0
    assert s["factor_vae"]["eval_accuracy"] == 1.0 and s["beta_vae"]["eval_accuracy"] == 1.0
    assert 0 < s["dci"]["completeness"] < 1 and not math.isnan(s["mig"])
    # Two varying factors: the real formulas again, and no note.
    factors[:, 2] = rng.integers(0, 4, 300)
    two = dis.all_metrics(codes, factors, 0, dis.MetricSizes(train=100, eval=50))
    assert "single_factor" not in two and two["dci"]["disentanglement"] < 1.0
