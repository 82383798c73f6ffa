"""Anchored territory centers with drive times: fixed, mixed, shares, locked areas, islands,
an existing alignment rebalanced around given centers, and areas that may not host a center."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

import optimizer
from optimizer import TerritoryProblem, solve
from roadnet.areas import areas_from_gdf, read_areas
from roadnet.exceptions import AreaDataError
from territory.cli import app
from territory.pipeline import design_territories
from tests.support import shared_file

REPS = gpd.GeoDataFrame(
    {"rep": ["valletta", "mdina", "sliema", "victoria"], "share": [0.3, np.nan, np.nan, np.nan]},
    geometry=gpd.points_from_xy(
        [14.5146, 14.4035, 14.5050, 14.2390], [35.8989, 35.8857, 35.9110, 36.0443]
    ),
    crs="EPSG:4326",
)


@pytest.fixture(scope="module")
def councils():
    return read_areas(shared_file("areas", "malta_councils.gpkg"))


def _gozo(areas) -> np.ndarray:
    return areas.lat > 36.0


def test_anchors_on_both_islands_never_span_the_ferry_gap(malta, councils) -> None:
    res = design_territories(
        councils, ["count"], 4, graph=malta, tolerance=0.5, centers=REPS, center_id_column="rep"
    )
    gdf = res.areas
    assert set(gdf["territory"]) == set(REPS["rep"])
    gozo = _gozo(councils)
    for terr, grp in gdf.groupby("territory"):
        assert len(set(gozo[grp.index])) == 1, terr
    assert set(gdf.loc[gozo, "territory"]) == {"victoria"}
    assert np.isfinite(gdf["minutes_to_center"]).all()
    # centers are the given points, not areas
    assert not gdf["is_center"].any()
    assert list(res.summary["center_id"]) == list(res.summary["territory"])


def test_mixed_fixed_and_chosen_centers(malta, councils) -> None:
    res = design_territories(
        councils,
        ["count"],
        6,
        graph=malta,
        tolerance=0.2,
        centers=REPS.iloc[:2],
        center_id_column="rep",
    )
    labels = set(res.areas["territory"])
    assert {"valletta", "mdina"} <= labels
    assert len(labels) == 6 and sum(lab.startswith("new-") for lab in labels) == 4
    # the chosen centers are areas; one of them serves Gozo (component-aware starts)
    gozo = _gozo(councils)
    assert res.areas.loc[gozo, "territory"].nunique() >= 1
    for _, grp in res.areas.groupby("territory"):
        assert len(set(gozo[grp.index])) == 1


def test_target_shares(malta, councils) -> None:
    reps = REPS.iloc[:3].copy()
    reps["share"] = [0.5, 0.25, 0.25]
    gozo = _gozo(councils)
    malta_only = read_areas(shared_file("areas", "malta_councils.gpkg"))
    sub = malta_only.gdf[~gozo].reset_index(drop=True)
    from roadnet.areas import areas_from_gdf

    areas = areas_from_gdf(sub, id_column="id")
    res = design_territories(
        areas,
        ["count"],
        3,
        graph=malta,
        tolerance=0.15,
        centers=reps,
        center_id_column="rep",
        share_column="share",
    )
    sizes = res.areas.groupby("territory").size()
    total = len(sub)
    for rep, share in zip(reps["rep"], reps["share"], strict=True):
        assert abs(sizes[rep] / (share * total) - 1) <= 0.15 + 1e-9


def test_locked_areas_never_move(malta, councils) -> None:
    gdf = councils.gdf.copy()
    gozo = _gozo(councils)
    gdf["lock"] = None
    far = int(np.flatnonzero(~gozo)[0])
    gdf.loc[far, "lock"] = "mdina"
    from roadnet.areas import areas_from_gdf

    locked = areas_from_gdf(gdf, id_column="id")
    res = design_territories(
        locked,
        ["count"],
        4,
        graph=malta,
        tolerance=0.5,
        centers=REPS,
        center_id_column="rep",
        locked_column="lock",
    )
    assert res.areas.loc[far, "territory"] == "mdina"


def test_unreachable_areas_are_assigned_by_the_rule_and_reported(malta, councils) -> None:
    res = design_territories(
        councils,
        ["count"],
        3,
        graph=malta,
        tolerance=0.5,
        centers=REPS.iloc[:3],
        center_id_column="rep",
    )
    gozo = _gozo(councils)
    assert sorted(res.facts["unreachable_areas"]) == sorted(str(i) for i in councils.ids[gozo])
    assert np.isinf(res.areas.loc[gozo, "minutes_to_center"]).all()
    # straight-line rule: Gozo is nearest to Mdina of the three Maltese centers
    assert set(res.areas.loc[gozo, "territory"]) == {"mdina"}
    assert res.summary.set_index("territory").loc["mdina", "n_unreachable"] == gozo.sum()


def test_cli_centers_option(tmp_path, councils) -> None:
    reps = tmp_path / "reps.gpkg"
    REPS.to_file(reps, driver="GPKG")
    out = tmp_path / "out.gpkg"
    res = CliRunner().invoke(
        app,
        [
            "optimize",
            str(shared_file("areas", "malta_councils.gpkg")),
            "--pbf",
            str(shared_file("osm", "malta-latest.osm.pbf")),
            "-p",
            "4",
            "--tolerance",
            "0.5",
            "--centers",
            str(reps),
            "--center-id-column",
            "rep",
            "--out",
            str(out),
            "--jobs",
            "1",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert set(gpd.read_file(out)["territory"]) == set(REPS["rep"])
    bad = CliRunner().invoke(
        app,
        [
            "optimize",
            str(shared_file("areas", "malta_councils.gpkg")),
            "--straight-line",
            "-p",
            "2",
            "--centers",
            str(reps),
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert bad.exit_code == 2 and "4 centers were given but only p = 2" in bad.stderr


def test_optimizer_locked_and_fixed_on_arrays() -> None:
    rng = np.random.default_rng(3)
    xy = rng.random((80, 2))
    prob = TerritoryProblem.from_points(xy, np.ones(80), 4, tolerance=0.2)
    locked = np.full(80, -1)
    locked[:5] = 7  # areas 0..4 locked to candidate 7 (a fixed center)
    sol = solve(prob, "la", fixed_centers=np.array([7, 30]), locked=locked)
    t7 = int(np.flatnonzero(sol.centers == 7)[0])
    assert np.all(sol.assignment[:5] == t7)
    assert {7, 30} <= set(sol.centers.tolist())
    with pytest.raises(optimizer.InputError, match="not fixed centers"):
        solve(prob, "la", fixed_centers=np.array([7]), locked=np.where(np.arange(80) < 2, 9, -1))


# ------------------------------------------------- rebalance around given (fixed) centers
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
