"""Graphs and matrices through the cache: hits, incremental assembly, corruption, resume."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import roadnet
from cache import CacheCorruptWarning, Store
from roadnet.cached import cached_drive_time_matrix, precompute_matrix
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import cached_graph
from roadnet.speed import SpeedProfile


def _points(g: CompiledGraph, n: int, seed: int) -> roadnet.SnappedPoints:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(np.flatnonzero(g.scc == 0), n, replace=False)
    return roadnet.snap_points(
        g, g.lon[nodes] + rng.normal(0, 5e-4, n), g.lat[nodes] + rng.normal(0, 5e-4, n)
    )


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def test_second_identical_request_is_served_from_cache(andorra, store) -> None:
    pts = _points(andorra, 40, 1)
    m1, r1 = cached_drive_time_matrix(andorra, pts, store=store, n_jobs=1)
    assert r1.status == "miss" and r1.rows_computed == 40 and r1.stored
    m2, r2 = cached_drive_time_matrix(andorra, pts, store=store, n_jobs=1)
    assert r2.status == "hit" and r2.rows_computed == 0 and r2.cols_computed == 0
    assert "served from cache" in r2.describe()
    np.testing.assert_array_equal(m1.seconds, m2.seconds)
    direct = roadnet.drive_time_matrix(andorra, pts, n_jobs=1)
    np.testing.assert_array_equal(m1.seconds, direct.seconds)


def test_incremental_request_computes_only_missing_rows_and_columns(andorra, store) -> None:
    base = _points(andorra, 60, 2)
    cached_drive_time_matrix(andorra, base, store=store, n_jobs=1)
    extra = _points(andorra, 3, 3)
    both = roadnet.snap_points(andorra, np.r_[base.lon, extra.lon], np.r_[base.lat, extra.lat])
    m, rep = cached_drive_time_matrix(andorra, both, store=store, n_jobs=1)
    assert rep.status == "partial"
    assert (rep.rows_computed, rep.cols_computed) == (3, 3)  # 6 searches instead of 63
    assert rep.cells_from_cache == 60 * 60
    np.testing.assert_allclose(
        m.seconds, roadnet.drive_time_matrix(andorra, both, n_jobs=1).seconds, rtol=1e-6
    )
    # the union replaced the entry it covers
    assert len(store.ls(kind="matrix")) == 1
    # a subset in another order is assembled without routing
    sub = both.subset(np.array([62, 5, 0, 33]))
    m3, rep3 = cached_drive_time_matrix(andorra, sub, store=store, n_jobs=1)
    assert rep3.status == "assembled" and rep3.rows_computed == 0
    np.testing.assert_array_equal(m3.seconds, m.seconds[np.ix_([62, 5, 0, 33], [62, 5, 0, 33])])


def test_rectangular_and_metres_and_cutoff_reuse(andorra, store) -> None:
    o = _points(andorra, 20, 4)
    d = _points(andorra, 30, 5)
    full, _ = cached_drive_time_matrix(andorra, o, d, distances=True, store=store, n_jobs=1)
    # a cutoff request is served from the entry without cutoff (thresholded)
    cut, rep = cached_drive_time_matrix(andorra, o, d, cutoff=400.0, store=store, n_jobs=1)
    assert rep.status in {"hit", "assembled"}
    expect = np.where(full.seconds <= 400, full.seconds, np.inf)
    np.testing.assert_array_equal(cut.seconds, expect)
    # metres come from the cache too
    again, rep = cached_drive_time_matrix(andorra, o, d, distances=True, store=store, n_jobs=1)
    assert rep.status == "hit"
    assert again.metres is not None and full.metres is not None
    np.testing.assert_array_equal(again.metres, full.metres)


def test_byte_flip_is_detected_and_recomputed(andorra, store) -> None:
    pts = _points(andorra, 30, 6)
    m1, r1 = cached_drive_time_matrix(andorra, pts, store=store, n_jobs=1)
    info = store.info(r1.key)
    assert info is not None
    matrix_file = next(p for p in info[0].path.iterdir() if p.name == "matrix.npy")
    raw = bytearray(matrix_file.read_bytes())
    raw[-17] ^= 0xFF  # one byte in the last row block
    matrix_file.write_bytes(bytes(raw))
    with pytest.warns(CacheCorruptWarning):
        m2, r2 = cached_drive_time_matrix(andorra, pts, store=store, n_jobs=1)
    assert r2.status in {"miss", "partial"}
    np.testing.assert_array_equal(m2.seconds, m1.seconds)
    assert any(store.quarantine_dir.iterdir())


def test_unwritable_cache_still_returns_the_result(andorra, store, monkeypatch, caplog) -> None:
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)  # every atomic rename fails
    pts = _points(andorra, 10, 7)
    m, rep = cached_drive_time_matrix(andorra, pts, store=store, n_jobs=1)
    assert not rep.stored
    assert np.isfinite(m.seconds).all()
    assert "No space left" in caplog.text
    assert str(store.root) in caplog.text  # the warning names the folder
    monkeypatch.undo()
    assert store.ls(kind="matrix") == []  # nothing half-written became visible


def test_precompute_resumes_after_interruption(andorra, store) -> None:
    pts = _points(andorra, 50, 8)
    calls = {"n": 0}

    def stop_after_two_blocks(done: int, total: int) -> None:
        if done > 0:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        precompute_matrix(
            andorra, pts, block_rows=10, n_jobs=1, store=store, progress=stop_after_two_blocks
        )
    key, done, total = precompute_matrix(andorra, pts, block_rows=10, n_jobs=1, store=store)
    assert (done, total) == (3, 5)  # two blocks kept from the interrupted run
    assert precompute_matrix(andorra, pts, block_rows=10, store=store)[1:] == (0, 0)
    sub = pts.subset(np.arange(5, 45, 3))
    m, rep = cached_drive_time_matrix(andorra, sub, store=store, n_jobs=1)
    assert rep.status == "assembled" and rep.rows_computed == 0
    np.testing.assert_allclose(
        m.seconds, roadnet.drive_time_matrix(andorra, sub, n_jobs=1).seconds, rtol=1e-6
    )
    assert key == rep.key or rep.key is not None


def test_graph_cache_hit_and_refresh(store) -> None:
    from tests.support import shared_file

    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    builds = []

    def build() -> CompiledGraph:
        builds.append(1)
        return roadnet.graph_from_pbf(pbf)

    ident = {"type": "pbf", "sha256": roadnet.sources.file_sha256(pbf)}
    profile = SpeedProfile.default()
    g1, hit1 = cached_graph(ident, build, profile, store=store)
    g2, hit2 = cached_graph(ident, build, profile, store=store)
    assert (hit1, hit2) == (False, True) and len(builds) == 1
    np.testing.assert_array_equal(g1.seconds, g2.seconds)
    assert g2.meta["cache_key"] == g1.meta["cache_key"]
    # another speed profile is another graph
    _, hit3 = cached_graph(ident, build, profile.with_overrides(residential=20), store=store)
    assert not hit3 and len(builds) == 2
    _, hit4 = cached_graph(ident, build, profile, store=store, refresh=True)
    assert not hit4 and len(builds) == 3


def test_rectangular_request_uses_the_cheapest_cover(andorra, store) -> None:
    """50 cached points x (10 cached + 15 new): 15 reverse searches, not 50 forward ones."""
    pts = _points(andorra, 65, 11)
    a = pts.subset(np.arange(50))
    b = pts.subset(np.arange(40, 65))
    cached_drive_time_matrix(andorra, a, store=store, n_jobs=1)
    m, rep = cached_drive_time_matrix(andorra, a, b, store=store, n_jobs=1)
    assert rep.status == "partial"
    assert (rep.rows_computed, rep.cols_computed) == (0, 15)
    direct = roadnet.drive_time_matrix(andorra, a, b, n_jobs=1)
    np.testing.assert_allclose(m.seconds, direct.seconds, rtol=1e-6)
