"""Zarr matrix stores: layout, subset reads, checksums, resume, and readers without roadnet."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import roadnet
from roadnet.cached import precompute_matrix
from roadnet.exceptions import CorruptChunkError, MatrixStoreMismatchError
from roadnet.graph import CompiledGraph
from roadnet.zarr_store import chunk_checksum, create_matrix_store, open_matrix_store


def _points(g: CompiledGraph, n: int, seed: int) -> roadnet.SnappedPoints:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(np.flatnonzero(g.scc == 0), n, replace=False)
    return roadnet.snap_points(
        g, g.lon[nodes] + rng.normal(0, 5e-4, n), g.lat[nodes] + rng.normal(0, 5e-4, n)
    )


def _toy_store(path: Path, n: int = 10, m: int = 7, block_rows: int = 4, block_cols: int = 3):
    rng = np.random.default_rng(0)
    values = rng.random((n, m)).astype(np.float32) * 1000
    values[0, 1] = np.inf
    store = create_matrix_store(
        path,
        origin_ids=np.array([f"o{i}" for i in range(n)]),
        destination_ids=np.arange(100, 100 + m),
        origin_lonlat=rng.random((n, 2)),
        destination_lonlat=rng.random((m, 2)),
        origin_labels=np.arange(n),
        destination_labels=np.arange(m),
        block_rows=block_rows,
        block_cols=block_cols,
        attrs={"graph_key": "toy"},
    )
    return store, values


def test_store_reads_any_subset_from_the_chunks_it_needs(tmp_path) -> None:
    store, values = _toy_store(tmp_path / "t.zarr")
    assert (store.n_row_blocks, store.n_col_blocks) == (3, 3)
    for b in range(store.n_row_blocks):
        r0, r1 = store.row_block_range(b)
        sums = store.write_row_block(b, values[r0:r1])
        assert sums == [chunk_checksum(values[r0:r1, c : c + 3]) for c in range(0, 7, 3)]
    assert store.scan() == ([0, 1, 2], [])
    np.testing.assert_array_equal(store.read(), values)
    rows, cols = np.array([9, 0, 5, 5]), np.array([6, 1])
    np.testing.assert_array_equal(store.read(rows, cols), values[np.ix_(rows, cols)])
    np.testing.assert_array_equal(store.read(slice(2, 6), None), values[2:6])
    store.finish(engine="toy")
    again = open_matrix_store(tmp_path / "t.zarr")
    assert again.complete and again.attrs["engine"] == "toy"
    assert again.attrs["checksums"]["seconds"] == again.recorded_checksums().tolist()
    assert again.origin_ids.tolist()[:2] == ["o0", "o1"]
    assert again.destination_ids.tolist()[:2] == [100, 101]


def test_store_reports_unwritten_and_damaged_chunks_on_read(tmp_path) -> None:
    store, values = _toy_store(tmp_path / "t.zarr")
    store.write_row_block(0, values[0:4])
    store.write_row_block(2, values[8:10])
    with pytest.raises(CorruptChunkError) as err:
        store.read(np.array([5]), np.array([0]))
    assert err.value.blocks == [(1, 0)]
    np.testing.assert_array_equal(store.read(np.arange(4)), values[:4])  # written rows read
    # damage one chunk on disk: a flipped byte in the float data
    chunk = tmp_path / "t.zarr" / "seconds" / "c" / "2" / "1"
    raw = bytearray(chunk.read_bytes())
    raw[5] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(CorruptChunkError) as err:
        store.read(np.array([9]), np.array([4]))
    assert err.value.blocks == [(2, 1)]
    assert store.scan() == ([0], [2])


def test_precompute_into_store_equals_the_drive_time_matrix(andorra, tmp_path) -> None:
    pts = _points(andorra, 150, 4)
    ids = np.array([f"p{i}" for i in range(150)])
    url, done, total = precompute_matrix(
        andorra, pts, out=tmp_path / "m.zarr", ids=ids, block_rows=40, block_cols=64,
        engine="ch", distances=True, n_jobs=1,
    )  # fmt: skip
    assert (url, done, total) == (str(tmp_path / "m.zarr"), 4, 4)
    ref = roadnet.drive_time_matrix(andorra, pts, n_jobs=1, engine="scipy", distances=True)
    store = open_matrix_store(url)
    assert store.complete and store.has_metres
    np.testing.assert_allclose(store.read(), ref.seconds, rtol=1e-6)
    np.testing.assert_allclose(store.read(name="metres"), ref.metres, rtol=1e-5)
    attrs = store.attrs
    assert attrs["engine"] == "ch" and attrs["cutoff_s"] is None and attrs["graph_key"]
    assert attrs["speed_profile"] == andorra.meta["speed_profile"]
    assert store.origin_ids.tolist() == ids.tolist()
    np.testing.assert_allclose(store.lonlat("destination"), np.column_stack([pts.lon, pts.lat]))
    # the same table again: every block verified and skipped
    plans = []
    again = precompute_matrix(
        andorra, pts, out=url, block_rows=40, distances=True, on_plan=plans.append
    )
    assert again[1:] == (0, 4)
    assert (plans[0].skipped, plans[0].todo) == (4, ())


def test_precompute_recomputes_a_damaged_chunk_and_refuses_another_table(andorra, tmp_path):
    pts = _points(andorra, 120, 5)
    url = str(tmp_path / "m.zarr")
    precompute_matrix(andorra, pts, out=url, block_rows=50, engine="scipy", n_jobs=1)
    good = open_matrix_store(url).read()
    chunk = Path(url) / "seconds" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-9])  # truncated, as by a full disk
    with pytest.raises(CorruptChunkError):
        open_matrix_store(url).read(np.array([60]), np.array([0]))
    plans = []
    _, done, total = precompute_matrix(
        andorra, pts, out=url, block_rows=50, engine="scipy", n_jobs=1, on_plan=plans.append
    )
    assert (done, total) == (1, 3) and (plans[0].skipped, plans[0].damaged) == (2, 1)
    np.testing.assert_array_equal(open_matrix_store(url).read(), good)
    with pytest.raises(MatrixStoreMismatchError, match="cutoff_s"):
        precompute_matrix(andorra, pts, out=url, block_rows=50, cutoff=600.0)
    with pytest.raises(MatrixStoreMismatchError, match="points"):
        precompute_matrix(andorra, _points(andorra, 120, 6), out=url, block_rows=50)


_BLOCKER = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"roadnet", "cache", "optimizer", "territory"}:
            raise ImportError(f"{name} is blocked: the store must open without roadnet")
        return None
sys.meta_path.insert(0, _Block())
"""


def test_store_opens_with_zarr_xarray_and_dask_alone(andorra, tmp_path) -> None:
    pts = _points(andorra, 90, 7)
    ids = np.array([f"z{i}" for i in range(90)])
    url = str(tmp_path / "m.zarr")
    precompute_matrix(andorra, pts, out=url, ids=ids, block_rows=32, block_cols=40, n_jobs=1)
    expected = open_matrix_store(url).read()
    script = _BLOCKER + textwrap.dedent(
        f"""
        import json, zlib
        import numpy as np, zarr, xarray as xr, dask.array as da
        url = {url!r}
        g = zarr.open(url, mode="r")
        z = g["seconds"]
        sums = np.asarray(g["checksum_seconds"][:])
        ok = all(
            zlib.crc32(np.ascontiguousarray(z[r:r + 32, c:c + 40], dtype="<f4").tobytes())
            == sums[r // 32, c // 40]
            for r in range(0, 90, 32) for c in range(0, 90, 40)
        )
        ds = xr.open_zarr(url)
        sub = ds.seconds.sel(origin=["z5", "z70"], destination=["z1", "z2", "z89"]).values
        arr = da.from_zarr(url, component="seconds")
        print(json.dumps({{
            "zarr_sum": float(np.nansum(np.where(np.isinf(z[:]), 0, z[:]))),
            "dask_sum": float(da.where(da.isinf(arr), 0, arr).sum().compute()),
            "sub": sub.tolist(),
            "dims": list(ds.seconds.dims),
            "complete": bool(g.attrs["complete"]),
            "engine": g.attrs["engine"],
            "chunks_ok": bool(ok),
            "blocked": "roadnet" not in sys.modules,
        }}))
        """
    )
    res = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    finite = np.where(np.isinf(expected), 0, expected)
    assert got["zarr_sum"] == pytest.approx(float(finite.sum()), rel=1e-6)
    assert got["dask_sum"] == pytest.approx(float(finite.sum()), rel=1e-6)
    np.testing.assert_array_equal(np.array(got["sub"]), expected[np.ix_([5, 70], [1, 2, 89])])
    assert got["dims"] == ["origin", "destination"]
    assert got["complete"] and got["chunks_ok"] and got["blocked"]
    assert got["engine"] in ("ch", "scipy-dijkstra")


def test_matrix_requests_read_subsets_from_a_precomputed_store(andorra, tmp_path) -> None:
    from roadnet.cached import cached_drive_time_matrix

    pts = _points(andorra, 160, 8)
    url = str(tmp_path / "m.zarr")
    precompute_matrix(andorra, pts, out=url, block_rows=40, block_cols=50, n_jobs=1)
    sub = pts.subset(np.array([150, 3, 77, 41, 120]))
    ref = roadnet.drive_time_matrix(andorra, sub, n_jobs=1, engine="scipy")
    m, rep = cached_drive_time_matrix(andorra, sub, n_jobs=1)
    assert rep.status == "assembled" and rep.rows_computed == rep.cols_computed == 0
    np.testing.assert_allclose(m.seconds, ref.seconds, rtol=1e-6)
    # a damaged chunk is detected on read and its cells computed (the rest still read)
    chunk = Path(url) / "seconds" / "c" / "1" / "0"  # rows 40-79, columns 0-49: row 77, col 3, 41
    raw = bytearray(chunk.read_bytes())
    raw[100] ^= 0x01
    chunk.write_bytes(bytes(raw))
    other = pts.subset(np.array([77, 3, 41, 150, 10]))
    m2, rep2 = cached_drive_time_matrix(andorra, other, n_jobs=1)
    assert rep2.status == "partial" and 0 < rep2.rows_computed + rep2.cols_computed < 5
    np.testing.assert_allclose(
        m2.seconds, roadnet.drive_time_matrix(andorra, other, n_jobs=1).seconds, rtol=1e-6
    )


def test_precompute_into_an_fsspec_url(andorra) -> None:
    import uuid

    pts = _points(andorra, 50, 9)
    url = f"memory://roadnet-test-{uuid.uuid4().hex}/m.zarr"
    assert precompute_matrix(andorra, pts, out=url, block_rows=20, n_jobs=1)[1:] == (3, 3)
    store = open_matrix_store(url)
    assert store.complete
    np.testing.assert_allclose(
        store.read(), roadnet.drive_time_matrix(andorra, pts, n_jobs=1).seconds, rtol=1e-6
    )
