"""Contraction hierarchies: the same answers as Dijkstra, cached, chosen by "auto"."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roadnet
from cache import Store
from roadnet.cached import cached_drive_time_matrix, precompute_matrix
from roadnet.ch import Hierarchy, build_hierarchy
from roadnet.engine import EngineChoice, choose_engine
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import cached_hierarchy, forget_hierarchies, hierarchy_available
from roadnet.matrix import drive_time_matrix
from roadnet.settings import SettingsError
from roadnet.snap import snap_points
from tests.support.toy_graphs import assert_same, random_nodes, reference, toy_graph


# ------------------------------------------------------------------ node tables on real data
@pytest.mark.parametrize("name", ["andorra", "malta", "porto"])
def test_node_table_equals_dijkstra(name: str, request: pytest.FixtureRequest) -> None:
    g: CompiledGraph = request.getfixturevalue(name)
    h = build_hierarchy(g)
    assert h.n_arcs >= g.indices.shape[0] - np.count_nonzero(
        g.indices == np.repeat(np.arange(g.n_nodes), np.diff(g.indptr))
    )
    src, dst = random_nodes(g, 300, 1), random_nodes(g, 400, 2)
    sec, met = h.node_table(src, dst)
    assert met is None and sec.dtype == np.float32
    want = reference(g, src, dst)
    assert_same(sec, want)
    if name == "malta":  # Malta and Gozo: the ferry is not a road
        assert np.isinf(want).any()
    # many sources, few targets: the backward sweep
    sec_b, _ = h.node_table(src, dst[:7])
    assert_same(sec_b, want[:, :7])


def test_metres_follow_the_fastest_route(porto: CompiledGraph) -> None:
    h = build_hierarchy(porto)
    src, dst = random_nodes(porto, 40, 3), random_nodes(porto, 50, 4)
    sec, met = h.node_table(src, dst, distances=True)
    assert met is not None
    assert np.array_equal(np.isinf(met), np.isinf(sec))
    # metres along scipy's predecessor tree, between the same places as snapped points
    m = drive_time_matrix(
        porto,
        np.column_stack([porto.lon[src], porto.lat[src]]),
        np.column_stack([porto.lon[dst], porto.lat[dst]]),
        distances=True,
        engine="scipy",
    )
    c = drive_time_matrix(
        porto,
        m.origins,
        m.destinations,
        distances=True,
        engine="ch",
    )
    assert c.engine == "ch" and m.engine == "scipy-dijkstra"
    assert_same(c.seconds, m.seconds)
    fin = np.isfinite(m.seconds)
    assert m.metres is not None and c.metres is not None
    np.testing.assert_allclose(c.metres[fin], m.metres[fin], rtol=1e-4, atol=0.5)


def test_cutoff_semantics_equal(malta: CompiledGraph) -> None:
    h = build_hierarchy(malta)
    src, dst = random_nodes(malta, 150, 5), random_nodes(malta, 160, 6)
    for cutoff in (60.0, 600.0, 1800.0):
        sec, _ = h.node_table(src, dst, cutoff=cutoff)
        want = reference(malta, src, dst, limit=cutoff)
        want[want > cutoff] = np.inf
        assert_same(sec, want)
        assert not (np.isfinite(sec) & (sec > cutoff)).any()


# ------------------------------------------------------------------ synthetic one-way graphs
@pytest.mark.parametrize("seed", range(4))
def test_one_way_heavy_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = toy_graph(400, rng, one_way=0.6)
    h = build_hierarchy(g, settle_limit=5, sim_limit=2)  # tiny limits: many shortcuts
    src, dst = random_nodes(g, 400, seed), random_nodes(g, 400, seed + 10)
    sec, _ = h.node_table(src, dst, batch=7)
    assert_same(sec, reference(g, src, dst))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(5, 60),
    seed=st.integers(0, 10_000),
    one_way=st.floats(0.0, 1.0),
    limit=st.integers(1, 50),
)
def test_property_equal_dijkstra_with_ties(n: int, seed: int, one_way: float, limit: int) -> None:
    """Integer travel times (many equal routes), any one-way share, any witness limit."""
    g = toy_graph(n, np.random.default_rng(seed), one_way=one_way, integer=True)
    h = build_hierarchy(g, settle_limit=limit, sim_limit=limit)
    nodes = np.arange(n)
    sec, _ = h.node_table(nodes, nodes, n_jobs=1, batch=3)
    assert_same(sec, reference(g, nodes, nodes))
    assert np.all(np.diag(sec) == 0)


def test_bad_input_is_named() -> None:
    g = toy_graph(20, np.random.default_rng(0), one_way=0.2)
    h = build_hierarchy(g)
    with pytest.raises(ValueError, match="sources must be node indices"):
        h.node_table(np.array([25]), np.array([0]))
    with pytest.raises(ValueError, match="n_jobs"):
        h.node_table(np.array([1]), np.array([0]), n_jobs=0)
    with pytest.raises(ValueError, match="settle_limit"):
        build_hierarchy(g, settle_limit=0)
    empty, _ = h.node_table(np.array([], np.int64), np.array([0, 1]))
    assert empty.shape == (0, 2)


# ------------------------------------------------------------------ snapped points
def test_points_matrix_equals_dijkstra_engine(andorra: CompiledGraph) -> None:
    rng = np.random.default_rng(7)
    nodes = rng.choice(andorra.n_nodes, 60)
    base = np.column_stack([andorra.lon[nodes], andorra.lat[nodes]])
    # several points per road piece (same-arc trips), duplicates, one far point
    pts = np.vstack([base + rng.normal(0, 2e-4, base.shape) for _ in range(3)] + [base[:3]])
    pts = np.vstack([pts, [[1.2, 42.3]]])
    o = snap_points(andorra, pts[:, 0], pts[:, 1])
    d = snap_points(andorra, pts[::2, 0], pts[::2, 1])
    for kw in (
        {},
        {"cutoff": 300.0},
        {"distances": True},
        {"far": "exclude", "distances": True, "cutoff": 900.0},
    ):
        want = drive_time_matrix(andorra, o, d, engine="scipy", **kw)
        got = drive_time_matrix(andorra, o, d, engine="ch", **kw)
        assert_same(got.seconds, want.seconds)
        if want.metres is not None:
            assert got.metres is not None
            fin = np.isfinite(want.metres)
            np.testing.assert_allclose(got.metres[fin], want.metres[fin], rtol=1e-4, atol=0.5)


# ------------------------------------------------------------------ cache and engine choice
def test_hierarchy_round_trips_through_the_cache(andorra: CompiledGraph, tmp_path) -> None:
    store = Store(tmp_path / "c")
    built, hit = cached_hierarchy(andorra, store=store)
    assert not hit
    forget_hierarchies()
    again, hit = cached_hierarchy(andorra, store=store)
    assert hit and again is not built
    for name, arr in built.arrays().items():
        np.testing.assert_array_equal(getattr(again, name), arr, err_msg=name)
    assert again.meta["graph_key"] == built.meta["graph_key"]
    # the reloaded hierarchy answers the same
    src, dst = random_nodes(andorra, 50, 1), random_nodes(andorra, 50, 2)
    np.testing.assert_array_equal(again.node_table(src, dst)[0], built.node_table(src, dst)[0])
    # from memory next time (same object)
    assert cached_hierarchy(andorra, store=store)[0] is again
    rebuilt = Hierarchy.from_arrays(again.arrays(), again.meta)
    assert rebuilt.n_nodes == andorra.n_nodes


def test_auto_engine_choice(andorra: CompiledGraph) -> None:
    assert not hierarchy_available(andorra)
    few = choose_engine(andorra, "auto", 10)
    assert few.name == "scipy-dijkstra" and "10 searches" in few.reason
    with roadnet.settings.override(ch_min_searches=5):
        big = choose_engine(andorra, None, 10)
    assert big.name == "ch" and "built" in big.reason
    assert hierarchy_available(andorra)
    forget_hierarchies()  # still in the cache
    assert choose_engine(andorra, "auto", 1).name == "ch"
    assert choose_engine(andorra, "scipy", 10_000).name == "scipy-dijkstra"
    with pytest.raises(ValueError, match="engine must be"):
        choose_engine(andorra, "fast", 1)
    with pytest.raises(SettingsError, match="engine"):
        roadnet.settings.engine = "fast"


def test_cached_matrix_and_precompute_on_the_hierarchy(andorra: CompiledGraph) -> None:
    rng = np.random.default_rng(3)
    nodes = rng.choice(andorra.n_nodes, 90, replace=False)
    pts = snap_points(andorra, andorra.lon[nodes], andorra.lat[nodes])
    want = drive_time_matrix(andorra, pts, engine="scipy")
    m, rep = cached_drive_time_matrix(andorra, pts, engine="ch")
    assert rep.engine is not None and rep.engine.startswith("engine ch")
    assert_same(m.seconds, want.seconds)
    # more points: only the new rows/columns, on the hierarchy
    more = snap_points(andorra, andorra.lon[np.r_[nodes, 5, 6]], andorra.lat[np.r_[nodes, 5, 6]])
    m2, rep2 = cached_drive_time_matrix(andorra, more, engine="auto")
    assert rep2.status == "partial" and "hierarchy available" in (rep2.engine or "")
    assert_same(m2.seconds, drive_time_matrix(andorra, more, engine="scipy").seconds)
    # precompute in blocks grouped into hierarchy tasks
    seen: list[EngineChoice] = []
    _key, done, total = precompute_matrix(
        andorra, pts, block_rows=16, engine="ch", on_engine=seen.append, cutoff=600.0
    )
    assert done == total == 6 and seen[0].name == "ch"
    m3, rep3 = cached_drive_time_matrix(andorra, pts, cutoff=600.0)
    assert rep3.status == "hit"
    cut = want.seconds.copy()
    cut[cut > 600] = np.inf
    assert_same(m3.seconds, cut)


# ------------------------------------------------------------------ command line
def test_cli_matrix_engines_agree(tmp_path) -> None:
    from typer.testing import CliRunner

    from roadnet.matrix_io import read_matrix
    from territory.cli import app
    from tests.support import shared_file

    areas = shared_file("areas", "malta_councils.gpkg")
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    runner = CliRunner()
    results = {}
    for engine in ("scipy", "ch"):
        out = tmp_path / f"{engine}.npz"
        res = runner.invoke(
            app,
            ["matrix", str(areas), "--pbf", str(pbf), "--out", str(out), "--engine", engine,
             "--no-cache", "--distances"],
            catch_exceptions=False,
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert f"engine {'ch' if engine == 'ch' else 'scipy-dijkstra'} (requested" in res.stderr
        results[engine] = read_matrix(out)
    assert_same(results["ch"]["seconds"], results["scipy"]["seconds"])
    assert np.isinf(results["ch"]["seconds"]).any()  # Gozo


@pytest.mark.parametrize("one_way", [0.15, 0.6])
def test_synthetic_road_graph_with_one_ways(one_way: float) -> None:
    from roadnet.synthetic import random_points, synthetic_road_graph

    g = synthetic_road_graph(6000, seed=3, one_way_share=one_way)
    h = build_hierarchy(g)
    src, dst = random_nodes(g, 500, 1), random_nodes(g, 600, 2)
    assert_same(h.node_table(src, dst)[0], reference(g, src, dst))
    pts = random_points(g, 80, seed=4)
    want = drive_time_matrix(g, pts, engine="scipy", distances=True)
    got = drive_time_matrix(g, want.origins, engine="ch", distances=True)
    assert_same(got.seconds, want.seconds)
