"""Compilation (contraction, parallel arcs, twins), persistence and networkx interop."""

from __future__ import annotations

import zipfile

import networkx as nx
import numpy as np
import pytest

import roadnet
from roadnet.build import RawArcs, compile_arcs
from roadnet.graph import CompiledGraph


def _raw(
    edges: list[tuple[int, int, float, float]],
    coords: dict[int, tuple[float, float]],
) -> RawArcs:
    """Raw arcs from (u, v, metres, seconds) with node coordinates in lon/lat."""
    ids = sorted(coords)
    pos = {n: i for i, n in enumerate(ids)}
    u = np.array([pos[e[0]] for e in edges])
    v = np.array([pos[e[1]] for e in edges])
    return RawArcs.straight(
        np.array(ids),
        np.array([coords[i][0] for i in ids]),
        np.array([coords[i][1] for i in ids]),
        u,
        v,
        np.array([e[2] for e in edges]),
        np.array([e[3] for e in edges]),
        np.zeros(len(edges), dtype=np.int16),
        ["residential"],
        np.arange(len(edges)),
    )


# a junction J=1 with a two-way chain 1-2-3-4 (2, 3 interior), a one-way chain 1->5->6->4
# (5 interior), a dead end 4-7, a parallel slow arc 1->4 and a self-loop at 7
COORDS = {
    1: (0.0, 0.0),
    2: (0.001, 0.0),
    3: (0.002, 0.0),
    4: (0.003, 0.0),
    5: (0.001, 0.001),
    6: (0.002, 0.001),
    7: (0.004, 0.0),
}
EDGES = [
    (1, 2, 100, 10),
    (2, 1, 100, 10),
    (2, 3, 100, 10),
    (3, 2, 100, 10),
    (3, 4, 100, 12),
    (4, 3, 100, 12),
    (1, 5, 150, 5),
    (5, 6, 100, 4),
    (6, 4, 150, 5),
    (4, 7, 80, 8),
    (7, 4, 80, 8),
    (1, 4, 300, 99),
    (7, 7, 50, 5),
]


@pytest.fixture
def toy() -> CompiledGraph:
    return compile_arcs(_raw(EDGES, COORDS), {"source": {"type": "test"}})


def test_contraction_keeps_junctions_and_times(toy: CompiledGraph) -> None:
    g = toy
    assert sorted(g.node_ids.tolist()) == [1, 4, 7]  # 2, 3, 5, 6 are interior
    G = roadnet.graph_to_networkx(g)
    # 1 -> 4: the one-way chain (14 s) beats the two-way chain (32 s) and the slow direct arc
    assert nx.shortest_path_length(G, 1, 4, weight="travel_time") == pytest.approx(14.0)
    # 4 -> 1 only over the two-way chain
    assert nx.shortest_path_length(G, 4, 1, weight="travel_time") == pytest.approx(32.0)
    c = g.meta["counts"]
    assert c["self_loops"] == 1
    # 1->4 appears three times (two-way chain, one-way chain, direct): fastest kept
    row = slice(g.indptr[g.node_index([1])[0]], g.indptr[g.node_index([1])[0] + 1])
    to4 = g.indices[row] == g.node_index([4])[0]
    assert g.seconds[row][to4].tolist() == [pytest.approx(14.0)]
    assert c["parallel_arcs_merged"] == 2
    # the two-way chain 1-2-3-4 became a twin pair with the full geometry (4 points)
    twins = np.flatnonzero(g.arc_twin >= 0)
    assert twins.size == 4  # 1<->4 chain and 4<->7
    a = int(twins[np.argmax(g.arc_seconds[twins])])
    assert np.diff(g.geom_indptr)[a] == 4
    assert g.geom_s[g.geom_indptr[a + 1] - 1] == pytest.approx(g.arc_seconds[a])


def test_ring_of_interior_nodes_is_kept() -> None:
    coords = {1: (0, 0), 2: (0.001, 0), 3: (0.001, 0.001)}
    edges = [(1, 2, 100, 10), (2, 3, 100, 10), (3, 1, 100, 10)]  # a one-way roundabout alone
    g = compile_arcs(_raw(edges, coords), {"source": {}})
    assert g.n_nodes == 1
    assert g.arc_u.shape[0] == 1
    assert g.arc_seconds[0] == pytest.approx(30.0)
    assert g.n_arcs == 0  # a self-loop is no routing arc


def test_components_report(toy: CompiledGraph, malta: CompiledGraph) -> None:
    rep = malta.components()
    assert rep.sizes[0] > 10_000
    assert rep.sizes[1] > 1_000
    assert rep.n_components == len(np.unique(malta.scc))
    assert np.all(np.diff(rep.sizes) <= 0)
    assert toy.components().n_components == 1


def test_save_load_roundtrip(andorra: CompiledGraph, tmp_path) -> None:
    path = andorra.save(tmp_path / "g")
    assert path.suffix == ".npz"
    with zipfile.ZipFile(path) as z:  # uncompressed npy members, no pickle
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    g = roadnet.load_graph(path)
    for name, arr in andorra.arrays().items():
        np.testing.assert_array_equal(getattr(g, name), arr, err_msg=name)
        assert getattr(g, name).dtype == arr.dtype
    assert g.meta["source"] == andorra.meta["source"]
    assert g.meta["speed_profile"] == andorra.meta["speed_profile"]
    assert g.seconds.dtype == np.float32
    assert g.metres.dtype == np.float32


def test_load_rejects_bad_files(andorra: CompiledGraph, tmp_path) -> None:
    with pytest.raises(roadnet.GraphFormatError, match="not found"):
        roadnet.load_graph(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(roadnet.GraphFormatError, match="not a readable roadnet graph"):
        roadnet.load_graph(junk)
    arrays = andorra.arrays()
    del arrays["geom_s"]
    partial = tmp_path / "partial.npz"
    np.savez(partial, meta=np.array('{"format_version": 1}'), **arrays)
    with pytest.raises(roadnet.GraphFormatError, match="missing arrays: geom_s"):
        roadnet.load_graph(partial)
    future = tmp_path / "future.npz"
    np.savez(future, meta=np.array('{"format_version": 99}'), **andorra.arrays())
    with pytest.raises(roadnet.GraphFormatError, match="format version 99"):
        roadnet.load_graph(future)


def test_networkx_roundtrip(andorra: CompiledGraph) -> None:
    G = roadnet.graph_to_networkx(andorra)
    assert G.graph["crs"] == "EPSG:4326"
    _u, _v, data = next(iter(G.edges(data=True)))
    assert {"length", "travel_time", "speed_kph", "highway", "osmid", "geometry"} <= set(data)
    g2 = roadnet.graph_from_networkx(G, travel_time_attr="travel_time")
    # a second contraction may merge a little more (a node whose two directions led to one
    # junction through different raw ways now has two neighbours), never less
    assert set(g2.node_ids.tolist()) <= set(andorra.node_ids.tolist())
    assert g2.n_nodes >= 0.98 * andorra.n_nodes
    assert g2.arc_metres.sum() == pytest.approx(andorra.arc_metres.sum(), rel=1e-6)
    rng = np.random.default_rng(0)
    common = rng.choice(np.flatnonzero(g2.scc == 0), 25, replace=False)
    pts = np.column_stack([g2.lon[common], g2.lat[common]])
    np.testing.assert_allclose(
        roadnet.drive_time_matrix(g2, pts, n_jobs=1).seconds,
        roadnet.drive_time_matrix(andorra, pts, n_jobs=1).seconds,
        rtol=1e-5,
        atol=1e-3,
    )


def test_networkx_projected_graph_rejected(andorra: CompiledGraph) -> None:
    G = roadnet.graph_to_networkx(andorra)
    G.graph["crs"] = "EPSG:32631"
    with pytest.raises(roadnet.GraphSourceError, match="unprojected"):
        roadnet.graph_from_networkx(G)


def test_pbf_errors(tmp_path) -> None:
    with pytest.raises(roadnet.GraphSourceError, match="not found"):
        roadnet.graph_from_pbf(tmp_path / "nope.osm.pbf")
    empty = tmp_path / "empty.osm.pbf"
    empty.touch()
    with pytest.raises(roadnet.GraphSourceError, match="empty"):
        roadnet.graph_from_pbf(empty)
    corrupt = tmp_path / "corrupt.osm.pbf"
    corrupt.write_bytes(b"\x00\x00\x00\x0dgarbage-garbage" * 100)
    with pytest.raises(roadnet.GraphSourceError, match=r"corrupt\.osm\.pbf"):
        roadnet.graph_from_pbf(corrupt)


def test_pbf_metadata(andorra: CompiledGraph, helsinki: CompiledGraph) -> None:
    src = andorra.meta["source"]
    assert src["type"] == "pbf"
    assert len(src["sha256"]) == 64
    w, s, e, n = andorra.meta["bbox"]
    assert 1.3 < w < e < 1.8
    assert 42.4 < s < n < 42.7
    assert andorra.meta["osm_timestamp"].startswith("20")
    assert andorra.crs == "EPSG:32631"
    assert andorra.meta["speed_stats"]["n_edges"] > 0
    assert helsinki.n_nodes > 100
    # node x/y are the projection of lon/lat
    assert np.all(np.isfinite(andorra.x))
    assert np.ptp(andorra.x) > 10_000
    # travel seconds are never 0
    assert andorra.seconds.min() > 0
    assert andorra.arc_seconds.min() > 0


def _malta_raw() -> RawArcs:
    from roadnet.sources import _arcs_from_segments, _read_pbf_osmium
    from roadnet.speed import SpeedProfile
    from tests.support import shared_file

    segs = _read_pbf_osmium(shared_file("osm", "malta-latest.osm.pbf"), None, None,
                            "sparse_mem_array")  # fmt: skip
    raw, _ = _arcs_from_segments(
        segs.node_ids, segs.lon, segs.lat, segs.seg_u, segs.seg_v, segs.metres, segs.tags,
        segs.osmid, SpeedProfile.default(), seg_tags=segs.seg_tags,
    )  # fmt: skip
    return raw


def _same_graph(a: CompiledGraph, b: CompiledGraph) -> None:
    from roadnet.graph import _ARRAY_FIELDS

    for name, dtype in _ARRAY_FIELDS.items():
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.dtype(dtype), name
        assert np.array_equal(x, y), name
    assert a.meta == b.meta


def test_straight_arcs_compile_like_stored_polylines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arcs without a stored polyline (the PBF readers') give, bit for bit, the graph of the
    same arcs with their two-point polylines stored and compiled by the general path, and
    ``consume=True`` releases the raw arrays without changing the graph."""
    raw = _malta_raw()
    assert raw.geom_lon is None and raw.is_straight
    fast = compile_arcs(raw, {"source": {"type": "test"}})
    a = raw.u.shape[0]
    stored = RawArcs(
        **{**vars(raw), "geom_indptr": np.arange(0, 2 * a + 1, 2, dtype=np.int64)},
    )
    stored.geom_lon = np.empty(2 * a)
    stored.geom_lat = np.empty(2 * a)
    stored.geom_lon[0::2], stored.geom_lon[1::2] = raw.lon[raw.u], raw.lon[raw.v]
    stored.geom_lat[0::2], stored.geom_lat[1::2] = raw.lat[raw.u], raw.lat[raw.v]
    # the general path (per-point fractions, array gathers) instead of the straight kernel
    monkeypatch.setattr(RawArcs, "is_straight", property(lambda self: False))
    general = compile_arcs(stored, {"source": {"type": "test"}})
    monkeypatch.undo()
    _same_graph(fast, general)
    consumed = compile_arcs(raw, {"source": {"type": "test"}}, consume=True)
    _same_graph(fast, consumed)
    assert raw.u is None and raw.seconds is None and raw.node_ids is None
