"""Snapping to road edges: offsets on a hand-made graph with known geometry and times."""

from __future__ import annotations

import numpy as np
import pytest

import roadnet
from roadnet.build import RawArcs, compile_arcs
from roadnet.graph import CompiledGraph

# Three roads near (10E, 50N):
#   A: node 1 (10.00, 50.00) <-> node 2 (10.01, 50.00), two-way, 60 s east, 90 s west
#   B: node 2 -> node 3 (10.01, 50.01), one-way north, 100 s
#   C: node 3 -> node 1, one-way, 120 s
#   D: node 3 <-> node 4 (10.02, 50.01), two-way, 50 s (makes node 3 a junction)
LON = np.array([10.00, 10.01, 10.01, 10.02])
LAT = np.array([50.00, 50.00, 50.01, 50.01])


@pytest.fixture(scope="module")
def toy() -> CompiledGraph:
    u = np.array([0, 1, 1, 2, 2, 3])
    v = np.array([1, 0, 2, 0, 3, 2])
    raw = RawArcs.straight(
        np.array([1, 2, 3, 4]),
        LON,
        LAT,
        u,
        v,
        metres=np.array([716.0, 716.0, 1112.0, 1340.0, 716.0, 716.0]),
        seconds=np.array([60.0, 90.0, 100.0, 120.0, 50.0, 50.0]),
        highway=np.zeros(6, np.int16),
        highway_classes=["primary"],
        osmid=np.arange(6),
    )
    return compile_arcs(raw, {"source": {"type": "test"}})


def _xy(g: CompiledGraph, lon: float, lat: float) -> tuple[float, float]:
    import pyproj

    t = pyproj.Transformer.from_crs("EPSG:4326", g.crs, always_xy=True)
    x, y = t.transform(lon, lat)
    return float(x), float(y)


def test_two_way_offsets(toy: CompiledGraph) -> None:
    g = toy
    lon, lat = 10.0025, 50.0004  # a quarter along A, ~44 m north of it
    s = roadnet.snap_points(g, [lon], [lat], connector_speed_kmh=18.0)
    x1, y1 = _xy(g, 10.0, 50.0)
    x2, y2 = _xy(g, 10.01, 50.0)
    px, py = _xy(g, lon, lat)
    frac = ((px - x1) * (x2 - x1) + (py - y1) * (y2 - y1)) / ((x2 - x1) ** 2 + (y2 - y1) ** 2)
    dist = abs((x2 - x1) * (y1 - py) - (x1 - px) * (y2 - y1)) / np.hypot(x2 - x1, y2 - y1)
    assert s.snap_distance_m[0] == pytest.approx(dist, rel=1e-6)
    assert s.connector_seconds[0] == pytest.approx(dist / 5.0)  # 18 km/h = 5 m/s
    assert not s.flagged[0]
    n1, n2 = g.node_index([1, 2])
    out = dict(zip(s.out_node[0].tolist(), s.out_seconds[0].tolist(), strict=True))
    inn = dict(zip(s.in_node[0].tolist(), s.in_seconds[0].tolist(), strict=True))
    assert out[n2] == pytest.approx(60.0 * (1 - frac), rel=1e-5)  # on east, rest of A
    assert out[n1] == pytest.approx(90.0 * frac, rel=1e-5)  # back west on the twin
    assert inn[n1] == pytest.approx(60.0 * frac, rel=1e-5)
    assert inn[n2] == pytest.approx(90.0 * (1 - frac), rel=1e-5)
    metres = dict(zip(s.out_node[0].tolist(), s.out_metres[0].tolist(), strict=True))
    assert metres[n2] == pytest.approx(716.0 * (1 - frac), rel=1e-5)


def test_one_way_offsets_and_matrix(toy: CompiledGraph) -> None:
    g = toy
    p = (10.0025, 50.0004)  # on A
    q = (10.0102, 50.005)  # right of B, halfway up
    s = roadnet.snap_points(g, [p[0], q[0]], [p[1], q[1]])
    _n1, n2, n3 = g.node_index([1, 2, 3])
    assert s.out_node[1].tolist() == [n3, -1]  # one-way: leave only northwards
    assert s.in_node[1].tolist() == [n2, -1]
    fq = s.in_seconds[1, 0] / 100.0
    assert 0.45 < fq < 0.55
    m = roadnet.drive_time_matrix(g, s, n_jobs=1)
    cp, cq = s.connector_seconds
    fp = s.in_seconds[0, 0] / 60.0
    # p -> q: east along A to node 2, then up B
    assert m.seconds[0, 1] == pytest.approx(cp + 60 * (1 - fp) + 100 * fq + cq, rel=1e-5)
    # q -> p: up B to node 3, C to node 1, east along A
    assert m.seconds[1, 0] == pytest.approx(cq + 100 * (1 - fq) + 120 + 60 * fp + cp, rel=1e-5)


def test_same_road_direct_trip(toy: CompiledGraph) -> None:
    g = toy
    lon = np.array([10.002, 10.007])
    lat = np.array([50.0, 50.0])  # both exactly on A, west one first
    s = roadnet.snap_points(g, lon, lat)
    assert np.allclose(s.snap_distance_m, 0.0, atol=0.05)  # a parallel bends in UTM: mm
    m = roadnet.drive_time_matrix(g, s, n_jobs=1)
    cp, cq = s.connector_seconds
    d = s.in_seconds[1, 0] - s.in_seconds[0, 0]
    # straight along A, no node needed; back on the slow twin
    assert m.seconds[0, 1] == pytest.approx(cp + d + cq, rel=1e-5)
    assert m.seconds[1, 0] == pytest.approx(cp + d * 90 / 60 + cq, rel=1e-5)
    assert m.seconds[0, 0] == 0
    assert m.seconds[1, 1] == 0


def test_point_at_junction_of_one_way_roads(toy: CompiledGraph) -> None:
    g = toy
    s = roadnet.snap_points(g, [10.01, 10.01], [50.01, 50.0])  # exactly nodes 3 and 2
    m = roadnet.drive_time_matrix(g, s, n_jobs=1)
    # node 3 -> node 2: C (120) + A (60); node 2 -> node 3: B (100)
    assert m.seconds[0, 1] == pytest.approx(180.0, rel=1e-5)
    assert m.seconds[1, 0] == pytest.approx(100.0, rel=1e-5)


def test_far_points_are_flagged_not_hidden(toy: CompiledGraph) -> None:
    s = roadnet.snap_points(toy, [10.005, 10.005], [50.0, 50.05], max_distance_m=500)
    assert s.flagged.tolist() == [False, True]
    assert s.snap_distance_m[1] > 4000
    rep = roadnet.drive_time_matrix(toy, s, n_jobs=1).report()
    assert rep["flagged_origins"] == [1]


def test_snap_errors(toy: CompiledGraph) -> None:
    with pytest.raises(roadnet.SnapError, match="none of the 2 points"):
        roadnet.snap_points(toy, [12.0, 12.1], [51.0, 51.0])
    with pytest.raises(roadnet.CRSError, match="projected CRS"):
        roadnet.snap_points(toy, [500000.0], [5500000.0])
    with pytest.raises(roadnet.SnapError, match="missing coordinates"):
        roadnet.snap_points(toy, [np.nan], [50.0])


def test_snaps_skip_tiny_components(andorra: CompiledGraph) -> None:
    s = roadnet.snap_points(andorra, andorra.lon, andorra.lat)
    sizes = np.bincount(andorra.scc)
    assert np.all(sizes[s.component] >= 50)
    # points on nodes of the big component snap onto it with zero distance
    big = andorra.scc == 0
    assert np.allclose(s.snap_distance_m[big], 0.0, atol=1e-6)
