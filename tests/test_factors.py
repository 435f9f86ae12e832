"""Factors as data: the vocabulary, the declaration in params.yaml and its errors, the plan, labels, shards
and model layout of a five-factor dataset, and what each kind does to Blender's pixels."""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing

import cv2
import numpy as np
import pytest
import yaml

import factors as vocabulary
from assets.mesh import Mesh, write_ply
from config import ConfigError, parse_params
from fixtures.renders import TEST_MESHES, TRAIN_MESHES, write_renders
from model import checkpoint as ckpt
from model.latents import mirror_parity
from model.nets import from_config
from pipeline.loader import SweepSampler, open_split
from pipeline.shards import ShardError, check_declared, pack_dataset, read_manifest
from render import worker
from render.plan import PlanRequest, frames_of, plan
from render.runner import labels_csv
from render.scene import SceneSpec
from render.state import FrameState, frame_state
from tests.render_fixtures import blob, raw_params

FIVE = {"azimuth": "camera_azimuth", "elevation": "camera_elevation", "light": "light_azimuth",
        "sun": "light_elevation", "hue": "object_hue"}


def five_raw() -> dict:
    raw = raw_params()
    ds = raw["datasets"]["faces"]
    ds["factors"] = dict(FIVE)
    ds["ranges"].update(sun=[0, 60], hue=[-180, 180])
    ds["groups"].update(sun=2, hue=2)
    raw["model"] = {"latents": 8, "owned": {f: 1 for f in FIVE}}
    raw["train"] = {"mix": {**{f: 1 for f in FIVE}, "intrinsic": 2}}
    return raw


def edited(change) -> dict:
    raw = five_raw()
    change(raw)
    return raw


def test_a_params_file_without_factors_declares_the_papers_three():
    ds = parse_params(raw_params()).dataset("faces")
    assert ds.factors == vocabulary.PAPER == {"azimuth": "camera_azimuth", "elevation": "camera_elevation",
                                              "light": "light_azimuth"}
    assert ds.sweeps == ("azimuth", "elevation", "light", "intrinsic") and ds.render_sets[-1] == "iid"
    assert ds.flips() == {"azimuth": -1, "elevation": 1, "light": -1}


def test_the_declaration_orders_labels_latents_and_mix():
    params = parse_params(five_raw())
    ds = params.dataset("faces")
    assert ds.factor_names == tuple(FIVE) and ds.kinds == tuple(FIVE.values()) and ds.column("hue") == 4
    assert list(params.owned("faces")) == list(FIVE) and list(params.mix("faces")) == [*FIVE, "intrinsic"]
    assert ds.flips() == {"azimuth": -1, "elevation": 1, "light": -1, "sun": 1, "hue": 1}
    assert params.model_for("faces").owned == params.owned("faces")


def test_every_kind_states_its_unit_bounds_and_flip():
    assert set(vocabulary.KINDS) == set(vocabulary.FACTOR_KINDS) and len(vocabulary.KINDS) == 11
    for name, kind in vocabulary.KINDS.items():
        assert kind.flip in (-1, 1) and kind.bounds[0] < kind.bounds[1] and kind.unit and kind.what, name
    # a horizontal flip turns the sign of exactly the left-right kinds
    assert {n for n, k in vocabulary.KINDS.items() if k.flip == -1} == {"camera_azimuth", "camera_roll", "light_azimuth"}


def _parent(raw: dict, path: str) -> tuple[dict, str]:
    """The mapping that holds the dotted `path`'s last key, and that key."""
    *parents, last = path.split(".")
    for key in parents:
        raw = raw[key]
    return raw, last


def _set(path: str, value):
    def change(raw):
        node, last = _parent(raw, path)
        node[last] = value
    return change


def _pop(path: str):
    def change(raw):
        node, last = _parent(raw, path)
        del node[last]
    return change


BAD = [
    (_set("datasets.faces.factors.hue", "object_sparkle"),
     "datasets.faces.factors.hue: is 'object_sparkle'; choose one of: camera_azimuth"),
    (_set("model.owned.hue", 0), "model.owned.hue: is 0; every factor owns at least 1 latent"),
    (_set("datasets.faces.factors.sun", "camera_azimuth"),
     "datasets.faces.factors.sun: has kind camera_azimuth, as 'azimuth' does; a kind can be declared once"),
    (_set("datasets.faces.factors", {}), "datasets.faces.factors: is empty; declare at least one factor"),
    (_pop("model.owned.hue"), "model.owned: has no entry for factor 'hue' of dataset 'faces'; add `hue: 1`"),
    (_pop("train.mix.sun"), "train.mix: has no entry for factor 'sun' of dataset 'faces'; add `sun: 1`"),
    (_set("model.owned.zoom", 1), "model.owned.zoom: no dataset declares a factor 'zoom'"),
    (_set("datasets.faces.factors", {**FIVE, "intrinsic": "object_scale"}), "'intrinsic' is reserved"),
    (_set("datasets.faces.factors", {**FIVE, "../up": "object_scale"}), "'../up' is not a valid factor name"),
    (_set("datasets.faces.ranges.sun", [0, 120]),
     "datasets.faces.ranges.sun: light_elevation is in degrees and must lie in [-90, 90]"),
    (_set("datasets.faces.ranges.hue", [10, 10]), "datasets.faces.ranges.hue: min 10 = max 10"),
    (_pop("datasets.faces.ranges.hue"), "datasets.faces.ranges: has ['azimuth', 'elevation', 'light', 'sun']; "
                                        "give exactly the declared factors"),
    (_pop("datasets.faces.groups.hue"), "datasets.faces.groups: has"),
    (_set("model.latents", 5), "model.latents: is 5; dataset 'faces' needs more than its 5 owned latents"),
]


@pytest.mark.parametrize("change, words", BAD)
def test_bad_declarations_are_one_line_errors(change, words):
    with pytest.raises(ConfigError) as err:
        parse_params(edited(change))
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_range_is_checked_against_its_kind():
    with pytest.raises(ConfigError, match=r"^datasets.faces.ranges.hue: object_scale is in times and must lie in \[0.05, 4\]"):
        parse_params(edited(_set("datasets.faces.factors.hue", "object_scale")))


@pytest.mark.parametrize("change, words", [
    (_set("datasets.faces.factors.hue", "object_sparkle"), "error: datasets.faces.factors.hue: is 'object_sparkle'"),
    (_set("model.owned.hue", 0), "error: model.owned.hue: is 0; every factor owns at least 1 latent"),
    (_set("datasets.faces.factors.sun", "camera_azimuth"), "error: datasets.faces.factors.sun: has kind camera_azimuth"),
])
def test_bad_declarations_exit_2_with_one_line_and_write_nothing(tmp_path, change, words):
    from click.testing import CliRunner

    import cli

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(edited(change), sort_keys=False))
    with contextlib.chdir(tmp_path):
        result = CliRunner().invoke(cli.main, ["render", "--factor", "hue", "--dataset", "faces"])
    assert result.exit_code == 2 and result.stderr.startswith(words) and result.stderr.count("\n") == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_render_all_refuses_options_of_one_set(tmp_path):
    from click.testing import CliRunner

    import cli

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(five_raw(), sort_keys=False))
    with contextlib.chdir(tmp_path):
        result = CliRunner().invoke(cli.main, ["render", "--factor", "all", "--range", "0", "10"])
        unknown = CliRunner().invoke(cli.main, ["render", "--factor", "zoom", "--dataset", "faces"])
    assert result.exit_code == 2 and "--factor all renders every set" in result.stderr
    assert unknown.exit_code == 2 and "unknown factor 'zoom'; choose one of: azimuth, elevation, light, sun, hue" in unknown.stderr


# ------------------------------------------------------------------------------ plan, labels, shards


@pytest.fixture
def five():
    return parse_params(five_raw())


@pytest.mark.parametrize("factor", list(FIVE))
def test_a_sweep_of_any_declared_factor_varies_only_that_factor(five, factor):
    ds = five.dataset("faces")
    sweeps = plan(PlanRequest(ds, factor, 3, TRAIN_MESHES, TEST_MESHES, groups=3, steps=4))
    col = ds.column(factor)
    for sweep in sweeps:
        values = np.array([f.values for f in sweep.frames])
        assert values.shape == (4, 5)
        assert len(set(values[:, col])) == 4
        assert all(len(set(values[:, c])) == 1 for c in range(5) if c != col)
        for c, f in enumerate(FIVE):
            lo, hi = ds.ranges[f]
            assert (lo <= values[:, c]).all() and (values[:, c] <= hi).all()


def test_a_full_turn_of_a_periodic_kind_leaves_out_its_end_and_others_keep_both_ends(five):
    ds = five.dataset("faces")
    hue = [f.values[4] for f in plan(PlanRequest(ds, "hue", 0, TRAIN_MESHES, TEST_MESHES, groups=1, steps=4))[0].frames]
    assert hue == [-180.0, -90.0, 0.0, 90.0]  # -180..180 is one turn: 180 would repeat -180
    sun = [f.values[3] for f in plan(PlanRequest(ds, "sun", 0, TRAIN_MESHES, TEST_MESHES, groups=1, steps=4))[0].frames]
    assert sun == [0.0, 20.0, 40.0, 60.0]


def test_the_paper_declaration_plans_what_it_always_planned():
    """Frames hash as (split, group, index, mesh, *values), which is what `.plan.json` keys always hashed: a
    folder rendered before factors were declared is still current."""
    ds = parse_params(raw_params()).dataset("faces")
    frame = plan(PlanRequest(ds, "light", 0, TRAIN_MESHES, TEST_MESHES, groups=1, steps=3))[0].frames[0]
    assert frame.key() == (frame.split, frame.group, frame.index, frame.mesh, *frame.values) and len(frame.values) == 3


def test_labels_shards_and_batches_carry_every_declared_factor(tmp_path, five):
    ds = five.dataset("faces")
    write_renders(tmp_path / "renders", ds)
    header = (tmp_path / "renders/faces/hue/labels.csv").read_text().splitlines()[0]
    assert header == "file,split,group,index,mesh,azimuth,elevation,light,sun,hue"
    manifest = pack_dataset(ds, five.shard, tmp_path / "renders", tmp_path / "shards", progress=False)
    assert manifest.factors == tuple(FIVE) and manifest.sets == (*FIVE, "intrinsic", "iid")
    train = open_split(tmp_path / "shards", "train")
    images, labels, _ = next(train.sweeps("sun"))
    assert labels.shape == (len(images), 5) and len(set(labels[:, train.column("sun")])) == len(images)
    batch = next(SweepSampler(tmp_path / "shards", mix=five.mix("faces"), seed=0))
    assert batch.labels.shape[1] == 5 and batch.factor in ds.sweeps
    # shards of another declaration are refused by name
    with pytest.raises(ShardError, match="shards label the factors .* but datasets.faces.factors declares"):
        check_declared(read_manifest(tmp_path / "shards"), parse_params(raw_params()).dataset("faces"), tmp_path / "shards")


def test_labels_csv_columns_follow_the_declaration(five):
    ds = five.dataset("faces")
    frames = frames_of(plan(PlanRequest(ds, "iid", 0, TRAIN_MESHES, TEST_MESHES)))
    lines = labels_csv(frames, ds.factor_names).splitlines()
    assert lines[0].split(",")[5:] == list(FIVE) and len(lines[1].split(",")) == 10


def test_a_model_owns_latents_in_declared_order_with_each_kinds_flip(tmp_path, five):
    mc = five.model_for("faces")
    flips = five.dataset("faces").flips()
    assert mirror_parity(mc.owned, mc.latents, flips) == [-1, 1, -1, 1, 1, 0, 0, 0]
    mirrored = dataclasses.replace(mc, mirror=True)
    model = from_config(mirrored, 32, 1, flips)
    assert model.parity.tolist() == [-1, 1, -1, 1, 1, 0, 0, 0]
    meta = ckpt.ModelMeta(kind="dcign", dataset="faces", size=32, channels=1, latents=8,
                          owned={f: [i] for i, f in enumerate(FIVE)}, step=0, config=mirrored, flips=flips)
    assert meta.to_dict()["flips"] == flips  # not the paper's factors: stored
    paper = ckpt.ModelMeta(kind="dcign", dataset="faces", size=32, channels=1, latents=8,
                           owned={"azimuth": [0], "elevation": [1], "light": [2]}, step=0, config=mc)
    assert "flips" not in paper.to_dict() and paper.flips == {"azimuth": -1, "elevation": 1, "light": -1}
    ckpt.save(tmp_path / "m.pt", {"meta": meta.to_dict(), "model": model.state_dict()})
    loaded, meta_back = ckpt.load_model(tmp_path / "m.pt")
    assert meta_back.flips == flips and loaded.parity.tolist() == model.parity.tolist()


# ------------------------------------------------------------------------------ the scene


def test_frame_state_sets_the_declared_kinds_and_keeps_the_rest_fixed(five):
    ds = five.dataset("faces")
    state = frame_state(ds.kinds, (10.0, 5.0, -20.0, 45.0, 90.0), ds.camera, ds.light)
    assert (state.camera_azimuth, state.camera_elevation, state.light_azimuth) == (10.0, 5.0, -20.0)
    assert (state.light_elevation, state.object_hue) == (45.0, 90.0)
    assert state.camera_distance == ds.camera.distance and state.light_strength == ds.light.strength
    assert (state.camera_roll, state.object_scale, state.object_albedo, state.light_temperature) == (0.0, 1.0, 1.0, None)
    with pytest.raises(ValueError):
        frame_state(ds.kinds, (1.0, 2.0), ds.camera, ds.light)  # one value per declared factor


KINDS_ALL = ("camera_azimuth", "camera_elevation", "camera_distance", "camera_roll", "light_azimuth",
             "light_elevation", "light_strength", "light_temperature", "object_hue", "object_albedo", "object_scale")


def _frames(*changes):
    base = dict(camera_azimuth=20.0, camera_elevation=10.0, camera_distance=3.0, camera_roll=0.0, light_azimuth=-40.0,
                light_elevation=30.0, light_strength=3.0, light_temperature=6600.0, object_hue=0.0, object_albedo=1.0,
                object_scale=1.0)
    from render.plan import Frame

    return [Frame("train", 0, i, 0, tuple({**base, **c}[k] for k in KINDS_ALL)) for i, c in enumerate(changes)]


@pytest.mark.blender
def test_each_kind_changes_the_picture_as_it_says(tmp_path):
    """One coloured blob, every kind declared, rendered in RGB by the real Blender scene."""
    raw = raw_params(size=48, samples=16, color="rgb")
    params = parse_params(raw)
    ds = params.dataset("faces")
    b = blob()
    write_ply(tmp_path / "blob.ply", Mesh(b.vertices, b.faces, np.tile(np.float32([0.8, 0.35, 0.2]), (len(b.vertices), 1))))
    spec = SceneSpec(params.render, ds.camera, ds.light, params.seed, KINDS_ALL)
    changes = [{}, {"camera_roll": 90.0}, {"object_scale": 0.5}, {"camera_distance": 6.0}, {"object_albedo": 0.5},
               {"object_hue": 180.0}, {"light_temperature": 2000.0}, {"light_temperature": 12000.0},
               {"light_strength": 6.0}, {"light_elevation": 80.0}]
    paper = SceneSpec(params.render, ds.camera, ds.light, params.seed)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pngs = pool.apply(worker.render_sweep_bytes, (spec, {0: str(tmp_path / "blob.ply")}, _frames(*changes)))
        (plain,) = pool.apply(worker.render_sweep_bytes, (paper, {0: str(tmp_path / "blob.ply")},
                                                          [_paper_frame()]))
    img = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].astype(float) for p in pngs]
    base, roll, small, far, dark, hue, warm, cold, strong, high = img
    lum = lambda x: x.mean(axis=2)  # noqa: E731
    mask = lambda x: lum(x) > 4  # noqa: E731
    on = mask(base)
    # every kind at its fixed value renders like the paper's scene (one node more, same colour)
    paper_img = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].astype(float)
    assert np.abs(paper_img - base).max() <= 2
    # a 90-degree roll turns the picture a quarter turn clockwise (the light stays where it was)
    assert np.abs(np.rot90(base, k=-1) - roll).mean() < 0.25 * np.abs(np.rot90(base, k=1) - roll).mean()
    # half the size, or twice the distance: about a quarter of the area
    assert 0.15 < mask(small).mean() / on.mean() < 0.35 and 0.15 < mask(far).mean() / on.mean() < 0.35
    # half the albedo: darker (half the linear light is ~0.73 in sRGB), same silhouette
    assert lum(dark)[on].mean() < 0.8 * lum(base)[on].mean() and abs(mask(dark).mean() - on.mean()) < 0.02
    # the hue turned half round: a reddish albedo turns bluish-green
    assert base[on][:, 0].mean() > base[on][:, 2].mean() and hue[on][:, 2].mean() > hue[on][:, 0].mean()
    # a warm sun is redder than a cold one, relative to blue
    ratio = lambda x: x[on][:, 0].mean() / max(x[on][:, 2].mean(), 1.0)  # noqa: E731
    assert ratio(warm) > 1.2 * ratio(cold)
    assert lum(strong)[on].mean() > 1.2 * lum(base)[on].mean()
    assert np.abs(lum(high) - lum(base))[on].mean() > 5  # the sun moved up: the shading moved


def _paper_frame():
    from render.plan import Frame

    return Frame("train", 0, 0, 0, (20.0, 10.0, -40.0))


def test_the_paper_kinds_keep_the_pixel_key_they_always_had():
    params = parse_params(raw_params())
    ds = params.dataset("faces")
    paper = SceneSpec(params.render, ds.camera, ds.light, params.seed)
    assert "factors" not in paper.pixel_key()
    assert SceneSpec(params.render, ds.camera, ds.light, params.seed, tuple(FIVE.values())).pixel_key()["factors"] \
        == list(FIVE.values())


def test_state_defaults_match_frame_state_of_nothing_declared():
    params = parse_params(raw_params())
    ds = params.dataset("faces")
    assert frame_state((), (), ds.camera, ds.light) == FrameState(camera_distance=ds.camera.distance,
                                                                  light_elevation=ds.light.elevation,
                                                                  light_strength=ds.light.strength)



def test_the_suns_black_body_colour_runs_from_red_through_white_to_blue():
    from render.state import blackbody_rgb

    warm, white, cold = blackbody_rgb(2000.0), blackbody_rgb(6600.0), blackbody_rgb(20000.0)
    assert max(warm) == max(white) == max(cold) == 1.0  # the brightest channel is 1: strength stays the sun's
    assert warm[0] == 1.0 and warm[2] < 0.1 and cold[2] == 1.0 and cold[0] < 0.8
    assert min(white) > 0.97  # 6600 K is close to white
