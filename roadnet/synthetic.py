"""Deterministic synthetic road graphs: road-like networks of any size, for benchmarks.

No real OpenStreetMap extract of a million junctions is available offline, so benchmarks of the
drive-time engines at that scale run on graphs made here. :func:`synthetic_road_graph` returns a
full :class:`~roadnet.graph.CompiledGraph` (arcs, geometry, routing CSR, components, metadata),
so snapping and matrices work on it unchanged; a 1M-node graph takes a few seconds.

What the network looks like
---------------------------
* **Local streets** on an irregular grid: every grid line has its own spacing (lognormal around
  ``block_m``, in denser and sparser bands like towns and countryside) and every junction is
  jittered, so blocks differ in size and streets are not straight. Lines are ``residential``,
  ``unclassified`` or ``tertiary`` (30-45 km/h with the default profile).
* **Collectors and arterials** on a coarser grid: every 7th to 12th line is ``primary``
  (65 km/h), the line halfway between two of them ``secondary`` (55 km/h).
* **Motorways** (110 km/h), one per ~25 km of region in each direction, oblique, each as two
  separate one-way carriageways 24 m apart. They cross the streets on bridges: the only
  connections are **interchanges every 3 to 7 km**, where ``motorway_link`` ramps (70 km/h)
  leave each carriageway (diverge node) and join it again (merge node) at a collector or
  arterial junction.
* **Irregularities**: a share of local street links is removed (never two at one junction, so
  blocks merge into larger ones and no junction is cut off), a few blocks get a diagonal street,
  and dead-end streets (cul-de-sacs) hang off random junctions.
* **One-way streets**: runs of 4-12 blocks of *pairs* of neighbouring parallel streets are made
  one-way in opposite directions, as real one-way couplets are, until their share of street
  links is ``one_way_share``. A junction left with no way in or no way out (a trap) gets its
  one-way links back to two-way, so the largest strongly connected component holds nearly every
  node (typically > 99.9 %); the few traps left are larger one-way pockets, as in real data.

Travel time is length / class speed (the :class:`~roadnet.speed.SpeedProfile`). Geometry is the
straight segment of each arc, in the UTM zone of ``center`` (Portugal by default); lon/lat come
from that projection, so points given in degrees snap as on a real extract.

Everything random comes from ``numpy.random.Generator`` seeded by ``seed``: the same arguments
give byte-identical arrays. Nodes are numbered row by row over the grid (good memory locality,
as OSM ids roughly are), then dead-end tips, then motorway nodes; ``node_ids`` are ``1..n``.

Example
-------
>>> g = synthetic_road_graph(5_000, seed=1)
>>> g.n_nodes, g.crs
(5000, 'EPSG:32629')
>>> pts = random_points(g, 3, seed=2)
>>> pts.shape
(3, 2)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import time
from typing import Any

import numpy as np
import pyproj

from roadnet.build import utm_crs_for
from roadnet.exceptions import InvalidArgumentError
from roadnet.graph import CompiledGraph, csr_keep_min, strong_components
from roadnet.speed import MIN_TRAVEL_SECONDS, SpeedProfile, SpeedStats

__all__ = ["SYNTHETIC_CLASSES", "random_points", "synthetic_road_graph"]

log = logging.getLogger(__name__)

#: Highway classes of a synthetic graph, indexed by ``arc_highway`` codes.
SYNTHETIC_CLASSES: tuple[str, ...] = (
    "residential",
    "unclassified",
    "tertiary",
    "secondary",
    "primary",
    "motorway_link",
    "motorway",
)
_RES, _UNC, _TER, _SEC, _PRI, _LINK, _MWY = range(7)

#: Bump when the same arguments would give a different graph (part of ``meta["source"]``).
_GENERATOR_VERSION = 1
_MIN_NODES = 100
_MAX_NODES = 100_000_000  # arcs must fit int32 (about 3.7 arcs per node)
_DEFAULT_CENTER = (-7.9, 39.9)  # inland Portugal (Beira Baixa), UTM zone 29N

_JITTER = 0.12  # junction jitter, in blocks (spacings are >= 0.5 block: no two cross)
_ARTERIAL_GAP = (7, 13)  # lines between two arterials (numpy integers: high excluded)
_TERTIARY_P = 0.12  # share of local lines that are tertiary
_UNCLASSIFIED_P = 0.25  # share of the other local lines that are unclassified
_DIAGONAL_P = 0.03  # share of all-local blocks crossed by a diagonal street
_RUN_BLOCKS = (4, 13)  # length of one-way runs, in blocks
_MOTORWAY_EVERY_M = 25_000.0  # one motorway per this much region width, per direction
_INTERCHANGE_GAP_M = (3_000.0, 7_000.0)
_RAMP_SPLIT_M = 250.0  # diverge / merge node before / after an interchange
_CARRIAGEWAY_OFFSET_M = 12.0
_EDGE_MARGIN_M = 300.0


@dataclasses.dataclass
class _Motorways:
    """Motorway layout. Arc ends >= 0 are motorway nodes; -(j + 1) is grid junction j."""

    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    cls: np.ndarray
    way: np.ndarray
    junctions: np.ndarray
    n_motorways: int
    n_interchanges: int


def _check_share(name: str, value: Any, high: float) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not (0.0 <= float(value) <= high):
        raise InvalidArgumentError(f"{name} must be a number in [0, {high:g}], got {value!r}")
    return float(value)


def _check_args(
    n_nodes: Any,
    seed: Any,
    one_way_share: Any,
    removed_share: Any,
    dead_end_share: Any,
    block_m: Any,
    center: Any,
    profile: Any,
) -> tuple[int, int, float, float, float, float, tuple[float, float], SpeedProfile]:
    if (
        not isinstance(n_nodes, numbers.Integral)
        or isinstance(n_nodes, bool)
        or not _MIN_NODES <= int(n_nodes) <= _MAX_NODES
    ):
        raise InvalidArgumentError(
            f"n_nodes must be an integer in [{_MIN_NODES}, {_MAX_NODES}], got {n_nodes!r}"
        )
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or int(seed) < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    ow = _check_share("one_way_share", one_way_share, 0.95)
    rm = _check_share("removed_share", removed_share, 0.2)
    de = _check_share("dead_end_share", dead_end_share, 0.3)
    if (
        not isinstance(block_m, numbers.Real)
        or isinstance(block_m, bool)
        or not 30.0 <= float(block_m) <= 1000.0
    ):
        raise InvalidArgumentError(
            f"block_m must be a number of metres in [30, 1000], got {block_m!r}"
        )
    try:
        lon, lat = (float(c) for c in center)
    except (TypeError, ValueError):
        lon = lat = math.nan
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise InvalidArgumentError(
            f"center must be (lon, lat) in degrees with -180 <= lon <= 180 and -80 <= lat <= 84 "
            f"(the UTM range), got {center!r}"
        )
    if profile is None:
        profile = SpeedProfile.default()
    elif not isinstance(profile, SpeedProfile):
        raise InvalidArgumentError(
            f"profile must be a roadnet.SpeedProfile or None, got {profile!r}"
        )
    return int(n_nodes), int(seed), ow, rm, de, float(block_m), (lon, lat), profile


# ---------------------------------------------------------------------------------- layout
def _spacings(count: int, block_m: float, rng: np.random.Generator) -> np.ndarray:
    """Gaps between consecutive grid lines: lognormal, in denser and sparser bands."""
    base = rng.lognormal(0.0, 0.25, count)
    period = rng.uniform(120.0, 260.0)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    band = np.exp(0.35 * np.sin(2.0 * np.pi * np.arange(count) / period + phase))
    return block_m * np.clip(base * band, 0.5, 2.5)


def _line_classes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Class of each grid line: arterials every 7-12 lines, collectors halfway, else local."""
    cls = np.where(rng.random(count) < _UNCLASSIFIED_P, _UNC, _RES).astype(np.int16)
    cls[rng.random(count) < _TERTIARY_P] = _TER
    gaps = rng.integers(*_ARTERIAL_GAP, size=count // _ARTERIAL_GAP[0] + 2)
    art = np.cumsum(gaps) - rng.integers(0, _ARTERIAL_GAP[0])
    art = art[(art >= 0) & (art < count)]
    mid = (art[:-1] + art[1:]) // 2
    cls[mid] = _SEC
    cls[art] = _PRI
    return cls


def _nearest(sorted_pos: np.ndarray, value: float) -> int:
    """Index of the value in ``sorted_pos`` nearest to ``value``."""
    if sorted_pos.shape[0] == 1:
        return 0
    i = int(np.clip(np.searchsorted(sorted_pos, value), 1, sorted_pos.shape[0] - 1))
    return i - 1 if value - sorted_pos[i - 1] <= sorted_pos[i] - value else i


def _junction(
    px: float,
    py: float,
    colx: np.ndarray,
    rowy: np.ndarray,
    major_cols: np.ndarray,
    major_rows: np.ndarray,
    n_cols: int,
) -> int:
    """Grid junction for an interchange at (px, py): the nearest one on a collector/arterial."""
    r, c = _nearest(rowy, py), _nearest(colx, px)
    options = []
    if major_rows.size:
        options.append((int(major_rows[_nearest(rowy[major_rows], py)]), c))
    if major_cols.size:
        options.append((r, int(major_cols[_nearest(colx[major_cols], px)])))
    if not options:
        options.append((r, c))
    best = min(options, key=lambda rc: math.hypot(colx[rc[1]] - px, rowy[rc[0]] - py))
    return best[0] * n_cols + best[1]


def _motorways(
    rng: np.random.Generator,
    colx: np.ndarray,
    rowy: np.ndarray,
    col_cls: np.ndarray,
    row_cls: np.ndarray,
) -> _Motorways:
    """Oblique motorways across the region (see the module docstring), laid out on ``rowy``."""
    W, H = float(colx[-1]), float(rowy[-1])
    n_cols = colx.shape[0]
    major_cols = np.flatnonzero(col_cls >= _SEC)
    major_rows = np.flatnonzero(row_cls >= _SEC)
    n_h = max(1, round(H / _MOTORWAY_EVERY_M)) if W >= 4_000.0 else 0
    n_v = round(W / _MOTORWAY_EVERY_M) if H >= 4_000.0 else 0
    xs: list[float] = []
    ys: list[float] = []
    us: list[int] = []
    vs: list[int] = []
    cl: list[int] = []
    wy: list[int] = []
    juncs: list[int] = []
    n_mw = n_ic = 0
    m = _EDGE_MARGIN_M
    lines = [(False, k, n_h) for k in range(n_h)] + [(True, k, n_v) for k in range(n_v)]
    for vertical, k, count in lines:
        tilt = rng.uniform(-0.3, 0.3)
        shift = rng.uniform(-0.2, 0.2)
        along = rng.uniform(-0.1, 0.1)
        if vertical:
            theta = 0.5 * np.pi + tilt
            cx, cy = W * (k + 0.5 + shift) / count, H * (0.5 + along)
        else:
            theta = tilt
            cx, cy = W * (0.5 + along), H * (k + 0.5 + shift) / count
        dx, dy = math.cos(theta), math.sin(theta)
        lo, hi = -math.inf, math.inf
        for c0, d, extent in ((cx, dx, W), (cy, dy, H)):
            if abs(d) > 1e-12:
                a, b = sorted(((m - c0) / d, (extent - m - c0) / d))
                lo, hi = max(lo, a), min(hi, b)
        length = hi - lo
        gaps = rng.uniform(*_INTERCHANGE_GAP_M, size=int(length // _INTERCHANGE_GAP_M[0]) + 2)
        s = lo + np.concatenate([[0.0], np.cumsum(gaps)])
        s = s[s <= hi]
        if s.shape[0] < 2:
            if length < 2_000.0:
                continue
            s = np.array([lo, hi])
        K = s.shape[0]
        J = [
            -(_junction(cx + si * dx, cy + si * dy, colx, rowy, major_cols, major_rows, n_cols) + 1)
            for si in s
        ]
        ox, oy = dy * _CARRIAGEWAY_OFFSET_M, -dx * _CARRIAGEWAY_OFFSET_M  # right of +d
        # carriageway A runs along +d on the right (side +1), B along -d (side -1). Each has a
        # diverge node before and a merge node after every interchange it passes; it starts
        # with a merge at its first interchange and ends with a diverge at its last.
        # (position along the line, side, ramp: +1 junction -> node, -1 node -> junction)
        plan: list[tuple[float, float, int, int]] = []
        for side, order in ((1.0, range(K)), (-1.0, range(K - 1, -1, -1))):
            start = len(plan)
            for i in order:
                if i != order[0]:
                    plan.append((s[i] - side * _RAMP_SPLIT_M, side, -1, J[i]))
                if i != order[-1]:
                    plan.append((s[i] + side * _RAMP_SPLIT_M, side, 1, J[i]))
            first = len(xs) + start
            for j in range(len(plan) - start - 1):  # the carriageway itself
                us.append(first + j)
                vs.append(first + j + 1)
                cl.append(_MWY)
                wy.append(2 * n_mw + (side < 0))
        for j, (_, _, ramp, junction) in enumerate(plan):
            node = len(xs) + j
            us.append(junction if ramp > 0 else node)
            vs.append(node if ramp > 0 else junction)
            cl.append(_LINK)
            wy.append(-1)
        xs.extend(cx + pos * dx + side * ox for pos, side, _, _ in plan)
        ys.extend(cy + pos * dy + side * oy for pos, side, _, _ in plan)
        juncs.extend(-j - 1 for j in J)
        n_mw += 1
        n_ic += K
    return _Motorways(
        x=np.asarray(xs, dtype=np.float64),
        y=np.asarray(ys, dtype=np.float64),
        u=np.asarray(us, dtype=np.int64),
        v=np.asarray(vs, dtype=np.int64),
        cls=np.asarray(cl, dtype=np.int16),
        way=np.asarray(wy, dtype=np.int64),
        junctions=np.asarray(juncs, dtype=np.int64),
        n_motorways=n_mw,
        n_interchanges=n_ic,
    )


def _remove_local_links(
    lu: np.ndarray, lv: np.ndarray, local: np.ndarray, target: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Mask of ``target`` (or slightly fewer) local links, at most one per junction."""
    removed = np.zeros(lu.shape[0], dtype=bool)
    cand = rng.permutation(np.flatnonzero(local))
    used = np.zeros(n, dtype=bool)
    done = 0
    for _ in range(12):
        need = target - done
        if need <= 0:
            break
        free = cand[~used[lu[cand]] & ~used[lv[cand]]]
        if free.size == 0:
            break
        pick = free[:need]
        prio = np.arange(pick.shape[0])
        best = np.full(n, pick.shape[0], dtype=np.int64)
        np.minimum.at(best, lu[pick], prio)
        np.minimum.at(best, lv[pick], prio)
        keep = pick[(best[lu[pick]] == prio) & (best[lv[pick]] == prio)]
        removed[keep] = True
        used[lu[keep]] = True
        used[lv[keep]] = True
        done += keep.shape[0]
        cand = free[need:] if free.shape[0] > need else free[:0]
        cand = np.concatenate([cand, pick[~removed[pick]]])
    return removed


@dataclasses.dataclass
class _Streets:
    """The generated network before compilation: node coordinates and undirected links."""

    x: np.ndarray
    y: np.ndarray
    lu: np.ndarray  # a one-way link runs lu -> lv
    lv: np.ndarray
    cls: np.ndarray
    way: np.ndarray
    oneway: np.ndarray
    stats: dict[str, Any]


def _streets(
    n: int,
    seed: int,
    one_way_share: float,
    removed_share: float,
    dead_end_share: float,
    block_m: float,
) -> _Streets:
    """Lay out the whole network in local metres (origin at the grid's lower-left corner)."""
    seqs = np.random.SeedSequence(seed).spawn(8)  # one stream per step: steps stay independent
    rngs = [np.random.default_rng(s) for s in seqs]
    n_spur = round(dead_end_share * n)
    grid0 = n - n_spur
    C = max(3, round(math.sqrt(grid0)))
    rows_max = -(-grid0 // C) + 1
    spx = _spacings(C, block_m, rngs[0])
    spy = _spacings(rows_max, block_m, rngs[1])
    colx = np.concatenate([[0.0], np.cumsum(spx[:-1])])
    rowy = np.concatenate([[0.0], np.cumsum(spy[:-1])])
    col_cls = _line_classes(C, rngs[2])
    row_cls = _line_classes(rows_max, rngs[2])

    # motorways are laid out over the full grid rows; their nodes come out of the grid's budget
    r_lay = grid0 // C
    while True:
        mw = _motorways(np.random.default_rng(seqs[3]), colx, rowy[:r_lay], col_cls,
                        row_cls[:r_lay])  # fmt: skip
        n_grid = grid0 - mw.x.shape[0]
        if r_lay * C <= n_grid or r_lay <= 2:
            break
        r_lay -= 1
    if n_grid < 3 * C:
        raise InvalidArgumentError(
            f"n_nodes={n} is too small for this layout; give at least {_MIN_NODES}"
        )
    rows = -(-n_grid // C)
    first_spur, first_mw = n_grid, n_grid + n_spur

    # junctions of the grid, row by row
    idx = np.arange(n_grid, dtype=np.int64)
    r, c = idx // C, idx % C
    jit = _JITTER * block_m
    x = np.empty(n)
    y = np.empty(n)
    x[:n_grid] = colx[c] + rngs[4].uniform(-jit, jit, n_grid)
    y[:n_grid] = rowy[r] + rngs[4].uniform(-jit, jit, n_grid)
    del r, c

    # grid links: along rows (way id = row), then along columns (way id = rows + column)
    hu = idx[(idx % C != C - 1) & (idx + 1 < n_grid)]
    vu = idx[: max(n_grid - C, 0)]
    del idx
    lu = np.concatenate([hu, vu])
    lv = np.concatenate([hu + 1, vu + C])
    horiz = np.zeros(lu.shape[0], dtype=bool)
    horiz[: hu.shape[0]] = True
    cls = np.concatenate([row_cls[hu // C], col_cls[vu % C]])
    way = np.concatenate([hu // C, rows + vu % C]).astype(np.int64)
    del hu, vu
    n_grid_links = lu.shape[0]

    local = cls <= _UNC
    n_local = int(local.sum())
    removed = _remove_local_links(lu, lv, local, round(removed_share * n_local), n_grid, rngs[5])
    keep = ~removed
    lu, lv, cls, way, horiz = lu[keep], lv[keep], cls[keep], way[keep], horiz[keep]
    del keep, local
    rng = rngs[6]

    # one-way runs: pairs of neighbouring parallel lines, alternating directions
    lr, lc = lu // C, lu % C
    pair = np.where(horiz, lr // 2, lc // 2)
    pos = np.where(horiz, lc, lr)
    n_pairs_h, n_pairs_v = rows // 2 + 1, C // 2 + 1
    run_len = rng.integers(*_RUN_BLOCKS, size=n_pairs_h + n_pairs_v)
    run_off = rng.integers(0, _RUN_BLOCKS[1], size=n_pairs_h + n_pairs_v)
    pid = np.where(horiz, pair, n_pairs_h + pair)
    chunk = (pos + run_off[pid]) // run_len[pid]
    per_pair = max(rows, C) // _RUN_BLOCKS[0] + 3
    run = pid * per_pair + chunk
    del pair, pos, chunk, pid
    forward = np.where(horiz, lr % 2 == 0, lc % 2 == 0)
    del lr, lc

    # diagonal streets across a few blocks whose four sides are local lines
    b = np.arange(max(n_grid - C, 0), dtype=np.int64)
    b = b[(b % C != C - 1) & (b + C + 1 < n_grid)]
    br, bc = b // C, b % C
    all_local = (row_cls[br] <= _UNC) & (row_cls[br + 1] <= _UNC)
    all_local &= (col_cls[bc] <= _UNC) & (col_cls[bc + 1] <= _UNC)
    b = b[all_local & (rng.random(b.shape[0]) < _DIAGONAL_P)]
    del br, bc, all_local
    flip = rng.random(b.shape[0]) < 0.5
    du = np.where(flip, b + 1, b)
    dv = np.where(flip, b + C, b + C + 1)

    # dead ends: a short street from a random junction into one of its blocks
    att = rng.integers(0, n_grid, n_spur)
    sx = np.where(rng.random(n_spur) < 0.5, -1, 1)
    sy = np.where(rng.random(n_spur) < 0.5, -1, 1)
    ac, ar = att % C, att // C
    gx = np.where(sx > 0, spx[ac], spx[np.maximum(ac - 1, 0)])
    gy = np.where(sy > 0, spy[ar], spy[np.maximum(ar - 1, 0)])
    x[first_spur:first_mw] = x[att] + sx * gx * rng.uniform(0.15, 0.35, n_spur)
    y[first_spur:first_mw] = y[att] + sy * gy * rng.uniform(0.15, 0.35, n_spur)
    del ac, ar, gx, gy, sx, sy

    # one-way selection: whole runs in random order until the share of street links is reached
    n_street = lu.shape[0] + b.shape[0] + n_spur
    target = round(one_way_share * n_street)
    if target > lu.shape[0]:
        raise InvalidArgumentError(
            f"one_way_share={one_way_share:g} is more than this layout allows "
            f"({lu.shape[0] / n_street:.3f}: dead ends and diagonal streets stay two-way); "
            f"lower one_way_share or dead_end_share"
        )
    counts = np.bincount(run)
    runs = rng.permutation(np.flatnonzero(counts))
    cum = np.concatenate([[0], np.cumsum(counts[runs])])  # links in the first k runs
    k = int(np.searchsorted(cum, target))  # cum[k - 1] < target <= cum[k]
    if k > 0 and (k == cum.shape[0] or target - cum[k - 1] <= cum[k] - target):
        k -= 1
    chosen = np.zeros(counts.shape[0], dtype=bool)
    chosen[runs[:k]] = True
    oneway = chosen[run]
    del run, counts, runs, cum, chosen
    back = oneway & ~forward
    lu[back], lv[back] = lv[back], lu[back].copy()
    del back, forward

    # motorways: node and way ids after everything else
    x[first_mw:] = mw.x
    y[first_mw:] = mw.y
    mu = np.where(mw.u >= 0, mw.u + first_mw, -mw.u - 1)
    mv = np.where(mw.v >= 0, mw.v + first_mw, -mw.v - 1)
    # way ids: rows, columns, diagonals, dead ends, carriageways, ramps
    diag_way = rows + C + np.arange(b.shape[0])
    spur_way = rows + C + b.shape[0] + np.arange(n_spur)
    mw_base = rows + C + b.shape[0] + n_spur
    ramp = mw.way < 0
    mw_way = mw_base + mw.way
    mw_way[ramp] = mw_base + 2 * mw.n_motorways + np.arange(int(ramp.sum()))

    lu = np.concatenate([lu, du, att, mu])
    lv = np.concatenate([lv, dv, np.arange(first_spur, first_mw), mv])
    cls = np.concatenate(
        [cls, np.full(b.shape[0], _RES, np.int16), np.full(n_spur, _RES, np.int16), mw.cls]
    )
    way = np.concatenate([way, diag_way, spur_way, mw_way]).astype(np.int64)
    n_other = b.shape[0] + n_spur
    oneway = np.concatenate([oneway, np.zeros(n_other, bool), np.ones(mw.u.shape[0], bool)])
    street = cls <= _PRI

    # traps: a junction with no way in or no way out gets its one-way streets back to two-way
    outdeg = np.bincount(lu, minlength=n) + np.bincount(lv[~oneway], minlength=n)
    indeg = np.bincount(lv, minlength=n) + np.bincount(lu[~oneway], minlength=n)
    trapped = (indeg == 0) | (outdeg == 0)
    fix = oneway & street & (trapped[lu] | trapped[lv])
    oneway &= ~fix
    n_oneway = int((oneway & street).sum())

    stats = {
        "grid": [int(rows), int(C)],
        "grid_nodes": int(n_grid),
        "grid_links": int(n_grid_links),
        "removed_links": int(removed.sum()),
        "removed_share_of_local": round(float(removed.sum()) / max(n_local, 1), 4),
        "diagonal_streets": int(b.shape[0]),
        "dead_ends": int(n_spur),
        "street_links": int(street.sum()),
        "one_way_links": n_oneway,
        "one_way_share": round(n_oneway / max(int(street.sum()), 1), 4),
        "one_way_repaired": int(fix.sum()),
        "motorways": mw.n_motorways,
        "interchanges": mw.n_interchanges,
        "interchange_junctions": int(np.unique(mw.junctions).shape[0]),
        "motorway_nodes": int(mw.x.shape[0]),
        "block_m_mean": round(float(np.mean(np.concatenate([spx, spy[:rows]]))), 1),
    }
    return _Streets(x=x, y=y, lu=lu, lv=lv, cls=cls, way=way, oneway=oneway, stats=stats)


# ---------------------------------------------------------------------------------- compile
def _compile(
    st: _Streets,
    crs: str,
    origin: tuple[float, float],
    profile: SpeedProfile,
    source: dict[str, Any],
) -> CompiledGraph:
    """A :class:`CompiledGraph` from the links, with twins and geometry known by construction."""
    n = st.x.shape[0]
    x = st.x + origin[0]
    y = st.y + origin[1]
    kmh = np.array([profile.class_speed(c) for c in SYNTHETIC_CLASSES])
    length = np.hypot(x[st.lv] - x[st.lu], y[st.lv] - y[st.lu])
    seconds = np.maximum(length / (kmh[st.cls] / 3.6), MIN_TRAVEL_SECONDS)

    # each two-way link gives two consecutive arcs, twins of each other
    per = 2 - st.oneway.astype(np.int64)
    start = np.cumsum(per) - per
    two = np.flatnonzero(~st.oneway)
    rev = start[two] + 1
    arc_u = np.repeat(st.lu, per)
    arc_v = np.repeat(st.lv, per)
    arc_u[rev], arc_v[rev] = st.lv[two], st.lu[two]
    a = arc_u.shape[0]
    twin = np.full(a, -1, dtype=np.int32)
    twin[start[two]] = rev
    twin[rev] = start[two]
    del start, two, rev
    arc_seconds = np.repeat(seconds, per)
    arc_metres = np.repeat(length, per).astype(np.float32)
    arc_highway = np.repeat(st.cls, per)
    arc_osmid = np.repeat(st.way, per)
    del per, length, seconds

    indptr, indices, _, _, chosen = csr_keep_min(n, arc_u, arc_v, arc_seconds)
    arc_seconds32 = arc_seconds.astype(np.float32)
    del arc_seconds
    csr_arc = chosen.astype(np.int32)
    del chosen
    indices = indices.astype(np.int32)
    scc = strong_components(indptr, indices, n)

    geom_x = np.empty(2 * a)
    geom_y = np.empty(2 * a)
    geom_x[0::2], geom_x[1::2] = x[arc_u], x[arc_v]
    geom_y[0::2], geom_y[1::2] = y[arc_u], y[arc_v]
    geom_s = np.zeros(2 * a, dtype=np.float32)
    geom_m = np.zeros(2 * a, dtype=np.float32)
    geom_s[1::2] = arc_seconds32
    geom_m[1::2] = arc_metres

    to_ll = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = (np.asarray(v, dtype=np.float64) for v in to_ll.transform(x, y))
    sizes = np.bincount(scc)
    stats = dict(st.stats, largest_scc_fraction=round(float(sizes.max()) / n, 6))
    n_links = int(st.lu.shape[0])
    meta: dict[str, Any] = {
        "source": source,
        "network_type": "drive",
        "speed_profile": profile.to_dict(),
        "osm_timestamp": None,
        "segments": n_links,
        "segments_drivable": n_links,
        "speed_stats": SpeedStats(
            n_edges=n_links,
            n_maxspeed_used=0,
            n_maxspeed_missing=n_links if profile.use_maxspeed else 0,
            n_maxspeed_garbage=0,
        ).to_dict(),
        "crs": crs,
        "bbox": [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())],
        "highway_classes": list(SYNTHETIC_CLASSES),
        "counts": {
            "raw_nodes": n,
            "raw_arcs": int(a),
            "nodes": n,
            "arcs": int(a),
            "routing_arcs": int(csr_arc.shape[0]),
            "parallel_arcs_merged": int(a - csr_arc.shape[0]),
            "self_loops": 0,
            "two_way_pairs": int((twin >= 0).sum() // 2),
        },
        "synthetic": stats,
    }
    graph = CompiledGraph(
        node_ids=np.arange(1, n + 1, dtype=np.int64),
        lon=lon,
        lat=lat,
        x=x,
        y=y,
        indptr=indptr.astype(np.int64),
        indices=indices,
        seconds=arc_seconds32[csr_arc],
        metres=arc_metres[csr_arc],
        csr_arc=csr_arc,
        arc_u=arc_u.astype(np.int32),
        arc_v=arc_v.astype(np.int32),
        arc_seconds=arc_seconds32,
        arc_metres=arc_metres,
        arc_highway=arc_highway.astype(np.int16),
        arc_osmid=arc_osmid,
        arc_twin=twin,
        geom_indptr=np.arange(0, 2 * a + 1, 2, dtype=np.int64),
        geom_x=geom_x,
        geom_y=geom_y,
        geom_s=geom_s,
        geom_m=geom_m,
        scc=scc,
        meta=meta,
    )
    graph._check()
    return graph


def synthetic_road_graph(
    n_nodes: int,
    *,
    seed: int = 0,
    one_way_share: float = 0.15,
    removed_share: float = 0.08,
    dead_end_share: float = 0.08,
    block_m: float = 120.0,
    center: tuple[float, float] = _DEFAULT_CENTER,
    profile: SpeedProfile | None = None,
) -> CompiledGraph:
    """A deterministic road-like graph of exactly ``n_nodes`` nodes (see the module docstring).

    Parameters
    ----------
    n_nodes
        Number of nodes, at least 100. A 1M-node graph covers about 120 km x 120 km.
    seed
        Seed of every random choice; the same arguments give byte-identical arrays.
    one_way_share
        Share of street links (every road but motorways and their ramps) that are one-way,
        in [0, 0.95]; reached to within one run of a few blocks, then lowered slightly where a
        junction would have been a trap (reported in ``meta["synthetic"]``).
    removed_share
        Share of local street links removed from the grid, in [0, 0.2] (never two at one
        junction; a high share may come out a little lower).
    dead_end_share
        Share of nodes that are the tip of a dead-end street, in [0, 0.3].
    block_m
        Typical distance between neighbouring junctions, in metres (30 to 1000).
    center
        ``(lon, lat)`` of the middle of the network; its UTM zone is the graph's CRS.
    profile
        Speeds per highway class; :meth:`SpeedProfile.default` when omitted (residential 30,
        unclassified 40, tertiary 45, secondary 55, primary 65, motorway_link 70 and motorway
        110 km/h).

    Returns
    -------
    CompiledGraph
        With ``meta["source"]`` identifying the arguments (``{"type": "synthetic", ...}``) and
        ``meta["synthetic"]`` describing what was generated (grid shape, removed links, dead
        ends, one-way share reached, motorways and interchanges, largest component share).

    Raises
    ------
    ValueError
        When an argument is out of range, naming it and the valid range.
    """
    n, seed, ow, rm, de, block, ctr, profile = _check_args(
        n_nodes, seed, one_way_share, removed_share, dead_end_share, block_m, center, profile
    )
    t0 = time.perf_counter()
    st = _streets(n, seed, ow, rm, de, block)
    crs = utm_crs_for(np.array([ctr[0]]), np.array([ctr[1]]))
    cx, cy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*ctr)
    origin = (
        float(cx) - 0.5 * (float(st.x.min()) + float(st.x.max())),
        float(cy) - 0.5 * (float(st.y.min()) + float(st.y.max())),
    )
    source = {
        "type": "synthetic",
        "generator": "roadnet.synthetic.synthetic_road_graph",
        "version": _GENERATOR_VERSION,
        "n_nodes": n,
        "seed": seed,
        "one_way_share": ow,
        "removed_share": rm,
        "dead_end_share": de,
        "block_m": block,
        "center": list(ctr),
    }
    t1 = time.perf_counter()
    graph = _compile(st, crs, origin, profile, source)
    log.info(
        "synthetic road graph: %d nodes, %d arcs, %d motorways with %d interchanges, "
        "largest component %.4f (layout %.1f s, compile %.1f s)",
        graph.n_nodes,
        graph.n_arcs,
        st.stats["motorways"],
        st.stats["interchanges"],
        graph.meta["synthetic"]["largest_scc_fraction"],
        t1 - t0,
        time.perf_counter() - t1,
    )
    return graph


def random_points(
    graph: CompiledGraph, n: int, seed: int = 0, *, spread_m: float = 25.0
) -> np.ndarray:
    """``(n, 2)`` lon/lat points near the roads of ``graph``, e.g. benchmark sources/targets.

    Points lie at uniformly random places along the road network (roads weighted by length,
    each two-way road once), moved sideways by a normal offset of ``spread_m`` metres. Only
    roads of the largest strongly connected component are used, and no motorway or
    ``motorway_link`` where others exist (nobody lives on a motorway).

    Parameters
    ----------
    graph
        Any compiled graph (synthetic or real).
    n
        Number of points.
    seed
        Seed of the random choices.
    spread_m
        Standard deviation of the sideways offset in metres (>= 0).

    Raises
    ------
    ValueError
        When ``n``, ``seed`` or ``spread_m`` is invalid or the graph has no road.
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or int(n) < 0:
        raise InvalidArgumentError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or int(seed) < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(spread_m, numbers.Real) and 0.0 <= float(spread_m) < math.inf):
        raise InvalidArgumentError(
            f"spread_m must be a finite number of metres >= 0, got {spread_m!r}"
        )
    a = np.arange(graph.arc_u.shape[0])
    ok = ((graph.arc_twin < 0) | (a < graph.arc_twin)) & (graph.arc_metres > 0)
    ok &= (graph.scc[graph.arc_u] == 0) & (graph.scc[graph.arc_v] == 0)
    fast = np.isin(
        np.asarray(graph.highway_classes, dtype=object)[graph.arc_highway]
        if graph.highway_classes
        else np.zeros(0, dtype=object),
        ["motorway", "motorway_link"],
    )
    if fast.shape == ok.shape and (ok & ~fast).any():
        ok &= ~fast
    arcs = np.flatnonzero(ok)
    if arcs.size == 0:
        raise InvalidArgumentError("graph has no road in its largest component to put points near")
    rng = np.random.default_rng(int(seed))
    w = graph.arc_metres[arcs].astype(np.float64)
    pick = arcs[np.searchsorted(np.cumsum(w), rng.random(int(n)) * w.sum(), side="right")]
    pick = np.minimum(pick, arcs[-1])
    along = rng.random(int(n)) * graph.arc_metres[pick].astype(np.float64)
    # segment of each point: search the arc's cumulative metres (arcs laid end to end)
    ptr = graph.geom_indptr
    gm = graph.geom_m.astype(np.float64)
    base = np.concatenate([[0.0], np.cumsum(graph.arc_metres.astype(np.float64) + 1.0)])
    key = gm + np.repeat(base[:-1], np.diff(ptr))
    p0 = np.searchsorted(key, base[pick] + along, side="right") - 1
    p0 = np.clip(p0, ptr[pick], ptr[pick + 1] - 2)
    seg = gm[p0 + 1] - gm[p0]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.where(seg > 0, (along - gm[p0]) / np.where(seg > 0, seg, 1.0), 0.0), 0, 1)
    dx = graph.geom_x[p0 + 1] - graph.geom_x[p0]
    dy = graph.geom_y[p0 + 1] - graph.geom_y[p0]
    norm = np.maximum(np.hypot(dx, dy), 1e-9)
    off = rng.normal(0.0, float(spread_m), int(n))
    px = graph.geom_x[p0] + t * dx - off * dy / norm
    py = graph.geom_y[p0] + t * dy + off * dx / norm
    to_ll = pyproj.Transformer.from_crs(graph.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(px, py)
    return np.column_stack([np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)])
