"""Small tables of seconds by the heap-free sweeps equal the Dijkstra-based RPHAST bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadnet import ch, ch_sweep
from roadnet.ch import Hierarchy, build_hierarchy
from roadnet.ch_sweep import Workspace, sweep_table, workspace
from roadnet.exceptions import InvalidArgumentError
from roadnet.graph import CompiledGraph
from tests.support.toy_graphs import assert_same, point_entries, toy_graph, virtual_reference


@pytest.fixture(scope="module")
def h_andorra(andorra: CompiledGraph) -> Hierarchy:
    return build_hierarchy(andorra)


@pytest.fixture(scope="module")
def h_malta(malta: CompiledGraph) -> Hierarchy:
    return build_hierarchy(malta)


def _dijkstra_rphast(
    h: Hierarchy, s: tuple[np.ndarray, ...], t: tuple[np.ndarray, ...], cutoff: float | None
) -> np.ndarray:
    """The table by the per-source Dijkstra and downward sweep of :mod:`roadnet.ch`."""
    saved = ch.SWEEP_MAX_CELLS
    ch.SWEEP_MAX_CELLS = -1  # every table to the Dijkstra-based kernel
    try:
        sec, _ = h.table(*s, *t, cutoff=cutoff, method="rphast", n_jobs=1)
    finally:
        ch.SWEEP_MAX_CELLS = saved
    return sec


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    assert np.array_equal(a.view(np.int32), b.view(np.int32))


@pytest.mark.parametrize("name", ["andorra", "malta"])
def test_equals_dijkstra_rphast_bit_for_bit(name: str, request: pytest.FixtureRequest) -> None:
    g: CompiledGraph = request.getfixturevalue(name)
    h: Hierarchy = request.getfixturevalue(f"h_{name}")
    rng = np.random.default_rng(3)
    # square, many sources (backward sweep), many targets (forward), single rows and columns
    for ns, nt in ((40, 40), (150, 6), (6, 150), (1, 90), (90, 1), (120, 100)):
        # the last rows: a one-point side is a point with a node
        s = tuple(x[-ns:] for x in point_entries(g, max(ns, 8), rng))
        t = tuple(x[-nt:] for x in point_entries(g, max(nt, 8), rng))
        want = virtual_reference(g, s, t)
        for cutoff in (None, 120.0, 900.0):
            got = sweep_table(h, s[0], s[1], t[0], t[1], np.inf if cutoff is None else cutoff)
            _same_bits(got, _dijkstra_rphast(h, s, t, cutoff))
            cut = want.copy()
            if cutoff is not None:
                cut[cut > cutoff] = np.inf
                assert not (np.isfinite(got) & (got > cutoff)).any()
            assert_same(got, cut)
    if name == "malta":  # Malta and Gozo: some pairs have no road route
        assert np.isinf(want).any()


def test_table_of_seconds_takes_the_sweeps(
    andorra: CompiledGraph, h_andorra: Hierarchy, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []

    def counting(h: Hierarchy, s_node: np.ndarray, *args: object) -> np.ndarray:
        calls.append((s_node.shape[0], h.n_nodes))
        return sweep_table(h, s_node, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ch, "sweep_table", counting)
    rng = np.random.default_rng(4)
    s, t = point_entries(andorra, 30, rng), point_entries(andorra, 20, rng)
    sec, met = h_andorra.table(*s, *t)
    assert met is None and calls == [(30, h_andorra.n_nodes)]
    sec_m, met_m = h_andorra.table(*s, *t, distances=True)  # metres: the Dijkstra kernel
    assert met_m is not None and len(calls) == 1
    _same_bits(sec, sec_m)


def test_workspace_left_clean_and_one_per_thread(malta: CompiledGraph, h_malta: Hierarchy) -> None:
    rng = np.random.default_rng(5)
    s, t = point_entries(malta, 60, rng), point_entries(malta, 50, rng)
    want = _dijkstra_rphast(h_malta, s, t, 300.0)
    with workspace(h_malta.n_nodes) as ws:
        for _ in range(3):  # the same scratch arrays, reused
            got = ch_sweep._sweep_table(
                h_malta.pos, h_malta.up_indptr, h_malta.up_indices, h_malta.up_seconds,
                h_malta.down_indptr, h_malta.down_indices, h_malta.down_seconds,
                s[0], s[1], t[0], t[1], 300.0, 32,
                ws.seen, ws.local_s, ws.local_t, ws.stack, ws.sel_s, ws.sel_t,
            )  # fmt: skip
            _same_bits(got, want)
            assert (ws.local_s == -1).all() and (ws.local_t == -1).all() and not ws.seen.any()
    # threads at once each get their own workspace, and the same answers
    barrier = threading.Barrier(3)
    held: list[Workspace] = []
    results: list[np.ndarray] = []

    def run() -> None:
        with workspace(h_malta.n_nodes) as ws:
            held.append(ws)
            barrier.wait(timeout=30)  # all three hold one at the same time
            results.append(sweep_table(h_malta, s[0], s[1], t[0], t[1], 300.0))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len({id(ws) for ws in held}) == 3 and len(results) == 3
    for r in results:
        _same_bits(r, want)


def test_empty_sides(h_andorra: Hierarchy) -> None:
    none = np.zeros((0, 2), np.int64), np.zeros((0, 2))
    one = np.array([[0, -1]]), np.array([[1.0, np.nan]])
    assert sweep_table(h_andorra, *none, *one, np.inf).shape == (0, 1)
    assert sweep_table(h_andorra, *one, *none, np.inf).shape == (1, 0)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(4, 60),
    one_way=st.floats(0.0, 0.6),
    seed=st.integers(0, 10_000),
    cutoff=st.sampled_from([None, 50.0, 400.0]),
)
def test_random_graphs(n: int, one_way: float, seed: int, cutoff: float | None) -> None:
    rng = np.random.default_rng(seed)
    g = toy_graph(n, rng, one_way, integer=bool(seed % 2))  # integer seconds: many ties
    h = build_hierarchy(g, parallel=False)
    s, t = (
        point_entries(g, int(rng.integers(4, 30)), rng),
        point_entries(g, int(rng.integers(4, 30)), rng),
    )
    got = sweep_table(h, s[0], s[1], t[0], t[1], np.inf if cutoff is None else cutoff)
    _same_bits(got, _dijkstra_rphast(h, s, t, cutoff))
    want = virtual_reference(g, s, t)
    if cutoff is not None:
        want[want > cutoff] = np.inf
    assert_same(got, want)


def test_table_refuses_node_ids_outside_the_graph(h_andorra: Hierarchy) -> None:
    """An out-of-range entry node is a typed error, never a read outside the arrays."""
    g = h_andorra
    n = g.n_nodes
    ok = np.array([[0, -1]], np.int64)
    zeros = np.zeros((1, 2))
    for bad in ([[n, -1]], [[-2, 0]]):
        with pytest.raises(InvalidArgumentError, match="outside"):
            g.table(np.array(bad, np.int64), zeros, zeros, ok, zeros, zeros)
        with pytest.raises(InvalidArgumentError, match="outside"):
            g.table(ok, zeros, zeros, np.array(bad, np.int64), zeros, zeros)
    with pytest.raises(InvalidArgumentError, match="2-d"):
        g.table(np.array([0], np.int64), zeros, zeros, ok, zeros, zeros)
