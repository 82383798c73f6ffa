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
    res = _run("matrix", sub, "--pbf", pbf, "--out", plain, "--no-cache", "--no-clip-to-areas")
    assert res.exit_code == 0, res.output
    assert "clipped" not in res.output
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


def _andorra_points(path: Path, lons: list[float], lats: list[float]) -> Path:
    rows = "\n".join(f"p{i},{x},{y}" for i, (x, y) in enumerate(zip(lons, lats, strict=True)))
    path.write_text("id,lon,lat\n" + rows + "\n")
    return path


# points in Andorra la Vella and Escaldes (the subset is the first three)
_LONS = [1.5218, 1.5340, 1.5120, 1.5290, 1.5450]
_LATS = [42.5063, 42.5100, 42.5020, 42.4990, 42.5120]


def _graph_entries(cache: Path) -> list[str]:
    store = open_store(cache)
    assert store is not None
    return [i.key for i in store.ls("graph")]


def test_clip_is_on_by_default_for_a_pbf_source(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    pts = _andorra_points(tmp_path / "pts.csv", _LONS, _LATS)
    cache = tmp_path / "cache"
    res = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "a.npz", "--cache-dir", cache,
               "--clip-buffer-km", "2")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "clipped to the areas + 2 km" in res.output
    res = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "b.npz", "--cache-dir", cache,
               "--no-clip-to-areas")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "clipped" not in res.output
    store = open_store(cache)
    assert store is not None
    sizes = sorted(i.size_bytes for i in store.ls("graph"))
    assert len(sizes) == 2 and sizes[0] < sizes[1]  # the clipped graph is the smaller one
    a, b = read_matrix(tmp_path / "a.npz"), read_matrix(tmp_path / "b.npz")
    np.testing.assert_allclose(a["seconds"], b["seconds"], rtol=1e-5, atol=1e-3)


def test_a_subset_run_is_served_by_the_precomputed_graph_and_tables(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    every = _andorra_points(tmp_path / "all.csv", _LONS, _LATS)
    subset = _andorra_points(tmp_path / "sub.csv", _LONS[:3], _LATS[:3])
    cache = tmp_path / "cache"
    res = _run("precompute", every, "--pbf", pbf, "--cache-dir", cache, "--clip-buffer-km", "2")
    assert res.exit_code == 0, res.output
    res = _run("matrix", subset, "--pbf", pbf, "--out", tmp_path / "s.npz", "--cache-dir", cache,
               "--clip-buffer-km", "2")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "a cached graph clipped to a larger region" in res.output
    assert "assembled from cached matrices" in res.output or "from cache" in res.output
    assert len(_graph_entries(cache)) == 1  # no second graph was built
    # a wider buffer than the cached graph's is not covered: its own graph is built
    res = _run("matrix", subset, "--pbf", pbf, "--out", tmp_path / "w.npz", "--cache-dir", cache,
               "--clip-buffer-km", "5")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "clipped to the areas + 5 km" in res.output
    assert len(_graph_entries(cache)) == 2


def test_a_cached_graph_of_the_whole_file_serves_a_clipped_run(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    pts = _andorra_points(tmp_path / "pts.csv", _LONS, _LATS)
    cache = tmp_path / "cache"
    res = _run("graph", "build", "--pbf", pbf, "--out", tmp_path / "g.npz", "--cache-dir", cache)
    assert res.exit_code == 0, res.output
    res = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "m.npz", "--cache-dir", cache)
    assert res.exit_code == 0, res.output
    assert "the cached graph of the whole file" in res.output
    assert len(_graph_entries(cache)) == 1
    # --refresh rebuilds: the clip's own graph
    res = _run("matrix", pts, "--pbf", pbf, "--out", tmp_path / "r.npz", "--cache-dir", cache,
               "--refresh")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "clipped to the areas + 20 km" in res.output
    assert len(_graph_entries(cache)) == 2
