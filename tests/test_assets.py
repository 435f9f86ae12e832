"""Assets: generated faces and chairs, the catalog on disk, and the user's own mesh files (no Blender)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from assets import chairs, faces, geometry
from assets.catalog import build_meshes, open_catalog
from assets.mesh import DEFAULT_FINISH, Mesh, MeshError, read_ply, write_ply
from assets.userfiles import axis_rotation, load_folder
from config import load_params

ROOT = Path(__file__).resolve().parents[1]
GENERATORS = {"faces": faces, "chairs": chairs}


def _identity(gen, i: int) -> dict:
    return gen.sample(np.random.default_rng([123, i]))


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, capture_output=True, text=True)


def _shells(mesh: Mesh) -> list[trimesh.Trimesh]:
    """The mesh's parts, with coincident vertices welded (sharp edges are split on purpose)."""
    welded = trimesh.Trimesh(mesh.vertices.astype(np.float64), mesh.faces, process=False)
    welded.merge_vertices(digits_vertex=6)
    return welded.split(only_watertight=False)


def _silhouette(mesh: Mesh, size: int = 48) -> np.ndarray:
    """Front orthographic silhouette (X right, Z up) from the vertices, rasterised coarsely."""
    v = mesh.vertices
    ix = np.clip(((v[:, 0] + 0.5) * (size - 1)).round().astype(int), 0, size - 1)
    iz = np.clip(((v[:, 2] + 0.5) * (size - 1)).round().astype(int), 0, size - 1)
    img = np.zeros((size, size), bool)
    img[iz, ix] = True
    return img


def _chair(kind: str, i: int = 0, **over) -> dict:
    """Identity i as a chair of the given type, with some parameters set."""
    p = dict(_identity(chairs, i), chair_type=float(chairs.CHAIR_TYPES.index(kind)))
    return {**p, **{k: float(v) for k, v in over.items()}}


def _assert_stands_in_one_piece(mesh: Mesh, what: str) -> None:
    """Floor contacts on both sides of the surface's centroid in X and in Y (it does not tip over),
    and every part touches the floor or another part (none floats)."""
    v = mesh.vertices.astype(np.float64)
    area = geometry.triangle_areas(v, mesh.faces)
    centre = (v[mesh.faces].mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
    feet = v[v[:, 2] < v[:, 2].min() + 0.01]
    for axis in (0, 1):
        assert feet[:, axis].min() < centre[axis] - 0.02 < centre[axis] + 0.02 < feet[:, axis].max(), \
            f"{what}: tips over along {'XY'[axis]}"
    bounds = np.array([s.bounds for s in _shells(mesh)])
    lo, hi = bounds[:, 0], bounds[:, 1]
    touch = np.all((lo[:, None] <= hi[None, :] + 1e-4) & (lo[None, :] <= hi[:, None] + 1e-4), axis=2)
    reached = bounds[:, 0, 2] < v[:, 2].min() + 1e-4
    for _ in range(len(bounds)):
        reached = reached | touch[reached].any(axis=0)
    assert reached.all(), f"{what}: {int((~reached).sum())} part(s) float in the air"


def _assert_valid_chair(mesh: Mesh, what: str) -> None:
    v = mesh.vertices.astype(np.float64)
    assert len(v) and len(mesh.faces), what
    assert np.isfinite(v).all() and np.isfinite(mesh.colors).all(), what
    assert mesh.colors.min() >= 0 and mesh.colors.max() <= 1, what
    assert mesh.finish is not None and mesh.finish.shape == (len(v), 2), what
    assert mesh.finish.min() >= 0 and mesh.finish.max() <= 1, what
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(v), what
    lo, hi = v.min(axis=0), v.max(axis=0)
    assert np.allclose((lo + hi) / 2, 0, atol=1e-5) and abs((hi - lo).max() - 1.0) < 1e-5, f"{what}: not canonical"
    assert geometry.triangle_areas(v, mesh.faces).min() > 1e-10, f"{what}: degenerate triangle"
    for shell in _shells(mesh):
        assert shell.is_watertight, f"{what}: a part is not closed"
        assert shell.is_winding_consistent, f"{what}: a part has triangles wound both ways"
        assert geometry.signed_volume(shell.vertices, shell.faces) > 0, f"{what}: a part is inside out"
    _assert_stands_in_one_piece(mesh, what)


# ------------------------------------------------------------------------------ generators


@pytest.mark.parametrize("name", GENERATORS)
def test_generated_meshes_are_valid_canonical_and_closed_outward(name):
    gen = GENERATORS[name]
    for i in range(6):
        mesh = gen.build(_identity(gen, i))
        v = mesh.vertices.astype(np.float64)
        assert np.isfinite(v).all() and np.isfinite(mesh.colors).all()
        assert mesh.colors.min() >= 0 and mesh.colors.max() <= 1
        assert mesh.faces.min() >= 0 and mesh.faces.max() < len(v)
        if name == "faces":
            _assert_portrait_frame(mesh)
        else:
            lo, hi = v.min(axis=0), v.max(axis=0)
            assert np.allclose((lo + hi) / 2, 0, atol=1e-5), "bounding box must be centred"
            assert abs((hi - lo).max() - 1.0) < 1e-5, "largest extent must be 1"
        assert geometry.triangle_areas(v, mesh.faces).min() > 1e-10, "degenerate triangle"
        for shell in _shells(mesh):
            assert shell.is_watertight, "every part is a closed shell"
            assert geometry.signed_volume(shell.vertices, shell.faces) > 0, "a part is inside out"
        if name == "faces":
            assert len(mesh.faces) >= 5000


def _assert_portrait_frame(mesh: Mesh) -> None:
    """Faces are framed on the head (skull and face, the first part): its box centred, its height fixed."""
    head = mesh.vertices[:faces.HEAD_VERTICES].astype(np.float64)
    lo, hi = head.min(axis=0), head.max(axis=0)
    assert np.allclose((lo + hi) / 2, 0, atol=1e-5), "the head's bounding box must be centred"
    assert abs((hi - lo)[2] - faces.HEAD_SIZE) < 1e-5, "the head's height must be HEAD_SIZE"
    assert np.abs(mesh.vertices).max() <= 1.0, "hair and shoulders stay within [-1, 1]^3"


def _closed_outward_parts(mesh: Mesh) -> int:
    """Fast check (numpy/scipy) that every part is closed and wound outward; returns the part count.

    Coincident vertices are welded; then every directed edge must occur exactly once and its reverse
    exactly once (closed, consistently oriented), and every connected part must enclose positive volume.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    v = mesh.vertices.astype(np.float64)
    _, weld = np.unique(np.round(v, 6), axis=0, return_inverse=True)
    weld = weld.ravel()
    f = weld[mesh.faces]
    n = int(weld.max()) + 1
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert (edges[:, 0] != edges[:, 1]).all(), "a collapsed triangle"
    key = edges[:, 0] * n + edges[:, 1]
    assert len(np.unique(key)) == len(key), "an edge is used twice in the same direction (open or flipped part)"
    assert np.isin(edges[:, 1] * n + edges[:, 0], key).all(), "an edge has no partner (open part)"
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    count, label = connected_components(graph, directed=False)
    part = label[f[:, 0]]
    w = v[mesh.faces]
    vol = np.einsum("ij,ij->i", w[:, 0], np.cross(w[:, 1], w[:, 2])) / 6.0
    volumes = np.bincount(part, weights=vol, minlength=count)[np.unique(part)]
    assert (volumes > 0).all(), "a part is inside out"
    return len(volumes)


def _assert_valid_face(mesh: Mesh) -> None:
    v = mesh.vertices.astype(np.float64)
    assert len(v) and len(mesh.faces)
    assert np.isfinite(v).all() and np.isfinite(mesh.colors).all()
    assert mesh.colors.min() >= 0 and mesh.colors.max() <= 1
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(v)
    _assert_portrait_frame(mesh)
    assert geometry.triangle_areas(v, mesh.faces).min() > 1e-10, "degenerate triangle"
    assert _closed_outward_parts(mesh) >= 6  # head, 2 eyes, 2 ears, neck at least


def test_faces_face_minus_y_and_stand_up():
    for i in range(6):
        mesh = faces.build(_identity(faces, i))
        v = mesh.vertices
        head = v[:faces.HEAD_VERTICES]
        # The nose tip is the head's most forward point: central in X, toward -Y, in the upper half.
        tip = head[np.argmin(head[:, 1])]
        assert abs(tip[0]) < 0.05 and tip[2] > -0.2
        # Nothing (hair, beard, chest) reaches further forward than the nose, except a long beard's tip
        # low on the chin.
        ahead = v[v[:, 1] < tip[1] - 1e-6]
        assert len(ahead) == 0 or ahead[:, 2].max() < -0.25
        # The crown is on top; the neck or the shoulders are at the bottom, behind the face.
        assert abs(head[np.argmax(head[:, 2])][0]) < 0.1
        assert v[np.argmin(v[:, 2])][1] > tip[1] and v[:, 2].min() < head[:, 2].min()


def test_faces_portrait_frame_ignores_hair_and_shoulders():
    """The head keeps its size and place whatever the hair or bust: the renders frame the head."""
    base = dict(_identity(faces, 0), hair_style=0.0, bust=0.0, facial_hair=0.0)
    ref = faces.build(base).vertices[:faces.HEAD_VERTICES]
    tall = faces.build(dict(base, hair_style=float(faces.HAIR_STYLES.index("afro")), hair_volume=1.0,
                            bust=1.0, shoulder_width=faces.PARAMS["shoulder_width"][1],
                            facial_hair=float(faces.FACIAL_HAIR.index("beard")), beard_length=1.0))
    assert np.array_equal(tall.vertices[:faces.HEAD_VERTICES], ref)
    v = tall.vertices
    assert v[:, 2].max() > ref[:, 2].max() + 0.1, "the afro rises above the head"
    assert v[:, 2].min() < -0.75 and np.ptp(v[:, 0]) > 2 * np.ptp(ref[:, 0]), "shoulders leave the head's frame"


def test_chairs_stand_on_the_floor_with_the_back_behind():
    for kind in chairs.CHAIR_TYPES:
        for i in range(4):
            p = _chair(kind, i, bench_back=1)
            mesh = chairs.build(p)
            _assert_stands_in_one_piece(mesh, kind)
            if kind != "stool":
                v = mesh.vertices
                top = v[v[:, 2] > v[:, 2].max() - 0.05]
                assert top[:, 1].mean() > 0, f"{kind}: the top of the back must be behind the seat (+Y)"


def test_faces_have_at_least_twenty_continuous_parameters_within_ranges():
    p = _identity(faces, 0)
    assert len(faces.PARAMS) >= 20 and set(p) == set(faces.PARAMS) | set(faces.CHOICES)
    for k, (lo, hi) in faces.PARAMS.items():
        assert lo <= p[k] <= hi and p[k] == round(p[k], 6)


def test_face_sampling_covers_every_range_and_option():
    draws = [_identity(faces, i) for i in range(600)]
    for p in draws:
        assert all(isinstance(x, float) for x in p.values()), "an identity is a flat dict of floats"
        assert set(p) == set(faces.PARAMS) | set(faces.CHOICES)
        for k, (lo, hi) in faces.PARAMS.items():
            assert lo <= p[k] <= hi and p[k] == round(p[k], 6), k
        for k, n in faces.CHOICES.items():
            assert p[k] == int(p[k]) and 0 <= p[k] < n, k
    for k, n in faces.CHOICES.items():
        assert {int(p[k]) for p in draws} == set(range(n)), f"{k}: not every option is drawn"
    for k, (lo, hi) in faces.PARAMS.items():
        values = np.array([p[k] for p in draws])
        assert values.min() < lo + 0.15 * (hi - lo) and values.max() > hi - 0.15 * (hi - lo), f"{k} misses its range"
    # Correlations that make them look like people: women have no facial hair; men have wider jaws and
    # heavier brows; grey hair comes with age.
    women = [p for p in draws if p["sex"] == 0]
    men = [p for p in draws if p["sex"] == 1]
    assert women and men and all(p["facial_hair"] == 0 for p in women)
    for k in ("jaw_width", "brow_ridge", "shoulder_width"):
        assert np.mean([p[k] for p in men]) > np.mean([p[k] for p in women])
    grey = faces.HAIR_COLORS.index("grey")
    assert np.mean([p["age"] for p in draws if p["hair_color"] == grey]) > \
        np.mean([p["age"] for p in draws if p["hair_color"] != grey]) + 0.2
    assert len({tuple(p.values()) for p in draws}) == len(draws)


def _face_extremes():
    """(label, identity) for each end of every continuous range and each option of every choice."""
    # Long hair, a beard and shoulders: every parameter then plays a part.
    base = dict(_identity(faces, 0), hair_style=float(faces.HAIR_STYLES.index("long")),
                facial_hair=float(faces.FACIAL_HAIR.index("beard")), bust=1.0)
    for k, (lo, hi) in faces.PARAMS.items():
        yield f"{k}={lo}", dict(base, **{k: lo})
        yield f"{k}={hi}", dict(base, **{k: hi})
    for k, n in faces.CHOICES.items():
        for option in range(n):
            yield f"{k}={option}", dict(base, **{k: float(option)})
    # Extremes together: the biggest hair on the smallest head, the thinnest on the biggest.
    small = {k: lo for k, (lo, hi) in faces.PARAMS.items()}
    big = {k: hi for k, (lo, hi) in faces.PARAMS.items()}
    for style in range(len(faces.HAIR_STYLES)):
        for beard in (2, 3):
            yield f"all low, style {style}", dict(base, **small, hair_style=float(style), facial_hair=float(beard))
            yield f"all high, style {style}", dict(base, **big, hair_style=float(style), facial_hair=float(beard))


def test_face_range_extremes_and_every_option_build_valid_meshes():
    for label, p in _face_extremes():
        try:
            _assert_valid_face(faces.build(p))
        except AssertionError as err:
            raise AssertionError(f"{label}: {err}") from None


def test_chair_identities_stay_within_their_declared_choices_and_ranges():
    draws = [_identity(chairs, i) for i in range(700)]
    assert set(chairs.CHOICES).isdisjoint(chairs.DIMENSIONS)
    assert chairs.CHOICES["chair_type"] == len(chairs.CHAIR_TYPES) == 7
    for p in draws:
        assert set(p) == set(chairs.CHOICES) | set(chairs.DIMENSIONS)
        assert all(isinstance(x, float) for x in p.values())
        for k, n in chairs.CHOICES.items():
            assert p[k] == int(p[k]) and 0 <= p[k] < n, f"{k} = {p[k]} is not one of {n} options"
        for k, (lo, hi) in chairs.DIMENSIONS.items():
            assert lo <= p[k] <= hi and p[k] == round(p[k], 6), f"{k} = {p[k]} outside [{lo}, {hi}]"
    for k, n in chairs.CHOICES.items():
        assert {int(p[k]) for p in draws} == set(range(n)), f"not every option of {k} is drawn"
    for k, (lo, hi) in chairs.DIMENSIONS.items():
        values = [p[k] for p in draws]
        assert min(values) < lo + 0.05 * (hi - lo) and max(values) > hi - 0.05 * (hi - lo), f"{k} does not span its range"


def test_chairs_are_byte_deterministic(tmp_path):
    script = ("import sys, numpy as np; from assets import chairs; from assets.mesh import write_ply\n"
              "for i in range(14): write_ply(f'{sys.argv[1]}/{i}.ply', chairs.build(chairs.sample(np.random.default_rng([4, i]))))")
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        r = subprocess.run([sys.executable, "-c", script, str(tmp_path / run)], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    for i in range(14):
        write_ply(tmp_path / "here.ply", chairs.build(chairs.sample(np.random.default_rng([4, i]))))
        assert (tmp_path / "a" / f"{i}.ply").read_bytes() == (tmp_path / "b" / f"{i}.ply").read_bytes() \
            == (tmp_path / "here.ply").read_bytes()


@pytest.mark.parametrize("kind", chairs.CHAIR_TYPES)
def test_every_option_of_a_chair_type_builds_a_valid_chair(kind):
    for i, (key, n) in enumerate(chairs.CHOICES.items()):
        if key == "chair_type":
            continue
        for value in range(n):
            p = _chair(kind, i, **{key: value})
            _assert_valid_chair(chairs.build(p), f"{kind} {key}={value}")


@pytest.mark.parametrize("kind", chairs.CHAIR_TYPES)
def test_chair_extremes_build_valid_chairs(kind):
    for end in (0, 1):  # every dimension at its lower, then its upper end
        dims = {k: r[end] for k, r in chairs.DIMENSIONS.items()}
        for options in (0, 1):  # every choice at its first, then its last option
            picks = {k: (n - 1) * options for k, n in chairs.CHOICES.items() if k != "chair_type"}
            p = _chair(kind, 0, **dims, **picks)
            _assert_valid_chair(chairs.build(p), f"{kind} dimensions {'low high'.split()[end]}, options {options}")


class _Reads(dict):
    """An identity that records which parameters `build` looks at."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _mesh_arrays(mesh: Mesh) -> list[np.ndarray]:
    return [mesh.vertices, mesh.faces, mesh.colors, mesh.finish]


@pytest.mark.parametrize("kind", chairs.CHAIR_TYPES)
def test_each_parameter_a_chair_type_reads_changes_its_mesh(kind):
    """A type reads only parameters that matter: each dimension it reads, moved from one end of its
    range to the other, changes the shape (a tone: the colours), and each choice it reads changes the
    mesh for some other option. Parameters it does not read cannot change its bytes."""
    binary = [k for k, n in chairs.CHOICES.items() if n == 2]
    read_somewhere = set()
    for i, flags in enumerate((0, 1)):  # both sides of every on/off choice
        base = _chair(kind, 10 + i, **{k: flags for k in binary})
        p = _Reads(base)
        reference = chairs.build(p)
        read_somewhere |= p.read
        assert "chair_type" in p.read
        for key in sorted(p.read & set(chairs.DIMENSIONS)):
            lo, hi = chairs.DIMENSIONS[key]
            m_lo, m_hi = chairs.build(dict(base, **{key: lo})), chairs.build(dict(base, **{key: hi}))
            if key.endswith("_tone"):
                assert np.abs(m_lo.colors - m_hi.colors).max() > 0.05, f"{kind}: {key} does not change the colours"
            else:
                assert m_lo.vertices.shape != m_hi.vertices.shape or np.abs(m_lo.vertices - m_hi.vertices).max() > 1e-3, \
                    f"{kind}: {key} does not change the shape"
        for key in sorted(p.read & set(chairs.CHOICES) - {"chair_type"}):
            others = [chairs.build(dict(base, **{key: float(v)})) for v in range(chairs.CHOICES[key]) if v != base[key]]
            assert any(not all(np.array_equal(a, b) for a, b in zip(_mesh_arrays(reference), _mesh_arrays(m)))
                       for m in others), f"{kind}: {key} is read but changes nothing"
        for key in sorted(set(base) - p.read)[:8]:
            lo, hi = chairs.DIMENSIONS.get(key, (0, chairs.CHOICES.get(key, 1) - 1))
            other = chairs.build(dict(base, **{key: float(hi if base[key] != hi else lo)}))
            assert all(np.array_equal(a, b) for a, b in zip(_mesh_arrays(reference), _mesh_arrays(other)))
    own = TYPE_PARAMETERS[kind]
    assert own <= read_somewhere, f"{kind} ignores {own - read_somewhere}"


TYPE_PARAMETERS = {  # what each type must at least respond to
    "dining": {"seat_shape", "leg_style", "leg_round", "back_style", "back_count", "arms", "stretchers", "upholstered"},
    "armchair": {"arm_width", "cushion_thickness", "padded_base", "rolled_arms", "foot_height", "back_tilt"},
    "wingback": {"wing_depth", "arm_width", "cushion_thickness", "padded_base", "rolled_arms"},
    "stool": {"stool_height", "stool_legs", "seat_shape", "leg_style", "stretchers", "upholstered"},
    "bench": {"bench_width", "bench_back", "bench_ends", "back_style", "arms", "upholstered"},
    "swivel": {"casters", "arms", "upholstered", "back_style", "seat_shape"},
    "rocking": {"rocker_radius", "rocker_overhang", "arms", "back_style", "leg_style"},
}


def test_every_chair_parameter_is_read_by_some_type():
    read = set()
    for kind in chairs.CHAIR_TYPES:
        for i in range(6):
            p = _Reads(_chair(kind, i, leg_style=i % len(chairs.LEG_STYLES),
                              **{k: i % 2 for k, n in chairs.CHOICES.items() if n == 2}))
            chairs.build(p)
            read |= p.read
    every = set(chairs.CHOICES) | set(chairs.DIMENSIONS)
    assert read == every, f"never read: {sorted(every - read)}"


def test_chair_materials_set_albedo_and_finish_by_part():
    def frame_only(kind, tone, **over):  # a stool whose seat is in the frame's material: one material
        return chairs.build(_chair("stool", 0, frame_material=chairs.FRAME_MATERIALS.index(kind), frame_tone=tone,
                                   seat_material=0, upholstered=0, **over))

    for kind, tone in (("wood", 0.0), ("wood", 1.0), ("metal", 0.0), ("metal", 1.0), ("plastic", 0.5)):
        m = frame_only(kind, tone)
        assert m.finish is not None and m.finish.shape == (len(m.vertices), 2)
        rough, metal = m.finish[:, 0], m.finish[:, 1]
        assert np.ptp(m.colors, axis=0).max() < 1e-6, "one material: one albedo"
        assert (metal == 1).all() if kind == "metal" else (metal == 0).all()
        if kind == "metal":  # polished tubes, a brushed sheet seat (no fireflies between broad panels)
            assert rough.min() < 0.5 and np.isclose(rough.max(), chairs.SHEET_METAL_ROUGHNESS)
            assert chairs.SHEET_METAL_ROUGHNESS < DEFAULT_FINISH[0], "brushed, yet glossier than the matte default"
        else:
            assert np.ptp(rough) < 1e-6 and (rough.max() < 0.5 if kind == "plastic" else rough.min() >= 0.5)
    luminance = lambda m: float(m.colors.mean(axis=0) @ [0.2126, 0.7152, 0.0722])  # noqa: E731
    assert luminance(frame_only("wood", 0.0)) - luminance(frame_only("wood", 1.0)) > 0.3, "light to dark wood"
    assert luminance(frame_only("metal", 0.0)) - luminance(frame_only("metal", 1.0)) > 0.4, "chrome to dark metal"
    smoothest = [frame_only("metal", tone).finish[:, 0].min() for tone in (0.0, 1.0)]
    assert smoothest[0] < smoothest[1], "chrome is smoother than dark metal"
    # Two-tone: a metal frame under fabric cushions; a dark wood frame with a light plastic seat.
    chair = chairs.build(_chair("dining", 0, frame_material=1, upholstered=1, cover_material=0, cover_tone=0.0))
    kinds = {tuple(f) for f in np.round(chair.finish, 3)}
    assert (1.0, 1.0) in {(1.0, m) for _, m in kinds} and any(r == 1.0 and m == 0.0 for r, m in kinds)
    chair = chairs.build(_chair("dining", 0, frame_material=0, frame_tone=1.0, seat_material=2, seat_tone=0.0,
                                upholstered=0))
    lum = chair.colors @ [0.2126, 0.7152, 0.0722]
    assert lum.max() - lum.min() > 0.6
    # Fabric and leather covers differ in finish; a swivel chair on casters has black rubber wheels.
    fabric, leather = (chairs.build(_chair("armchair", 0, cover_material=k)) for k in (0, 1))
    assert fabric.finish[:, 0].max() > leather.finish[:, 0].max()
    wheels = chairs.build(_chair("swivel", 0, casters=1))
    assert (wheels.colors[wheels.vertices[:, 2] < wheels.vertices[:, 2].min() + 0.005] < 0.1).all()


@pytest.mark.parametrize("name", GENERATORS)
def test_identity_parameters_change_the_geometry(name):
    gen = GENERATORS[name]
    a, b = gen.build(_identity(gen, 0)), gen.build(_identity(gen, 1))
    if a.vertices.shape == b.vertices.shape:
        assert np.abs(a.vertices - b.vertices).max() > 0.01
    assert (_silhouette(a) != _silhouette(b)).sum() > 10
    # Each single shape parameter moves the mesh by itself (chairs: per type, in
    # test_each_parameter_a_chair_type_reads_changes_its_mesh).
    base = _identity(gen, 0)
    if name == "faces":  # long hair, a beard and shoulders: every shape parameter plays a part
        base.update(hair_style=float(faces.HAIR_STYLES.index("long")), facial_hair=3.0, bust=1.0)
    ranges = faces.PARAMS if name == "faces" else {}
    for key, (lo, hi) in ranges.items():
        if key in faces.ALBEDO:
            continue
        m_lo, m_hi = gen.build(dict(base, **{key: lo})), gen.build(dict(base, **{key: hi}))
        moved = m_lo.vertices.shape != m_hi.vertices.shape or np.abs(m_lo.vertices - m_hi.vertices).max() > 1e-3
        assert moved, f"{key} does not change the mesh"


def test_plain_faces_are_one_albedo_sculptures_of_the_same_geometry():
    painted = dict(_identity(faces, 0), finish=0.0, bust=1.0)
    plain = dict(painted, finish=float(faces.FINISHES.index("plain")))
    a, b = faces.build(painted), faces.build(plain)
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
    assert np.ptp(b.colors) == 0 and np.ptp(a.colors) > 0.3  # painted: skin, hair, eyes; plain: one tone
    light, dark = (faces.build(dict(plain, skin_tone=t)).colors[0, 0] for t in faces.PARAMS["skin_tone"])
    assert light > 0.75 and dark < 0.3  # plaster to bronze
    share = np.mean([_identity(faces, i)["finish"] for i in range(600)])
    assert 0.1 < share < 0.25  # about one head in six


def test_face_albedo_varies_between_identities():
    a, b = faces.build(dict(_identity(faces, 0), skin_tone=0.0)), faces.build(dict(_identity(faces, 0), skin_tone=1.0))
    assert a.colors.mean() - b.colors.mean() > 0.2


def test_face_albedo_parameters_change_only_colours_and_every_option_shows():
    base = dict(_identity(faces, 0), bust=1.0, finish=0.0)
    for key in faces.ALBEDO:
        lo, hi = faces.PARAMS[key]
        m_lo, m_hi = faces.build(dict(base, **{key: lo})), faces.build(dict(base, **{key: hi}))
        assert np.array_equal(m_lo.vertices, m_hi.vertices), f"{key} moves the mesh"
        assert np.abs(m_lo.colors - m_hi.colors).max() > 0.03, f"{key} does not change the colours"
    for key, n in faces.CHOICES.items():
        meshes = [faces.build(dict(base, **{key: float(k)})) for k in range(n)]
        for k, m in enumerate(meshes[1:], 1):
            same = m.vertices.shape == meshes[0].vertices.shape and np.array_equal(m.vertices, meshes[0].vertices) \
                and np.allclose(m.colors, meshes[0].colors, atol=0.02)
            assert not same, f"{key}={k} looks like {key}=0"


def test_face_hair_styles_have_their_shapes():
    """Hair is geometry: no shell when bald, a thin one for a buzz cut, volume for an afro, hair below the
    chin when long, a bun or a ponytail behind the head."""
    base = dict(_identity(faces, 0), bust=0.0, facial_hair=0.0, hair_volume=0.6, hair_length=0.8)
    head = faces.build(dict(base, hair_style=0.0, hair_volume=0.3))  # bald (a fringe from volume 0.5 on)
    ref = head.vertices[:faces.HEAD_VERTICES]
    top, back, chin = ref[:, 2].max(), ref[:, 1].max(), ref[:, 2].min()

    def hair(name):  # the hair parts come after the parts a bald head has
        return faces.build(dict(base, hair_style=float(faces.HAIR_STYLES.index(name)))).vertices[len(head.vertices):]

    assert _closed_outward_parts(head) == 6, "bald: head, eyes, ears, neck"
    assert len(hair("bald")) > 0, "a horseshoe fringe"
    buzz = hair("buzz")
    assert 0 < buzz[:, 2].max() - top < 0.02
    afro = hair("afro")
    assert afro[:, 2].max() - top > 0.08 and np.ptp(afro[:, 0]) > np.ptp(ref[:, 0]) + 0.15
    assert hair("long")[:, 2].min() < chin - 0.05
    bun, pony = hair("bun"), hair("ponytail")
    assert max(bun[:, 1].max() - back, bun[:, 2].max() - top) > 0.08, "a bun stands out behind or on top"
    assert pony[:, 1].max() > back + 0.08
    assert pony[:, 2].min() < bun[:, 2].min() - 0.05


def test_face_skin_spans_very_light_to_very_dark():
    base = dict(_identity(faces, 0), facial_hair=0.0)
    lum = []
    for tone in (0.0, 1.0):
        c = faces.build(dict(base, skin_tone=tone)).colors[:faces.HEAD_VERTICES].astype(np.float64)
        lum.append(np.median(c @ [0.2126, 0.7152, 0.0722]))
    assert lum[0] > 0.65 and lum[1] < 0.2


# ------------------------------------------------------------------------------ catalog and CLI


def test_cli_assets_is_byte_deterministic_and_gives_distinct_meshes(tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        r = _cli("assets", "--dataset", "faces", "--count", "3", "--out", str(out))
        assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == ["0000.ply", "0001.ply", "0002.ply", "index.json"]
    assert all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files)
    hashes = {(outs[0] / f).read_bytes() for f in files if f.endswith(".ply")}
    assert len(hashes) == 3
    r = _cli("assets", "--dataset", "faces", "--count", "3", "--out", str(outs[0]), "--seed", "1")
    assert r.returncode == 0 and (outs[0] / "0000.ply").read_bytes() != (outs[1] / "0000.ply").read_bytes()


def test_catalog_split_never_shares_a_mesh(tmp_path):
    params = load_params(ROOT / "params.yaml")
    cat = build_meshes(params.dataset("chairs"), 0, tmp_path / "c", count=10)
    train, test = cat.ids("train"), cat.ids("test")
    assert train and test and not set(train) & set(test)
    assert max(train) < min(test), "train meshes come first"
    blobs = [cat.path(i).read_bytes() for i in range(len(cat))]
    assert len(set(blobs)) == len(blobs)
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    assert [m["split"] for m in index["meshes"]] == ["train"] * len(train) + ["test"] * len(test)
    assert open_catalog(tmp_path / "c").load(0).vertices.shape == read_ply(cat.path(0)).vertices.shape


def test_catalog_refuses_to_replace_a_folder_that_is_not_a_mesh_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = _cli("assets", "--dataset", "chairs", "--count", "2", "--out", str(tmp_path / "mine"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_stale_mesh_folder_holding_a_users_file_is_refused_not_replaced(tmp_path):
    out = str(tmp_path / "m")
    assert _cli("assets", "--dataset", "chairs", "--count", "2", "--out", out).returncode == 0
    (tmp_path / "m" / "notes.txt").write_text("keep me")
    # another count makes the folder stale: it would be replaced whole, with the user's file
    r = _cli("assets", "--dataset", "chairs", "--count", "3", "--out", out)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "holds 1 files its index.json does not list (e.g. notes.txt)" in r.stderr
    assert (tmp_path / "m" / "notes.txt").read_text() == "keep me"
    assert len(list((tmp_path / "m").glob("*.ply"))) == 2


# ------------------------------------------------------------------------------ user meshes


def _folder_params(tmp_path: Path, folder: Path, up="Z", forward="-Y") -> Path:
    text = (ROOT / "params.yaml").read_text().replace(
        "source: {kind: generator, generator: chairs}",
        f"source: {{kind: folder, path: {folder}, up_axis: '{up}', forward_axis: '{forward}'}}")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def _chair_trimesh() -> trimesh.Trimesh:
    m = chairs.build(_identity(chairs, 3))
    return trimesh.Trimesh(m.vertices * 2.0 + [5.0, 0.0, 1.0], m.faces, vertex_colors=(m.colors * 255).astype(np.uint8),
                           process=False)


def _export(mesh: trimesh.Trimesh, path: Path) -> None:
    if path.suffix == ".gltf":  # self-contained: trimesh's default buffer names would collide in one folder
        data = trimesh.exchange.gltf.export_gltf(mesh.scene(), embed_buffers=True)
        path.write_bytes(data["model.gltf"])
    else:
        mesh.export(path)


@pytest.mark.parametrize("ext", ["obj", "ply", "gltf", "glb"])
def test_user_mesh_formats_load_and_normalise(tmp_path, ext):
    folder = tmp_path / "in"
    folder.mkdir()
    box = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    box.apply_translation((10.0, -3.0, 7.0))
    _export(box, folder / f"box.{ext}")
    _export(_chair_trimesh(), folder / f"chair.{ext}")
    params = load_params(_folder_params(tmp_path, folder))
    meshes, p, splits = load_folder(params.dataset("chairs"), 0, 60, 12)
    assert sorted(x["source_file"] for x in p) == [f"box.{ext}", f"chair.{ext}"]
    assert sorted(splits) == ["test", "train"]
    for mesh in meshes:
        v = mesh.vertices.astype(np.float64)
        assert np.allclose((v.min(0) + v.max(0)) / 2, 0, atol=1e-5)
        assert abs(np.ptp(v, axis=0).max() - 1) < 1e-5
    box_mesh = meshes[[x["source_file"] for x in p].index(f"box.{ext}")]
    assert np.allclose(np.ptp(box_mesh.vertices, axis=0), [1.0, 0.5, 0.25], atol=1e-5)


def test_user_mesh_axis_conversion(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    # A Y-up file whose front faces +Z (the glTF convention): extents X 4, Y (up) 2, Z (front) 1.
    trimesh.creation.box(extents=(4.0, 2.0, 1.0)).export(folder / "a.ply")
    trimesh.creation.box(extents=(1.0, 1.0, 1.0)).export(folder / "b.ply")
    params = load_params(_folder_params(tmp_path, folder, up="Y", forward="Z"))
    meshes, p, _ = load_folder(params.dataset("chairs"), 0, 1, 1)
    a = meshes[[x["source_file"] for x in p].index("a.ply")]
    assert np.allclose(np.ptp(a.vertices, axis=0), [1.0, 0.25, 0.5], atol=1e-5)
    rot = axis_rotation("Y", "Z")
    assert np.allclose(rot @ [0, 1, 0], [0, 0, 1]) and np.allclose(rot @ [0, 0, 1], [0, -1, 0])
    assert np.isclose(np.linalg.det(rot), 1.0)
    assert np.allclose(axis_rotation("Z", "-Y"), np.eye(3))


def test_user_folder_through_the_cli_keeps_vertex_colours_and_splits(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        _chair_trimesh().export(folder / f"chair{k}.obj" if k % 2 else folder / f"chair{k}.ply")
    params = _folder_params(tmp_path, folder)
    out = tmp_path / "out"
    r = _cli("--params", str(params), "assets", "--dataset", "chairs", "--out", str(out))
    assert r.returncode == 0, r.stderr
    cat = open_catalog(out)
    assert len(cat) == 4 and cat.ids("train") and cat.ids("test")
    assert not set(cat.ids("train")) & set(cat.ids("test"))
    ply = [e for e in cat.entries if e.params["source_file"].endswith(".ply")][0]
    original = chairs.build(_identity(chairs, 3)).colors
    assert abs(cat.load(ply.id).colors.mean() - original.mean()) < 0.02
    # Editing a file rebuilds the folder (the fingerprint covers file contents).
    before = cat.fingerprint
    trimesh.creation.box().export(folder / "chair0.ply")
    assert _cli("--params", str(params), "assets", "--dataset", "chairs", "--out", str(out)).returncode == 0
    assert open_catalog(out).fingerprint != before


BAD_FILES = {
    "garbage.obj": b"\x00\x01 this is not a mesh \xff\xfe" * 50,
    "garbage.glb": b"glTF\x02\x00\x00\x00 not really",
    "garbage.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nend_header\n\x00\x01",
    "empty.obj": b"",
    "points.ply": b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                  b"end_header\n0 0 0\n1 0 0\n0 1 0\n",
    "lines.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2\n",
}


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_bad_user_file_exits_2_naming_the_file_and_writes_nothing(tmp_path, bad):
    folder = tmp_path / "in"
    folder.mkdir()
    trimesh.creation.box().export(folder / "a_good.ply")
    (folder / bad).write_bytes(BAD_FILES[bad])
    out = tmp_path / "out"
    r = _cli("--params", str(_folder_params(tmp_path, folder)), "assets", "--dataset", "chairs", "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and bad in lines[0]
    assert not out.exists() and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("case", ["missing", "empty", "only_other_files"])
def test_missing_or_empty_user_folder_exits_2(tmp_path, case):
    folder = tmp_path / "in"
    if case != "missing":
        folder.mkdir()
    if case == "only_other_files":
        (folder / "readme.txt").write_text("no meshes here")
    out = tmp_path / "out"
    r = _cli("--params", str(_folder_params(tmp_path, folder)), "assets", "--dataset", "chairs", "--out", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and str(folder) in r.stderr
    assert not out.exists()


def test_any_dataset_name_can_use_a_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    trimesh.creation.icosphere().export(folder / "ball.glb")
    trimesh.creation.box().export(folder / "cube.obj")
    text = (ROOT / "params.yaml").read_text()
    start = text.index("  chairs:\n")
    chairs_block = text[start:text.index("\nshard:")]
    mugs = chairs_block.replace("  chairs:\n", "  mugs:\n").replace(
        "source: {kind: generator, generator: chairs}", f"source: {{kind: folder, path: {folder}}}")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(chairs_block, chairs_block + "\n" + mugs))
    r = _cli("--params", str(path), "assets", "--dataset", "mugs", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert len(open_catalog(tmp_path / "out")) == 2


def test_written_meshes_round_trip(tmp_path):
    mesh = chairs.build(_identity(chairs, 0))
    write_ply(tmp_path / "m.ply", mesh)
    back = read_ply(tmp_path / "m.ply")
    assert np.array_equal(back.vertices, mesh.vertices) and np.array_equal(back.faces, mesh.faces)
    assert np.abs(back.colors - mesh.colors).max() <= 0.5 / 255 + 1e-6
    assert np.abs(back.finish - mesh.finish).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(MeshError):
        read_ply(tmp_path / "missing.ply")


def test_ply_finish_is_written_only_when_given(tmp_path):
    rng = np.random.default_rng(0)
    v, f = rng.random((5, 3)), np.array([[0, 1, 2], [0, 2, 3], [1, 3, 4]])
    colors, finish = rng.random((5, 3)), rng.integers(0, 256, (5, 2)) / 255.0
    plain, rich = tmp_path / "plain.ply", tmp_path / "rich.ply"
    write_ply(plain, Mesh(v, f, colors))
    write_ply(rich, Mesh(v, f, colors, finish))
    # Without a finish: exactly the format before finishes existed (15-byte vertices, no new properties).
    header = (b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\nproperty float y\n"
              b"property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nelement face 3\n"
              b"property list uchar int vertex_indices\nend_header\n")
    data = plain.read_bytes()
    assert data.startswith(header) and len(data) == len(header) + 5 * 15 + 3 * 13
    assert read_ply(plain).finish is None
    data = rich.read_bytes()
    assert b"property uchar roughness\nproperty uchar metallic\nelement face 3" in data
    assert len(data) == len(header) + len(b"property uchar roughness\nproperty uchar metallic\n") + 5 * 17 + 3 * 13
    back = read_ply(rich)
    assert np.array_equal(back.finish, finish.astype(np.float32)) and np.array_equal(back.faces, f)
    assert np.array_equal(back.vertices, v.astype(np.float32))
    with pytest.raises(ValueError):
        Mesh(v, f, colors, finish[:4])


@pytest.mark.parametrize("damage", ["index_high", "index_negative", "truncated", "extra_byte", "foreign_property"])
def test_ply_reader_refuses_a_damaged_file_in_one_line(tmp_path, damage):
    mesh = Mesh(np.eye(3), [[0, 1, 2]], None, np.full((3, 2), 0.5))
    path = tmp_path / "m.ply"
    write_ply(path, mesh)
    data = path.read_bytes()
    face_at = len(data) - 12  # the three int32 indices of the only face
    if damage == "index_high":
        data = data[:face_at] + np.array([0, 1, 3], "<i4").tobytes()
    elif damage == "index_negative":
        data = data[:face_at] + np.array([0, -1, 2], "<i4").tobytes()
    elif damage == "truncated":
        data = data[:-1]
    elif damage == "extra_byte":
        data = data + b"\0"
    else:
        data = data.replace(b"property uchar metallic", b"property uchar glossy")
    path.write_bytes(data)
    with pytest.raises(MeshError) as err:
        read_ply(path)
    message = str(err.value)
    assert str(path) in message and "regenerate" in message and "\n" not in message
    if damage.startswith("index"):
        assert "outside 0..2" in message


def test_a_file_without_colours_is_a_mid_grey_within_the_generated_sculptures_tones(tmp_path):
    from assets.userfiles import DEFAULT_ALBEDO, load_mesh
    from config import MeshSource

    trimesh.creation.icosphere().export(tmp_path / "scan.obj")  # geometry only, as most scans
    mesh = load_mesh(tmp_path / "scan.obj", MeshSource(kind="folder", path=str(tmp_path)))
    assert np.all(mesh.colors == DEFAULT_ALBEDO)
    # inside the tones the faces models learnt from (plain heads: plaster to bronze), below the key
    # light's saturation at about 0.8
    tones = [faces.build(dict(_identity(faces, 0), finish=1.0, skin_tone=t)).colors[0, 0] for t in faces.PARAMS["skin_tone"]]
    assert min(tones) + 0.15 < DEFAULT_ALBEDO < max(tones) - 0.15
