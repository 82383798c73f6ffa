"""Output files: all or nothing, umask permissions, shapefile sidecars, no temp left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from roadnet.files import atomic_write
from territory.exceptions import OptionError, OutputError
from territory.outputs import OutputSet, check_output_path, to_jsonable


def _gdf(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": [f"a{i}" for i in range(n)], "territory": list(range(n))},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)],
        crs="EPSG:4326",
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_every_format_written_with_umask_permissions(tmp_path: Path, umask_022) -> None:
    with OutputSet() as outs:
        for ext in (".gpkg", ".geojson", ".fgb", ".parquet", ".csv", ".shp"):
            outs.write_areas(_gdf(), tmp_path / f"areas{ext}")
        outs.write_json(tmp_path / "r.json", {"x": float("inf"), "n": 1})
        outs.write_text(tmp_path / "t.txt", "hello")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert not [f for f in files if f.startswith(".")], files  # no temp left
    for p in tmp_path.iterdir():
        assert _mode(p) == 0o644, (p.name, oct(_mode(p)))
    assert {"areas.shp", "areas.shx", "areas.dbf", "areas.prj"} <= set(files)
    assert (tmp_path / "r.json").read_text().strip().endswith("}")
    assert '"x": null' in (tmp_path / "r.json").read_text()
    assert len(gpd.read_file(tmp_path / "areas.shp")) == 3


def test_atomic_write_respects_the_umask(tmp_path: Path, umask_022) -> None:
    path = atomic_write(tmp_path / "m.bin", lambda fh: fh.write(b"x"))
    assert _mode(path) == 0o644


def test_a_failing_output_leaves_every_previous_file_as_it_was(tmp_path: Path) -> None:
    with OutputSet() as outs:
        outs.write_areas(_gdf(2), tmp_path / "old.shp")
        outs.write_text(tmp_path / "summary.csv", "old summary\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(tmp: Path) -> None:
        tmp.write_bytes(b"half a map")
        raise OSError(28, "No space left on device")

    def command() -> None:
        with OutputSet() as outs:
            outs.write_areas(_gdf(5), tmp_path / "old.shp")
            outs.write_text(tmp_path / "summary.csv", "new summary\n")
            outs.stage(tmp_path / "map.html", boom)

    with pytest.raises(OutputError, match="disk is full"):
        command()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # byte-identical, no temp files, no map


def test_an_exception_in_the_command_discards_the_staged_outputs(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous\n")

    def command() -> None:
        with OutputSet() as outs:
            outs.write_text(target, "new\n")
            raise RuntimeError("the command failed after staging")

    with pytest.raises(RuntimeError):
        command()
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_output_paths_are_checked_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"\.gpkg"):
        check_output_path(tmp_path / "x.xyz", "--out", (".gpkg",))
    with pytest.raises(OptionError, match="is a folder"):
        check_output_path(tmp_path, "--out")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_path(blocker / "sub" / "x.gpkg", "--out")
    assert check_output_path(tmp_path / "new" / "x.gpkg", "--out", (".gpkg",)).name == "x.gpkg"


def test_json_values_are_plain_and_finite() -> None:
    import numpy as np

    out = to_jsonable({"a": np.float32(1.5), "b": np.array([1, 2]), "c": [np.nan, np.inf], 3: 4})
    assert out == {"a": 1.5, "b": [1, 2], "c": [None, None], "3": 4}


def test_shapefile_column_cuts_are_said_once(tmp_path: Path, caplog) -> None:
    gdf = gpd.GeoDataFrame(
        {"territory_before": [1, 2], "km_to_center": [0.5, 1.5], "id": ["a", "b"]},
        geometry=[shapely.Point(0, 0), shapely.Point(1, 1)],
        crs="EPSG:4326",
    )
    with caplog.at_level("WARNING", logger="territory.outputs"), OutputSet() as outs:
        outs.write_areas(gdf, tmp_path / "t.shp")  # warnings are errors in the tests
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "'territory_before' -> 'territory_'" in lines[0]
    assert "'km_to_center' -> 'km_to_cent'" in lines[0]
    back = gpd.read_file(tmp_path / "t.shp")
    assert list(back["territory_"]) == [1, 2]
