"""Synthetic road graphs: deterministic, complete, road-like, and routable like real ones."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

import roadnet
from roadnet.build import RawArcs, compile_arcs
from roadnet.graph import CompiledGraph
from roadnet.speed import SpeedProfile
from roadnet.synthetic import SYNTHETIC_CLASSES, random_points, synthetic_road_graph

_STREETS = [SYNTHETIC_CLASSES.index(c) for c in ("residential", "unclassified", "tertiary")]
_MAJOR = [SYNTHETIC_CLASSES.index(c) for c in ("secondary", "primary")]
_LINK = SYNTHETIC_CLASSES.index("motorway_link")
_MWY = SYNTHETIC_CLASSES.index("motorway")


@pytest.fixture(scope="module")
def small() -> CompiledGraph:
    return synthetic_road_graph(2_500, seed=11)


@pytest.fixture(scope="module")
def medium() -> CompiledGraph:
    return synthetic_road_graph(20_000, seed=3)


def _one_per_road(g: CompiledGraph) -> np.ndarray:
    a = np.arange(g.arc_u.shape[0])
    return (g.arc_twin < 0) | (a < g.arc_twin)


def test_same_arguments_give_identical_arrays() -> None:
    a = synthetic_road_graph(6_000, seed=4, one_way_share=0.3)
    b = synthetic_road_graph(6_000, seed=4, one_way_share=0.3)
    c = synthetic_road_graph(6_000, seed=5, one_way_share=0.3)
    for name, arr in a.arrays().items():
        other = b.arrays()[name]
        assert arr.dtype == other.dtype and arr.tobytes() == other.tobytes(), name
    assert a.meta == b.meta
    assert a.x.tobytes() != c.x.tobytes()
    assert a.indices.tobytes() != c.indices.tobytes()
    assert a.meta["source"]["seed"] == 4 and a.meta["source"]["type"] == "synthetic"


@pytest.mark.parametrize("n", [100, 2_000, 12_345])
def test_exact_size_and_consistent_arrays(n: int) -> None:
    g = synthetic_road_graph(n, seed=1)
    assert g.n_nodes == n
    g2 = CompiledGraph.from_arrays(g.arrays(), g.meta)  # names, dtypes and shapes
    assert g2.n_nodes == n and g2.n_arcs == g.n_arcs
    a = g.arc_u.shape[0]
    assert g.n_arcs == a == g.meta["counts"]["arcs"]  # no parallel arcs, no self-loops
    assert np.all(g.arc_u != g.arc_v)
    # CSR rows hold the arcs of their tail, with the arc's own time and length
    tails = np.repeat(np.arange(n), np.diff(g.indptr))
    assert np.array_equal(g.arc_u[g.csr_arc], tails)
    assert np.array_equal(g.arc_v[g.csr_arc], g.indices)
    assert np.array_equal(g.seconds, g.arc_seconds[g.csr_arc])
    assert np.array_equal(g.metres, g.arc_metres[g.csr_arc])
    # twins are mutual and reversed
    tw = np.flatnonzero(g.arc_twin >= 0)
    assert np.array_equal(g.arc_twin[g.arc_twin[tw]], tw)
    assert np.array_equal(g.arc_u[g.arc_twin[tw]], g.arc_v[tw])
    assert g.meta["counts"]["two_way_pairs"] == tw.shape[0] // 2
    # straight geometry from tail to head, cumulative seconds and metres
    assert np.array_equal(g.geom_indptr, np.arange(0, 2 * a + 1, 2))
    assert np.array_equal(g.geom_x[0::2], g.x[g.arc_u])
    assert np.array_equal(g.geom_y[1::2], g.y[g.arc_v])
    assert np.all(g.geom_s[0::2] == 0) and np.array_equal(g.geom_s[1::2], g.arc_seconds)
    assert np.array_equal(g.geom_m[1::2], g.arc_metres)
    length = np.hypot(g.x[g.arc_v] - g.x[g.arc_u], g.y[g.arc_v] - g.y[g.arc_u])
    np.testing.assert_allclose(g.arc_metres, length, rtol=1e-6)
    # lon/lat are the projection of x/y, around the requested centre (Portugal)
    assert g.crs == "EPSG:32629"
    assert abs(np.median(g.lon) + 7.9) < 0.2 and abs(np.median(g.lat) - 39.9) < 0.2
    assert g.meta["bbox"] == [g.lon.min(), g.lat.min(), g.lon.max(), g.lat.max()]
    assert g.highway_classes == list(SYNTHETIC_CLASSES)
    assert np.array_equal(g.node_ids, np.arange(1, n + 1))


def test_other_centre_takes_its_utm_zone() -> None:
    g = synthetic_road_graph(500, seed=0, center=(13.4, 52.5))  # Berlin: UTM 33N
    assert g.crs == "EPSG:32633"
    assert abs(np.median(g.lon) - 13.4) < 0.05 and abs(np.median(g.lat) - 52.5) < 0.05


def test_speed_classes_present_with_their_speeds(medium: CompiledGraph) -> None:
    g = medium
    present = set(np.unique(g.arc_highway).tolist())
    assert present == set(range(len(SYNTHETIC_CLASSES)))
    profile = SpeedProfile.default()
    ok = g.arc_metres > 1.0
    kmh = g.arc_metres[ok].astype(np.float64) / g.arc_seconds[ok] * 3.6
    expected = np.array([profile.class_speed(c) for c in SYNTHETIC_CLASSES])[g.arc_highway[ok]]
    np.testing.assert_allclose(kmh, expected, rtol=1e-5)
    class_kmh = {c: profile.class_speed(c) for c in SYNTHETIC_CLASSES}
    assert [class_kmh[c] for c in ("residential", "unclassified", "tertiary")] == [30, 40, 45]
    assert [class_kmh[c] for c in ("secondary", "primary")] == [55, 65]
    assert 100 <= class_kmh["motorway"] <= 120
    # the hierarchy is a hierarchy: most road is local, arterials are a minority
    road = _one_per_road(g)
    km = np.bincount(g.arc_highway[road], weights=g.arc_metres[road], minlength=7)
    assert km[_STREETS].sum() > 0.6 * km.sum()
    assert 0.1 * km.sum() < km[_MAJOR].sum() < 0.35 * km.sum()
    assert 0 < km[_MWY] < 0.05 * km.sum()
    # a custom profile is applied
    fast = synthetic_road_graph(2_000, seed=3, profile=profile.with_overrides(residential=25))
    res = (fast.arc_highway == 0) & (fast.arc_metres > 1)
    np.testing.assert_allclose(fast.arc_metres[res] / fast.arc_seconds[res] * 3.6, 25, rtol=1e-5)
    assert fast.meta["speed_profile"]["residential"] == 25


@pytest.mark.parametrize("share", [0.0, 0.15, 0.4])
def test_one_way_share_close_to_requested(share: float) -> None:
    g = synthetic_road_graph(15_000, seed=2, one_way_share=share)
    street = _one_per_road(g) & (g.arc_highway <= SYNTHETIC_CLASSES.index("primary"))
    measured = float(np.mean(g.arc_twin[street] < 0))
    assert abs(measured - share) < 0.01
    assert measured == pytest.approx(g.meta["synthetic"]["one_way_share"], abs=1e-4)
    # motorways are separate one-way carriageways, ramps are one-way
    assert np.all(g.arc_twin[g.arc_highway >= _LINK] < 0)
    if share:
        # one-way streets come in pairs of neighbouring parallel streets, opposite directions
        ow = street & (g.arc_twin < 0) & (g.arc_highway < _LINK)
        dx = g.x[g.arc_v[ow]] - g.x[g.arc_u[ow]]
        dy = g.y[g.arc_v[ow]] - g.y[g.arc_u[ow]]
        east, west = (dx > 3 * np.abs(dy)).sum(), (-dx > 3 * np.abs(dy)).sum()
        assert abs(east - west) < 0.2 * (east + west)


def test_motorways_cross_streets_and_connect_only_at_sparse_interchanges(
    medium: CompiledGraph,
) -> None:
    g = medium
    s = g.meta["synthetic"]
    assert s["motorways"] >= 2 and s["interchanges"] >= 4
    cls = g.arc_highway
    mw_nodes = np.unique(np.concatenate([g.arc_u[cls == _MWY], g.arc_v[cls == _MWY]]))
    # a carriageway node touches only motorway arcs and ramps (bridges over the streets)
    touching = np.isin(g.arc_u, mw_nodes) | np.isin(g.arc_v, mw_nodes)
    assert set(np.unique(cls[touching]).tolist()) == {_LINK, _MWY}
    # ramps lead to collector/arterial junctions, a few km apart
    ramp = cls == _LINK
    ends = np.concatenate([g.arc_u[ramp], g.arc_v[ramp]])
    junctions = np.unique(ends[~np.isin(ends, mw_nodes)])
    assert junctions.shape[0] == s["interchange_junctions"]
    for j in junctions:
        street = (g.arc_u == j) & (cls < _LINK)
        assert np.any(np.isin(cls[street], _MAJOR))
    motorway_km = float(g.arc_metres[cls == _MWY].sum()) / 2 / 1000  # two carriageways
    assert motorway_km / junctions.shape[0] > 2.0
    xy = np.column_stack([g.x[junctions], g.y[junctions]])
    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() > 1_500.0
    # the motorway is a shortcut: long trips use it
    assert motorway_km > 10


def test_largest_component_holds_nearly_every_node(medium: CompiledGraph) -> None:
    assert medium.components().largest_fraction > 0.999
    assert medium.meta["synthetic"]["largest_scc_fraction"] > 0.999
    heavy = synthetic_road_graph(15_000, seed=8, one_way_share=0.7)
    assert heavy.components().largest_fraction > 0.99
    for g in (medium, heavy):
        # no junction is a plain trap (no way in or no way out)
        assert np.all(np.diff(g.indptr) > 0)
        assert np.all(np.bincount(g.indices, minlength=g.n_nodes) > 0)


def test_irregular_grid_with_dead_ends_and_varied_blocks(medium: CompiledGraph) -> None:
    g = medium
    s = g.meta["synthetic"]
    assert s["removed_share_of_local"] == pytest.approx(0.08, abs=0.005)
    assert s["dead_ends"] == round(0.08 * g.n_nodes)
    und = _one_per_road(g)
    deg = np.bincount(g.arc_u[und], minlength=g.n_nodes)
    deg += np.bincount(g.arc_v[und], minlength=g.n_nodes)
    assert np.mean(deg == 1) == pytest.approx(0.08, abs=0.01)  # dead ends
    assert np.mean(deg == 3) > 0.1  # T-junctions where a link was removed
    assert np.any(deg >= 5)  # diagonals and interchanges
    local = und & np.isin(g.arc_highway, _STREETS)
    lengths = g.arc_metres[local & (deg[g.arc_u] > 1) & (deg[g.arc_v] > 1)]
    assert np.percentile(lengths, 90) > 1.8 * np.percentile(lengths, 10)


def test_snap_and_matrix_equal_networkx(small: CompiledGraph) -> None:
    g = small
    G = roadnet.graph_to_networkx(g)
    rng = np.random.default_rng(0)
    nodes = rng.choice(np.flatnonzero(g.scc == 0), 12, replace=False)
    pts = np.column_stack([g.lon[nodes], g.lat[nodes]])
    m = roadnet.drive_time_matrix(g, pts, n_jobs=1)
    ref = np.full((12, 12), np.inf)
    for i, s in enumerate(nodes):
        d = nx.single_source_dijkstra_path_length(G, int(g.node_ids[s]), weight="travel_time")
        ref[i] = [d.get(int(g.node_ids[t]), np.inf) for t in nodes]
    assert np.all(np.isfinite(m.seconds))
    np.testing.assert_allclose(m.seconds, ref, rtol=2e-6, atol=1e-3)


def test_random_points_snap_close_and_route_like_a_reference(small: CompiledGraph) -> None:
    g = small
    pts = random_points(g, 30, seed=5)
    assert pts.shape == (30, 2) and pts.dtype == np.float64
    assert np.array_equal(pts, random_points(g, 30, seed=5))
    assert not np.array_equal(pts, random_points(g, 30, seed=6))
    assert random_points(g, 0).shape == (0, 2)
    o = roadnet.snap_points(g, pts[:, 0], pts[:, 1])
    assert o.snap_distance_m.max() < 150 and not o.flagged.any()
    assert np.all(o.component == 0)
    assert not np.any(np.isin(g.arc_highway[o.arc], [_LINK, _MWY]))
    m = roadnet.drive_time_matrix(g, o, n_jobs=1)
    # reference: node-to-node times (scipy) plus the snap offsets on both ends
    out_nodes = np.unique(o.out_node[o.out_node >= 0])
    D = dijkstra(g.csr(), indices=out_nodes)
    row = {int(v): k for k, v in enumerate(out_nodes)}
    twin = g.arc_twin[o.arc]
    for i in range(30):
        for j in range(30):
            if i == j or o.arc[i] == o.arc[j] or twin[i] == o.arc[j]:
                continue  # same road piece: a trip along it needs no junction
            best = np.inf
            for k in range(2):
                for kk in range(2):
                    a, b = o.out_node[i, k], o.in_node[j, kk]
                    if a >= 0 and b >= 0:
                        t = o.out_seconds[i, k] + D[row[int(a)], b] + o.in_seconds[j, kk]
                        best = min(best, t + o.connector_seconds[i] + o.connector_seconds[j])
            assert m.seconds[i, j] == pytest.approx(best, rel=2e-6, abs=1e-3)


def test_same_routing_as_the_real_builder() -> None:
    """compile_arcs (contraction, twin search, CSR) on the same arcs gives the same times."""
    g = synthetic_road_graph(3_000, seed=9, one_way_share=0.3)
    raw = RawArcs.straight(
        g.node_ids,
        g.lon,
        g.lat,
        g.arc_u,
        g.arc_v,
        g.arc_metres,
        g.arc_seconds,
        g.arc_highway,
        g.highway_classes,
        g.arc_osmid,
    )
    ref = compile_arcs(raw, {"source": {"type": "test"}})
    one_way_km = float(g.arc_metres[g.arc_twin < 0].sum())
    assert float(ref.arc_metres[ref.arc_twin < 0].sum()) == pytest.approx(one_way_km, rel=1e-5)
    # contraction drops the few pass-through nodes (grid border, carriageway ends)
    assert 0.97 * g.n_nodes < ref.n_nodes <= g.n_nodes
    sample = np.random.default_rng(1).choice(ref.n_nodes, 15, replace=False)
    np.testing.assert_allclose(
        dijkstra(g.csr(), indices=g.node_index(ref.node_ids[sample]))[
            :, g.node_index(ref.node_ids)
        ],
        dijkstra(ref.csr(), indices=sample),
        rtol=1e-5,
    )
    assert ref.components().largest_fraction == pytest.approx(
        g.components().largest_fraction, abs=0.01
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_nodes": 10}, "n_nodes"),
        ({"n_nodes": 2.5}, "n_nodes"),
        ({"n_nodes": True}, "n_nodes"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"one_way_share": 1.5}, "one_way_share"),
        ({"one_way_share": -0.1}, "one_way_share"),
        ({"one_way_share": "lots"}, "one_way_share"),
        ({"one_way_share": float("nan")}, "one_way_share"),
        ({"removed_share": 0.5}, "removed_share"),
        ({"dead_end_share": 0.9}, "dead_end_share"),
        ({"block_m": 5}, "block_m"),
        ({"center": (200.0, 40.0)}, "center"),
        ({"center": "Lisbon"}, "center"),
        ({"profile": {"residential": 30}}, "profile"),
        ({"one_way_share": 0.95, "dead_end_share": 0.3}, "one_way_share"),
    ],
)
def test_invalid_arguments_name_the_problem(kwargs: dict, name: str) -> None:
    args = {"n_nodes": 1_000, **kwargs}
    with pytest.raises(ValueError, match=name):
        synthetic_road_graph(**args)


def test_random_points_invalid_arguments(small: CompiledGraph) -> None:
    with pytest.raises(ValueError, match="n must"):
        random_points(small, -1)
    with pytest.raises(ValueError, match="seed"):
        random_points(small, 3, seed=-2)
    with pytest.raises(ValueError, match="spread_m"):
        random_points(small, 3, spread_m=-1.0)
