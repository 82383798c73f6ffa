"""Territory validation: reachability, contiguity and road-connectivity reports on real
alignments (Malta + Gozo, the Douro in Porto with polygon and road adjacency, Connecticut ZCTAs)."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

import roadnet
from roadnet.adjacency import components_within, polygon_adjacency
from roadnet.exceptions import AreaDataError
from roadnet.graph import CompiledGraph
from territory.cli import app
from territory.validate import RULES, ValidationReport, great_circle_m, validate_territories
from tests.support import shared_file
from tests.support.grids import grid

# ---------------------------------------------------------------------------- Malta + Gozo
_SEEDS = {
    "M1": "Il-Mellieħa",
    "M2": "Ir-Rabat",
    "M3": "Birkirkara",
    "M4": "Iż-Żejtun",
    "M5": "Iż-Żurrieq",
}
#: the Gozo council deliberately put into a Maltese territory
_MIXED = "Il-Qala"


def malta_alignment() -> gpd.GeoDataFrame:
    """67 councils in 6 territories: Gozo ("G"), and 5 on Malta grown from seed councils by
    breadth-first search over rook adjacency (so each is contiguous); then the Gozo council
    Il-Qala is moved into M1 (north-west Malta)."""
    gdf = gpd.read_file(shared_file("areas", "malta_councils.gpkg"))
    lat = shapely.get_y(shapely.point_on_surface(gdf.geometry.values))
    gozo = lat > 36.0
    assert gozo.sum() == 14
    adj = polygon_adjacency(gdf)
    terr = np.full(len(gdf), None, dtype=object)
    terr[gozo] = "G"
    queue: deque[int] = deque()
    for t, name in _SEEDS.items():
        i = int(np.flatnonzero((gdf["name"] == name).to_numpy() & ~gozo)[0])
        terr[i] = t
        queue.append(i)
    while queue:
        i = queue.popleft()
        for j in adj.indices[adj.indptr[i] : adj.indptr[i + 1]]:
            if terr[j] is None:
                terr[j] = terr[i]
                queue.append(j)
    assert not any(t is None for t in terr)
    gdf["territory"] = terr
    gdf.loc[gdf["name"] == _MIXED, "territory"] = "M1"
    gdf["population"] = 1000 + (np.arange(len(gdf)) * 37) % 500
    return gdf


@pytest.fixture(scope="module")
def malta_case(malta: CompiledGraph) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    gdf = malta_alignment()
    report = validate_territories(
        gdf,
        "territory",
        graph=malta,
        measures=["population"],
        max_drive_s=30 * 60,
        require_road_connected=True,
        use_cache=False,  # module scope: stay out of every cache folder
    )
    return gdf, report


def test_malta_gozo_council_unreachable_and_not_road_connected(
    malta_case: tuple[gpd.GeoDataFrame, ValidationReport],
) -> None:
    gdf, report = malta_case
    a = report.areas.set_index("id")
    qala = int(gdf.loc[gdf["name"] == _MIXED, "id"].iloc[0])
    assert a.loc[qala, "territory"] == "M1"
    assert bool(a.loc[qala, "unreachable"]) and np.isinf(a.loc[qala, "drive_minutes_from_center"])
    assert a["unreachable"].sum() == 1  # nothing else

    t = report.territories.set_index("territory")
    assert t.loc["M1", "n_unreachable"] == 1
    assert not t.loc["M1", "road_connected"] and t.loc["M1", "n_road_pieces"] == 2
    assert not t.loc["M1", "contiguous"] and t.loc["M1", "n_polygon_pieces"] == 2
    m1 = a[a["territory"] == "M1"]
    center = m1.index[m1["is_center"]][0]
    assert m1.loc[qala, "road_piece"] == 1 and (m1.drop(index=qala)["road_piece"] == 0).all()
    assert m1.loc[center, "road_piece"] == 0
    # the center is a Maltese council (the 1-median ranks "reaches everything" first)
    assert float(gdf.loc[gdf["id"] == center, "geometry"].iloc[0].representative_point().y) < 36
    others = t.drop(index="M1")
    assert others["road_connected"].all() and others["contiguous"].all()
    assert (others["n_unreachable"] == 0).all()

    assert report.rule("reachable") == {
        "rule": "reachable",
        "given": True,  # default with a road graph
        "evaluated": True,
        "passed": False,
        "detail": f"1 area(s) unreachable from their center: {qala} (M1)",
    }
    assert report.rule("road_connected")["passed"] is False
    assert "M1 (2 pieces)" in report.rule("road_connected")["detail"]
    assert report.rule("max_drive")["passed"] is False  # unreachable is not within the limit
    assert report.rule("contiguity")["given"] is False
    assert report.rule("contiguity")["passed"] is False
    assert not report.passed()
    assert report.failed_rules() == ["reachable", "max_drive", "road_connected"]
    assert [r["rule"] for r in report.rules] == list(RULES)


def test_malta_numbers_equal_recomputed(
    malta: CompiledGraph, malta_case: tuple[gpd.GeoDataFrame, ValidationReport]
) -> None:
    gdf, report = malta_case
    areas = roadnet.areas_from_gdf(gdf)
    a, t = report.areas, report.territories.set_index("territory")
    for name, rows in a.groupby("territory").indices.items():
        center = rows[a["is_center"].to_numpy()[rows]][0]
        lonlat = areas.lonlat()
        m = roadnet.drive_time_matrix(malta, lonlat[[center]], lonlat[rows], n_jobs=1)
        minutes = m.seconds[0].astype(np.float64) / 60
        np.testing.assert_allclose(
            a["drive_minutes_from_center"].to_numpy()[rows], minutes, rtol=1e-6
        )
        fin = np.isfinite(minutes)
        assert t.loc[name, "drive_max_min"] == pytest.approx(minutes[fin].max(), rel=1e-6)
        assert t.loc[name, "drive_mean_min"] == pytest.approx(minutes[fin].mean(), rel=1e-6)
        assert t.loc[name, "drive_p95_min"] == pytest.approx(
            np.percentile(minutes[fin], 95), rel=1e-6
        )
        w = gdf["population"].to_numpy(float)[rows][fin]
        assert t.loc[name, "drive_wmean_min"] == pytest.approx(
            (w * minutes[fin]).sum() / w.sum(), rel=1e-6
        )
        # the center is the drive-time 1-median: fewest unreachable, then least total time
        sq = roadnet.drive_time_matrix(malta, lonlat[rows], n_jobs=1).seconds.astype(float)
        key = [(int(np.isinf(r).sum()), float(r[np.isfinite(r)].sum())) for r in sq]
        mine = key[int(np.flatnonzero(rows == center)[0])]
        assert mine[0] == min(key)[0] and mine[1] == pytest.approx(min(key)[1], rel=1e-6)
        # detour ratio: drive time / great-circle time at 60 km/h, none under 1 km
        km = great_circle_m(areas.lon[center], areas.lat[center], areas.lon[rows], areas.lat[rows])
        np.testing.assert_allclose(a["straight_km"].to_numpy()[rows], km / 1000, rtol=1e-9)
        with np.errstate(invalid="ignore", divide="ignore"):  # the center: 0 / 0
            ratio = minutes * 60 / (km / (60 / 3.6))
        expect = np.where(fin & (km >= 1000), ratio, np.nan)
        np.testing.assert_allclose(a["detour_ratio"].to_numpy()[rows], expect, rtol=1e-6)
        assert t.loc[name, "n_detour_outliers"] == int(np.nansum(expect > 2.5))
    sizes = gdf.groupby("territory")["population"].sum()
    np.testing.assert_allclose(t["size_population"], sizes.loc[t.index])
    np.testing.assert_allclose(t["dev_population"], sizes.loc[t.index] / sizes.mean() - 1)


def test_malta_given_centers_and_center_column_agree(
    malta: CompiledGraph, malta_case: tuple[gpd.GeoDataFrame, ValidationReport]
) -> None:
    gdf, first = malta_case
    gdf = gdf.copy()
    gdf["hq"] = first.areas["is_center"].to_numpy()
    by_column = validate_territories(gdf, "territory", graph=malta, center_column="hq")
    pts = gpd.GeoDataFrame(
        {"territory": first.territories["territory"]},
        geometry=gpd.points_from_xy(
            first.territories["center_lon"], first.territories["center_lat"]
        ),
        crs="EPSG:4326",
    ).iloc[::-1]  # order does not matter
    by_points = validate_territories(gdf, "territory", graph=malta, centers=pts)
    for rep in (by_column, by_points):
        np.testing.assert_allclose(
            rep.areas["drive_minutes_from_center"],
            first.areas["drive_minutes_from_center"],
            rtol=1e-6,
        )
        assert rep.rule("reachable")["passed"] is False
    assert by_column.params["centers"] == "column 'hq'"
    assert by_points.territories["center_id"].isna().all()
    assert by_column.territories["center_id"].tolist() == first.territories["center_id"].tolist()


def test_malta_json_round_trip(
    tmp_path: Path, malta_case: tuple[gpd.GeoDataFrame, ValidationReport]
) -> None:
    _, report = malta_case
    path = tmp_path / "report.json"
    text = report.to_json(path)

    def no_constants(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    data = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)
    assert json.loads(text) == data
    assert data["passed"] is False
    assert data["failed_rules"] == report.failed_rules()
    assert [r["rule"] for r in data["rules"]] == list(RULES)
    assert len(data["areas"]) == 67 and len(data["territories"]) == 6
    unreachable = [r for r in data["areas"] if r["unreachable"]]
    assert len(unreachable) == 1 and unreachable[0]["drive_minutes_from_center"] is None
    assert unreachable[0]["detour_ratio"] is None
    t0, row0 = data["territories"][0], report.territories.iloc[0]
    for key in ("drive_max_min", "size_population", "dev_population", "n_areas"):
        assert t0[key] == pytest.approx(float(row0[key]))
        assert type(t0[key]) in (int, float)
    assert isinstance(data["areas"][0]["road_piece"], int)
    assert data["params"]["max_drive_s"] == 1800.0


def test_malta_text_report(malta_case: tuple[gpd.GeoDataFrame, ValidationReport]) -> None:
    _, report = malta_case
    text = report.to_text()
    assert "FAIL  reachable" in text and "PASS  snap_distance" in text
    assert "Worst territories" in text
    worst = text.split("Worst territories")[1].splitlines()[1].strip()
    assert worst.startswith("M1: 6 areas") and "1 unreachable" in worst
    assert text.rstrip().endswith("reachable, max_drive, road_connected)")


def test_malta_cached_equals_uncached(
    malta: CompiledGraph, malta_case: tuple[gpd.GeoDataFrame, ValidationReport]
) -> None:
    gdf, first = malta_case
    again = validate_territories(
        gdf, "territory", graph=malta, measures=["population"], max_drive_s=30 * 60
    )  # through the (per-test) cache, twice: the second run is served from it
    again = validate_territories(
        gdf, "territory", graph=malta, measures=["population"], max_drive_s=30 * 60
    )
    pd.testing.assert_frame_equal(again.territories, first.territories)
    pd.testing.assert_frame_equal(again.areas, first.areas)


# ------------------------------------------------------------------------- Porto: the Douro
_PORTO = {
    # north bank (Gondomar) and south bank (Avintes, Gaia): no bridge between them
    "130415": "river",
    "131702": "river",
    # Lordelo do Ouro (north) with Afurada and Santa Marinha (south): the Arrábida bridge
    "131218": "bridge",
    "131742": "bridge",
    "131741": "bridge",
    # north bank only
    "131217": "north",
    "131202": "north",
    "131211": "north",
    "131216": "north",
}


def test_porto_douro_detours_and_road_connectivity(porto: CompiledGraph) -> None:
    gdf = gpd.read_file(shared_file("areas", "porto_parishes.gpkg"))
    sel = gdf[gdf["parish_code"].isin(list(_PORTO))].copy()
    sel["territory"] = sel["parish_code"].map(_PORTO)
    report = validate_territories(sel, "territory", graph=porto, require_road_connected=True)
    t = report.territories.set_index("territory")
    a = report.areas.set_index("id")
    assert report.rule("reachable")["passed"] is True
    assert t["contiguous"].all()
    # Gondomar -> Avintes: 2.6 km apart across the river, 13 min by road (Freixo bridge)
    assert a.loc["130415", "is_center"]
    assert a.loc["131702", "straight_km"] == pytest.approx(2.57, abs=0.05)
    assert a.loc["131702", "drive_minutes_from_center"] > 10
    assert a.loc["131702", "detour_ratio"] > 4 and a.loc["131702", "detour_outlier"]
    assert t.loc["river", "n_detour_outliers"] == 1
    assert not t.loc["river", "road_connected"] and t.loc["river", "n_road_pieces"] == 2
    assert a.loc["131702", "road_piece"] != a.loc["130415", "road_piece"]
    # the Arrábida bridge lies inside Lordelo + Afurada: both banks are one road piece
    assert t.loc["bridge", "road_connected"] and t.loc["north", "road_connected"]
    assert not a.loc[["131218", "131742", "131741"], "detour_outlier"].any()
    assert report.rule("road_connected")["passed"] is False
    assert report.failed_rules() == ["road_connected"]


@pytest.fixture(scope="module")
def parishes() -> gpd.GeoDataFrame:
    return gpd.read_file(shared_file("areas", "porto_parishes.gpkg"))


def test_validate_contiguity_on_road_adjacency(porto: CompiledGraph, parishes) -> None:
    sel = parishes[parishes["parish_code"].isin(list(_PORTO))].copy()
    sel["territory"] = sel["parish_code"].map(_PORTO)
    rook = validate_territories(sel, "territory", graph=porto, require_contiguity=True)
    road = validate_territories(
        sel, "territory", graph=porto, require_contiguity=True, adjacency="road"
    )
    assert rook.territories["contiguous"].all() and rook.rule("contiguity")["passed"] is True
    t = road.territories.set_index("territory")
    # Gondomar and Avintes face each other across the Douro: no bridge between them
    assert not t.loc["river", "contiguous"] and t.loc["river", "n_polygon_pieces"] == 2
    # Lordelo do Ouro and Afurada: the Arrábida bridge joins them
    assert t.loc["bridge", "contiguous"] and t.loc["north", "contiguous"]
    assert road.rule("contiguity")["passed"] is False
    assert "river (2 pieces)" in road.rule("contiguity")["detail"]
    assert road.params["adjacency"] == "road"
    with pytest.raises(AreaDataError, match="needs a road graph"):
        validate_territories(sel, "territory", graph=None, adjacency="road")


def test_cli_validate_contiguity_road(tmp_path, porto: CompiledGraph, parishes) -> None:
    sel = parishes[parishes["parish_code"].isin(list(_PORTO))].copy()
    sel["territory"] = sel["parish_code"].map(_PORTO)
    src = tmp_path / "sel.gpkg"
    sel.to_file(src, driver="GPKG")
    graph = porto.save(tmp_path / "porto.npz")
    base = ["validate", str(src), "-t", "territory", "--graph", str(graph), "--no-cache"]
    polygon = CliRunner().invoke(app, [*base, "--require-contiguous"], catch_exceptions=False)
    assert polygon.exit_code == 0, polygon.output
    road = CliRunner().invoke(
        app, [*base, "--require-contiguous", "--contiguity", "road"], catch_exceptions=False
    )
    assert road.exit_code == 1, road.output
    assert "validation failed: contiguity" in road.stderr
    bad = CliRunner().invoke(
        app, ["validate", str(src), "-t", "territory", "--straight-line", "--contiguity", "road"]
    )
    assert bad.exit_code == 2 and "needs a road source" in bad.stderr


# ----------------------------------------------------------------- straight-line (no graph)
@pytest.fixture(scope="module")
def ct_zctas() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(shared_file("areas", "ct_zcta_2010.gpkg"))
    gdf["territory"] = "T" + gdf["zcta"].str[:3]
    return gdf


def test_straight_line_mode_connecticut(ct_zctas: gpd.GeoDataFrame) -> None:
    report = validate_territories(
        ct_zctas,
        "territory",
        graph=None,
        measures=["population", "ALAND10"],
        tolerance=0.5,
        require_contiguity=True,
    )
    t = report.territories.set_index("territory")
    assert len(t) == 10 and t["n_areas"].sum() == 282
    sizes = ct_zctas.groupby("territory")["population"].sum().loc[t.index]
    np.testing.assert_allclose(t["size_population"], sizes)
    np.testing.assert_allclose(t["dev_population"], sizes / sizes.mean() - 1)
    # contiguity equals the pieces of the rook adjacency
    pieces = dict(components_within(polygon_adjacency(ct_zctas), ct_zctas["territory"]))
    assert t["n_polygon_pieces"].tolist() == [len(pieces[k]) for k in t.index]
    assert report.rule("contiguity")["passed"] is bool((t["n_polygon_pieces"] == 1).all())
    off = (t[["dev_population", "dev_ALAND10"]].abs() > 0.5).any(axis=1)
    assert report.rule("balance")["passed"] is (not off.any())
    for name in ("reachable", "max_drive", "road_connected", "snap_distance"):
        r = report.rule(name)
        assert r["evaluated"] is False and r["passed"] is None and r["given"] is False
        assert "not evaluated" in r["detail"]
    assert t["drive_max_min"].isna().all() and t["road_connected"].isna().all()
    assert report.areas["unreachable"].isna().all()
    # the center is each territory's great-circle 1-median
    a = report.areas
    rep_pts = ct_zctas.geometry.representative_point()
    for rows in a.groupby("territory").indices.values():
        lon, lat = rep_pts.x.to_numpy()[rows], rep_pts.y.to_numpy()[rows]
        total = great_circle_m(lon[:, None], lat[:, None], lon[None], lat[None]).sum(axis=1)
        assert a["is_center"].to_numpy()[rows][int(np.argmin(total))]
    assert report.passed() is (report.rule("contiguity")["passed"] and not off.any())
    json.loads(report.to_json(), parse_constant=lambda c: pytest.fail(c))
    assert "N/E   road_connected" in report.to_text()


def test_passed_counts_only_given_rules(ct_zctas: gpd.GeoDataFrame) -> None:
    base = validate_territories(
        ct_zctas, "territory", graph=None, measures=["population"], tolerance=10.0
    )
    assert base.rule("balance")["passed"] is True
    assert base.rule("contiguity")["passed"] is False  # e.g. 3-digit ZIP regions are split
    assert base.passed() and base.failed_rules() == []  # contiguity was not asked for
    strict = validate_territories(
        ct_zctas,
        "territory",
        graph=None,
        measures=["population"],
        tolerance=10.0,
        require_contiguity=True,
    )
    assert not strict.passed() and strict.failed_rules() == ["contiguity"]
    # a rule asked for but impossible to evaluate (no road graph) is not a pass
    blind = validate_territories(ct_zctas, "territory", graph=None, require_road_connected=True)
    assert blind.rule("road_connected") == {
        "rule": "road_connected",
        "given": True,
        "evaluated": False,
        "passed": None,
        "detail": "not evaluated: no road graph (straight-line mode)",
    }
    assert not blind.passed() and blind.failed_rules() == ["road_connected"]
    nothing = validate_territories(ct_zctas, "territory", graph=None)
    assert nothing.passed() and "no rule required" in nothing.to_text()


def test_point_areas_skip_polygon_rules() -> None:
    pts = gpd.GeoDataFrame(
        {"id": ["a", "b", "c", "d"], "territory": [1, 1, 2, 2], "n": [1.0, 2.0, 3.0, 4.0]},
        geometry=gpd.points_from_xy([1.50, 1.52, 1.60, 1.62], [42.50, 42.51, 42.50, 42.52]),
        crs="EPSG:4326",
    )
    rep = validate_territories(pts, "territory", graph=None, measures=["n"], tolerance=0.5)
    assert rep.rule("contiguity")["evaluated"] is False
    assert rep.territories["contiguous"].isna().all()
    assert rep.territories["dev_n"].tolist() == pytest.approx([-0.4, 0.4])
    assert rep.rule("balance")["passed"] is True
    assert rep.territories["straight_max_km"].iloc[0] == pytest.approx(
        great_circle_m(1.50, 42.50, 1.52, 42.51) / 1000
    )


# ------------------------------------------------------------------------------ bad input
@pytest.fixture
def small() -> gpd.GeoDataFrame:
    g = grid(3, 2).to_crs("EPSG:4326")
    g["territory"] = ["a", "a", "b", "a", "b", "b"]
    g["hq"] = [True, False, False, False, False, False]
    return g


def test_bad_inputs_raise_readable_errors(small: gpd.GeoDataFrame) -> None:
    with pytest.raises(
        roadnet.AreaDataError,
        match=r"territory column 'region' not found.*"
        r"columns are \['cell', 'territory', 'hq'\]",
    ):
        validate_territories(small, "region", graph=None)
    with pytest.raises(
        roadnet.AreaDataError,
        match=r"exactly one area per territory: territories without a center: "
        r"\['b'\]",
    ):
        validate_territories(small, "territory", graph=None, center_column="hq")
    with pytest.raises(roadnet.AreaDataError, match="center column 'boss' not found"):
        validate_territories(small, "territory", graph=None, center_column="boss")
    centers = gpd.GeoDataFrame(
        {"name": ["a", "b"]}, geometry=gpd.points_from_xy([0, 0], [0, 0]), crs="EPSG:4326"
    )
    with pytest.raises(
        roadnet.AreaDataError, match=r"centers have no territory column 'territory'.*\['name'\]"
    ):
        validate_territories(small, "territory", graph=None, centers=centers)
    with pytest.raises(roadnet.AreaDataError, match=r"no center for territories \['b'\]"):
        validate_territories(
            small,
            "territory",
            graph=None,
            centers=centers.rename(columns={"name": "territory"}).iloc[:1],
        )
    with pytest.raises(roadnet.AreaDataError, match="not both"):
        validate_territories(small, "territory", graph=None, centers=centers, center_column="hq")
    with pytest.raises(roadnet.AreaDataError, match="measure column 'sales' not found"):
        validate_territories(small, "territory", graph=None, measures=["sales"])
    with pytest.raises(roadnet.AreaDataError, match="max_drive_s must be a finite number > 0"):
        validate_territories(small, "territory", graph=None, max_drive_s=-5)
    small.loc[2, "territory"] = None
    with pytest.raises(roadnet.AreaDataError, match="territory column 'territory' is empty"):
        validate_territories(small, "territory", graph=None)


def test_center_column_and_point_centers_without_graph(small: gpd.GeoDataFrame) -> None:
    small["hq"] = [True, False, True, False, False, False]
    rep = validate_territories(small, "territory", graph=None, center_column="hq")
    assert rep.territories["center_id"].tolist() == [0, 2]
    assert rep.areas["is_center"].tolist() == small["hq"].tolist()
    # centers read from another file often carry labels of another type: 1 vs "1"
    small["territory"] = [1, 1, 2, 1, 2, 2]
    centers = gpd.GeoDataFrame(
        {"territory": ["1", "2"]},
        geometry=gpd.points_from_xy([0.0, 0.003], [0.0, 0.0]),
        crs="EPSG:4326",
    ).to_crs("EPSG:3857")
    rep = validate_territories(small, "territory", graph=None, centers=centers)
    assert rep.territories["center_lon"].tolist() == pytest.approx([0.0, 0.003])
    assert not rep.areas["is_center"].any()
