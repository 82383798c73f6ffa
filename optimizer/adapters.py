"""Adapters at the edge: GeoDataFrames in, :class:`TerritoryProblem` out, and back.

The solvers work on arrays; these helpers convert once at the boundary (spopt's
``from_geodataframe`` is the model). They never import :mod:`roadnet`: a drive-time matrix
comes in as an array (``cost=``) with its rows and columns in the GeoDataFrame's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from optimizer.exceptions import InputError
from optimizer.problem import TerritoryProblem
from optimizer.solution import Solution

__all__ = ["measures_from_gdf", "problem_from_gdf", "solution_to_gdf"]


def measures_from_gdf(gdf: pd.DataFrame, measures: Sequence[str]) -> np.ndarray:
    """``(n, m)`` activity measures from columns; ``"count"`` means 1 per area.

    Raises
    ------
    InputError
        Naming a missing column or one with missing, negative or non-numeric values.
    """
    if not measures:
        raise InputError("give at least one activity measure (a numeric column or 'count')")
    cols = []
    for name in measures:
        if name == "count" and "count" not in gdf.columns:
            cols.append(np.ones(len(gdf)))
            continue
        if name not in gdf.columns:
            avail = [c for c in gdf.columns if c != getattr(gdf, "geometry", pd.Series()).name]
            raise InputError(f"measure column {name!r} not found; columns are {avail}")
        vals = pd.to_numeric(gdf[name], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            raise InputError(
                f"measure {name!r} has missing, negative or non-numeric values in rows "
                f"{np.flatnonzero(bad)[:10].tolist()}"
            )
        cols.append(vals)
    return np.column_stack(cols)


def _planar(gdf: gpd.GeoDataFrame) -> np.ndarray:
    if gdf.crs is None:
        raise InputError("the areas have no CRS; set one before building a problem")
    proj = gdf if not gdf.crs.is_geographic else gdf.to_crs(gdf.estimate_utm_crs())
    pts = shapely.point_on_surface(proj.geometry.values)
    return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])


def problem_from_gdf(
    gdf: gpd.GeoDataFrame,
    measures: Sequence[str],
    p: int,
    *,
    cost: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    tolerance: Any = 0.05,
    capacity: np.ndarray | float | None = None,
) -> TerritoryProblem:
    """A problem on basic areas: straight lines (projected metres) unless ``cost`` is given.

    Parameters
    ----------
    gdf
        The areas (polygons or points) with a CRS.
    measures
        Activity measure columns (``"count"`` = 1 per area).
    p
        Number of territories.
    cost
        Optional ``(n_candidates, n)`` cost matrix (e.g. drive seconds) in ``gdf`` order.
    candidates, tolerance, capacity
        As for :meth:`TerritoryProblem.from_cost_matrix`.
    """
    w = measures_from_gdf(gdf, measures)
    xy = _planar(gdf)
    if cost is None:
        return TerritoryProblem.from_points(
            xy, w, p, tolerance=tolerance, capacity=capacity, measure_names=tuple(measures)
        )
    return TerritoryProblem.from_cost_matrix(
        cost,
        w,
        p,
        tolerance=tolerance,
        candidates=candidates,
        capacity=capacity,
        measure_names=tuple(measures),
        coords=xy,
    )


def solution_to_gdf(
    gdf: gpd.GeoDataFrame,
    solution: Solution,
    problem: TerritoryProblem,
    *,
    territory_column: str = "territory",
    labels: Sequence[Any] | None = None,
) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with the territory of each area and an ``is_center`` flag.

    ``labels`` names the territories (default ``1..p``).
    """
    if len(gdf) != solution.assignment.shape[0]:
        raise InputError("the GeoDataFrame and the solution have different numbers of areas")
    names = list(labels) if labels is not None else list(range(1, solution.p + 1))
    out = gdf.copy()
    out[territory_column] = [names[t] for t in solution.assignment]
    is_center = np.zeros(len(gdf), bool)
    center_areas = problem.candidates[solution.centers]
    is_center[center_areas[center_areas >= 0]] = True
    out["is_center"] = is_center
    return out
