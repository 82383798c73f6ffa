"""``roadnet serve``: the native API on a real server — matrices (JSON, Arrow IPC, .npz) against
the library, and jobs end to end: territories and validation reusing the pipeline, cancel, a
server restart between submitting and fetching, a crash while a job runs (interrupted;
precompute resumes), a job's CPU priority (idle-only, then nice 19 after its grace period)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

import roadnet
from roadnet.ch import Hierarchy
from roadnet.engine import EngineChoice
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import cached_hierarchy, load_road_graph
from roadnet.matrix import drive_time_matrix
from territory.service.priority import LOW_NICE, idle_is_reversible, thread_ids
from tests.conftest import shared_file
from tests.service_server import Server

JOB_TIMEOUT_S = 600.0


class Setup:
    def __init__(self, pbf: Path, cache: Path, gate: Path, graph: CompiledGraph, h: Hierarchy):
        self.pbf, self.cache, self.gate, self.graph, self.h = pbf, cache, gate, graph, h
        self.n_jobs_dirs = 0

    def server(
        self, *extra: str, jobs: Path | None = None, env: dict[str, str] | None = None
    ) -> Server:
        """A server on the shared cache; its jobs in ``jobs`` (default: a new folder)."""
        if jobs is None:
            self.n_jobs_dirs += 1
            jobs = self.cache / f"jobs-{self.n_jobs_dirs}"
        return Server(
            ["--pbf", str(self.pbf), "--jobs-dir", str(jobs), *extra],
            self.cache,
            env={"ROADNET_JOB_GATE": str(self.gate), **(env or {})},
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    cache = tmp_path_factory.mktemp("service-native-cache")
    gate = tmp_path_factory.mktemp("gate")
    with roadnet.settings.override(cache_dir=cache):
        g, _ = load_road_graph(pbf=pbf)
        h, _ = cached_hierarchy(g)
    return Setup(pbf, cache, gate, g, h)


@pytest.fixture(scope="module")
def server(setup: Setup) -> Iterator[Server]:
    s = setup.server().start()
    try:
        yield s
    finally:
        s.stop()


def _areas(n: int = 16, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(1.50, 1.58, n), rng.uniform(42.50, 42.56, n)])
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
                "properties": {"id": f"a{i}", "pop": int(rng.integers(10, 100))},
            }
            for i, (x, y) in enumerate(pts)
        ],
    }


def _release(setup: Setup, job_id: str) -> None:
    (setup.gate / f"{job_id}.go").touch()


def _wait(url: str, job_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)  # polling the job's state; no result depends on the delay
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def _wait_for_priority(url: str, job_id: str, want: str | None = None) -> dict[str, Any]:
    """The job's record once it states its priority (``want``, when given)."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        if job["priority"] is not None and want in (None, job["priority"]):
            return job
        time.sleep(0.1)  # polling the job's record; no result depends on the delay
    raise AssertionError(f"job {job_id} never stated priority {want}: {job}")


def _thread_policies(pid: int) -> set[tuple[int, int]]:
    return {
        (os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid))
        for tid in thread_ids(pid)
    }


def _promotions(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("roadnet_job_promotions_total{"):
            out[line.split('"')[1]] = float(line.split()[-1])
    return out


def _wait_gate(setup: Setup, job_id: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (setup.gate / f"{job_id}.waiting").exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)


# ------------------------------------------------------------------------------ matrix
def test_matrix_json_arrow_npz_equal_the_library(setup: Setup, server: Server) -> None:
    pts = np.array([[1.521, 42.508], [1.53, 42.50], [1.56, 42.53], [1.60, 42.55]])
    body = {
        "points": [{"id": f"p{i}", "lon": x, "lat": y} for i, (x, y) in enumerate(pts[:3])],
        "destinations": [{"id": 7, "lon": pts[3, 0], "lat": pts[3, 1]}],
        "distances": True,
    }
    lib = drive_time_matrix(
        setup.graph, pts[:3], pts[3:], distances=True, engine=EngineChoice("ch", "t", setup.h)
    )
    r = httpx.post(f"{server.url}/v1/matrix", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["origins"] == ["p0", "p1", "p2"] and out["destinations"] == [7]
    np.testing.assert_array_equal(np.array(out["seconds"], dtype=np.float32), lib.seconds)
    np.testing.assert_array_equal(np.array(out["metres"], dtype=np.float32), lib.metres)
    assert httpx.post(f"{server.url}/v1/matrix", json=body).json()["cache"] == "hit"

    arrow = httpx.post(
        f"{server.url}/v1/matrix",
        json=body,
        headers={"Accept": "application/vnd.apache.arrow.file"},
    )
    table = pa.ipc.open_file(io.BytesIO(arrow.content)).read_all()
    assert table.column("origin_id").to_pylist() == ["p0", "p1", "p2"]
    np.testing.assert_array_equal(table.column("seconds").to_numpy(), lib.seconds.ravel())

    npz = httpx.post(f"{server.url}/v1/matrix", json=body, headers={"Accept": "application/x-npz"})
    with np.load(io.BytesIO(npz.content)) as data:
        np.testing.assert_array_equal(data["seconds"], lib.seconds)
        np.testing.assert_array_equal(data["metres"], lib.metres)
        assert data["origin_ids"].tolist() == ["p0", "p1", "p2"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ('{"points": [', 400, "InvalidInput"),
        ('{"points": []}', 400, "InvalidInput"),
        ('{"points": [{"lon": 1.5, "lat": 95}]}', 400, "InvalidInput"),
        ('{"points": [{"lon": 1.5, "lat": 42.5}], "cutoff": -1}', 400, "InvalidInput"),
        ('{"points": [{"lon": 1.5, "lat": 42.5}], "colour": "red"}', 400, "InvalidInput"),
        ('{"points": [{"lon": 50.0, "lat": 10.0}]}', 400, "NoSegment"),
        ('{"points": [{"lon": 1.5, "lat": 42.5}], "region": "mars"}', 400, "InvalidUrl"),
    ],
)
def test_bad_native_requests_get_a_json_error(
    server: Server, payload: str, status: int, code: str
) -> None:
    r = httpx.post(
        f"{server.url}/v1/matrix", content=payload, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_unknown_job_is_404_json(server: Server) -> None:
    for job_id in ("0123456789abcdef", "not-a-job", "../../etc"):
        for method in ("GET", "DELETE"):
            r = httpx.request(method, f"{server.url}/v1/jobs/{job_id}")
            assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_body_over_the_limit_is_413(setup: Setup) -> None:
    s = setup.server("--max-body-mb", "0.001").start()
    try:
        body = {"points": [{"lon": 1.52, "lat": 42.51}] * 100}
        r = httpx.post(f"{s.url}/v1/matrix", json=body)
        assert r.status_code == 413 and r.json()["code"] == "TooBig"
    finally:
        s.stop()


# ------------------------------------------------------------------------------ jobs
def test_territory_job_survives_a_restart_and_equals_the_pipeline(setup: Setup) -> None:
    from roadnet.areas import areas_from_gdf
    from territory.pipeline import design_territories
    from territory.service.job_worker import gdf_from_features

    areas = _areas()
    request = {"areas": areas, "p": 3, "measures": ["pop"], "tolerance": 0.2, "improve": False}
    jobs = setup.cache / "jobs-restart"
    s = setup.server(jobs=jobs).start()
    try:
        r = httpx.post(f"{s.url}/v1/territories", json=request)
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == job["url"] == f"/v1/jobs/{job['id']}"
        assert job["state"] == "queued" and job["region"] == "andorra"
        _release(setup, job["id"])
        done = _wait(s.url, job["id"], ("succeeded", "failed"))
        assert done["state"] == "succeeded", done
    finally:
        s.stop()
    s2 = setup.server(jobs=jobs).start()  # a new server process on the same folders
    try:
        assert httpx.get(f"{s2.url}/v1/jobs/{job['id']}").json()["state"] == "succeeded"
        result = httpx.get(f"{s2.url}/v1/jobs/{job['id']}/result").json()
    finally:
        s2.stop()
    feats = result["territories"]["features"]
    got = {f["properties"]["id"]: f["properties"]["territory"] for f in feats}
    assert set(got) == {f"a{i}" for i in range(16)} and set(got.values()) == {1, 2, 3}
    assert result["summary"]["mode"] == "drive"
    assert "passed" in result["validation"] and result["validation"]["rules"]
    # the job ran the pipeline: the same call in process gives the same territories
    with roadnet.settings.override(cache_dir=setup.cache):
        lib = design_territories(
            areas_from_gdf(gdf_from_features(areas, "areas")),
            ["pop"],
            3,
            graph=setup.graph,
            tolerance=0.2,
            improve=False,
            contiguity="none",
            n_jobs=1,
        )
    want = dict(zip(lib.areas["id"], lib.areas["territory"], strict=True))
    assert got == {k: int(v) for k, v in want.items()}


def test_validate_job_reports_the_validation(setup: Setup, server: Server) -> None:
    areas = _areas(seed=1)
    for i, f in enumerate(areas["features"]):
        f["properties"]["territory"] = "east" if i % 2 else "west"
    r = httpx.post(
        f"{server.url}/v1/validate",
        json={"areas": areas, "measures": ["pop"], "tolerance": 0.5, "max_drive_s": 3600},
    )
    assert r.status_code == 202, r.text
    _release(setup, r.json()["id"])
    done = _wait(server.url, r.json()["id"], ("succeeded", "failed"))
    assert done["state"] == "succeeded", done
    report = httpx.get(f"{server.url}/v1/jobs/{done['id']}/result").json()["validation"]
    assert {t["territory"] for t in report["territories"]} == {"east", "west"}
    assert any(rule["rule"] == "max_drive" for rule in report["rules"])


def test_cancel_a_running_job(setup: Setup, server: Server) -> None:
    r = httpx.post(f"{server.url}/v1/territories", json={"areas": _areas(), "p": 2})
    job_id = r.json()["id"]
    _wait_gate(setup, job_id)  # the job process is running, held at its pause point
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}").json()["state"] == "running"
    d = httpx.delete(f"{server.url}/v1/jobs/{job_id}")
    assert d.status_code == 200 and d.json()["cancel_requested"] is True
    assert _wait(server.url, job_id, ("cancelled", "failed", "succeeded"))["state"] == "cancelled"
    r = httpx.get(f"{server.url}/v1/jobs/{job_id}/result")
    assert r.status_code == 409 and r.json()["code"] == "NoResult"
    assert httpx.delete(f"{server.url}/v1/jobs/{job_id}").json()["deleted"] is True
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}").status_code == 404


def test_crash_while_running_interrupts_a_job_and_resumes_precompute(setup: Setup) -> None:
    jobs = setup.cache / "jobs-crash"
    pts = [[1.52, 42.51], [1.53, 42.50], [1.56, 42.53]]
    s = setup.server(jobs=jobs).start()
    try:
        pre = httpx.post(f"{s.url}/v1/precompute", json={"points": pts}).json()
        terr = httpx.post(f"{s.url}/v1/territories", json={"areas": _areas(), "p": 2}).json()
        _wait_gate(setup, pre["id"])  # the precompute runs, held at its pause point
        assert httpx.get(f"{s.url}/v1/jobs/{pre['id']}").json()["state"] == "running"
    finally:
        s.kill()  # SIGKILL: no shutdown handler runs
    (setup.gate / f"{pre['id']}.waiting").unlink()
    s2 = setup.server(jobs=jobs).start()
    try:
        _wait_gate(setup, pre["id"])  # queued again and started again: it resumes
        job = httpx.get(f"{s2.url}/v1/jobs/{pre['id']}").json()
        assert job["state"] == "running" and job["resumed"] is True
        _release(setup, pre["id"])
        done = _wait(s2.url, pre["id"], ("succeeded", "failed"))
        assert done["state"] == "succeeded", done
        result = httpx.get(f"{s2.url}/v1/jobs/{pre['id']}/result").json()
        assert result["points"] == 3 and result["blocks_total"] >= 1
        metrics = httpx.get(f"{s2.url}/metrics").text
        assert 'roadnet_jobs_total{kind="precompute",state="succeeded"} 1.0' in metrics
        _wait_gate(setup, terr["id"])  # then the territory job runs ...
        assert httpx.get(f"{s2.url}/v1/jobs/{terr['id']}").json()["state"] == "running"
    finally:
        s2.kill()  # ... and the server dies under it
    s3 = setup.server(jobs=jobs).start()
    try:
        job = _wait(s3.url, terr["id"], ("interrupted", "succeeded", "failed", "cancelled"))
        assert job["state"] == "interrupted" and "submit it again" in job["error"]
        r = httpx.get(f"{s3.url}/v1/jobs/{terr['id']}/result")
        assert r.status_code == 409 and r.json()["code"] == "NoResult"
        assert httpx.get(f"{s3.url}/v1/jobs/{pre['id']}").json()["state"] == "succeeded"
    finally:
        s3.stop()


# ------------------------------------------------------------------------------ job priority
linux_only = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")


@linux_only
def test_job_with_no_grace_runs_every_thread_at_nice_19(setup: Setup) -> None:
    s = setup.server("--job-idle-grace", "0").start()
    try:
        r = httpx.post(f"{s.url}/v1/territories", json={"areas": _areas(), "p": 2})
        job_id = r.json()["id"]
        assert r.json()["priority"] is None and r.json()["promoted"] is None
        _wait_gate(setup, job_id)  # the job process runs, held at its pause point
        job = _wait_for_priority(s.url, job_id, "low")
        assert job["state"] == "running"
        assert _thread_policies(job["pid"]) == {(os.SCHED_OTHER, LOW_NICE)}
        if idle_is_reversible():  # idle first, then promoted by the server
            assert job["promoted"] is not None and job["priority_note"] is None
            assert job["promoted"] >= job["started"]
            assert _promotions(s.url) == {"promoted": 1.0, "refused": 0.0}
        else:  # this user could never leave SCHED_IDLE: nice 19 from the start, and why
            assert job["promoted"] is None and "RLIMIT_NICE" in job["priority_note"]
            assert _promotions(s.url) == {"promoted": 0.0, "refused": 0.0}
        _release(setup, job_id)
        done = _wait(s.url, job_id, ("succeeded", "failed"))
        assert done["state"] == "succeeded", done
        assert done["priority"] == "low" and done["promoted"] == job["promoted"]
    finally:
        s.stop()


@linux_only
def test_job_within_its_grace_stays_on_idle_cpu(setup: Setup) -> None:
    # the grace comes from the environment variable here (the flag in the test above)
    s = setup.server(env={"ROADNET_JOB_IDLE_GRACE": "1e6"}).start()
    try:
        job_id = httpx.post(f"{s.url}/v1/territories", json={"areas": _areas(), "p": 2}).json()[
            "id"
        ]
        _wait_gate(setup, job_id)
        job = _wait_for_priority(s.url, job_id)
        if idle_is_reversible():
            assert (job["priority"], job["promoted"], job["priority_note"]) == ("idle", None, None)
            assert {policy for policy, _ in _thread_policies(job["pid"])} == {os.SCHED_IDLE}
        else:
            assert job["priority"] == "low" and job["promoted"] is None
        assert _promotions(s.url) == {"promoted": 0.0, "refused": 0.0}
        httpx.delete(f"{s.url}/v1/jobs/{job_id}")
        assert _wait(s.url, job_id, ("cancelled", "failed", "succeeded"))["state"] == "cancelled"
    finally:
        s.stop()
