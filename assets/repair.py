"""Repairs for what real mesh files carry (ShapeNet / 3D Warehouse exports and the like).

Used by `assets.userfiles` on the user's own files only; generated meshes never come here. Pure
numpy (plus scipy's KD-tree and graph components); deterministic: the same arrays in give the same
arrays out.

What is repaired, in this order:
- degenerate faces (a repeated vertex, or a triangle thinner than the weld tolerance): dropped;
- the same triangle twice: with opposite winding (a "double-sided" model: coincident faces z-fight,
  shared-vertex normals cancel, and each copy shadows the other into salt-and-pepper speckle) or
  with the same winding (a plain duplicate): one copy is kept. A double-sided quad whose two copies
  were triangulated along different diagonals (OBJ quads reversed: `f 1 2 3 4` / `f 4 3 2 1`) counts too;
- inconsistent winding: each edge-connected part is oriented consistently, and outward where it is
  closed (positive enclosed volume); an open part keeps the winding of most of its area;
- vertices no face uses (they would distort the normalisation's bounding box): dropped.

Vertices are welded by position (tolerance WELD x the mesh's largest extent) only to decide the
above: the faces that are kept keep their own vertex indices, so a file's sharp-edge or UV splits
stay as they are (smooth shading in the renderer keeps those edges sharp). Where a double-sided pair
is kept, the copy that already has the final winding is kept rather than the other copy flipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assets.mesh import MeshError

WELD = 1e-5
"""Weld tolerance, relative to the mesh's largest extent."""
FLAT_COS = 0.9995
"""Two triangles form a flat quad when their normals agree to ~1.8 degrees."""


@dataclass
class RepairReport:
    double_sided: int = 0
    """Faces removed because the same triangle (or quad) is also present with the opposite winding."""
    duplicates: int = 0
    """Faces removed because the same triangle is also present with the same winding."""
    degenerate: int = 0
    reoriented: int = 0
    """Parts in which some triangles had their winding reversed."""
    unused_vertices: int = 0
    """Vertices of the file that no face uses."""
    parts: int = 1
    """Meshes (scene nodes, OBJ objects/materials) merged into one; set by the loader."""

    def summary(self) -> str:
        """One line of what was repaired ("" when nothing was)."""
        removed = [_count(self.double_sided, "double-sided duplicate face"), _count(self.duplicates, "duplicate face"),
                   _count(self.degenerate, "degenerate face")]
        removed = [r for r in removed if r]
        items = []
        if removed:
            items.append("removed " + ", ".join(removed))
        if self.reoriented:
            items.append(f"re-oriented {_count(self.reoriented, 'part')}")
        if self.unused_vertices:
            items.append(f"dropped {_count(self.unused_vertices, 'unused vertex', 'unused vertices')}")
        if self.parts > 1:
            items.append(f"merged {self.parts} parts")
        return "; ".join(items)


def check_faces(faces: np.ndarray, n_vertices: int, name: str) -> None:
    """A one-line MeshError if a face refers to a vertex that does not exist."""
    faces = np.asarray(faces)
    bad = (faces < 0) | (faces >= n_vertices)
    if bad.any():
        f = int(np.flatnonzero(bad.any(axis=1))[0])
        raise MeshError(f"{name}: face {f} refers to vertex {int(faces[f][bad[f]][0])} but the file has "
                        f"{n_vertices} vertices ({int(bad.any(axis=1).sum())} bad faces); "
                        "re-export the mesh or remove the file")


def repair(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, RepairReport]:
    """(vertices, faces, colors, report): the repaired mesh; indices must already be checked.

    Vertices no kept face uses are dropped (the others keep their order), faces keep their order.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    report = RepairReport()
    used = np.zeros(len(v), bool)
    used[f.ravel()] = True
    report.unused_vertices = int((~used).sum())
    if len(f) == 0:
        return _compact(v, f, colors)[:3] + (report,)

    extent = float(np.ptp(v[used], axis=0).max())
    tol = WELD * extent
    ids = weld(v, used, tol)
    c = ids[f]  # faces over welded vertex ids: what decides identity and adjacency

    alive = ~_degenerate(v, f, c, tol)
    report.degenerate = int((~alive).sum())

    tri_keep, tri_alt, report.duplicates, report.double_sided = _coincident_triangles(c, alive)
    quad_keep, quad_alt = _coincident_quads(v, f, c, alive)
    report.double_sided += 2 * len(quad_keep)

    out = f.copy()
    flip, reoriented_part = _orientation(v, f, c, alive)
    # A flipped face whose opposite copy was removed: keep that copy instead (its own vertices).
    sel = flip[tri_keep]
    out[tri_keep[sel]] = f[tri_alt[sel]]
    flip[tri_keep[sel]] = False
    if len(quad_keep):
        sel = flip[quad_keep[:, 0]] & flip[quad_keep[:, 1]]
        out[quad_keep[sel].ravel()] = f[quad_alt[sel].ravel()]
        flip[quad_keep[sel].ravel()] = False
    out[flip] = out[flip][:, [0, 2, 1]]
    report.reoriented = len(np.unique(reoriented_part[flip]))

    new_v, new_f, new_c = _compact(v, out[alive], colors)
    return new_v, new_f, new_c, report


def weld(vertices: np.ndarray, used: np.ndarray | None = None, tol: float = 0.0) -> np.ndarray:
    """An id per vertex, equal for vertices closer than `tol` (chains included); unused vertices keep their own."""
    v = np.asarray(vertices, dtype=np.float64)
    n = len(v)
    if used is None:
        used = np.ones(n, bool)
    idx = np.flatnonzero(used)
    ids = np.arange(n, dtype=np.int64)
    if len(idx) == 0:
        return ids
    # Exact duplicates first (OBJ exports split every vertex per UV/normal), then near ones.
    uniq, inverse = np.unique(v[idx], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    labels = np.arange(len(uniq))
    if tol > 0 and len(uniq) > 1:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        pairs = cKDTree(uniq).query_pairs(tol, output_type="ndarray")
        if len(pairs):
            graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(uniq), len(uniq)))
            labels = connected_components(graph, directed=False)[1]
    ids[idx] = n + labels[inverse]  # beyond the range of unused vertices' own ids
    return ids


# ---------------------------------------------------------------------------------------------- steps


def _degenerate(v: np.ndarray, f: np.ndarray, c: np.ndarray, tol: float) -> np.ndarray:
    """A repeated (welded) vertex, or a height under the weld tolerance (zero or near-zero area)."""
    repeated = (c[:, 0] == c[:, 1]) | (c[:, 1] == c[:, 2]) | (c[:, 2] == c[:, 0])
    p = v[f]
    twice_area = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    longest = np.linalg.norm(p - p[:, [1, 2, 0]], axis=2).max(axis=1)
    return repeated | (twice_area <= tol * longest)


def _coincident_triangles(c: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Drop repeated triangles from `alive`, keeping the first copy of each.

    Returns (kept faces that had an opposite copy, the first such copy of each, the number of faces
    removed as same-winding duplicates, the number removed as opposite-winding copies).
    """
    none = np.zeros(0, np.int64)
    idx = np.flatnonzero(alive)
    if len(idx) < 2:
        return none, none, 0, 0
    t = c[idx]
    first = np.argmin(t, axis=1)
    rolled = np.take_along_axis(t, (first[:, None] + np.arange(3)) % 3, axis=1)  # cyclic order, min first
    parity = rolled[:, 1] > rolled[:, 2]  # winding relative to the sorted triangle
    lo, hi = np.minimum(rolled[:, 1], rolled[:, 2]), np.maximum(rolled[:, 1], rolled[:, 2])
    key = np.column_stack([rolled[:, 0], lo, hi])
    _, group, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    if counts.max() == 1:
        return none, none, 0, 0
    order = np.lexsort((idx, group))  # by group, then by face index: the first of each group is kept
    g_sorted = group[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    keeper = np.empty(len(counts), np.int64)
    keeper[g_sorted[starts]] = order[starts]
    removed = np.ones(len(idx), bool)
    removed[keeper] = False
    opposite = removed & (parity != parity[keeper[group]])
    alive[idx[removed]] = False
    # For each kept triangle with an opposite copy, the first such copy.
    opp = np.flatnonzero(opposite)
    opp = opp[np.lexsort((idx[opp], group[opp]))]
    g_opp = group[opp]
    first_opp = opp[np.r_[True, g_opp[1:] != g_opp[:-1]]] if len(opp) else opp
    kept = idx[keeper[group[first_opp]]]
    n_opposite = int(opposite.sum())
    return kept, idx[first_opp], int(removed.sum()) - n_opposite, n_opposite


def _edge_pairs(t: np.ndarray) -> tuple[np.ndarray, ...]:
    """The directed edges of triangles t [M, 3] and the face pairs across edges that exactly two faces share.

    Returns (frm, to, face, order, counts, a, b): the 3M directed edges (start, end, face of each);
    `order` sorts them by undirected edge, `counts` is the size of each run of one edge in that order;
    a, b index the two directed copies of every edge with exactly two faces.
    """
    frm, to = t.ravel(), t[:, [1, 2, 0]].ravel()
    face = np.repeat(np.arange(len(t)), 3)
    key = np.minimum(frm, to) * (int(t.max()) + 1) + np.maximum(frm, to)
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, len(k)])
    two = starts[counts == 2]
    return frm, to, face, order, counts, order[two], order[two + 1]


def _coincident_quads(v: np.ndarray, f: np.ndarray, c: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A flat quad present twice with opposite winding but split along the other diagonal: drop the later copy.

    Returns (kept quads [Q, 2], removed opposite quads [Q, 2]) as face indices.
    """
    empty = np.zeros((0, 2), np.int64)
    idx = np.flatnonzero(alive)
    if len(idx) < 4:
        return empty, empty
    t = c[idx]
    third = t[:, [2, 0, 1]].ravel()  # the vertex opposite each directed edge
    frm, to, face, _, _, a, b = _edge_pairs(t)
    # A quad candidate: two triangles across an edge, wound consistently (edge run both ways), and flat.
    ok = frm[a] == to[b]
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return empty, empty
    n = np.cross(*_edges(v, f[idx[face[a]]]))
    m = np.cross(*_edges(v, f[idx[face[b]]]))
    cos = np.einsum("ij,ij->i", n, m) / np.maximum(np.linalg.norm(n, axis=1) * np.linalg.norm(m, axis=1), 1e-300)
    ok = cos > FLAT_COS
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return empty, empty
    # Face a runs u -> v with third x, face b runs v -> u with third y: the quad's cycle is (v, x, u, y).
    cyc = np.column_stack([to[a], third[a], frm[a], third[b]])
    first = np.argmin(cyc, axis=1)
    rolled = np.take_along_axis(cyc, (first[:, None] + np.arange(4)) % 4, axis=1)
    parity = rolled[:, 1] > rolled[:, 3]
    qkey = np.column_stack([rolled[:, 0], np.minimum(rolled[:, 1], rolled[:, 3]), rolled[:, 2],
                            np.maximum(rolled[:, 1], rolled[:, 3])])
    _, group, gcount = np.unique(qkey, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    multi = np.flatnonzero(gcount[group] > 1)
    if len(multi) == 0:
        return empty, empty
    fa, fb = idx[face[a]], idx[face[b]]
    pair = np.sort(np.column_stack([fa, fb]), axis=1)
    multi = multi[np.lexsort((pair[multi, 1], pair[multi, 0], group[multi]))]  # by group, then faces
    g = group[multi]
    bounds = np.r_[np.flatnonzero(np.r_[True, g[1:] != g[:-1]]), len(multi)]
    kept, alt = [], []
    taken: set[int] = set()
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # one group per double-sided quad, usually of 2 members
        members = multi[lo:hi]
        for i in members:
            if pair[i, 0] in taken or pair[i, 1] in taken:
                continue
            partner = next((j for j in members if parity[j] != parity[i]
                            and pair[j, 0] not in taken and pair[j, 1] not in taken), None)
            if partner is None:
                continue
            taken.update(int(x) for x in (*pair[i], *pair[partner]))
            kept.append(pair[i])  # members are sorted: i comes first, the earlier faces stay
            alt.append(pair[partner])
    if not kept:
        return empty, empty
    kept_a, alt_a = np.array(kept, np.int64), np.array(alt, np.int64)
    alive[alt_a.ravel()] = False
    return kept_a, alt_a


def _orientation(v: np.ndarray, f: np.ndarray, c: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flip per face, part id per face): consistent winding per part, outward for closed parts.

    Parts are the faces connected through manifold edges (edges with exactly two live faces). Within
    a part, the winding of its lowest-numbered face decides, except that a closed part is turned to
    enclose a positive volume, and an open part keeps the winding of the larger share of its area.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nf = len(c)
    flip = np.zeros(nf, bool)
    part = np.full(nf, -1, np.int64)
    idx = np.flatnonzero(alive)
    if len(idx) == 0:
        return flip, part
    t = c[idx]
    m = len(idx)
    frm, to, face, order, counts, a, b = _edge_pairs(t)
    fa, fb = face[a], face[b]
    same = (frm[a] == frm[b]).astype(np.int64)  # both run the edge the same way: one of them must flip
    n_parts, labels = connected_components(coo_matrix((np.ones(len(a)), (fa, fb)), shape=(m, m)), directed=False)
    # Signed graph over (face, flipped?) states: an edge links the states that agree across it.
    rows = np.r_[fa, fa + m]
    cols = np.r_[fb + same * m, fb + (1 - same) * m]
    states = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * m, 2 * m)),
                                  directed=False)[1]
    root = np.full(n_parts, m, np.int64)
    np.minimum.at(root, labels, np.arange(m))
    r = root[labels]
    s0, s1 = states[:m], states[m:]
    local = (s1 == s0[r]) & (s0 != s0[r])  # reached only in the flipped state (a Moebius part: left alone)
    open_part = np.zeros(n_parts, bool)
    open_part[labels[s0 == s1]] = True  # not orientable
    edge_bad = np.repeat(counts != 2, counts)  # boundary or non-manifold edges, in `order`
    open_part[labels[face[order[edge_bad]]]] = True

    p = v[f[idx]]
    p = p - (p.reshape(-1, 3).min(axis=0) + p.reshape(-1, 3).max(axis=0)) / 2  # centred: no cancellation far out
    sign = np.where(local, -1.0, 1.0)
    volume = sign * np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])) / 6.0
    area = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    part_volume = np.bincount(labels, weights=volume, minlength=n_parts)
    flipped_area = np.bincount(labels, weights=area * local, minlength=n_parts)
    kept_area = np.bincount(labels, weights=area * ~local, minlength=n_parts)
    whole = np.where(open_part, flipped_area > kept_area, part_volume < 0)
    flip[idx] = local ^ whole[labels]
    part[idx] = labels
    return flip, part


# ---------------------------------------------------------------------------------------------- helpers


def _edges(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = v[f]
    return p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]


def _compact(v: np.ndarray, f: np.ndarray, colors: np.ndarray | None):
    used = np.zeros(len(v), bool)
    used[f.ravel()] = True
    remap = np.cumsum(used) - 1
    new_c = None if colors is None else np.asarray(colors)[used]
    return v[used], remap[f], new_c


def _count(n: int, singular: str, plural: str | None = None) -> str:
    if not n:
        return ""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
