"""PBF readers: the streaming osmium reader and pyrosm build the same graph; clipping to the
study area; bad input gives a typed error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import roadnet
from roadnet import sources
from roadnet.areas import read_areas
from roadnet.exceptions import ClipError, GraphSourceError, UnknownReaderError
from roadnet.graph import CompiledGraph
from roadnet.matrix import drive_time_matrix
from tests.support import shared_file

EXTRACTS = ["andorra-latest.osm.pbf", "malta-latest.osm.pbf", "porto_portugal.osm.pbf"]
ARRAYS = [
    "node_ids",
    "lon",
    "lat",
    "x",
    "y",
    "indptr",
    "indices",
    "seconds",
    "metres",
    "csr_arc",
    "arc_u",
    "arc_v",
    "arc_seconds",
    "arc_metres",
    "arc_highway",
    "arc_osmid",
    "arc_twin",
    "geom_indptr",
    "geom_x",
    "geom_y",
    "geom_s",
    "geom_m",
    "scc",
]


def assert_same_graph(a: CompiledGraph, b: CompiledGraph) -> None:
    """Every array equal bit for bit, and the class names and counts equal."""
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        assert np.array_equal(x, y), name
    for key in ("highway_classes", "counts", "speed_stats", "crs", "bbox", "osm_timestamp"):
        assert a.meta[key] == b.meta[key], key


@pytest.mark.parametrize("name", EXTRACTS)
def test_osmium_and_pyrosm_readers_build_the_same_graph(name: str) -> None:
    pbf = shared_file("osm", name)
    g_osmium = roadnet.graph_from_pbf(pbf, reader="osmium")
    g_pyrosm = roadnet.graph_from_pbf(pbf, reader="pyrosm")
    assert g_osmium.meta["source"]["reader"] == "osmium"
    assert g_pyrosm.meta["source"]["reader"] == "pyrosm"
    assert g_osmium.n_nodes > 1000
    # one-ways survive: some arcs have no reverse arc
    assert (g_osmium.arc_twin < 0).any()
    assert_same_graph(g_osmium, g_pyrosm)


def test_auto_reader_picks_by_file_size(monkeypatch: pytest.MonkeyPatch) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    size = pbf.stat().st_size
    monkeypatch.setattr(sources, "AUTO_OSMIUM_BYTES", size + 1)
    assert sources.resolve_pbf_reader("auto", pbf) == "pyrosm"
    monkeypatch.setattr(sources, "AUTO_OSMIUM_BYTES", size)
    assert sources.resolve_pbf_reader("auto", pbf) == "osmium"
    assert sources.resolve_pbf_reader(" OSMIUM ", pbf) == "osmium"
    g = roadnet.graph_from_pbf(pbf, reader="auto")
    assert g.meta["source"]["reader"] == "osmium"


@pytest.mark.parametrize("reader", ["fast", "", None, 3])
def test_unknown_reader_is_a_typed_error(reader: object) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    with pytest.raises(UnknownReaderError, match=r"reader must be one of auto, osmium, pyrosm"):
        roadnet.graph_from_pbf(pbf, reader=reader)  # type: ignore[arg-type]
    assert issubclass(UnknownReaderError, ValueError)


def _damaged(tmp_path: Path, how: str) -> Path:
    data = bytearray(shared_file("osm", "malta-latest.osm.pbf").read_bytes())
    out = tmp_path / f"{how}.osm.pbf"
    if how == "truncated":
        out.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "corrupt":
        for i in range(len(data) // 2, len(data) // 2 + 400):
            data[i] ^= 0x5A
        out.write_bytes(bytes(data))
    else:
        out.write_bytes(bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8)))
    return out


@pytest.mark.parametrize("reader", ["osmium", "pyrosm"])
@pytest.mark.parametrize("how", ["truncated", "corrupt", "garbage"])
def test_damaged_pbf_is_a_graph_source_error(tmp_path: Path, reader: str, how: str) -> None:
    pbf = _damaged(tmp_path, how)
    with pytest.raises(GraphSourceError, match=r"cannot read .* as an OSM PBF file"):
        roadnet.graph_from_pbf(pbf, reader=reader)


def _footpaths_only(path: Path) -> Path:
    import osmium

    with osmium.SimpleWriter(str(path)) as writer:
        for i in range(4):
            writer.add_node(osmium.osm.mutable.Node(id=i + 1, location=(7.0 + i * 1e-3, 46.0)))
        writer.add_way(
            osmium.osm.mutable.Way(id=10, nodes=[1, 2, 3, 4], tags={"highway": "footway"})
        )
        writer.add_way(
            osmium.osm.mutable.Way(
                id=11, nodes=[1, 4], tags={"highway": "residential", "access": "private"}
            )
        )
    return path


@pytest.mark.parametrize("reader", ["osmium", "pyrosm"])
def test_pbf_without_drivable_road_is_a_graph_source_error(tmp_path: Path, reader: str) -> None:
    pbf = _footpaths_only(tmp_path / "paths.osm.pbf")
    with pytest.raises(GraphSourceError, match="holds no drivable road"):
        roadnet.graph_from_pbf(pbf, reader=reader)


@pytest.mark.parametrize("reader", ["osmium", "pyrosm"])
def test_clip_region_without_roads_is_a_graph_source_error(reader: str) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    sea = (-30.0, 30.0, -29.0, 31.0)  # the Atlantic, far from Andorra
    with pytest.raises(GraphSourceError, match="no drivable road inside the clip region"):
        roadnet.graph_from_pbf(pbf, reader=reader, clip=sea, clip_buffer_km=1)


@pytest.mark.parametrize("buffer", [-1, -0.001, 1e6, float("nan"), float("inf"), "far", None])
def test_bad_clip_buffer_is_a_clip_error(buffer: object) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    with pytest.raises(ClipError, match="clip buffer must be a number of km between 0 and"):
        roadnet.graph_from_pbf(pbf, clip=(1.5, 42.5, 1.6, 42.6), clip_buffer_km=buffer)  # type: ignore[arg-type]


@pytest.mark.parametrize("clip", [(1.6, 42.5, 1.5, 42.6), "Andorra", (1, 2, 3)])
def test_bad_clip_is_a_clip_error(clip: object) -> None:
    with pytest.raises(ClipError, match="clip"):
        sources.clip_region(clip)


def test_clip_enters_the_cache_identity_but_the_reader_does_not() -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    box = (1.5, 42.5, 1.6, 42.6)
    plain = sources.pbf_identity(pbf)
    assert plain == {"type": "pbf", "sha256": sources.file_sha256(pbf)}
    a = sources.pbf_identity(pbf, clip=box)
    b = sources.pbf_identity(pbf, clip=box, clip_buffer_km=5)
    assert a["clip"] != b["clip"]
    assert a == sources.pbf_identity(pbf, clip=box)
    assert "reader" not in str(a)


def _central_areas(file: str) -> tuple[object, np.ndarray]:
    """The quarter of a study's areas nearest its median point (a sub-region of the file)."""
    areas = read_areas(shared_file("areas", file))
    ll = areas.lonlat()
    c = np.median(ll, axis=0)
    d = np.hypot((ll[:, 0] - c[0]) * np.cos(np.radians(c[1])), ll[:, 1] - c[1])
    sel = np.argsort(d)[: len(d) // 4]
    return areas.gdf.iloc[sel], ll[sel]


@pytest.mark.parametrize(
    ("pbf_name", "areas_file"),
    [
        ("porto_portugal.osm.pbf", "porto_parishes.gpkg"),
        ("malta-latest.osm.pbf", "malta_councils.gpkg"),
    ],
)
def test_clipping_with_the_default_buffer_keeps_drive_times(
    pbf_name: str, areas_file: str, porto: CompiledGraph, malta: CompiledGraph
) -> None:
    full = porto if pbf_name.startswith("porto") else malta
    sub, ll = _central_areas(areas_file)
    pbf = shared_file("osm", pbf_name)
    clipped = roadnet.graph_from_pbf(pbf, reader="osmium", clip=sub)
    assert clipped.meta["source"]["clip"]["buffer_km"] == sources.DEFAULT_CLIP_BUFFER_KM
    assert_same_graph(clipped, roadnet.graph_from_pbf(pbf, reader="pyrosm", clip=sub))
    want = drive_time_matrix(full, ll).seconds
    got = drive_time_matrix(clipped, ll).seconds
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    # a tight clip really drops roads (and on Porto, changes some times: see docs/scaling.md)
    tight = roadnet.graph_from_pbf(pbf, reader="osmium", clip=sub, clip_buffer_km=0)
    assert tight.n_nodes < full.n_nodes


def test_readers_cut_a_bounding_box_the_same_way() -> None:
    """``bbox`` keeps the segments with at least one end in the box (pyrosm's rule)."""
    import json

    fixture = json.loads(
        (Path(__file__).parent / "data" / "andorra_la_vella_fixture.json").read_text()
    )
    box = tuple(fixture["bbox"])
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    g_osmium = roadnet.graph_from_pbf(pbf, bbox=box, reader="osmium")
    g_pyrosm = roadnet.graph_from_pbf(pbf, bbox=box, reader="pyrosm")
    assert 0 < g_osmium.n_nodes < roadnet.graph_from_pbf(pbf, reader="osmium").n_nodes
    assert_same_graph(g_osmium, g_pyrosm)


def test_unknown_node_index_is_named() -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    with pytest.raises(
        ValueError, match=r"node_index must be .two-pass. or one of .*sparse_mem_array"
    ):
        roadnet.graph_from_pbf(pbf, reader="osmium", node_index="bogus")
