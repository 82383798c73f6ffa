"""End to end through the CLI: `roadnet optimize` on real areas, drive time and straight line."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from territory.cli import app
from tests.support import shared_file

runner = CliRunner()


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_optimize_malta_councils_accounts_drive_time(tmp_path) -> None:
    areas = shared_file("areas", "malta_councils.gpkg")
    pois = shared_file("areas", "malta_pois.gpkg")
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    out = tmp_path / "malta.gpkg"
    res = _run(
        "optimize",
        areas,
        "--pbf",
        pbf,
        "--accounts",
        pois,
        "-p",
        7,
        "--tolerance",
        0.1,
        "--out",
        out,
        "--jobs",
        1,
    )
    assert res.exit_code == 0, res.output
    assert "account(s) lie in no area" in res.stderr
    gdf = gpd.read_file(out)
    assert len(gdf) == 67 and gdf["territory"].between(1, 7).all()
    assert gdf["is_center"].sum() == 7
    # balance within tolerance, recomputed from the written file
    sizes = gdf.groupby("territory")["accounts"].sum()
    mean = gdf["accounts"].sum() / 7
    assert (sizes / mean - 1).abs().max() <= 0.1 + 1e-9
    # the report's numbers equal recomputed ones
    summary = pd.read_csv(tmp_path / "malta_summary.csv")
    np.testing.assert_allclose(summary.set_index("territory")["accounts"], sizes)
    for t, grp in gdf.groupby("territory"):
        row = summary.set_index("territory").loc[t]
        assert row["max_minutes_to_center"] == np.float64(
            grp["minutes_to_center"].max()
        ) or np.isclose(row["max_minutes_to_center"], grp["minutes_to_center"].max())
    report = json.loads((tmp_path / "malta_summary.json").read_text())
    assert report["mode"] == "drive" and report["solution"]["within_bounds"] is True
    assert report["solution"]["optimality_gap"] is not None
    assert report["solution"]["optimality_gap"] < 0.05
    # no territory mixes Gozo with Malta: every area reachable from its center
    assert np.isfinite(gdf["minutes_to_center"]).all()
    gozo = gdf.geometry.representative_point().y > 36.0
    for _, grp in gdf.groupby("territory"):
        assert gozo[grp.index].nunique() == 1


def _ri_fixed(tmp_path):
    """RI ZCTAs with the duplicated ZCTA 02861 merged (the file lists it twice)."""
    gdf = gpd.read_file(shared_file("areas", "ri_zcta_2010.gpkg"))
    merged = gdf.dissolve(
        by="zcta", aggfunc={"population": "sum", "ALAND10": "first", "AWATER10": "first"}
    ).reset_index()
    path = tmp_path / "ri.gpkg"
    merged.to_file(path, driver="GPKG")
    return path, merged


def test_optimize_ri_straight_line_csv_output(tmp_path) -> None:
    path, merged = _ri_fixed(tmp_path)
    out = tmp_path / "ri_result.csv"
    res = _run(
        "optimize",
        path,
        "--straight-line",
        "--measure",
        "population",
        "-p",
        5,
        "--tolerance",
        0.05,
        "--out",
        out,
        "--method",
        "dichotomies",
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, dtype={"zcta": str})
    assert len(table) == len(merged) and set(table["zcta"]) == set(merged["zcta"])
    assert table["territory"].nunique() == 5
    sizes = table.groupby("territory")["population"].sum()
    assert (sizes / sizes.mean() - 1).abs().max() <= 0.05 + 1e-9
    assert {"lon", "lat", "km_to_center"} <= set(table.columns)


def test_optimize_bad_input(tmp_path) -> None:
    areas = shared_file("areas", "malta_councils.gpkg")
    res = _run("optimize", areas, "-p", 3, "--out", tmp_path / "x.gpkg")
    assert res.exit_code == 2 and "--straight-line" in res.stderr
    res = _run(
        "optimize",
        areas,
        "--straight-line",
        "-p",
        3,
        "--measure",
        "sales",
        "--out",
        tmp_path / "x.gpkg",
    )
    assert res.exit_code == 2 and "measure column 'sales' not found" in res.stderr
    res = _run("optimize", areas, "--straight-line", "-p", 500, "--out", tmp_path / "x.gpkg")
    assert res.exit_code == 2 and "p must be an integer in 1..67" in res.stderr
    res = _run("optimize", areas, "--straight-line", "-p", 3, "--out", tmp_path / "x.xyz")
    assert res.exit_code == 2 and "--out" in res.stderr and ".gpkg" in res.stderr
    assert not (tmp_path / "x.gpkg").exists()


def test_validate_cli_gates_on_given_rules(tmp_path) -> None:
    """An alignment that puts a Gozo council with Maltese ones fails; exit 1; JSON written."""
    areas = gpd.read_file(shared_file("areas", "malta_councils.gpkg"))
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    pts = areas.geometry.representative_point()
    gozo = (pts.y > 36.0).to_numpy()
    areas["terr"] = np.where(gozo, "G", np.where(pts.x < 14.45, "W", "E"))
    first_gozo = int(np.flatnonzero(gozo)[0])
    areas.loc[first_gozo, "terr"] = "W"  # a Gozo council in a Maltese territory
    path = tmp_path / "alignment.gpkg"
    areas.to_file(path, driver="GPKG")
    report = tmp_path / "report.json"
    res = _run(
        "validate",
        path,
        "-t",
        "terr",
        "--pbf",
        pbf,
        "--report",
        report,
        "--require-road-connected",
        "--png",
        tmp_path / "flagged.png",
    )
    assert res.exit_code == 1, res.output
    assert "validation failed" in res.stderr and "road_connected" in res.stderr
    data = json.loads(report.read_text())
    flagged = [a for a in data["areas"] if a["unreachable"]]
    assert [a["id"] for a in flagged] == [int(areas.loc[first_gozo, "id"])]
    assert (tmp_path / "flagged.png").stat().st_size > 10_000
    # the same alignment with the Gozo council back on Gozo passes the same rules
    areas.loc[first_gozo, "terr"] = "G"
    areas.to_file(path, driver="GPKG")
    ok = _run("validate", path, "-t", "terr", "--pbf", pbf, "--max-drive", "40min")
    assert ok.exit_code == 0, ok.output
    assert "PASS" in ok.stdout
