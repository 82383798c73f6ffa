"""Run one job of :mod:`territory.service.jobs` in this process: ``python -m
territory.service.job_worker <job folder>``.

The work is the library's, unchanged: :func:`territory.pipeline.design_territories`,
:func:`territory.validate.validate_territories` and :func:`roadnet.cached.precompute_matrix`.
Areas and territories come and go as GeoJSON FeatureCollections (EPSG:4326).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from roadnet.areas import areas_from_gdf
from roadnet.cached import precompute_matrix
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import load_road_graph
from roadnet.snap import snap_points
from roadnet.speed import SpeedProfile
from territory.exceptions import OptionError
from territory.service.config import parse_idle_grace
from territory.service.jobs import IDLE_GRACE_ENV, read_json, write_json
from territory.service.priority import JOB_NICE, lower_priority

__all__ = ["JOB_NICE", "lower_priority", "main", "run_job"]


def plain(obj: Any) -> Any:
    """JSON-safe: NumPy scalars to Python, non-finite floats to ``None``."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def gdf_from_features(fc: dict[str, Any], what: str) -> gpd.GeoDataFrame:
    """A GeoDataFrame (EPSG:4326) from a GeoJSON FeatureCollection."""
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection":
        raise ValueError(f"{what} must be a GeoJSON FeatureCollection")
    return gpd.GeoDataFrame.from_features(fc["features"], crs="EPSG:4326")


class _Progress:
    def __init__(self, folder: Path, stage: str) -> None:
        self.path = folder / "progress.json"
        self.stage = stage
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last > 0.5 or done >= total:
            self.last = now
            write_json(self.path, {"stage": self.stage, "done": int(done), "total": int(total)})


def _graph(region: dict[str, Any]) -> CompiledGraph:
    profile = (
        SpeedProfile.from_file(region["speeds"]) if region.get("speeds") else SpeedProfile.default()
    )
    if region.get("pbf"):
        return load_road_graph(pbf=Path(region["pbf"]), profile=profile)[0]
    return load_road_graph(graph=Path(region["graph"]), profile=profile)[0]


def _territories(req: dict[str, Any], folder: Path, graph: CompiledGraph) -> dict[str, Any]:
    from territory.pipeline import design_territories
    from territory.validate import validate_territories

    areas = areas_from_gdf(gdf_from_features(req["areas"], "areas"), id_column=req.get("id_column"))
    centers = gdf_from_features(req["centers"], "centers") if req.get("centers") else None
    result = design_territories(
        areas,
        req.get("measures") or ["count"],
        int(req["p"]),
        graph=graph,
        tolerance=float(req.get("tolerance", 0.05)),
        method=req.get("method", "la"),
        seed=int(req.get("seed", 0)),
        centers=centers,
        center_id_column=req.get("center_id_column"),
        share_column=req.get("share_column"),
        capacity_column=req.get("capacity_column"),
        locked_column=req.get("locked_column"),
        forbidden_column=req.get("forbidden_column"),
        contiguity=req.get("contiguity", "none"),
        improve=bool(req.get("improve", True)),
        existing_column=req.get("existing_column"),
        disruption=float(req.get("disruption", 1.0)),
        time_limit=float(req.get("time_limit", 10.0)),
        n_jobs=1,
        progress=_Progress(folder, "drive times"),
    )
    _Progress(folder, "validation")(0, 1)
    measures = [m for m in (req.get("measures") or []) if m in result.areas.columns]
    report = validate_territories(
        result.areas,
        "territory",
        graph=graph,
        center_column="is_center",
        measures=measures,
        tolerance=float(req.get("tolerance", 0.05)),
        id_column=areas.id_column,
        n_jobs=1,
    )
    return {
        "territories": json.loads(result.areas.to_crs("EPSG:4326").to_json(drop_id=True)),
        "summary": plain(result.report()),
        "validation": plain(report.to_dict()),
    }


def _validate(req: dict[str, Any], folder: Path, graph: CompiledGraph) -> dict[str, Any]:
    from territory.validate import validate_territories

    _Progress(folder, "validation")(0, 1)
    gdf = gdf_from_features(req["areas"], "areas")
    centers = gdf_from_features(req["centers"], "centers") if req.get("centers") else None
    report = validate_territories(
        gdf,
        req.get("territory_column", "territory"),
        graph=graph,
        centers=centers,
        center_column=req.get("center_column"),
        measures=req.get("measures") or [],
        max_drive_s=req.get("max_drive_s"),
        tolerance=req.get("tolerance"),
        require_contiguity=bool(req.get("require_contiguity", False)),
        require_road_connected=bool(req.get("require_road_connected", False)),
        id_column=req.get("id_column"),
        n_jobs=1,
    )
    return {"validation": plain(report.to_dict())}


def _precompute(req: dict[str, Any], folder: Path, graph: CompiledGraph) -> dict[str, Any]:
    pts = np.asarray(req["points"], dtype=np.float64).reshape(-1, 2)
    snapped = snap_points(graph, pts[:, 0], pts[:, 1], warn=False)
    key, done, total = precompute_matrix(
        graph,
        snapped,
        cutoff=req.get("cutoff"),
        distances=bool(req.get("distances", False)),
        progress=_Progress(folder, "matrix rows"),
        n_jobs=1,  # as every job kind: no worker processes, which a promotion would miss
    )
    return {"cache_key": key, "blocks_computed_now": done, "blocks_total": total,
            "points": int(pts.shape[0])}  # fmt: skip


_KINDS = {"territories": _territories, "validate": _validate, "precompute": _precompute}


def _gate(folder: Path) -> None:
    """Test pause point: with ``ROADNET_JOB_GATE`` set to a folder, announce the job there and
    wait (at most 300 s) until a ``<job id>.go`` file appears."""
    gate = os.environ.get("ROADNET_JOB_GATE")
    if not gate:
        return
    (Path(gate) / f"{folder.name}.waiting").touch()
    go = Path(gate) / f"{folder.name}.go"
    deadline = time.monotonic() + 300
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_job(folder: Path) -> None:
    """Run the job in ``folder``; write ``result.json`` or ``error.txt``."""
    _gate(folder)
    record = read_json(folder / "job.json")
    req = read_json(folder / "request.json")
    graph = _graph(req["_region"])
    result = _KINDS[record["kind"]](req, folder, graph)
    write_json(folder / "result.json", plain(result))


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 when the job succeeded, 1 with ``error.txt`` when it failed.

    The process lowers its own priority first (:func:`lower_priority`): jobs run for seconds
    of CPU, and the server's tables (milliseconds each) must not wait behind them. What it
    applied goes to ``priority.json`` in the job folder, for the server (which promotes an idle
    job after its grace period, :data:`~territory.service.jobs.IDLE_GRACE_ENV`).
    """
    folder = Path((argv or sys.argv[1:])[0])
    try:  # set by the server that runs the job; a job run on its own stays idle-only
        promoted_later = parse_idle_grace(os.environ.get(IDLE_GRACE_ENV, "none")) is not None
    except OptionError:
        promoted_later = False
    applied = lower_priority(promoted_later=promoted_later)
    note = None
    if applied == "low":
        note = (
            "this user may not move a thread out of SCHED_IDLE (it needs RLIMIT_NICE >= 1 or "
            "CAP_SYS_NICE), so the job runs at nice 19 from its start instead of idle-only first"
        )
    with contextlib.suppress(OSError):  # a folder that cannot be written fails below
        write_json(folder / "priority.json", {"priority": applied, "note": note})
    try:
        run_job(folder)
    except Exception as exc:  # reported to the client through the job's state
        (folder / "error.txt").write_text(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
