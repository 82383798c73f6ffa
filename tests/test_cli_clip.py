"""``graph build --reader --clip-bbox --polygon`` and ``--clip-to-areas`` on the commands with
areas: real runs on shared data; bad values give one line, exit 2 and no cache entry."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from roadnet.graph import load_graph
from roadnet.graph_cache import open_store
from roadnet.matrix_io import read_matrix
from territory.cli import app
from tests.support import shared_file

runner = CliRunner()
BOX = "1.50,42.49,1.54,42.52"  # Andorra la Vella


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _entries(cache_dir: Path) -> int:
    if not cache_dir.exists():
        return 0
    store = open_store(cache_dir)
    return 0 if store is None else len(store.ls())


def test_graph_build_clip_bbox_and_reader(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cache = tmp_path / "cache"
    full = tmp_path / "full.npz"
    clipped = tmp_path / "clipped.npz"
    res = _run("graph", "build", "--pbf", pbf, "--out", full, "--cache-dir", cache)
    assert res.exit_code == 0, res.output
    res = _run(
        "graph", "build", "--pbf", pbf, "--out", clipped, "--cache-dir", cache,
        "--reader", "pyrosm", "--clip-bbox", BOX, "--clip-buffer-km", "1",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    g_full, g_clip = load_graph(full), load_graph(clipped)
    assert 0 < g_clip.n_nodes < g_full.n_nodes
    assert g_clip.meta["source"]["clip"]["buffer_km"] == 1.0
    assert _entries(cache) == 2  # the clip is part of the cache key


def test_graph_build_polygon_equals_the_same_box(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    poly = tmp_path / "area.geojson"
    w, s, e, n = (float(v) for v in BOX.split(","))
    gpd.GeoDataFrame(geometry=[shapely.box(w, s, e, n)], crs="EPSG:4326").to_file(poly)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert _run("graph", "build", "--pbf", pbf, "--out", a, "--clip-bbox", BOX).exit_code == 0
    assert _run("graph", "build", "--pbf", pbf, "--out", b, "--polygon", poly).exit_code == 0
    assert np.array_equal(load_graph(a).node_ids, load_graph(b).node_ids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reader", "fast"], "reader must be one of auto, osmium, pyrosm, got 'fast'"),
        (["--clip-bbox", BOX, "--clip-buffer-km", "-1"], "clip buffer must be a number of km"),
        (["--clip-bbox", BOX, "--clip-buffer-km", "99999"], "clip buffer must be a number of km"),
        (["--clip-bbox", "1,2,3"], "--clip-bbox expects WEST,SOUTH,EAST,NORTH"),
        (["--clip-bbox", "-30,30,-29,31"], "holds no drivable road inside the clip region"),
    ],
)
def test_graph_build_bad_clip_or_reader(tmp_path: Path, args: list[str], message: str) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cache = tmp_path / "cache"
    res = _run("graph", "build", "--pbf", pbf, "--out", tmp_path / "g.npz", "--cache-dir", cache,
               *args)  # fmt: skip
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "g.npz").exists()
    assert _entries(cache) == 0


def test_matrix_clip_to_areas_keeps_the_drive_times(tmp_path: Path) -> None:
    areas = shared_file("areas", "malta_councils.gpkg")
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    # the councils of Gozo only: the default 20 km buffer keeps Gozo and the north of Malta
    gdf = gpd.read_file(areas)
    gozo = gdf[gdf.representative_point().to_crs(4326).y > 36.0]
    assert 5 < len(gozo) < len(gdf)
    sub = tmp_path / "gozo.gpkg"
    gozo.to_file(sub)
    plain, clipped = tmp_path / "plain.npz", tmp_path / "clipped.npz"
    res = _run("matrix", sub, "--pbf", pbf, "--out", plain, "--no-cache")
    assert res.exit_code == 0, res.output
    res = _run("matrix", sub, "--pbf", pbf, "--out", clipped, "--no-cache", "--clip-to-areas")
    assert res.exit_code == 0, res.output
    want, got = read_matrix(plain), read_matrix(clipped)
    assert np.isfinite(want["seconds"]).sum() > 0
    np.testing.assert_allclose(got["seconds"], want["seconds"], rtol=1e-5, atol=1e-3)


def test_clip_needs_a_pbf_source(tmp_path: Path) -> None:
    g = tmp_path / "g.npz"
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    assert _run("graph", "build", "--pbf", pbf, "--out", g).exit_code == 0
    areas = shared_file("areas", "malta_councils.gpkg")
    res = _run("matrix", areas, "--graph", g, "--out", tmp_path / "m.npz", "--clip-to-areas")
    assert res.exit_code == 2
    assert "clipping applies to a --pbf source only" in res.output
