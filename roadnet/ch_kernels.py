"""Kernels shared by the contraction hierarchy's build and both of its query methods.

An indexed binary min-heap for numba (keys, nodes, and each node's slot, so that a key can be
decreased in place), the node priority and tie-breaker of both contraction builds
(:mod:`roadnet.ch`, :mod:`roadnet.ch_contract`), the thread count for ``n_jobs``, and the
arrays a hierarchy query reads (:class:`HierarchyArrays`), so that :mod:`roadnet.ch`,
:mod:`roadnet.ch_contract` and :mod:`roadnet.ch_bucket` build on this module and none on the
others (:mod:`roadnet.ch` calls :mod:`roadnet.ch_contract`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numba
import numpy as np

from roadnet.settings import check_n_jobs

__all__ = ["HierarchyArrays", "heap_pop", "heap_set", "node_priority", "resolve_threads", "tie"]


class HierarchyArrays(Protocol):
    """What a query reads of a contraction hierarchy (:class:`roadnet.ch.Hierarchy` is one)."""

    @property
    def n_nodes(self) -> int: ...

    @property
    def pos(self) -> np.ndarray: ...

    @property
    def up_indptr(self) -> np.ndarray: ...

    @property
    def up_indices(self) -> np.ndarray: ...

    @property
    def up_seconds(self) -> np.ndarray: ...

    @property
    def up_metres(self) -> np.ndarray: ...

    @property
    def down_indptr(self) -> np.ndarray: ...

    @property
    def down_indices(self) -> np.ndarray: ...

    @property
    def down_seconds(self) -> np.ndarray: ...

    @property
    def down_metres(self) -> np.ndarray: ...


# ------------------------------------------------------------------------- indexed heap
@numba.njit(cache=True, inline="always")
def _sift_up(hk: Any, hv: Any, hpos: Any, i: int) -> None:  # pragma: no cover - compiled
    key = hk[i]
    node = hv[i]
    while i > 0:
        parent = (i - 1) >> 1
        if hk[parent] <= key:
            break
        hk[i] = hk[parent]
        hv[i] = hv[parent]
        hpos[hv[i]] = i
        i = parent
    hk[i] = key
    hv[i] = node
    hpos[node] = i


@numba.njit(cache=True, inline="always")
def _sift_down(hk: Any, hv: Any, hpos: Any, i: int, size: int) -> None:  # pragma: no cover
    key = hk[i]
    node = hv[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and hk[c + 1] < hk[c]:
            c += 1
        if hk[c] >= key:
            break
        hk[i] = hk[c]
        hv[i] = hv[c]
        hpos[hv[i]] = i
        i = c
    hk[i] = key
    hv[i] = node
    hpos[node] = i


@numba.njit(cache=True)
def heap_set(hk: Any, hv: Any, hpos: Any, size: int, node: int, key: float) -> int:
    """Insert ``node`` or change its key (up or down); returns the new size."""
    i = hpos[node]
    if i < 0:
        hk[size] = key
        hv[size] = node
        hpos[node] = size
        _sift_up(hk, hv, hpos, size)
        return size + 1
    old = hk[i]
    hk[i] = key
    if key < old:
        _sift_up(hk, hv, hpos, i)
    else:
        _sift_down(hk, hv, hpos, i, size)
    return size


@numba.njit(cache=True)
def heap_pop(hk: Any, hv: Any, hpos: Any, size: int) -> tuple[int, float, int]:
    """Remove the minimum: ``(node, key, new size)``."""
    node = hv[0]
    key = hk[0]
    hpos[node] = -1
    size -= 1
    if size > 0:
        hk[0] = hk[size]
        hv[0] = hv[size]
        hpos[hv[0]] = 0
        _sift_down(hk, hv, hpos, 0, size)
    return node, key, size


@numba.njit(cache=True)
def node_priority(added: int, added_h: int, removed: int, removed_h: int, level: int) -> float:
    """OSRM's node priority: 2 x edge quotient + original-edge quotient + depth."""
    return 2.0 * added / max(removed, 1) + added_h / max(removed_h, 1) + level


@numba.njit(cache=True, inline="always")
def tie(v: int) -> int:  # pragma: no cover - compiled
    """A fixed pseudo-random tie-breaker (Knuth's multiplicative hash), so that equal
    priorities do not favour low node numbers (one corner of the map)."""
    return (v * 2654435761) & 0xFFFFFFFF


def resolve_threads(n_jobs: int | None) -> int:
    """Numba threads for ``n_jobs`` (-1 or ``None``: all; ``>= 1``: at most that many)."""
    cpus = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    n_jobs = check_n_jobs(n_jobs)
    if n_jobs is None or n_jobs < 0:
        return int(cpus)
    return int(min(n_jobs, cpus))
