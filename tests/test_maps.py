"""Territory maps: colours, the static PNG and the self-contained HTML map (drawn by Chromium).

The HTML map is opened in headless Chromium with every host name unresolvable
(``--host-resolver-rules``), so the checks prove that the territories draw without network
access. Those tests skip when ``chromium`` is not installed (Debian: ``apt-get install
chromium``).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from PIL import Image

from roadnet.exceptions import AreaDataError, CRSError
from territory import maps
from territory.maps import territory_colors, territory_map_html, territory_map_png

AREAS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "areas"
CHROMIUM = shutil.which("chromium")
FLAG = maps._FLAG_COLOR
HEX = re.compile(r"^#[0-9a-f]{6}$")


# --------------------------------------------------------------------------- data


def _grid(nx: int, ny: int, size: float = 1000.0, crs: str = "EPSG:3763") -> gpd.GeoDataFrame:
    """``nx * ny`` square cells (row-major from the lower left) in a projected CRS."""
    cells = [
        shapely.box(i * size, j * size, (i + 1) * size, (j + 1) * size)
        for j in range(ny)
        for i in range(nx)
    ]
    gdf = gpd.GeoDataFrame(
        {
            "zip": [f"{k:04d}" for k in range(nx * ny)],
            "drive_min": np.linspace(3.0, 40.0, nx * ny).round(1),
            "population": np.arange(nx * ny) * 100 + 50,
        },
        geometry=cells,
        crs=crs,
    )
    gdf["ix"] = [k % nx for k in range(nx * ny)]
    gdf["iy"] = [k // nx for k in range(nx * ny)]
    return gdf


@pytest.fixture
def tiny() -> gpd.GeoDataFrame:
    """6 x 4 cells in 4 territories (2 x 2 blocks of 3 x 2 cells), 2 cells flagged."""
    gdf = _grid(6, 4)
    gdf["territory"] = [
        f"T{1 + (ix // 3) + 2 * (iy // 2)}" for ix, iy in zip(gdf.ix, gdf.iy, strict=True)
    ]
    gdf["flagged"] = False
    gdf.loc[[0, 23], "flagged"] = True
    return gdf.drop(columns=["ix", "iy"])


def _centers(gdf: gpd.GeoDataFrame, column: str = "territory") -> gpd.GeoDataFrame:
    """One center per territory: the area whose point lies closest to the territory's mean."""
    points = gdf.to_crs(3763).geometry.representative_point()
    rows = []
    for territory, idx in gdf.groupby(column).groups.items():
        pts = points.loc[idx]
        mean = shapely.Point(pts.x.mean(), pts.y.mean())
        best = pts.distance(mean).idxmin()
        rows.append({column: territory, "name": f"depot {territory}", "geometry": pts[best]})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=3763).to_crs(gdf.crs)


@pytest.fixture(scope="module")
def porto() -> gpd.GeoDataFrame:
    """The 170 parishes of Porto district in 12 synthetic territories, 17 flagged.

    Territories: three bands by latitude (tertiles of the parishes' points), each cut in four by
    longitude quartiles -- a simple stand-in for a k-means of the points. The 17 parishes
    farthest from the district's centre are flagged (as "over the drive limit").
    """
    path = AREAS_DIR / "porto_parishes.gpkg"
    if not path.is_file():
        pytest.skip(f"shared data not available: {path}")
    gdf = gpd.read_file(path)
    pts = gdf.to_crs(3763).geometry.representative_point()
    x, y = pts.x.to_numpy(), pts.y.to_numpy()
    band = pd.qcut(y, 3, labels=False)
    territory = np.empty(len(gdf), dtype=object)
    for b in range(3):
        in_band = band == b
        column = pd.qcut(x[in_band], 4, labels=False)
        territory[in_band] = [f"P{4 * b + c + 1:02d}" for c in column]
    gdf["territory"] = territory
    gdf["drive_min"] = np.round(np.hypot(x - x.mean(), y - y.mean()) / 700.0, 1)
    gdf["flagged"] = gdf["drive_min"].rank(method="first", ascending=False) <= 17
    return gdf


def _neighbour_pairs(gdf: gpd.GeoDataFrame, column: str, tolerance: float) -> set[tuple]:
    """Pairs of territories whose areas come within ``tolerance`` of each other."""
    gdf = gdf.set_geometry(shapely.make_valid(gdf.geometry.values))  # real data: 1 bad parish
    dissolved = gdf.dissolve(column)
    geoms = dissolved.geometry.values
    labels = list(dissolved.index)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tolerance)
    return {(labels[a], labels[b]) for a, b in zip(left, right, strict=True) if a < b}


# --------------------------------------------------------------------------- colours


def test_colors_neighbours_differ_and_are_distinct(tiny: gpd.GeoDataFrame) -> None:
    colors = territory_colors(tiny, "territory")
    assert list(colors) == ["T1", "T2", "T3", "T4"]
    assert all(HEX.match(c) for c in colors.values())
    # 4 blocks meeting in one corner: every pair touches, so all four must differ
    assert len(set(colors.values())) == 4


def test_colors_are_deterministic(tiny: gpd.GeoDataFrame) -> None:
    first = territory_colors(tiny, "territory")
    assert territory_colors(tiny, "territory") == first
    shuffled = tiny.sample(frac=1.0, random_state=np.random.RandomState(3))
    assert territory_colors(shuffled, "territory") == first
    assert territory_colors(tiny.to_crs(4326), "territory") == first


def test_colors_many_territories_never_shared_by_neighbours() -> None:
    # 12 x 12 cells, one territory each (144 > the palette): colours are reused, never by
    # cells touching along an edge or a corner
    gdf = _grid(12, 12)
    gdf["territory"] = np.arange(len(gdf))
    colors = territory_colors(gdf, "territory")
    assert len(colors) == 144
    for a, b in _neighbour_pairs(gdf, "territory", tolerance=1.0):
        assert colors[a] != colors[b], (a, b)
    assert len(set(colors.values())) <= len(maps._PALETTE)
    assert territory_colors(gdf, "territory") == colors


def test_colors_point_layer() -> None:
    gdf = _grid(4, 4)
    gdf = gdf.set_geometry(gdf.geometry.centroid)
    gdf["territory"] = np.where(gdf.ix < 2, "west", "east")
    colors = territory_colors(gdf, "territory")
    assert set(colors) == {"east", "west"}
    assert colors["east"] != colors["west"]


def test_colors_porto_neighbours_differ(porto: gpd.GeoDataFrame) -> None:
    colors = territory_colors(porto, "territory")
    assert len(colors) == 12
    assert len(set(colors.values())) == 12  # up to 16 territories all get their own colour
    pairs = _neighbour_pairs(porto, "territory", tolerance=1e-4)
    assert len(pairs) >= 15
    for a, b in pairs:
        assert colors[a] != colors[b], (a, b)


def test_bad_inputs_raise_area_data_error(tiny: gpd.GeoDataFrame, tmp_path: Path) -> None:
    with pytest.raises(AreaDataError, match="'district' is not a column"):
        territory_colors(tiny, "district")
    with pytest.raises(CRSError, match="no CRS"):
        territory_colors(tiny.set_crs(None, allow_override=True), "territory")
    with pytest.raises(AreaDataError, match="GeoDataFrame"):
        territory_colors(pd.DataFrame(tiny.drop(columns="geometry")), "territory")
    with pytest.raises(AreaDataError, match=r"\['nope'\] are not columns"):
        territory_map_html(tiny, tmp_path / "x.html", tooltip_columns=["zip", "nope"])
    with pytest.raises(AreaDataError, match="must hold booleans"):
        territory_map_png(tiny.assign(flagged="yes"), tmp_path / "x.png")
    with pytest.raises(AreaDataError, match="centers"):
        territory_map_html(
            tiny, tmp_path / "x.html", centers=_centers(tiny).drop(columns="territory")
        )
    assert not (tmp_path / "x.html").exists()


# --------------------------------------------------------------------------- PNG


def _pixel_counts(path: Path) -> dict[str, int]:
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
    packed = (rgb[:, 0].astype(np.int64) << 16) | (rgb[:, 1].astype(np.int64) << 8) | rgb[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    return {f"#{int(v):06x}": int(c) for v, c in zip(values, counts, strict=True)}


def _red_pixels(path: Path) -> int:
    """Pixels of the flagged outline's red, anti-aliasing included."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())


def test_png_tiny(tiny: gpd.GeoDataFrame, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    figures_before = plt.get_fignums()
    out = territory_map_png(
        tiny, tmp_path / "tiny.png", centers=_centers(tiny), title="Four territories", dpi=80
    )
    assert out == tmp_path / "tiny.png"
    assert plt.get_fignums() == figures_before  # no pyplot figure left behind
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (800, 640)
    counts = _pixel_counts(out)
    colors = territory_colors(tiny, "territory")
    for territory, color in colors.items():
        assert counts.get(color, 0) > 2000, (territory, color)  # solid fills of each territory
    assert _red_pixels(out) > 500  # the flagged outlines and hatches


def test_png_missing_flag_column_and_unassigned(tiny: gpd.GeoDataFrame, tmp_path: Path) -> None:
    gdf = tiny.drop(columns="flagged")
    gdf.loc[5, "territory"] = None
    out = territory_map_png(gdf, tmp_path / "t.png", dpi=60)
    counts = _pixel_counts(out)
    assert _red_pixels(out) == 0
    assert counts.get(maps._UNASSIGNED_COLOR, 0) > 300


def test_png_porto(porto: gpd.GeoDataFrame, tmp_path: Path) -> None:
    out = territory_map_png(
        porto,
        tmp_path / "porto.png",
        centers=_centers(porto),
        title="Porto district: 12 territories",
    )
    assert out.stat().st_size > 100_000
    with Image.open(out) as image:
        assert image.size == (1500, 1200)
    counts = _pixel_counts(out)
    colors = territory_colors(porto, "territory")
    present = [c for c in colors.values() if counts.get(c, 0) > 1000]
    assert len(present) == 12
    assert _red_pixels(out) > 2000


# --------------------------------------------------------------------------- HTML


def test_html_is_self_contained(tiny: gpd.GeoDataFrame, tmp_path: Path) -> None:
    pytest.importorskip("xstatic.pkg.leaflet", reason="xstatic-leaflet ships Leaflet to inline")
    out = territory_map_html(tiny, tmp_path / "tiny.html", centers=_centers(tiny), title="Tiny")
    text = out.read_text(encoding="utf-8")
    assert "Leaflet 1.9.3" in text  # the library itself is in the page
    assert re.search(r"<(script|link)[^>]+(src|href)=\"?https?:", text) is None
    assert "url(images/" not in text  # CSS images are data URIs
    assert "tile.openstreetmap.org" in text  # tiles stay for users who are online
    for name in ("Areas", "Territory borders", "Flagged areas (2)", "Centers", "roadnet-legend"):
        assert name in text
    assert "center of territory T1" in text and "depot T1" in text
    no_tiles = territory_map_html(tiny, tmp_path / "no_tiles.html", tiles=None)
    assert "openstreetmap" not in no_tiles.read_text(encoding="utf-8")


def test_html_without_xstatic_links_the_cdn(
    tiny: gpd.GeoDataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(maps, "_leaflet_assets", lambda: None)
    with caplog.at_level(logging.WARNING, logger="territory.maps"):
        out = territory_map_html(tiny, tmp_path / "cdn.html")
    assert "xstatic-leaflet is not installed" in caplog.text
    assert re.search(r"<script src=\"https://[^\"]+/leaflet\.js\"", out.read_text("utf-8"))


def test_html_summary_legend_and_no_flag_column(tiny: gpd.GeoDataFrame, tmp_path: Path) -> None:
    summary = (
        tiny.groupby("territory")
        .agg(areas=("zip", "size"), max_drive=("drive_min", "max"))
        .assign(deviation=[0.05, -0.02, 0.0, -0.03])
    )
    out = territory_map_html(
        tiny.drop(columns="flagged"), tmp_path / "t.html", summary=summary, tiles=None
    )
    text = out.read_text(encoding="utf-8")
    assert "Flagged areas" not in text
    legend = text[text.index("id='roadnet-legend'") :]
    assert "<th>max_drive</th>" in legend and "<th>deviation</th>" in legend
    assert "<td class='num'>6</td>" in legend  # 6 areas per territory
    assert "<td class='num'>0.05</td>" in legend


def test_html_large_input_is_simplified(tmp_path: Path) -> None:
    # 2,000 Voronoi cells with wiggly, densely sampled edges (~170,000 vertices)
    rng = np.random.default_rng(7)
    box = shapely.box(-8.9, 40.8, -7.9, 41.6)
    seeds = shapely.multipoints(
        np.column_stack([rng.uniform(-8.9, -7.9, 2000), rng.uniform(40.8, 41.6, 2000)])
    )
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds)), box)
    cells = shapely.segmentize(cells, 0.001)

    def wiggle(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        dx = 6e-4 * (np.sin(900 * y) + 0.4 * np.sin(3100 * y + 700 * x))
        dy = 6e-4 * (np.sin(800 * x) + 0.4 * np.sin(2900 * x - 500 * y))
        return np.column_stack([x + dx, y + dy])

    gdf = gpd.GeoDataFrame(
        {"zip": [f"{k:05d}" for k in range(len(cells))], "pop": rng.integers(100, 9000, 2000)},
        geometry=shapely.transform(cells, wiggle),
        crs=4326,
    )
    pts = gdf.geometry.representative_point()
    gdf["territory"] = (
        np.floor((pts.x + 8.9) / 0.25) * 10 + np.floor((pts.y - 40.8) / 0.2)
    ).astype(int)
    gdf["flagged"] = rng.random(len(gdf)) < 0.02
    assert int(shapely.get_num_coordinates(gdf.geometry.values).sum()) > 150_000
    out = territory_map_html(gdf, tmp_path / "large.html")
    size = out.stat().st_size
    assert 200_000 < size < 5_000_000
    raw = territory_map_html(gdf, tmp_path / "raw.html", simplify_tolerance=0)
    assert raw.stat().st_size > 2 * size


# --------------------------------------------------------------------------- in Chromium


def _chromium(page: Path, profile: Path, *args: str) -> str:
    """Run headless Chromium on ``page`` with all host names unresolvable; its stdout."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # no network: a page that needs anything from a web server does not draw
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _overlay_paths(dom: str) -> list[dict[str, str]]:
    """Attributes of the SVG paths Leaflet drew in its overlay pane."""
    start = dom.index('class="leaflet-pane leaflet-overlay-pane"')
    pane = dom[start : dom.index("</svg>", start)]
    return [
        dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) for tag in re.findall(r"<path\b[^>]*>", pane)
    ]


def _render(
    gdf: gpd.GeoDataFrame, tmp_path: Path, name: str, **kwargs
) -> tuple[list[dict[str, str]], str, Path]:
    pytest.importorskip("xstatic.pkg.leaflet", reason="xstatic-leaflet ships Leaflet to inline")
    page = territory_map_html(gdf, tmp_path / f"{name}.html", **kwargs)
    dom = _chromium(page, tmp_path / f"{name}-profile-dom", "--dump-dom")
    shot = tmp_path / f"{name}.png"
    _chromium(
        page,
        tmp_path / f"{name}-profile-shot",
        f"--screenshot={shot}",
        "--window-size=1200,900",
        "--hide-scrollbars",
    )
    return _overlay_paths(dom), dom, shot


def _blended(color: str, opacity: float, background: str = "#dddddd") -> np.ndarray:
    """The RGB a fill of ``color`` at ``opacity`` shows over Leaflet's grey background."""
    c = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    b = np.array([int(background[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return opacity * c + (1 - opacity) * b


def _screenshot_shows(shot: Path, colors: dict, min_pixels: int) -> list:
    """The territories whose (blended) fill colour covers ``min_pixels`` of the screenshot."""
    with Image.open(shot) as image:
        assert image.size == (1200, 900)
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(float)
    assert rgb.std(axis=0).max() > 20  # not blank
    shown = []
    for territory, color in colors.items():
        near = np.abs(rgb - _blended(color, 0.65)).max(axis=1) <= 4
        if int(near.sum()) >= min_pixels:
            shown.append(territory)
    return shown


def test_chromium_draws_tiny_offline(tiny: gpd.GeoDataFrame, tmp_path: Path) -> None:
    colors = territory_colors(tiny, "territory")
    paths, dom, shot = _render(tiny, tmp_path, "tiny", centers=_centers(tiny), title="Tiny")
    interactive = [p for p in paths if p.get("class") == "leaflet-interactive"]
    area_fills = [p["fill"] for p in interactive if p.get("fill-opacity") == "0.65"]
    assert len(area_fills) == len(tiny)
    assert set(area_fills) == set(colors.values())
    assert sum(p.get("stroke") == FLAG for p in paths) == 2
    borders = [
        p for p in paths if p.get("stroke") == maps._BORDER_COLOR and p.get("fill") == "none"
    ]
    assert len(borders) == 4
    assert 'id="roadnet-legend"' in dom and 'id="roadnet-title"' in dom
    assert sorted(_screenshot_shows(shot, colors, 2000)) == sorted(colors)


def test_chromium_draws_points_offline(tmp_path: Path) -> None:
    gdf = _grid(5, 4)
    gdf = gdf.set_geometry(gdf.geometry.centroid)
    gdf["territory"] = np.where(gdf.ix < 2, "A", "B")
    gdf["flagged"] = gdf.index == 7
    colors = territory_colors(gdf, "territory")
    paths, _, _ = _render(gdf, tmp_path, "points", tiles=None)
    circles = [p for p in paths if p.get("class") == "leaflet-interactive"]
    assert len(circles) == len(gdf) + 1  # one circle per point, one red ring
    filled = [p["fill"] for p in circles if p.get("fill-opacity") == "0.9"]
    assert sorted(filled) == sorted(colors["A" if ix < 2 else "B"] for ix in gdf.ix)
    assert sum(p.get("stroke") == FLAG for p in circles) == 1


def test_chromium_draws_porto_offline(porto: gpd.GeoDataFrame, tmp_path: Path) -> None:
    colors = territory_colors(porto, "territory")
    summary = porto.groupby("territory").agg(
        parishes=("name", "size"), mean_drive=("drive_min", "mean")
    )
    paths, dom, shot = _render(
        porto,
        tmp_path,
        "porto",
        centers=_centers(porto),
        summary=summary,
        title="Porto district: 12 territories",
    )
    interactive = [p for p in paths if p.get("class") == "leaflet-interactive"]
    area_paths = [p for p in interactive if p.get("fill-opacity") == "0.65"]
    # a multi-part parish is one path; every parish is drawn, in its territory's colour
    assert len(area_paths) == len(porto)
    assert {p["fill"] for p in area_paths} == set(colors.values())
    assert sum(p.get("stroke") == FLAG for p in paths) == int(porto["flagged"].sum())
    centers = [
        p for p in interactive if p.get("fill-opacity") == "1" and p.get("stroke") == "#000000"
    ]
    assert len(centers) == 12
    assert dom.count('<tr><td><span class="sw"') == 12  # legend rows
    shown = _screenshot_shows(shot, colors, 1500)
    assert len(shown) >= 10, shown
