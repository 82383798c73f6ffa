"""``roadnet precompute --out STORE.zarr [--dask local]`` from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from roadnet.precompute import FAULT_ENV
from roadnet.zarr_store import open_matrix_store
from territory.cli import app
from tests.support import shared_file

runner = CliRunner()


def _csv(tmp_path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(1.50, 1.60, n), rng.uniform(42.50, 42.56, n)
    path = tmp_path / "pts.csv"
    path.write_text(
        "id,lon,lat\n"
        + "".join(f"p{i},{x:.6f},{y:.6f}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True)))
    )
    return path


def test_precompute_store_killed_mid_run_resumes_with_the_missing_blocks(tmp_path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    pts, url, cdir = _csv(tmp_path, 40, 1), tmp_path / "t.zarr", tmp_path / "cache"
    cmd = [sys.executable, "-m", "territory.cli", "precompute", str(pts), "--pbf", str(pbf)]
    cmd += ["--out", str(url), "--block-rows", "8", "--cache-dir", str(cdir), "--jobs", "1"]
    marker = tmp_path / "killed"
    # the process kills itself while writing block 3, after blocks 0-2 are complete
    env = {**os.environ, FAULT_ENV: f"after-data:3:{marker}"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert open_matrix_store(url).scan() == ([0, 1, 2], [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "3 of 5 block(s) already written and verified (skipped), 0 damaged" in res.stderr
    assert "computed 2 of 5 block(s) in this process, 3 already written" in res.stdout
    store = open_matrix_store(url)
    assert store.complete and store.origin_ids.tolist() == [f"p{i}" for i in range(40)]
    # `roadnet matrix` on a subset reads the store through the cache
    sub = tmp_path / "sub.csv"
    sub.write_text("\n".join(pts.read_text().splitlines()[:6]) + "\n")
    m = runner.invoke(
        app,
        ["matrix", str(sub), "--pbf", str(pbf), "--out", str(tmp_path / "s.npz"),
         "--cache-dir", str(cdir)],
        catch_exceptions=False,
    )  # fmt: skip
    assert m.exit_code == 0, m.output
    assert "assembled from cached" in m.stderr
    got = np.load(tmp_path / "s.npz")["seconds"]
    np.testing.assert_array_equal(got, store.read(np.arange(5), np.arange(5)))


def test_precompute_dask_local_prints_the_dashboard_and_fills_the_store(tmp_path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    pts, cdir = _csv(tmp_path, 60, 2), tmp_path / "cache"
    base = ["precompute", str(pts), "--pbf", str(pbf), "--cache-dir", str(cdir)]
    here = runner.invoke(
        app, [*base, "--out", str(tmp_path / "here.zarr"), "--block-rows", "16", "--jobs", "1"]
    )
    assert here.exit_code == 0, here.output
    res = runner.invoke(
        app,
        [*base, "--out", str(tmp_path / "dask.zarr"), "--block-rows", "16", "--dask", "local"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "Dask LocalCluster: 2 worker process(es) on 127.0.0.1; dashboard http://127.0.0.1:" in (
        res.stderr
    )
    assert "computed 4 of 4 block(s) on Dask" in res.stdout
    np.testing.assert_array_equal(
        open_matrix_store(tmp_path / "dask.zarr").read(),
        open_matrix_store(tmp_path / "here.zarr").read(),
    )
    bad = runner.invoke(app, [*base, "--dask", "local"])
    assert bad.exit_code == 2 and "--dask needs --out" in bad.stderr
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "x.zarr"), "--dask", "8786"])
    assert bad.exit_code == 2 and "scheduler address such as tcp://HOST:8786" in bad.stderr


def test_precompute_on_a_running_scheduler(tmp_path) -> None:
    import distributed

    from roadnet.precompute import local_cluster

    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    pts, cdir = _csv(tmp_path, 30, 3), tmp_path / "cache"
    base = ["precompute", str(pts), "--pbf", str(pbf), "--cache-dir", str(cdir)]
    base += ["--block-rows", "10"]
    with local_cluster(1, dashboard=False) as cluster, distributed.Client(cluster):
        address = cluster.scheduler_address
        res = runner.invoke(
            app, [*base, "--out", str(tmp_path / "d.zarr"), "--dask", address],
            catch_exceptions=False,
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"Dask scheduler {address}: 1 worker(s)" in res.stderr
    assert "computed 3 of 3 block(s) on Dask" in res.stdout
    here = runner.invoke(app, [*base, "--out", str(tmp_path / "h.zarr"), "--jobs", "1"])
    assert here.exit_code == 0, here.output
    np.testing.assert_array_equal(
        open_matrix_store(tmp_path / "d.zarr").read(), open_matrix_store(tmp_path / "h.zarr").read()
    )
