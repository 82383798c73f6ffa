"""Drive-time territory design: basic areas + road graph -> optimizer -> territories.

The glue between the three packages: the areas' representative points are snapped to the
roads, the square drive-time matrix between them comes from the cache (or is computed and
cached), and :func:`optimizer.solve` designs the territories on it. Without a graph the same
runs on straight lines (projected metres), the classic mode of commercial tools.

Every area may host a center; the cost of serving area ``v`` from center ``j`` is the drive
time from ``j`` to ``v`` (reps drive out from their base), weighted by the first activity
measure in the objective.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

import optimizer
from optimizer.validation import check_p, check_time_limit
from roadnet.areas import Areas, read_areas
from roadnet.exceptions import AreaDataError
from roadnet.graph import CompiledGraph
from roadnet.settings import check_n_jobs
from territory.outputs import to_jsonable

__all__ = [
    "CONTIGUITY",
    "TerritoryResult",
    "aggregate_accounts",
    "check_p",
    "design_territories",
    "measures_from_table",
    "resolve_contiguity",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TerritoryResult:
    """The outcome of :func:`design_territories`.

    Attributes
    ----------
    areas
        The input areas (EPSG:4326) with ``territory`` (1..p), ``is_center``,
        ``minutes_to_center`` (drive mode) or ``km_to_center`` (straight-line mode), and the
        aggregated account measure when accounts were given.
    summary
        One row per territory: center id, number of areas, size and relative deviation per
        measure, drive (or straight-line) statistics from the center.
    solution
        The optimizer's :class:`~optimizer.Solution` (cost, lower bound, gap, ...).
    mode
        ``"drive"`` or ``"straight-line"``.
    facts
        Run facts for reports: cache use, unmatched accounts, flagged snaps, unreachable pairs.
    """

    areas: gpd.GeoDataFrame
    summary: pd.DataFrame
    solution: optimizer.Solution
    mode: str
    facts: dict[str, Any]

    def report(self) -> dict[str, Any]:
        """JSON-friendly summary of the run."""
        return {
            "mode": self.mode,
            "solution": self.solution.to_dict(),
            "territories": json_records(self.summary),
            **self.facts,
        }


def json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (:func:`territory.outputs.to_jsonable`: inf/NaN ->
    None, numpy values -> Python values)."""
    return to_jsonable(df.to_dict(orient="records"))


def measures_from_table(gdf: pd.DataFrame, measures: Sequence[str]) -> np.ndarray:
    """``(n, m)`` activity measures from columns; ``"count"`` means 1 per area.

    Raises
    ------
    AreaDataError
        Naming a missing column or one with missing, negative or non-numeric values.
    """
    if not measures:
        raise AreaDataError("give at least one activity measure (a numeric column or 'count')")
    cols = []
    for name in measures:
        if name == "count" and "count" not in gdf.columns:
            cols.append(np.ones(len(gdf)))
            continue
        if name not in gdf.columns:
            avail = [c for c in gdf.columns if c != getattr(gdf, "geometry", pd.Series()).name]
            raise AreaDataError(f"measure column {name!r} not found; columns are {avail}")
        vals = pd.to_numeric(gdf[name], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            raise AreaDataError(
                f"measure {name!r} has missing, negative or non-numeric values in rows "
                f"{np.flatnonzero(bad)[:10].tolist()}"
            )
        cols.append(vals)
    return np.column_stack(cols)


def aggregate_accounts(
    areas: Areas,
    accounts: str | Path | gpd.GeoDataFrame,
    measure: str | None = None,
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Sum account points into the areas that contain them (eSpatial's "Accounts").

    Parameters
    ----------
    areas
        The basic areas (polygons).
    accounts
        Point file or GeoDataFrame.
    measure
        Numeric column to sum; ``None`` counts the points.

    Returns
    -------
    tuple of (ndarray, GeoDataFrame)
        Per-area totals, and the accounts that fell in no area (reported, never dropped
        silently).
    """
    pts = (
        accounts
        if isinstance(accounts, gpd.GeoDataFrame)
        else read_areas(accounts, what="accounts").gdf
    )
    if pts.crs is None:
        raise AreaDataError("accounts have no CRS")
    pts = pts.to_crs("EPSG:4326")
    if measure is not None and measure not in pts.columns:
        raise AreaDataError(
            f"accounts measure column {measure!r} not found; columns are "
            f"{[c for c in pts.columns if c != pts.geometry.name]}"
        )
    geom_types = set(areas.gdf.geometry.geom_type.unique())
    if not geom_types & {"Polygon", "MultiPolygon"}:
        raise AreaDataError("accounts can only be aggregated into polygon areas")
    poly = areas.gdf[[areas.gdf.geometry.name]].reset_index(drop=True)
    poly["_area_pos"] = np.arange(len(poly))
    joined = gpd.sjoin(pts.reset_index(drop=True), poly, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    matched = joined["_area_pos"].notna().to_numpy()
    values = (
        pd.to_numeric(joined[measure], errors="coerce").fillna(0.0).to_numpy(float)
        if measure
        else np.ones(len(joined))
    )
    totals = np.zeros(len(areas))
    np.add.at(totals, joined.loc[matched, "_area_pos"].to_numpy(int), values[matched])
    unmatched = pts.iloc[np.flatnonzero(~matched)]
    if len(unmatched):
        log.info("%d of %d account(s) lie in no area", len(unmatched), len(pts))
    return totals, unmatched


def design_territories(
    areas: Areas,
    measures: Sequence[str],
    p: int,
    *,
    graph: CompiledGraph | None = None,
    tolerance: float = 0.05,
    method: str = "la",
    seed: int = 0,
    accounts: str | Path | gpd.GeoDataFrame | None = None,
    accounts_measure: str | None = None,
    max_snap_m: float | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    solver_options: dict[str, Any] | None = None,
    centers: str | Path | gpd.GeoDataFrame | None = None,
    center_id_column: str | None = None,
    share_column: str | None = None,
    capacity_column: str | None = None,
    locked_column: str | None = None,
    forbidden_column: str | None = None,
    contiguity: str = "auto",
    improve: bool = True,
    existing_column: str | None = None,
    disruption: float = 1.0,
    time_limit: float = 10.0,
    polish_time_limit: float = 20.0,
) -> TerritoryResult:
    """Design ``p`` balanced, compact territories from basic areas.

    Parameters
    ----------
    areas
        The basic areas (ids, points, polygons).
    measures
        Activity measures: numeric columns, ``"count"`` (each area counts 1) or
        ``"accounts"`` (the aggregated accounts).
    p
        Number of territories.
    graph
        Road graph for drive times; ``None`` = straight lines.
    tolerance
        Allowed relative deviation of each territory's size from the mean.
    method
        Optimizer method (see :data:`optimizer.METHODS`).
    seed
        Random seed (deterministic results for a seed).
    accounts, accounts_measure
        Account points aggregated into the areas as measure ``"accounts"``.
    max_snap_m, n_jobs, progress
        Snapping limit, matrix workers and progress callback.
    solver_options
        Extra options for the solver.
    centers
        Anchored territory centers (reps' homes, offices): points (file or GeoDataFrame) that
        need not be areas; drive times run from each center to every area. With fewer centers
        than ``p`` the optimizer chooses the others among the areas.
    center_id_column, share_column, capacity_column
        Columns of ``centers``: id (default detected), target share of the total (e.g. 0.5
        for a part-time rep), capacity (upper bound of the first measure; needs all p
        centers given).
    locked_column
        Column of the areas holding the center id an area is locked to (empty = free). With
        ``existing_column``: a non-empty entry keeps the area in its existing territory (with
        ``centers``, the entry must be that territory's center id).
    forbidden_column
        Boolean column of the areas: true where an area may not host a center.
    contiguity
        ``"auto"`` (default: ``"road"`` with a graph, ``"polygon"`` on straight lines,
        ``"none"`` for point areas), ``"none"``, ``"polygon"`` (territories connected
        through shared borders) or ``"road"`` (through borders a road crosses,
        :func:`roadnet.adjacency.road_adjacency`: a river without a bridge separates).
    improve
        Run the tabu local search (:mod:`optimizer.local`) after the constructive solver.
    existing_column
        Column with the current territory of each area: rebalance (same ``p``), consolidate
        (smaller) or expand (larger) it, trading moved areas against drive time
        (:mod:`optimizer.scenarios`). With ``centers``, each center's id must be the label of
        the existing territory it serves: that territory is rebalanced around its fixed
        center; territories without a given center get their 1-median (which may move).
    disruption
        Weight of moved areas against drive time and balance (with ``existing_column``;
        :mod:`optimizer.scenarios`: 1 prices a move like serving the area one average trip
        farther away).
    time_limit
        Seconds for the local search.
    polish_time_limit
        Seconds for the polish after the local search (:func:`optimizer.polish.polish`: the
        exact MIP started from the plan up to :data:`optimizer.polish.EXACT_MAX_N` areas,
        with contiguity the contiguous MIP up to :data:`optimizer.polish.CONTIGUOUS_MAX_N`
        areas, a MIP restricted to the neighbourhood of the plan beyond) and for the bound
        that certifies the result (``solution.optimality_gap``); 0 skips both.
    """
    measures = [measures] if isinstance(measures, str) else list(measures)
    p = check_p(p, len(areas), name="p")  # the one validator of p (optimizer.validation)
    time_limit = float(check_time_limit(time_limit, allow_none=False) or 0.0)
    n_jobs = check_n_jobs(n_jobs)
    gdf = areas.gdf.copy()
    facts: dict[str, Any] = {"n_areas": len(areas)}
    weights = _weights(gdf, areas, measures, accounts, accounts_measure, facts)
    anchors = _anchors(centers, center_id_column, share_column, capacity_column)
    k = 0 if anchors is None else len(anchors.ids)
    if k > p:
        raise AreaDataError(f"{k} centers were given but only p = {p} territories")
    costs = _costs(areas, gdf, graph, anchors, p, max_snap_m, n_jobs, progress, facts)
    problem, options = _problem(
        gdf, weights, measures, p, tolerance, costs, anchors, solver_options,
        locked_column=None if existing_column is not None else locked_column,
        forbidden_column=forbidden_column,
    )  # fmt: skip
    if anchors is not None and method not in ("la", "la-assignmax", "la-mindist"):
        raise AreaDataError(f"method {method!r} cannot use given centers; use la")
    contiguity = resolve_contiguity(contiguity, gdf, graph, facts)
    adjacency = None if contiguity == "none" else _adjacency(gdf, contiguity, graph)
    scenario = None
    old_labels: list[Any] = []
    if existing_column is not None:
        solution, scenario, old_labels = _run_existing(
            gdf,
            existing_column,
            problem,
            adjacency=adjacency,
            contiguous=contiguity != "none",
            disruption=disruption,
            seed=seed,
            time_limit=time_limit,
            anchors=anchors,
            locked_column=locked_column,
            allowed_centers=options.get("allowed_centers"),
        )
        facts["scenario"] = scenario.to_dict(problem.weights[:, 0])
    else:
        # the bound on the whole problem comes once, at the end (polish)
        solution = optimizer.solve(problem, method, seed=seed, bound="none", **options)
        if improve or contiguity != "none":
            solution = _improve(
                problem, solution, adjacency, contiguity != "none", options, seed, time_limit
            )
        if polish_time_limit > 0:
            from optimizer.polish import polish

            solution = polish(
                problem,
                solution,
                time_limit=polish_time_limit,
                adjacency=adjacency,
                require_contiguity=contiguity != "none",
                fixed_centers=options.get("fixed_centers"),
                allowed_centers=options.get("allowed_centers"),
                locked=options.get("locked"),
                exact_max_n=polish_exact_max_n(method, improve),
            )
    if adjacency is not None:
        from optimizer.contiguity import is_contiguous

        facts["contiguous"] = bool(is_contiguous(adjacency, solution.assignment, p))
    labels = _territory_labels(solution, anchors, k, scenario, old_labels, p)
    gdf, col = _result_columns(
        gdf, areas, problem, solution, labels, costs, existing_column, scenario, facts
    )
    center_ids = [
        str(anchors.ids[c]) if anchors is not None and c < k else areas.ids[problem.candidates[c]]
        for c in solution.centers
    ]
    summary = _summary(gdf, problem, solution, measures, col, list(labels), center_ids)
    facts["unit"] = "minutes" if costs.mode == "drive" else "km"
    return TerritoryResult(
        areas=gdf, summary=summary, solution=solution, mode=costs.mode, facts=facts
    )


CONTIGUITY = ("auto", "none", "polygon", "road")
"""Contiguity choices: ``auto`` = ``road`` with a road graph, ``polygon`` on straight lines
(``none`` when the areas are points)."""


def resolve_contiguity(
    contiguity: str, gdf: gpd.GeoDataFrame, graph: CompiledGraph | None, facts: dict[str, Any]
) -> str:
    """The contiguity rule to apply: ``contiguity`` with ``"auto"`` resolved."""
    if contiguity not in CONTIGUITY:
        raise AreaDataError(
            f"contiguity must be one of {', '.join(CONTIGUITY)}, got {contiguity!r}"
        )
    polygons = bool(gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all())
    if contiguity == "auto":
        if not polygons:
            facts["contiguity_note"] = "areas are points: no borders, so no contiguity rule"
            contiguity = "none"
        else:
            contiguity = "road" if graph is not None else "polygon"
    elif contiguity != "none" and not polygons:
        raise AreaDataError(
            f"contiguity {contiguity!r} needs polygon areas (the areas are points); "
            "use contiguity 'none'"
        )
    facts["contiguity"] = contiguity
    return contiguity


def _weights(
    gdf: gpd.GeoDataFrame,
    areas: Areas,
    measures: list[str],
    accounts: Any,
    accounts_measure: str | None,
    facts: dict[str, Any],
) -> np.ndarray:
    """The ``(n, m)`` activity measures (accounts aggregated into ``gdf`` first)."""
    if accounts is not None:
        totals, unmatched = aggregate_accounts(areas, accounts, accounts_measure)
        gdf["accounts"] = totals
        facts["accounts_unmatched"] = len(unmatched)
        facts["accounts_in_areas"] = float(totals.sum())
    if "accounts" in measures and "accounts" not in gdf.columns:
        raise AreaDataError("measure 'accounts' needs an accounts file (--accounts)")
    return measures_from_table(gdf, measures)


@dataclasses.dataclass
class _Costs:
    """The cost matrix of a run and what it is measured in."""

    mode: str
    cost: Any
    unit: float  # cost units per reported unit (60 s per minute, 1000 m per km)
    xy: np.ndarray  # projected area points
    cxy: np.ndarray | None  # projected anchored centers
    with_areas: bool  # areas are center candidates (fewer anchors than p)


def _costs(
    areas: Areas,
    gdf: gpd.GeoDataFrame,
    graph: CompiledGraph | None,
    anchors: _Anchors | None,
    p: int,
    max_snap_m: float | None,
    n_jobs: int | None,
    progress: Callable[[int, int], None] | None,
    facts: dict[str, Any],
) -> _Costs:
    """Drive times (or straight lines) from every candidate center to every area."""
    k = 0 if anchors is None else len(anchors.ids)
    utm = gdf.estimate_utm_crs()
    pts = gpd.GeoSeries(gpd.points_from_xy(areas.lon, areas.lat), crs="EPSG:4326").to_crs(utm)
    xy = np.column_stack([pts.x, pts.y])
    cxy = None
    if anchors is not None:
        cpts = gpd.GeoSeries(gpd.points_from_xy(anchors.lon, anchors.lat), crs="EPSG:4326")
        cpts = cpts.to_crs(utm)
        cxy = np.column_stack([cpts.x, cpts.y])
    # candidates: the anchored centers first, then (when the optimizer chooses some) the areas
    with_areas = k < p
    if graph is None:
        from optimizer.problem import EuclideanCost

        cand_xy = xy if cxy is None else (np.vstack([cxy, xy]) if with_areas else cxy)
        return _Costs("straight-line", EuclideanCost(cand_xy, xy), 1000.0, xy, cxy, with_areas)
    from optimizer.problem import CostMatrix
    from roadnet.cached import cached_drive_time_matrix
    from roadnet.snap import snap_points

    snapped = snap_points(graph, areas.lon, areas.lat, max_distance_m=max_snap_m)
    facts["far_snaps"] = [str(areas.ids[i]) for i in np.flatnonzero(snapped.flagged)]
    blocks = []
    if anchors is not None:
        cs = snap_points(graph, anchors.lon, anchors.lat, max_distance_m=max_snap_m)
        facts["far_center_snaps"] = [str(anchors.ids[i]) for i in np.flatnonzero(cs.flagged)]
        cm, rep = cached_drive_time_matrix(graph, cs, snapped, n_jobs=n_jobs, progress=progress)
        blocks.append(cm.seconds)
        facts["center_matrix"] = rep.describe()
    if with_areas:
        matrix, cache_report = cached_drive_time_matrix(
            graph, snapped, n_jobs=n_jobs, progress=progress
        )
        facts["matrix"] = cache_report.describe()
        facts["unreachable_pairs"] = int(matrix.unreachable().shape[0])
        blocks.append(matrix.seconds)
    cost = CostMatrix(np.vstack(blocks) if len(blocks) > 1 else blocks[0])
    return _Costs("drive", cost, 60.0, xy, cxy, with_areas)


def _problem(
    gdf: gpd.GeoDataFrame,
    weights: np.ndarray,
    measures: list[str],
    p: int,
    tolerance: Any,
    costs: _Costs,
    anchors: _Anchors | None,
    solver_options: dict[str, Any] | None,
    *,
    locked_column: str | None,
    forbidden_column: str | None,
) -> tuple[optimizer.TerritoryProblem, dict[str, Any]]:
    """The optimizer's problem and the solver options for anchors, locks and forbidden areas."""
    from optimizer.tolerance import parse_tolerance

    k = 0 if anchors is None else len(anchors.ids)
    n = len(gdf)
    area_cands = np.arange(n) if costs.with_areas else np.zeros(0, dtype=np.int64)
    candidates = np.concatenate([np.full(k, -1, dtype=np.int64), area_cands])
    nc = candidates.shape[0]
    share = None
    if anchors is not None and anchors.share is not None:
        share = np.full(nc, np.nan)
        share[:k] = anchors.share
    capacity = None
    if anchors is not None and anchors.capacity is not None:
        if costs.with_areas:
            raise AreaDataError("capacities need every center given (p = number of centers)")
        capacity = anchors.capacity
    cand_coords = None
    if costs.cxy is not None:
        cand_coords = np.full((nc, 2), np.nan)
        cand_coords[:k] = costs.cxy
    lo, hi = parse_tolerance(tolerance, weights.shape[1])
    problem = optimizer.TerritoryProblem(
        weights=weights,
        p=p,
        cost=costs.cost,
        candidates=candidates,
        tol_lower=lo,
        tol_upper=hi,
        capacity=capacity,
        measure_names=tuple(measures),
        coords=costs.xy,
        target_share=share,
        candidate_coords=cand_coords,
    )
    options = dict(solver_options or {})
    if anchors is not None:
        options["fixed_centers"] = np.arange(k)
    if locked_column is not None:
        options["locked"] = _locked(gdf, locked_column, anchors)
    if forbidden_column is not None:
        if forbidden_column not in gdf.columns:
            raise AreaDataError(f"forbidden column {forbidden_column!r} not found in the areas")
        allowed = np.ones(nc, bool)
        if costs.with_areas:
            allowed[k:] = ~gdf[forbidden_column].fillna(False).astype(bool).to_numpy()
        options["allowed_centers"] = allowed
    return problem, options


def _territory_labels(
    solution: optimizer.Solution,
    anchors: _Anchors | None,
    k: int,
    scenario: Any,
    old_labels: list[Any],
    p: int,
) -> np.ndarray:
    """Territory names: 1..p; the anchored center's id; the existing label in a scenario."""
    if anchors is None and scenario is None:
        return np.arange(1, p + 1)
    label = np.array(
        [str(anchors.ids[c]) if anchors is not None and c < k else None for c in solution.centers],
        dtype=object,
    )
    if scenario is not None:  # continuing territories keep their names
        label = np.array([old_labels[o] if o >= 0 else None for o in scenario.origin], dtype=object)
    free = [i for i, v in enumerate(label) if v is None]
    for n_new, i in enumerate(free, start=1):
        label[i] = f"new-{n_new}"
    return label


def _result_columns(
    gdf: gpd.GeoDataFrame,
    areas: Areas,
    problem: optimizer.TerritoryProblem,
    solution: optimizer.Solution,
    labels: np.ndarray,
    costs: _Costs,
    existing_column: str | None,
    scenario: Any,
    facts: dict[str, Any],
) -> tuple[gpd.GeoDataFrame, str]:
    """Add the result columns; a user column of the same name is kept under another name."""
    col = "minutes_to_center" if costs.mode == "drive" else "km_to_center"
    dist = np.empty(problem.n)
    for t in range(problem.p):
        members = np.flatnonzero(solution.assignment == t)
        dist[members] = problem.cost.block(solution.centers[t : t + 1], members)[0]
    is_center = np.zeros(problem.n, bool)
    ca = problem.candidates[solution.centers]
    is_center[ca[ca >= 0]] = True
    new: dict[str, Any] = {
        "territory": labels[solution.assignment],
        "is_center": is_center,
        col: dist / costs.unit,
    }
    if existing_column is not None:
        before = gdf[existing_column].to_numpy()
        new["territory_before"] = before
        new["moved"] = np.array(
            [_key(a) != _key(b) for a, b in zip(before, new["territory"], strict=True)]
        )
    renamed = {}
    for name in new:
        if name in gdf.columns and name != existing_column:
            alt = f"{name}_input"
            i = 2
            while alt in gdf.columns:
                alt, i = f"{name}_input{i}", i + 1
            renamed[name] = alt
    if renamed:
        gdf = gdf.rename(columns=renamed)
        facts["renamed_columns"] = renamed
    if existing_column in new:  # e.g. rebalancing the column "territory": now territory_before
        facts["replaced_column"] = existing_column
    for name, values in new.items():
        gdf[name] = values
    if solution.details.get("unreachable_areas"):
        facts["unreachable_areas"] = [
            str(areas.ids[v]) for v in solution.details["unreachable_areas"]
        ]
    return gdf, col


def _adjacency(gdf: gpd.GeoDataFrame, contiguity: str, graph: CompiledGraph | None) -> Any:
    from roadnet.adjacency import polygon_adjacency, road_adjacency

    adj = polygon_adjacency(gdf)
    if contiguity == "road":
        if graph is None:
            raise AreaDataError("road contiguity needs a road graph (not --straight-line)")
        adj = road_adjacency(adj, graph, gdf)
    return adj


def _improve(
    problem: optimizer.TerritoryProblem,
    solution: optimizer.Solution,
    adjacency: Any,
    contiguous: bool,
    options: dict[str, Any],
    seed: int,
    time_limit: float,
) -> optimizer.Solution:
    """Tabu local search after the constructive solver, keeping its certificate honest."""
    from optimizer.local import local_search

    locked = options.get("locked")
    fixed = options.get("fixed_centers")
    res = local_search(
        problem,
        solution.assignment,
        solution.centers,
        adjacency=adjacency,
        require_contiguity=contiguous,
        locked=None if locked is None else np.asarray(locked) >= 0,
        fixed_centers=None if fixed is None else np.isin(solution.centers, fixed),
        allowed_centers=options.get("allowed_centers"),
        time_limit=time_limit,
        seed=seed,
    )
    improved = optimizer.evaluate(
        problem,
        res.assignment,
        res.centers,
        method=solution.method + "+local-search",
        seed=seed,
        iterations=solution.iterations + res.iterations,
        seconds=solution.seconds + res.seconds,
        details={
            **solution.details,
            "local_search": {
                "moves": res.moves,
                "swaps": res.swaps,
                "stopped": res.stopped,
                "objective_before": res.objective_before,
                "objective_after": res.objective_after,
            },
        },
    )
    # a bound on the whole problem holds for any plan; the allocation bound of the
    # constructive run holds for its centers only: keep it only if they did not move
    keep_alloc = solution.allocation_bound is not None and np.array_equal(
        np.sort(res.centers), np.sort(solution.centers)
    )
    if solution.lower_bound is not None or keep_alloc:
        improved = optimizer.evaluate(
            problem,
            res.assignment,
            res.centers,
            lower_bound=solution.lower_bound,
            bound_source=solution.bound_source,
            bound_relaxes=solution.bound_relaxes,
            allocation_bound=solution.allocation_bound if keep_alloc else None,
            method=improved.method,
            seed=seed,
            iterations=improved.iterations,
            seconds=improved.seconds,
            details=improved.details,
        )
    return improved


def polish_exact_max_n(method: str, improve: bool) -> int:
    """Largest ``n`` for the polishing MIP: the default (``optimizer.polish.EXACT_MAX_N``),
    0 after the exact method itself (nothing to polish) or without ``improve``."""
    from optimizer.polish import EXACT_MAX_N

    return 0 if method == "exact" or not improve else EXACT_MAX_N


def _run_existing(
    gdf: gpd.GeoDataFrame,
    column: str,
    problem: optimizer.TerritoryProblem,
    *,
    adjacency: Any,
    contiguous: bool,
    disruption: float,
    seed: int,
    time_limit: float,
    anchors: _Anchors | None,
    locked_column: str | None,
    allowed_centers: np.ndarray | None,
) -> tuple[Any, Any, list[Any]]:
    """Run the scenario on the existing alignment in ``column``.

    With anchored centers, a center belongs to the existing territory whose label equals its
    id; that territory keeps it fixed, the others start at their 1-median and may relocate.
    With ``locked_column``, a non-empty entry keeps the area in its existing territory (with
    centers, the entry must be that territory's center id).
    """
    from optimizer.scenarios import run_scenario

    if column not in gdf.columns:
        raise AreaDataError(f"existing territory column {column!r} not found")
    values = gdf[column]
    if values.isna().any():
        raise AreaDataError(
            f"existing territory column {column!r} is empty for rows "
            f"{np.flatnonzero(values.isna().to_numpy())[:10].tolist()}"
        )
    codes, uniques = pd.factorize(values, sort=True)
    labels = [v.item() if isinstance(v, np.generic) else v for v in uniques]
    keys = [_key(v) for v in labels]
    big_p = len(labels)
    centers = fixed = None
    if anchors is not None:
        pos = {key: t for t, key in enumerate(keys)}
        unknown = [str(c) for c in anchors.ids if str(c) not in pos]
        if unknown:
            raise AreaDataError(
                f"centers {unknown[:10]} match no existing territory of column {column!r} "
                f"(territories: {keys[:10]}): with --existing-column each center's id must "
                "be the label of the territory it serves"
            )
        centers = np.zeros(big_p, dtype=np.int64)
        fixed = np.zeros(big_p, dtype=bool)
        for j, cid in enumerate(anchors.ids):
            centers[pos[str(cid)]] = j
            fixed[pos[str(cid)]] = True
        if not fixed.all() and not np.any(problem.candidates >= 0):
            raise AreaDataError(
                "every existing territory needs a center when p = number of centers"
            )
    locked = None
    if locked_column is not None:
        if locked_column not in gdf.columns:
            raise AreaDataError(f"locked column {locked_column!r} not found in the areas")
        entries = gdf[locked_column].tolist()
        locked = np.zeros(len(gdf), dtype=bool)
        for v, val in enumerate(entries):
            if val is None or (isinstance(val, float) and np.isnan(val)) or str(val) == "":
                continue
            if anchors is not None and _key(val) != keys[codes[v]]:
                raise AreaDataError(
                    f"area row {v} is locked to center {val!r} but lies in existing territory "
                    f"{keys[codes[v]]!r}: with --existing-column a locked area keeps its "
                    "territory"
                )
            locked[v] = True
    res = run_scenario(
        problem,
        codes,
        centers=centers,
        fixed_centers=fixed,
        allowed_centers=allowed_centers,
        adjacency=adjacency,
        require_contiguity=contiguous,
        locked=locked,
        disruption=disruption,
        time_limit=time_limit,
        seed=seed,
    )
    return res.solution, res, labels


def _key(value: Any) -> str:
    """A label or id as text (``3.0`` from a float column reads as ``"3"``)."""
    if isinstance(value, float) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclasses.dataclass
class _Anchors:
    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    share: np.ndarray | None
    capacity: np.ndarray | None


def _anchors(
    centers: Any, id_column: str | None, share_column: str | None, capacity_column: str | None
) -> _Anchors | None:
    if centers is None:
        return None
    if isinstance(centers, gpd.GeoDataFrame):
        from roadnet.areas import areas_from_gdf

        pts = areas_from_gdf(centers, id_column=id_column, source="centers")
    else:
        pts = read_areas(centers, id_column=id_column, what="centers")

    def column(name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        if name not in pts.gdf.columns:
            raise AreaDataError(f"centers have no column {name!r}")
        vals = pd.to_numeric(pts.gdf[name], errors="coerce").to_numpy(float)
        if name == capacity_column and (~np.isfinite(vals) | (vals <= 0)).any():
            raise AreaDataError(f"capacity column {name!r} needs a positive number per center")
        return vals

    ids = np.asarray([str(i) for i in pts.ids], dtype=object)
    return _Anchors(ids, pts.lon, pts.lat, column(share_column), column(capacity_column))


def _locked(gdf: gpd.GeoDataFrame, column: str, anchors: _Anchors | None) -> np.ndarray:
    """Candidate index each area is locked to (-1 = free)."""
    if column not in gdf.columns:
        raise AreaDataError(f"locked column {column!r} not found in the areas")
    if anchors is None:
        raise AreaDataError("locked areas need given centers (--centers) to lock them to")
    pos = {cid: i for i, cid in enumerate(anchors.ids)}
    out = np.full(len(gdf), -1, dtype=np.int64)
    for v, val in enumerate(gdf[column].tolist()):
        if val is None or (isinstance(val, float) and np.isnan(val)) or str(val) == "":
            continue
        key = _key(val)
        if key not in pos:
            raise AreaDataError(
                f"area row {v} is locked to center {val!r}, which is not among "
                f"the centers {list(pos)[:10]}"
            )
        out[v] = pos[key]
    return out


def _summary(
    gdf: gpd.GeoDataFrame,
    problem: optimizer.TerritoryProblem,
    solution: optimizer.Solution,
    measures: Sequence[str],
    col: str,
    labels: list[Any],
    center_ids: list[Any],
) -> pd.DataFrame:
    rows = []
    w0 = problem.weights[:, 0]
    for t in range(problem.p):
        members = np.flatnonzero(solution.assignment == t)
        d = gdf[col].to_numpy()[members]
        fin = np.isfinite(d)
        wt = w0[members]
        row: dict[str, Any] = {
            "territory": labels[t],
            "center_id": center_ids[t],
            "n_areas": int(members.size),
        }
        for j, name in enumerate(measures):
            row[f"{name}"] = float(solution.sizes[t, j])
            row[f"{name}_deviation"] = float(solution.deviation[t, j])
        row[f"max_{col}"] = float(d.max()) if members.size else 0.0
        row[f"mean_{col}"] = float(d[fin].mean()) if fin.any() else float("inf")
        row[f"weighted_mean_{col}"] = (
            float((d[fin] * wt[fin]).sum() / wt[fin].sum())
            if fin.any() and wt[fin].sum() > 0
            else float("nan")
        )
        row["n_unreachable"] = int((~fin).sum())
        rows.append(row)
    return pd.DataFrame(rows)
