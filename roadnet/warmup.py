"""Load (or, the first time, compile) the routing kernels before real work starts.

The hierarchy and matrix kernels are numba functions compiled once per installation and
cached on disk (``cache=True``); the first call in a fresh environment compiles them, which
takes tens of seconds. :func:`warm_kernels` runs them once on a tiny synthetic graph so that a
caller can show that step with its own label instead of a progress bar that seems stuck.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from roadnet.ch import build_hierarchy
from roadnet.engine import EngineChoice
from roadnet.matrix import drive_time_matrix
from roadnet.synthetic import synthetic_road_graph

__all__ = ["kernels_compiled", "warm_kernels"]

_KERNEL_MODULES = ("ch", "ch_bucket", "ch_kernels", "matrix")


def kernels_compiled() -> bool:
    """Whether numba's on-disk cache already holds the routing kernels (a cheap check)."""
    folder = Path(__file__).resolve().parent / "__pycache__"
    return all(any(folder.glob(f"{m}.*.nbi")) for m in _KERNEL_MODULES)


def warm_kernels() -> float:
    """Run every routing kernel once on a 200-node graph; returns the seconds it took."""
    t0 = time.perf_counter()
    g = synthetic_road_graph(200, seed=0)
    h = build_hierarchy(g)
    pts = np.column_stack([g.lon[:4], g.lat[:4]])
    drive_time_matrix(g, pts, engine=EngineChoice("ch", "warm-up", h), n_jobs=1, distances=True)
    drive_time_matrix(g, pts, engine=EngineChoice("scipy-dijkstra", "warm-up"), n_jobs=1)
    node = np.arange(4, dtype=np.int64)[:, None]
    zero = np.zeros((4, 1))
    h.table(node, zero, zero, node, zero, zero, method="bucket", distances=True)
    return time.perf_counter() - t0
