"""The cache through the command line: transparent reuse, management commands, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cache import Store
from roadnet.matrix_io import read_matrix
from territory.cli import app
from tests.support import shared_file

runner = CliRunner()


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _csv(tmp_path: Path, n: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(1.50, 1.60, n)
    lat = rng.uniform(42.50, 42.56, n)
    path = tmp_path / "pts.csv"
    path.write_text(
        "id,lon,lat\n"
        + "".join(f"p{i},{x:.6f},{y:.6f}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True)))
    )
    return path


def test_matrix_reuses_cache_and_cache_commands(tmp_path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cdir = tmp_path / "cache"
    pts = _csv(tmp_path)
    first = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "a.npz", "--cache-dir", cdir)
    assert first.exit_code == 0, first.output
    assert "computed 40 row(s)" in first.stderr
    second = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "b.npz", "--cache-dir", cdir)
    assert "from cache" in second.stderr and "served from cache" in second.stderr
    np.testing.assert_array_equal(
        read_matrix(tmp_path / "a.npz")["seconds"], read_matrix(tmp_path / "b.npz")["seconds"]
    )
    ls = _run("cache", "ls", "--cache-dir", cdir)
    assert ls.exit_code == 0 and "graph" in ls.stdout and "40 x 40" in ls.stdout
    key = Store(cdir).ls(kind="matrix")[0].key
    info = _run("cache", "info", key, "--cache-dir", cdir)
    record = json.loads(info.stdout)
    assert record["kind"] == "matrix" and record["meta"]["rows"] == 40
    assert "created" in record and "size_bytes" in record
    assert _run("cache", "verify", "--cache-dir", cdir).exit_code == 0
    # damage the matrix: verify finds it, quarantines it, exits 1; the next run recomputes
    path = next(Store(cdir).info(key)[0].path.glob("matrix.npy"))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x55
    path.write_bytes(bytes(raw))
    bad = _run("cache", "verify", "--cache-dir", cdir)
    assert bad.exit_code == 1 and f"corrupt: {key}" in bad.stdout
    third = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "c.npz", "--cache-dir", cdir)
    assert "computed 40 row(s)" in third.stderr
    np.testing.assert_array_equal(
        read_matrix(tmp_path / "a.npz")["seconds"], read_matrix(tmp_path / "c.npz")["seconds"]
    )
    prune = _run("cache", "prune", "--max-size", "1MB", "--cache-dir", cdir)
    assert prune.exit_code == 0 and Store(cdir).total_size() <= 1_000_000
    assert _run("cache", "prune", "--max-size", "lots", "--cache-dir", cdir).exit_code == 2
    clear = _run("cache", "clear", "--yes", "--cache-dir", cdir)
    assert clear.exit_code == 0 and Store(cdir).ls() == []


def test_no_cache_leaves_nothing(tmp_path) -> None:
    cdir = tmp_path / "cache"
    res = _run(
        "matrix",
        _csv(tmp_path, 10),
        "--pbf",
        shared_file("osm", "andorra-latest.osm.pbf"),
        "--out",
        tmp_path / "a.npz",
        "--cache-dir",
        cdir,
        "--no-cache",
    )
    assert res.exit_code == 0 and "cache not used" in res.stderr
    assert not cdir.exists() or Store(cdir).ls() == []


def _cli(*args: object, cdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "territory.cli",
        *map(str, args),
        "--cache-dir",
        str(cdir),
        "--jobs",
        "1",
    ]


def test_two_concurrent_processes_same_request(tmp_path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cdir = tmp_path / "cache"
    pts = _csv(tmp_path, 60)
    procs = [
        subprocess.Popen(
            _cli("matrix", pts, "--pbf", pbf, "--out", tmp_path / f"{i}.npz", cdir=cdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    a, b = (read_matrix(tmp_path / f"{i}.npz")["seconds"] for i in range(2))
    np.testing.assert_array_equal(a, b)
    store = Store(cdir)
    assert len(store.ls(kind="graph")) == 1
    assert 1 <= len(store.ls(kind="matrix")) <= 2
    assert store.verify().all_ok


def _porto_csv(tmp_path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-8.65, -8.55, n), rng.uniform(41.12, 41.20, n)
    path = tmp_path / "porto.csv"
    path.write_text(
        "id,lon,lat\n"
        + "".join(f"p{i},{x:.6f},{y:.6f}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True)))
    )
    return path


def test_precompute_sigkilled_mid_run_resumes(tmp_path) -> None:
    """SIGKILL lands after k finished blocks (k random); the rerun keeps them and completes."""
    pbf = shared_file("osm", "porto_portugal.osm.pbf")
    cdir = tmp_path / "cache"
    pts = _porto_csv(tmp_path, 160, 0)
    assert (
        _run(
            "graph", "build", "--pbf", pbf, "--out", tmp_path / "g.npz", "--cache-dir", cdir
        ).exit_code
        == 0
    )
    cmd = _cli("precompute", pts, "--pbf", pbf, "--block-rows", "4", cdir=cdir)
    rng = np.random.default_rng(42)
    for _trial in range(3):
        kill_after = int(rng.integers(1, 25))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if len(list(cdir.glob("partial/*/block-*.npy"))) >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.communicate()
        if proc.returncode == 0:  # finished before the kill: start again with a new set
            break
    assert proc.returncode == -signal.SIGKILL
    kept = len(list(cdir.glob("partial/*/block-*.npy")))
    assert kept >= 1
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resumed from an earlier run" in res.stdout
    assert not list(cdir.glob("partial/*/block-*.npy"))  # assembled, partial folder removed
    out = _run(
        "matrix", pts, "--pbf", pbf, "--out", tmp_path / "m.npz", "--cache-dir", cdir, "--jobs", "1"
    )
    assert "served from cache" in out.stderr
    direct = _run(
        "matrix", pts, "--pbf", pbf, "--out", tmp_path / "d.npz", "--no-cache", "--jobs", "1"
    )
    assert direct.exit_code == 0
    np.testing.assert_allclose(
        read_matrix(tmp_path / "m.npz")["seconds"],
        read_matrix(tmp_path / "d.npz")["seconds"],
        rtol=1e-6,
    )
    assert Store(cdir).verify().all_ok


def test_cache_keys_full_when_piped_and_unique_prefixes_accepted(tmp_path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cdir = tmp_path / "cache"
    pts = _csv(tmp_path, n=12)
    res = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "a.npz", "--cache-dir", cdir)
    assert res.exit_code == 0, res.output
    keys = sorted(e.key for e in Store(cdir).ls())
    ls = _run("cache", "ls", "--cache-dir", cdir)
    lines = ls.stdout.strip().splitlines()
    assert lines[0].split("\t")[:2] == ["key", "kind"]
    assert sorted(line.split("\t")[0] for line in lines[1:]) == keys  # full keys, not cut
    matrix_line = next(line for line in lines if "\tmatrix\t" in line)
    assert "by " in matrix_line  # the engine that computed it
    mkey = Store(cdir).ls(kind="matrix")[0].key
    info = _run("cache", "info", mkey[:14], "--cache-dir", cdir)
    assert info.exit_code == 0 and json.loads(info.stdout)["meta"]["rows"] == 12
    bad = _run("cache", "info", "zzzz-no-such", "--cache-dir", cdir)
    assert bad.exit_code == 2 and "no cache entry" in bad.stderr
    again = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "b.npz", "--cache-dir", cdir)
    assert "served from cache" in again.stderr and "computed earlier by" in again.stderr


def test_reading_a_missing_cache_folder_does_not_create_it(tmp_path) -> None:
    missing = tmp_path / "no-cache-here"
    for args, code in (
        (["ls"], 0),
        (["prune", "--max-size", "1GB"], 0),
        (["clear", "--yes"], 0),
        (["info", "abc"], 2),
        (["verify"], 2),
    ):
        res = runner.invoke(app, ["cache", *args, "--cache-dir", str(missing)])
        assert res.exit_code == code, (args, res.output)
        assert "no cache folder" in res.output or "does not exist" in res.output
        assert not missing.exists(), args
