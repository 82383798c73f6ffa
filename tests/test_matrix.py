"""Drive-time matrices equal an independent networkx Dijkstra on the same travel times."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

import roadnet
from roadnet.graph import CompiledGraph
from roadnet.snap import SnappedPoints


def _node_points(g: CompiledGraph, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(np.flatnonzero(g.scc == 0), n, replace=False)
    return nodes, np.column_stack([g.lon[nodes], g.lat[nodes]])


def _nx_table(G: nx.MultiDiGraph, sources: list[int], targets: list[int]) -> np.ndarray:
    out = np.full((len(sources), len(targets)), np.inf)
    for i, s in enumerate(sources):
        d = nx.single_source_dijkstra_path_length(G, s, weight="travel_time")
        out[i] = [d.get(t, np.inf) for t in targets]
    return out


def _reference(
    G: nx.MultiDiGraph, g: CompiledGraph, o: SnappedPoints, d: SnappedPoints, square: bool
) -> np.ndarray:
    """Snapped-point times from node-to-node networkx distances plus the snap offsets."""
    ids = g.node_ids
    out = np.full((len(o), len(d)), np.inf)
    for i in range(len(o)):
        dist = {}
        for k in range(2):
            if o.out_node[i, k] < 0:
                continue
            lengths = nx.single_source_dijkstra_path_length(
                G, int(ids[o.out_node[i, k]]), weight="travel_time"
            )
            for node, t in lengths.items():
                c = o.connector_seconds[i] + o.out_seconds[i, k] + t
                dist[node] = min(dist.get(node, np.inf), c)
        for j in range(len(d)):
            best = np.inf
            for k in range(2):
                if d.in_node[j, k] >= 0:
                    via = dist.get(int(ids[d.in_node[j, k]]), np.inf)
                    best = min(best, via + d.in_seconds[j, k] + d.connector_seconds[j])
                # same road piece, destination ahead of the origin
                if (
                    o.arc[i] == d.arc[j]
                    and np.isfinite(o.in_seconds[i, k])
                    and np.isfinite(d.in_seconds[j, k])
                    and d.in_metres[j, k] >= o.in_metres[i, k]
                ):
                    best = min(
                        best,
                        o.connector_seconds[i]
                        + d.in_seconds[j, k]
                        - o.in_seconds[i, k]
                        + d.connector_seconds[j],
                    )
            out[i, j] = best
    if square:
        np.fill_diagonal(out, 0.0)
    out[o.labels[:, None] == d.labels[None, :]] = 0.0  # a point to itself
    return out


@pytest.mark.parametrize("name", ["andorra", "porto", "helsinki"])
def test_node_points_equal_networkx(name: str, request: pytest.FixtureRequest) -> None:
    g: CompiledGraph = request.getfixturevalue(name)
    G = roadnet.graph_to_networkx(g)
    nodes, pts = _node_points(g, 25, seed=3)
    m = roadnet.drive_time_matrix(g, pts, n_jobs=1)
    ref = _nx_table(G, [int(x) for x in g.node_ids[nodes]], [int(x) for x in g.node_ids[nodes]])
    assert m.seconds.dtype == np.float32
    np.testing.assert_allclose(m.seconds, ref, rtol=2e-6, atol=1e-3)


def test_random_points_equal_reference(andorra: CompiledGraph) -> None:
    g = andorra
    G = roadnet.graph_to_networkx(g)
    rng = np.random.default_rng(7)
    # points near roads, off the nodes: node coordinates jittered by up to ~150 m
    nodes = rng.choice(np.flatnonzero(g.scc == 0), 40, replace=False)
    lon = g.lon[nodes] + rng.normal(0, 0.001, 40)
    lat = g.lat[nodes] + rng.normal(0, 0.001, 40)
    o = roadnet.snap_points(g, lon[:25], lat[:25])
    d = roadnet.snap_points(g, lon[15:], lat[15:])
    m = roadnet.drive_time_matrix(g, o, d, n_jobs=1)
    np.testing.assert_allclose(m.seconds, _reference(G, g, o, d, False), rtol=2e-6, atol=1e-3)
    sq = roadnet.drive_time_matrix(g, o, n_jobs=1)
    np.testing.assert_allclose(sq.seconds, _reference(G, g, o, o, True), rtol=2e-6, atol=1e-3)
    assert np.all(np.diag(sq.seconds) == 0)


def test_one_way_streets_make_matrix_asymmetric(andorra: CompiledGraph) -> None:
    g = andorra
    _, pts = _node_points(g, 30, seed=11)
    m = roadnet.drive_time_matrix(g, pts, n_jobs=1)
    assert np.all(np.isfinite(m.seconds))
    assert np.abs(m.seconds - m.seconds.T).max() > 30.0  # tens of seconds apart somewhere
    # a point on a one-way arc: driving along the arc is quicker than against it
    one_way = np.flatnonzero(
        (g.arc_twin < 0)
        & (g.arc_u != g.arc_v)
        & (g.arc_seconds > 20)
        & (g.scc[g.arc_u] == 0)
        & (g.scc[g.arc_v] == 0)
    )
    arcs = one_way[:60]
    u, v = g.arc_u[arcs], g.arc_v[arcs]
    tails = roadnet.snap_points(g, g.lon[u], g.lat[u])
    heads = roadnet.snap_points(g, g.lon[v], g.lat[v])
    forward = np.diag(roadnet.drive_time_matrix(g, tails, heads, n_jobs=1).seconds)
    backward = np.diag(roadnet.drive_time_matrix(g, heads, tails, n_jobs=1).seconds)
    assert np.all(forward <= g.arc_seconds[arcs] + 1e-3)  # along the one-way arc at most
    assert np.mean(backward > forward) > 0.5  # against it: a detour, mostly longer
    assert np.max(backward - forward) > 60.0


def test_raw_unsimplified_graph_gives_same_times(andorra: CompiledGraph) -> None:
    """Contraction keeps times exact: points on interior (removed) nodes of the raw graph."""
    import pyrosm

    from roadnet.sources import _arcs_from_segments
    from roadnet.speed import SpeedProfile
    from tests.support import shared_file

    nodes, edges = pyrosm.OSM(str(shared_file("osm", "andorra-latest.osm.pbf"))).get_network(
        network_type="driving", nodes=True
    )
    import pandas as pd

    index = pd.Index(nodes["id"].to_numpy(np.int64))
    raw, _ = _arcs_from_segments(
        nodes["id"].to_numpy(np.int64),
        nodes["lon"].to_numpy(float),
        nodes["lat"].to_numpy(float),
        index.get_indexer(edges["u"].to_numpy(np.int64)),
        index.get_indexer(edges["v"].to_numpy(np.int64)),
        edges["length"].to_numpy(float),
        edges,
        edges["id"].to_numpy(np.int64),
        SpeedProfile.default(),
    )
    R = nx.DiGraph()
    for u, v, s in zip(raw.u, raw.v, raw.seconds, strict=True):
        if u != v and (not R.has_edge(u, v) or R[u][v]["w"] > s):
            R.add_edge(int(u), int(v), w=float(s))
    # interior raw nodes of the largest component (degree-2 road points removed by contraction)
    kept = set(andorra.node_ids.tolist())
    big = max(nx.strongly_connected_components(R), key=len)
    interior = [n for n in big if int(raw.node_ids[n]) not in kept]
    rng = np.random.default_rng(5)
    pick = [int(x) for x in rng.choice(interior, 20, replace=False)]
    pts = np.column_stack([raw.lon[pick], raw.lat[pick]])
    m = roadnet.drive_time_matrix(andorra, pts, n_jobs=1)
    ref = np.array([[nx.shortest_path_length(R, s, t, weight="w") for t in pick] for s in pick])
    np.testing.assert_allclose(m.seconds, ref, rtol=1e-5, atol=2e-3)


def test_malta_gozo_pairs_are_inf_and_reported(malta: CompiledGraph) -> None:
    g = malta
    valletta = (14.5146, 35.8989)
    mdina = (14.4035, 35.8857)
    victoria_gozo = (14.2390, 36.0443)
    nadur_gozo = (14.2950, 36.0378)
    pts = np.array([valletta, mdina, victoria_gozo, nadur_gozo])
    m = roadnet.drive_time_matrix(g, pts, n_jobs=1)
    assert np.all(np.isfinite(m.seconds[:2, :2]))
    assert np.all(np.isfinite(m.seconds[2:, 2:]))
    assert np.all(np.isinf(m.seconds[:2, 2:]))
    assert np.all(np.isinf(m.seconds[2:, :2]))
    rep = m.report()
    assert rep["unreachable_pairs"] == 8
    assert len(rep["origin_components"]) == 2  # Malta's and Gozo's road networks
    assert {tuple(p) for p in m.unreachable().tolist()} == {
        (i, j) for i in range(4) for j in range(4) if (i < 2) != (j < 2)
    }


def test_cutoff_semantics(andorra: CompiledGraph) -> None:
    _, pts = _node_points(andorra, 30, seed=2)
    full = roadnet.drive_time_matrix(andorra, pts, n_jobs=1)
    cut = roadnet.drive_time_matrix(andorra, pts, cutoff=600.0, n_jobs=1)
    within = full.seconds <= 600.0
    np.testing.assert_array_equal(cut.seconds[within], full.seconds[within])
    assert np.all(np.isinf(cut.seconds[~within]))
    assert cut.unreachable().shape[0] == 0  # beyond cutoff is not "unreachable"
    with pytest.raises(ValueError, match="cutoff"):
        roadnet.drive_time_matrix(andorra, pts, cutoff=-1)


def test_distances_follow_fastest_path(andorra: CompiledGraph) -> None:
    g = andorra
    G = roadnet.graph_to_networkx(g)
    nodes, pts = _node_points(g, 12, seed=9)
    m = roadnet.drive_time_matrix(g, pts, distances=True, n_jobs=1)
    assert m.metres is not None
    ids = [int(x) for x in g.node_ids[nodes]]
    for i, s in enumerate(ids):
        _, paths = nx.single_source_dijkstra(G, s, weight="travel_time")
        for j, t in enumerate(ids):
            path = paths[t]
            metres = 0.0
            for a, b in itertools.pairwise(path):
                fastest = min(G[a][b].values(), key=lambda e: e["travel_time"])
                metres += fastest["length"]
            assert m.metres[i, j] == pytest.approx(metres, rel=1e-4, abs=0.5)
    # metres / seconds are plausible car speeds
    off = ~np.eye(len(ids), dtype=bool)
    speed = m.metres[off] / m.seconds[off] * 3.6
    assert np.all((speed > 5) & (speed < 130))


def test_parallel_and_chunked_equal_serial(porto: CompiledGraph) -> None:
    _, pts = _node_points(porto, 150, seed=4)
    serial = roadnet.drive_time_matrix(porto, pts, n_jobs=1, chunk_size=64)
    calls: list[tuple[int, int]] = []
    par = roadnet.drive_time_matrix(
        porto, pts, n_jobs=2, chunk_size=16, progress=lambda d, t: calls.append((d, t))
    )
    np.testing.assert_array_equal(serial.seconds, par.seconds)
    assert calls[0] == (0, 150)
    assert calls[-1] == (150, 150)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_far_policy(andorra: CompiledGraph) -> None:
    g = andorra
    pts = np.array([[g.lon[0], g.lat[0]], [g.lon[5], g.lat[5]], [1.30, 42.40]])  # last: France
    o = roadnet.snap_points(g, pts[:, 0], pts[:, 1], max_distance_m=1000)
    assert o.flagged.tolist() == [False, False, True]
    flag = roadnet.drive_time_matrix(g, o, n_jobs=1)
    assert np.isfinite(flag.seconds[2, 0]) or flag.seconds[2, 0] == np.inf
    assert flag.report()["flagged_origins"] == [2]
    excl = roadnet.drive_time_matrix(g, o, far="exclude", n_jobs=1)
    assert np.all(np.isinf(excl.seconds[2, :2]))
    assert np.all(np.isinf(excl.seconds[:2, 2]))
    np.testing.assert_array_equal(excl.seconds[:2, :2], flag.seconds[:2, :2])
    with pytest.raises(roadnet.SnapError, match="farther than 1000 m"):
        roadnet.drive_time_matrix(g, o, far="error")


def test_empty_and_bad_point_arrays(andorra: CompiledGraph) -> None:
    with pytest.raises(roadnet.SnapError, match=r"\(n, 2\)"):
        roadnet.drive_time_matrix(andorra, np.zeros((3, 3)))
    with pytest.raises(roadnet.CRSError, match="projected"):
        roadnet.drive_time_matrix(andorra, np.array([[380000.0, 4700000.0]]))
    with pytest.raises(roadnet.SnapError, match="none of the 1 points"):
        roadnet.drive_time_matrix(andorra, np.array([[10.0, 50.0]]))


def test_reverse_column_blocks_equal_forward_rows(andorra: CompiledGraph) -> None:
    """Destination columns from Dijkstra on the reversed graph equal the forward rows."""
    from roadnet.matrix import augment, block_tasks, run_blocks, zero_same_points

    g = andorra
    rng = np.random.default_rng(12)
    nodes = rng.choice(np.flatnonzero(g.scc == 0), 30, replace=False)
    lon = g.lon[nodes] + rng.normal(0, 0.0008, 30)
    lat = g.lat[nodes] + rng.normal(0, 0.0008, 30)
    o = roadnet.snap_points(g, lon[:20], lat[:20])
    d = roadnet.snap_points(g, lon[10:], lat[10:])
    fwd = roadnet.drive_time_matrix(g, o, d, distances=True, n_jobs=1)
    aug = augment(g, o, d, np.ones(len(o), bool), np.ones(len(d), bool))
    sec = np.full(fwd.shape, np.nan, dtype=np.float32)
    met = np.full(fwd.shape, np.nan, dtype=np.float32)

    def store(kind, idx, s, m):
        assert kind == "cols"
        sec[:, idx] = s
        met[:, idx] = m

    run_blocks(
        aug,
        block_tasks("cols", np.arange(len(d)), 7),
        cutoff=None,
        distances=True,
        n_jobs=1,
        on_block=store,
    )
    zero_same_points(sec, met, o.labels, d.labels)
    np.testing.assert_allclose(sec, fwd.seconds, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(met, fwd.metres, rtol=1e-4, atol=0.5)
