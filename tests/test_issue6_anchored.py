"""Issue 6: anchored centers combined with an existing alignment (rebalance around given
fixed centers), on Malta councils with drive times."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

from roadnet.areas import areas_from_gdf, read_areas
from roadnet.exceptions import AreaDataError
from territory.cli import app
from territory.pipeline import design_territories
from tests.conftest import shared_file
from tests.test_anchored import REPS


@pytest.fixture(scope="module")
def councils_with_existing():
    """Malta councils with a poor existing alignment named after the reps: Gozo is
    'victoria'; Malta is cut into three west-to-east bands (badly balanced by count)."""
    areas = read_areas(shared_file("areas", "malta_councils.gpkg"))
    gdf = areas.gdf.copy()
    gozo = areas.lat > 36.0
    lon = np.asarray(areas.lon)
    cuts = np.quantile(lon[~gozo], [0.15, 0.3])  # 15 % / 15 % / 70 % of Malta's councils
    band = np.searchsorted(cuts, lon)
    gdf["current"] = np.where(gozo, "victoria", np.array(["mdina", "valletta", "sliema"])[band])
    return areas_from_gdf(gdf, id_column=areas.id_column), gozo


def test_rebalance_around_fixed_centers(malta, councils_with_existing) -> None:
    areas, gozo = councils_with_existing
    gdf = areas.gdf.copy()
    # one council keeps its territory whatever happens
    keep = int(np.flatnonzero(gdf["current"].to_numpy() == "mdina")[0])
    gdf["lock"] = None
    gdf.loc[keep, "lock"] = "mdina"
    areas = areas_from_gdf(gdf, id_column=areas.id_column)
    res = design_territories(
        areas,
        ["count"],
        4,
        graph=malta,
        tolerance=0.2,
        centers=REPS,
        center_id_column="rep",
        existing_column="current",
        locked_column="lock",
        time_limit=5,
    )
    out = res.areas
    sc = res.facts["scenario"]
    assert sc["kind"] == "rebalance"
    # every council in exactly one territory, the territories are the reps'
    assert len(out) == len(gdf) and out["territory"].notna().all()
    assert set(out["territory"]) == set(REPS["rep"])
    # the centers are the given points (fixed, not areas), each serving its own territory
    assert not out["is_center"].any()
    assert list(res.summary["center_id"]) == list(res.summary["territory"])
    # balance reached; Gozo stays alone (no road across the ferry gap)
    assert sc["before"]["max_deviation"] > 0.5
    assert res.solution.within_bounds and res.solution.max_deviation <= 0.2 + 1e-9
    assert set(out.loc[gozo, "territory"]) == {"victoria"}
    assert not (out.loc[~gozo, "territory"] == "victoria").any()
    assert np.isfinite(out["minutes_to_center"]).all()
    # locked council stays; moves are reported as they are
    assert out.loc[keep, "territory"] == "mdina"
    moved = int((out["territory"].to_numpy() != gdf["current"].to_numpy()).sum())
    assert sc["areas_moved"] == moved > 0


def test_centers_must_name_existing_territories(malta, councils_with_existing) -> None:
    areas, _ = councils_with_existing
    reps = REPS.copy()
    reps.loc[0, "rep"] = "marsa"
    with pytest.raises(AreaDataError, match=r"\['marsa'\] match no existing territory"):
        design_territories(
            areas,
            ["count"],
            4,
            graph=malta,
            tolerance=0.2,
            centers=reps,
            center_id_column="rep",
            existing_column="current",
        )
    gdf = areas.gdf.copy()
    gdf["lock"] = None
    gdf.loc[int(np.flatnonzero(gdf["current"].to_numpy() == "sliema")[0]), "lock"] = "mdina"
    with pytest.raises(AreaDataError, match="keeps its territory"):
        design_territories(
            areas_from_gdf(gdf, id_column=areas.id_column),
            ["count"],
            4,
            graph=malta,
            tolerance=0.2,
            centers=REPS,
            center_id_column="rep",
            existing_column="current",
            locked_column="lock",
        )


def test_cli_optimize_centers_with_existing_column(tmp_path, councils_with_existing) -> None:
    areas, _ = councils_with_existing
    src = tmp_path / "councils.gpkg"
    areas.gdf.to_file(src, driver="GPKG")
    reps = tmp_path / "reps.gpkg"
    REPS.to_file(reps, driver="GPKG")
    out = tmp_path / "out.gpkg"
    res = CliRunner().invoke(
        app,
        [
            "optimize",
            str(src),
            "--pbf",
            str(shared_file("osm", "malta-latest.osm.pbf")),
            "-p",
            "4",
            "--tolerance",
            "0.2",
            "--centers",
            str(reps),
            "--center-id-column",
            "rep",
            "--existing-column",
            "current",
            "--time-limit",
            "5",
            "--out",
            str(out),
            "--jobs",
            "1",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "rebalance:" in res.output and "tolerance 20%: met" in res.output
    got = gpd.read_file(out)
    assert set(got["territory"]) == set(REPS["rep"])


def test_local_search_never_moves_a_center_onto_a_forbidden_area() -> None:
    areas = read_areas(shared_file("areas", "ct_zcta_2010.gpkg"))
    gdf = areas.gdf.copy()
    gdf["no_center"] = np.arange(len(gdf)) % 4 != 0  # three areas in four may not host one
    res = design_territories(
        areas_from_gdf(gdf, id_column=areas.id_column),
        ["population"],
        12,
        tolerance=0.1,
        forbidden_column="no_center",
        contiguity="polygon",
        time_limit=5,
    )
    centers = res.areas["is_center"].to_numpy()
    assert centers.sum() == 12 and not gdf["no_center"].to_numpy()[centers].any()
