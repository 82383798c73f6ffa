"""The command line: real runs on shared data, one readable line and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from roadnet.matrix_io import read_matrix
from territory.cli import app
from tests.support import shared_file

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_graph_build_and_info(tmp_path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    res = _run(
        "graph", "build", "--pbf", pbf, "--out", tmp_path / "and.npz", "--speed", "residential=25"
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "and.npz").is_file()
    res = _run("graph", "info", tmp_path / "and.npz", "--json")
    assert res.exit_code == 0
    assert '"residential": 25.0' in res.stdout
    assert '"n_components"' in res.stdout


def test_matrix_malta_councils_with_gozo(tmp_path) -> None:
    areas = shared_file("areas", "malta_councils.gpkg")
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    res = _run(
        "matrix", areas, "--pbf", pbf, "--out", tmp_path / "m.npz", "--distances", "--jobs", "1"
    )
    assert res.exit_code == 0, res.output
    assert "no road route" in res.stderr
    m = read_matrix(tmp_path / "m.npz")
    assert m["seconds"].shape == (67, 67)
    assert m["origin_ids"].shape == (67,)
    sec = m["seconds"]
    # Gozo's councils form a block unreachable from Malta's and back
    unreachable = ~np.isfinite(sec)
    gozo = unreachable.sum(axis=1) > 33
    assert 5 <= gozo.sum() <= 20
    assert np.all(unreachable[np.ix_(gozo, ~gozo)])
    assert np.all(unreachable[np.ix_(~gozo, gozo)])
    assert np.all(np.isfinite(sec[np.ix_(~gozo, ~gozo)]))
    assert m["meta"]["report"]["unreachable_pairs"] == int(unreachable.sum())
    # the same through Parquet long format
    res = _run(
        "matrix",
        areas,
        "--graph",
        _graph_file(tmp_path, pbf),
        "--out",
        tmp_path / "m.parquet",
        "--jobs",
        "1",
    )
    assert res.exit_code == 0, res.output
    pq = read_matrix(tmp_path / "m.parquet")
    np.testing.assert_array_equal(pq["origin_ids"], m["origin_ids"])
    np.testing.assert_array_equal(pq["seconds"], sec)


def _graph_file(tmp_path, pbf):
    out = tmp_path / "g.npz"
    assert _run("graph", "build", "--pbf", pbf, "--out", out).exit_code == 0
    return out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pbf", "{tmp}/missing.osm.pbf"], "PBF file not found"),
        (["--pbf", "{tmp}/corrupt.osm.pbf"], "cannot read"),
        ([], "give exactly one road source"),
        (["--pbf", "{pbf}", "--place", "Andorra"], "give exactly one road source"),
        (["--pbf", "{pbf}", "--cutoff", "soon"], "cannot read duration 'soon'"),
        (["--pbf", "{pbf}", "--far", "maybe"], "--far must be"),
        (["--pbf", "{pbf}", "--engine", "turbo"], "engine must be one of auto, ch, scipy"),
    ],
)
def test_matrix_bad_input_one_line_exit_2(tmp_path, args: list[str], message: str) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    (tmp_path / "corrupt.osm.pbf").write_bytes(b"\x00\x00\x00\x0cnot a pbf" * 50)
    pts = tmp_path / "pts.csv"
    pts.write_text("id,lon,lat\na,1.52,42.50\nb,1.53,42.51\n")
    out = tmp_path / "m.npz"
    args = [a.format(tmp=tmp_path, pbf=pbf) for a in args]
    res = _run("matrix", pts, "--out", out, *args)
    assert res.exit_code == 2
    assert message in res.stderr
    assert "Traceback" not in res.output + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 or "error:" in res.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty"), ("id,lon,lat\na,1.52,42.5\na,1.53,42.51\n", "duplicate ids")],
)
def test_matrix_bad_areas(tmp_path, content: str, message: str) -> None:
    pts = tmp_path / "pts.csv"
    pts.write_text(content)
    res = _run(
        "matrix",
        pts,
        "--pbf",
        shared_file("osm", "andorra-latest.osm.pbf"),
        "--out",
        tmp_path / "m.npz",
    )
    assert res.exit_code == 2
    assert message in res.stderr
    assert not (tmp_path / "m.npz").exists()


def test_points_far_from_network_error(tmp_path) -> None:
    pts = tmp_path / "pts.csv"
    pts.write_text("id,lon,lat\na,10.0,50.0\n")
    res = _run(
        "matrix",
        pts,
        "--pbf",
        shared_file("osm", "andorra-latest.osm.pbf"),
        "--out",
        tmp_path / "m.npz",
    )
    assert res.exit_code == 2
    assert "holds no drivable road inside the clip region" in res.stderr
    assert "are the areas in this extract?" in res.stderr
    res = _run("matrix", pts, "--pbf", shared_file("osm", "andorra-latest.osm.pbf"),
               "--out", tmp_path / "m.npz", "--no-clip-to-areas")  # fmt: skip
    assert res.exit_code == 2
    assert "none of the 1 points" in res.stderr


def test_demo_runs_offline(tmp_path) -> None:
    res = _run("demo", "--out", tmp_path / "demo", "--jobs", "1")
    assert res.exit_code == 0, res.output
    out = tmp_path / "demo"
    for name in (
        "territories.gpkg",
        "summary.csv",
        "summary.json",
        "validation.json",
        "map.html",
        "map.png",
    ):
        assert (out / name).is_file(), name
    import geopandas as gpd

    gdf = gpd.read_file(out / "territories.gpkg")
    assert gdf["territory"].nunique() == 5 and gdf["is_center"].sum() == 5
    sizes = gdf.groupby("territory")["pois"].sum()
    assert (sizes / sizes.mean() - 1).abs().max() <= 0.15 + 1e-9
    report = json.loads((out / "validation.json").read_text())
    assert {r["rule"] for r in report["rules"]} >= {"reachable", "balance", "road_connected"}


def test_console_script_entry_point() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "territory.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    assert "matrix" in res.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ROADNET_PBF_NODE_LOCS", "bad"), ("ROADNET_N_JOBS", "many"), ("ROADNET_ENGINE", "fast")],
)
def test_invalid_environment_variable_is_one_line_and_exit_2(
    tmp_path, variable: str, value: str
) -> None:
    import os

    env = dict(os.environ, **{variable: value})
    res = subprocess.run(
        [sys.executable, "-m", "territory.cli", "graph", "build", "--pbf",
         str(shared_file("osm", "andorra-latest.osm.pbf")), "--out", str(tmp_path / "g.npz")],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"environment variable {variable}={value!r} is invalid" in lines[0]
    assert not (tmp_path / "g.npz").exists()


def test_invalid_environment_lets_roadnet_import_and_fails_on_first_read() -> None:
    code = (
        "import roadnet\n"
        "try:\n"
        "    roadnet.settings.engine\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    import os

    env = dict(os.environ, ROADNET_ENGINE="fast")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert res.stdout.startswith("SettingsError environment variable ROADNET_ENGINE='fast'")
