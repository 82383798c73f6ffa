"""Maps of territories: an interactive, self-contained HTML map and a static PNG for reports.

Both maps colour the basic areas by territory with the colours of :func:`territory_colors`
(neighbouring territories never share a colour), draw the borders of the territories (the areas
dissolved per territory) with thicker lines, the territory centers as markers and the areas that
validation flagged (unreachable, over the drive limit, far snap, detour outlier...) with a red
dashed outline (hatched in the PNG).

- :func:`territory_map_html` writes a Leaflet map (through folium) with one layer per element, a
  layer switcher, a legend (with the figures of a ``summary`` table when one is given) and
  tooltips. The file is **self-contained**: Leaflet's JavaScript and CSS are inlined from the
  ``xstatic-leaflet`` package (the same Leaflet 1.9.3 that folium links to), folium's other
  default assets (jQuery, Bootstrap, Font Awesome), which these maps do not use, are left out,
  and the data is embedded. It opens and draws the territories without network access; only the
  optional background tiles (``tiles=``) come from the web.
- :func:`territory_map_png` draws the same map with matplotlib (a private
  :class:`matplotlib.figure.Figure` on the Agg canvas: no pyplot state is touched).

Large inputs
------------
Boundary files of ZIP codes or parishes carry far more vertices than a screen can show, and the
HTML map embeds every vertex as GeoJSON text (about 25 bytes each). So the HTML map simplifies
the geometries (``simplify_tolerance``): by default with a tolerance of 1/5000 of the diagonal
of the data's bounding box (about 20 m for a 100 km region), doubled until the areas keep at
most 100,000 vertices, and writes coordinates with 4 to 6 decimals (a quarter of the tolerance).
A valid polygon coverage (areas that do not overlap and share their edge vertices, as census
files do) is simplified as a coverage (:func:`shapely.coverage_simplify`), so neighbours keep a
common edge; other inputs are simplified polygon by polygon (gaps and overlaps of the order of
the tolerance may show when zoomed in). 2,000 ZIP-code-like polygons with 170,000 vertices make
a file of about 3 MB; 282 Connecticut ZCTAs (172,000 vertices) about 1 MB instead of 7. The PNG
simplifies below half a pixel.

Examples
--------
>>> from territory.maps import territory_map_html, territory_map_png
>>> territory_map_html(areas, "territories.html", centers=centers)  # doctest: +SKIP
>>> territory_map_png(areas, "territories.png", title="12 territories")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import dataclasses
import html
import logging
import math
import os
import re
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from roadnet.areas import _ID_NAMES  # id-like column names, as the areas reader detects
from roadnet.exceptions import AreaDataError, CRSError

__all__ = ["territory_colors", "territory_map_html", "territory_map_png"]

log = logging.getLogger(__name__)

#: qualitative palette: matplotlib's tab20 without its reds (kept for flagged areas) and greys
#: (kept for unassigned areas and borders), strong colours first, then their light variants
_PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
)
#: used only when a territory has more differently coloured neighbours than _PALETTE has colours
#: (tab20b and tab20c without their greys)
_EXTRA_PALETTE: tuple[str, ...] = (
    "#393b79",
    "#5254a3",
    "#6b6ecf",
    "#9c9ede",
    "#637939",
    "#8ca252",
    "#b5cf6b",
    "#cedb9c",
    "#8c6d31",
    "#bd9e39",
    "#e7ba52",
    "#e7cb94",
    "#843c39",
    "#ad494a",
    "#d6616b",
    "#e7969c",
    "#7b4173",
    "#a55194",
    "#ce6dbd",
    "#de9ed6",
    "#3182bd",
    "#6baed6",
    "#9ecae1",
    "#c6dbef",
    "#e6550d",
    "#fd8d3c",
    "#fdae6b",
    "#fdd0a2",
    "#31a354",
    "#74c476",
    "#a1d99b",
    "#c7e9c0",
    "#756bb1",
    "#9e9ac8",
    "#bcbddc",
    "#dadaeb",
)
_UNASSIGNED_COLOR = "#bdbdbd"
_FLAG_COLOR = "#e00000"
_ROAD_COLOR = "#505050"
"""Colour of the road network drawn under the territories."""
_BORDER_COLOR = "#222222"

#: two territories are neighbours when their dissolved geometries lie closer than this share of
#: the diagonal of the data's bounding box (absorbs the gaps and slivers of real boundary files)
_NEIGHBOUR_TOLERANCE = 1e-3
#: gaps between the areas of a territory narrower than twice this share of the bounding-box
#: diagonal are sealed in the dissolved territory (real boundary files do not quite match up)
_CLOSING_SHARE = 1e-4
#: default simplification tolerance of the HTML map, as a share of the bounding-box diagonal
_SIMPLIFY_SHARE = 2e-4
#: the default simplification coarsens until the areas of the HTML map have at most this many
#: vertices (about 2.5 MB of GeoJSON)
_MAX_HTML_VERTICES = 100_000
#: numeric columns shown by default in the HTML tooltips
_MAX_TOOLTIP_NUMERIC = 8
#: simplification tolerance of the PNG, as a share of the bounding-box diagonal
_PNG_SIMPLIFY_SHARE = 2.5e-4
#: the PNG labels the territories when there are at most this many
_MAX_PNG_LABELS = 40
#: columns of the ``summary`` table shown in the legend
_MAX_SUMMARY_COLUMNS = 4


# --------------------------------------------------------------------------- inputs


def _check_areas(
    areas: Any, territory_column: str, flagged_column: str | None
) -> tuple[gpd.GeoDataFrame, str | None]:
    """A clean copy of ``areas`` (RangeIndex, no empty geometry) and the flagged column to use."""
    if not isinstance(areas, gpd.GeoDataFrame):
        raise AreaDataError(
            f"areas: expected a GeoDataFrame, got {type(areas).__name__}; read the areas with "
            "geopandas.read_file or roadnet.read_areas(...).gdf"
        )
    if territory_column not in areas.columns:
        raise AreaDataError(
            f"territory_column={territory_column!r} is not a column of areas; valid columns: "
            f"{[c for c in areas.columns if c != areas.geometry.name]}"
        )
    if areas.crs is None:
        raise CRSError(
            "areas have no CRS; set it with areas.set_crs(...) (EPSG:4326 for lon/lat degrees)"
        )
    geoms = areas.geometry.values
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not usable.any():
        raise AreaDataError(f"areas: no area with a geometry among {len(areas)} rows")
    if not usable.all():
        log.warning("areas: %d rows without geometry are not drawn", int((~usable).sum()))
    out = areas.loc[usable].reset_index(drop=True)
    invalid = ~shapely.is_valid(out.geometry.values)
    if invalid.any():
        # drawing only: repair self-intersections so that dissolving the areas cannot fail
        log.debug("areas: repairing %d invalid geometries for drawing", int(invalid.sum()))
        fixed = out.geometry.values.copy()
        fixed[invalid] = shapely.make_valid(
            fixed[invalid], method="structure", keep_collapsed=False
        )
        out = out.set_geometry(gpd.GeoSeries(fixed, index=out.index, crs=out.crs))
    if flagged_column is not None and flagged_column not in out.columns:
        log.debug("flagged_column %r absent: no area highlighted", flagged_column)
        flagged_column = None
    if flagged_column is not None:
        flags = out[flagged_column]
        if not (pd.api.types.is_bool_dtype(flags) or pd.api.types.is_numeric_dtype(flags)):
            raise AreaDataError(
                f"flagged_column={flagged_column!r} must hold booleans (True = flagged), got "
                f"dtype {flags.dtype}"
            )
        out[flagged_column] = flags.fillna(False).astype(bool)
    return out, flagged_column


def _check_centers(centers: Any, territory_column: str) -> gpd.GeoDataFrame:
    if not isinstance(centers, gpd.GeoDataFrame):
        raise AreaDataError(
            f"centers: expected a GeoDataFrame of points, got {type(centers).__name__}"
        )
    if territory_column not in centers.columns:
        raise AreaDataError(
            f"centers: territory_column={territory_column!r} is not a column of centers; valid "
            f"columns: {[c for c in centers.columns if c != centers.geometry.name]}"
        )
    if centers.crs is None:
        raise CRSError("centers have no CRS; set it with centers.set_crs(...)")
    geoms = centers.geometry.values
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = centers.loc[keep].reset_index(drop=True)
    # a polygon given as a center is drawn at its representative point
    out = out.set_geometry(out.geometry.representative_point())
    return out


def _sort_key(value: Hashable) -> tuple[int, Any]:
    if isinstance(value, (bool, np.bool_)):
        return (0, int(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (0, float(value))
    return (1, str(value))


def _territories(values: pd.Series) -> list[Hashable]:
    """The territory labels of ``values`` (missing ones excluded), in a deterministic order."""
    labels = [v.item() if isinstance(v, np.generic) else v for v in values.dropna().unique()]
    return sorted(labels, key=_sort_key)


def _is_polygonal(geoms: np.ndarray) -> np.ndarray:
    """Mask of the Polygons and MultiPolygons among ``geoms``."""
    return np.isin(shapely.get_type_id(geoms), (3, 6))


def _is_point(geoms: np.ndarray) -> np.ndarray:
    """Mask of the Points and MultiPoints among ``geoms``."""
    return np.isin(shapely.get_type_id(geoms), (0, 4))


def _diagonal(bounds: np.ndarray) -> float:
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    return math.hypot(maxx - minx, maxy - miny)


def _clean_union(geom: Any, eps: float, min_hole_area: float) -> Any:
    """``geom`` without the cracks that gaps between areas leave in a union.

    Real boundary files are rarely a clean coverage: neighbours' edges do not share vertices, so
    the union of a territory's areas keeps thin slivers (holes) and inlets along their common
    edges. A closing (buffer out, then in, by ``eps``) seals inlets narrower than ``2 * eps``;
    holes smaller than ``min_hole_area`` (half the smallest area: no area fits inside) go.
    """
    if eps > 0:
        geom = shapely.buffer(shapely.buffer(geom, eps, quad_segs=4), -eps, quad_segs=4)
    polygons = []
    for part in shapely.get_parts(geom):
        holes = [ring for ring in part.interiors if shapely.Polygon(ring).area >= min_hole_area]
        polygons.append(shapely.Polygon(part.exterior, holes))
    if not polygons:
        return geom
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _dissolve(gdf: gpd.GeoDataFrame, territory_column: str) -> gpd.GeoDataFrame:
    """One row per territory (sorted), its geometry the union of its areas.

    Unions of polygons are cleaned of the slivers that gaps between areas leave (see
    :func:`_clean_union`, with ``eps`` 1/10000 of the data extent's diagonal).
    """
    assigned = gdf.loc[gdf[territory_column].notna(), [territory_column, gdf.geometry.name]]
    labels = _territories(assigned[territory_column])
    key = assigned[territory_column].map(lambda v: v.item() if isinstance(v, np.generic) else v)
    geoms = assigned.geometry.values
    polygonal = _is_polygonal(geoms)
    eps = _CLOSING_SHARE * _diagonal(gdf.total_bounds)
    min_hole = 0.5 * float(shapely.area(geoms[polygonal]).min()) if polygonal.any() else 0.0
    unions = []
    for t in labels:
        mask = (key == t).to_numpy()
        union = shapely.union_all(geoms[mask])
        if polygonal[mask].all():
            union = _clean_union(union, eps, min_hole)
        unions.append(union)
    return gpd.GeoDataFrame({territory_column: labels}, geometry=unions, crs=gdf.crs)


# --------------------------------------------------------------------------- colours


def _hex_to_lab(colors: Sequence[str]) -> np.ndarray:
    """CIELAB (D65) coordinates of ``#rrggbb`` colours, shape ``(n, 3)``."""
    rgb = np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in colors])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.column_stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])]
    )


def _generated_color(k: int) -> str:
    """The ``k``-th colour of an endless golden-angle hue sequence (last-resort fallback)."""
    import colorsys

    r, g, b = colorsys.hls_to_rgb((k * 0.618033988749895) % 1.0, 0.5, 0.65)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _neighbour_pairs(geoms: np.ndarray, tolerance: float) -> list[tuple[int, int]]:
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=tolerance)
    return sorted({(int(a), int(b)) for a, b in zip(left, right, strict=True) if a < b})


def territory_colors(
    areas: gpd.GeoDataFrame, territory_column: str = "territory"
) -> dict[Hashable, str]:
    """A colour per territory; neighbouring territories never share one.

    The areas are dissolved per territory; two territories are neighbours when their dissolved
    geometries touch (closer than 1/1000 of the data extent's diagonal, which absorbs the gaps
    and slivers of real boundary files; point layers use the convex hull of each territory's
    points). Territories are then coloured greedily, most-connected first (Welsh-Powell order,
    ties broken by label), from a 16-colour qualitative palette (matplotlib's tab20 without its
    reds and greys, which mark flagged and unassigned areas). Each territory takes, among the
    colours none of its neighbours has, preferably one no territory has yet (so up to 16
    territories all get different colours), then the one most different (CIELAB distance) from
    its neighbours' colours, then the least used. Beyond 16 territories colours are reused, by
    non-neighbours only, and preferably not by a neighbour's neighbour. The result depends only
    on the data: the same input gives the same colours.

    Parameters
    ----------
    areas
        Basic areas (polygons or points) in any CRS, with a territory column.
    territory_column
        Column holding the territory of each area; areas with a missing value are not
        territories (maps draw them in grey).

    Returns
    -------
    dict
        ``{territory: "#rrggbb"}`` for every territory, keys in sorted order.

    Raises
    ------
    AreaDataError
        ``areas`` is not a GeoDataFrame, has no such column or no geometry.
    CRSError
        ``areas`` has no CRS.
    """
    gdf, _ = _check_areas(areas, territory_column, None)
    return _territory_colors(gdf, territory_column)


def _territory_colors(
    gdf: gpd.GeoDataFrame, territory_column: str, dissolved: gpd.GeoDataFrame | None = None
) -> dict[Hashable, str]:
    if dissolved is None:
        dissolved = _dissolve(gdf, territory_column)
    labels = list(dissolved[territory_column])
    n = len(labels)
    if n == 0:
        return {}
    geoms = dissolved.geometry.values
    geoms = np.where(_is_polygonal(geoms), geoms, shapely.convex_hull(geoms))
    tolerance = _NEIGHBOUR_TOLERANCE * _diagonal(gdf.total_bounds)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in _neighbour_pairs(geoms, tolerance):
        neighbours[a].add(b)
        neighbours[b].add(a)

    palette = list(_PALETTE)
    lab = _hex_to_lab(palette)
    used = np.zeros(len(palette), dtype=np.int64)
    assigned: dict[int, int] = {}  # territory row -> palette index
    order = sorted(range(n), key=lambda i: (-len(neighbours[i]), _sort_key(labels[i])))
    for i in order:
        taken = {assigned[j] for j in neighbours[i] if j in assigned}
        free = [c for c in range(len(palette)) if c not in taken]
        if not free:  # more coloured neighbours than colours: widen the palette
            extra = [*_EXTRA_PALETTE, *(_generated_color(k) for k in range(len(palette)))]
            new = next(c for c in extra if c not in palette)
            palette.append(new)
            lab = np.vstack([lab, _hex_to_lab([new])])
            used = np.append(used, 0)
            free = [len(palette) - 1]
        if taken:
            dist = np.linalg.norm(lab[free][:, None, :] - lab[sorted(taken)][None, :, :], axis=2)
            contrast = dist.min(axis=1)
        else:
            contrast = np.zeros(len(free))
        # a reused colour should not reappear just behind a neighbour either
        near = {assigned[k] for j in neighbours[i] for k in neighbours[j] if k in assigned}
        best = min(
            range(len(free)),
            key=lambda k: (
                used[free[k]] > 0,
                free[k] in near,
                -round(float(contrast[k]), 6),
                used[free[k]],
                k,
            ),
        )
        assigned[i] = free[best]
        used[free[best]] += 1
    return {labels[i]: palette[assigned[i]] for i in range(n)}


def _color_of(value: Any, colors: Mapping[Hashable, str]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return _UNASSIGNED_COLOR
    if isinstance(value, np.generic):
        value = value.item()
    return colors.get(value, _UNASSIGNED_COLOR)


# --------------------------------------------------------------------------- HTML


def _default_tooltip_columns(
    gdf: gpd.GeoDataFrame, territory_column: str, flagged_column: str | None
) -> list[str]:
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    lower = {str(c).lower(): c for c in cols}
    id_col = next((lower[name] for name in _ID_NAMES if name in lower), None)
    if id_col is None:
        id_col = next(
            (
                c
                for c in cols
                if str(c).lower().endswith(("_id", "id", "code")) and c != territory_column
            ),
            None,
        )
    name_col = lower.get("name")
    chosen = [c for c in (id_col, name_col, territory_column, flagged_column) if c is not None]
    numeric = [
        c
        for c in cols
        if c not in chosen
        and pd.api.types.is_numeric_dtype(gdf[c])
        and not pd.api.types.is_bool_dtype(gdf[c])
    ]
    return list(dict.fromkeys([*chosen, *numeric[:_MAX_TOOLTIP_NUMERIC]]))


def _json_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Columns that serialise to readable JSON: rounded floats, text for anything exotic."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            out[str(c)] = col.astype(object).where(col.notna(), None)
        elif pd.api.types.is_integer_dtype(col):
            out[str(c)] = [None if pd.isna(v) else int(v) for v in col]
        elif pd.api.types.is_float_dtype(col):
            out[str(c)] = [None if pd.isna(v) else round(float(v), 3) for v in col]
        else:
            out[str(c)] = [None if v is None or v is pd.NA or v != v else str(v) for v in col]
    return out


def _simplify(geoms: np.ndarray, tolerance: float, as_coverage: bool = False) -> np.ndarray:
    """Simplified geometries: as a coverage (shared edges stay shared) or one by one."""
    if tolerance <= 0:
        return geoms
    if as_coverage:
        return np.asarray(shapely.coverage_simplify(geoms, tolerance))
    return np.asarray(shapely.simplify(geoms, tolerance, preserve_topology=True))


def _decimals(tolerance: float) -> int:
    """Decimals of the lon/lat written: enough for a quarter of the tolerance, 4 to 6."""
    if tolerance <= 0:
        return 6
    return min(6, max(4, math.ceil(-math.log10(tolerance / 4))))


def _round(geoms: np.ndarray, decimals: int) -> np.ndarray:
    return np.asarray(shapely.transform(geoms, lambda xy: np.round(xy, decimals)))


def _simplify_for_html(
    geoms: np.ndarray, bounds: np.ndarray, tolerance: float | None
) -> tuple[np.ndarray, float]:
    """Geometries simplified for the HTML map and the tolerance used.

    With ``tolerance=None`` the tolerance starts at :data:`_SIMPLIFY_SHARE` of the extent's
    diagonal and doubles while the result has more than :data:`_MAX_HTML_VERTICES` vertices.
    """
    coverage = (
        tolerance != 0
        and len(geoms) > 1
        and bool(_is_polygonal(geoms).all())
        and bool(shapely.coverage_is_valid(geoms))
    )
    if tolerance is not None:
        return _simplify(geoms, tolerance, coverage), tolerance
    tolerance = _SIMPLIFY_SHARE * _diagonal(bounds)
    out = _simplify(geoms, tolerance, coverage)
    for _ in range(10):
        if int(shapely.get_num_coordinates(out).sum()) <= _MAX_HTML_VERTICES:
            break
        tolerance *= 2
        out = _simplify(geoms, tolerance, coverage)
    log.debug("simplified %d geometries%s", len(geoms), " as a coverage" if coverage else "")
    return out, tolerance


def _feature_collection(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    """GeoJSON of ``gdf`` with string feature ids ``"0", "1", ...`` (used by folium's styler)."""
    return gdf.reset_index(drop=True).to_geo_dict(na="null", drop_id=False)


def _leaflet_assets() -> tuple[str, str] | None:
    """Leaflet's JavaScript and CSS (images inlined as data URIs) from ``xstatic-leaflet``."""
    try:
        from xstatic.pkg import leaflet as xstatic_leaflet
    except ImportError:
        return None
    base = Path(xstatic_leaflet.BASE_DIR)
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    css = (base / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match[str]) -> str:
        image = base / "images" / match.group(2)
        if not image.is_file():
            return match.group(0)
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    css = re.sub(r"url\((['\"]?)images/([\w.-]+\.png)\1\)", data_uri, css)
    # "</" would end the inline <script> or <style> element early
    return js.replace("</", "<\\/"), css.replace("</", "<\\/")


def _raw_html_element(text: str) -> Any:
    """A branca element that renders ``text`` verbatim (no Jinja pass over it)."""
    from branca.element import Element

    class _Raw(Element):
        def render(self, **kwargs: Any) -> str:
            return text

    return _Raw()


def _figure(m: Any) -> Any:
    """The branca Figure (page) that holds the folium map ``m``."""
    from branca.element import Figure

    root = m.get_root()
    assert isinstance(root, Figure)
    return root


def _overlay_element(html_text: str) -> Any:
    """A folium child that adds ``html_text`` (a fixed-position box) to the page body."""
    from branca.element import MacroElement

    class _Overlay(MacroElement):
        def render(self, **kwargs: Any) -> str:
            _figure(self).html.add_child(_raw_html_element(html_text), name=self.get_name())
            return ""

    return _Overlay()


def _format_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.1f}" if abs(v) >= 1 else f"{v:.2g}"
    return str(value)


def _legend_html(
    colors: Mapping[Hashable, str],
    summary: pd.DataFrame | None,
    n_flagged: int,
    has_unassigned: bool,
    has_centers: bool,
) -> str:
    esc = html.escape
    columns: list[Any] = list(summary.columns[:_MAX_SUMMARY_COLUMNS]) if summary is not None else []
    head = "".join(f"<th>{esc(str(c))}</th>" for c in columns)
    rows = []
    for territory, color in colors.items():
        cells = ""
        if summary is not None:
            if territory in summary.index:
                row = summary.loc[territory]
                cells = "".join(
                    f"<td class='num'>{esc(_format_value(row[c]))}</td>" for c in columns
                )
            else:
                cells = "<td class='num'>–</td>" * len(columns)
        rows.append(
            f"<tr><td><span class='sw' style='background:{color}'></span></td>"
            f"<td>{esc(str(territory))}</td>{cells}</tr>"
        )
    extra = []
    if has_unassigned:
        extra.append(
            f"<div><span class='sw' style='background:{_UNASSIGNED_COLOR}'></span> unassigned</div>"
        )
    if n_flagged:
        extra.append(
            f"<div><span class='sw' style='border:2px dashed {_FLAG_COLOR};background:none'>"
            f"</span> flagged area ({n_flagged})</div>"
        )
    if has_centers:
        extra.append(
            "<div><span class='sw' style='border-radius:50%;border:2px solid #000;"
            "background:#fff'></span> territory center</div>"
        )
    return (
        "<style>.roadnet-legend{position:fixed;z-index:1000;bottom:24px;right:10px;"
        "max-height:60vh;overflow:auto;background:rgba(255,255,255,.93);padding:6px 9px;"
        "border-radius:5px;box-shadow:0 1px 5px rgba(0,0,0,.4);font:12px/1.35 sans-serif}"
        ".roadnet-legend table{border-collapse:collapse}"
        ".roadnet-legend td,.roadnet-legend th{padding:1px 4px;text-align:left}"
        ".roadnet-legend .num{text-align:right}"
        ".roadnet-legend .sw{display:inline-block;width:14px;height:11px;vertical-align:middle;"
        "border:1px solid #555;box-sizing:border-box}</style>"
        "<div class='roadnet-legend' id='roadnet-legend'><b>Territories</b>"
        f"<table><tr><th></th><th></th>{head}</tr>{''.join(rows)}</table>{''.join(extra)}</div>"
    )


def _title_html(title: str) -> str:
    return (
        "<div id='roadnet-title' style='position:fixed;z-index:1000;top:10px;left:50%;"
        "transform:translateX(-50%);background:rgba(255,255,255,.93);padding:4px 12px;"
        "border-radius:5px;box-shadow:0 1px 5px rgba(0,0,0,.4);font:bold 15px sans-serif'>"
        f"{html.escape(title)}</div>"
    )


def _check_summary(summary: Any, territory_column: str) -> pd.DataFrame | None:
    if summary is None:
        return None
    if not isinstance(summary, pd.DataFrame):
        raise AreaDataError(
            f"summary: expected a DataFrame indexed by territory, got {type(summary).__name__}"
        )
    if territory_column in summary.columns:
        summary = summary.set_index(territory_column)
    summary = summary.copy()
    summary.index = [v.item() if isinstance(v, np.generic) else v for v in summary.index]
    return summary


def _tooltip_columns(
    gdf: gpd.GeoDataFrame,
    tooltip_columns: Sequence[str] | None,
    territory_column: str,
    flagged_column: str | None,
) -> list[str]:
    """The columns of the area tooltips: the given ones (checked) or the default choice."""
    if tooltip_columns is None:
        return _default_tooltip_columns(gdf, territory_column, flagged_column)
    columns = list(tooltip_columns)
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise AreaDataError(
            f"tooltip_columns: {missing} are not columns of areas; valid columns: "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}"
        )
    return columns


def _tooltip(tooltip_columns: Sequence[str]) -> Any:
    """The sticky folium tooltip of an area layer showing ``tooltip_columns``."""
    import folium

    return folium.GeoJsonTooltip(fields=[str(c) for c in tooltip_columns], sticky=True)


@dataclasses.dataclass(frozen=True)
class _HtmlGeometry:
    """The geometry of the HTML map in EPSG:4326, simplified and rounded."""

    colors: dict[Hashable, str]  #: territory -> colour
    dissolved: gpd.GeoDataFrame  #: one row per territory (EPSG:4326, not simplified)
    bounds: np.ndarray  #: (minx, miny, maxx, maxy) of the areas
    area_geoms: np.ndarray  #: the areas, simplified and rounded
    border_geoms: np.ndarray  #: the dissolved territories, simplified and rounded
    decimals: int  #: decimals of the coordinates written


def _html_geometry(
    gdf: gpd.GeoDataFrame, territory_column: str, simplify_tolerance: float | None
) -> _HtmlGeometry:
    """Dissolve, colour, reproject, simplify and round the areas for the HTML map."""
    dissolved = _dissolve(gdf, territory_column)
    colors = _territory_colors(gdf, territory_column, dissolved)
    dissolved = dissolved.to_crs(4326)
    wgs = gdf.to_crs(4326)
    bounds = wgs.total_bounds
    area_geoms, tolerance = _simplify_for_html(wgs.geometry.values, bounds, simplify_tolerance)
    decimals = _decimals(tolerance)
    area_geoms = _round(area_geoms, decimals)
    border_geoms = _round(_simplify(dissolved.geometry.values, tolerance), decimals)
    log.debug(
        "HTML geometry: tolerance %.3g degrees, %d decimals, %d vertices",
        tolerance,
        decimals,
        int(shapely.get_num_coordinates(area_geoms).sum()),
    )
    return _HtmlGeometry(
        colors=colors,
        dissolved=dissolved,
        bounds=bounds,
        area_geoms=area_geoms,
        border_geoms=border_geoms,
        decimals=decimals,
    )


def _area_style(feature: dict[str, Any]) -> dict[str, Any]:
    """Leaflet style of an area: its territory's fill; points as outlined circles."""
    if feature["geometry"]["type"] in ("Point", "MultiPoint"):
        return {
            "fillColor": feature["properties"]["_fill"],
            "fill": True,
            "color": "#333333",
            "weight": 1,
            "fillOpacity": 0.9,
        }
    return {
        "fillColor": feature["properties"]["_fill"],
        "color": "#ffffff",
        "weight": 0.7,
        "fillOpacity": 0.65,
    }


def _area_highlight(feature: dict[str, Any]) -> dict[str, Any]:
    """Leaflet style of the area under the mouse."""
    return {"color": "#000000", "weight": 2.5, "fillOpacity": 0.8}


def _border_style(feature: dict[str, Any]) -> dict[str, Any]:
    """Leaflet style of the territory borders: thick dark lines, no fill."""
    return {"color": _BORDER_COLOR, "weight": 2.5, "fill": False, "opacity": 0.9}


def _road_style(feature: dict[str, Any]) -> dict[str, Any]:
    """Leaflet style of the roads: thin grey lines."""
    return {"color": _ROAD_COLOR, "weight": 1.2, "opacity": 0.8}


def _flag_style(feature: dict[str, Any]) -> dict[str, Any]:
    """Leaflet style of the flagged areas: red dashed outline, transparent fill."""
    return {
        "color": _FLAG_COLOR,
        "weight": 3,
        "dashArray": "6 4",
        "fill": True,
        "fillOpacity": 0.0,
    }


def _add_area_layer(
    m: Any, area_layer: gpd.GeoDataFrame, is_point: np.ndarray, tooltip_columns: list[str]
) -> None:
    """Add the "Areas" layer: areas filled with their territory's colour, with tooltips."""
    import folium

    tooltip = _tooltip(tooltip_columns)
    marker = folium.CircleMarker(radius=5) if bool(is_point.any()) else None
    folium.GeoJson(
        _feature_collection(area_layer),
        name="Areas",
        style_function=_area_style,
        highlight_function=_area_highlight,
        tooltip=tooltip,
        marker=marker,
    ).add_to(m)


def _add_border_layer(m: Any, geo: _HtmlGeometry, territory_column: str) -> None:
    """Add the "Territory borders" layer (polygonal territories only)."""
    import folium

    border_polys = _is_polygonal(geo.border_geoms)
    if not bool(border_polys.any()):
        return
    borders = gpd.GeoDataFrame(
        {"territory": [str(t) for t in geo.dissolved[territory_column]]},
        geometry=geo.border_geoms,
        crs=4326,
    ).loc[border_polys]
    folium.GeoJson(
        _feature_collection(borders),
        name="Territory borders",
        style_function=_border_style,
        interactive=False,
    ).add_to(m)


def _add_road_layer(m: Any, roads: gpd.GeoDataFrame | None, decimals: int) -> None:
    """Add the "Major roads" layer when ``roads`` has any line."""
    import folium

    if roads is None or not len(roads):
        return
    road_layer = roads.to_crs("EPSG:4326")[[roads.geometry.name]]
    road_layer = gpd.GeoDataFrame(
        geometry=_round(road_layer.geometry.values, decimals), crs="EPSG:4326"
    )
    folium.GeoJson(
        _feature_collection(road_layer),
        name="Major roads",
        style_function=_road_style,
        interactive=False,
    ).add_to(m)


def _add_flagged_layer(
    m: Any,
    area_layer: gpd.GeoDataFrame,
    is_point: np.ndarray,
    flags: np.ndarray | None,
    tooltip_columns: list[str],
) -> int:
    """Add the "Flagged areas" layer (red dashed outlines); the number of flagged areas."""
    import folium

    if flags is None:
        return 0
    flagged = area_layer.loc[flags]
    n_flagged = len(flagged)
    if n_flagged:
        folium.GeoJson(
            _feature_collection(flagged),
            name=f"Flagged areas ({n_flagged})",
            style_function=_flag_style,
            tooltip=_tooltip(tooltip_columns),
            marker=folium.CircleMarker(radius=8) if bool(is_point.any()) else None,
        ).add_to(m)
    return n_flagged


def _center_label(row: pd.Series, territory: Any, name_col: Hashable | None) -> str:
    """Tooltip text of a center marker: ``"[name — ]center of territory X"``."""
    label = f"center of territory {territory}"
    if name_col is not None and pd.notna(row[name_col]):
        label = f"{row[name_col]} — {label}"
    return label


def _add_center_layer(
    m: Any,
    centers: gpd.GeoDataFrame | None,
    territory_column: str,
    colors: Mapping[Hashable, str],
) -> None:
    """Add the "Centers" layer: a circle in the territory's colour per center."""
    import folium

    if centers is None or not len(centers):
        return
    group = folium.FeatureGroup(name="Centers")
    name_col = next((c for c in centers.columns if str(c).lower() == "name"), None)
    for _, row in centers.iterrows():
        territory = row[territory_column]
        point = row.geometry
        folium.CircleMarker(
            location=[point.y, point.x],
            radius=7,
            color="#000000",
            weight=2,
            fill=True,
            fill_color=_color_of(territory, colors),
            fill_opacity=1.0,
            tooltip=html.escape(_center_label(row, territory, name_col)),
        ).add_to(group)
    group.add_to(m)


def _inline_leaflet(m: Any) -> None:
    """Replace folium's default CDN assets by Leaflet inlined from ``xstatic-leaflet``."""
    assets = _leaflet_assets()
    if assets is None:
        log.warning(
            "xstatic-leaflet is not installed: the map links to Leaflet on its CDN and "
            "needs network access to open (pip install xstatic-leaflet)"
        )
        return
    js, css = assets
    m.default_js = []
    m.default_css = []
    header = _figure(m).header
    header.add_child(_raw_html_element(f"<style>{css}</style>"), name="leaflet_css")
    header.add_child(_raw_html_element(f"<script>{js}</script>"), name="leaflet")


def _warn_external(text: str) -> None:
    """Log a warning when the rendered page still loads scripts or styles from the web."""
    external = re.findall(r"<(?:script|link)[^>]+(?:src|href)=[\"']?(https?:[^\"' >]+)", text)
    if external:
        log.warning("the map still loads %d resource(s) from the web: %s", len(external), external)


def territory_map_html(
    areas: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    territory_column: str = "territory",
    centers: gpd.GeoDataFrame | None = None,
    flagged_column: str | None = "flagged",
    tooltip_columns: Sequence[str] | None = None,
    title: str | None = None,
    summary: pd.DataFrame | None = None,
    tiles: str | None = "OpenStreetMap",
    simplify_tolerance: float | None = None,
    self_contained: bool = True,
    roads: gpd.GeoDataFrame | None = None,
) -> Path:
    """Write an interactive Leaflet map of the territories to an HTML file.

    The map has these layers (each can be switched off in the layer control): the areas
    filled with their territory's colour (:func:`territory_colors`; grey when unassigned) with
    a tooltip of their figures, the territory borders (areas dissolved per territory, thick
    dark lines), the flagged areas (red dashed outline) and the territory centers (circles in
    the territory's colour, tooltip ``"center of territory X"``). A legend lists the
    territories with their colour and, when ``summary`` is given, their figures. With
    ``roads`` (e.g. :func:`roadnet.roads.road_lines`), the road network is drawn on top of the
    areas as thin grey lines. The view is fitted to the data.

    Parameters
    ----------
    areas
        Basic areas (polygons, or points for point layers) in any CRS; reprojected to
        EPSG:4326.
    path
        The HTML file to write (overwritten).
    territory_column
        Column holding each area's territory; missing values are drawn as unassigned.
    centers
        Points with a ``territory_column`` (and an optional ``name`` column), drawn as markers.
    flagged_column
        Boolean column of areas flagged by validation; ``None`` or an absent column highlights
        nothing.
    tooltip_columns
        Columns shown when hovering an area. Default: the id-like column (``id``, ``zip``,
        ``*_code``...), ``name``, the territory, the flag and up to 8 numeric columns.
    title
        Shown at the top of the map and as the page title.
    summary
        Figures per territory for the legend: a DataFrame indexed by territory (or with a
        ``territory_column`` column) with columns such as size, deviation or drive-time
        statistics; the first 4 columns are shown.
    tiles
        Background tile layer (any name folium accepts); ``None`` for none. Tiles come from
        the web: offline the map shows the territories on a plain background.
    simplify_tolerance
        Tolerance of the geometry simplification, in degrees; ``None`` picks 1/5000 of the
        diagonal of the data's bounding box, coarsened until the areas keep at most 100,000
        vertices; ``0`` keeps the geometry as it is. See the module notes on large inputs.
    self_contained
        Inline Leaflet's JavaScript and CSS (from the ``xstatic-leaflet`` package) so the file
        opens without network access. When that package is missing, or with ``False``, the page
        links to Leaflet on its CDN as folium does by default (a warning is logged in the first
        case).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    AreaDataError
        ``areas`` is not a GeoDataFrame, lacks a named column or geometry; a flag column that
        is not boolean; bad ``centers`` or ``summary``.
    CRSError
        ``areas`` or ``centers`` have no CRS.
    """
    import folium

    gdf, flagged_column = _check_areas(areas, territory_column, flagged_column)
    summary = _check_summary(summary, territory_column)
    if centers is not None:
        centers = _check_centers(centers, territory_column).to_crs(4326)
    tooltip_columns = _tooltip_columns(gdf, tooltip_columns, territory_column, flagged_column)
    if simplify_tolerance is not None and not simplify_tolerance >= 0:
        raise AreaDataError(
            f"simplify_tolerance={simplify_tolerance!r} must be >= 0 (degrees) or None"
        )

    geo = _html_geometry(gdf, territory_column, simplify_tolerance)
    props = _json_ready(gdf[tooltip_columns])
    props["_fill"] = [_color_of(v, geo.colors) for v in gdf[territory_column]]
    area_layer = gpd.GeoDataFrame(props, geometry=geo.area_geoms, crs=4326)
    is_point = _is_point(geo.area_geoms)

    # fractional zoom steps let fit_bounds fill the window instead of the next whole level
    m = folium.Map(tiles=tiles, control_scale=True, zoom_snap=0.25, zoom_delta=0.5)
    if title:
        _figure(m).title = title
    _add_area_layer(m, area_layer, is_point, tooltip_columns)
    _add_border_layer(m, geo, territory_column)
    _add_road_layer(m, roads, geo.decimals)
    flags = gdf[flagged_column].to_numpy() if flagged_column is not None else None
    n_flagged = _add_flagged_layer(m, area_layer, is_point, flags, tooltip_columns)
    _add_center_layer(m, centers, territory_column, geo.colors)
    folium.LayerControl(collapsed=False).add_to(m)
    has_unassigned = bool(gdf[territory_column].isna().any())
    _overlay_element(
        _legend_html(geo.colors, summary, n_flagged, has_unassigned, centers is not None)
    ).add_to(m)
    if title:
        _overlay_element(_title_html(title)).add_to(m)
    minx, miny, maxx, maxy = (float(b) for b in geo.bounds)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    if self_contained:
        _inline_leaflet(m)

    text = _figure(m).render()
    if self_contained:
        _warn_external(text)
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    log.info(
        "wrote %s: %d areas, %d territories, %.1f MB",
        out,
        len(gdf),
        len(geo.colors),
        out.stat().st_size / 1e6,
    )
    return out


# --------------------------------------------------------------------------- PNG


def territory_map_png(
    areas: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    territory_column: str = "territory",
    centers: gpd.GeoDataFrame | None = None,
    flagged_column: str | None = "flagged",
    title: str | None = None,
    dpi: int = 150,
    roads: gpd.GeoDataFrame | None = None,
) -> Path:
    """Write a static map of the territories to a PNG file (for reports).

    Areas are filled with the colours of :func:`territory_colors` (grey when unassigned), the
    territory borders (areas dissolved per territory) are drawn as dark lines and labelled with
    the territory, flagged areas get a red dashed, hatched outline and centers a black-edged
    dot in their territory's colour. A compact legend sits to the right of the map. Geographic
    coordinates are drawn with the aspect of their mid latitude. The figure is a private
    :class:`matplotlib.figure.Figure` on the Agg canvas: pyplot's global state is not touched.

    Parameters
    ----------
    areas
        Basic areas (polygons or points) in any CRS.
    path
        The PNG file to write (overwritten).
    territory_column
        Column holding each area's territory; missing values are drawn as unassigned.
    centers
        Points with a ``territory_column``, drawn as markers.
    flagged_column
        Boolean column of areas flagged by validation; ``None`` or an absent column highlights
        nothing.
    title
        Title above the map.
    dpi
        Resolution; the figure is about 10 x 8 inches.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    AreaDataError
        ``areas`` is not a GeoDataFrame, lacks a named column or geometry; a flag column that
        is not boolean; bad ``centers``; ``dpi`` not positive.
    CRSError
        ``areas`` or ``centers`` have no CRS.
    """
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not (isinstance(dpi, (int, float)) and dpi > 0):
        raise AreaDataError(f"dpi={dpi!r} must be a positive number")
    gdf, flagged_column = _check_areas(areas, territory_column, flagged_column)
    if centers is not None:
        centers = _check_centers(centers, territory_column).to_crs(gdf.crs)
    dissolved = _dissolve(gdf, territory_column)
    colors = _territory_colors(gdf, territory_column, dissolved)
    fill = [_color_of(v, colors) for v in gdf[territory_column]]
    # below half a pixel of a 10-inch figure at 150 dpi: invisible, and much faster to draw
    geoms = gpd.GeoSeries(
        _simplify(gdf.geometry.values, _PNG_SIMPLIFY_SHARE * _diagonal(gdf.total_bounds)),
        crs=gdf.crs,
    )
    is_point = _is_point(geoms.values)

    fig = Figure(figsize=(10, 8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    if bool((~is_point).any()):
        geoms[~is_point].plot(
            ax=ax, color=np.asarray(fill)[~is_point].tolist(), edgecolor="white", linewidth=0.3
        )
    if roads is not None and len(roads):
        roads.to_crs(geoms.crs).plot(ax=ax, color=_ROAD_COLOR, linewidth=0.6, alpha=0.8, zorder=2)
    polygonal = _is_polygonal(dissolved.geometry.values)
    if bool(polygonal.any()):
        dissolved.loc[polygonal].boundary.plot(ax=ax, color=_BORDER_COLOR, linewidth=1.1)
    if bool(is_point.any()):
        geoms[is_point].plot(
            ax=ax,
            color=np.asarray(fill)[is_point].tolist(),
            markersize=14,
            edgecolor="#333333",
            linewidth=0.4,
        )

    n_flagged = 0
    if flagged_column is not None:
        mask = gdf[flagged_column].to_numpy()
        n_flagged = int(mask.sum())
        if n_flagged:
            flagged = geoms[mask]
            flagged_points = is_point[mask]
            if bool((~flagged_points).any()):
                flagged[~flagged_points].plot(
                    ax=ax,
                    facecolor="none",
                    edgecolor=_FLAG_COLOR,
                    hatch="////",
                    linestyle="--",
                    linewidth=1.4,
                )
            if bool(flagged_points.any()):
                flagged[flagged_points].plot(
                    ax=ax, facecolor="none", edgecolor=_FLAG_COLOR, markersize=60, linewidth=1.4
                )

    has_centers = centers is not None and len(centers) > 0
    if has_centers:
        assert centers is not None
        center_colors = [_color_of(t, colors) for t in centers[territory_column]]
        ax.scatter(
            centers.geometry.x,
            centers.geometry.y,
            s=60,
            c="white",
            edgecolors="black",
            linewidths=1.5,
            zorder=5,
        )
        ax.scatter(centers.geometry.x, centers.geometry.y, s=12, c=center_colors, zorder=6)

    if 0 < len(dissolved) <= _MAX_PNG_LABELS:
        # each territory is labelled just above its center, or at a point inside it
        anchors = dict(
            zip(dissolved[territory_column], dissolved.geometry.representative_point(), strict=True)
        )
        offset = dict.fromkeys(anchors, 0.0)
        if has_centers:
            assert centers is not None
            for t, point in zip(centers[territory_column], centers.geometry, strict=True):
                key = t.item() if isinstance(t, np.generic) else t
                if key in anchors and offset[key] == 0.0:
                    anchors[key], offset[key] = point, 7.0
        halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
        for territory, point in anchors.items():
            ax.annotate(
                str(territory),
                (point.x, point.y),
                xytext=(0.0, offset[territory]),
                textcoords="offset points",
                ha="center",
                va="bottom" if offset[territory] else "center",
                fontsize=7,
                fontweight="bold",
                color="#111111",
                path_effects=halo,
                zorder=7,
            )

    if gdf.crs is not None and gdf.crs.is_geographic:
        miny, maxy = gdf.total_bounds[[1, 3]]
        mid = math.radians(float(miny + maxy) / 2)
        ax.set_aspect(1 / max(math.cos(mid), 0.05))
    else:
        ax.set_aspect("equal")

    handles: list[Any] = [
        Patch(facecolor=c, edgecolor="#333333", linewidth=0.5, label=str(t))
        for t, c in colors.items()
    ]
    if bool(gdf[territory_column].isna().any()):
        handles.append(Patch(facecolor=_UNASSIGNED_COLOR, edgecolor="#333333", label="unassigned"))
    if n_flagged:
        handles.append(
            Patch(
                facecolor="none",
                edgecolor=_FLAG_COLOR,
                hatch="////",
                linestyle="--",
                label=f"flagged ({n_flagged})",
            )
        )
    if has_centers:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="none",
                markerfacecolor="white",
                markeredgecolor="black",
                markersize=6,
                label="center",
            )
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        ncols=max(1, math.ceil(len(handles) / 28)),
        frameon=False,
        title="Territories",
        title_fontsize=8,
        handlelength=1.4,
        borderaxespad=0.0,
    )
    if title:
        ax.set_title(title, fontsize=13)
    out = Path(path)
    fig.savefig(out, dpi=dpi, format="png", facecolor="white")
    log.info("wrote %s: %d areas, %d territories", out, len(gdf), len(colors))
    return out
