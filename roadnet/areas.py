"""Basic areas and other points at the boundary: files and GeoDataFrames in, arrays out.

A basic area (ZIP code, postal code, parish, census tract...) is reduced to one point: by
default the polygon's **representative point** (``shapely.point_on_surface``: always inside the
polygon, unlike the centroid of a C-shaped area), or a point given in columns. Point layers are
used as they are. Everything leaves this module as WGS84 lon/lat arrays plus the id of each row.

Checks (each raises :class:`~roadnet.exceptions.AreaDataError` or
:class:`~roadnet.exceptions.CRSError` naming the problem): file missing or unreadable, no row,
missing/empty geometries, invalid geometries that a repair would change materially
(``fix_invalid=True`` repairs them anyway with ``make_valid``),
duplicate or missing ids, no CRS, coordinates that contradict their CRS.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from roadnet.exceptions import AreaDataError, CRSError

__all__ = ["Areas", "areas_from_gdf", "read_areas"]

log = logging.getLogger(__name__)

#: invalid polygons whose repair changes their area by less than this share are repaired
#: silently (self-intersection slivers of real boundary data); others raise unless asked
_MINOR_REPAIR = 1e-3

_ID_NAMES = (
    "id",
    "area_id",
    "zcta",
    "zip",
    "zipcode",
    "postcode",
    "postal_code",
    "geoid",
    "code",
    "parish_code",
    "fid",
)
_LON_NAMES = ("lon", "lng", "long", "longitude", "x")
_LAT_NAMES = ("lat", "latitude", "y")


@dataclasses.dataclass(frozen=True, eq=False)
class Areas:
    """Basic areas (or any points) reduced to one WGS84 point each.

    Attributes
    ----------
    ids
        Id of each area (from ``id_column``), unique.
    lon, lat
        The point of each area in degrees.
    id_column
        Name of the id column (``None`` when ids are row numbers).
    gdf
        The areas as a GeoDataFrame in EPSG:4326 with their original geometry.
    """

    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    id_column: str | None
    gdf: gpd.GeoDataFrame

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def lonlat(self) -> np.ndarray:
        """``(n, 2)`` array of lon/lat."""
        return np.column_stack([self.lon, self.lat])


def _find_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _detect_id(df: pd.DataFrame, source: str) -> str | None:
    """The id column: a well-known name (``id``, ``zcta``, ...) or a unique ``*id``/``*code``.

    A well-known name with duplicate or missing values is an error (it is clearly meant as the
    id); other candidates are skipped when not unique.
    """
    cols = [c for c in df.columns if c != getattr(df.geometry, "name", None)]
    exact = _find_column(cols, _ID_NAMES)
    if exact is not None:
        col = df[exact]
        dup = col[col.duplicated(keep=False)]
        if len(dup) or col.isna().any():
            raise AreaDataError(
                f"{source}: id column {exact!r} (detected) has "
                + (
                    f"duplicate ids: {sorted(map(str, dup.unique()))[:10]}"
                    if len(dup)
                    else "empty values"
                )
                + "; fix the data or name another column with id_column / --id-column"
            )
        return exact
    for c in cols:
        if not c.lower().endswith(("id", "code", "zcta", "geoid10")):
            continue
        col = df[c]
        if col.notna().all() and col.is_unique and not pd.api.types.is_float_dtype(col):
            return c
    return None


def _check_geographic(
    lon: np.ndarray, lat: np.ndarray, what: str, rows: np.ndarray | None = None
) -> None:
    """Refuse longitudes/latitudes out of range, naming the rows when only some are."""
    bad = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if not bad.any():
        return
    rows = np.arange(lon.shape[0]) if rows is None else rows
    if not bad.all():
        first = int(np.flatnonzero(bad)[0])
        raise AreaDataError(
            f"{what}: {int(bad.sum())} row(s) have coordinates out of range (rows "
            f"{rows[bad][:10].tolist()}; e.g. row {int(rows[first])}: lon="
            f"{float(lon[first]):g}, lat={float(lat[first]):g}); longitude must be in "
            "-180..180 and latitude in -90..90: fix those rows"
        )
    if bad.all():
        raise CRSError(
            f"{what}: coordinates (e.g. x={float(lon.flat[0]):.1f}, y={float(lat.flat[0]):.1f}) "
            "are outside the longitude/latitude range although the CRS is geographic: the "
            "declared CRS is wrong (the data looks projected); set the right CRS"
        )


def areas_from_gdf(
    gdf: gpd.GeoDataFrame,
    *,
    id_column: str | None = None,
    point: Literal["representative", "centroid"] = "representative",
    point_columns: tuple[str, str] | None = None,
    fix_invalid: bool | None = None,
    source: str = "areas",
) -> Areas:
    """Reduce a GeoDataFrame of polygons or points to :class:`Areas`.

    Parameters
    ----------
    gdf
        Areas with a CRS.
    id_column
        Column with a unique id per area; detected when omitted (``id``, ``zcta``, ``geoid``,
        ``code``..., or a unique column ending in ``id``/``code``), else row numbers.
    point
        ``"representative"`` (inside the polygon, default) or ``"centroid"``.
    point_columns
        ``(lon_column, lat_column)`` holding the point to use instead (WGS84 degrees).
    fix_invalid
        Invalid polygons: ``None`` (default) repairs them with ``shapely.make_valid`` when the
        repair changes no area by more than 0.1 % (self-intersection slivers, common in real
        boundary files) and raises otherwise; ``True`` always repairs; ``False`` always raises.
    source
        Name used in error messages (e.g. the file path).
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise AreaDataError(f"{source}: expected a GeoDataFrame, got {type(gdf).__name__}")
    if len(gdf) == 0:
        raise AreaDataError(f"{source}: holds no area (0 rows)")
    if gdf.crs is None:
        raise CRSError(f"{source}: has no CRS; declare one (e.g. EPSG:4326 for lon/lat) before use")
    geom = gdf.geometry.values
    missing = shapely.is_missing(geom) | shapely.is_empty(geom)
    if missing.any() and point_columns is None:
        raise AreaDataError(
            f"{source}: {int(missing.sum())} row(s) have no geometry (rows "
            f"{np.flatnonzero(missing)[:10].tolist()})"
        )
    invalid = ~shapely.is_valid(geom) & ~missing
    if invalid.any():
        repaired = shapely.make_valid(geom[invalid])
        before = shapely.area(geom[invalid])
        after = shapely.area(repaired)
        with np.errstate(invalid="ignore", divide="ignore"):
            change = np.abs(after - before) / np.where(before > 0, before, np.nan)
        minor = bool(
            np.all(np.nan_to_num(change, nan=1.0) < _MINOR_REPAIR)
            and np.all(shapely.get_type_id(repaired) != 7)
        )  # 7 = GeometryCollection: lines/points mixed in
        if fix_invalid is False or (fix_invalid is None and not minor):
            reasons = shapely.is_valid_reason(geom[invalid][:3])
            raise AreaDataError(
                f"{source}: {int(invalid.sum())} invalid geometr(y/ies) (rows "
                f"{np.flatnonzero(invalid)[:10].tolist()}: {'; '.join(reasons)}); repair them "
                "or pass fix_invalid=True / --fix-invalid"
            )
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = repaired
        log.warning(
            "%s: repaired %d invalid geometr(y/ies) (rows %s) with make_valid",
            source,
            int(invalid.sum()),
            np.flatnonzero(invalid)[:10].tolist(),
        )
    if gdf.crs.is_geographic:
        b = gdf.geometry.bounds.to_numpy()  # per row: minx, miny, maxx, maxy
        far_x = np.where(np.abs(b[:, 0]) > np.abs(b[:, 2]), b[:, 0], b[:, 2])
        far_y = np.where(np.abs(b[:, 1]) > np.abs(b[:, 3]), b[:, 1], b[:, 3])
        ok = np.isfinite(far_x) & np.isfinite(far_y)
        _check_geographic(far_x[ok], far_y[ok], source, np.flatnonzero(ok))
    g4326 = gdf.to_crs("EPSG:4326") if not gdf.crs.equals("EPSG:4326") else gdf

    if id_column is not None:
        if id_column not in gdf.columns:
            raise AreaDataError(
                f"{source}: id column {id_column!r} not found; columns are "
                f"{[c for c in gdf.columns if c != gdf.geometry.name]}"
            )
        col = gdf[id_column]
        if col.isna().any():
            raise AreaDataError(
                f"{source}: id column {id_column!r} is empty in rows "
                f"{np.flatnonzero(col.isna().to_numpy())[:10].tolist()}"
            )
        dup = col[col.duplicated(keep=False)]
        if len(dup):
            raise AreaDataError(
                f"{source}: id column {id_column!r} has duplicate ids: "
                f"{sorted(map(str, dup.unique()))[:10]}"
            )
        ids = col.to_numpy()
    else:
        id_column = _detect_id(gdf, source)
        if id_column is None:
            log.info("%s: no unique id column found; using row numbers as ids", source)
            ids = np.arange(len(gdf))
        else:
            ids = gdf[id_column].to_numpy()

    if point_columns is not None:
        lon_c, lat_c = point_columns
        for c in point_columns:
            if c not in gdf.columns:
                raise AreaDataError(f"{source}: point column {c!r} not found")
        lon = pd.to_numeric(gdf[lon_c], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(gdf[lat_c], errors="coerce").to_numpy(float)
        fin = np.isfinite(lon) & np.isfinite(lat)
        _check_geographic(lon[fin], lat[fin], source, np.flatnonzero(fin))
    else:
        g = g4326.geometry.values
        if point == "centroid":
            # centroid in a local projection, then back to degrees
            proj = gdf.to_crs(gdf.estimate_utm_crs())
            pts = gpd.GeoSeries(proj.geometry.centroid, crs=proj.crs).to_crs("EPSG:4326").values
        elif point == "representative":
            pts = shapely.point_on_surface(g)
        else:
            raise AreaDataError(f"point must be 'representative' or 'centroid', got {point!r}")
        lon, lat = shapely.get_x(pts), shapely.get_y(pts)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        raise AreaDataError(
            f"{source}: {int(bad.sum())} area(s) have no usable point (rows "
            f"{np.flatnonzero(bad)[:10].tolist()})"
        )
    return Areas(
        ids=np.asarray(ids),
        lon=np.asarray(lon, float),
        lat=np.asarray(lat, float),
        id_column=id_column,
        gdf=g4326,
    )


def read_areas(
    path: str | os.PathLike[str],
    *,
    id_column: str | None = None,
    lon_column: str | None = None,
    lat_column: str | None = None,
    layer: str | None = None,
    crs: Any = None,
    point: Literal["representative", "centroid"] = "representative",
    fix_invalid: bool | None = None,
    what: str = "areas",
) -> Areas:
    """Read basic areas from any file geopandas reads (GeoPackage, GeoJSON, Shapefile,
    Parquet, ...) or a CSV with lon/lat columns.

    Parameters
    ----------
    path
        The file.
    id_column
        Id column (detected when omitted).
    lon_column, lat_column
        Point columns (degrees); for CSV they are detected (``lon``/``lng``/``longitude``/``x``
        and ``lat``/``latitude``/``y``) when omitted. For a GIS file they replace the
        polygon's point.
    layer
        Layer of a multi-layer file (GeoPackage).
    crs
        CRS to assume for a file that declares none (never overrides a declared CRS).
    point, fix_invalid
        See :func:`areas_from_gdf`.
    what
        What the file is, for messages (``"areas"``, ``"centers"``, or the CLI option such
        as ``"--to"``).

    Raises
    ------
    AreaDataError, CRSError
    """
    p = Path(path)
    if not p.is_file():
        kind = "a folder, not a file" if p.is_dir() else "not found"
        raise AreaDataError(f"{what} file {kind}: {p}")
    if p.stat().st_size == 0:
        raise AreaDataError(f"{what} file is empty: {p}")
    if p.suffix.lower() in {".csv", ".txt", ".tsv"}:
        try:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        except Exception as exc:  # pandas parser errors
            raise AreaDataError(f"cannot read {p} as CSV: {exc}") from None
        if len(df) == 0:
            raise AreaDataError(f"{p}: holds no area (0 rows)")
        cols = list(df.columns)
        lon_c = lon_column or _find_column(cols, _LON_NAMES)
        lat_c = lat_column or _find_column(cols, _LAT_NAMES)
        if lon_c is None or lat_c is None or lon_c not in cols or lat_c not in cols:
            raise AreaDataError(
                f"{p}: no longitude/latitude columns found (looked for {_LON_NAMES} and "
                f"{_LAT_NAMES}; columns are {cols}); name them with --lon-column/--lat-column"
            )
        lon = pd.to_numeric(df[lon_c], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(df[lat_c], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            raise AreaDataError(
                f"{p}: {int(bad.sum())} row(s) have missing or non-numeric coordinates in "
                f"{lon_c!r}/{lat_c!r} (rows {np.flatnonzero(bad)[:10].tolist()})"
            )
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs=crs or "EPSG:4326")
        return areas_from_gdf(gdf, id_column=id_column, source=str(p))
    try:
        gdf = (
            gpd.read_parquet(p) if p.suffix.lower() == ".parquet" else gpd.read_file(p, layer=layer)
        )
    except Exception as exc:  # pyogrio/fiona/arrow errors: unreadable file
        raise AreaDataError(f"cannot read {p} as a GIS file: {exc}") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise AreaDataError(f"{p}: has no geometry column")
    if gdf.crs is None and crs is not None:
        gdf = gdf.set_crs(crs)
    point_columns = (lon_column, lat_column) if lon_column and lat_column else None
    return areas_from_gdf(
        gdf,
        id_column=id_column,
        point=point,
        point_columns=point_columns,
        fix_invalid=fix_invalid,
        source=str(p),
    )
