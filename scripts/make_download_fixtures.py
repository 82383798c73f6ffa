"""Write the recorded download fixtures of ``tests/test_sources_download.py`` into ``tests/data/``.

The download path (Nominatim geocoding + Overpass API, through osmnx) is tested against a local
replay server (``tests/overpass_replay.py``) that serves these files. This machine has no
internet, so the responses are not captured from the live services: they are **real
OpenStreetMap data** (© OpenStreetMap contributors, ODbL 1.0,
https://www.openstreetmap.org/copyright) read from the shared Geofabrik extract
``../shared/data/osm/andorra-latest.osm.pbf`` with pyrosm and serialised into the wire formats
the services answer with. The area is a small box in Andorra la Vella (:data:`BOX`).

Files written (``tests/data/``)
    ``andorra_la_vella_overpass.json``
        The Overpass API JSON answer (``out;`` body: ids, coordinates, node lists and tags, no
        metadata) to osmnx's ``"drive"`` query: every way that passes osmnx's own Overpass
        drive filter (``osmnx._overpass._get_network_filter("drive")``, evaluated here with
        Overpass' unanchored regular expressions) and has at least one node inside
        :data:`BOX`, with all the nodes of those ways (Overpass' ``>`` recursion), nodes first
        then ways, each sorted by id, as Overpass orders ``out``. osmnx asks for :data:`BOX`
        buffered by 500 m and truncates the answer to :data:`BOX` (keeping the first node
        outside); the ways of the buffer that do not reach into :data:`BOX` are left out of the
        recording, as they leave nothing after that truncation (barring a segment whose two
        ends both lie next to the box). The replay server cuts this answer to each query's
        polygon.
    ``andorra_la_vella_nominatim.json``
        A Nominatim ``/search?format=json&polygon_geojson=1`` answer for :data:`PLACE`: one
        result with the real relation id of the parish, whose ``geojson`` polygon and
        ``boundingbox`` are :data:`BOX` (not the real parish boundary, which would make the
        Overpass answer far larger).
    ``andorra_la_vella.osm``
        OSM XML (API 0.6 layout: ``<node>``, ``<way>``, ``<nd>``, ``<tag>``; no metadata) of
        every way with a ``highway`` tag (whatever its value: the drive filter is roadnet's
        job) that has a node inside :data:`BOX`, cut as ``pyrosm.OSM(pbf, bounding_box=BOX)``
        cuts it: pyrosm keeps a way's segments with at least one end inside the box (the first
        node outside included), not the whole way. So ``graph_from_xml`` on this file and
        ``graph_from_pbf(pbf, bbox=BOX)`` build the same network (see :func:`clip_way`).
    ``andorra_la_vella_fixture.json``
        What the tests need to know: the place name, the box, the source file and its SHA-256,
        element counts and the licence.

The output is deterministic (sorted ids, coordinates as OSM's 1e-7 degree integers, the
timestamp taken from the data, no run date) and small (about 0.4 MB in all). Run from the
repository root::

    python scripts/make_download_fixtures.py [--pbf PATH] [--out tests/data]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import shapely

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = ROOT.parent / "shared" / "data" / "osm" / "andorra-latest.osm.pbf"
DEFAULT_OUT = ROOT / "tests" / "data"

#: The place name the Nominatim fixture answers to.
PLACE = "Andorra la Vella, Andorra"
#: The OSM relation of the parish of Andorra la Vella (admin_level 7) in the extract.
PLACE_RELATION_ID = 2804753
#: (west, south, east, north): about 1.15 km x 0.8 km in the centre of Andorra la Vella. Chosen
#: so that no drivable way leaves the box and comes back into it (see :func:`clip_way`).
BOX = (1.5160, 42.5040, 1.5300, 42.5110)
STEM = "andorra_la_vella"
#: columns of pyrosm's way table that are not OSM tags.
_NOT_TAGS = {
    "id",
    "nodes",
    "tags",
    "timestamp",
    "version",
    "changeset",
    "visible",
    "osm_type",
    "geometry",
    "length",
}
OVERPASS_COPYRIGHT = (
    "The data included in this document is from www.openstreetmap.org. "
    "The data is made available under ODbL."
)


def _coord(value: float) -> float:
    """OSM stores coordinates as integers of 1e-7 degrees: the shortest float of that."""
    return round(float(value), 7)


def read_highways(pbf: Path) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], int]:
    """Every way with a ``highway`` tag and every node they use, from a PBF extract.

    Returns ``(ways, nodes, newest_timestamp)``: ways as ``{"id", "nodes", "tags"}`` dicts
    sorted by id; nodes by id as ``{"lon", "lat", "tags"}``.
    """
    import pyrosm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyrosm's pandas/shapely deprecation noise
        osm = pyrosm.OSM(str(pbf), keep_node_info=True)
        ways_df = osm.get_data_by_custom_criteria(
            custom_filter={"highway": True},
            filter_type="keep",
            osm_keys_to_keep=["highway"],
            keep_nodes=False,
            keep_relations=False,
        )
        net_nodes, _ = osm.get_network(network_type="all", nodes=True)
    # coordinates come from pyrosm's node table; a way's geometry is only a fallback for the
    # nodes of ways that pyrosm's "all" network leaves out, and only when it is a LineString
    # (pyrosm orients the rings of closed ways, so a Polygon's points are not in node order)
    known: dict[int, tuple[float, float, dict[str, str]]] = {}
    for nid, lon, lat, tags in zip(
        net_nodes["id"], net_nodes["lon"], net_nodes["lat"], net_nodes["tags"], strict=True
    ):
        ntags = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
        known[int(nid)] = (_coord(lon), _coord(lat), ntags)
    tag_cols = [c for c in ways_df.columns if c not in _NOT_TAGS]
    ways: list[dict[str, Any]] = []
    nodes: dict[int, dict[str, Any]] = {}
    for row in ways_df.sort_values("id").itertuples(index=False):
        rec = row._asdict()
        ids = [int(n) for n in rec["nodes"]]
        geom = rec["geometry"]
        line = shapely.get_coordinates(geom) if geom.geom_type == "LineString" else None
        if line is not None and len(line) != len(ids):
            line = None
        coords = []
        for i, nid in enumerate(ids):
            if nid in known:
                coords.append(known[nid])
            elif line is not None:
                coords.append((_coord(line[i][0]), _coord(line[i][1]), {}))
            else:
                break
        if len(coords) != len(ids):  # a way cut by the extract's border: never in our box
            continue
        tags = {c: str(rec[c]) for c in tag_cols if isinstance(rec[c], str) and rec[c]}
        if isinstance(rec["tags"], str) and rec["tags"]:
            tags.update({str(k): str(v) for k, v in json.loads(rec["tags"]).items()})
        ways.append({"id": int(rec["id"]), "nodes": ids, "tags": dict(sorted(tags.items()))})
        for nid, (lon, lat, ntags) in zip(ids, coords, strict=True):
            nodes[nid] = {"lon": lon, "lat": lat, "tags": ntags}
    newest = int(max(ways_df["timestamp"].max(), net_nodes["timestamp"].max()))
    return ways, nodes, newest


def _inside(nodes: dict[int, dict[str, Any]], box: tuple[float, ...]) -> Any:
    w, s, e, n = box

    def inside(nid: int) -> bool:
        nd = nodes[nid]
        return bool(w <= nd["lon"] <= e and s <= nd["lat"] <= n)

    return inside


def ways_touching(
    ways: list[dict[str, Any]], nodes: dict[int, dict[str, Any]], box: tuple[float, ...]
) -> list[dict[str, Any]]:
    """The ways with at least one node inside ``box`` (edges included), whole."""
    inside = _inside(nodes, box)
    return [way for way in ways if any(inside(nid) for nid in way["nodes"])]


def clip_way(way: dict[str, Any], inside: Any) -> tuple[dict[str, Any], bool]:
    """``way`` cut as a pyrosm bounding-box read cuts it, and whether that was exact.

    pyrosm keeps the segments of a way with at least one end inside the box. The clipped way
    runs from the first to the last such segment (a closed way is first rotated so that the
    kept segments do not wrap around its closing node). The cut is exact when the kept
    segments are consecutive; otherwise the way leaves the box and comes back, and the
    clipped way also holds the segments in between.
    """
    ids = list(way["nodes"])
    keep = [inside(a) or inside(b) for a, b in itertools.pairwise(ids)]
    if all(keep):
        return way, True
    if ids[0] == ids[-1] and keep[0] and keep[-1]:
        start = next(i for i in range(1, len(keep)) if keep[i] and not keep[i - 1])
        ring = ids[:-1]
        ids = ring[start:] + ring[:start] + [ring[start]]
        keep = keep[start:] + keep[:start]
    first = keep.index(True)
    last = len(keep) - 1 - keep[::-1].index(True)
    exact = all(keep[first : last + 1])
    return {**way, "nodes": ids[first : last + 2]}, exact


def overpass_drive_filter() -> list[tuple[str, str, bool]]:
    """osmnx's Overpass ``"drive"`` way filter as ``(key, regex, negated)`` clauses.

    ``["highway"]`` becomes ``("highway", "", False)`` (the key must be present).
    """
    from osmnx import _overpass

    text = _overpass._get_network_filter("drive")
    clauses = []
    for key, op, regex in re.findall(r'\["([^"]+)"(?:(!?~)"([^"]*)")?\]', text):
        clauses.append((key, regex, op == "!~"))
    if not clauses or text.count("[") != len(clauses):
        raise RuntimeError(f"cannot parse osmnx's drive filter {text!r}")
    return clauses


def passes(tags: dict[str, str], clauses: list[tuple[str, str, bool]]) -> bool:
    """Whether a way's tags pass Overpass filter clauses (regexes match unanchored)."""
    for key, regex, negated in clauses:
        if not regex:
            if key not in tags:
                return False
        elif negated:
            if key in tags and re.search(regex, tags[key]):
                return False
        elif key not in tags or not re.search(regex, tags[key]):
            return False
    return True


def overpass_response(
    ways: list[dict[str, Any]], nodes: dict[int, dict[str, Any]], timestamp: int
) -> dict[str, Any]:
    """Overpass API JSON for ``(way...;>;);out;``: nodes then ways, each sorted by id."""
    used = sorted({nid for way in ways for nid in way["nodes"]})
    elements: list[dict[str, Any]] = []
    for nid in used:
        nd = nodes[nid]
        el: dict[str, Any] = {"type": "node", "id": nid, "lat": nd["lat"], "lon": nd["lon"]}
        if nd["tags"]:
            el["tags"] = nd["tags"]
        elements.append(el)
    for way in sorted(ways, key=lambda w: w["id"]):
        el = {"type": "way", "id": way["id"], "nodes": way["nodes"]}
        if way["tags"]:
            el["tags"] = way["tags"]
        elements.append(el)
    stamp = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": 0.6,
        "generator": "Overpass API 0.7.62.1 084b4234",
        "osm3s": {"timestamp_osm_base": stamp, "copyright": OVERPASS_COPYRIGHT},
        "elements": elements,
    }


def nominatim_response(box: tuple[float, ...]) -> list[dict[str, Any]]:
    """Nominatim ``/search?format=json&polygon_geojson=1`` answer: one boundary relation."""
    w, s, e, n = box
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return [
        {
            "place_id": PLACE_RELATION_ID,  # Nominatim's own row id; any number does
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
            "osm_type": "relation",
            "osm_id": PLACE_RELATION_ID,
            "lat": f"{(s + n) / 2:.7f}",
            "lon": f"{(w + e) / 2:.7f}",
            "class": "boundary",
            "type": "administrative",
            "place_rank": 14,
            "importance": 0.5,
            "addresstype": "county",
            "name": "Andorra la Vella",
            "display_name": "Andorra la Vella, Andorra",
            # Nominatim's order: south, north, west, east, as strings
            "boundingbox": [f"{s:.7f}", f"{n:.7f}", f"{w:.7f}", f"{e:.7f}"],
            "geojson": {"type": "Polygon", "coordinates": [ring]},
        }
    ]


def osm_xml(
    ways: list[dict[str, Any]], nodes: dict[int, dict[str, Any]], box: tuple[float, ...]
) -> str:
    """OSM XML (API 0.6 layout, no metadata) of ``ways`` and all their nodes."""
    w, s, e, n = box
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<osm version="0.6" generator="roadnet make_download_fixtures.py" '
        'copyright="OpenStreetMap and contributors" '
        'license="http://opendatacommons.org/licenses/odbl/1-0/">',
        f' <bounds minlat="{s}" minlon="{w}" maxlat="{n}" maxlon="{e}"/>',
    ]

    def tag_lines(tags: dict[str, str]) -> list[str]:
        return [f"  <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()]

    for nid in sorted({nid for way in ways for nid in way["nodes"]}):
        nd = nodes[nid]
        head = f' <node id="{nid}" lat="{nd["lat"]!r}" lon="{nd["lon"]!r}"'
        if nd["tags"]:
            out += [head + ">", *tag_lines(nd["tags"]), " </node>"]
        else:
            out.append(head + "/>")
    for way in sorted(ways, key=lambda w: w["id"]):
        out.append(f' <way id="{way["id"]}">')
        out += [f'  <nd ref="{nid}"/>' for nid in way["nodes"]]
        out += tag_lines(way["tags"])
        out.append(" </way>")
    out.append("</osm>")
    return "\n".join(out) + "\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pbf", type=Path, default=DEFAULT_PBF)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.pbf.is_file():
        print(f"PBF extract not found: {args.pbf}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)

    ways, nodes, newest = read_highways(args.pbf)
    in_box = ways_touching(ways, nodes, BOX)
    clauses = overpass_drive_filter()
    drive = [way for way in in_box if passes(way["tags"], clauses)]
    inside = _inside(nodes, BOX)
    clipped = []
    for way in in_box:
        cut, exact = clip_way(way, inside)
        if not exact and passes(way["tags"], clauses):
            print(
                f"drivable way {way['id']} leaves the box and comes back: choose another "
                "BOX, or graph_from_xml and graph_from_pbf(bbox=BOX) will differ",
                file=sys.stderr,
            )
            return 1
        clipped.append(cut)

    files = {
        "overpass": args.out / f"{STEM}_overpass.json",
        "nominatim": args.out / f"{STEM}_nominatim.json",
        "osm_xml": args.out / f"{STEM}.osm",
    }
    overpass = overpass_response(drive, nodes, newest)
    files["overpass"].write_text(json.dumps(overpass, ensure_ascii=False, separators=(",", ":")))
    files["nominatim"].write_text(json.dumps(nominatim_response(BOX), ensure_ascii=False, indent=1))
    files["osm_xml"].write_text(osm_xml(clipped, nodes, BOX), encoding="utf-8")
    meta = {
        "place": PLACE,
        "bbox": list(BOX),
        "source": {
            "file": args.pbf.name,
            "sha256": _sha256(args.pbf),
            "osm_timestamp": overpass["osm3s"]["timestamp_osm_base"],
            "licence": "ODbL 1.0, (c) OpenStreetMap contributors",
        },
        "overpass": {
            "file": files["overpass"].name,
            "ways": len(drive),
            "nodes": len({nid for way in drive for nid in way["nodes"]}),
        },
        "osm_xml": {
            "file": files["osm_xml"].name,
            "ways": len(clipped),
            "nodes": len({nid for way in clipped for nid in way["nodes"]}),
        },
        "nominatim": {"file": files["nominatim"].name},
    }
    path = args.out / f"{STEM}_fixture.json"
    path.write_text(json.dumps(meta, indent=1) + "\n")
    total = 0
    for p in [*files.values(), path]:
        size = p.stat().st_size
        total += size
        print(
            f"{p.relative_to(args.out.parent) if p.is_relative_to(args.out.parent) else p}: "
            f"{size / 1000:.1f} kB"
        )
    print(f"total {total / 1000:.1f} kB; overpass {meta['overpass']}, xml {meta['osm_xml']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
