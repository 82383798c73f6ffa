"""Distributed precompute on a LocalCluster of 2 worker processes on 127.0.0.1.

Faults are injected deterministically: a worker SIGKILLs itself at a named point of a named
block (``ROADNET_FAULT_KILL``, set on the running workers), and a client process kills itself
from its progress callback after a given number of blocks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import roadnet
from roadnet.cached import precompute_matrix
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import graph_key
from roadnet.precompute import inject_fault, local_cluster, points_cache_key, worker_loads
from roadnet.zarr_store import open_matrix_store

distributed = pytest.importorskip("distributed")


def _points(g: CompiledGraph, n: int, seed: int) -> roadnet.SnappedPoints:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(np.flatnonzero(g.scc == 0), n, replace=False)
    return roadnet.snap_points(
        g, g.lon[nodes] + rng.normal(0, 5e-4, n), g.lat[nodes] + rng.normal(0, 5e-4, n)
    )


@pytest.fixture(scope="module")
def client():
    with local_cluster(2, dashboard=False) as cluster, distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


def _single(graph, pts, path, **kw) -> np.ndarray:
    precompute_matrix(graph, pts, out=path, n_jobs=1, **kw)
    return open_matrix_store(path).read()


def test_dask_store_equals_single_process_and_workers_load_once(andorra, client, tmp_path):
    pts = _points(andorra, 300, 11)
    kw = {"block_rows": 32, "block_cols": 128, "engine": "ch", "cutoff": 900.0}
    here = _single(andorra, pts, tmp_path / "here.zarr", **kw)
    url, done, total = precompute_matrix(
        andorra, pts, out=tmp_path / "dask.zarr", client=client, **kw
    )
    assert (done, total) == (10, 10)
    store = open_matrix_store(url)
    assert store.complete and store.attrs["cutoff_s"] == 900.0
    np.testing.assert_array_equal(store.read(), here)
    ref = roadnet.drive_time_matrix(andorra, pts, n_jobs=1, engine="scipy", cutoff=900.0)
    np.testing.assert_allclose(here, ref.seconds, rtol=1e-6)
    assert np.isinf(here).any()  # the cutoff bites
    # ten tasks on two workers: a worker that ran any loaded the points and hierarchy once
    pkey, _ = points_cache_key(graph_key(andorra), pts)
    loads = [w.get(pkey, 0) for w in client.run(worker_loads).values()]
    assert max(loads) == 1 and sum(loads) in (1, 2)
    # a chunk damaged later: the workers find it when the store is precomputed again
    chunk = tmp_path / "dask.zarr" / "seconds" / "c" / "4" / "1"
    chunk.write_bytes(chunk.read_bytes()[:-1])
    plans = []
    rerun = precompute_matrix(andorra, pts, out=url, client=client, on_plan=plans.append, **kw)
    assert rerun[1:] == (1, 10) and (plans[0].skipped, plans[0].damaged) == (9, 1)
    np.testing.assert_array_equal(open_matrix_store(url).read(), here)


def test_dask_dijkstra_engine_with_metres_equals_single_process(andorra, client, tmp_path):
    pts = _points(andorra, 100, 12)
    kw = {"block_rows": 30, "engine": "scipy", "distances": True}
    precompute_matrix(andorra, pts, out=tmp_path / "here.zarr", n_jobs=1, **kw)
    precompute_matrix(andorra, pts, out=tmp_path / "dask.zarr", client=client, **kw)
    here, there = (
        open_matrix_store(tmp_path / "here.zarr"),
        open_matrix_store(tmp_path / "dask.zarr"),
    )
    for name in ("seconds", "metres"):
        np.testing.assert_array_equal(there.read(name=name), here.read(name=name))
    assert there.attrs["engine"] == "scipy-dijkstra"


def test_worker_killed_mid_block_is_rerun_and_the_store_is_complete(andorra, client, tmp_path):
    pts = _points(andorra, 240, 13)
    kw = {"block_rows": 24, "block_cols": 100, "engine": "ch"}
    here = _single(andorra, pts, tmp_path / "here.zarr", **kw)
    marker = tmp_path / "killed"
    # the worker that computes block 3 kills itself after its data chunks, before its checksums
    client.run(inject_fault, f"after-data:3:{marker}")
    try:
        url, done, total = precompute_matrix(
            andorra, pts, out=tmp_path / "dask.zarr", client=client, **kw
        )
    finally:
        client.run(inject_fault, None)
    assert marker.is_file()  # the fault happened ...
    with pytest.raises(ProcessLookupError):  # ... and killed that worker process
        os.kill(int(marker.read_text()), 0)
    assert (done, total) == (10, 10)
    store = open_matrix_store(url)
    assert store.complete and store.scan() == (list(range(10)), [])
    got = store.read()
    assert not np.isnan(got).any()  # 0 missing cells
    np.testing.assert_array_equal(got, here)  # 0 wrong cells
    np.testing.assert_array_equal(
        store.recorded_checksums(), open_matrix_store(tmp_path / "here.zarr").recorded_checksums()
    )
    client.wait_for_workers(2)


_CLIENT = """
import os, signal, sys
import numpy as np
import distributed
import roadnet
from roadnet.cached import precompute_matrix
from roadnet.graph import load_graph

graph = load_graph(sys.argv[1])
xy = np.load(sys.argv[2])
pts = roadnet.snap_points(graph, xy[:, 0], xy[:, 1])
kill_after = int(sys.argv[5])
seen = []

def progress(done, total):
    seen.append(done)
    if len(seen) > kill_after:  # the first call is (0, total)
        os.kill(os.getpid(), signal.SIGKILL)

with distributed.Client(sys.argv[3]) as client:
    precompute_matrix(
        graph, pts, out=sys.argv[4], client=client, block_rows=20, engine="ch", progress=progress
    )
"""


def test_client_killed_mid_run_resumes_with_only_the_missing_blocks(andorra, client, tmp_path):
    pts = _points(andorra, 200, 14)
    gpath = andorra.save(tmp_path / "andorra.graph")
    np.save(tmp_path / "xy.npy", np.column_stack([pts.lon, pts.lat]))
    url = str(tmp_path / "dask.zarr")
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(_CLIENT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run(
        [sys.executable, str(script), str(gpath), str(tmp_path / "xy.npy"),
         client.scheduler.address, url, "3"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert not open_matrix_store(url).complete
    plans = []
    _, done, total = precompute_matrix(
        andorra, pts, out=url, client=client, block_rows=20, engine="ch", on_plan=plans.append
    )
    plan = plans[0]
    # at least the 3 blocks the dead client received are kept (tasks already running on the
    # workers when it died may have finished too); only the others are computed
    assert total == 10 and plan.skipped >= 3 and plan.damaged == 0
    assert done == total - plan.skipped == len(plan.todo)
    here = _single(andorra, pts, tmp_path / "here.zarr", block_rows=20, engine="ch")
    np.testing.assert_array_equal(open_matrix_store(url).read(), here)
