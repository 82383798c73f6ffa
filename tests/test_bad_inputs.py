# ruff: noqa: E501  (the catalogue tables keep one case per line)
"""The bad-input catalogue: every failure is one clear line and loses nothing.

A table of bad inputs through the CLI (each run in-process with typer's runner) and the Python
API. Every CLI case asserts the exit code (2 = bad input, 1 = failing environment), that the
one ``error:`` line names the offending option, value or file, that no traceback escapes, and
that the outputs that existed before (and the folder listing: no temp file left behind) are
byte-identical afterwards. Every API case asserts the package's own exception type (which also
inherits the builtin) and the argument named in its message.

Small inputs only: ten points in Andorra (its compiled road graph is built once per session),
straight-line runs where roads play no part.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import optimizer
import roadnet
from cache import CacheError, Store
from optimizer.exceptions import InfeasibleError, InputError, OptimizerError
from roadnet.exceptions import AreaDataError, InvalidArgumentError, RoadnetError
from territory.cli import app

runner = CliRunner()

# ten points in Andorra la Vella / Escaldes (all within ~1 km of a road)
_LON = [1.520, 1.525, 1.530, 1.535, 1.540, 1.523, 1.528, 1.533, 1.538, 1.543]
_LAT = [42.507, 42.508, 42.509, 42.510, 42.511, 42.505, 42.506, 42.507, 42.508, 42.509]

_PREVIOUS = {
    "o.gpkg": b"previous territories\n",
    "o_summary.csv": b"previous summary\n",
    "o_summary.json": b'{"previous": true}\n',
    "m.npz": b"previous matrix\n",
    "g.npz": b"previous graph\n",
    "map.html": b"<html>previous</html>\n",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, andorra: roadnet.CompiledGraph) -> Path:
    """Input files shared by the catalogue (never written by a case)."""
    d = tmp_path_factory.mktemp("inputs")
    rows = ["id,lon,lat,w,forb,allforb"]
    for i, (lon, lat) in enumerate(zip(_LON, _LAT, strict=True)):
        rows.append(f"a{i},{lon},{lat},{i + 1},{str(i < 2).lower()},true")
    (d / "pts.csv").write_text("\n".join(rows) + "\n")
    (d / "lat95.csv").write_text("id,lon,lat\na,1.52,42.50\nb,1.53,95\nc,1.54,42.52\n")
    (d / "nonnum.csv").write_text("id,lon,lat\na,1.52,42.50\nb,x,42.51\n")
    (d / "dup.csv").write_text("id,lon,lat\na,1.52,42.50\na,1.53,42.51\n")
    (d / "nocoords.csv").write_text("id,name\na,x\n")
    (d / "far.csv").write_text("id,lon,lat\na,10.0,50.0\nb,10.1,50.1\n")
    (d / "empty.csv").write_text("")
    (d / "corrupt.osm.pbf").write_bytes(b"\x00\x00\x00\x0cnot a pbf" * 50)
    (d / "afile").write_text("a file, not a folder\n")
    (d / "centers.csv").write_text("id,lon,lat\nc1,1.52,42.507\n")
    andorra.save(d / "graph.npz")
    return d


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (a cache folder ``c`` left out)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(folder.rglob("*"))
        if p.relative_to(folder).parts[0] != "c"
    }


def _check_failure(res: Any, code: int, needles: tuple[str, ...]) -> None:
    """Exit code, one error line naming what is wrong, no traceback."""
    text = res.stdout + res.stderr
    assert res.exit_code == code, text
    assert "Traceback" not in text
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


_SL = ("--straight-line", "-p", "3", "-o", "{o}/o.gpkg")
_GR = ("--graph", "{d}/graph.npz", "-p", "3", "-o", "{o}/o.gpkg")
_MX = ("matrix", "{d}/pts.csv", "--graph", "{d}/graph.npz", "-o", "{o}/m.npz")

# (id, args, exit code, substrings of the error line)
CLI_CASES: list[tuple[str, tuple[str, ...], int, tuple[str, ...]]] = [
    # ---- optimize: numbers out of range
    ("p-zero", ("optimize", "{d}/pts.csv", *_SL[:1], "-p", "0", "-o", "{o}/o.gpkg"), 2, ("-p", "got 0")),
    ("p-negative", ("optimize", "{d}/pts.csv", "--straight-line", "-p", "-3", "-o", "{o}/o.gpkg"), 2, ("-p", "1..10", "got -3")),
    ("p-too-large", ("optimize", "{d}/pts.csv", "--straight-line", "-p", "11", "-o", "{o}/o.gpkg"), 2, ("-p", "1..10")),
    ("p-zero-drive", ("optimize", "{d}/pts.csv", *_GR[:2], "-p", "0", "-o", "{o}/o.gpkg"), 2, ("-p", "got 0")),
    ("p-negative-drive", ("optimize", "{d}/pts.csv", *_GR[:2], "-p", "-3", "-o", "{o}/o.gpkg"), 2, ("-p", "got -3")),
    ("starts-zero", ("optimize", "{d}/pts.csv", *_SL, "--starts", "0"), 2, ("--starts", "got 0")),
    ("starts-negative", ("optimize", "{d}/pts.csv", *_SL, "--starts", "-2"), 2, ("--starts",)),
    ("time-limit-negative", ("optimize", "{d}/pts.csv", *_SL, "--time-limit", "-5"), 2, ("--time-limit", "-5")),
    ("time-limit-nan", ("optimize", "{d}/pts.csv", *_SL, "--time-limit", "nan"), 2, ("--time-limit", "nan")),
    ("time-limit-inf", ("optimize", "{d}/pts.csv", *_SL, "--time-limit", "inf"), 2, ("--time-limit",)),
    ("jobs-zero", ("optimize", "{d}/pts.csv", *_GR, "--jobs", "0"), 2, ("--jobs", "got 0")),
    ("jobs-negative", ("optimize", "{d}/pts.csv", *_GR, "--jobs", "-5"), 2, ("--jobs", "got -5")),
    ("tolerance-negative", ("optimize", "{d}/pts.csv", *_SL, "--tolerance", "-1"), 2, ("tolerance",)),
    ("disruption-negative", ("optimize", "{d}/pts.csv", *_SL, "--disruption", "-1"), 2, ("--disruption",)),
    ("max-snap-negative", ("optimize", "{d}/pts.csv", *_GR, "--max-snap", "-5"), 2, ("--max-snap",)),
    ("method-unknown", ("optimize", "{d}/pts.csv", *_SL, "--method", "magic"), 2, ("--method", "magic")),
    ("contiguity-unknown", ("optimize", "{d}/pts.csv", *_SL, "--contiguity", "diagonal"), 2, ("contiguity", "diagonal")),
    # ---- optimize: columns and files
    ("measure-missing", ("optimize", "{d}/pts.csv", *_SL, "--measure", "nosuch"), 2, ("nosuch",)),
    ("second-measure-missing", ("optimize", "{d}/pts.csv", *_SL, "-m", "w", "-m", "nosuch"), 2, ("nosuch",)),
    ("id-column-missing", ("optimize", "{d}/pts.csv", *_SL, "--id-column", "nosuch"), 2, ("nosuch",)),
    ("forbidden-column-missing", ("optimize", "{d}/pts.csv", *_SL, "--forbidden-column", "nosuch"), 2, ("forbidden column", "nosuch")),
    ("all-forbidden", ("optimize", "{d}/pts.csv", *_SL, "--forbidden-column", "allforb"), 2, ("only 0 of 10", "forbidden")),
    ("forbidden-dichotomies", ("optimize", "{d}/pts.csv", *_SL, "--forbidden-column", "forb", "--method", "dichotomies"), 2, ("dichotomies", "allowed_centers")),
    ("forbidden-dichotomies-split", ("optimize", "{d}/pts.csv", *_SL, "--forbidden-column", "forb", "--method", "dichotomies-split"), 2, ("dichotomies-split",)),
    ("existing-column-missing", ("optimize", "{d}/pts.csv", *_SL, "--existing-column", "nosuch"), 2, ("nosuch",)),
    ("locked-without-centers", ("optimize", "{d}/pts.csv", *_SL, "--locked-column", "w"), 2, ("--centers",)),
    ("centers-with-exact", ("optimize", "{d}/pts.csv", *_SL, "--centers", "{d}/centers.csv", "--method", "exact"), 2, ("exact", "la")),
    ("areas-missing", ("optimize", "{d}/nope.csv", *_SL), 2, ("areas file not found", "nope.csv")),
    ("areas-empty", ("optimize", "{d}/empty.csv", *_SL), 2, ("empty", "empty.csv")),
    ("areas-folder", ("optimize", "{d}", *_SL), 2, ("areas file", "folder")),
    ("areas-lat-95", ("optimize", "{d}/lat95.csv", "--straight-line", "-p", "2", "-o", "{o}/o.gpkg"), 2, ("rows [1]", "lat=95")),
    ("areas-non-numeric", ("optimize", "{d}/nonnum.csv", "--straight-line", "-p", "2", "-o", "{o}/o.gpkg"), 2, ("non-numeric", "rows [1]")),
    ("areas-duplicate-ids", ("optimize", "{d}/dup.csv", "--straight-line", "-p", "2", "-o", "{o}/o.gpkg"), 2, ("duplicate ids",)),
    ("areas-no-coordinates", ("optimize", "{d}/nocoords.csv", *_SL), 2, ("longitude/latitude",)),
    ("centers-missing", ("optimize", "{d}/pts.csv", *_SL, "--centers", "{d}/nope.csv"), 2, ("centers file not found", "nope.csv")),
    ("accounts-missing", ("optimize", "{d}/pts.csv", *_SL, "--accounts", "{d}/nope.csv"), 2, ("accounts file not found", "nope.csv")),
    ("graph-missing", ("optimize", "{d}/pts.csv", "--graph", "{d}/nope.npz", "-p", "3", "-o", "{o}/o.gpkg"), 2, ("nope.npz",)),
    ("graph-not-a-graph", ("optimize", "{d}/pts.csv", "--graph", "{d}/pts.csv", "-p", "3", "-o", "{o}/o.gpkg"), 2, ("pts.csv",)),
    ("straight-line-and-source", ("optimize", "{d}/pts.csv", *_SL, "--graph", "{d}/graph.npz"), 2, ("--straight-line",)),
    ("no-source", ("optimize", "{d}/pts.csv", "-p", "3", "-o", "{o}/o.gpkg"), 2, ("--straight-line", "--pbf")),
    ("speed-not-a-number", ("optimize", "{d}/pts.csv", *_GR, "--speed", "primary=fast"), 2, ("--speed", "fast")),
    ("bbox-malformed", ("optimize", "{d}/pts.csv", "--bbox", "1,2", "-p", "3", "-o", "{o}/o.gpkg"), 2, ("--bbox", "1,2")),
    ("cache-dir-is-a-file", ("optimize", "{d}/pts.csv", *_GR, "--cache-dir", "{d}/afile"), 2, ("--cache-dir", "afile")),
    # ---- optimize: outputs
    ("out-wrong-extension", ("optimize", "{d}/pts.csv", "--straight-line", "-p", "3", "-o", "{o}/o.xyz"), 2, ("--out", "o.xyz")),
    ("out-is-a-folder", ("optimize", "{d}/pts.csv", "--straight-line", "-p", "3", "-o", "{o}"), 2, ("--out", "folder")),
    ("out-parent-is-a-file", ("optimize", "{d}/pts.csv", "--straight-line", "-p", "3", "-o", "{d}/afile/o.gpkg"), 1, ("--out", "afile", "not a folder")),
    ("summary-wrong-extension", ("optimize", "{d}/pts.csv", *_SL, "--summary", "{o}/s.txt"), 2, ("--summary", "s.txt")),
    ("summary-parent-is-a-file", ("optimize", "{d}/pts.csv", *_SL, "--summary", "{d}/afile/s.csv"), 1, ("--summary", "afile")),
    ("map-wrong-extension", ("optimize", "{d}/pts.csv", *_SL, "--map", "{o}/m.txt"), 2, ("--map", "m.txt")),
    ("map-parent-is-a-file", ("optimize", "{d}/pts.csv", *_SL, "--map", "{d}/afile/m.html"), 1, ("--map", "afile")),
    ("png-as-jpg", ("optimize", "{d}/pts.csv", *_SL, "--png", "{o}/x.jpg"), 2, ("--png", "x.jpg", ".png")),
    # ---- matrix and precompute
    ("matrix-out-extension", ("matrix", "{d}/pts.csv", "--graph", "{d}/graph.npz", "-o", "{o}/m.txt"), 2, ("--out", "m.txt")),
    ("matrix-out-folder", ("matrix", "{d}/pts.csv", "--graph", "{d}/graph.npz", "-o", "{o}"), 2, ("--out", "folder")),
    ("matrix-out-parent-file", ("matrix", "{d}/pts.csv", "--graph", "{d}/graph.npz", "-o", "{d}/afile/m.npz"), 1, ("--out", "afile")),
    ("matrix-to-missing", (*_MX, "--to", "{d}/nope.csv"), 2, ("--to file not found", "nope.csv")),
    ("matrix-jobs-zero", (*_MX, "--jobs", "0"), 2, ("--jobs", "got 0")),
    ("matrix-jobs-negative", (*_MX, "--jobs", "-5"), 2, ("--jobs", "got -5")),
    ("matrix-cutoff-unreadable", (*_MX, "--cutoff", "soon"), 2, ("--cutoff", "soon")),
    ("matrix-cutoff-zero", (*_MX, "--cutoff", "0"), 2, ("--cutoff",)),
    ("matrix-far-unknown", (*_MX, "--far", "maybe"), 2, ("--far", "maybe")),
    ("matrix-engine-unknown", (*_MX, "--engine", "turbo"), 2, ("--engine", "turbo")),
    ("matrix-max-snap-negative", (*_MX, "--max-snap", "-1"), 2, ("--max-snap",)),
    ("matrix-no-source", ("matrix", "{d}/pts.csv", "-o", "{o}/m.npz"), 2, ("exactly one road source",)),
    ("matrix-two-sources", (*_MX, "--pbf", "{d}/corrupt.osm.pbf"), 2, ("exactly one road source", "--pbf", "--graph")),
    ("matrix-far-points", ("matrix", "{d}/far.csv", "--graph", "{d}/graph.npz", "-o", "{o}/m.npz"), 2, ("none of the 2 points",)),
    ("matrix-pbf-missing", ("matrix", "{d}/pts.csv", "--pbf", "{d}/nope.osm.pbf", "-o", "{o}/m.npz"), 2, ("nope.osm.pbf",)),
    ("matrix-pbf-corrupt", ("matrix", "{d}/pts.csv", "--pbf", "{d}/corrupt.osm.pbf", "-o", "{o}/m.npz"), 2, ("corrupt.osm.pbf",)),
    ("precompute-jobs-zero", ("precompute", "{d}/pts.csv", "--graph", "{d}/graph.npz", "--jobs", "0"), 2, ("--jobs",)),
    ("precompute-jobs-negative", ("precompute", "{d}/pts.csv", "--graph", "{d}/graph.npz", "--jobs", "-3"), 2, ("--jobs", "-3")),
    ("precompute-block-rows-zero", ("precompute", "{d}/pts.csv", "--graph", "{d}/graph.npz", "--block-rows", "0"), 2, ("--block-rows",)),
    ("precompute-cache-dir-file", ("precompute", "{d}/pts.csv", "--graph", "{d}/graph.npz", "--cache-dir", "{d}/afile"), 2, ("--cache-dir", "afile")),
    # ---- graph, cache, demo, validate
    ("graph-out-extension", ("graph", "build", "--pbf", "{d}/corrupt.osm.pbf", "--out", "{o}/g.txt"), 2, ("--out", "g.txt")),
    ("graph-out-parent-file", ("graph", "build", "--pbf", "{d}/corrupt.osm.pbf", "--out", "{d}/afile/g.npz"), 1, ("--out", "afile")),
    ("graph-pbf-corrupt", ("graph", "build", "--pbf", "{d}/corrupt.osm.pbf", "--out", "{o}/g.npz"), 2, ("corrupt.osm.pbf",)),
    ("graph-info-missing", ("graph", "info", "{d}/nope.npz"), 2, ("nope.npz",)),
    ("cache-ls-dir-is-file", ("cache", "ls", "--cache-dir", "{d}/afile"), 2, ("afile", "--cache-dir")),
    ("cache-verify-dir-is-file", ("cache", "verify", "--cache-dir", "{d}/afile"), 2, ("afile",)),
    ("cache-verify-missing-dir", ("cache", "verify", "--cache-dir", "{o}/nocache"), 2, ("nocache", "does not exist")),
    ("cache-info-unknown-key", ("cache", "info", "nosuchkey", "--cache-dir", "{o}/c"), 2, ("nosuchkey",)),
    ("cache-prune-bad-size", ("cache", "prune", "--max-size", "abc", "--cache-dir", "{o}/c"), 2, ("abc",)),
    ("demo-p-zero", ("demo", "-p", "0", "--out", "{o}/demo"), 2, ("-p", "got 0")),
    ("demo-jobs-zero", ("demo", "--jobs", "0", "--out", "{o}/demo"), 2, ("--jobs",)),
    ("demo-unknown-example", ("demo", "--example", "atlantis", "--out", "{o}/demo"), 2, ("atlantis",)),
    ("demo-out-is-a-file", ("demo", "--out", "{d}/afile"), 1, ("--out", "afile")),
    ("validate-missing-areas", ("validate", "{d}/nope.gpkg", "-t", "territory", "--straight-line"), 2, ("nope.gpkg",)),
    ("validate-report-extension", ("validate", "{d}/pts.csv", "-t", "w", "--straight-line", "--report", "{o}/r.txt"), 2, ("--report", "r.txt")),
    ("validate-centers-missing", ("validate", "{d}/pts.csv", "-t", "w", "--straight-line", "--centers", "{d}/nope.csv"), 2, ("--centers file not found",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [pytest.param(a, c, n, id=i) for i, a, c, n in CLI_CASES],
)
def test_cli_bad_input(
    world: Path, tmp_path: Path, args: tuple[str, ...], code: int, needles: tuple[str, ...]
) -> None:
    for name, content in _PREVIOUS.items():
        (tmp_path / name).write_bytes(content)
    before = _snapshot(tmp_path)
    argv = [a.format(d=world, o=tmp_path) for a in args]
    res = runner.invoke(app, argv, catch_exceptions=False)
    _check_failure(res, code, needles)
    assert _snapshot(tmp_path) == before  # previous outputs intact, no temp file left


def test_cli_catalogue_size() -> None:
    """The catalogue keeps at least 80 cases across the CLI and the API."""
    assert len(CLI_CASES) + len(API_CASES) >= 80
    assert len({c[0] for c in CLI_CASES}) == len(CLI_CASES)
    assert len({c[0] for c in API_CASES}) == len(API_CASES)


def test_cli_bbox_offline_fails_fast(world: Path, tmp_path: Path) -> None:
    """An unreachable Overpass server is said at once (no minute of retries)."""
    url = f"http://127.0.0.1:{_closed_port()}/api"
    with roadnet.settings.override(overpass_url=url, use_cache=False):
        res = runner.invoke(
            app,
            ["graph", "build", "--bbox", "1.51,42.50,1.53,42.51", "--out", str(tmp_path / "g.npz")],
            catch_exceptions=False,
        )
    _check_failure(res, 1, ("cannot be reached", url, "--pbf"))  # the network, not the input
    assert not (tmp_path / "g.npz").exists()


# ----------------------------------------------------------------------------- outputs
def _optimize_args(world: Path, out: Path, *extra: str) -> list[str]:
    return [
        "optimize",
        str(world / "pts.csv"),
        "--straight-line",
        "-p",
        "3",
        "--no-improve",
        "-o",
        str(out),
        *extra,
    ]


# shapefiles cut column names to 10 characters; GDAL says so (to the user, not an error here)
_SHP_NAMES = "ignore:Column names longer than 10 characters:UserWarning"
_SHP_LAUNDERED = "ignore:Normalized/laundered field name:RuntimeWarning"


@pytest.mark.filterwarnings(_SHP_NAMES)
@pytest.mark.filterwarnings(_SHP_LAUNDERED)
@pytest.mark.parametrize("suffix", [".shp", ".gpkg", ".geojson", ".parquet", ".csv"])
def test_failing_write_keeps_previous_outputs(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """The last output (the JSON report) fails with a full disk after the areas were staged:
    the previous outputs of every format (a shapefile with all its sidecars) stay as they
    were, and no temp file is left."""
    out = tmp_path / f"o{suffix}"
    assert runner.invoke(app, _optimize_args(world, out)).exit_code == 0
    before = _snapshot(tmp_path)
    if suffix == ".shp":
        assert {p.suffix for p in tmp_path.iterdir()} >= {".shp", ".shx", ".dbf", ".prj"}

    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up while the JSON report is written
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    res = runner.invoke(app, _optimize_args(world, out, "-p", "2"), catch_exceptions=False)
    _check_failure(res, 1, ("disk is full",))
    assert _snapshot(tmp_path) == before


def _mount_tmpfs(path: Path, *options: str) -> None:
    path.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
    except OSError:
        done = None
    if done is None or done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")


@pytest.fixture
def small_fs(tmp_path: Path) -> Any:
    """A 256 KiB filesystem (a real full disk), unmounted afterwards."""
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "size=256k")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture
def readonly_fs(tmp_path: Path) -> Any:
    """A read-only filesystem holding previous outputs (root ignores file permissions)."""
    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, "size=256k")
    for name, content in _PREVIOUS.items():
        (mnt / name).write_bytes(content)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def _fill_disk(path: Path) -> int | None:
    """Write zeros to ``path`` until the disk is full; the errno that stopped it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError as exc:
        return exc.errno
    finally:
        os.close(fd)


@pytest.mark.filterwarnings(_SHP_NAMES)
@pytest.mark.filterwarnings(_SHP_LAUNDERED)
@pytest.mark.parametrize("suffix", [".shp", ".gpkg", ".csv"])
def test_full_disk_keeps_previous_outputs(world: Path, small_fs: Path, suffix: str) -> None:
    out = small_fs / f"o{suffix}"
    assert runner.invoke(app, _optimize_args(world, out)).exit_code == 0
    assert _fill_disk(small_fs / "filler") == errno.ENOSPC
    before = _snapshot(small_fs)
    res = runner.invoke(app, _optimize_args(world, out, "-p", "2"), catch_exceptions=False)
    _check_failure(res, 1, ("disk is full",))
    assert _snapshot(small_fs) == before


@pytest.mark.parametrize(
    ("option", "name"),
    [("--out", "o.gpkg"), ("--summary", "o_summary.csv"), ("--map", "map.html")],
)
def test_read_only_folder_is_said_before_any_work(
    world: Path, readonly_fs: Path, tmp_path: Path, option: str, name: str
) -> None:
    args = _optimize_args(world, tmp_path / "ok.gpkg")
    if option == "--out":
        args[args.index("-o") + 1] = str(readonly_fs / name)
    else:
        args += [option, str(readonly_fs / name)]
    before = _snapshot(readonly_fs)
    res = runner.invoke(app, args, catch_exceptions=False)
    _check_failure(res, 1, (option, str(readonly_fs)))
    assert _snapshot(readonly_fs) == before
    assert not (tmp_path / "ok.gpkg").exists()  # nothing written when any output fails


# ----------------------------------------------------------------------------- Python API
def _problem(n: int = 6, p: int = 2) -> optimizer.TerritoryProblem:
    xy = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    return optimizer.TerritoryProblem.from_points(xy, np.ones(n), p, tolerance=0.5)


def _areas() -> roadnet.Areas:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {"id": [f"a{i}" for i in range(10)]},
        geometry=gpd.points_from_xy(_LON, _LAT),
        crs="EPSG:4326",
    )
    return roadnet.areas_from_gdf(gdf)


def _design(**kw: Any) -> Any:
    from territory.pipeline import design_territories

    args: dict[str, Any] = {"p": 2, "improve": False, **kw}
    return design_territories(_areas(), args.pop("measures", ["count"]), **args)


def _matrix(g: roadnet.CompiledGraph, **kw: Any) -> Any:
    pts = roadnet.snap_points(g, np.array(_LON[:3]), np.array(_LAT[:3]))
    return roadnet.drive_time_matrix(g, pts, **kw)


def _cached(g: roadnet.CompiledGraph, **kw: Any) -> Any:
    from roadnet.cached import cached_drive_time_matrix

    pts = roadnet.snap_points(g, np.array(_LON[:3]), np.array(_LAT[:3]))
    cached_drive_time_matrix(g, pts)  # a cache hit must check its arguments too
    return cached_drive_time_matrix(g, pts, **kw)


_T = optimizer.TerritoryProblem
_EYE = np.ones((5, 5)) - np.eye(5)

# (id, call(graph), exception type, substring of the message)
API_CASES: list[tuple[str, Callable[[Any], Any], type[BaseException], str]] = [
    ("from-cost-p-float", lambda g: _T.from_cost_matrix(_EYE, np.ones(5), 2.7), InputError, "p must be an integer"),
    ("from-cost-p-zero", lambda g: _T.from_cost_matrix(_EYE, np.ones(5), 0), InputError, "got 0"),
    ("from-cost-p-bool", lambda g: _T.from_cost_matrix(_EYE, np.ones(5), True), InputError, "p must be"),
    ("from-cost-weights-length", lambda g: _T.from_cost_matrix(np.ones((6, 6)), np.ones(5), 2), InputError, "weights has 5 rows"),
    ("from-cost-strings", lambda g: _T.from_cost_matrix([["a", "b"], ["c", "d"]], [1, 1], 1), InputError, "cost must hold numbers"),
    ("from-cost-ragged", lambda g: _T.from_cost_matrix([[0, 1], [1]], [1, 1], 1), InputError, "rows have different lengths"),
    ("from-cost-nan", lambda g: _T.from_cost_matrix(np.full((3, 3), np.nan), np.ones(3), 1), InputError, "NaN"),
    ("from-cost-negative", lambda g: _T.from_cost_matrix(-_EYE, np.ones(5), 2), InputError, "negative"),
    ("from-cost-huge", lambda g: _T.from_cost_matrix(_EYE * 1e200, np.ones(5), 2), InputError, "rescale"),
    ("from-cost-huge-weights", lambda g: _T.from_cost_matrix(_EYE, np.full(5, 1e300), 2), InputError, "weights go up to"),
    ("from-cost-product", lambda g: _T.from_cost_matrix(_EYE * 1e12, np.full(5, 1e12), 2), InputError, "exceeds"),
    ("from-points-huge", lambda g: _T.from_points(np.full((4, 2), 1e200) * np.arange(4)[:, None], np.ones(4), 2), InputError, "coords"),
    ("from-points-weights-text", lambda g: _T.from_points(np.zeros((2, 2)), ["a", "b"], 1), InputError, "weights"),
    ("la-n-starts-zero", lambda g: optimizer.location_allocation(_problem(), n_starts=0), InputError, "n_starts"),
    ("la-time-limit-nan", lambda g: optimizer.location_allocation(_problem(), time_limit=float("nan")), InputError, "time_limit"),
    ("la-all-forbidden", lambda g: optimizer.location_allocation(_problem(), allowed_centers=np.zeros(6, bool)), InfeasibleError, "only 0 of 6"),
    ("la-one-allowed-p2", lambda g: optimizer.solve(_problem(), "la", allowed_centers=np.eye(6, dtype=bool)[0]), InfeasibleError, "only 1 of 6"),
    ("interchange-all-forbidden", lambda g: optimizer.solve(_problem(), "interchange", allowed_centers=np.zeros(6, bool)), InfeasibleError, "forbidden"),
    ("dichotomies-allowed", lambda g: optimizer.solve(_problem(), "dichotomies", allowed_centers=np.ones(6, bool)), InputError, "allowed_centers"),
    ("exact-time-limit-negative", lambda g: optimizer.solve_exact(_problem(), time_limit=-1), InputError, "time_limit"),
    ("exact-allowed-shape", lambda g: optimizer.solve_exact(_problem(), allowed_centers=np.ones(3, bool)), InputError, "allowed_centers"),
    ("solve-unknown-method", lambda g: optimizer.solve(_problem(), "magic"), InputError, "magic"),
    ("pmedian-n-starts-zero", lambda g: _pmedian(_EYE, None, 2, n_starts=0), InputError, "n_starts"),
    ("pmedian-p-zero", lambda g: _pmedian(_EYE, None, 0), InputError, "p must be an integer"),
    ("pmedian-strings", lambda g: _pmedian([["0", "1"], ["1", "0"]], None, 1), InputError, "dist must hold numbers"),
    ("pmedian-huge", lambda g: _pmedian(_EYE * 1e200, np.full(5, 1e300), 2), InputError, "rescale"),
    ("local-search-time-limit", lambda g: _local(time_limit=-1.0), InputError, "time_limit"),
    ("design-p-zero", lambda g: _design(p=0), InputError, "p must be an integer"),
    ("design-p-float", lambda g: _design(p=2.5), InputError, "p must be an integer"),
    ("design-time-limit", lambda g: _design(time_limit=float("nan")), InputError, "time_limit"),
    ("design-n-jobs-zero", lambda g: _design(graph=g, n_jobs=0), InvalidArgumentError, "n_jobs"),
    ("design-measure-missing", lambda g: _design(measures="weight"), AreaDataError, "'weight'"),
    ("design-centers-missing", lambda g: _design(centers="/nonexistent/c.csv"), AreaDataError, "centers file not found"),
    ("matrix-cutoff-negative", lambda g: _matrix(g, cutoff=-1.0), InvalidArgumentError, "cutoff"),
    ("matrix-n-jobs-zero", lambda g: _matrix(g, n_jobs=0), InvalidArgumentError, "n_jobs"),
    ("matrix-n-jobs-negative", lambda g: _matrix(g, n_jobs=-5), InvalidArgumentError, "got -5"),
    ("matrix-engine-unknown", lambda g: _matrix(g, engine="turbo"), InvalidArgumentError, "turbo"),
    ("matrix-far-unknown", lambda g: _matrix(g, far="maybe"), InvalidArgumentError, "maybe"),
    ("cached-n-jobs-on-hit", lambda g: _cached(g, n_jobs=0), InvalidArgumentError, "n_jobs"),
    ("cached-far-on-hit", lambda g: _cached(g, far="maybe"), InvalidArgumentError, "far"),
    ("settings-n-jobs", lambda g: roadnet.settings.override(n_jobs=-5).__enter__(), RoadnetError, "n_jobs"),
    ("read-areas-names-option", lambda g: roadnet.read_areas("/nonexistent/x.csv", what="--to"), AreaDataError, "--to file not found"),
]  # fmt: skip


def _pmedian(*args: Any, **kw: Any) -> Any:
    from optimizer.pmedian import solve_pmedian

    return solve_pmedian(*args, **kw)


def _local(**kw: Any) -> Any:
    from optimizer.local import local_search

    prob = _problem()
    return local_search(prob, np.array([0, 0, 0, 1, 1, 1]), np.array([1, 4]), **kw)


@pytest.mark.parametrize(
    ("call", "error", "needle"),
    [pytest.param(c, e, n, id=i) for i, c, e, n in API_CASES],
)
def test_api_bad_input(
    andorra: roadnet.CompiledGraph,
    call: Callable[[Any], Any],
    error: type[BaseException],
    needle: str,
) -> None:
    with pytest.raises(error) as info:
        call(andorra)
    exc = info.value
    assert needle in str(exc)
    # the package's own type, which also inherits the matching builtin
    assert isinstance(exc, OptimizerError | RoadnetError | CacheError)
    assert isinstance(exc, ValueError | OSError | TypeError | LookupError)


def test_design_territories_takes_one_measure_name() -> None:
    res = _design(measures="count")
    assert list(res.summary.columns)[3] == "count"
    assert res.areas["territory"].nunique() == 2


def test_forbidden_centers_with_interchange_and_exact() -> None:
    prob = _problem(8, 2)
    allowed = np.ones(8, bool)
    allowed[[1, 6]] = False
    for method in ("interchange", "exact", "la"):
        sol = optimizer.solve(prob, method, allowed_centers=allowed)
        assert allowed[sol.centers].all(), method


def test_exact_without_solution_says_the_time_spent() -> None:
    """A MIP stopped by its time limit says so, with the time it really took."""
    rng = np.random.default_rng(1)
    prob = optimizer.TerritoryProblem.from_points(rng.random((30, 2)), np.ones(30), 5, tolerance=0)
    with pytest.raises(OptimizerError) as info:
        optimizer.solve_exact(prob, time_limit=0.0)
    assert "time limit of 0 s" in str(info.value) or "infeasible" in str(info.value)


def test_store_unaffected_by_catalogue(tmp_path: Path) -> None:
    """`cache verify` on a missing folder does not create it."""
    missing = tmp_path / "nocache"
    res = runner.invoke(app, ["cache", "verify", "--cache-dir", str(missing)])
    assert res.exit_code == 2 and not missing.exists()
    Store(tmp_path / "c")  # a real store still opens


# ----------------------------------------------------------------------------- precompute
def _points(g: roadnet.CompiledGraph) -> Any:
    return roadnet.snap_points(g, np.array(_LON), np.array(_LAT))


def _reference(g: roadnet.CompiledGraph) -> np.ndarray:
    return roadnet.drive_time_matrix(g, _points(g), engine="scipy").seconds


def _stored(store: Store, key: str) -> np.ndarray:
    from cache import open_matrix

    entry = open_matrix(store, key)
    assert entry is not None
    with entry:
        return entry.rows(0, entry.shape[0])


def test_two_precomputes_of_one_input_both_succeed(
    andorra: roadnet.CompiledGraph, tmp_path: Path
) -> None:
    """Run A pauses after its first block while run B computes and finishes the same matrix
    (removing the resumable folder A writes into); A then goes on and both succeed, with one
    entry. Deterministic: A waits on an event that B's completion sets."""
    import threading

    from roadnet.cached import precompute_matrix

    store = Store(tmp_path / "c")
    paused, resume = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def pause(done: int, total: int) -> None:
        if done > 0 and not paused.is_set():
            paused.set()
            resume.wait()

    def run_a() -> None:
        try:
            results["a"] = precompute_matrix(
                andorra, _points(andorra), block_rows=2, n_jobs=1, engine="scipy",
                progress=pause, store=store,
            )  # fmt: skip
        except BaseException as exc:  # reported by the main thread
            results["a"] = exc

    a = threading.Thread(target=run_a)
    a.start()
    try:
        assert paused.wait(120)
        results["b"] = precompute_matrix(
            andorra, _points(andorra), block_rows=2, n_jobs=1, engine="scipy", store=store
        )
    finally:
        resume.set()
        a.join(120)
    assert not isinstance(results["a"], BaseException), results["a"]
    key_a, key_b = results["a"][0], results["b"][0]
    assert key_a == key_b
    assert [e.key for e in store.ls(kind="matrix")] == [key_a]
    np.testing.assert_array_equal(_stored(store, key_a), _reference(andorra).astype(np.float32))
    assert not any((store.partial_dir).iterdir())


class _StopError(Exception):
    """Interrupts a precompute after some blocks."""


def _interrupted_precompute(g: roadnet.CompiledGraph, store: Store) -> Path:
    """A precompute stopped after 3 of its 5 blocks; returns one finished block file."""
    from roadnet.cached import precompute_matrix

    def stop(done: int, total: int) -> None:
        if done >= 6:
            raise _StopError

    with pytest.raises(_StopError):
        precompute_matrix(
            g, _points(g), block_rows=2, n_jobs=1, engine="scipy", progress=stop, store=store
        )
    (folder,) = store.partial_dir.iterdir()
    blocks = sorted(folder.glob("block-*.npy"))
    assert len(blocks) == 3
    return blocks[1]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size: only its checksum tells
    path.write_bytes(bytes(data))


def test_precompute_recomputes_a_damaged_block(
    andorra: roadnet.CompiledGraph, tmp_path: Path
) -> None:
    from roadnet.cached import precompute_matrix

    store = Store(tmp_path / "c")
    _flip(_interrupted_precompute(andorra, store))
    key, computed, total = precompute_matrix(
        andorra, _points(andorra), block_rows=2, n_jobs=1, engine="scipy", store=store
    )
    assert total == 5 and computed == 3  # the 2 missing blocks, then the damaged one again
    np.testing.assert_array_equal(_stored(store, key), _reference(andorra).astype(np.float32))


def test_cache_verify_checks_resumable_matrices(
    andorra: roadnet.CompiledGraph, tmp_path: Path
) -> None:
    store = Store(tmp_path / "c")
    damaged = _interrupted_precompute(andorra, store)
    _flip(damaged)
    res = runner.invoke(app, ["cache", "verify", "--cache-dir", str(tmp_path / "c")])
    assert res.exit_code == 1
    assert "1 resumable matrix(es), 1 damaged block(s) removed" in res.stdout
    assert "damaged blocks of resumable matrix" in res.stdout and "[1]" in res.stdout
    assert not damaged.exists()
    res = runner.invoke(app, ["cache", "verify", "--cache-dir", str(tmp_path / "c")])
    assert res.exit_code == 0, res.stdout


def test_corrupt_cache_entry_is_reported_once(world: Path, tmp_path: Path) -> None:
    """A flipped byte in a cached matrix: one warning line, the matrix recomputed, the same
    result (no raw `warnings` line with a source path, no repeat)."""
    args = [
        "matrix", str(world / "pts.csv"), "--graph", str(world / "graph.npz"),
        "-o", str(tmp_path / "m.npz"), "--cache-dir", str(tmp_path / "c"),
    ]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    first = np.load(tmp_path / "m.npz")["seconds"]
    (chunk,) = (tmp_path / "c" / "entries").rglob("matrix.npy")
    _flip(chunk)
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    said = [line for line in res.stderr.splitlines() if "corrupt" in line]
    assert len(said) == 1 and "quarantined" in said[0], res.stderr
    assert "py.warnings" not in res.stderr and "Traceback" not in res.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "m.npz")["seconds"], first)
