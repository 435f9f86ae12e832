"""params.yaml -> typed objects: defaults load, and every bad value is a one-line error naming its key."""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest
import yaml

from config import ConfigError, ModelConfig, load_params, parse_params
from tests.render_fixtures import raw_params

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_load_with_documented_defaults():
    params = load_params(ROOT / "params.yaml")
    assert set(params.datasets) == {"faces", "chairs"}
    faces, chairs = params.dataset("faces"), params.dataset("chairs")
    assert params.render.size == 64 and params.render.samples == 8 and params.render.color == "gray"
    assert faces.ranges == {"azimuth": (-90.0, 90.0), "elevation": (-20.0, 20.0), "light": (-80.0, 80.0)}
    assert chairs.ranges["azimuth"][1] - chairs.ranges["azimuth"][0] > 180
    assert faces.name == "faces" and faces.render_dir("light") == Path("data/renders/faces/light")


def edited(path: str, value):
    raw = copy.deepcopy(raw_params())
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize("path, value, words", [
    ("render.size", 4, "render.size: is 4; use at least 8"),
    ("render.samples", 0, "render.samples"),
    ("render.color", "sepia", "render.color: is 'sepia'; choose one of: gray, rgb"),
    ("render.device", "tpu", "render.device"),
    ("render.threads", 0, "render.threads"),
    ("render.size", "big", "render.size: expected an integer"),
    ("render.denoise", "yes", "render.denoise: expected true or false"),
    ("render.sise", 64, "render.sise: unknown key"),
    ("render.executor", "slurm", "render.executor: is 'slurm'; choose one of: local, ray"),
    ("render.address", "head-node", "render.address: is 'head-node'; give HOST:PORT"),
    ("render.address", "10.0.0.5:70000", "render.address"),
    ("datasets.faces.ranges.light", [80, -80], "datasets.faces.ranges.light: min 80 > max -80"),
    ("datasets.faces.ranges.light", [0], "datasets.faces.ranges.light: expected a list of 2 values"),
    ("datasets.faces.ranges", {"azimuth": [0, 1]}, "datasets.faces.ranges: has ['azimuth']"),
    ("datasets.faces.steps", 1, "datasets.faces.steps: is 1; a sweep needs at least 2 steps"),
    ("datasets.faces.groups.light", -1, "datasets.faces.groups.light"),
    ("datasets.faces.camera.fov", 0, "datasets.faces.camera.fov"),
    ("datasets.faces.camera.distance", 0.1, "datasets.faces.camera.distance"),
    ("datasets.faces.light.elevation", 95, "datasets.faces.light.elevation"),
    ("datasets.faces.light.ambient", -1, "datasets.faces.light.ambient"),
    ("datasets.faces.light.fill", "sky", "datasets.faces.light.fill: is 'sky'; choose one of: world, flat"),
    ("datasets.faces.spacing", "log", "datasets.faces.spacing"),
    ("datasets.faces.source", {"kind": "folder"}, "datasets.faces.source.path: is empty"),
    ("datasets", {}, "datasets: is empty"),
    ("model.likelihood", "poisson", "model.likelihood: is 'poisson'; choose one of: bernoulli, gaussian, calibrated"),
    ("model.sigma", 0, "model.sigma: is 0.0; give a positive standard deviation"),
    ("model.decoder_width", 0, "model.decoder_width: is 0; must be >= 1"),
    ("train.models", ["dcign"], "train.models: list each model once, dcign and vae included"),
    ("train.models", ["dcign", "vae", "vae"], "train.models: list each model once"),
    ("train.models", ["dcign", "vae", "glow"], "train.models[2]: is 'glow'; choose one of: dcign, vae, betavae"),
    ("train.seeds", [], "train.seeds: list at least one seed"),
    ("train.seeds", [-1], "train.seeds[0]: is -1; must be >= 0"),
    ("train.betavae_beta", -1, "train.betavae_beta: must be >= 0"),
])
def test_bad_values_name_their_key_in_one_line(path, value, words):
    with pytest.raises(ConfigError) as err:
        parse_params(edited(path, value))
    message = str(err.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("key, value, words", [
    ("free_bits", -1, "train.free_bits: must be >= 0"),
    ("vae_every", -2, "train.vae_every: must be >= 0"),
    ("ssim_weight", -1.0, "train.ssim_weight: must be >= 0"),
    ("view_shift", -1.0, "train.view_shift: is -1.0; give pixels >= 0"),
    ("view_shift", float("nan"), "train.view_shift: is nan"),
    ("view_scale", 0.5, "train.view_scale: is 0.5; give a fraction in [0, 0.5)"),
    ("lr_schedule", "linear", "train.lr_schedule: is 'linear'; choose one of: constant, cosine"),
    ("beta_intrinsic", -0.5, "train.beta_intrinsic: must be >= 0"),
    ("beta_intrinsic", float("inf"), "train.beta_intrinsic: is inf; must be a finite number"),
    ("beta_intrinsic", float("nan"), "train.beta_intrinsic: is nan; must be a finite number"),
    ("weight_decay", -0.1, "train.weight_decay: must be >= 0"),
    ("mix", {"azimuth": 1e308, "elevation": 1e308, "light": 1, "intrinsic": 1},
     "train.mix: weights must be >= 0, not all 0, and add up to a finite number"),
])
def test_bad_train_value_names_its_key(key, value, words):
    with pytest.raises(ConfigError) as err:
        parse_params({**raw_params(), "train": {key: value}})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_paper_profile_declares_the_papers_training_procedure():
    paper = load_params(ROOT / "profiles" / "paper.yaml").train
    assert (paper.vae_every, paper.beta_intrinsic, paper.free_bits, paper.warm_start) == (0, 1.0, 0.0, 0)
    assert load_params(ROOT / "profiles" / "paper.yaml").model.likelihood == "bernoulli"
    assert ModelConfig().likelihood == "bernoulli"  # the paper's (and the original code's) loss
    assert ModelConfig().decoder_width == 1 and load_params(ROOT / "params.yaml").model.decoder_width == 1


def test_decoder_width_is_for_the_conv4_network_only():
    raw = raw_params()
    raw.setdefault("model", {}).update(arch="paper", decoder_width=2)
    with pytest.raises(ConfigError, match="^model.decoder_width: applies to the conv4 network only"):
        parse_params(raw)


@pytest.mark.parametrize("address", ["", "10.0.0.5:6379", "head.cluster-1.example:6379", "[::1]:6379"])
def test_cluster_addresses_accepted(address):
    assert parse_params(edited("render.address", address)).render.address == address


def test_file_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="parameters file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("render: {size: 64\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_params(bad)


def test_unknown_dataset_lists_the_known_ones():
    params = parse_params(raw_params())
    with pytest.raises(ConfigError, match="unknown dataset 'cars'; params.yaml defines: faces"):
        params.dataset("cars")


def test_round_trip_through_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw_params()))
    assert load_params(path) == parse_params(raw_params())


# ---------------------------------------------------------------------------- found by an outside audit


def with_value(path: str, value):
    """The test params with the key at dotted `path` set to `value` (its sections made if missing)."""
    raw = copy.deepcopy(raw_params())
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize("path, value, words", [
    ("seed", -1, "seed: is -1; must be >= 0"),
    ("seed", 2**32, "seed: is 4294967296; must be >= 0 and < 2**32"),
    ("datasets.faces.ranges.azimuth", [10, 10],
     "datasets.faces.ranges.azimuth: min 10 = max 10; give [min, max] with min < max"),
    ("datasets.faces.test_groups", 0, "datasets.faces.test_groups: is 0; must be >= 1"),
    ("train.weight_decay", -1, "train.weight_decay: must be >= 0"),
])
def test_audit_values_rejected_in_one_line(path, value, words):
    with pytest.raises(ConfigError) as err:
        parse_params(with_value(path, value))
    assert words in str(err.value) and "\n" not in str(err.value)


FLOATS = ["shard.max_mb", "train.lr", "train.weight_decay", "train.beta", "train.pull", "train.free_bits",
          "datasets.faces.camera.distance", "datasets.faces.camera.fov", "datasets.faces.light.elevation",
          "datasets.faces.light.strength", "datasets.faces.light.ambient"]


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400],
                         ids=["inf", "-inf", "nan", "10**400"])
@pytest.mark.parametrize("path", FLOATS)
def test_every_float_setting_must_be_finite(path, value):
    """`shard.max_mb: .inf` reached int(nan) in the shard stage; inf passed `lr > 0`; 10**400 raised OverflowError."""
    with pytest.raises(ConfigError, match=rf"^{path}: is .*; must be a finite number$"):
        parse_params(with_value(path, value))


@pytest.mark.parametrize("path", ["datasets.faces.ranges.light", "train.betas"])
def test_float_pairs_must_be_finite(path):
    with pytest.raises(ConfigError, match=r"must be a finite number"):
        parse_params(with_value(path, [0.1, float("inf")]))


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", ".", "..", ".hidden", "a/b", "", "with space", "-dash",
                                  "x" * 65, "new\nline"])
def test_dataset_names_that_are_not_plain_folder_names_are_rejected(name):
    raw = raw_params()
    raw["datasets"] = {name: raw["datasets"]["faces"]}
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    message = str(err.value)
    assert message.startswith("datasets: ") and "is not a valid dataset name; use up to 64 letters" in message
    assert "\n" not in message


def test_all_is_not_a_dataset_name():
    raw = raw_params()
    raw["datasets"] = {"all": raw["datasets"]["faces"]}
    with pytest.raises(ConfigError, match=r"^datasets: 'all' is not a dataset name: `--dataset all` means every"):
        parse_params(raw)


@pytest.mark.parametrize("name", ["faces", "my-heads_2", "v1.2", "X"])
def test_plain_dataset_names_are_accepted(name):
    raw = raw_params()
    raw["datasets"] = {name: raw["datasets"]["faces"]}
    assert parse_params(raw).dataset(name).mesh_dir() == Path("data/meshes") / name


@pytest.mark.parametrize("text, words", [
    (b"seed: 2001-13-45\n", "a value cannot be read (month must be in 1..12)"),  # datetime's ValueError
    (b"\xff\xfe: 1\n", "not UTF-8 text (byte 0xff at offset 0)"),  # UnicodeDecodeError
    (b"1: 2\nfoo: 3\n", "1: unknown key"),  # sorting int and str keys raised TypeError
    (b'render: {"a\\nb": 1}\n', "render.'a\\nb': unknown key"),  # a key with a newline, quoted
    (b'datasets: {x: {groups: {"a\\nb": z}}}\n', "datasets.x.groups.'a\\nb': expected an integer"),
])
def test_odd_files_are_one_line_errors(tmp_path, text, words):
    path = tmp_path / "p.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert words in str(err.value) and "\n" not in str(err.value)


def invoke(root: Path, *args: str):
    """The CLI in this process, as `python cli.py` runs it (standalone mode), in `root`."""
    from click.testing import CliRunner

    import cli

    (root / "params.yaml").write_text(yaml.safe_dump(raw_params()))
    with contextlib.chdir(root):
        return CliRunner().invoke(cli.main, ["--params", "params.yaml", *args])


@pytest.mark.parametrize("args, words", [
    (["assets", "--seed", "-1", "--count", "1", "--out", "out"], "error: --seed: is -1; must be >= 0"),
    (["render", "--factor", "light", "--seed", "-1", "--out", "out"], "error: --seed: is -1; must be >= 0"),
    (["train", "--dataset", "faces", "--model", "dcign", "--seed", "-1"], "error: --seed: is -1; must be >= 0"),
    (["render", "--factor", "light", "--range", "10", "10", "--out", "out"], "error: --range: min 10 = max 10"),
    (["render", "--factor", "light", "--range", "nan", "10", "--out", "out"], "error: --range: is [nan, 10]; give finite"),
    (["assets", "--dataset", "../x", "--out", "out"], "error: --dataset: '../x' is not a valid dataset name"),
    (["render", "--factor", "light", "--dataset", "/abs"], "error: --dataset: '/abs' is not a valid dataset name"),
    (["shard", "--dataset", ".."], "error: --dataset: '..' is not a valid dataset name"),
    (["train", "--dataset", "../x", "--model", "dcign"], "error: --dataset: '../x' is not a valid dataset name"),
    (["evaluate", "--dataset", "../x", "--model", "dcign"], "error: --dataset: '../x' is not a valid dataset name"),
    (["report", "--dataset", "../x"], "error: --dataset: '../x' is not a valid dataset name"),
    # click's own errors: one `error:` line too, not a usage block and `Error:`
    (["render", "--factor", "light", "--groups", "-1"], "error: Invalid value for '--groups': -1 is not in the range"),
    (["assets", "--count", "abc"], "error: Invalid value for '--count': 'abc' is not a valid integer"),
    (["train", "--dataset", "faces", "--model", "dcign", "--steps", "0"], "error: Invalid value for '--steps'"),
    (["render", "--factor", "light", "--bogus"], "error: No such option '--bogus'"),
    (["render"], "error: Missing option '--factor'"),
    (["nosuch"], "error: No such command 'nosuch'"),
])
def test_bad_command_lines_print_one_error_line_and_write_nothing(tmp_path, args, words):
    result = invoke(tmp_path, *args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr.startswith(words) and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_bare_command_still_prints_the_help():
    from click.testing import CliRunner

    import cli

    assert "Commands:" in CliRunner().invoke(cli.main, []).output
