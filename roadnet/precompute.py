"""Square drive-time tables computed block by block into a Zarr matrix store, on Dask or here.

The table is cut into row blocks (the chunk height of the store). Each block is one task that
computes its rows against every destination and writes them straight into the store
(:meth:`~roadnet.zarr_store.MatrixStore.write_row_block`: data chunks first, then the block's
checksum row), returning only a small :class:`BlockReceipt`.

On Dask (:func:`run_on_dask`) the tasks carry a :class:`BlockJob` (a few hundred bytes: store
URL, cache folder, entry keys); each worker process loads the snapped points and the contraction
hierarchy (or the graph, on the Dijkstra engine) from the cache folder **once**, on its first
task, and keeps them for the next ones (:func:`worker_engine`). Nothing of size goes through the
scheduler. A worker that dies mid-block leaves that block without its checksum row; Dask reruns
the task elsewhere and the block is written again whole.

:func:`roadnet.cached.precompute_matrix` with ``out=`` prepares the cache entries, plans the
blocks and calls these functions; use it rather than this module directly.

Fault injection (tests only): ``ROADNET_FAULT_KILL="after-data:<block>:<marker file>"`` makes the
process computing row block ``<block>`` SIGKILL itself after writing the block's data chunks and
before its checksum row, once (the marker file, created exclusively, records that it happened).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cache import Store, make_key
from roadnet.ch import Hierarchy
from roadnet.exceptions import InvalidArgumentError
from roadnet.graph import CompiledGraph
from roadnet.matrix import CHJob, augment, run_blocks, zero_same_points
from roadnet.snap import SnappedPoints
from roadnet.zarr_store import MatrixStore, open_matrix_store

__all__ = [
    "BlockJob",
    "BlockReceipt",
    "StorePlan",
    "compute_block",
    "inject_fault",
    "local_cluster",
    "points_arrays",
    "points_cache_key",
    "points_from_arrays",
    "run_here",
    "run_on_dask",
    "verify_on_dask",
    "worker_engine",
    "worker_loads",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
FAULT_ENV = "ROADNET_FAULT_KILL"


@dataclasses.dataclass(frozen=True)
class BlockJob:
    """What a worker needs to compute row blocks of one table (small: sent with each task).

    Attributes
    ----------
    url, storage_options
        The matrix store (a path or fsspec URL every worker can write).
    cache_dir
        The cache folder every worker can read (same path on every machine).
    points_key
        Cache entry of the snapped points (origins = destinations).
    engine
        ``"ch"`` or ``"scipy-dijkstra"``.
    hierarchy_key, graph_key
        Cache entries of the hierarchy (``"ch"``) or the compiled graph (Dijkstra).
    cutoff, distances
        As in :func:`roadnet.matrix.drive_time_matrix`.
    n_jobs
        Threads per task on the hierarchy (1 for one thread per Dask worker thread).
    """

    url: str
    storage_options: dict[str, Any] | None
    cache_dir: str
    points_key: str
    engine: str
    hierarchy_key: str | None
    graph_key: str | None
    cutoff: float | None
    distances: bool
    n_jobs: int | None = 1


@dataclasses.dataclass(frozen=True)
class BlockReceipt:
    """What a finished block task returns.

    Attributes
    ----------
    block
        Row block.
    rows
        ``(start, stop)`` rows.
    checksums
        CRC-32 of each seconds chunk of the block (as recorded in the store).
    seconds
        Wall time of the task (compute + write).
    worker
        ``host:pid`` of the process that computed it.
    """

    block: int
    rows: tuple[int, int]
    checksums: tuple[int, ...]
    seconds: float
    worker: str


@dataclasses.dataclass(frozen=True)
class StorePlan:
    """What a precompute into a store does, decided before computing.

    Attributes
    ----------
    total
        Row blocks of the table.
    skipped
        Blocks already written and verified against their checksums (not computed again).
    damaged
        Blocks written earlier whose chunks fail their checksum (computed again).
    todo
        Blocks to compute now (missing + damaged), in order.
    """

    total: int
    skipped: int
    damaged: int
    todo: tuple[int, ...]


# --------------------------------------------------------------------------- snapped points
def points_arrays(points: SnappedPoints) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of snapped points, for the cache."""
    arrays, meta = {}, {}
    for f in dataclasses.fields(points):
        value = getattr(points, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        else:
            meta[f.name] = value
    return arrays, meta


def points_cache_key(graph_key: str, points: SnappedPoints) -> tuple[str, dict[str, Any]]:
    """Cache key (and inputs) of snapped points on the graph of ``graph_key``."""
    inputs = {"graph": graph_key, "lon": points.lon, "lat": points.lat, "snap": points.params()}
    return make_key("snapped-points", inputs), inputs


def points_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> SnappedPoints:
    """Snapped points from :func:`points_arrays`."""
    values = {**{k: np.asarray(v) for k, v in arrays.items()}, **meta}
    return SnappedPoints(**{f.name: values[f.name] for f in dataclasses.fields(SnappedPoints)})


# --------------------------------------------------------------------------- block engine
@dataclasses.dataclass
class _Engine:
    """The loaded parts that compute row blocks of one table."""

    points: SnappedPoints
    ch: CHJob | None
    aug: Any
    cutoff: float | None
    distances: bool
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Seconds (and metres) of rows ``start:stop`` against every destination."""
        got: list[tuple[np.ndarray, np.ndarray | None]] = []

        def keep(kind: str, idx: np.ndarray, sec: np.ndarray, met: np.ndarray | None) -> None:
            got.append((sec, met))

        task = [("rows", np.arange(start, stop))]
        kw = {"cutoff": self.cutoff, "distances": self.distances, "on_block": keep}
        if self.ch is not None:
            run_blocks(None, task, n_jobs=self.ch.n_jobs, ch=self.ch, **kw)  # type: ignore[arg-type]
        else:
            with self.lock:  # the Dijkstra runner keeps its graph in a module-level slot
                run_blocks(self.aug, task, n_jobs=1, **kw)  # type: ignore[arg-type]
        sec, met = got[0]
        sec = np.ascontiguousarray(sec, dtype=np.float32)
        met = None if met is None else np.ascontiguousarray(met, dtype=np.float32)
        labels = self.points.labels
        zero_same_points(sec, met, labels[start:stop], labels)
        return sec, met


def _engine(
    points: SnappedPoints,
    hierarchy: Hierarchy | None,
    graph: CompiledGraph | None,
    cutoff: float | None,
    distances: bool,
    n_jobs: int | None,
) -> _Engine:
    ones = np.ones(len(points), bool)
    if hierarchy is not None:
        ch = CHJob(hierarchy, points, points, ones, ones, n_jobs)
        return _Engine(points, ch, None, cutoff, distances)
    if graph is None:
        raise InvalidArgumentError("a block engine needs a hierarchy or a graph")
    return _Engine(points, None, augment(graph, points, points, ones, ones), cutoff, distances)


_WORKER_ENGINES: collections.OrderedDict[tuple[Any, ...], _Engine] = collections.OrderedDict()
_WORKER_LOADS: collections.Counter[str] = collections.Counter()
_WORKER_LOCK = threading.Lock()
_WORKER_KEEP = 2


def _load_entry(store: Store, key: str, what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    entry = store.get(key, mmap=True)
    if entry is None:
        raise FileNotFoundError(
            f"{what} {key} is not in the cache folder {store.root} as seen by this worker "
            f"({socket.gethostname()}): workers must read the same cache folder as the client"
        )
    return dict(entry.arrays), dict(entry.meta)


def worker_engine(job: BlockJob) -> _Engine:
    """The block engine of ``job`` in this process: loaded from the cache on first use, kept.

    At most two tables' engines are kept per process (least recently used dropped).
    """
    key = dataclasses.astuple(dataclasses.replace(job, url="", storage_options=None))
    with _WORKER_LOCK:
        if key in _WORKER_ENGINES:
            _WORKER_ENGINES.move_to_end(key)
            return _WORKER_ENGINES[key]
        t0 = time.perf_counter()
        store = Store(job.cache_dir, readonly=True)
        points = points_from_arrays(*_load_entry(store, job.points_key, "snapped points"))
        hierarchy = graph = None
        if job.engine == "ch":
            if job.hierarchy_key is None:
                raise InvalidArgumentError("a 'ch' block job needs hierarchy_key")
            hierarchy = Hierarchy.from_arrays(
                *_load_entry(store, job.hierarchy_key, "contraction hierarchy")
            )
        else:
            if job.graph_key is None:
                raise InvalidArgumentError("a Dijkstra block job needs graph_key")
            graph = CompiledGraph.from_arrays(*_load_entry(store, job.graph_key, "road graph"))
        engine = _engine(points, hierarchy, graph, job.cutoff, job.distances, job.n_jobs)
        _WORKER_ENGINES[key] = engine
        while len(_WORKER_ENGINES) > _WORKER_KEEP:
            _WORKER_ENGINES.popitem(last=False)
        _WORKER_LOADS[job.points_key] += 1
        log.info(
            "worker %d loaded %s engine for %d points in %.2f s",
            os.getpid(),
            job.engine,
            len(points),
            time.perf_counter() - t0,
        )
        return engine


def worker_loads() -> dict[str, int]:
    """How many times this process loaded each table's engine (points key -> count)."""
    return dict(_WORKER_LOADS)


def _fault_point(name: str, block: int) -> None:
    """Tests only: SIGKILL this process at point ``name`` of ``block`` once (see module doc)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, blk, marker = spec.split(":", 2)
    if point != name or int(blk) != block:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    log.warning("fault injection: process %d killed at %s of block %d", os.getpid(), name, block)
    os.kill(os.getpid(), signal.SIGKILL)


def inject_fault(spec: str | None) -> None:
    """Tests only: set (or with ``None`` clear) :data:`FAULT_ENV` in this process.

    Run it on Dask workers with ``client.run(inject_fault, "after-data:3:/tmp/marker")``.
    """
    if spec is None:
        os.environ.pop(FAULT_ENV, None)
    else:
        os.environ[FAULT_ENV] = spec


def _write(engine: _Engine, store: MatrixStore, block: int) -> BlockReceipt:
    t0 = time.perf_counter()
    r0, r1 = store.row_block_range(block)
    sec, met = engine.rows(r0, r1)
    return _put(store, block, sec, met, t0)


def _put(
    store: MatrixStore, block: int, sec: np.ndarray, met: np.ndarray | None, t0: float
) -> BlockReceipt:
    sums = store.write_row_block(
        block, sec, met, before_checksums=lambda: _fault_point("after-data", block)
    )
    return BlockReceipt(
        block=block,
        rows=store.row_block_range(block),
        checksums=tuple(sums),
        seconds=time.perf_counter() - t0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


def compute_block(job: BlockJob, block: int) -> BlockReceipt:
    """The Dask task: compute row block ``block`` of ``job`` and write it into the store."""
    engine = worker_engine(job)
    store = open_matrix_store(job.url, mode="r+", storage_options=job.storage_options)
    return _write(engine, store, block)


# --------------------------------------------------------------------------- drivers
def run_here(
    store: MatrixStore,
    blocks: tuple[int, ...],
    *,
    points: SnappedPoints,
    hierarchy: Hierarchy | None,
    graph: CompiledGraph | None,
    cutoff: float | None,
    distances: bool,
    n_jobs: int | None,
    progress: ProgressCallback | None = None,
) -> list[BlockReceipt]:
    """Compute ``blocks`` in this process (hierarchy threads: ``n_jobs``), in order.

    Each block is written by a background thread while the next one is computed (at most two
    blocks in memory).
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    engine = _engine(points, hierarchy, graph, cutoff, distances, n_jobs)
    rows_total = int(sum(np.subtract(*store.row_block_range(b)[::-1]) for b in blocks))
    done = 0
    if progress:
        progress(0, rows_total)
    receipts: list[BlockReceipt] = []

    def collect(pending: Future[BlockReceipt] | None) -> None:
        nonlocal done
        if pending is None:
            return
        receipts.append(pending.result())
        done += receipts[-1].rows[1] - receipts[-1].rows[0]
        if progress:
            progress(done, rows_total)

    pending: Future[BlockReceipt] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="roadnet-store-write") as pool:
        for b in blocks:
            t0 = time.perf_counter()
            r0, r1 = store.row_block_range(b)
            sec, met = engine.rows(r0, r1)
            collect(pending)
            pending = pool.submit(_put, store, b, sec, met, t0)
        collect(pending)
    return receipts


def run_on_dask(
    client: Any,
    job: BlockJob,
    blocks: tuple[int, ...],
    store: MatrixStore,
    *,
    progress: ProgressCallback | None = None,
    on_receipt: Callable[[BlockReceipt], None] | None = None,
) -> list[BlockReceipt]:
    """Submit one task per block to ``client`` (a ``distributed.Client``) and gather receipts.

    Tasks are named ``roadnet-block-<token>-<block>`` so a dashboard shows them by block. A
    worker lost mid-task is handled by Dask (the task reruns on another worker).
    """
    from dask.base import tokenize
    from distributed import as_completed

    token = tokenize(job)
    rows_total = int(sum(np.subtract(*store.row_block_range(b)[::-1]) for b in blocks))
    futures = [
        client.submit(compute_block, job, b, key=f"roadnet-block-{token}-{b}", pure=False)
        for b in blocks
    ]
    done = 0
    if progress:
        progress(0, rows_total)
    receipts: list[BlockReceipt] = []
    try:
        for fut in as_completed(futures):
            receipt: BlockReceipt = fut.result()
            receipts.append(receipt)
            done += receipt.rows[1] - receipt.rows[0]
            if on_receipt is not None:
                on_receipt(receipt)
            if progress:
                progress(done, rows_total)
    finally:
        for fut in futures:
            fut.release()
    return sorted(receipts, key=lambda r: r.block)


def _verify_block(url: str, storage_options: dict[str, Any] | None, block: int) -> bool:
    return open_matrix_store(url, storage_options=storage_options).verify_row_block(block)


def verify_on_dask(client: Any, store: MatrixStore, blocks: list[int]) -> list[int]:
    """The ``blocks`` of ``store`` whose chunks fail their checksums, checked by the workers.

    A rerun of a large table reads back what is already written; the workers share the read.
    """
    futures = [
        client.submit(_verify_block, store.url, store.storage_options, b, pure=False)
        for b in blocks
    ]
    try:
        ok = client.gather(futures)
    finally:
        for fut in futures:
            fut.release()
    return [b for b, good in zip(blocks, ok, strict=True) if not good]


def local_cluster(
    n_workers: int = 2,
    *,
    threads_per_worker: int = 1,
    dashboard: bool = True,
    memory_limit: str | int = "auto",
) -> Any:
    """A ``distributed.LocalCluster`` of worker processes on 127.0.0.1 (nothing listens wider).

    Returns the cluster; ``distributed.Client(cluster)`` connects to it and
    ``cluster.dashboard_link`` is the dashboard (when ``dashboard``).
    """
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        # the scheduler's HTTP server (dashboard, health) listens on a free port: None would
        # mean distributed's default 8787, which another cluster on the machine may hold
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs=None if dashboard else {"dashboard": False},
        memory_limit=memory_limit,
    )
