"""``roadnet serve``: the OSRM-compatible services against the library, a real OSRM client, the
documented errors, the bearer token, and OpenAPI-driven fuzzing — on a real server (uvicorn in
a subprocess on 127.0.0.1) serving Andorra and a synthetic graph of two road islands."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

import roadnet
from roadnet.ch import Hierarchy
from roadnet.engine import EngineChoice
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import cached_hierarchy, load_road_graph
from roadnet.matrix import DriveTimeMatrix, drive_time_matrix
from roadnet.snap import snap_points
from territory.cli import app as cli_app
from territory.service.geometry import decode_polyline, encode_polyline, haversine_m
from tests.conftest import shared_file
from tests.service_server import Server, two_islands


# ------------------------------------------------------------------------------ fixtures
class Served:
    """A running server and the graphs it serves (with their hierarchies) for the library."""

    def __init__(self, server: Server, graphs: dict[str, tuple[CompiledGraph, Hierarchy]]):
        self.server = server
        self.url = server.url
        self.graphs = graphs

    def library(self, region: str, pts: np.ndarray, **kw: object) -> DriveTimeMatrix:
        g, h = self.graphs[region]
        return drive_time_matrix(g, pts, engine=EngineChoice("ch", "test", h), n_jobs=1, **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cache = tmp_path_factory.mktemp("service-cache")
    islands_file = two_islands().save(cache / "islands.npz")
    graphs = {}
    with roadnet.settings.override(cache_dir=cache):
        for name, kw in (("andorra", {"pbf": pbf}), ("islands", {"graph": islands_file})):
            g, _ = load_road_graph(**kw)
            h, _ = cached_hierarchy(g)
            graphs[name] = (g, h)
    server = Server(["--pbf", str(pbf), "--graph", str(islands_file)], cache).start()
    try:
        yield Served(server, graphs)
    finally:
        server.stop()


def _points(g: CompiledGraph, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.choice(np.flatnonzero(g.scc == 0), size=k, replace=False)
    pts = np.column_stack([g.lon[rows], g.lat[rows]]) + rng.normal(0, 3e-4, size=(k, 2))
    return np.round(pts, 5)


def _coords(pts: np.ndarray) -> str:
    return ";".join(f"{lon:.5f},{lat:.5f}" for lon, lat in pts)


def _matrix(rows: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.inf if v is None else v for v in r] for r in rows], dtype=np.float64)


# ------------------------------------------------------------------------------ table
def test_table_equals_drive_time_matrix(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 12, seed=1)
    r = httpx.get(
        f"{served.url}/table/v1/driving/{_coords(pts)}", params={"annotations": "duration,distance"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == "Ok"
    lib = served.library("andorra", pts, distances=True)
    np.testing.assert_array_equal(_matrix(body["durations"]).astype(np.float32), lib.seconds)
    np.testing.assert_array_equal(_matrix(body["distances"]).astype(np.float32), lib.metres)
    assert len(body["sources"]) == len(body["destinations"]) == 12
    snapped = snap_points(g, pts[:, 0], pts[:, 1], warn=False)
    for wp, dist in zip(body["sources"], snapped.snap_distance_m, strict=True):
        assert set(wp) == {"location", "distance", "name"}
        assert isinstance(wp["name"], str)  # the road's name: see the waypoint-name test
        assert wp["distance"] == pytest.approx(dist, abs=1e-5)
    # the snapped location lies at the snap distance from the input point
    loc = np.array([wp["location"] for wp in body["sources"]])
    crow = haversine_m(pts[:, 0], pts[:, 1], loc[:, 0], loc[:, 1])
    np.testing.assert_allclose(crow, snapped.snap_distance_m, atol=1.0, rtol=0.01)


def test_table_sources_destinations_and_scale_factor(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 6, seed=2)
    r = httpx.get(
        f"{served.url}/table/v1/car/{_coords(pts)}",
        params={"sources": "0;3", "destinations": "5;1;1", "scale_factor": "2"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "distances" not in body  # annotations default to duration only
    lib = served.library("andorra", pts)
    want = lib.seconds[np.ix_([0, 3], [5, 1, 1])].astype(np.float64) * 2
    np.testing.assert_array_equal(np.array(body["durations"]), want)
    assert len(body["sources"]) == 2 and len(body["destinations"]) == 3
    assert body["destinations"][1] == body["destinations"][2]


def test_table_unreachable_is_null_and_fallback_speed_fills_it(served: Served) -> None:
    g, _ = served.graphs["islands"]
    half = g.n_nodes // 2
    west = np.flatnonzero((np.arange(g.n_nodes) < half) & (g.scc == 0))[:2]
    east = np.flatnonzero((np.arange(g.n_nodes) >= half) & (g.scc == g.scc[half]))[:2]
    rows = np.concatenate([west, east])
    pts = np.round(np.column_stack([g.lon[rows], g.lat[rows]]), 6)
    coords = ";".join(f"{lon:.6f},{lat:.6f}" for lon, lat in pts)
    body = httpx.get(f"{served.url}/table/v1/driving/{coords}").json()
    d = body["durations"]
    assert d[0][2] is None and d[2][0] is None and d[3][1] is None
    assert d[0][1] is not None and d[2][3] is not None
    lib = served.library("islands", pts)
    np.testing.assert_array_equal(_matrix(d).astype(np.float32), lib.seconds)

    fb = httpx.get(
        f"{served.url}/table/v1/driving/{coords}",
        params={"fallback_speed": "10", "annotations": "duration,distance"},
    ).json()
    cells = {tuple(c) for c in fb["fallback_speed_cells"]}
    assert cells == {(i, j) for i in range(4) for j in range(4) if d[i][j] is None}
    crow = haversine_m(pts[0, 0], pts[0, 1], pts[2, 0], pts[2, 1])
    assert fb["durations"][0][2] == pytest.approx(crow / 10, rel=1e-9)
    assert fb["distances"][0][2] == pytest.approx(crow, rel=1e-9)
    assert np.float32(fb["durations"][0][1]) == np.float32(d[0][1])  # routed cells unchanged


def test_table_radiuses_reject_far_points(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 2, seed=3)
    snapped = snap_points(g, pts[:, 0], pts[:, 1], warn=False)
    tight = snapped.snap_distance_m[1] / 2
    r = httpx.get(
        f"{served.url}/table/v1/driving/{_coords(pts)}", params={"radiuses": f";{tight:.6f}"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "NoSegment" and "coordinate 1" in r.json()["message"]
    ok = httpx.get(
        f"{served.url}/table/v1/driving/{_coords(pts)}", params={"radiuses": "unlimited;5000"}
    )
    assert ok.status_code == 200


# ------------------------------------------------------------------------------ nearest, route
def test_nearest_returns_the_snapped_point(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 1, seed=4)
    body = httpx.get(f"{served.url}/nearest/v1/driving/{_coords(pts)}", params={"number": 3}).json()
    assert body["code"] == "Ok"
    wps = body["waypoints"]
    assert 1 <= len(wps) <= 3
    dists = [w["distance"] for w in wps]
    assert dists == sorted(dists)
    snapped = snap_points(g, pts[:, 0], pts[:, 1], warn=False)
    assert wps[0]["distance"] == pytest.approx(snapped.snap_distance_m[0], abs=1e-3)
    table = httpx.get(f"{served.url}/table/v1/driving/{_coords(pts)}").json()
    np.testing.assert_allclose(wps[0]["location"], table["sources"][0]["location"], atol=2e-6)
    for w in wps:
        assert len(w["nodes"]) == 2 and all(isinstance(v, int) for v in w["nodes"])


@pytest.mark.parametrize("geometries", ["polyline", "polyline6", "geojson"])
def test_route_is_consistent_with_the_table(served: Served, geometries: str) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 3, seed=5)
    url = f"{served.url}/route/v1/driving/{_coords(pts)}"
    body = httpx.get(url, params={"geometries": geometries, "overview": "full"}).json()
    assert body["code"] == "Ok", body
    (route,) = body["routes"]
    lib = served.library("andorra", pts, distances=True)
    legs = route["legs"]
    assert [leg["duration"] for leg in legs] == [float(lib.seconds[0, 1]), float(lib.seconds[1, 2])]
    assert [leg["distance"] for leg in legs] == [float(lib.metres[0, 1]), float(lib.metres[1, 2])]
    assert route["duration"] == pytest.approx(sum(leg["duration"] for leg in legs), rel=1e-12)
    if geometries == "geojson":
        line = np.array(route["geometry"]["coordinates"])
    else:
        line = decode_polyline(route["geometry"], 6 if geometries == "polyline6" else 5)
    # the geometry starts and ends at the snapped waypoints and is as long as the road metres
    tol = 2e-6 if geometries != "polyline" else 2e-5
    np.testing.assert_allclose(line[0], body["waypoints"][0]["location"], atol=tol)
    np.testing.assert_allclose(line[-1], body["waypoints"][-1]["location"], atol=tol)
    length = haversine_m(line[:-1, 0], line[:-1, 1], line[1:, 0], line[1:, 1]).sum()
    assert length == pytest.approx(route["distance"], rel=0.01)


def test_route_overview_false_and_simplified(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    url = f"{served.url}/route/v1/car/{_coords(_points(g, 2, seed=6))}"
    bare = httpx.get(url, params={"overview": "false"}).json()
    assert "geometry" not in bare["routes"][0]
    full = decode_polyline(
        httpx.get(url, params={"overview": "full"}).json()["routes"][0]["geometry"], 5
    )
    simple = decode_polyline(httpx.get(url).json()["routes"][0]["geometry"], 5)
    assert 2 <= simple.shape[0] <= full.shape[0]
    np.testing.assert_allclose(simple[[0, -1]], full[[0, -1]], atol=2e-5)


def test_route_between_islands_is_no_route(served: Served) -> None:
    g, _ = served.graphs["islands"]
    a, b = 0, g.n_nodes - 1
    coords = f"{g.lon[a]:.6f},{g.lat[a]:.6f};{g.lon[b]:.6f},{g.lat[b]:.6f}"
    r = httpx.get(f"{served.url}/route/v1/islands/{coords}")
    assert r.status_code == 400 and r.json()["code"] == "NoRoute"


def test_polyline_coordinates_are_accepted(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 3, seed=7)
    plain = httpx.get(f"{served.url}/table/v1/driving/{_coords(pts)}").json()
    enc = encode_polyline(pts, 5)
    poly = httpx.get(f"{served.url}/table/v1/driving/polyline({enc})").json()
    assert poly["durations"] == plain["durations"]


# ------------------------------------------------------------------------------ a real client
def test_routingpy_osrm_client_gets_the_library_matrix(served: Served) -> None:
    from routingpy import OSRM

    g, _ = served.graphs["andorra"]
    pts = _points(g, 8, seed=8)
    client = OSRM(base_url=served.url)
    m = client.matrix(locations=pts.tolist(), profile="driving")
    lib = served.library("andorra", pts, distances=True)
    np.testing.assert_array_equal(np.array(m.durations, dtype=np.float32), lib.seconds)
    np.testing.assert_array_equal(np.array(m.distances, dtype=np.float32), lib.metres)
    d = client.directions(locations=pts[:2].tolist(), profile="driving")
    assert d.duration == int(lib.seconds[0, 1])  # routingpy rounds down to whole seconds
    assert d.raw["routes"][0]["duration"] == float(lib.seconds[0, 1])
    assert len(d.geometry) >= 2


# ------------------------------------------------------------------------------ errors
_ERRORS = [
    ("/table/v1/driving/1.52,42.51;abc", "InvalidUrl"),
    ("/table/v1/driving/1.52;42.51", "InvalidUrl"),
    ("/table/v1/driving/1.52,142.51", "InvalidOptions"),
    ("/table/v1/driving/181,42.5", "InvalidOptions"),
    ("/table/v1/driving/", "InvalidUrl"),
    ("/table/v1/driving/.json", "InvalidUrl"),
    ("/table/v1/bicycle/1.52,42.51", "InvalidUrl"),
    ("/table/v1/driving/1.52,42.51?annotations=speed", "InvalidQuery"),
    ("/table/v1/driving/1.52,42.51?annotations=", "InvalidQuery"),
    ("/table/v1/driving/1.52,42.51?sources=0;7", "InvalidOptions"),
    ("/table/v1/driving/1.52,42.51?sources=x", "InvalidQuery"),
    ("/table/v1/driving/1.52,42.51?fallback_speed=-3", "InvalidValue"),
    ("/table/v1/driving/1.52,42.51?scale_factor=abc", "InvalidQuery"),
    ("/table/v1/driving/1.52,42.51?radiuses=1;2", "InvalidOptions"),
    ("/table/v1/driving/1.52,42.51?bogus=1", "InvalidQuery"),
    ("/table/v1/driving/1.52,42.51?bearings=10,10", "NotImplemented"),
    ("/table/v1/driving/polyline(%7B%7B)", "InvalidUrl"),
    ("/table/v1/driving/60.0,10.0", "NoSegment"),
    ("/nearest/v1/driving/1.52,42.51;1.53,42.52", "InvalidOptions"),
    ("/nearest/v1/driving/1.52,42.51?number=0", "InvalidOptions"),
    ("/route/v1/driving/1.52,42.51", "InvalidOptions"),
    ("/route/v1/driving/1.52,42.51;1.53,42.50?geometries=kml", "InvalidQuery"),
    ("/route/v1/driving/1.52,42.51;1.53,42.50?steps=true", "NotImplemented"),
    ("/match/v1/driving/1.52,42.51;1.53,42.50", "InvalidUrl"),
]


@pytest.mark.parametrize(("path", "code"), _ERRORS)
def test_bad_osrm_requests_get_the_documented_error(served: Served, path: str, code: str) -> None:
    r = httpx.get(served.url + path)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]


def test_too_big_table(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    pts = _points(g, 40, seed=9)
    server = Server(
        ["--pbf", str(shared_file("osm", "andorra-latest.osm.pbf")), "--max-table-size", "30"],
        served.server.cache_dir,
    ).start()
    try:
        r = httpx.get(f"{server.url}/table/v1/driving/{_coords(pts)}")
        assert r.status_code == 400 and r.json()["code"] == "TooBig"
        ok = httpx.get(f"{server.url}/table/v1/driving/{_coords(pts)}?sources=0;1;2")
        assert ok.status_code == 200
    finally:
        server.stop()


def test_unknown_path_and_method_are_json(served: Served) -> None:
    r = httpx.get(f"{served.url}/nothing/here")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    r = httpx.post(f"{served.url}/health")
    assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"


def test_health_ready_graphs_metrics(served: Served) -> None:
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{served.url}/ready").json()["regions"] == ["andorra", "islands"]
    graphs = {g["name"]: g for g in httpx.get(f"{served.url}/v1/graphs").json()["graphs"]}
    g, h = served.graphs["andorra"]
    a = graphs["andorra"]
    assert (a["nodes"], a["arcs"]) == (g.n_nodes, g.n_arcs)
    assert a["memory_mapped"] is True and a["hierarchy"]["arcs"] == h.n_arcs
    assert a["built"] and a["source"].endswith("andorra-latest.osm.pbf")
    assert graphs["islands"]["memory_mapped"] is False  # a saved .npz is not in the cache
    httpx.get(f"{served.url}/table/v1/driving/1.52,42.51;1.53,42.50")
    text = httpx.get(f"{served.url}/metrics").text
    assert (
        'roadnet_requests_total{endpoint="/table/v1/{profile}/{coordinates}",status="200"}' in text
    )
    assert "roadnet_request_seconds_bucket" in text and "roadnet_table_cells_total" in text


def test_no_cors_headers_unless_configured(served: Served) -> None:
    r = httpx.get(f"{served.url}/health", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in r.headers


# ------------------------------------------------------------------------------ safety
def test_token_is_required_when_configured(served: Served) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    token = "s3cret-token-for-the-test"
    server = Server(
        ["--pbf", str(pbf), "--token-env", "ROADNET_TEST_TOKEN"],
        served.server.cache_dir,
        env={"ROADNET_TEST_TOKEN": token},
    ).start(headers={"Authorization": f"Bearer {token}"})
    try:
        url = f"{server.url}/table/v1/driving/1.52,42.51;1.53,42.50"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            r = httpx.get(url, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "Unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(f"{server.url}/health").status_code == 200  # liveness stays open
    finally:
        server.stop()


def test_serve_refuses_a_public_host_without_token(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    res = CliRunner().invoke(cli_app, ["serve", "--pbf", str(pbf), "--host", "0.0.0.0"])
    assert res.exit_code == 2
    assert "--token-env" in res.output and "--insecure" in res.output
    res = CliRunner().invoke(
        cli_app,
        ["serve", "--pbf", str(pbf), "--host", "0.0.0.0", "--token-env", "ROADNET_UNSET_VAR_X"],
    )
    assert res.exit_code == 2 and "ROADNET_UNSET_VAR_X" in res.output


def test_serve_help_lists_the_options() -> None:
    res = CliRunner().invoke(cli_app, ["serve", "--help"], terminal_width=200)
    assert res.exit_code == 0
    for opt in ("--pbf", "--graph", "--host", "--port", "--token-env", "--insecure",
                "--max-table-size", "--workers"):  # fmt: skip
        assert opt in res.output


# ------------------------------------------------------------------------------ fuzzing
@pytest.fixture(scope="module")
def api_schema(served: Served):
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_fuzzed_requests_never_get_a_server_error(case) -> None:
    response = case.call(timeout=60)
    assert response.status_code < 500, (case.path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message"}


def test_waypoint_distance_is_finite_json(served: Served) -> None:
    g, _ = served.graphs["andorra"]
    body = httpx.get(f"{served.url}/table/v1/driving/{_coords(_points(g, 2, seed=10))}").json()
    assert all(math.isfinite(w["distance"]) for w in body["sources"])


def test_waypoint_names_are_the_osm_names_of_the_snapped_roads(served: Served) -> None:
    import osmium

    g, _ = served.graphs["andorra"]
    pts = _points(g, 25, seed=11)
    body = httpx.get(f"{served.url}/table/v1/driving/{_coords(pts)}").json()
    snapped = snap_points(g, pts[:, 0], pts[:, 1], warn=False)
    ways = {int(w) for w in g.arc_osmid[snapped.arc]}
    want: dict[int, str] = {}

    class Names(osmium.SimpleHandler):  # an independent read of the file's way names
        def way(self, w: osmium.osm.Way) -> None:
            if w.id in ways:
                want[w.id] = w.tags.get("name", "")

    Names().apply_file(str(shared_file("osm", "andorra-latest.osm.pbf")))
    expected = [want[int(w)] for w in g.arc_osmid[snapped.arc]]
    assert [wp["name"] for wp in body["sources"]] == expected
    assert sum(bool(n) for n in expected) >= 10  # most roads in Andorra have names
    near = httpx.get(f"{served.url}/nearest/v1/driving/{_coords(pts[:1])}").json()
    assert near["waypoints"][0]["name"] == expected[0]
    # a region served from a saved graph has way ids but no names
    gi, _ = served.graphs["islands"]
    isl = _points(gi, 2, seed=1)
    body = httpx.get(f"{served.url}/table/v1/islands/{_coords(isl)}").json()
    assert [wp["name"] for wp in body["sources"]] == ["", ""]
