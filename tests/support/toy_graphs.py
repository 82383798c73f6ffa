"""Toy road graphs and a Dijkstra reference for the routing-engine tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from roadnet.graph import CompiledGraph

__all__ = ["Toy", "assert_same", "random_nodes", "reference", "toy_graph"]


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
