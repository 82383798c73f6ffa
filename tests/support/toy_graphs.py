"""Toy road graphs and a Dijkstra reference for the routing-engine tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from roadnet.graph import CompiledGraph

__all__ = [
    "Toy",
    "assert_same",
    "point_entries",
    "random_nodes",
    "reference",
    "toy_graph",
    "virtual_reference",
]


@dataclasses.dataclass
class Toy:
    """A bare CSR graph (a :class:`roadnet.ch.RoutingGraph`)."""

    indptr: np.ndarray
    indices: np.ndarray
    seconds: np.ndarray
    metres: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)


def toy_graph(n: int, rng: np.random.Generator, one_way: float, integer: bool = False) -> Toy:
    """Random planar-ish road graph: k-nearest links, a share of them one-way."""
    xy = rng.uniform(0, 10_000, (n, 2))
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :3]
    u = np.repeat(np.arange(n), 3)
    v = near.ravel()
    keep = u < v
    u, v = u[keep], v[keep]
    metres = d[u, v]
    speed = rng.choice([8.3, 13.9, 25.0], u.shape[0])
    sec = np.round(metres / speed / 10) * 10 + 10 if integer else metres / speed
    ow = rng.random(u.shape[0]) < one_way
    flip = rng.random(u.shape[0]) < 0.5
    a = np.where(flip, v, u)
    b = np.where(flip, u, v)
    tails = np.concatenate([a, b[~ow]])
    heads = np.concatenate([b, a[~ow]])
    w = np.concatenate([sec, sec[~ow]]).astype(np.float32)
    m = np.concatenate([metres, metres[~ow]]).astype(np.float32)
    order = np.lexsort((heads, tails))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(tails, minlength=n), out=indptr[1:])
    return Toy(indptr, heads[order].astype(np.int32), w[order], m[order])


def reference(g: Toy | CompiledGraph, src: np.ndarray, dst: np.ndarray, **kw: float) -> np.ndarray:
    """Drive seconds ``src x dst`` by scipy's Dijkstra (``kw`` passed on, e.g. ``limit``)."""
    csr = sp.csr_matrix(
        (g.seconds.astype(np.float64), g.indices, g.indptr), shape=(g.n_nodes, g.n_nodes)
    )
    out = dijkstra(csr, indices=src, **kw)[:, dst]
    return out.astype(np.float32)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    """The same unreachable pairs, and the same seconds elsewhere up to float32 rounding."""
    assert np.array_equal(np.isinf(got), np.isinf(want)), "unreachable pairs differ"
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5, atol=1e-3)


def random_nodes(g: Toy | CompiledGraph, k: int, seed: int) -> np.ndarray:
    """``k`` distinct random nodes of ``g`` (all of them when it has fewer)."""
    rng = np.random.default_rng(seed)
    return rng.choice(g.n_nodes, min(k, g.n_nodes), replace=False)


def point_entries(
    g: Toy | CompiledGraph, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Snapped-point style entries: two nodes each (or one, or none), positive offsets."""
    node = rng.integers(0, g.n_nodes, (k, 2))
    sec = rng.uniform(0.5, 90.0, (k, 2))
    met = rng.uniform(5.0, 900.0, (k, 2))
    one = rng.random(k) < 0.3
    node[one, 1] = -1
    node[:3] = -1  # points that reach no node at all
    node[3] = node[3, 0]  # the same node twice, two offsets
    sec[node < 0] = np.nan  # as the matrix code passes them
    met[node < 0] = np.nan
    return node, sec, met


def virtual_reference(
    g: Toy | CompiledGraph,
    s: tuple[np.ndarray, np.ndarray, np.ndarray],
    t: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Dijkstra with a virtual node per source (arcs to its entries) and per target."""
    n = g.n_nodes
    ns, nt = s[0].shape[0], t[0].shape[0]
    tails = [np.repeat(np.arange(n), np.diff(g.indptr))]
    heads = [np.asarray(g.indices, np.int64)]
    w = [np.asarray(g.seconds, np.float64)]
    ok = s[0] >= 0
    tails.append(n + np.nonzero(ok)[0])
    heads.append(s[0][ok])
    w.append(s[1][ok])
    ok = t[0] >= 0
    tails.append(t[0][ok])
    heads.append(n + ns + np.nonzero(ok)[0])
    w.append(t[1][ok])
    size = n + ns + nt
    u, v, ww = np.concatenate(tails), np.concatenate(heads), np.concatenate(w)
    # the minimum over parallel arcs (a COO -> CSR conversion would sum them)
    order = np.lexsort((ww, v, u))
    u, v, ww = u[order], v[order], ww[order]
    first = np.ones(u.shape[0], bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    csr = sp.csr_matrix((ww[first], (u[first], v[first])), shape=(size, size))
    out = dijkstra(csr, indices=n + np.arange(ns))[:, n + ns :]
    return out.astype(np.float32)
