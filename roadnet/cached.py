"""Road graphs and drive-time matrices through the persistent :mod:`cache`.

"Precompute the drive times for all ZIPs of a region tonight, optimize any subset tomorrow."

Graphs
    Keyed by what produced them: the source's identity (the PBF's SHA-256, or the Overpass
    query), the network type, the speed profile and the compiled-graph format version. A
    downloaded graph records its download date in its metadata; ``refresh`` downloads again.

Matrices
    Points are identified by their coordinates (:func:`~roadnet.snap.point_labels`, 1e-7
    degree), so the same ZIP centroid is the same row whatever its id or position in a file.
    A *family* groups the matrices computed on one graph with one set of snapping parameters;
    within it, a request is

    1. served whole when an entry for exactly these origins and destinations exists;
    2. otherwise **assembled** from every entry of the family whose labels overlap the request
       (read block-wise from memory-mapped, checksummed files: a 100 x 100 subset of a
       20,000 x 20,000 precomputed matrix reads a few blocks, not 1.6 GB);
    3. the cells still missing are computed: origins whose rows are (mostly) missing by forward
       Dijkstra, the remaining missing destinations' columns by Dijkstra on the reversed graph.
       Adding 50 points to a cached 5,000-point matrix runs 100 searches instead of 5,050.

    The assembled result is stored as a new entry (entries it makes redundant are removed) unless
    it was served entirely from cache. Entries computed with a cutoff serve requests with an
    equal or smaller cutoff; entries without one serve all. Entries with road metres serve
    requests with or without metres.

Contraction hierarchies
    Keyed by the graph's key, the hierarchy format and its build parameters; built once (with
    progress), stored, and kept in memory for the process (:func:`cached_hierarchy`).
    :func:`choose_engine` decides between the hierarchy and Dijkstra for each matrix.

Zarr matrix stores
    :func:`precompute_matrix` with ``out`` writes a square table into a chunked Zarr v3 store
    (:mod:`roadnet.zarr_store`; with ``client``, one Dask task per row block, see
    :mod:`roadnet.precompute`). A finished store is referenced by the cache (kind
    ``matrix-zarr``): requests of its family read the chunks holding their cells from it,
    checked against the recorded checksums; cells of damaged chunks are computed.

A failing cache (read-only or full disk) never costs the caller the result: it is computed,
returned, and a warning names the folder.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cache import (
    CacheCorruptError,
    CacheError,
    CacheWriteError,
    IncompleteMatrixError,
    Store,
    make_key,
    open_matrix,
    partial_matrix,
    put_matrix,
)
from roadnet.engine import EngineChoice, resolve_engine
from roadnet.exceptions import CorruptChunkError, InvalidArgumentError, RoadnetError
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import ProgressCallback, ensure_cached, graph_key, open_store
from roadnet.matrix import (
    CHJob,
    DriveTimeMatrix,
    FarPolicy,
    augment,
    block_tasks,
    ch_block_rows,
    drive_time_matrix,
    run_blocks,
    zero_same_points,
)
from roadnet.precompute import (
    BlockJob,
    StorePlan,
    points_arrays,
    points_cache_key,
    run_here,
    run_on_dask,
    verify_on_dask,
)
from roadnet.settings import check_n_jobs, settings
from roadnet.snap import SnappedPoints
from roadnet.zarr_store import (
    check_same_table,
    create_matrix_store,
    matrix_store_exists,
    open_matrix_store,
)

__all__ = [
    "MATRIX_FORMAT",
    "CacheReport",
    "cached_drive_time_matrix",
    "precompute_matrix",
]

log = logging.getLogger(__name__)

#: version of the cached matrix layout and semantics (bump to invalidate old entries)
MATRIX_FORMAT = 1
_KIND_SECONDS = "matrix"
_KIND_METRES = "matrix-metres"
_KIND_ZARR = "matrix-zarr"


@dataclasses.dataclass
class CacheReport:
    """How a request used the cache.

    Attributes
    ----------
    status
        ``"hit"`` (served whole), ``"assembled"`` (from cached blocks, nothing computed),
        ``"partial"`` (cached blocks + computed rows/columns), ``"miss"`` (all computed) or
        ``"off"`` (cache disabled or unusable).
    key
        Key of the entry serving (or storing) the result.
    rows_computed, cols_computed
        Forward searches (origin rows) and reverse searches (destination columns) run.
    cells_from_cache
        Matrix cells read from the cache.
    stored
        Whether the result was written to the cache.
    engine
        How the computed cells were computed (:meth:`EngineChoice.describe`), or ``None``.
    cached_engines
        The engines that computed the cells read from the cache (``"ch"``,
        ``"scipy-dijkstra"``; ``"unrecorded"`` for entries older than this record).
    """

    status: str
    key: str | None = None
    rows_computed: int = 0
    cols_computed: int = 0
    cells_from_cache: int = 0
    stored: bool = False
    engine: str | None = None
    cached_engines: set[str] = dataclasses.field(default_factory=set)

    def describe(self) -> str:
        """One line for logs and the CLI."""
        by = ""
        if self.cached_engines:
            by = f", computed earlier by {' and '.join(sorted(self.cached_engines))}"
        if self.status == "hit":
            return f"served from cache (entry {self.key}{by})"
        if self.status == "assembled":
            return f"assembled from cached matrices ({self.cells_from_cache:,} cells{by})"
        on = f" on {self.engine}" if self.engine else ""
        if self.status == "off":
            return f"cache not used; {self.engine}" if self.engine else "cache not used"
        reused = (
            f"; {self.cells_from_cache:,} cells reused from cached matrices{by}"
            if self.cells_from_cache
            else ""
        )
        return (
            f"computed {self.rows_computed:,} row(s) and {self.cols_computed:,} column(s){on}"
            + reused
        )


# ------------------------------------------------------------------------------- matrices
def _family(graph: CompiledGraph, o: SnappedPoints) -> dict[str, Any]:
    return {
        "graph": graph_key(graph),
        "snap": {
            "max_distance_m": float(o.max_distance_m),
            "connector_speed_kmh": float(o.connector_speed_kmh),
        },
        "matrix_format": MATRIX_FORMAT,
    }


def _matrix_key(
    family: dict[str, Any],
    rows: np.ndarray,
    cols: np.ndarray,
    cutoff: float | None,
    distances: bool,
) -> tuple[str, dict[str, Any]]:
    inputs = {
        "family": family,
        "origins": rows,
        "destinations": cols,
        "cutoff_s": cutoff,
        "metres": distances,
    }
    return make_key(_KIND_SECONDS, inputs), inputs


def _usable(meta: dict[str, Any], family_key: str, cutoff: float | None, distances: bool) -> bool:
    if meta.get("family_key") != family_key:
        return False
    if distances and not meta.get("metres_key"):
        return False
    have = meta.get("cutoff_s")
    return have is None or (cutoff is not None and cutoff <= have)


def _positions(labels: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``wanted`` found in ``labels``, their positions in ``labels``)."""
    order = np.argsort(labels, kind="stable")
    pos = np.searchsorted(labels[order], wanted)
    pos = np.clip(pos, 0, max(labels.shape[0] - 1, 0))
    found = labels[order][pos] == wanted if labels.shape[0] else np.zeros(wanted.shape, bool)
    return np.flatnonzero(found), order[pos[found]]


def cached_drive_time_matrix(
    graph: CompiledGraph,
    origins: SnappedPoints,
    destinations: SnappedPoints | None = None,
    *,
    cutoff: float | None = None,
    distances: bool = False,
    far: FarPolicy = "flag",
    n_jobs: int | None = None,
    progress: ProgressCallback | None = None,
    refresh: bool | None = None,
    store: Store | None = None,
    engine: str | EngineChoice | None = None,
    build_progress: ProgressCallback | None = None,
) -> tuple[DriveTimeMatrix, CacheReport]:
    """:func:`~roadnet.matrix.drive_time_matrix` through the cache (see module docstring).

    Returns the same matrix as the uncached function, and a :class:`CacheReport`. ``engine``
    and ``build_progress`` are those of :func:`~roadnet.matrix.drive_time_matrix`; the engine
    is chosen only when cells must be computed, for the searches they need.
    """
    n_jobs = check_n_jobs(n_jobs)
    if far not in ("flag", "exclude", "error"):
        raise InvalidArgumentError(f"far must be 'flag', 'exclude' or 'error', got {far!r}")
    if cutoff is not None and not cutoff > 0:
        raise InvalidArgumentError(f"cutoff must be > 0 seconds or None, got {cutoff!r}")
    refresh = settings.refresh if refresh is None else refresh
    store = store if store is not None else open_store()
    o = origins
    d = o if destinations is None else destinations
    if store is None:
        choice = resolve_engine(graph, engine, len(o), build_progress)
        m = drive_time_matrix(
            graph,
            o,
            d,
            cutoff=cutoff,
            distances=distances,
            far=far,
            n_jobs=n_jobs,
            progress=progress,
            engine=choice,
        )
        return m, CacheReport(status="off", engine=choice.describe())
    if far not in ("flag", "exclude", "error"):
        raise InvalidArgumentError(f"far must be 'flag', 'exclude' or 'error', got {far!r}")
    if far == "error" and (o.flagged.any() or d.flagged.any()):
        # same check and message as the uncached path
        return drive_time_matrix(graph, o, d, far="error"), CacheReport(status="off")
    if cutoff is not None and not cutoff > 0:
        raise InvalidArgumentError(f"cutoff must be > 0 seconds or None, got {cutoff!r}")
    family = _family(graph, o)
    family_key = make_key("matrix-family", family)
    rl, cl = o.labels, d.labels
    key, inputs = _matrix_key(family, rl, cl, cutoff, distances)
    no, nd = len(o), len(d)
    seconds = np.full((no, nd), np.nan, dtype=np.float32)
    metres = np.full((no, nd), np.nan, dtype=np.float32) if distances else None
    report = CacheReport(status="miss", key=key)

    if not refresh and not _exact_hit(store, key, rl, cl, seconds, metres, report):
        _assemble_from_zarr(store, family_key, rl, cl, cutoff, distances, seconds, metres)
        _assemble(store, family_key, rl, cl, cutoff, distances, seconds, metres, report)
    filled = ~np.isnan(seconds)
    if metres is not None:
        filled &= ~np.isnan(metres)
    report.cells_from_cache = int(filled.sum())
    if filled.all():
        report.status = "hit" if report.status == "hit" else "assembled"
    else:
        _compute_missing(
            graph,
            o,
            d,
            filled,
            seconds,
            metres,
            cutoff,
            distances,
            n_jobs,
            progress,
            report,
            engine,
            build_progress,
        )
        report.status = "partial" if report.cells_from_cache else "miss"
    if cutoff is not None:
        over = seconds > cutoff
        seconds[over] = np.inf
        if metres is not None:
            metres[over] = np.inf
    zero_same_points(seconds, metres, rl, cl)
    if report.status in ("partial", "miss"):
        _store_result(store, key, inputs, family_key, rl, cl, cutoff, seconds, metres, report)
    if far == "exclude":
        for arr in (seconds, metres):
            if arr is not None:
                arr[o.flagged, :] = np.inf
                arr[:, d.flagged] = np.inf
    log.info("drive-time matrix %dx%d: %s", no, nd, report.describe())
    used = report.engine.split(" ")[1] if report.engine else "cache"
    return DriveTimeMatrix(
        seconds=seconds, metres=metres, origins=o, destinations=d, cutoff=cutoff, engine=used
    ), report


def _exact_hit(
    store: Store,
    key: str,
    rl: np.ndarray,
    cl: np.ndarray,
    seconds: np.ndarray,
    metres: np.ndarray | None,
    report: CacheReport,
) -> bool:
    """Read an entry for exactly this request block-wise and contiguously (fast path)."""
    try:
        entry = open_matrix(store, key)
        if entry is None:
            return False
        with entry:
            if not (np.array_equal(entry.row_labels, rl) and np.array_equal(entry.col_labels, cl)):
                return False
            seconds[:] = entry.rows(0, rl.shape[0])
            mkey = entry.meta.get("metres_key")
            engines = entry.meta.get("engines") or ["unrecorded"]
        if metres is not None:
            ment = open_matrix(store, mkey) if mkey else None
            if ment is None:
                seconds[:] = np.nan
                return False
            with ment:
                metres[:] = ment.rows(0, rl.shape[0])
    except CacheError as exc:  # corrupt: quarantined by the store; fall back to assembly
        # a corrupt entry was already reported (once) by the store that quarantined it
        level = logging.INFO if isinstance(exc, CacheCorruptError) else logging.WARNING
        log.log(level, "cached matrix %s unusable (%s); recomputing what is missing", key, exc)
        seconds[:] = np.nan
        if metres is not None:
            metres[:] = np.nan
        return False
    report.status = "hit"
    report.key = key
    report.cached_engines.update(engines)
    return True


def _assemble_from_zarr(
    store: Store,
    family_key: str,
    rl: np.ndarray,
    cl: np.ndarray,
    cutoff: float | None,
    distances: bool,
    seconds: np.ndarray,
    metres: np.ndarray | None,
) -> None:
    """Fill missing cells from the Zarr matrix stores the cache references (see
    :func:`precompute_matrix` with ``out``): only the chunks holding requested cells are read
    and checked; cells of chunks that fail their checksum stay missing (and are computed)."""
    for info in store.ls(kind=_KIND_ZARR):
        if not np.isnan(seconds).any():
            return
        described = store.info(info.key)
        meta = described[1].get("meta", {}) if described else {}
        if not _usable(meta, family_key, cutoff, distances):
            continue
        entry = store.get(info.key)
        if entry is None:
            continue
        try:
            zs = open_matrix_store(meta["url"], storage_options=meta.get("storage_options"))
        except RoadnetError as exc:  # moved or deleted: forget the reference
            log.warning("matrix store %s unusable (%s); reference dropped", meta.get("url"), exc)
            store.delete(info.key)
            continue
        rows_req, rows_ent = _positions(entry.arrays["row_labels"], rl)
        cols_req, cols_ent = _positions(entry.arrays["col_labels"], cl)
        if rows_req.size == 0 or cols_req.size == 0:
            continue
        keep = np.isnan(seconds[np.ix_(rows_req, cols_req)]).any(axis=1)
        rows_req, rows_ent = rows_req[keep], rows_ent[keep]
        tgt = np.ix_(rows_req, cols_req)
        for name, out in (("seconds", seconds), ("metres", metres)):
            if out is None:
                continue
            try:
                block = zs.read(rows_ent, cols_ent, name=name)
            except CorruptChunkError as exc:
                log.warning("%s; their cells are computed instead", exc)
                block = zs.read(rows_ent, cols_ent, name=name, damaged="nan")
            out[tgt] = np.where(np.isnan(out[tgt]), block, out[tgt])
        log.info("matrix cells read from store %s", meta["url"])


def _register_store(
    store: Store | None,
    graph: CompiledGraph,
    points: SnappedPoints,
    url: str,
    storage_options: dict[str, Any] | None,
    cutoff: float | None,
    distances: bool,
) -> None:
    """Reference a finished Zarr store in the cache, so matrix requests read from it."""
    store = store if store is not None else open_store()
    if store is None:
        return
    if "://" not in url:
        url = str(Path(url).resolve())
    family = _family(graph, points)
    inputs = {"url": url, "family": family, "cutoff_s": cutoff, "metres": distances}
    meta = {
        "family_key": make_key("matrix-family", family),
        "family": family,
        "url": url,
        "storage_options": storage_options,
        "rows": len(points),
        "cols": len(points),
        "cutoff_s": cutoff,
        "metres_key": url if distances else None,
    }
    labels = points.labels
    try:
        store.put(
            make_key(_KIND_ZARR, inputs),
            _KIND_ZARR,
            inputs,
            {"row_labels": labels, "col_labels": labels},
            meta,
        )
    except CacheError as exc:
        log.warning("%s; the store %s is not referenced by the cache", exc, url)


def _assemble(
    store: Store,
    family_key: str,
    rl: np.ndarray,
    cl: np.ndarray,
    cutoff: float | None,
    distances: bool,
    seconds: np.ndarray,
    metres: np.ndarray | None,
    report: CacheReport,
) -> None:
    """Fill ``seconds``/``metres`` from every usable cached entry of the family."""
    candidates = []
    for info in store.ls(kind=_KIND_SECONDS):
        described = store.info(info.key)
        if described is None:
            continue
        meta = described[1].get("meta", {})
        if _usable(meta, family_key, cutoff, distances):
            candidates.append((info, meta))
    # largest first: fewer entries to read
    candidates.sort(key=lambda c: -int(c[1].get("rows", 0)) * int(c[1].get("cols", 0)))
    for info, meta in candidates:
        missing = np.isnan(seconds)
        if not missing.any():
            break
        try:
            entry = open_matrix(store, info.key)
            if entry is None:
                continue
            with entry:
                rows_req, rows_ent = _positions(entry.row_labels, rl)
                cols_req, cols_ent = _positions(entry.col_labels, cl)
                if rows_req.size == 0 or cols_req.size == 0:
                    continue
                sub_missing = missing[np.ix_(rows_req, cols_req)]
                keep = sub_missing.any(axis=1)
                if not keep.any():
                    continue
                rows_req, rows_ent = rows_req[keep], rows_ent[keep]
                block = entry.take(rows_ent, cols_ent)
                mblock = None
                if metres is not None:
                    ment = open_matrix(store, meta["metres_key"])
                    if ment is None:
                        continue
                    with ment:
                        mblock = ment.take(rows_ent, cols_ent)
        except CacheError as exc:  # a corrupt block: quarantined by the store, recompute
            level = logging.INFO if isinstance(exc, CacheCorruptError) else logging.WARNING
            log.log(
                level, "cached matrix %s unusable (%s); its cells are recomputed", info.key, exc
            )
            continue
        tgt = np.ix_(rows_req, cols_req)
        report.cached_engines.update(meta.get("engines") or ["unrecorded"])
        hole = np.isnan(seconds[tgt])
        seconds[tgt] = np.where(hole, block, seconds[tgt])
        if metres is not None and mblock is not None:
            metres[tgt] = np.where(hole, mblock, metres[tgt])
        if (
            meta.get("rows") == rl.shape[0]
            and meta.get("cols") == cl.shape[0]
            and np.array_equal(entry.row_labels, rl)
            and np.array_equal(entry.col_labels, cl)
        ):
            report.status = "hit"
            report.key = info.key


def _compute_missing(
    graph: CompiledGraph,
    o: SnappedPoints,
    d: SnappedPoints,
    filled: np.ndarray,
    seconds: np.ndarray,
    metres: np.ndarray | None,
    cutoff: float | None,
    distances: bool,
    n_jobs: int | None,
    progress: ProgressCallback | None,
    report: CacheReport,
    engine: str | EngineChoice | None = None,
    build_progress: ProgressCallback | None = None,
) -> None:
    """Compute the missing cells with as few searches as possible.

    Three covers of the missing cells are compared and the one with the fewest searches runs:
    every row with a gap (forward), every column with a gap (reverse), or the rows that are
    mostly missing plus the columns still missing after them.
    """
    missing = ~filled
    row_missing = missing.sum(axis=1)
    any_rows = np.flatnonzero(row_missing > 0)
    any_cols = np.flatnonzero(missing.any(axis=0))
    mostly = np.flatnonzero(row_missing > missing.shape[1] // 2)
    still = missing.copy()
    still[mostly] = False
    rest_cols = np.flatnonzero(still.any(axis=0))
    empty = np.zeros(0, dtype=np.int64)
    options = [(any_rows, empty), (empty, any_cols), (mostly, rest_cols)]
    full_rows, cols = min(options, key=lambda rc: rc[0].size + rc[1].size)
    choice = resolve_engine(graph, engine, int(full_rows.size + cols.size), build_progress)
    report.engine = choice.describe()
    ones_o, ones_d = np.ones(len(o), bool), np.ones(len(d), bool)
    ch = None if choice.hierarchy is None else CHJob(choice.hierarchy, o, d, ones_o, ones_d, n_jobs)
    aug = augment(graph, o, d, ones_o, ones_d) if ch is None else None
    chunk = ch_block_rows(max(len(o), len(d))) if ch is not None else None

    def store_block(kind: str, idx: np.ndarray, sec: np.ndarray, met: np.ndarray | None) -> None:
        if kind == "rows":
            seconds[idx] = sec
            if metres is not None and met is not None:
                metres[idx] = met
        else:
            seconds[:, idx] = np.where(missing[:, idx], sec, seconds[:, idx])
            if metres is not None and met is not None:
                metres[:, idx] = np.where(missing[:, idx], met, metres[:, idx])

    tasks = block_tasks("rows", full_rows, chunk) + block_tasks("cols", cols, chunk)
    run_blocks(
        aug,
        tasks,
        cutoff=cutoff,
        distances=distances,
        n_jobs=n_jobs,
        on_block=store_block,
        progress=progress,
        ch=ch,
    )
    report.rows_computed = int(full_rows.size)
    report.cols_computed = int(cols.size)


def _store_result(
    store: Store,
    key: str,
    inputs: dict[str, Any],
    family_key: str,
    rl: np.ndarray,
    cl: np.ndarray,
    cutoff: float | None,
    seconds: np.ndarray,
    metres: np.ndarray | None,
    report: CacheReport,
) -> None:
    meta: dict[str, Any] = {
        "family_key": family_key,
        "family": inputs["family"],
        "rows": int(rl.shape[0]),
        "cols": int(cl.shape[0]),
        "cutoff_s": cutoff,
        "metres_key": None,
        "created_unix": time.time(),
        "engines": sorted(
            report.cached_engines | ({report.engine.split(" ")[1]} if report.engine else set())
        ),
    }
    try:
        if metres is not None:
            mkey = make_key(_KIND_METRES, {"seconds_key": key})
            put_matrix(
                store,
                mkey,
                _KIND_METRES,
                {"seconds_key": key},
                metres,
                row_labels=rl,
                col_labels=cl,
                meta={"seconds_key": key},
            )
            meta["metres_key"] = mkey
        put_matrix(
            store, key, _KIND_SECONDS, inputs, seconds, row_labels=rl, col_labels=cl, meta=meta
        )
        report.stored = True
    except CacheError as exc:
        log.warning("%s; the matrix is returned without being cached", exc)
        return
    _drop_subsumed(store, key, family_key, rl, cl, cutoff, metres is not None)


def _drop_subsumed(
    store: Store,
    key: str,
    family_key: str,
    rl: np.ndarray,
    cl: np.ndarray,
    cutoff: float | None,
    has_metres: bool,
) -> None:
    """Remove entries of the family that the new entry fully replaces."""
    rset, cset = set(rl.tolist()), set(cl.tolist())
    for info in store.ls(kind=_KIND_SECONDS):
        if info.key == key:
            continue
        described = store.info(info.key)
        if described is None:
            continue
        meta = described[1].get("meta", {})
        if meta.get("family_key") != family_key or meta.get("cutoff_s") != cutoff:
            continue
        if bool(meta.get("metres_key")) and not has_metres:
            continue
        entry = open_matrix(store, info.key)
        if entry is None:
            continue
        with entry:
            covered = (
                set(entry.row_labels.tolist()) <= rset and set(entry.col_labels.tolist()) <= cset
            )
        if covered:
            store.delete(info.key)
            if meta.get("metres_key"):
                store.delete(meta["metres_key"])
            log.info("cache entry %s is covered by %s: removed", info.key, key)


def precompute_matrix(
    graph: CompiledGraph,
    points: SnappedPoints,
    *,
    cutoff: float | None = None,
    distances: bool = False,
    n_jobs: int | None = None,
    block_rows: int = 256,
    progress: ProgressCallback | None = None,
    store: Store | None = None,
    engine: str | EngineChoice | None = None,
    build_progress: ProgressCallback | None = None,
    on_engine: Callable[[EngineChoice], None] | None = None,
    out: str | Path | None = None,
    client: Any = None,
    ids: np.ndarray | None = None,
    block_cols: int | None = None,
    compression: str | None = None,
    storage_options: dict[str, Any] | None = None,
    verify: bool = True,
    on_plan: Callable[[StorePlan], None] | None = None,
) -> tuple[str, int, int]:
    """Fill the cache (or a Zarr matrix store) with the square matrix of ``points``, resumably.

    Rows are computed in blocks of ``block_rows`` and each finished block is written at once;
    a run that is interrupted (Ctrl-C, a killed process, a reboot) resumes from the finished
    blocks. ``engine`` and ``build_progress`` are those of
    :func:`~roadnet.matrix.drive_time_matrix`; ``on_engine`` receives the engine chosen.
    Returns ``(key, blocks computed now, blocks total)``.

    With ``out`` (a folder or fsspec URL), the table goes into a Zarr v3 matrix store
    (:mod:`roadnet.zarr_store`) instead of a cache entry, chunked ``block_rows`` x
    ``block_cols``, and ``key`` is ``out``. Rows keep the order (and duplicates) of ``points``;
    ``ids`` names them (default: their positions). A store left by an interrupted run is
    resumed: with ``verify`` every block already written is read back and checked against its
    checksums, good blocks are skipped, damaged ones computed again (``on_plan`` receives the
    :class:`~roadnet.precompute.StorePlan` before computing). With ``client`` (a
    ``distributed.Client``) each block is one Dask task; the workers load the snapped points and
    the hierarchy (or graph) once from the cache folder, which they must be able to read at the
    same path, and write their blocks straight into the store, which they must be able to write.
    """
    n_jobs = check_n_jobs(n_jobs)
    if out is not None:
        return _precompute_into_store(
            graph,
            points,
            out=out,
            client=client,
            ids=ids,
            cutoff=cutoff,
            distances=distances,
            n_jobs=n_jobs,
            block_rows=block_rows,
            block_cols=block_cols,
            compression=compression,
            storage_options=storage_options,
            verify=verify,
            progress=progress,
            store=store,
            engine=engine,
            build_progress=build_progress,
            on_engine=on_engine,
            on_plan=on_plan,
        )
    if client is not None:
        raise InvalidArgumentError(
            "client needs out: distributed precompute writes into a Zarr store"
        )
    store = store if store is not None else open_store()
    if store is None:
        raise CacheError("precompute needs the cache: caching is disabled (--no-cache?)")
    family = _family(graph, points)
    family_key = make_key("matrix-family", family)
    labels = points.labels
    if np.unique(labels).shape[0] != labels.shape[0]:
        keep = np.sort(np.unique(labels, return_index=True)[1])
        points = points.subset(keep)
        labels = points.labels
    key, inputs = _matrix_key(family, labels, labels, cutoff, distances)
    if store.contains(key):
        return key, 0, 0
    n = len(points)
    meta: dict[str, Any] = {
        "family_key": family_key,
        "family": family,
        "rows": n,
        "cols": n,
        "cutoff_s": cutoff,
        "metres_key": None,
        "created_unix": time.time(),
    }
    parts = {
        "seconds": partial_matrix(
            store, key, _KIND_SECONDS, inputs, (n, n), labels, labels, block_rows, meta=meta
        )
    }
    if distances:
        mkey = make_key(_KIND_METRES, {"seconds_key": key})
        parts["metres"] = partial_matrix(
            store,
            mkey,
            _KIND_METRES,
            {"seconds_key": key},
            (n, n),
            labels,
            labels,
            block_rows,
            meta={"seconds_key": key},
        )
        meta["metres_key"] = mkey
    total_blocks = parts["seconds"].n_blocks
    computed = 0
    choice: EngineChoice | None = None
    for attempt in range(_FINISH_ATTEMPTS):
        todo = sorted(
            set(parts["seconds"].missing_blocks())
            | (set(parts["metres"].missing_blocks()) if distances else set())
        )
        if todo:
            try:
                choice = _compute_blocks(
                    store, key, graph, points, parts, todo, cutoff, distances, n_jobs,
                    block_rows, progress, engine if choice is None else choice,
                    build_progress, on_engine if choice is None else None,
                )  # fmt: skip
            except _FinishedElsewhereError:
                return key, computed, total_blocks
            computed += len(todo)
        if store.contains(key):  # another run of the same input finished it meanwhile
            return key, computed, total_blocks
        try:
            if distances:
                parts["metres"].finish()
            meta["engines"] = [choice.name] if choice is not None else ["unrecorded"]
            parts["seconds"].finish(meta=meta)
        except CacheCorruptError as exc:
            # a damaged block was removed by finish(): compute it again and finish again
            if attempt == _FINISH_ATTEMPTS - 1:
                raise
            log.warning("recomputing a damaged block: %s", exc)
            continue
        except IncompleteMatrixError:
            if store.contains(key):
                return key, computed, total_blocks
            if attempt == _FINISH_ATTEMPTS - 1:
                raise
            continue
        break
    return key, computed, total_blocks


class _FinishedElsewhereError(Exception):
    """Another process finished (and removed) the resumable matrix this run was writing."""


_FINISH_ATTEMPTS = 3


def _compute_blocks(
    store: Store,
    key: str,
    graph: CompiledGraph,
    points: SnappedPoints,
    parts: dict[str, Any],
    todo: list[int],
    cutoff: float | None,
    distances: bool,
    n_jobs: int | None,
    block_rows: int,
    progress: ProgressCallback | None,
    engine: str | EngineChoice | None,
    build_progress: ProgressCallback | None,
    on_engine: Callable[[EngineChoice], None] | None,
) -> EngineChoice:
    """Compute and write the row blocks ``todo`` of a precompute; returns the engine used."""
    n = len(points)
    rows_todo = [np.arange(*parts["seconds"].block_range(b)) for b in todo]
    choice = resolve_engine(graph, engine, sum(r.shape[0] for r in rows_todo), build_progress)
    if on_engine is not None:
        on_engine(choice)
    ones = np.ones(n, bool)
    ch = (
        None
        if choice.hierarchy is None
        else CHJob(choice.hierarchy, points, points, ones, ones, n_jobs)
    )
    aug = augment(graph, points, points, ones, ones) if ch is None else None
    labels_arr = points.labels

    def write(kind: str, idx: np.ndarray, sec: np.ndarray, met: np.ndarray | None) -> None:
        # a task holds one or more whole blocks
        for start in range(0, idx.shape[0], block_rows):
            rows = idx[start : start + block_rows]
            block = int(rows[0]) // block_rows
            bsec = sec[start : start + rows.shape[0]].copy()
            bmet = None if met is None else met[start : start + rows.shape[0]].copy()
            zero_same_points(bsec, bmet, labels_arr[rows], labels_arr)
            try:
                if bmet is not None:
                    parts["metres"].write_block(block, bmet)
                parts["seconds"].write_block(block, bsec)
            except CacheWriteError:
                if store.contains(key):
                    raise _FinishedElsewhereError(key) from None
                raise

    if ch is None:
        tasks = [("rows", r) for r in rows_todo]
    else:  # whole blocks grouped into larger hierarchy tasks
        per = max(1, ch_block_rows(n) // block_rows)
        tasks = [
            ("rows", np.concatenate(rows_todo[i : i + per])) for i in range(0, len(rows_todo), per)
        ]
    run_blocks(
        aug,
        tasks,
        cutoff=cutoff,
        distances=distances,
        n_jobs=n_jobs,
        on_block=write,
        progress=progress,
        ch=ch,
    )
    return choice


def _precompute_into_store(
    graph: CompiledGraph,
    points: SnappedPoints,
    *,
    out: str | Path,
    client: Any,
    ids: np.ndarray | None,
    cutoff: float | None,
    distances: bool,
    n_jobs: int | None,
    block_rows: int,
    block_cols: int | None,
    compression: str | None,
    storage_options: dict[str, Any] | None,
    verify: bool,
    progress: ProgressCallback | None,
    store: Store | None,
    engine: str | EngineChoice | None,
    build_progress: ProgressCallback | None,
    on_engine: Callable[[EngineChoice], None] | None,
    on_plan: Callable[[StorePlan], None] | None,
) -> tuple[str, int, int]:
    """:func:`precompute_matrix` into a Zarr matrix store (see there)."""
    if cutoff is not None and not cutoff > 0:
        raise InvalidArgumentError(f"cutoff must be > 0 seconds or None, got {cutoff!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise InvalidArgumentError(f"block_rows must be an integer >= 1, got {block_rows!r}")
    url = str(out)
    n = len(points)
    labels = points.labels
    gkey = graph_key(graph)
    expected = {
        "graph_key": gkey,
        "cutoff_s": cutoff,
        "metres": distances,
        "snap": points.params(),
        "block_rows": min(block_rows, n),
    }
    if matrix_store_exists(url, storage_options=storage_options):
        zs = open_matrix_store(url, mode="r+", storage_options=storage_options)
        check_same_table(zs, expected, (labels, labels))
        written, damaged = zs.scan(verify=verify and client is None)
        if verify and client is not None:  # the workers read back what is written
            damaged = verify_on_dask(client, zs, written)
            written = [b for b in written if b not in set(damaged)]
    else:
        zs = create_matrix_store(
            url,
            origin_ids=np.arange(n) if ids is None else ids,
            destination_ids=np.arange(n) if ids is None else ids,
            origin_lonlat=np.column_stack([points.lon, points.lat]),
            destination_lonlat=np.column_stack([points.lon, points.lat]),
            origin_labels=labels,
            destination_labels=labels,
            block_rows=block_rows,
            block_cols=block_cols,
            metres=distances,
            compression=compression,
            storage_options=storage_options,
            attrs={
                **expected,
                "speed_profile": graph.meta.get("speed_profile"),
                "graph_source": graph.meta.get("source"),
                "osm_timestamp": graph.meta.get("osm_timestamp"),
                "matrix_format": MATRIX_FORMAT,
            },
        )
        written, damaged = [], []
    done = set(written)
    todo = tuple(b for b in range(zs.n_row_blocks) if b not in done)
    plan = StorePlan(zs.n_row_blocks, len(written), len(damaged), todo)
    log.info(
        "matrix store %s: %d of %d row block(s) already written and verified, %d damaged, "
        "%d to compute",
        url,
        plan.skipped,
        plan.total,
        plan.damaged,
        len(todo),
    )
    if on_plan is not None:
        on_plan(plan)
    if not todo:
        if not zs.complete:
            zs.finish()
        _register_store(store, graph, points, url, storage_options, cutoff, distances)
        return url, 0, plan.total
    if zs.complete:
        zs.unfinish()
    rows_todo = sum(zs.row_block_range(b)[1] - zs.row_block_range(b)[0] for b in todo)
    choice = resolve_engine(graph, engine, rows_todo, build_progress)
    if on_engine is not None:
        on_engine(choice)
    zs.set_attrs(engine=choice.name)
    if client is None:
        receipts = run_here(
            zs,
            todo,
            points=points,
            hierarchy=choice.hierarchy,
            graph=graph if choice.hierarchy is None else None,
            cutoff=cutoff,
            distances=distances,
            n_jobs=n_jobs,
            progress=progress,
        )
    else:
        job = _block_job(graph, points, choice, store, url, storage_options, cutoff, distances)
        receipts = run_on_dask(client, job, todo, zs, progress=progress)
    recorded = zs.recorded_checksums()
    for r in receipts:
        if tuple(recorded[r.block].tolist()) != r.checksums:
            raise CacheError(
                f"row block {r.block} of {url} was overwritten by another writer after "
                f"{r.worker} wrote it: run one precompute per store at a time"
            )
    zs.finish(engine=choice.name)
    _register_store(store, graph, points, url, storage_options, cutoff, distances)
    return url, len(todo), plan.total


def _block_job(
    graph: CompiledGraph,
    points: SnappedPoints,
    choice: EngineChoice,
    store: Store | None,
    url: str,
    storage_options: dict[str, Any] | None,
    cutoff: float | None,
    distances: bool,
) -> BlockJob:
    """Put what the workers load into the cache and describe it (keys, not arrays)."""
    store = store if store is not None else open_store()
    if store is None:
        raise CacheError(
            "distributed precompute needs the cache: the workers load the snapped points and "
            "the hierarchy from the cache folder (caching is disabled: --no-cache?)"
        )
    gkey = graph_key(graph)
    arrays, meta = points_arrays(points)
    pkey, pinputs = points_cache_key(gkey, points)
    if not store.contains(pkey):
        store.put(pkey, "snapped-points", pinputs, arrays, meta)
    rkey = ensure_cached(graph, store, choice.hierarchy)
    return BlockJob(
        url=url,
        storage_options=storage_options,
        cache_dir=str(store.root),
        points_key=pkey,
        engine="ch" if choice.hierarchy is not None else "scipy-dijkstra",
        hierarchy_key=rkey if choice.hierarchy is not None else None,
        graph_key=None if choice.hierarchy is not None else rkey,
        cutoff=cutoff,
        distances=distances,
        n_jobs=1,
    )
