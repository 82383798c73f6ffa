"""Road names of a graph's arcs: a sidecar read once from the OSM file and kept in the cache.

A compiled graph keeps each arc's OSM way id (``arc_osmid``, the first way where several were
merged) but not the way's name. :func:`cached_way_names` reads the ``name`` tag of every
``highway`` way of the ``.osm.pbf`` once (one streaming pass with osmium; under half a second
for Porto), keeps the names of the graph's ways as three arrays (sorted way ids, offsets, UTF-8
bytes) and stores them in the cache beside the graph, keyed by the graph's cache key (which
identifies the file's content and the profile). :meth:`WayNames.of_arcs` then gives arcs their
road names (``""`` where the way has no name).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from cache import Store, make_key
from roadnet.exceptions import GraphSourceError
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import graph_key, open_store

__all__ = ["WayNames", "cached_way_names", "read_way_names"]

log = logging.getLogger(__name__)

_KIND = "way_names"
#: Version of the stored layout (part of the cache key).
NAMES_FORMAT = 1


@dataclasses.dataclass(frozen=True, eq=False)
class WayNames:
    """Names of OSM ways.

    Attributes
    ----------
    way_ids
        Sorted way ids (int64) that have a name.
    offsets
        ``(len(way_ids) + 1,)`` int64: name ``i`` is ``text[offsets[i]:offsets[i + 1]]``.
    text
        The names' UTF-8 bytes, end to end (uint8).
    """

    way_ids: np.ndarray
    offsets: np.ndarray
    text: np.ndarray

    def __len__(self) -> int:
        return int(self.way_ids.shape[0])

    @classmethod
    def from_pairs(cls, ids: list[int], names: list[str]) -> WayNames:
        """From way ids and their names (any order; the last name of a repeated id wins)."""
        by_id = dict(zip(ids, names, strict=True))
        order = sorted(by_id)
        encoded = [by_id[i].encode() for i in order]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b) for b in encoded], dtype=np.int64)
        text = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(np.asarray(order, dtype=np.int64), offsets, text)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store."""
        return {"way_ids": self.way_ids, "offsets": self.offsets, "text": self.text}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> WayNames:
        """Read :meth:`arrays`' output."""
        return cls(
            np.asarray(arrays["way_ids"], dtype=np.int64),
            np.asarray(arrays["offsets"], dtype=np.int64),
            np.asarray(arrays["text"], dtype=np.uint8),
        )

    def names(self, way_ids: np.ndarray) -> list[str]:
        """The name of each way id (``""`` when it has none)."""
        ids = np.asarray(way_ids, dtype=np.int64).ravel()
        if len(self) == 0:
            return [""] * ids.shape[0]
        pos = np.clip(np.searchsorted(self.way_ids, ids), 0, len(self) - 1)
        hit = (self.way_ids[pos] == ids).tolist()
        start = self.offsets[pos].tolist()
        stop = self.offsets[pos + 1].tolist()
        raw = self.text
        return [
            bytes(raw[a:b]).decode() if h else "" for h, a, b in zip(hit, start, stop, strict=True)
        ]

    def of_arcs(self, graph: CompiledGraph, arcs: np.ndarray) -> list[str]:
        """The road name of each arc of ``graph`` (``""`` when its way has none)."""
        return self.names(graph.arc_osmid[np.asarray(arcs, dtype=np.int64)])


def read_way_names(pbf: str | Path, way_ids: np.ndarray | None = None) -> WayNames:
    """The ``name`` tags of the ``highway`` ways of an ``.osm.pbf`` (only ``way_ids`` if given).

    Raises
    ------
    GraphSourceError
        When the file cannot be read.
    """
    import osmium

    wanted = None if way_ids is None else set(np.asarray(way_ids, dtype=np.int64).tolist())
    ids: list[int] = []
    names: list[str] = []
    try:
        processor = osmium.FileProcessor(str(pbf), osmium.osm.WAY).with_filter(
            osmium.filter.KeyFilter("highway")
        )
        for way in processor:
            name = way.tags.get("name")
            if name and (wanted is None or way.id in wanted):
                ids.append(int(way.id))
                names.append(name)
    except RuntimeError as exc:  # osmium's I/O and format errors
        raise GraphSourceError(f"cannot read road names from {pbf}: {exc}") from exc
    return WayNames.from_pairs(ids, names)


def cached_way_names(
    graph: CompiledGraph, pbf: str | Path, *, store: Store | None = None
) -> tuple[WayNames, bool]:
    """The names of ``graph``'s ways, read from ``pbf`` (the file it was built from) once and
    then from the cache.

    Returns
    -------
    tuple of (WayNames, bool)
        The names and whether they came from the cache.
    """
    inputs = {"graph": graph_key(graph), "format": NAMES_FORMAT}
    key = make_key(_KIND, inputs)
    store = store if store is not None else open_store()

    def read() -> WayNames:
        return read_way_names(pbf, np.unique(graph.arc_osmid))

    if store is None:
        return read(), False

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return read().arrays(), {"source": Path(pbf).name}

    entry, hit = store.get_or_compute(key, _KIND, inputs, compute)
    names = WayNames.from_arrays(dict(entry.arrays))
    log.info("road names %s: %d ways, %s", key, len(names), "from cache" if hit else "read")
    return names, hit
