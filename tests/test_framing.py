"""Portrait framing of heads made elsewhere (`source.framing: head`, assets/framing.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from assets import faces, framing, geometry
from assets.catalog import build_meshes, fingerprint, open_catalog, source_record
from assets.mesh import Mesh
from config import load_params
from tests.test_assets import ROOT, _folder_params

GREY = (0.8, 0.8, 0.8)


def _bust(head_radius=0.5, neck=(0.18, 0.6), shoulders=(1.6, 0.7)) -> Mesh:
    """A sphere head on a cylinder neck on a wide box of shoulders, crown at z = 2 r + neck + shoulders."""
    (neck_r, neck_h), (sh_w, sh_h) = neck, shoulders
    body = geometry.box((-sh_w / 2, -0.3, 0.0), (sh_w / 2, 0.3, sh_h), GREY)
    neck_part = geometry.tube((0, 0, sh_h - 0.05), (0, 0, sh_h + neck_h + 0.1), neck_r, neck_r, GREY, sides=24)
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=head_radius)
    head = Mesh(sphere.vertices + [0, 0, sh_h + neck_h + head_radius], np.asarray(sphere.faces),
                np.tile(GREY, (len(sphere.vertices), 1)))
    return geometry.merge([body, neck_part, head])


def test_the_constants_are_where_the_generator_puts_its_heads():
    rng = np.random.default_rng(7)
    widths, crowns = [], []
    for _ in range(24):
        mesh = faces.build(faces.sample(rng))
        points = framing.surface_points(mesh, framing.SAMPLES)
        # A generated head's chin is at -HEAD_SIZE / 2; its widest slice is above it.
        widths.append(framing.band_widths(points[points[:, 2] >= -faces.HEAD_SIZE / 2]).max())
        crowns.append(points[:, 2].max())
    assert abs(np.median(widths) - framing.HEAD_WIDTH) < 0.04
    assert abs(np.median(crowns) - framing.CROWN) < 0.04


def test_the_neck_of_a_bust_is_found_and_the_head_framed_like_a_generated_one():
    bust = geometry.normalise(_bust())
    v = bust.vertices
    # Normalised: the bust is 2.3 tall -> 1; the neck spans 0.7 to 1.3 in the file, -0.2 to 0.06 here.
    neck = framing.neck_height(bust)
    scale = 1 / 2.3
    assert (0.7 - 1.15) * scale < neck < (1.3 - 1.15) * scale
    framed = framing.frame_on_head(bust).vertices
    head = framed[np.argsort(v[:, 2])[-200:]]  # the top of the sphere, well above the neck
    assert abs(framed[:, 2].max() - framing.CROWN) < 0.01
    # The sphere is the widest part above the neck: framed, it is HEAD_WIDTH wide (the measure takes the
    # 2nd to 98th percentile of each slice, so the full width is a little more).
    sphere_width = np.ptp(framed[framed[:, 2] > framed[:, 2].max() - 0.6, 0])
    assert framing.HEAD_WIDTH < sphere_width < 1.08 * framing.HEAD_WIDTH
    assert abs(head[:, 0].mean()) < 0.02 and abs(head[:, 1].mean()) < 0.02


def test_framing_does_not_depend_on_how_the_file_was_scaled_or_placed():
    bust = _bust()
    moved = Mesh(bust.vertices * 7.5 + [3.0, -2.0, 11.0], bust.faces, bust.colors)
    a = framing.frame_on_head(geometry.normalise(bust)).vertices
    b = framing.frame_on_head(geometry.normalise(moved)).vertices
    assert np.allclose(a, b, atol=1e-3)


def test_a_head_without_a_neck_is_framed_as_a_whole():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=3.0)
    mesh = geometry.normalise(Mesh(sphere.vertices, np.asarray(sphere.faces), np.tile(GREY, (len(sphere.vertices), 1))))
    assert framing.neck_height(mesh) == pytest.approx(mesh.vertices[:, 2].min(), abs=0.02)
    framed = framing.frame_on_head(mesh).vertices
    assert framing.HEAD_WIDTH < np.ptp(framed[:, 0]) < 1.08 * framing.HEAD_WIDTH
    assert framed[:, 2].max() == pytest.approx(framing.CROWN, abs=0.01)


def test_framing_is_a_folder_source_option_and_part_of_the_fingerprint(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    bust = _bust()
    for k in range(2):
        trimesh.Trimesh(bust.vertices * (1 + k), bust.faces, process=False).export(folder / f"bust{k}.ply")
    path = _folder_params(tmp_path, folder)
    text = path.read_text().replace("forward_axis: '-Y'}", "forward_axis: '-Y', framing: head}")
    assert text != path.read_text()
    (tmp_path / "head.yaml").write_text(text)
    whole = load_params(path).dataset("chairs")
    head = load_params(tmp_path / "head.yaml").dataset("chairs")
    assert head.source.framing == "head" and whole.source.framing == "object"
    assert fingerprint(head, 0, None) != fingerprint(whole, 0, None)
    catalog = build_meshes(head, 0, tmp_path / "m")
    top = open_catalog(tmp_path / "m").load(0).vertices[:, 2].max()
    assert top == pytest.approx(framing.CROWN, abs=0.01)
    assert json.loads((tmp_path / "m" / "index.json").read_text())["source"]["framing"] == "head"
    assert len(catalog.entries) == 2


def test_the_default_framing_leaves_the_index_as_it_was():
    """A mesh folder built before the option existed stays current: its index has no `framing` key."""
    params = load_params(ROOT / "params.yaml")
    for name in ("faces", "chairs"):
        assert "framing" not in source_record(params.dataset(name).source)
