"""Write a large, valid ``.osm.pbf`` by tiling a real extract K times side by side.

No country extract is available on this machine, so scale tests use real data repeated:
tile ``t`` is the source file with every node, way (and its node references) renumbered
``id + t * OFFSET`` and its coordinates shifted: tiles sit in a grid of ``ceil(sqrt(K))``
columns, each one source-width (plus a small gap) east of the previous one, rows one
source-height south. Nodes come before ways, each sorted by id, as OSM files are. Relations
are left out (the road graph does not read them). With ``--connect`` (default) neighbouring
tiles are joined by a few two-way ``primary`` roads between their closest road nodes, so the
road network is one piece, as a country's is.

Usage::

    python scripts/make_big_pbf.py ../shared/data/osm/malta-latest.osm.pbf 64 /tmp/malta_x64.osm.pbf
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import osmium

GAP_DEG = 0.02
BANDS = 3


def _read(path: Path) -> tuple[dict[str, np.ndarray], list, list]:
    """Node arrays (id, lon, lat), tagged nodes ``(index, tags)`` and ways ``(id, refs, tags)``."""
    ids: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    tagged: list[tuple[int, dict[str, str]]] = []
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
        if obj.is_node():
            if not obj.location.valid():
                continue
            if len(obj.tags):
                tagged.append((len(ids), dict(obj.tags)))
            ids.append(obj.id)
            lons.append(obj.location.lon)
            lats.append(obj.location.lat)
        else:
            ways.append((obj.id, [n.ref for n in obj.nodes], dict(obj.tags)))
    nodes = {"id": np.asarray(ids, np.int64), "lon": np.asarray(lons), "lat": np.asarray(lats)}
    return nodes, tagged, ways


def _road_nodes(nodes: dict[str, np.ndarray], ways: list) -> np.ndarray:
    """Positions (in ``nodes``) of nodes on drivable-looking ways (primary .. residential)."""
    classes = {"motorway", "trunk", "primary", "secondary", "tertiary", "unclassified"}
    refs = np.unique(
        np.asarray([r for _, rr, t in ways if t.get("highway") in classes for r in rr], np.int64)
    )
    pos = np.minimum(np.searchsorted(nodes["id"], refs), nodes["id"].size - 1)
    return np.unique(pos[nodes["id"][pos] == refs])


def _seam_pairs(lon: np.ndarray, lat: np.ndarray, road: np.ndarray, axis: str) -> list:
    """``(a, b)`` source node positions to join across a seam: ``a`` near the east (south)
    edge, ``b`` near the west (north) edge, one pair per band."""
    pairs = []
    rl, rt = lon[road], lat[road]
    along, across = (rt, rl) if axis == "ew" else (rl, rt)
    edges = np.linspace(along.min(), along.max(), BANDS + 1)
    for k in range(BANDS):
        band = (along >= edges[k]) & (along <= edges[k + 1])
        if not band.any():
            continue
        idx = np.flatnonzero(band)
        if axis == "ew":
            a, b = idx[np.argmax(across[idx])], idx[np.argmin(across[idx])]
        else:
            a, b = idx[np.argmin(across[idx])], idx[np.argmax(across[idx])]
        pairs.append((int(road[a]), int(road[b])))
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="a real .osm.pbf extract")
    ap.add_argument("k", type=int, help="number of tiles (>= 1)")
    ap.add_argument("out", type=Path, help="the .osm.pbf to write")
    ap.add_argument("--no-connect", action="store_true", help="leave the tiles unconnected")
    args = ap.parse_args(argv)
    if args.k < 1:
        ap.error(f"k must be >= 1, got {args.k}")
    t0 = time.perf_counter()
    nodes, tagged, ways = _read(args.source)
    order = np.argsort(nodes["id"], kind="stable")
    nodes = {k: v[order] for k, v in nodes.items()}
    remap = np.empty(order.size, np.int64)
    remap[order] = np.arange(order.size)
    tagged = sorted((int(remap[i]), t) for i, t in tagged)
    ways.sort(key=lambda w: w[0])
    lon, lat = nodes["lon"], nodes["lat"]
    width = float(lon.max() - lon.min()) + GAP_DEG
    height = float(lat.max() - lat.min()) + GAP_DEG
    cols = math.ceil(math.sqrt(args.k))
    max_id = max(int(nodes["id"].max()), max((w[0] for w in ways), default=0))
    offset = 1 << max(int(max_id).bit_length(), 20)
    shifts = [((t % cols) * width, -(t // cols) * height) for t in range(args.k)]

    connectors: list[tuple[int, int, int, int]] = []  # (tile a, node a, tile b, node b)
    if not args.no_connect and args.k > 1:
        road = _road_nodes(nodes, ways)
        ew = _seam_pairs(lon, lat, road, "ew")
        ns = _seam_pairs(lon, lat, road, "ns")
        for t in range(args.k):
            if t % cols + 1 < cols and t + 1 < args.k:
                connectors += [(t, a, t + 1, b) for a, b in ew]
            if t + cols < args.k:
                connectors += [(t, a, t + cols, b) for a, b in ns]

    part = args.out.with_name(args.out.name + ".part.osm.pbf")  # renamed when complete
    part.unlink(missing_ok=True)
    tag_at = dict(tagged)
    n_nodes = n_ways = 0
    with osmium.SimpleWriter(str(part)) as writer:
        for t, (dx, dy) in enumerate(shifts):
            base = t * offset
            for i in range(nodes["id"].size):
                writer.add_node(
                    osmium.osm.mutable.Node(
                        id=int(nodes["id"][i]) + base,
                        location=(float(lon[i]) + dx, float(lat[i]) + dy),
                        tags=tag_at.get(i, {}),
                        version=1,
                    )
                )
            n_nodes += nodes["id"].size
        next_way = args.k * offset
        for t in range(args.k):
            base = t * offset
            for wid, refs, tags in ways:
                writer.add_way(
                    osmium.osm.mutable.Way(
                        id=wid + base, nodes=[r + base for r in refs], tags=tags, version=1
                    )
                )
            n_ways += len(ways)
        for ta, a, tb, b in connectors:
            writer.add_way(
                osmium.osm.mutable.Way(
                    id=next_way,
                    nodes=[int(nodes["id"][a]) + ta * offset, int(nodes["id"][b]) + tb * offset],
                    tags={"highway": "primary", "name": "tile connector"},
                    version=1,
                )
            )
            next_way += 1
            n_ways += 1
    part.replace(args.out)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out}: {args.k} tiles of {args.source.name}, {n_nodes} nodes, {n_ways} ways "
        f"({len(connectors)} connectors), {size / 1e6:.1f} MB in {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
