"""The bucket-based many-to-many query answers as RPHAST and Dijkstra do."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadnet import ch_bucket
from roadnet.ch import Hierarchy, build_hierarchy
from roadnet.ch_bucket import bucket_node_table, bucket_table
from roadnet.graph import CompiledGraph
from tests.support.toy_graphs import (
    assert_same,
    point_entries,
    random_nodes,
    reference,
    toy_graph,
    virtual_reference,
)


@pytest.fixture(scope="module")
def h_andorra(andorra: CompiledGraph) -> Hierarchy:
    return build_hierarchy(andorra)


@pytest.fixture(scope="module")
def h_malta(malta: CompiledGraph) -> Hierarchy:
    return build_hierarchy(malta)


# ------------------------------------------------------------------ real graphs
@pytest.mark.parametrize("name", ["andorra", "malta"])
def test_node_table_equals_rphast_and_dijkstra(name: str, request: pytest.FixtureRequest) -> None:
    g: CompiledGraph = request.getfixturevalue(name)
    h: Hierarchy = request.getfixturevalue(f"h_{name}")
    src, dst = random_nodes(g, 250, 1), random_nodes(g, 300, 2)
    want = reference(g, src, dst)
    if name == "malta":  # Malta and Gozo: the ferry is not a road
        assert np.isinf(want).any()
    for s, t in ((src, dst), (src, dst[:7]), (src[:5], dst)):  # targets / sources bucketed
        sec, met = bucket_node_table(h, s, t)
        assert met is None and sec.dtype == np.float32 and sec.shape == (s.size, t.size)
        assert_same(sec, want[np.isin(src, s)][:, np.isin(dst, t)])
        assert_same(sec, h.node_table(s, t)[0])
    # without stall-on-demand, on one thread: the same
    assert_same(bucket_node_table(h, src, dst, stall=False, n_jobs=1)[0], want)


def test_cutoff(malta: CompiledGraph, h_malta: Hierarchy) -> None:
    src, dst = random_nodes(malta, 150, 5), random_nodes(malta, 160, 6)
    for cutoff in (0.0, 60.0, 600.0, 1800.0):
        want = reference(malta, src, dst, limit=cutoff)
        want[want > cutoff] = np.inf
        for s, t in ((src, dst), (src[:9], dst)):
            sec, _ = bucket_node_table(h_malta, s, t, cutoff=cutoff)
            assert_same(sec, want[: s.size])
            assert not (np.isfinite(sec) & (sec > cutoff)).any()
            assert_same(sec, h_malta.node_table(s, t, cutoff=cutoff)[0])


def test_metres_equal_rphast(andorra: CompiledGraph, h_andorra: Hierarchy) -> None:
    src, dst = random_nodes(andorra, 120, 3), random_nodes(andorra, 140, 4)
    for s, t in ((src, dst), (src[:6], dst), (src, dst[:6])):
        sec, met = bucket_node_table(h_andorra, s, t, distances=True, cutoff=1200.0)
        r_sec, r_met = h_andorra.node_table(s, t, distances=True, cutoff=1200.0)
        assert met is not None and r_met is not None and met.dtype == np.float32
        assert_same(sec, r_sec)
        assert np.array_equal(np.isinf(met), np.isinf(sec))
        fin = np.isfinite(sec)
        np.testing.assert_allclose(met[fin], r_met[fin], rtol=1e-4, atol=0.5)
        assert (met[fin] > 0).mean() > 0.9


@pytest.mark.parametrize("name", ["andorra", "malta"])
def test_snapped_points_with_twopoint_entries(name: str, request: pytest.FixtureRequest) -> None:
    g: CompiledGraph = request.getfixturevalue(name)
    h: Hierarchy = request.getfixturevalue(f"h_{name}")
    rng = np.random.default_rng(11)
    s = point_entries(g, 90, rng)
    t = point_entries(g, 70, rng)
    want = virtual_reference(g, s, t)
    assert np.isinf(want[:3]).all() and np.isinf(want[:, :3]).all()
    for kw in ({}, {"cutoff": 400.0}, {"distances": True}):
        for a, b, ref in ((s, t, want), (s, tuple(x[:4] for x in t), want[:, :4])):
            sec, met = bucket_table(h, *a, *b, **kw)
            r_sec, r_met = h.table(*a, *b, **kw)
            cut = ref.copy()
            if "cutoff" in kw:
                cut[cut > kw["cutoff"]] = np.inf
            assert_same(sec, cut)
            assert_same(sec, r_sec)
            if kw.get("distances"):
                assert met is not None and r_met is not None
                fin = np.isfinite(sec)
                np.testing.assert_allclose(met[fin], r_met[fin], rtol=1e-4, atol=0.5)
            else:
                assert met is None


# ------------------------------------------------------------------ synthetic one-way graphs
@pytest.mark.parametrize("seed", range(4))
def test_one_way_heavy_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = toy_graph(400, rng, one_way=0.6)
    h = build_hierarchy(g, settle_limit=5, sim_limit=2)  # tiny limits: many shortcuts
    src, dst = random_nodes(g, 300, seed), random_nodes(g, 350, seed + 10)
    want = reference(g, src, dst)
    for stall in (True, False):
        assert_same(bucket_node_table(h, src, dst, stall=stall)[0], want)
        assert_same(bucket_node_table(h, src[:3], dst, stall=stall)[0], want[:3])
    s = point_entries(g, 40, rng)
    t = point_entries(g, 50, rng)
    sec, met = bucket_table(h, *s, *t, distances=True)
    assert_same(sec, virtual_reference(g, s, t))
    _, r_met = h.table(*s, *t, distances=True)
    assert met is not None and r_met is not None
    fin = np.isfinite(sec)
    np.testing.assert_allclose(met[fin], r_met[fin], rtol=1e-4, atol=0.5)


@settings(max_examples=30, deadline=None)
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
    want = reference(g, nodes, nodes)
    sec, _ = bucket_node_table(h, nodes, nodes, n_jobs=1)
    assert_same(sec, want)
    assert np.all(np.diag(sec) == 0)
    assert_same(bucket_node_table(h, nodes[:2], nodes, stall=False)[0], want[:2])


# ------------------------------------------------------------------ edges of the API
def test_refill_when_the_size_estimate_is_short(
    malta: CompiledGraph, h_malta: Hierarchy, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    src, dst = random_nodes(malta, 60, 7), random_nodes(malta, 50, 8)
    monkeypatch.setattr(ch_bucket, "_count_spaces", lambda *a: np.zeros(1, np.int64))
    with caplog.at_level(logging.DEBUG, logger="roadnet.ch_bucket"):
        sec, met = bucket_node_table(h_malta, src, dst, distances=True)
    assert "refilled" in caplog.text
    r_sec, r_met = h_malta.node_table(src, dst, distances=True)
    assert_same(sec, r_sec)
    assert met is not None and r_met is not None
    fin = np.isfinite(sec)
    np.testing.assert_allclose(met[fin], r_met[fin], rtol=1e-4, atol=0.5)


@pytest.mark.parametrize(("share", "cells"), [(2.0, 1 << 24), (0.0, 1 << 24), (0.0, 2000)])
def test_dense_and_sparse_buckets(
    andorra: CompiledGraph,
    h_andorra: Hierarchy,
    monkeypatch: pytest.MonkeyPatch,
    share: float,
    cells: int,
) -> None:
    """All buckets sparse, every bucket of 2+ entries dense, or dense ones capped in number."""
    monkeypatch.setattr(ch_bucket, "_DENSE_SHARE", share)
    monkeypatch.setattr(ch_bucket, "_DENSE_CELLS", cells)
    src, dst = random_nodes(andorra, 80, 9), random_nodes(andorra, 90, 10)
    for s, t in ((src, dst), (src[:4], dst)):
        sec, met = bucket_node_table(h_andorra, s, t, distances=True)
        r_sec, r_met = h_andorra.node_table(s, t, distances=True)
        assert_same(sec, r_sec)
        assert met is not None and r_met is not None
        fin = np.isfinite(sec)
        np.testing.assert_allclose(met[fin], r_met[fin], rtol=1e-4, atol=0.5)
        assert_same(
            bucket_node_table(h_andorra, s, t, cutoff=300.0)[0],
            h_andorra.node_table(s, t, cutoff=300.0)[0],
        )


def test_bad_input_is_named() -> None:
    g = toy_graph(20, np.random.default_rng(0), one_way=0.2)
    h = build_hierarchy(g)
    with pytest.raises(ValueError, match="sources must be node indices"):
        bucket_node_table(h, np.array([25]), np.array([0]))
    with pytest.raises(ValueError, match="targets must be node indices"):
        bucket_node_table(h, np.array([1]), np.array([[0]]))
    with pytest.raises(ValueError, match="n_jobs"):
        bucket_node_table(h, np.array([1]), np.array([0]), n_jobs=0)
    node = np.array([[0, 1]])
    off = np.zeros((1, 2))
    with pytest.raises(ValueError, match="s_node must be a 2-d array"):
        bucket_table(h, np.array([0]), off, off, node, off, off)
    with pytest.raises(ValueError, match="t_seconds must have the shape"):
        bucket_table(h, node, off, off, node, np.zeros((1, 3)), off)
    with pytest.raises(ValueError, match=r"t_node must be graph nodes in \[0, 20\)"):
        bucket_table(h, node, off, off, node + 19, off, off)
    empty, met = bucket_node_table(h, np.array([], np.int64), np.array([0, 1]), distances=True)
    assert empty.shape == (0, 2) and met is not None and met.shape == (0, 2)
    empty, met = bucket_node_table(h, np.array([0, 1]), np.array([], np.int64))
    assert empty.shape == (2, 0) and met is None
