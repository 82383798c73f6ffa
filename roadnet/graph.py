"""The compiled road graph: compact CSR arrays with travel times, ready for routing.

A :class:`CompiledGraph` holds two views of one road network:

* the **routing graph**, a CSR adjacency (``indptr``, ``indices``, ``seconds``, ``metres``) with
  one arc per ordered node pair: where OSM has parallel ways between two junctions only the
  fastest is kept (a plain COO -> CSR conversion would *sum* them), and self-loops are dropped;
* the **arcs**, every directed road piece between two junctions with its polyline geometry
  (projected metres), cumulative seconds and metres along it, highway class, OSM way id and
  the index of its reverse twin on two-way roads. Snapping works on the arcs.

Node positions are row numbers inside; OSM node ids travel with the graph in ``node_ids``.
Graphs are saved as an uncompressed ``.npz`` (no pickle) with a JSON metadata record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from roadnet.exceptions import GraphFormatError, InvalidArgumentError
from roadnet.files import atomic_write

__all__ = ["FORMAT_VERSION", "CompiledGraph", "ComponentReport", "load_graph"]

log = logging.getLogger(__name__)

#: Version of the on-disk layout; bumped whenever arrays or their meaning change.
FORMAT_VERSION = 1

_ARRAY_FIELDS: dict[str, str] = {
    "node_ids": "int64",
    "lon": "float64",
    "lat": "float64",
    "x": "float64",
    "y": "float64",
    "indptr": "int64",
    "indices": "int32",
    "seconds": "float32",
    "metres": "float32",
    "csr_arc": "int32",
    "arc_u": "int32",
    "arc_v": "int32",
    "arc_seconds": "float32",
    "arc_metres": "float32",
    "arc_highway": "int16",
    "arc_osmid": "int64",
    "arc_twin": "int32",
    "geom_indptr": "int64",
    "geom_x": "float64",
    "geom_y": "float64",
    "geom_s": "float32",
    "geom_m": "float32",
    "scc": "int32",
}


@dataclasses.dataclass(frozen=True)
class ComponentReport:
    """Strongly connected components of a routing graph.

    Attributes
    ----------
    n_components
        Number of strongly connected components.
    sizes
        Node count of each component, largest first.
    largest_fraction
        Share of nodes in the largest component.
    """

    n_components: int
    sizes: np.ndarray
    largest_fraction: float

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """JSON-friendly summary with the ``top`` largest component sizes."""
        return {
            "n_components": self.n_components,
            "largest_sizes": [int(s) for s in self.sizes[:top]],
            "largest_fraction": round(self.largest_fraction, 6),
        }


@dataclasses.dataclass(frozen=True, eq=False)
class CompiledGraph:
    """A compact, routable road graph (see the module docstring).

    Attributes
    ----------
    node_ids
        OSM node id of each node (row).
    lon, lat
        WGS84 coordinates of each node.
    x, y
        Projected coordinates in metres (CRS in ``meta["crs"]``).
    indptr, indices, seconds, metres
        Routing graph in CSR form: arcs of node ``i`` are ``indptr[i]:indptr[i+1]``.
    csr_arc
        For each routing arc, the index of the arc (in ``arc_*``) it represents.
    arc_u, arc_v, arc_seconds, arc_metres
        Every directed arc between junctions: tail, head, travel seconds, length in metres.
    arc_highway
        Highway class code of each arc; names in ``meta["highway_classes"]``.
    arc_osmid
        OSM way id of each arc (the first way where several were merged).
    arc_twin
        Index of the reverse arc with the same geometry on two-way roads, else -1.
    geom_indptr, geom_x, geom_y
        Polyline of each arc in projected metres, from tail to head.
    geom_s, geom_m
        Cumulative seconds and metres along each arc's polyline (0 at the tail).
    scc
        Strongly connected component label of each node; 0 is the largest component.
    meta
        JSON-serialisable metadata: source and checksum or query, bbox, CRS, speed profile,
        OSM timestamp when known, counts.
    """

    node_ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    seconds: np.ndarray
    metres: np.ndarray
    csr_arc: np.ndarray
    arc_u: np.ndarray
    arc_v: np.ndarray
    arc_seconds: np.ndarray
    arc_metres: np.ndarray
    arc_highway: np.ndarray
    arc_osmid: np.ndarray
    arc_twin: np.ndarray
    geom_indptr: np.ndarray
    geom_x: np.ndarray
    geom_y: np.ndarray
    geom_s: np.ndarray
    geom_m: np.ndarray
    scc: np.ndarray
    meta: dict[str, Any]

    # ------------------------------------------------------------------ basic facts
    @property
    def n_nodes(self) -> int:
        """Number of nodes (junctions and dead ends)."""
        return int(self.node_ids.shape[0])

    @property
    def n_arcs(self) -> int:
        """Number of directed arcs in the routing graph (parallel arcs merged)."""
        return int(self.indices.shape[0])

    @property
    def crs(self) -> str:
        """Projected CRS of ``x``/``y`` and the arc geometry (e.g. ``"EPSG:32629"``)."""
        return str(self.meta["crs"])

    @property
    def highway_classes(self) -> list[str]:
        """Highway class names indexed by ``arc_highway`` codes."""
        return list(self.meta["highway_classes"])

    def csr(self, weight: str = "seconds") -> sp.csr_matrix:
        """The routing graph as a ``scipy.sparse.csr_matrix`` of ``seconds`` or ``metres``.

        Entries are float64 (as scipy.sparse.csgraph computes in float64); every entry is > 0.
        """
        if weight not in {"seconds", "metres"}:
            raise InvalidArgumentError(f"weight must be 'seconds' or 'metres', got {weight!r}")
        data = np.asarray(getattr(self, weight), dtype=np.float64)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n_nodes, self.n_nodes))

    def components(self) -> ComponentReport:
        """Strongly connected components (one-way streets make the graph directed)."""
        sizes = np.sort(np.bincount(self.scc))[::-1]
        n = max(self.n_nodes, 1)
        return ComponentReport(
            n_components=int(sizes.shape[0]),
            sizes=sizes,
            largest_fraction=float(sizes[0] / n) if sizes.size else 0.0,
        )

    def node_index(self, osm_ids: np.ndarray | list[int]) -> np.ndarray:
        """Row numbers of OSM node ids; raises ``KeyError`` naming ids that are absent."""
        ids = np.asarray(osm_ids, dtype=np.int64)
        order = np.argsort(self.node_ids, kind="stable")
        pos = np.searchsorted(self.node_ids, ids, sorter=order)
        pos = np.clip(pos, 0, max(self.n_nodes - 1, 0))
        rows = order[pos] if self.n_nodes else pos
        bad = self.node_ids[rows] != ids if self.n_nodes else np.ones(ids.shape, bool)
        if np.any(bad):
            raise KeyError(f"OSM node ids not in the graph: {ids[bad][:10].tolist()}")
        return rows

    def _one_per_road(self) -> np.ndarray:
        a = np.arange(self.arc_u.shape[0])
        return (self.arc_twin < 0) | (a < self.arc_twin)

    def summary(self) -> dict[str, Any]:
        """Readable summary: counts, bbox, components, source."""
        return {
            "nodes": self.n_nodes,
            "arcs": self.n_arcs,
            # each two-way road counted once (its two arcs share one geometry)
            "road_km": round(float(self.arc_metres[self._one_per_road()].sum()) / 1000.0, 1),
            "components": self.components().to_dict(),
            **{k: self.meta.get(k) for k in ("source", "bbox", "crs", "osm_timestamp")},
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to an uncompressed ``.npz`` atomically (temp file, fsync, rename).

        Returns the path written (``.npz`` is appended when missing).
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        meta = dict(self.meta, format_version=FORMAT_VERSION)
        atomic_write(
            path, lambda fh: np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        )
        return path

    def arrays(self) -> dict[str, np.ndarray]:
        """The graph's arrays by name (what :meth:`save` writes besides ``meta``)."""
        return {name: getattr(self, name) for name in _ARRAY_FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> CompiledGraph:
        """Rebuild from :meth:`arrays` and ``meta``, checking names, dtypes and shapes."""
        missing = [n for n in _ARRAY_FIELDS if n not in arrays]
        if missing:
            raise GraphFormatError(f"compiled graph is missing arrays: {', '.join(missing)}")
        version = meta.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise GraphFormatError(
                f"compiled graph has format version {version}; this roadnet reads "
                f"version {FORMAT_VERSION}: rebuild it from its source"
            )
        fields = {n: np.asarray(arrays[n], dtype=dt) for n, dt in _ARRAY_FIELDS.items()}
        g = cls(**fields, meta=dict(meta))
        g._check()
        return g

    def _check(self) -> None:
        n, m, a = self.n_nodes, self.indices.shape[0], self.arc_u.shape[0]
        problems = []
        for name in ("lon", "lat", "x", "y", "scc"):
            if getattr(self, name).shape != (n,):
                problems.append(f"{name} has shape {getattr(self, name).shape}, expected ({n},)")
        if self.indptr.shape != (n + 1,) or (n + 1 and self.indptr[-1] != m):
            problems.append("indptr does not match indices")
        for name in ("seconds", "metres", "csr_arc"):
            if getattr(self, name).shape != (m,):
                problems.append(f"{name} has shape {getattr(self, name).shape}, expected ({m},)")
        for name in ("arc_v", "arc_seconds", "arc_metres", "arc_highway", "arc_osmid", "arc_twin"):
            if getattr(self, name).shape != (a,):
                problems.append(f"{name} has shape {getattr(self, name).shape}, expected ({a},)")
        if self.geom_indptr.shape != (a + 1,):
            problems.append("geom_indptr does not match the arcs")
        if m and (self.indices.min() < 0 or self.indices.max() >= n):
            problems.append("indices point outside the node range")
        if m and not np.all(self.seconds > 0):
            problems.append("travel seconds must all be > 0")
        if problems:
            raise GraphFormatError("compiled graph is inconsistent: " + "; ".join(problems))


def load_graph(path: str | os.PathLike[str]) -> CompiledGraph:
    """Load a graph written by :meth:`CompiledGraph.save`.

    Raises
    ------
    GraphFormatError
        When the file is missing, not an ``.npz`` written by roadnet, damaged or of another
        format version.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphFormatError(f"compiled graph file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files if name != "meta"}
            meta = json.loads(str(data["meta"]))
    except GraphFormatError:
        raise
    except Exception as exc:  # zipfile, numpy and json errors all mean "not a valid graph"
        raise GraphFormatError(f"{path} is not a readable roadnet graph (.npz): {exc}") from None
    return CompiledGraph.from_arrays(arrays, meta)


def strong_components(indptr: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """SCC labels renumbered so that 0 is the largest component, 1 the next, ..."""
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    if indices.shape[0] < 2**31 and indices.dtype == np.int32:
        indptr = indptr.astype(np.int32)  # scipy would otherwise copy indices to int64
    adj = sp.csr_matrix((np.ones(indices.shape[0], dtype=np.int8), indices, indptr), shape=(n, n))
    _, labels = connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(labels)
    rank = np.empty_like(sizes)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(sizes.shape[0])
    return rank[labels].astype(np.int32)


def csr_keep_min(
    n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray, *extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """CSR arrays of arcs ``u -> v`` keeping, for each ordered pair, the arc of least ``w``.

    A COO -> CSR conversion would *sum* parallel arcs; this keeps the minimum instead.

    Returns
    -------
    indptr, indices, weights, extras, chosen
        ``extras`` are the other per-arc arrays reordered like ``weights``; ``chosen`` holds the
        input position of each kept arc.
    """
    order = np.lexsort((w, v, u))
    su, sv = u[order], v[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = (su[1:] != su[:-1]) | (sv[1:] != sv[:-1])
    chosen = order[first]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u[chosen], minlength=n))]).astype(np.int64)
    return indptr, v[chosen], w[chosen], tuple(e[chosen] for e in extra), chosen
