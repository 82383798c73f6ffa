"""The lean graph build: ``import roadnet`` and a PBF build load no pandas/geopandas/networkx,
and the memory-saving kernels of ``compile_arcs`` (twins, routing CSR, chain sums, factorize)
give exactly what the plain array versions they replace give."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import roadnet
from roadnet import build
from roadnet.graph import csr_keep_min
from roadnet.speed import _factorize
from tests.support import ROOT, shared_file


def test_pbf_build_process_loads_no_pandas_geopandas_or_networkx() -> None:
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    code = (
        "import sys, roadnet\n"
        f"g = roadnet.graph_from_pbf({str(pbf)!r}, reader='osmium')\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'geopandas', 'networkx', 'pyarrow', 'osmnx'})\n"
        "print(g.n_nodes, heavy)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=1)
    assert int(out[0]) > 10_000
    assert out[1].strip() == "[]"


def test_package_names_load_on_first_use() -> None:
    assert roadnet.graph_from_pbf.__module__ == "roadnet.sources"
    assert roadnet.drive_time_matrix.__module__ == "roadnet.matrix"
    assert roadnet.ch.__name__ == "roadnet.ch"  # a submodule, as before
    assert "graph_from_pbf" in dir(roadnet)
    assert isinstance(roadnet.settings, roadnet.Settings)  # the object, not the module
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = roadnet.no_such_name


def test_default_node_index_builds_the_same_graph() -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    a = roadnet.graph_from_pbf(pbf, reader="osmium")
    b = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="sparse_mem_array")
    for name in ("node_ids", "lon", "lat", "indices", "seconds", "geom_x", "arc_twin"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _twins_by_sorting(
    u: np.ndarray,
    v: np.ndarray,
    metres: np.ndarray,
    gptr: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
) -> np.ndarray:
    """The plain version: sort the arcs by the whole class, then pair in one walk."""
    a = u.shape[0]
    fwd = u < v
    keys = [
        np.where(fwd, u, v),
        np.where(fwd, v, u),
        np.diff(gptr),
        np.rint(metres * 10),
        np.rint(np.where(fwd, gx[gptr[:-1] + 1], gx[gptr[1:] - 2]) * 100),
        np.rint(np.where(fwd, gy[gptr[:-1] + 1], gy[gptr[1:] - 2]) * 100),
    ]
    order = np.lexsort((np.arange(a), *reversed(keys)))
    order = order[u[order] != v[order]]
    twin = np.full(a, -1, np.int32)
    waiting: list[list[int]] = [[], []]
    prev = None
    for k in order.tolist():
        if prev is not None and any(c[k] != c[prev] for c in keys):
            waiting = [[], []]
        t = int(not fwd[k])
        if waiting[1 - t]:
            j = waiting[1 - t].pop()
            twin[k], twin[j] = j, k
        else:
            waiting[t].append(k)
        prev = k
    return twin


@pytest.mark.parametrize("seed", range(40))
def test_twins_match_the_sorting_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, a = int(rng.integers(1, 7)), int(rng.integers(1, 80))
    u = rng.integers(0, n, a).astype(np.int32)
    v = rng.integers(0, n, a).astype(np.int32)
    gptr = np.concatenate([[0], np.cumsum(rng.integers(2, 4, a))]).astype(np.int64)
    gx = rng.integers(0, 2, gptr[-1]) * 0.004 + rng.choice([0.0, 0.005, -0.005], gptr[-1])
    gy = rng.integers(0, 2, gptr[-1]) * 0.01
    metres = rng.integers(0, 3, a) * 0.04
    want = _twins_by_sorting(u, v, metres, gptr, gx, gy)
    got = build._find_twins(u, v, metres, gptr, gx, gy)
    assert got.dtype == np.int32
    assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(20))
def test_routing_csr_matches_csr_keep_min(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, a = int(rng.integers(1, 9)), int(rng.integers(1, 120))
    u = rng.integers(0, n, a).astype(np.int32)
    v = rng.integers(0, n, a).astype(np.int32)
    w = rng.integers(1, 4, a).astype(np.float64)  # many ties
    w[rng.random(a) < 0.05] = np.nan
    cand = np.flatnonzero(u != v)
    indptr, indices, _, _, chosen = csr_keep_min(
        n, u[cand].astype(np.int64), v[cand].astype(np.int64), w[cand]
    )
    got_ptr, got_idx, got_arc = build._routing_csr(n, u, v, w)
    assert np.array_equal(got_ptr, indptr)
    assert np.array_equal(got_idx, indices) and got_idx.dtype == np.int32
    assert np.array_equal(got_arc, cand[chosen]) and got_arc.dtype == np.int32


def test_chain_sums_in_blocks_match_reduceat() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 12, 5000)
    chain_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    chain_arcs = rng.permutation(chain_ptr[-1]).astype(np.int32)
    values = rng.random(chain_ptr[-1]) * 1e3
    want = np.add.reduceat(values[chain_arcs], chain_ptr[:-1])
    assert np.array_equal(build._chain_sums(values, chain_ptr, chain_arcs, block=97), want)


@pytest.mark.parametrize(
    "values",
    [
        ["b", None, "a", "b", "", "a", None],
        [None, None],
        ["x"],
        [],
        ["a", 1.5, "a", float("nan")],  # not all strings: pandas does it
    ],
)
def test_factorize_without_pandas_matches_pandas(values: list[object]) -> None:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    codes, uniques = _factorize(arr)
    want_codes, want_uniques = pd.factorize(arr, use_na_sentinel=True)
    assert codes.tolist() == want_codes.tolist()
    assert list(uniques) == list(want_uniques)


def test_large_allocations_are_mapped_on_glibc() -> None:
    mallopt = build._glibc_function("mallopt", (ctypes.c_int, ctypes.c_int))
    if not sys.platform.startswith("linux") or mallopt is None:
        pytest.skip("glibc only")
    assert build.map_large_allocations() is True
