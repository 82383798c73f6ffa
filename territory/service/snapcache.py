"""A bounded LRU of snapped points, by their exact input coordinates (one per served region).

Snapping is a large share of a table request's CPU (a nearest-segment query per point: about
20 µs each on Porto, 2 ms of a 100 x 100 table), and the clients of a routing service send the
same places again and again (depots, customers, stops). A point's snap depends on its own
coordinates only (:func:`roadnet.snap.snap_points` treats every point on its own), so a cached
row is exactly what snapping the point again gives: the cache changes no answer.

The rows live in preallocated column arrays of ``capacity`` points (about 130 bytes each), so
the memory is bounded; the least recently used point is evicted first.
"""

from __future__ import annotations

import collections
import dataclasses
import threading

import numpy as np

from roadnet.exceptions import RoadnetError
from roadnet.graph import CompiledGraph
from roadnet.snap import SnappedPoints, snap_points

__all__ = ["DEFAULT_CAPACITY", "SnapCache"]

#: Points kept per region by default (about 13 MB).
DEFAULT_CAPACITY = 100_000

_ARRAYS = tuple(
    f.name
    for f in dataclasses.fields(SnappedPoints)
    if f.name not in ("max_distance_m", "connector_speed_kmh")
)


class SnapCache:
    """Snapped points of one graph, by exact ``(lon, lat)``; least recently used out first.

    Parameters
    ----------
    graph
        The region's graph.
    capacity
        Points kept (0 = no cache: every call snaps).
    """

    def __init__(self, graph: CompiledGraph, capacity: int = DEFAULT_CAPACITY) -> None:
        self.graph = graph
        self.capacity = int(capacity)
        self.hits = 0
        self.misses = 0
        self._slots: collections.OrderedDict[tuple[float, float], int] = collections.OrderedDict()
        self._cols: dict[str, np.ndarray] = {}
        self._params: tuple[float, float] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def snap(self, lon: np.ndarray, lat: np.ndarray) -> SnappedPoints:
        """As ``snap_points(graph, lon, lat, warn=False)``, rows of known points from the cache.

        Raises
        ------
        RoadnetError
            As :func:`~roadnet.snap.snap_points` on the same points.
        """
        lon = np.asarray(lon, dtype=np.float64).ravel()
        lat = np.asarray(lat, dtype=np.float64).ravel()
        keys = list(zip(lon.tolist(), lat.tolist(), strict=True))
        unique = dict.fromkeys(keys)
        if self.capacity <= 0 or len(unique) > self.capacity // 2 or len(keys) == 0:
            return snap_points(self.graph, lon, lat, warn=False)
        with self._lock:
            slots = self._slots
            missing = []
            for k in unique:
                if k in slots:
                    slots.move_to_end(k)  # before any eviction below
                else:
                    missing.append(k)
            if missing:
                rows = np.array(missing, dtype=np.float64)
                try:
                    fresh = snap_points(self.graph, rows[:, 0], rows[:, 1], warn=False)
                except RoadnetError:
                    # e.g. none of the new points near a road: the library's verdict on the
                    # whole set (some cached points may be near one)
                    return snap_points(self.graph, lon, lat, warn=False)
                self._store(missing, fresh)
            self.misses += len(missing)
            self.hits += len(keys) - len(missing)
            idx = np.fromiter((slots[k] for k in keys), dtype=np.int64, count=len(keys))
            cols = self._cols
            assert self._params is not None
            return SnappedPoints(
                **{name: cols[name][idx] for name in _ARRAYS},
                max_distance_m=self._params[0],
                connector_speed_kmh=self._params[1],
            )

    def _store(self, keys: list[tuple[float, float]], fresh: SnappedPoints) -> None:
        params = (fresh.max_distance_m, fresh.connector_speed_kmh)
        if self._params != params:  # first use, or the snapping settings changed: start over
            self._slots.clear()
            self._cols = {
                name: np.zeros(
                    (self.capacity, *getattr(fresh, name).shape[1:]),
                    dtype=getattr(fresh, name).dtype,
                )
                for name in _ARRAYS
            }
            self._params = params
        slots = self._slots
        new = np.empty(len(keys), dtype=np.int64)
        for i, k in enumerate(keys):
            if len(slots) < self.capacity:
                new[i] = len(slots)
            else:
                _, new[i] = slots.popitem(last=False)
            slots[k] = int(new[i])
        for name in _ARRAYS:
            self._cols[name][new] = getattr(fresh, name)
