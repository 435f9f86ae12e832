"""Evaluation: tied-latent, invariance, mapping and re-rendering maths on synthetic data; the evaluate and
report stages end to end on tiny real shards and a tiny really-trained model; the rerender command."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.render_fixtures import FACTORS
from evaluate.invariance import invariance, owners_of
from evaluate.mapping import FactorMapping, MappingError, load_mapping, save_mappings
from evaluate.rerender import RerenderError, load_image, parse_degrees, source_frames, ssim, summarise
from evaluate.tied import Curve, best_latent, probe_scores, spearman_abs, sweep_variance, tied_scores

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------- tied latents


def _sweeps(rng, n_sweeps=20, steps=10):
    """Codes of sweeps where latent 2 follows the factor (a 'switch' like the paper's azimuth: sign by
    side), latent 0 is per-sweep noise constant within a sweep, latent 1 is small per-image noise."""
    factor = np.tile(np.linspace(-90, 90, steps), n_sweeps)
    group = np.repeat(np.arange(n_sweeps), steps)
    codes = np.stack([np.repeat(rng.normal(0, 3, n_sweeps), steps), rng.normal(0, 0.1, len(factor)),
                      np.tanh(factor / 30.0) * 2], axis=1)
    return codes, factor, group


def test_best_latent_is_the_one_varying_most_within_sweeps():
    codes, _, group = _sweeps(np.random.default_rng(0))
    var = sweep_variance(codes, group)
    assert var[0] < 1e-12 < var[1] < var[2]
    assert best_latent(codes, group) == 2  # latent 0 has the largest overall variance, but not within sweeps
    assert best_latent(codes, group, candidates=[0, 1]) == 1


def test_tied_scores_high_for_the_tracking_latent_and_low_for_noise():
    rng = np.random.default_rng(1)
    (a, fa, _), (b, fb, _) = _sweeps(rng), _sweeps(rng)
    good = tied_scores(a[:, 2], fa, b[:, 2], fb)
    assert good["spearman"] == pytest.approx(1.0) and good["r2"] > 0.95
    bad = tied_scores(a[:, 1], fa, b[:, 1], fb)
    assert bad["spearman"] < 0.2 and bad["r2"] < 0.1
    # a sign flip at 0 (the paper's azimuth "switch") keeps |Spearman| low but is not monotone
    flipped = tied_scores(np.abs(a[:, 2]), fa, np.abs(b[:, 2]), fb)
    assert flipped["r2"] < 0.2
    assert spearman_abs(np.zeros(5), np.arange(5)) == 0.0


def test_curve_does_not_extrapolate_and_probe_finds_spread_information():
    x = np.linspace(-1, 1, 50)
    curve = Curve.fit(x, x ** 3)
    assert curve(np.array([5.0]))[0] == pytest.approx(curve(np.array([1.0]))[0])
    rng = np.random.default_rng(2)
    f = rng.uniform(-1, 1, 400)
    noise = rng.normal(0, 1, 400)
    # f = code 0 - code 1 exactly: only a probe on all latents sees it; code 0 alone is mostly noise
    codes = np.stack([f + noise, noise, rng.normal(0, 1, 400)], axis=1)
    probe = probe_scores(codes[:200], f[:200], codes[200:], f[200:])
    assert probe["r2"] > 0.99
    assert tied_scores(codes[:200, 0], f[:200], codes[200:, 0], f[200:])["r2"] < 0.5


# ------------------------------------------------------------------------------------- invariance


def test_invariance_zero_for_constant_latents_and_about_one_for_free_ones():
    codes, _, group = _sweeps(np.random.default_rng(3))
    owners = owners_of(3, {"azimuth": [2], "elevation": [0], "light": []})
    assert owners["intrinsic"] == [1]
    inv = invariance(codes, group, codes, "azimuth", owners)
    assert inv["elevation"] == pytest.approx(0.0, abs=1e-9)  # latent 0 never moves within a sweep
    assert inv["intrinsic"] == pytest.approx(1.0, abs=0.1)  # latent 1 moves as much within as overall
    assert "azimuth" not in inv and inv["mean"] == pytest.approx((inv["elevation"] + inv["intrinsic"]) / 2)


# ------------------------------------------------------------------------------------- mapping


def test_mapping_inverts_a_monotone_latent_and_round_trips(tmp_path):
    deg = np.linspace(-80, 80, 161)
    codes = np.stack([np.zeros_like(deg), deg / 40.0, np.sin(np.radians(deg))], axis=1)
    m = FactorMapping.fit(deg, codes, [1, 2], (-80, 80), bins=16)
    got = m(np.array([-45.0, 0.0, 45.0]))
    assert got[:, 0] == pytest.approx([-45 / 40, 0, 45 / 40], abs=0.02)
    assert got[:, 1] == pytest.approx(np.sin(np.radians([-45, 0, 45])), abs=0.02)
    moved = m.apply(np.ones((3, 3)), np.array([-45.0, 0.0, 45.0]))
    assert moved[:, 0].tolist() == [1, 1, 1] and moved[:, 1:] == pytest.approx(got)
    save_mappings(tmp_path / "m.json", "faces", "dcign", {"light": m})
    assert load_mapping(tmp_path / "m.json", "light") == m
    with pytest.raises(MappingError, match="no mapping for factor 'azimuth'"):
        load_mapping(tmp_path / "m.json", "azimuth")
    with pytest.raises(MappingError, match="not found"):
        load_mapping(tmp_path / "none.json", "light")
    for text in ('["light"]', '{"factors": ["light"]}', '"light"'):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(MappingError, match="not a readable mapping file"):
            load_mapping(tmp_path / "bad.json", "light")


def test_metrics_that_are_json_but_not_an_object_are_one_line(tmp_path):
    from evaluate.report import EvaluateError, load_metrics

    (tmp_path / "m.json").write_text("[1, 2]")
    with pytest.raises(EvaluateError, match=r"m.json: is JSON but not a metrics file \(a list\)"):
        load_metrics(tmp_path / "m.json")


# ------------------------------------------------------------------------------------- rerender maths


def test_ssim_is_one_for_equal_images_and_drops_with_noise():
    rng = np.random.default_rng(4)
    img = np.clip(rng.random((1, 32, 32, 1)) * 0.2 + np.linspace(0, 0.8, 32)[None, None, :, None], 0, 1)
    assert ssim(img, img)[0] == pytest.approx(1.0)
    small, large = img + rng.normal(0, 0.02, img.shape), img + rng.normal(0, 0.2, img.shape)
    assert 1.0 > ssim(img, small)[0] > ssim(img, large)[0]
    assert ssim(img, small)[0] == pytest.approx(ssim(small, img)[0])


def test_summary_bins_distances_and_compares_with_reconstruction():
    d = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.9])
    pairs = {"distance": d, "mse": 0.01 + d / 10, "ssim": 1 - d, "held_ssim": 1 - 2 * d, "still_ssim": 1 - d / 2,
             "recon_mse": np.full(3, 0.01), "recon_ssim": np.ones(3)}
    s = summarise(pairs)
    assert s["within_half"]["held_ssim"] == pytest.approx(np.mean(1 - 2 * d[:5]))
    assert s["within_half"]["still_ssim"] == pytest.approx(np.mean(1 - d[:5] / 2))
    assert s["by_distance"]["0-0.125"]["pairs"] == 2 and s["by_distance"]["0.5-1"]["pairs"] == 2
    assert s["within_half"]["mse"] == pytest.approx(np.mean(0.01 + d[:5] / 10))
    assert s["within_half"]["ratio_to_reconstruction"] == pytest.approx(s["within_half"]["mse"] / 0.01)
    assert source_frames(16, 4).tolist() == [0, 5, 10, 15] and source_frames(3, 8).tolist() == [0, 1, 2]


def test_load_image_crops_resizes_and_converts(tmp_path):
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = (0, 0, 255)  # BGR red in the central square
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    gray = load_image(tmp_path / "wide.png", 16, 1)
    assert gray.shape == (16, 16) and gray.min() == gray.max() == round(0.21 * 255)
    assert load_image(tmp_path / "wide.png", 16, 3)[0, 0].tolist() == [255, 0, 0]
    cv2.imwrite(str(tmp_path / "g.jpg"), np.full((10, 10), 128, np.uint8))
    assert load_image(tmp_path / "g.jpg", 20, 3).shape == (20, 20, 3)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(RerenderError, match="not a readable image"):
        load_image(tmp_path / "bad.png", 16, 1)
    with pytest.raises(RerenderError, match="not found"):
        load_image(tmp_path / "missing.png", 16, 1)
    assert parse_degrees(["-60", "0", "1.5"]) == [-60.0, 0.0, 1.5]
    with pytest.raises(RerenderError, match="not a number"):
        parse_degrees(["-60", "--bogus"])


# ------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Tiny real shards, both models really trained a few steps, both evaluated, and the report."""
    import dataclasses

    from tests.train_fixtures import make_shards

    from evaluate.report import write_report
    from evaluate.run import EvalPaths, evaluate_model
    from model.train import TrainJob, train

    root = tmp_path_factory.mktemp("eval")
    params, shard_dir = make_shards(root)
    params = dataclasses.replace(params, evaluate=dataclasses.replace(params.evaluate, votes_train=300, votes_eval=150))
    metrics = {}
    for kind in ("dcign", "vae"):
        paths = dataclasses.replace(EvalPaths.default(params, "toy", kind, root), shard_dir=shard_dir)
        train(params, TrainJob(dataset="toy", kind=kind, shard_dir=shard_dir, out=paths.checkpoint,
                               resume=root / "checkpoints" / f"{kind}.pt", live_dir=paths.live_dir, progress=False))
        metrics[kind] = evaluate_model(params, "toy", kind, paths, progress=False)
    report = write_report(params, "toy", root, shard_dir=shard_dir)
    return root, params, shard_dir, metrics, report


def test_evaluate_stage_writes_every_output(evaluated):
    root, params, shard_dir, metrics, report = evaluated
    for kind in ("dcign", "vae"):
        written = json.loads((root / "metrics" / f"toy-{kind}.json").read_text())
        assert written["factor_bins"] == params.evaluate.factor_bins
        assert set(written["tied"]) == set(FACTORS) == set(written["rerender"]) == set(written["probe"])
        assert 0 < written["reconstruction"]["mse"] < 1 and written["reconstruction"]["bce"] > 0
        assert set(written["disentanglement"]) >= {"mig", "dci", "sap", "factor_vae", "beta_vae", "modularity"}
        assert set(written["invariance"]) == {"azimuth", "elevation", "light", "intrinsic"}
        codes = np.load(root / "metrics" / f"toy-{kind}-codes.npz")
        n = written["sizes"]["iid_test_images"]
        assert codes["codes"].shape == (n, 8) and codes["factors"].shape == (n, 3) and codes["mesh"].shape == (n,)
        names = {p.name for p in (root / "plots" / f"toy-{kind}").iterdir()}
        assert names == {"latent-vs-truth.png", "rerender.png", "rerender.gif", "training-curves.png",
                         *(f"traversal-{f}.png" for f in FACTORS)}
    assert metrics["dcign"]["tied"]["azimuth"]["latent"] == 0  # DC-IGN scores the latent it owns
    text = report.read_text()
    assert "| MIG |" in text and "## Claims" in text and "toy-comparison.png" in text
    assert (root / "plots" / "toy-comparison.png").stat().st_size > 0


def test_the_references_that_render_nothing_are_the_unmoved_source(evaluated):
    """On a sweep of one repeated picture whose label changes, Blender's own source frame matches every
    target (still SSIM 1) and the held reconstruction scores what the reconstruction of that picture
    scores; the re-render itself moves the tied latent, so it is scored on other pictures."""
    from evaluate.mapping import load_mapping
    from evaluate.rerender import PAIR_KEYS, rerender_sweeps
    from model.checkpoint import load_model
    from pipeline.loader import open_split

    root, params, shard_dir, _, _ = evaluated
    model, _ = load_model(root / "models" / "toy-dcign.pt")
    images, labels, _ = next(iter(open_split(shard_dir, "test").sweeps("azimuth")))
    frozen = np.repeat(images[:1], len(images), axis=0)
    mapping = load_mapping(root / "metrics" / "toy-dcign-mapping.json", "azimuth")
    pairs = rerender_sweeps(model, [(frozen, labels)], mapping, col=0, value_range=(-60.0, 60.0), sources=2)
    assert set(PAIR_KEYS) <= set(pairs) and len({len(pairs[k]) for k in PAIR_KEYS}) == 1
    assert np.allclose(pairs["still_ssim"], 1.0)
    assert np.allclose(pairs["held_ssim"], pairs["recon_ssim"][0]) and pairs["recon_ssim"][0] < 1
    real = rerender_sweeps(model, [(images, labels)], mapping, col=0, value_range=(-60.0, 60.0), sources=2)
    assert real["still_ssim"].min() < 1  # frames of a real sweep differ
    assert not np.allclose(real["held_ssim"], real["ssim"])  # the re-render moved the latent


def test_evaluate_is_deterministic(evaluated):
    import dataclasses

    from evaluate.run import EvalPaths, evaluate_model

    root, params, shard_dir, metrics, _ = evaluated
    paths = dataclasses.replace(EvalPaths.default(params, "toy", "vae", root), shard_dir=shard_dir,
                                metrics=root / "again.json", codes=root / "again.npz", mapping=root / "again-map.json",
                                plots=root / "again-plots")
    again = evaluate_model(params, "toy", "vae", paths, progress=False)
    assert json.dumps(again, sort_keys=True) == json.dumps(metrics["vae"], sort_keys=True)
    assert (root / "again.npz").read_bytes() == (root / "metrics" / "toy-vae-codes.npz").read_bytes()


@pytest.mark.parametrize("edit, words", [
    ("few", "only 4 iid test images; the disentanglement metrics need at least 6"),
    ("constant", "no factor varies across the 8 iid test images"),
])
def test_an_unusable_iid_set_is_refused_before_any_write(evaluated, tmp_path, edit, words):
    import csv
    import dataclasses

    from evaluate.run import EvalPaths, EvaluateError, evaluate_model
    from pipeline.shards import pack_dataset
    from tests.train_fixtures import write_renders

    root, params, _, _, _ = evaluated
    write_renders(tmp_path / "renders", "toy")
    labels = tmp_path / "renders" / "toy" / "iid" / "labels.csv"
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if edit == "few":
        rows = rows[:4]
    else:
        for r in rows:
            r.update(azimuth="0.5", elevation="0.5", light="0.5", mesh=rows[0]["mesh"])  # the identity too
    with open(labels, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    shard_dir = tmp_path / "shards" / "toy"
    pack_dataset(params.dataset("toy"), params.shard, tmp_path / "renders", shard_dir, progress=False)
    paths = dataclasses.replace(EvalPaths.default(params, "toy", "vae", root), shard_dir=shard_dir,
                                metrics=tmp_path / "m.json", codes=tmp_path / "c.npz", mapping=tmp_path / "map.json",
                                plots=tmp_path / "plots")
    with pytest.raises(EvaluateError, match=words):
        evaluate_model(params, "toy", "vae", paths, progress=False)
    assert not any(p.exists() for p in (paths.metrics, paths.codes, paths.mapping, paths.plots))


def _cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, capture_output=True, text=True)


def test_rerender_command_writes_a_grid_and_rejects_bad_input(evaluated):
    root, _, shard_dir, _, _ = evaluated
    from pipeline.loader import open_split

    frame = next(open_split(shard_dir, "test").sweeps("azimuth"))[0][2]
    cv2.imwrite(str(root / "frame.png"), frame)
    ok = _cli("rerender", "frame.png", "--model", "models/toy-dcign.pt", "--factor", "azimuth",
              "--values", "-60", "-30", "0", "30", "60", "--out", "grid.png", "--gif", "sweep.gif", cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert cv2.imread(str(root / "grid.png")) is not None and (root / "sweep.gif").read_bytes()[:3] == b"GIF"
    bad = {
        "missing": ("missing.png", "azimuth", "models/toy-dcign.pt"),
        "unreadable": ("params.yaml", "azimuth", "models/toy-dcign.pt"),
        "factor": ("frame.png", "pose", "models/toy-dcign.pt"),
        "checkpoint": ("frame.png", "azimuth", "models/none.pt"),
    }
    for case, (image, factor, model) in bad.items():
        r = _cli("rerender", image, "--model", model, "--factor", factor, "--values", "0", "--out", "x.png", cwd=root)
        assert r.returncode == 2, (case, r.stderr)
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, (case, r.stderr)
    assert not (root / "x.png").exists()


def test_evaluate_command_rejects_a_missing_model(tmp_path):
    r = _cli("--params", str(ROOT / "params.yaml"), "evaluate", "--dataset", "faces", "--model", "dcign", cwd=tmp_path)
    assert r.returncode == 2 and "checkpoint not found" in r.stderr
    r = _cli("--params", str(ROOT / "params.yaml"), "evaluate", "--dataset", "faces", "--model", "gan", cwd=tmp_path)
    assert r.returncode == 2 and "unknown model 'gan'" in r.stderr


def test_a_checkpoint_is_scored_on_another_datasets_shards(evaluated):
    """--checkpoint of a model trained on 'toy' scores another dataset's shards: outputs named
    <dataset>-from-<checkpoint>, the tied latent the one it owns, |rho| per test mesh."""
    import dataclasses

    from tests.train_fixtures import write_renders

    from evaluate.run import evaluate_checkpoint
    from pipeline.shards import pack_dataset

    root, params, _, metrics, _ = evaluated
    raw = dict(params.datasets)
    raw["other"] = dataclasses.replace(params.dataset("toy"), name="other")
    other_params = dataclasses.replace(params, datasets=raw)
    write_renders(root / "renders", "other", seed=7)
    pack_dataset(other_params.dataset("other"), params.shard, root / "renders", root / "data/shards/other", progress=False)
    scored, paths = evaluate_checkpoint(other_params, "other", root / "models" / "toy-dcign.pt", root, progress=False)
    assert paths.metrics == root / "metrics" / "other-from-toy-dcign.json" and paths.metrics.is_file()
    assert scored["trained_on"] == "toy" and scored["dataset"] == "other"
    assert scored["tied"]["azimuth"]["latent"] == metrics["dcign"]["tied"]["azimuth"]["latent"] == 0
    per_mesh = scored["tied"]["azimuth"]["per_mesh"]
    from pipeline.loader import open_split

    seen = {split: {str(m) for _, _, mesh in open_split(root / "data/shards/other", split).sweeps("azimuth") for m in mesh}
            for split in ("train", "test")}
    assert set(per_mesh) == seen["train"] | seen["test"]  # the model saw no mesh of 'other': all are scored
    assert seen["test"] <= {"4", "5"} and seen["train"] <= {"0", "1", "2", "3"}
    assert scored["tied"]["azimuth"]["per_mesh_mean"] == pytest.approx(np.mean(list(per_mesh.values())))
    # the model's own evaluation is untouched
    assert json.loads((root / "metrics" / "toy-dcign.json").read_text())["tied"] == _strict(metrics["dcign"]["tied"])


def _strict(value):
    return json.loads(json.dumps(value))


def test_a_checkpoint_of_another_image_size_is_refused_before_any_write(evaluated, tmp_path):
    import dataclasses

    from tests.train_fixtures import write_renders

    from evaluate.run import EvaluateError, evaluate_checkpoint
    from pipeline.shards import pack_dataset

    root, params, _, _, _ = evaluated
    small = dataclasses.replace(params, datasets={"small": dataclasses.replace(params.dataset("toy"), name="small")})
    write_renders(tmp_path / "renders", "small", size=16)
    pack_dataset(small.dataset("small"), params.shard, tmp_path / "renders", tmp_path / "data/shards/small", progress=False)
    with pytest.raises(EvaluateError, match="trained on 32px images .* holds 16px"):
        evaluate_checkpoint(small, "small", root / "models" / "toy-dcign.pt", tmp_path, progress=False)
    assert not (tmp_path / "metrics").exists() and not (tmp_path / "plots").exists()


def test_evaluate_command_needs_exactly_one_of_model_and_checkpoint(tmp_path):
    for args in ((), ("--model", "dcign", "--checkpoint", "models/faces-dcign.pt")):
        r = _cli("--params", str(ROOT / "params.yaml"), "evaluate", "--dataset", "faces", *args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith("error: give exactly one of --model") and \
            len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_rerender_figure_titles_columns_only_when_every_row_shares_the_values():
    import numpy as np

    from evaluate.figures import column_titles

    azimuth, elevation = np.linspace(-90, 90, 5), np.linspace(-20, 20, 5)
    assert column_titles([azimuth, azimuth.copy()]) == ["-90°", "-45°", "0°", "45°", "90°"]
    assert column_titles([azimuth, elevation]) is None  # the elevation row is not at the azimuth row's degrees
    assert column_titles([azimuth, azimuth[:3]]) is None
    assert column_titles([]) is None
