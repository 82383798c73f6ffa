"""Reading basic areas: ids, representative points, and clear errors on bad input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import roadnet
from roadnet.areas import areas_from_gdf, read_areas
from tests.support import shared_file


def test_porto_parishes_representative_points_inside(caplog: pytest.LogCaptureFixture) -> None:
    path = shared_file("areas", "porto_parishes.gpkg")
    with pytest.raises(roadnet.AreaDataError, match="rows \\[143\\]: Self-intersection"):
        read_areas(path, fix_invalid=False)
    areas = read_areas(path)  # a self-intersection sliver in row 143 is repaired, and said
    assert "repaired 1 invalid" in caplog.text
    assert areas.id_column == "parish_code"
    assert len(areas) == 170
    assert len(set(areas.ids.tolist())) == 170
    pts = shapely.points(areas.lon, areas.lat)
    assert np.all(shapely.contains(areas.gdf.geometry.values, pts))


def test_zcta_ids_detected_and_duplicates_named() -> None:
    ct = read_areas(shared_file("areas", "ct_zcta_2010.gpkg"))
    assert ct.id_column == "zcta"
    assert len(ct) == 282
    cen = read_areas(shared_file("areas", "ct_zcta_2010.gpkg"), point="centroid")
    assert np.all(np.abs(cen.lon - ct.lon) < 0.2)
    # the RI file lists ZCTA 02861 twice with different populations: refuse, name it
    with pytest.raises(roadnet.AreaDataError, match=r"'zcta' \(detected\).*'02861'"):
        read_areas(shared_file("areas", "ri_zcta_2010.gpkg"))


def test_csv_points(tmp_path) -> None:
    p = tmp_path / "pts.csv"
    pd.DataFrame(
        {"store": ["a", "b"], "Longitude": [1.52, 1.53], "Latitude": [42.5, 42.51]}
    ).to_csv(p, index=False)
    areas = read_areas(p, id_column="store")
    assert areas.ids.tolist() == ["a", "b"]
    assert areas.lon.tolist() == [1.52, 1.53]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("id,lon,lat\n", "0 rows"),
        ("id,foo,bar\n1,2,3\n", "no longitude/latitude columns"),
        ("id,lon,lat\n1,abc,3\n", "non-numeric"),
    ],
)
def test_bad_csv(tmp_path, content: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(roadnet.AreaDataError, match=message):
        read_areas(p)


def _squares(n: int = 3, crs: str | None = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": [f"a{i}" for i in range(n)]},
        geometry=[shapely.box(i * 0.01, 0, i * 0.01 + 0.01, 0.01) for i in range(n)],
        crs=crs,
    )


def test_gdf_errors() -> None:
    with pytest.raises(roadnet.AreaDataError, match="0 rows"):
        areas_from_gdf(_squares().iloc[:0])
    with pytest.raises(roadnet.CRSError, match="has no CRS"):
        areas_from_gdf(_squares(crs=None))
    dup = _squares()
    dup.loc[2, "id"] = "a0"
    with pytest.raises(roadnet.AreaDataError, match="duplicate ids: \\['a0'\\]"):
        areas_from_gdf(dup, id_column="id")
    with pytest.raises(roadnet.AreaDataError, match="id column 'zip' not found"):
        areas_from_gdf(_squares(), id_column="zip")
    bow = _squares()
    bow.loc[1, "geometry"] = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])  # bow tie
    with pytest.raises(roadnet.AreaDataError, match=r"invalid geometr.*rows \[1\]"):
        areas_from_gdf(bow)  # the repair would change its area a lot: refuse
    fixed = areas_from_gdf(bow, fix_invalid=True)
    assert len(fixed) == 3
    empty = _squares()
    empty.loc[0, "geometry"] = None
    with pytest.raises(roadnet.AreaDataError, match="no geometry"):
        areas_from_gdf(empty)
    # projected coordinates declared as lon/lat
    wrong = gpd.GeoDataFrame(
        {"id": [1]}, geometry=[shapely.box(500000, 4e6, 501000, 4.001e6)], crs="EPSG:4326"
    )
    with pytest.raises(roadnet.CRSError, match="declared CRS is wrong"):
        areas_from_gdf(wrong)


def test_projected_input_is_reprojected() -> None:
    sq = _squares().to_crs("EPSG:32631")
    areas = areas_from_gdf(sq)
    assert np.all(np.abs(areas.lon - np.array([0.005, 0.015, 0.025])) < 1e-6)


def test_missing_and_unreadable_files(tmp_path) -> None:
    with pytest.raises(roadnet.AreaDataError, match="not found"):
        read_areas(tmp_path / "nope.gpkg")
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"this is no geopackage")
    with pytest.raises(roadnet.AreaDataError, match="cannot read"):
        read_areas(bad)
