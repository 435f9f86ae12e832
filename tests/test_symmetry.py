"""Turn symmetry of a mesh (`assets.symmetry`) and the catalog's record of it: numpy only, no Blender."""
from __future__ import annotations

import json

import numpy as np
import pytest

from assets import chairs, geometry
from assets.catalog import build_meshes
from assets.mesh import Mesh, read_ply
from assets.symmetry import MAX_ORDER, ambiguous_turn, turn_order
from config import parse_params
from tests.render_fixtures import raw_params

GREY = (0.5, 0.5, 0.5)


def _box(lo, hi, color=GREY) -> Mesh:
    return geometry.box(lo, hi, color)


def _legs(n: int, radius: float = 0.3) -> list[Mesh]:
    out = []
    for k in range(n):
        a = np.radians(360.0 * k / n)
        x, y = radius * np.sin(a), -radius * np.cos(a)
        out.append(geometry.tube((x, y, -0.5), (x, y, 0.0), 0.04, 0.04, GREY))
    return out


def _round_seat() -> Mesh:
    return geometry.extrude(geometry.ellipse(0.9, 0.9, n=48), 0.0, 0.08, GREY)


@pytest.mark.parametrize("legs", [3, 4, 5])
def test_a_round_stool_on_n_legs_has_order_n(legs):
    assert turn_order(geometry.merge([_round_seat(), *_legs(legs)])) == legs


def test_a_square_prism_has_order_4_and_a_long_one_order_2():
    assert turn_order(_box((-0.3, -0.3, -0.5), (0.3, 0.3, 0.5))) == 4
    assert turn_order(_box((-0.5, -0.2, -0.3), (0.5, 0.2, 0.3))) == 2


def test_a_cylinder_has_the_largest_order():
    assert turn_order(_round_seat()) == MAX_ORDER


def test_a_back_or_an_off_centre_part_breaks_the_symmetry():
    stool = [_round_seat(), *_legs(4)]
    assert turn_order(geometry.merge(stool + [_box((-0.3, 0.3, 0.08), (0.3, 0.36, 0.5))])) == 1  # a back
    assert turn_order(geometry.merge(stool + [_box((0.1, -0.05, 0.08), (0.2, 0.05, 0.15))])) == 1  # a knob


def test_albedo_counts_a_stool_painted_on_one_side_is_not_symmetric():
    seat = _round_seat()
    colors = np.where(seat.vertices[:, [0]] > 0, 0.9, 0.2) * np.ones((1, 3))
    painted = Mesh(seat.vertices, seat.faces, colors)
    assert turn_order(geometry.merge([painted, *_legs(4)])) == 1


def test_the_order_does_not_depend_on_the_triangulation():
    coarse, fine = _box((-0.3, -0.3, -0.5), (0.3, 0.3, 0.5)), _box((-0.3, -0.3, -0.5), (0.3, 0.3, 0.5))
    # Split every triangle of `fine` into three about its centroid: the same surface, 3x the triangles.
    v, f = fine.vertices, fine.faces
    centres = v[f].mean(axis=1)
    c = np.arange(len(v), len(v) + len(f))
    faces = np.concatenate([np.stack([f[:, 0], f[:, 1], c], 1), np.stack([f[:, 1], f[:, 2], c], 1),
                            np.stack([f[:, 2], f[:, 0], c], 1)])
    fine = Mesh(np.concatenate([v, centres]), faces, np.concatenate([fine.colors, fine.colors[f[:, 0]]]))
    assert turn_order(coarse) == turn_order(fine) == 4


@pytest.mark.parametrize("order, width, ambiguous", [
    (1, 359, False), (2, 180, False), (2, 181, True), (3, 120, False), (3, 270, True), (4, 100, True), (8, 40, False),
])
def test_a_range_is_ambiguous_when_it_holds_a_whole_symmetric_turn(order, width, ambiguous):
    assert ambiguous_turn(order, width) is ambiguous


def test_the_catalog_records_each_meshs_order_and_stools_have_one(tmp_path):
    raw = raw_params()
    raw["datasets"]["faces"]["source"] = {"kind": "generator", "generator": "chairs"}
    ds = parse_params(raw).dataset("faces")
    catalog = build_meshes(ds, 0, tmp_path / "m", count=24)
    index = json.loads((tmp_path / "m" / "index.json").read_text())
    assert [e["turn_order"] for e in index["meshes"]] == [turn_order(read_ply(catalog.path(i))) for i in range(24)]
    kinds = {e.id: chairs.CHAIR_TYPES[int(e.params["chair_type"])] for e in catalog.entries}
    assert catalog.turn_orders() == {e.id: e.turn_order for e in catalog.entries if e.turn_order > 1}
    backed = [i for i, k in kinds.items() if k in ("dining", "armchair", "wingback", "swivel", "rocking")]
    assert backed and all(catalog.entries[i].turn_order == 1 for i in backed)
    assert any(kinds[i] == "stool" for i in catalog.turn_orders()), kinds


def test_the_turn_is_about_the_meshs_own_axis_not_its_bounding_box_centre():
    """Three legs splayed past the seat make the bounding box off-centre (the canonical frame centres the box);
    the stool is still symmetric about its own axis."""
    stool = geometry.merge([_round_seat(), *_legs(3, radius=0.6)])
    assert abs(stool.vertices[:, 1].max() + stool.vertices[:, 1].min()) > 0.05  # its box is off its axis
    assert turn_order(geometry.normalise(stool)) == 3
