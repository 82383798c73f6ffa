"""The territory pipeline's contract: default contiguity, result columns, user columns kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roadnet.areas import areas_from_gdf, read_areas
from roadnet.exceptions import AreaDataError
from territory.pipeline import design_territories

PORTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "areas" / "porto_parishes.gpkg"


@pytest.fixture(scope="module")
def parishes():
    if not PORTO.is_file():
        pytest.skip(f"shared data not available: {PORTO}")
    return read_areas(PORTO)


def test_contiguity_is_on_by_default_on_straight_lines(parishes) -> None:
    res = design_territories(parishes, "count", 5, tolerance=0.1, time_limit=2)
    assert res.facts["contiguity"] == "polygon"
    assert res.facts["contiguous"] is True
    none = design_territories(parishes, ["count"], 5, tolerance=0.1, contiguity="none")
    assert none.facts["contiguity"] == "none" and "contiguous" not in none.facts


def test_a_user_column_named_like_a_result_is_kept_and_reported(parishes) -> None:
    gdf = parishes.gdf.copy()
    gdf["territory"] = "mine"
    gdf["is_center"] = 7
    areas = areas_from_gdf(gdf, id_column=parishes.id_column)
    res = design_territories(areas, ["count"], 4, tolerance=0.1, contiguity="none", improve=False)
    assert res.facts["renamed_columns"] == {
        "territory": "territory_input",
        "is_center": "is_center_input",
    }
    assert (res.areas["territory_input"] == "mine").all()
    assert (res.areas["is_center_input"] == 7).all()
    assert set(res.areas["territory"]) == {1, 2, 3, 4}


def test_rebalance_writes_the_territory_before_and_what_moved(parishes) -> None:
    first = design_territories(
        parishes, ["count"], 5, tolerance=0.3, contiguity="none", improve=False
    )
    gdf = first.areas[[parishes.id_column, "territory", first.areas.geometry.name]]
    areas = areas_from_gdf(gdf, id_column=parishes.id_column)
    res = design_territories(
        areas, ["count"], 5, tolerance=0.05, existing_column="territory", time_limit=2
    )
    out = res.areas
    assert list(out["territory_before"]) == list(first.areas["territory"])
    moved = out["territory_before"].astype(str) != out["territory"].astype(str)
    assert (out["moved"].to_numpy() == moved.to_numpy()).all()
    assert int(out["moved"].sum()) == res.facts["scenario"]["areas_moved"]
    assert res.facts["replaced_column"] == "territory"


@pytest.mark.parametrize("p", [0, -3, 2.7, 171, True])
def test_p_is_checked_first_with_one_message(parishes, p) -> None:
    with pytest.raises(ValueError, match=r"p must be an integer in 1\.\.170"):
        design_territories(parishes, ["count"], p)


def test_point_areas_get_no_contiguity_rule(parishes) -> None:
    gdf = parishes.gdf.copy()
    gdf["geometry"] = gdf.geometry.representative_point()
    areas = areas_from_gdf(gdf, id_column=parishes.id_column)
    res = design_territories(areas, ["count"], 3, tolerance=0.2, time_limit=1)
    assert res.facts["contiguity"] == "none" and "points" in res.facts["contiguity_note"]
    with pytest.raises(AreaDataError, match="needs polygon areas"):
        design_territories(areas, ["count"], 3, contiguity="polygon")
    assert np.isfinite(res.solution.cost)
