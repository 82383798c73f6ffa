"""Road graphs and contraction hierarchies in the persistent :mod:`cache`.

Graphs
    Keyed by what produced them: the source's identity (the PBF's SHA-256, or the Overpass
    query), the network type, the speed profile and the compiled-graph format version. A
    downloaded graph records its download date in its metadata; ``refresh`` downloads again.
    :func:`load_road_graph` builds the graph of any one source (PBF, OSM XML, a place name, a
    bounding box, a saved ``.npz``) with its cache identity: the CLI, the demo and the service
    all call it.

Contraction hierarchies
    Keyed by the graph's key, the hierarchy format and its build parameters; built once (with
    progress), stored, and kept in memory for the process (:func:`cached_hierarchy`).

The cache folder comes from :data:`roadnet.settings.settings` (``cache_dir``, else the
per-user cache folder of roadnet); the generic :mod:`cache` package is given that folder.
"""

from __future__ import annotations

import collections
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cache import CacheError, Store, make_key
from roadnet import sources
from roadnet.ch import CH_FORMAT, Hierarchy, build_hierarchy
from roadnet.exceptions import GraphSourceError, InvalidArgumentError
from roadnet.graph import FORMAT_VERSION, CompiledGraph, load_graph
from roadnet.settings import default_cache_dir, settings
from roadnet.speed import SpeedProfile

__all__ = [
    "ProgressCallback",
    "cached_graph",
    "cached_hierarchy",
    "covering_graph_key",
    "ensure_cached",
    "forget_hierarchies",
    "graph_key",
    "hierarchy_available",
    "load_road_graph",
    "mapped_from_cache",
    "open_store",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``, called as work advances."""

_KIND_GRAPH = "graph"
_KIND_CH = "hierarchy"
_MEMO_SIZE = 2
_HIERARCHIES: collections.OrderedDict[str, Hierarchy] = collections.OrderedDict()


def open_store(root: Path | None = None) -> Store | None:
    """The cache store of the current settings, or ``None`` when caching is off or impossible."""
    if not settings.use_cache:
        return None
    path = Path(root) if root is not None else default_cache_dir()
    try:
        return Store(path)
    except (CacheError, OSError) as exc:
        log.warning("cache folder %s is unusable (%s); continuing without cache", path, exc)
        return None


# ------------------------------------------------------------------------------- graphs
def _graph_inputs(identity: dict[str, Any], profile: SpeedProfile) -> dict[str, Any]:
    return {
        "source": identity,
        "network_type": "drive",
        "speed_profile": profile.to_dict(),
        "format_version": FORMAT_VERSION,
    }


def graph_key(graph: CompiledGraph) -> str:
    """Identity of a graph for matrix keys: its cache key, or a hash of its arrays."""
    key = graph.meta.get("cache_key")
    if isinstance(key, str):
        return key
    h = hashlib.sha256()
    for name in ("indptr", "indices", "seconds", "metres", "geom_x", "geom_y", "geom_s"):
        h.update(np.ascontiguousarray(getattr(graph, name)).tobytes())
    digest = h.hexdigest()[:32]
    graph.meta["cache_key"] = f"content-{digest}"
    return str(graph.meta["cache_key"])


def _graph_of_entry(entry: Any, key: str) -> CompiledGraph:
    """The compiled graph stored in a cache entry, knowing its key."""
    graph = CompiledGraph.from_arrays(dict(entry.arrays), dict(entry.meta))
    graph.meta["cache_key"] = key
    return graph


def cached_graph(
    identity: dict[str, Any],
    build: Callable[[], CompiledGraph],
    profile: SpeedProfile,
    *,
    refresh: bool | None = None,
    store: Store | None = None,
) -> tuple[CompiledGraph, bool]:
    """The graph of ``identity``, from the cache or built (and stored).

    Parameters
    ----------
    identity
        What identifies the source, e.g. ``{"type": "pbf", "sha256": ...}`` or
        ``{"type": "overpass", "kind": "place", "query": ...}``.
    build
        Builds the graph on a miss.
    profile
        The speed profile (part of the key).
    refresh
        Rebuild even when cached (default ``settings.refresh``).

    Returns
    -------
    tuple of (CompiledGraph, bool)
        The graph and whether it came from the cache.
    """
    refresh = settings.refresh if refresh is None else refresh
    store = store if store is not None else open_store()
    inputs = _graph_inputs(identity, profile)
    key = make_key(_KIND_GRAPH, inputs)
    if store is None:
        g = build()
        g.meta["cache_key"] = key
        return g, False

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        g = build()
        g.meta["cache_key"] = key
        return g.arrays(), g.meta

    entry, hit = store.get_or_compute(key, _KIND_GRAPH, inputs, compute, refresh=refresh)
    graph = _graph_of_entry(entry, key)
    log.info("road graph %s %s", key, "served from cache" if hit else "built and cached")
    return graph, hit


# ------------------------------------------------------------------------------- hierarchies
def _hierarchy_key(graph: CompiledGraph) -> tuple[str, dict[str, Any]]:
    inputs = {"graph": graph_key(graph), "format": CH_FORMAT}
    return make_key(_KIND_CH, inputs), inputs


def _remember(key: str, h: Hierarchy) -> Hierarchy:
    _HIERARCHIES[key] = h
    _HIERARCHIES.move_to_end(key)
    while len(_HIERARCHIES) > _MEMO_SIZE:
        _HIERARCHIES.popitem(last=False)
    return h


def cached_hierarchy(
    graph: CompiledGraph,
    *,
    refresh: bool | None = None,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Hierarchy, bool]:
    """The contraction hierarchy of ``graph``: from memory, from the cache, or built.

    Parameters
    ----------
    graph
        The compiled road graph (its cache key, or a hash of its arrays, identifies it).
    refresh
        Rebuild even when cached (default ``settings.refresh``).
    store
        The cache (default: the settings' cache; none = build without storing).
    progress
        Optional callback ``(nodes_contracted, n_nodes)`` while building.

    Returns
    -------
    tuple of (Hierarchy, bool)
        The hierarchy and whether it was reused (memory or cache).
    """
    refresh = settings.refresh if refresh is None else refresh
    key, inputs = _hierarchy_key(graph)
    if not refresh and key in _HIERARCHIES:
        _HIERARCHIES.move_to_end(key)
        return _HIERARCHIES[key], True
    store = store if store is not None else open_store()

    def build() -> Hierarchy:
        h = build_hierarchy(graph, progress=progress)
        h.meta["graph_key"] = inputs["graph"]
        return h

    if store is None:
        return _remember(key, build()), False

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        h = build()
        return h.arrays(), h.meta

    entry, hit = store.get_or_compute(key, _KIND_CH, inputs, compute, refresh=refresh)
    h = Hierarchy.from_arrays(dict(entry.arrays), dict(entry.meta))
    if h.n_nodes != graph.n_nodes:  # a hash collision or a foreign entry: never use it
        raise CacheError(f"cached hierarchy {key} has {h.n_nodes} nodes, graph {graph.n_nodes}")
    log.info("contraction hierarchy %s %s", key, "served from cache" if hit else "built and cached")
    return _remember(key, h), hit


def ensure_cached(graph: CompiledGraph, store: Store, hierarchy: Hierarchy | None = None) -> str:
    """Key of the cache entry of ``hierarchy`` (of ``graph`` when none), stored if absent.

    Processes that share the cache folder (Dask workers) load it by this key.
    """
    if hierarchy is not None:
        key, inputs = _hierarchy_key(graph)
        if not store.contains(key):
            store.put(key, _KIND_CH, inputs, hierarchy.arrays(), hierarchy.meta)
        return key
    key = graph_key(graph)
    if not store.contains(key):
        store.put(key, _KIND_GRAPH, {"graph": key}, graph.arrays(), graph.meta)
    return key


def forget_hierarchies() -> None:
    """Drop the hierarchies kept in memory (the cached ones stay)."""
    _HIERARCHIES.clear()


def hierarchy_available(graph: CompiledGraph, store: Store | None = None) -> bool:
    """Whether a hierarchy of ``graph`` is in memory or in the cache (nothing is built)."""
    key, _ = _hierarchy_key(graph)
    if key in _HIERARCHIES:
        return True
    store = store if store is not None else open_store()
    return store is not None and store.contains(key)


def mapped_from_cache(
    graph: CompiledGraph, hierarchy: Hierarchy, store: Store | None = None
) -> tuple[CompiledGraph, Hierarchy, bool]:
    """The graph and its hierarchy re-read from the cache as read-only memory maps.

    Processes that map the same cache entries share one copy of their pages (a server with
    several worker processes holds the arrays once). Checksums are verified on the way.

    Parameters
    ----------
    graph, hierarchy
        A cached graph (from :func:`cached_graph` or :func:`load_road_graph`) and its
        hierarchy (from :func:`cached_hierarchy`).
    store
        The cache (default: the settings' cache).

    Returns
    -------
    tuple of (CompiledGraph, Hierarchy, bool)
        The mapped graph and hierarchy and ``True``; or the given ones and ``False`` when they
        are not in the cache (caching off, a graph read from a ``.npz`` file).
    """
    store = store if store is not None else open_store()
    key = graph.meta.get("cache_key")
    if store is None or not isinstance(key, str) or key.startswith("content-"):
        return graph, hierarchy, False
    g_entry = store.get(key, mmap=True)
    h_key, _ = _hierarchy_key(graph)
    h_entry = store.get(h_key, mmap=True)
    if g_entry is None or h_entry is None:
        return graph, hierarchy, False
    g = CompiledGraph.from_arrays(dict(g_entry.arrays), dict(g_entry.meta))
    g.meta["cache_key"] = key
    h = Hierarchy.from_arrays(dict(h_entry.arrays), dict(h_entry.meta))
    if h.n_nodes != g.n_nodes:
        raise CacheError(f"cached hierarchy {h_key} has {h.n_nodes} nodes, graph {g.n_nodes}")
    return g, h, True


# ------------------------------------------------------------------------------- covering
def _covers(candidate: Any, wanted: dict[str, Any]) -> bool:
    """Whether a cached graph's clip record (``None``: the whole file) covers ``wanted``'s:
    its hull contains the wanted hull (to 1e-6 degrees) and its buffer is at least as wide."""
    if candidate is None:
        return True
    if not isinstance(candidate, dict) or "hull_wkt" not in candidate:
        return False  # an entry from before hulls were recorded: cannot tell
    import shapely

    try:
        have = shapely.from_wkt(candidate["hull_wkt"])
        want = shapely.from_wkt(wanted["hull_wkt"])
    except (shapely.errors.GEOSException, TypeError, KeyError):
        return False
    wide_enough = float(candidate.get("buffer_km", -1.0)) >= float(wanted["buffer_km"])
    return wide_enough and bool(have.buffer(1e-6).covers(want))


def covering_graph_key(store: Store, identity: dict[str, Any], profile: SpeedProfile) -> str | None:
    """The smallest cached graph of the same PBF and profile that covers a clipped request.

    A graph of the whole file, or one clipped to a hull that contains the requested hull with a
    buffer at least as wide, holds every road the requested clip would keep (and maybe more).
    More road never makes a drive time longer; with the default buffer the tables were
    identical in the tests (docs/scaling.md). This is what lets ``precompute`` on a region's
    areas serve a later run on any subset of them from the same graph and tables.

    Parameters
    ----------
    store
        The cache.
    identity
        The requested identity (:func:`~roadnet.sources.pbf_identity` with a clip).
    profile
        The speed profile.

    Returns
    -------
    str or None
        The key of the smallest (on disk) covering entry, or ``None``.
    """
    wanted = identity.get("clip")
    if not isinstance(wanted, dict):
        return None
    want_inputs = _graph_inputs(identity, profile)
    best: tuple[int, str] | None = None
    for info in store.ls(_KIND_GRAPH):
        got = store.info(info.key)
        if got is None:
            continue
        inputs = got[1].get("inputs", {})
        src = inputs.get("source")
        if not isinstance(src, dict):
            continue
        same = (
            src.get("type") == "pbf"
            and src.get("sha256") == identity.get("sha256")
            and src.get("bbox_filter") == identity.get("bbox_filter")
            and all(inputs.get(k) == want_inputs[k] for k in want_inputs if k != "source")
        )
        mine = (info.size_bytes, info.key)
        if same and _covers(src.get("clip"), wanted) and (best is None or mine < best):
            best = mine
    return None if best is None else best[1]


def _covering_graph(
    store: Store | None, identity: dict[str, Any], profile: SpeedProfile, refresh: bool | None
) -> CompiledGraph | None:
    """A cached graph that covers a clipped request whose own entry is absent, or ``None``."""
    refresh = settings.refresh if refresh is None else refresh
    if store is None or refresh or "clip" not in identity:
        return None
    if store.contains(make_key(_KIND_GRAPH, _graph_inputs(identity, profile))):
        return None  # the clip's own entry exists: served as usual
    key = covering_graph_key(store, identity, profile)
    if key is None:
        return None
    entry = store.get(key)
    if entry is None:
        return None
    graph = _graph_of_entry(entry, key)
    clip = graph.meta.get("source", {}).get("clip")
    graph.meta["covers_clip"] = (
        "the cached graph of the whole file"
        if clip is None
        else "a cached graph clipped to a larger region"
    )
    log.info("road graph %s served from cache: it covers the requested clip", key)
    return graph


# ------------------------------------------------------------------------------- any source
def load_road_graph(
    *,
    pbf: str | Path | None = None,
    osm: str | Path | None = None,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    graph: str | Path | None = None,
    profile: SpeedProfile | None = None,
    refresh: bool | None = None,
    store: Store | None = None,
    reader: str = "auto",
    clip: Any = None,
    clip_buffer_km: float = sources.DEFAULT_CLIP_BUFFER_KM,
    reuse_covering: bool = True,
    progress: sources.ProgressCallback | None = None,
) -> tuple[CompiledGraph, bool]:
    """The road graph of exactly one source, from the cache or built (and cached).

    Parameters
    ----------
    pbf, osm
        An OpenStreetMap ``.osm.pbf`` or ``.osm`` (XML) file; identified by its SHA-256.
    place, bbox
        A place name or a ``(west, south, east, north)`` box in degrees, downloaded from
        Overpass (``settings.overpass_url``, part of the identity).
    graph
        A compiled graph saved with :meth:`CompiledGraph.save` (read as is, not cached).
    profile
        The speed profile (default :meth:`SpeedProfile.default`); part of the cache key.
    refresh, store
        As for :func:`cached_graph`.
    reader
        PBF reader (``"auto"``, ``"osmium"``, ``"pyrosm"``; see
        :func:`~roadnet.sources.graph_from_pbf`). Not part of the cache key: both readers
        build the same graph.
    clip, clip_buffer_km
        Keep only the roads near a study area (PBF only; see
        :func:`~roadnet.sources.clip_region`); the clip region is part of the cache key.
    reuse_covering
        With a clip, serve a cached graph of the same file and profile that covers it (the
        whole file, or a larger clip) when the clip's own entry is absent
        (:func:`covering_graph_key`), instead of building a smaller graph.
    progress
        Optional ``(stage, fraction)`` callback of a PBF build
        (:func:`~roadnet.sources.graph_from_pbf`); not called for a cached graph.

    Returns
    -------
    tuple of (CompiledGraph, bool)
        The graph and whether it came from the cache.

    Raises
    ------
    InvalidArgumentError
        When not exactly one source is given.
    GraphSourceError
        When the file is missing or unreadable, or the download fails.
    """
    given = {
        k: v
        for k, v in {"pbf": pbf, "osm": osm, "place": place, "bbox": bbox, "graph": graph}.items()
        if v is not None
    }
    if len(given) != 1:
        raise InvalidArgumentError(
            "give exactly one road source: a PBF file, an OSM XML file, a place name, a bbox "
            f"(west, south, east, north) or a saved graph; got {', '.join(given) or 'none'}"
        )
    profile = profile or SpeedProfile.default()
    if graph is not None:
        return load_graph(graph), False
    identity: dict[str, Any]
    build: Callable[[], CompiledGraph]
    if pbf is not None or osm is not None:
        path = Path(pbf if pbf is not None else osm)  # type: ignore[arg-type]
        what = "PBF" if pbf is not None else "OSM XML"
        if not path.is_file():
            raise GraphSourceError(
                f"{what} file not found: {path}" + (" (it is a folder)" if path.is_dir() else "")
            )
        if pbf is not None:
            sources.resolve_pbf_reader(reader, path)  # a bad name fails before any work
            identity = sources.pbf_identity(path, clip=clip, clip_buffer_km=clip_buffer_km)
            if reuse_covering:
                store = store if store is not None else open_store()
                covering = _covering_graph(store, identity, profile, refresh)
                if covering is not None:
                    return covering, True

            def build() -> CompiledGraph:
                return sources.graph_from_pbf(
                    path,
                    profile=profile,
                    reader=reader,
                    clip=clip,
                    clip_buffer_km=clip_buffer_km,
                    progress=progress,
                )

        else:
            if clip is not None:
                raise InvalidArgumentError("clip applies to a PBF source only (--pbf)")
            identity = {"type": "osm_xml", "sha256": sources.file_sha256(path)}

            def build() -> CompiledGraph:
                return sources.graph_from_xml(path, profile=profile)

    elif place is not None:
        identity = {"type": "overpass", "kind": "place", "query": place,
                    "overpass_url": settings.overpass_url}  # fmt: skip

        def build() -> CompiledGraph:
            return sources.graph_from_place(place, profile=profile)

    else:
        assert bbox is not None
        box = tuple(float(v) for v in bbox)
        identity = {"type": "overpass", "kind": "bbox", "query": list(box),
                    "overpass_url": settings.overpass_url}  # fmt: skip

        def build() -> CompiledGraph:
            return sources.graph_from_bbox(box, profile=profile)  # type: ignore[arg-type]

    return cached_graph(identity, build, profile, refresh=refresh, store=store)
