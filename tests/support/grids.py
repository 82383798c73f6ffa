"""Grid test cases: square cells as a graph (optimizer tests) and as polygons (adjacency tests)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from optimizer import TerritoryProblem

__all__ = [
    "grid",
    "grid_adjacency",
    "grid_problem",
    "grid_xy",
    "grow_regions",
    "pairs",
    "reference_contiguous",
]


def grid_adjacency(r: int, c: int) -> sp.csr_matrix:
    """Rook adjacency of an ``r x c`` grid of squares (row-major cell numbers)."""
    idx = np.arange(r * c).reshape(r, c)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    g = sp.csr_matrix((np.ones(a.size, dtype=bool), (a, b)), shape=(r * c, r * c))
    return (g + g.T).tocsr()


def grid_xy(r: int, c: int) -> np.ndarray:
    """Cell centres ``(x, y)`` of an ``r x c`` grid, one unit apart (row-major)."""
    y, x = np.divmod(np.arange(r * c), c)
    return np.c_[x, y].astype(float)


def grow_regions(
    adj: sp.csr_matrix, p: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A deliberately poor contiguous start: regions grown at random from random seed areas
    (one area at a time, a random region each step). Returns ``(assignment, seeds)``."""
    n = adj.shape[0]
    seeds = rng.choice(n, p, replace=False)
    a = np.full(n, -1)
    a[seeds] = np.arange(p)
    frontier = [set(adj[s].indices.tolist()) for s in seeds]
    while (a < 0).any():
        open_regions = [t for t in range(p) if any(a[v] < 0 for v in frontier[t])]
        if not open_regions:  # areas no region can reach (islands): give them to region 0
            a[a < 0] = 0
            break
        t = open_regions[int(rng.integers(len(open_regions)))]
        cand = sorted(v for v in frontier[t] if a[v] < 0)
        v = cand[int(rng.integers(len(cand)))]
        a[v] = t
        frontier[t] |= set(adj[v].indices.tolist())
    return a, seeds


def reference_contiguous(adj: sp.csr_matrix, a: np.ndarray, p: int) -> bool:
    """Every territory is one connected component (scipy, territory by territory)."""
    for t in range(p):
        members = np.flatnonzero(a == t)
        if members.size and connected_components(adj[members][:, members], directed=False)[0] > 1:
            return False
    return True


def grid_problem(
    r: int, c: int, p: int, seed: int, m: int = 1, tol: float = 0.05
) -> tuple[TerritoryProblem, sp.csr_matrix]:
    """A territory problem on an ``r x c`` grid with random (gamma) weights, and its adjacency."""
    rng = np.random.default_rng(seed)
    w = rng.gamma(2.0, 50.0, size=(r * c, m))
    return TerritoryProblem.from_points(grid_xy(r, c), w, p, tolerance=tol), grid_adjacency(r, c)


def grid(nx: int, ny: int, side: float = 100.0, gap: float = 0.0) -> gpd.GeoDataFrame:
    """nx * ny squares in a metric CRS, row by row, ``gap`` metres apart."""
    boxes = [
        shapely.box(x * side, y * side, (x + 1) * side - gap, (y + 1) * side - gap)
        for y in range(ny)
        for x in range(nx)
    ]
    return gpd.GeoDataFrame({"cell": np.arange(nx * ny)}, geometry=boxes, crs="EPSG:32631")


def pairs(adj: sp.csr_matrix) -> set[tuple[int, int]]:
    """The neighbour pairs ``(i, j)``, ``i < j``, of a symmetric adjacency."""
    coo = sp.triu(adj, k=1).tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
