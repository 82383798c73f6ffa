"""The download path, for real but without internet, and OSM XML files.

``graph_from_place`` / ``graph_from_bbox`` / ``graph_from_polygon`` run osmnx's own Nominatim and
Overpass clients against :class:`overpass_replay.ReplayServer` on 127.0.0.1, which answers with
real OSM data of Andorra la Vella recorded in ``tests/data/`` (see
``scripts/make_download_fixtures.py``); any attempt to reach another host fails the test. The
recorded files make these tests run without ``../shared/data``; only the comparison with the
PBF extract needs it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import requests
import shapely

import roadnet
from roadnet import GraphSourceError, PlaceNotFoundError
from roadnet.graph import CompiledGraph

if TYPE_CHECKING:
    from overpass_replay import ReplayServer

#: the fixtures ``no_internet`` and ``replay_server`` (imported by pytest, assertions rewritten)
pytest_plugins = ["overpass_replay"]

DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURE = json.loads((DATA / "andorra_la_vella_fixture.json").read_text())
PLACE: str = FIXTURE["place"]
BOX = tuple(FIXTURE["bbox"])
XML = DATA / FIXTURE["osm_xml"]["file"]
INTERPRETER, STATUS, SEARCH = "/api/interpreter", "/api/status", "/search"


def _arcs(g: CompiledGraph) -> list[tuple[int, int, int]]:
    """(tail OSM id, head OSM id, way id) of every arc, sorted."""
    return sorted(
        zip(
            g.node_ids[g.arc_u].tolist(),
            g.node_ids[g.arc_v].tolist(),
            g.arc_osmid.tolist(),
            strict=True,
        )
    )


def _arc_values(g: CompiledGraph) -> tuple[np.ndarray, np.ndarray]:
    """Seconds and metres of the arcs in the order of :func:`_arcs`."""
    key = np.lexsort((g.arc_seconds, g.arc_osmid, g.node_ids[g.arc_v], g.node_ids[g.arc_u]))
    return g.arc_seconds[key].astype(float), g.arc_metres[key].astype(float)


def _same_graph(a: CompiledGraph, b: CompiledGraph) -> None:
    assert np.array_equal(np.sort(a.node_ids), np.sort(b.node_ids))
    assert _arcs(a) == _arcs(b)
    for x, y in zip(_arc_values(a), _arc_values(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------ the server itself
def test_replay_server_speaks_overpass_and_nominatim(replay_server: ReplayServer) -> None:
    from osmnx import _overpass

    base = replay_server.base_url
    # osmnx's own parser of the status page finds a free slot: no pause
    assert _overpass._get_overpass_pause(replay_server.overpass_url) == 0
    w, s, e, n = BOX
    ring = f"{s} {w} {s} {e} {n} {e} {n} {w} {s} {w}"
    query = f'[out:json][timeout:10];(way["highway"](poly:"{ring}");>;);out;'
    answer = requests.post(f"{base}/api/interpreter", data={"data": query}, timeout=10).json()
    assert answer["version"] == 0.6
    assert "ODbL" in answer["osm3s"]["copyright"]
    kinds = [el["type"] for el in answer["elements"]]
    assert kinds.count("way") == FIXTURE["overpass"]["ways"]
    assert kinds.count("node") == FIXTURE["overpass"]["nodes"]
    assert kinds == sorted(kinds)  # nodes first, then ways, as Overpass writes them
    far = query.replace(ring, "0.1 0.1 0.1 0.2 0.2 0.2 0.1 0.1")
    got = requests.get(f"{base}/api/interpreter", params={"data": far}, timeout=10).json()
    assert got["elements"] == []
    bad = requests.post(f"{base}/api/interpreter", data={"data": "node(1);out;"}, timeout=10)
    assert bad.status_code == 400

    found = requests.get(f"{base}/search", params={"q": PLACE, "format": "json"}, timeout=10)
    assert [r["display_name"] for r in found.json()] == [PLACE]
    other = requests.get(f"{base}/search", params={"q": "Atlantis", "format": "json"}, timeout=10)
    assert other.json() == []
    missing = requests.get(f"{base}/nowhere", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["path"] == "/nowhere"

    assert [(r.method, r.path) for r in replay_server.requests] == [
        ("GET", STATUS),
        ("POST", INTERPRETER),
        ("GET", INTERPRETER),
        ("POST", INTERPRETER),
        ("GET", SEARCH),
        ("GET", SEARCH),
        ("GET", "/nowhere"),
    ]
    assert replay_server.requests[1].value("data") == query


def test_network_guard_refuses_other_hosts(no_internet: list[str]) -> None:
    with pytest.raises(AssertionError, match="internet"):
        socket.getaddrinfo("overpass-api.de", 443)
    with pytest.raises(AssertionError, match="internet"), socket.socket() as sock:
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    assert len(no_internet) == 2
    no_internet.clear()  # the refusals above were the point of this test


# ------------------------------------------------------------------------ downloads
def test_graph_from_place_through_replay_server(replay_server: ReplayServer) -> None:
    import osmnx as ox

    g = roadnet.graph_from_place(PLACE)
    assert g.n_nodes > 0
    assert g.n_arcs > 0
    source = g.meta["source"]
    assert source["type"] == "overpass"
    assert source["kind"] == "place"
    assert source["query"] == PLACE
    assert source["overpass_url"] == replay_server.overpass_url

    # what osmnx asked: one Nominatim search, the status page, one Overpass query
    (search,) = replay_server.requests_to(SEARCH)
    assert search.value("q") == PLACE
    assert search.value("format") == "json"
    assert search.value("polygon_geojson") == "1"
    assert len(replay_server.requests_to(STATUS)) == 1
    (query,) = replay_server.requests_to(INTERPRETER)
    assert query.method == "POST"
    data = query.value("data")
    assert data is not None
    assert data.startswith("[out:json]")
    assert 'way["highway"]' in data
    assert '["highway"!~"abandoned|bridleway' in data  # osmnx's "drive" filter
    # the query area is the geocoded box buffered by osmnx's 500 m
    (poly,) = replay_server.query_polygons(data)
    assert poly.contains(shapely.box(*BOX))
    assert 0.004 < BOX[0] - poly.bounds[0] < 0.008  # 500 m of longitude here: 0.0061 deg

    # osmnx's HTTP cache lives in roadnet's cache folder
    cache = roadnet.settings.cache_dir / "osmnx-http"
    assert Path(ox.settings.cache_folder) == cache
    files = sorted(cache.glob("*.json"))
    assert len(files) == 2
    cached = [json.loads(p.read_text()) for p in files]
    assert replay_server.nominatim in cached
    assert any(isinstance(c, dict) and c.get("elements") for c in cached)

    # the same call again is answered from osmnx's cache: no request at all
    seen = len(replay_server.requests)
    again = roadnet.graph_from_place(PLACE)
    assert len(replay_server.requests) == seen
    _same_graph(g, again)


def test_place_bbox_and_polygon_give_the_same_graph(replay_server: ReplayServer) -> None:
    def queries() -> int:
        return len(replay_server.requests_to(INTERPRETER))

    by_place = roadnet.graph_from_place(PLACE)
    assert queries() == 1
    by_bbox = roadnet.graph_from_bbox(BOX)
    # osmnx writes the bbox's ring as Nominatim's geojson ring (from the south-west corner):
    # the same query string, so the answer comes from osmnx's cache
    assert queries() == 1
    by_polygon = roadnet.graph_from_polygon(shapely.box(*BOX))
    assert queries() == 2  # shapely.box starts the ring at another corner: a new query
    assert by_bbox.meta["source"]["kind"] == "bbox"
    assert by_bbox.meta["source"]["query"] == list(BOX)
    assert by_polygon.meta["source"]["kind"] == "polygon"
    assert by_polygon.meta["source"]["query"].startswith("POLYGON")
    _same_graph(by_place, by_bbox)
    _same_graph(by_place, by_polygon)
    assert len(replay_server.requests_to(SEARCH)) == 1
    # osmnx truncates to the area keeping the first node outside it (truncate_by_edge)
    w, _, e, n = BOX
    assert by_bbox.lon.min() < w < e < by_bbox.lon.max()
    assert w - 0.005 < by_bbox.lon.min()
    assert by_bbox.lat.max() < n + 0.005


def test_download_matches_the_xml_of_the_same_area(replay_server: ReplayServer) -> None:
    """Overpass JSON through osmnx and OSM XML through osmnx: one network."""
    downloaded = roadnet.graph_from_bbox(BOX)
    from_xml = roadnet.graph_from_xml(XML)
    _same_graph(downloaded, from_xml)


def test_unknown_place_raises_place_not_found(replay_server: ReplayServer) -> None:
    with pytest.raises(PlaceNotFoundError, match=r"'Atlantis' not found: Nominatim") as info:
        roadnet.graph_from_place("Atlantis")
    assert isinstance(info.value, LookupError)
    assert "returned 0 results" in str(info.value)
    assert len(replay_server.requests_to(SEARCH)) == 1
    assert replay_server.requests_to(INTERPRETER) == []
    for blank in ("", "   "):
        with pytest.raises(PlaceNotFoundError, match="non-empty"):
            roadnet.graph_from_place(blank)
    assert len(replay_server.requests) == 1


def test_area_without_roads_raises_place_not_found(replay_server: ReplayServer) -> None:
    empty = (1.4000, 42.4300, 1.4100, 42.4400)  # in Andorra, outside the recorded area
    with pytest.raises(PlaceNotFoundError, match="no drivable road network found"):
        roadnet.graph_from_bbox(empty)
    assert len(replay_server.requests_to(INTERPRETER)) == 1


@pytest.mark.parametrize(("failure", "expected"), [("http500", "500"), ("garbage", "not JSON")])
def test_overpass_failure_raises_graph_source_error(
    replay_server: ReplayServer, failure: str, expected: str
) -> None:
    replay_server.overpass_failure = failure
    with pytest.raises(GraphSourceError, match=expected) as info:
        roadnet.graph_from_bbox(BOX)
    assert not isinstance(info.value, PlaceNotFoundError)
    assert "downloading bbox" in str(info.value)
    # nothing was cached, so once the server answers again the download works
    assert list((roadnet.settings.cache_dir / "osmnx-http").glob("*.json")) == []
    replay_server.overpass_failure = None
    assert roadnet.graph_from_bbox(BOX).n_arcs > 0
    assert len(replay_server.requests_to(INTERPRETER)) == 2


def test_unreachable_nominatim_raises_graph_source_error(replay_server: ReplayServer) -> None:
    with (
        roadnet.settings.override(nominatim_url=f"http://127.0.0.1:{_closed_port()}/"),
        pytest.raises(GraphSourceError, match="ConnectionError") as info,
    ):
        roadnet.graph_from_place(PLACE)
    assert not isinstance(info.value, PlaceNotFoundError)


@pytest.mark.parametrize(
    "bbox",
    [
        (1.53, 42.50, 1.51, 42.51),  # west > east
        (1.51, 42.51, 1.53, 42.50),  # south > north
        (1.51, 42.50, 1.51, 42.51),  # no width
        (0.0, 95.0, 1.0, 96.0),  # beyond the pole
        (float("nan"), 42.50, 1.53, 42.51),
        (1.51, 42.50, 1.53),  # three numbers
        ("west", 42.50, 1.53, 42.51),
        None,
    ],
)
def test_invalid_bbox_raises_graph_source_error(replay_server: ReplayServer, bbox: object) -> None:
    with pytest.raises(GraphSourceError, match=r"bbox must be \(west, south, east, north\)"):
        roadnet.graph_from_bbox(bbox)  # type: ignore[arg-type]
    assert replay_server.requests == []


@pytest.mark.parametrize("polygon", ["POLYGON ((0 0, 1 0, 1 1, 0 0))", shapely.Polygon(), None])
def test_invalid_polygon_raises_graph_source_error(
    replay_server: ReplayServer, polygon: object
) -> None:
    with pytest.raises(GraphSourceError, match="polygon must be"):
        roadnet.graph_from_polygon(polygon)
    assert replay_server.requests == []


# ------------------------------------------------------------------------ OSM XML
def test_graph_from_xml_reads_the_fixture(no_internet: list[str]) -> None:
    g = roadnet.graph_from_xml(XML)
    assert g.n_nodes > 100
    assert g.n_arcs > 100
    assert g.meta["source"]["type"] == "osm_xml"
    assert g.meta["source"]["path"] == str(XML.resolve())
    assert len(g.meta["source"]["sha256"]) == 64
    # the drive filter dropped the footways, steps, service roads... of the file
    assert set(g.highway_classes) <= {
        "primary", "secondary", "tertiary", "residential", "living_street", "unclassified",
        "secondary_link", "tertiary_link", "primary_link", "trunk", "trunk_link",
    }  # fmt: skip
    text = XML.read_text(encoding="utf-8")
    assert '<tag k="highway" v="footway"/>' in text
    assert '<tag k="highway" v="service"/>' in text


def test_graph_from_xml_equals_graph_from_pbf_of_the_same_box(no_internet: list[str]) -> None:
    """The XML holds the ways a ``bounding_box`` read of the PBF keeps: one network."""
    pbf = SHARED / "osm" / "andorra-latest.osm.pbf"
    if not pbf.is_file():
        pytest.skip(f"shared data not available: {pbf}")
    from_xml = roadnet.graph_from_xml(XML)
    from_pbf = roadnet.graph_from_pbf(pbf, bbox=BOX)
    # same junctions at the same places, same arcs along the same ways
    order_x, order_p = np.argsort(from_xml.node_ids), np.argsort(from_pbf.node_ids)
    assert np.array_equal(from_xml.node_ids[order_x], from_pbf.node_ids[order_p])
    assert np.array_equal(from_xml.lon[order_x], from_pbf.lon[order_p])
    assert np.array_equal(from_xml.lat[order_x], from_pbf.lat[order_p])
    assert _arcs(from_xml) == _arcs(from_pbf)
    # pyrosm rounds each segment's length to the millimetre, osmnx does not: arcs agree to a
    # few millimetres and a fraction of a millisecond
    (sec_x, m_x), (sec_p, m_p) = _arc_values(from_xml), _arc_values(from_pbf)
    np.testing.assert_allclose(m_x, m_p, rtol=0, atol=5e-3)
    np.testing.assert_allclose(sec_x, sec_p, rtol=0, atol=5e-4)

    # drive times between interior junctions
    w, s, e, n = BOX
    inner = (
        (from_xml.lon > w + 0.002) & (from_xml.lon < e - 0.002)
        & (from_xml.lat > s + 0.001) & (from_xml.lat < n - 0.001)
    )  # fmt: skip
    rows = np.flatnonzero(inner)[:: max(1, inner.sum() // 8)][:8]
    points = np.column_stack([from_xml.lon[rows], from_xml.lat[rows]])
    tx = roadnet.drive_time_matrix(from_xml, points, n_jobs=1).seconds
    tp = roadnet.drive_time_matrix(from_pbf, points, n_jobs=1).seconds
    assert np.isfinite(tx).mean() > 0.5
    np.testing.assert_array_equal(np.isfinite(tx), np.isfinite(tp))
    np.testing.assert_allclose(tx, tp, rtol=0, atol=1e-3)


def test_xml_one_way_rule_is_roadnets(tmp_path: Path, no_internet: list[str]) -> None:
    """Ways around a hub: each arc's direction follows the module's one-way rule."""
    leaves = {
        1: ('highway="motorway"', None),  # implied one-way
        2: ('highway="primary"', ("junction", "circular")),  # implied one-way
        3: ('highway="primary"', ("junction", "roundabout")),  # implied one-way
        4: ('highway="primary"', ("oneway", "-1")),  # against the node order
        5: ('highway="primary"', ("oneway", "Yes")),  # case does not matter
        6: ('highway="motorway"', ("oneway", "no")),  # explicitly two-way
        7: ('highway="primary"', ("oneway", "T")),  # unknown value: two-way
        8: ('highway="residential"', ("oneway", "reverse")),
        9: ('highway="footway"', None),  # not drivable
        10: ('highway="service"', None),  # not drivable
        11: ('highway="residential"', ("access", "private")),  # not drivable
    }
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    lines.append(' <node id="100" lat="42.5" lon="1.5"/>')
    for leaf in leaves:
        angle = 2 * np.pi * leaf / len(leaves)
        lat, lon = 42.5 + 0.001 * np.sin(angle), 1.5 + 0.001 * np.cos(angle)
        lines.append(f' <node id="{leaf}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for leaf, (highway, extra) in leaves.items():
        k, v = highway.split("=")
        tags = f"<tag k={k!r} v={v}/>".replace("'", '"')
        if extra:
            tags += f'<tag k="{extra[0]}" v="{extra[1]}"/>'
        lines.append(f' <way id="{1000 + leaf}"><nd ref="100"/><nd ref="{leaf}"/>{tags}</way>')
    lines.append("</osm>")
    path = tmp_path / "hub.osm"
    path.write_text("\n".join(lines))
    g = roadnet.graph_from_xml(path)
    arcs = {(u, v) for u, v, _ in _arcs(g)}
    hub = 100
    assert arcs == {
        (hub, 1), (hub, 2), (hub, 3), (4, hub), (hub, 5),
        (hub, 6), (6, hub), (hub, 7), (7, hub), (8, hub),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "not found"),
        (b"", "empty"),
        (b'<?xml version=\'1.0\'?>\n<osm version="0.6"><node id="1" lat=', "cannot read"),
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "cannot read"),
        (b"<?xml version='1.0'?>\n<osm version=\"0.6\"></osm>\n", "cannot read"),
        (
            b"<?xml version='1.0'?>\n<osm version=\"0.6\">"
            b'<node id="1" lat="42.5" lon="1.5"/><node id="2" lat="42.501" lon="1.5"/>'
            b'<way id="3"><nd ref="1"/><nd ref="2"/><tag k="building" v="yes"/></way></osm>\n',
            "no drivable road",
        ),
    ],
    ids=["missing", "empty", "truncated", "binary", "no-elements", "no-road"],
)
def test_bad_xml_raises_graph_source_error(
    tmp_path: Path, no_internet: list[str], content: bytes | None, match: str
) -> None:
    path = tmp_path / "bad.osm"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GraphSourceError, match=match):
        roadnet.graph_from_xml(path)


def test_xml_directory_raises_graph_source_error(tmp_path: Path) -> None:
    with pytest.raises(GraphSourceError, match="not a file"):
        roadnet.graph_from_xml(tmp_path)
