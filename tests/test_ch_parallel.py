"""Parallel contraction (rounds of independent priority minima): exact tables, deterministic
whatever the thread count, and the sequential build still available."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadnet import ch_contract
from roadnet.ch import build_hierarchy
from roadnet.graph import CompiledGraph
from roadnet.synthetic import synthetic_road_graph
from tests.support.toy_graphs import assert_same, random_nodes, reference, toy_graph


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_parallel_build_equals_dijkstra_on_one_way_graphs(seed: int, n_jobs: int) -> None:
    g = toy_graph(500, np.random.default_rng(seed), one_way=0.6)
    h = build_hierarchy(g, settle_limit=5, sim_limit=2, n_jobs=n_jobs)
    assert h.meta["parallel"] and h.meta["rounds"] >= 2
    src, dst = random_nodes(g, 500, seed), random_nodes(g, 500, seed + 7)
    sec, _ = h.node_table(src, dst)
    assert_same(sec, reference(g, src, dst))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 60),
    seed=st.integers(0, 10_000),
    one_way=st.floats(0.0, 1.0),
    limit=st.integers(1, 40),
    sim_hops=st.sampled_from([0, 2, 3]),
)
def test_parallel_build_property_with_ties(
    n: int, seed: int, one_way: float, limit: int, sim_hops: int
) -> None:
    """Integer times (many equal routes, equal priorities), any one-way share, limit and
    way of estimating priorities."""
    g = toy_graph(n, np.random.default_rng(seed), one_way=one_way, integer=True)
    h = build_hierarchy(g, settle_limit=limit, sim_limit=limit, n_jobs=2, sim_hops=sim_hops)
    nodes = np.arange(n)
    sec, _ = h.node_table(nodes, nodes, n_jobs=1)
    assert_same(sec, reference(g, nodes, nodes))


def test_parallel_build_is_the_same_with_any_thread_count() -> None:
    g = synthetic_road_graph(20_000, seed=3)
    one = build_hierarchy(g, n_jobs=1)
    two = build_hierarchy(g, n_jobs=2)
    for name, arr in one.arrays().items():
        assert np.array_equal(arr, two.arrays()[name]), name
    src, dst = random_nodes(g, 200, 1), random_nodes(g, 300, 2)
    sec, met = two.node_table(src, dst, distances=True)
    assert_same(sec, reference(g, src, dst))
    assert met is not None and np.isfinite(met[np.isfinite(sec)]).all()


@pytest.mark.parametrize("sim_hops", [0, 2])
def test_priorities_by_settle_limited_or_two_hop_searches_give_exact_tables(
    malta: CompiledGraph, sim_hops: int
) -> None:
    h = build_hierarchy(malta, sim_hops=sim_hops)
    assert h.meta["sim_hops"] == sim_hops
    src, dst = random_nodes(malta, 100, 6), random_nodes(malta, 300, 7)
    sec, _ = h.node_table(src, dst)
    assert_same(sec, reference(malta, src, dst))


def test_full_arc_pools_are_compacted_without_changing_the_hierarchy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pools with no room beyond the initial blocks: every moved block forces a compaction,
    which keeps each block's order, so the build makes the same choices."""
    g = toy_graph(400, np.random.default_rng(11), one_way=0.4)
    roomy = build_hierarchy(g, settle_limit=5, sim_limit=2, n_jobs=2)
    calls = []
    compact = ch_contract._compact

    def counting(*args: object) -> object:
        calls.append(1)
        return compact(*args)

    monkeypatch.setattr(ch_contract, "_POOL_FACTOR", 1)
    monkeypatch.setattr(ch_contract, "_POOL_EXTRA", 0)
    monkeypatch.setattr(ch_contract, "_compact", counting)
    tight = build_hierarchy(g, settle_limit=5, sim_limit=2, n_jobs=2)
    assert len(calls) >= 2
    for name, arr in roomy.arrays().items():
        assert np.array_equal(arr, tight.arrays()[name]), name
    nodes = random_nodes(g, 200, 3)
    sec, _ = tight.node_table(nodes, nodes)
    assert_same(sec, reference(g, nodes, nodes))


def test_sequential_build_is_still_exact(malta: CompiledGraph) -> None:
    h = build_hierarchy(malta, parallel=False)
    assert not h.meta["parallel"] and h.meta["rounds"] == 0
    src, dst = random_nodes(malta, 100, 4), random_nodes(malta, 300, 5)
    sec, _ = h.node_table(src, dst)
    assert_same(sec, reference(malta, src, dst))


def test_bad_hop_limit_is_named() -> None:
    g = toy_graph(30, np.random.default_rng(0), one_way=0.2)
    with pytest.raises(ValueError, match=r"sim_hops must be 0, 2 or 3, got 4"):
        build_hierarchy(g, sim_hops=4)


def test_bad_thread_count_is_named() -> None:
    g = toy_graph(30, np.random.default_rng(0), one_way=0.2)
    with pytest.raises(
        ValueError, match=r"n_jobs must be -1 \(all cores\) or a number of workers >= 1, got 0"
    ):
        build_hierarchy(g, n_jobs=0)
