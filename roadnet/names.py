"""Road names of a compiled graph's arcs, read from the OSM file it was built from.

The compiled graph keeps each arc's OSM way id (``arc_osmid``), not its name: names are only
needed to label answers (the ``name`` of an OSRM waypoint), and strings would double the size of
a country's graph. :func:`road_names` reads the ``name`` tag of exactly the graph's ways in one
streaming pass over the ways of the PBF (pyosmium, a ``highway`` key filter: about 0.3 s for
Porto) and keeps them as arrays (sorted way ids, UTF-8 bytes and offsets), cached beside the
graph in the store, so that a server restart does not read the file again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cache import Store
from roadnet.exceptions import GraphSourceError
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import graph_key, open_store

__all__ = ["RoadNames", "road_names"]

log = logging.getLogger(__name__)

_KIND = "names"
_FORMAT = 1


class RoadNames:
    """Names of OSM ways, looked up by way id.

    Parameters
    ----------
    way_ids
        Sorted, unique way ids (int64).
    offsets
        ``len(way_ids) + 1`` offsets into ``blob``: the name of ``way_ids[i]`` is
        ``blob[offsets[i]:offsets[i + 1]]`` (UTF-8; empty for an unnamed way).
    blob
        The names' UTF-8 bytes, concatenated (uint8).
    """

    def __init__(self, way_ids: np.ndarray, offsets: np.ndarray, blob: np.ndarray) -> None:
        self.way_ids = np.asarray(way_ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.blob = np.asarray(blob, dtype=np.uint8)
        self._raw: bytes | None = None
        if self.offsets.shape != (self.way_ids.shape[0] + 1,):
            raise ValueError("offsets must have one entry more than way_ids")

    @classmethod
    def from_mapping(cls, names: dict[int, str]) -> RoadNames:
        """Build from ``{way id: name}``."""
        ids = np.array(sorted(names), dtype=np.int64)
        encoded = [names[int(i)].encode("utf-8") for i in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b) for b in encoded])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(ids, offsets, blob)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store."""
        return {"way_ids": self.way_ids, "offsets": self.offsets, "blob": self.blob}

    def __len__(self) -> int:
        return int(self.way_ids.shape[0])

    def name(self, way_id: int) -> str:
        """The name of one way (``""`` when unnamed or unknown)."""
        return self.names(np.array([way_id], dtype=np.int64))[0]

    def names(self, way_ids: Sequence[int] | np.ndarray) -> list[str]:
        """Names of many ways, in order (``""`` when unnamed or unknown)."""
        ids = np.asarray(way_ids, dtype=np.int64).ravel()
        n = len(self)
        if n == 0:
            return [""] * ids.shape[0]
        i = np.minimum(np.searchsorted(self.way_ids, ids), n - 1)
        found = self.way_ids[i] == ids
        starts = np.where(found, self.offsets[i], 0).tolist()
        ends = np.where(found, self.offsets[i + 1], 0).tolist()
        raw = self._bytes
        return [
            raw[a:b].decode("utf-8", errors="replace") for a, b in zip(starts, ends, strict=True)
        ]

    @property
    def _bytes(self) -> bytes:
        if self._raw is None:
            self._raw = self.blob.tobytes()
        return self._raw

    def of_arcs(self, graph: CompiledGraph, arcs: np.ndarray) -> list[str]:
        """Names of the roads of ``graph``'s arcs (``""`` for ``-1``: no arc)."""
        arcs = np.asarray(arcs, dtype=np.int64)
        ways = np.where(arcs >= 0, graph.arc_osmid[np.maximum(arcs, 0)], -1)
        return self.names(ways)


def _read_names(pbf: Path, wanted: np.ndarray) -> RoadNames:
    """The ``name`` tag of the ways in ``wanted`` (sorted unique ids), one pass over the ways."""
    import osmium

    wanted_set = set(wanted.tolist())
    names: dict[int, str] = {}
    try:
        ways = osmium.FileProcessor(str(pbf), osmium.osm.WAY).with_filter(
            osmium.filter.KeyFilter("highway")
        )
        for way in ways:
            if way.id in wanted_set:
                names[way.id] = str(way.tags.get("name", ""))
    except RuntimeError as exc:  # osmium: truncated or not a PBF
        raise GraphSourceError(f"cannot read road names from {pbf}: {exc}") from None
    return RoadNames.from_mapping(names)


def road_names(graph: CompiledGraph, pbf: str | Path, store: Store | None = None) -> RoadNames:
    """The names of ``graph``'s roads, from the cache or read from ``pbf`` (and cached).

    Parameters
    ----------
    graph
        A graph built from ``pbf`` (its ``arc_osmid`` are the file's way ids).
    pbf
        The ``.osm.pbf`` file the graph was built from.
    store
        The cache (default: the settings' cache; ``None`` when caching is off reads the file).

    Returns
    -------
    RoadNames
        A name (possibly ``""``) for every way of the graph.

    Raises
    ------
    GraphSourceError
        When the file is missing or unreadable.
    """
    path = Path(pbf)
    if not path.is_file():
        raise GraphSourceError(f"PBF file not found: {path}")
    wanted = np.unique(np.asarray(graph.arc_osmid, dtype=np.int64))
    store = store if store is not None else open_store()
    if store is None:
        return _read_names(path, wanted)
    from cache import make_key

    inputs: dict[str, Any] = {"graph": graph_key(graph), "format": _FORMAT}
    key = make_key(_KIND, inputs)

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        found = _read_names(path, wanted)
        named = int(np.count_nonzero(np.diff(found.offsets)))
        return found.arrays(), {"ways": len(found), "named": named, "pbf": str(path)}

    entry, hit = store.get_or_compute(key, _KIND, inputs, compute)
    arrays = dict(entry.arrays)
    log.info("road names %s %s", key, "served from cache" if hit else "read and cached")
    return RoadNames(arrays["way_ids"], arrays["offsets"], arrays["blob"])
