"""Anchored territory centers with drive times: fixed, mixed, shares, locked areas, islands."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

import optimizer
from optimizer import TerritoryProblem, solve
from roadnet.areas import read_areas
from territory.cli import app
from territory.pipeline import design_territories
from tests.conftest import shared_file

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
