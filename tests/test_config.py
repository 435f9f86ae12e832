"""params.yaml -> typed objects: defaults load, and every bad value is a one-line error naming its key."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from config import ConfigError, load_params, parse_params
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
        node = node[key]
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
])
def test_bad_values_name_their_key_in_one_line(path, value, words):
    with pytest.raises(ConfigError) as err:
        parse_params(edited(path, value))
    message = str(err.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("key, value, words", [
    ("free_bits", -1, "train.free_bits: must be >= 0"),
    ("vae_every", -2, "train.vae_every: must be >= 0"),
    ("beta_intrinsic", -0.5, "train.beta_intrinsic: must be a finite number >= 0"),
    ("beta_intrinsic", float("inf"), "train.beta_intrinsic: must be a finite number >= 0"),
    ("beta_intrinsic", float("nan"), "train.beta_intrinsic: must be a finite number >= 0"),
])
def test_bad_train_value_names_its_key(key, value, words):
    with pytest.raises(ConfigError) as err:
        parse_params({**raw_params(), "train": {key: value}})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_paper_profile_declares_the_papers_training_procedure():
    paper = load_params(ROOT / "profiles" / "paper.yaml").train
    assert (paper.vae_every, paper.beta_intrinsic, paper.free_bits, paper.warm_start) == (0, 1.0, 0.0, 0)


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
