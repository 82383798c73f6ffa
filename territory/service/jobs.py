"""Persisted jobs: territory design, validation and matrix precomputation, one process each.

A job lives in a folder of its own under the cache folder (``service-jobs/<id>/``):

``job.json``
    id, kind, state, region, times, error; rewritten atomically at every change.
``request.json``
    The request body as received.
``progress.json``
    ``{"done": ..., "total": ..., "stage": ...}`` written by the running job.
``result.json``
    The result, written atomically when the job succeeds (before its state says so).
``priority.json``
    ``{"priority": ..., "note": ...}``: the CPU priority the job process gave itself.
``cancel``
    Present when a client asked to cancel.

States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``; a job found
``running`` when a server starts was cut off by a crash or a restart and becomes
``interrupted`` — except a precompute job, which is queued again and resumes from the blocks
already in the cache. Finished results stay until the job is deleted, so a restart loses none.

Jobs run in a child process (``python -m territory.service.job_worker <folder>``), one at a
time: a job can be cancelled by ending its process, and a failing job cannot take the server
down. With several server worker processes, the one holding the folder's dispatcher lock runs
the jobs; the others queue and read them.

A job process runs on idle CPU only (Linux ``SCHED_IDLE``); after ``idle_grace`` seconds the
dispatcher moves it to nice 19 (:func:`~territory.service.priority.promote`), where a load
that never lets up leaves it a larger share (weight 15 instead of 3). The job's record says
which: ``priority`` is ``"idle"``, ``"low"`` (nice 19) or ``"nice"`` (nice +10, where
``SCHED_IDLE`` does not exist), ``promoted`` the time of the move, ``priority_note`` why the
job did not get what was configured.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from roadnet.files import atomic_write
from territory.exceptions import RequestError
from territory.service.priority import promote

__all__ = ["FINAL_STATES", "IDLE_GRACE_ENV", "JOB_KINDS", "JobManager", "read_json", "write_json"]

log = logging.getLogger(__name__)

JOB_KINDS = ("territories", "validate", "precompute")
FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")
_POLL_S = 0.25
#: Environment variable of the grace period (``roadnet serve --job-idle-grace``); the
#: dispatcher also passes it to the job processes (``none`` = never promoted).
IDLE_GRACE_ENV = "ROADNET_JOB_IDLE_GRACE"
#: What the job's record says about its CPU priority before the job process has said.
_NO_PRIORITY = {"priority": None, "promoted": None, "priority_note": None}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file, fsync, rename)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(path.read_text())


class JobManager:
    """Creates, runs, cancels and reports jobs kept in ``root``.

    Parameters
    ----------
    root
        The jobs folder.
    max_jobs
        Jobs queued or running at once; more are refused with 429 + ``Retry-After``.
    env
        Environment of the job processes (the cache folder, the road sources).
    on_finish
        Called with ``(kind, state)`` when a job ends (metrics).
    idle_grace
        Seconds after which a running job leaves ``SCHED_IDLE`` for nice 19 (``None`` = never).
    on_promote
        Called with ``"promoted"`` or ``"refused"`` when a job is moved to nice 19 or the
        kernel refuses the move (metrics).
    """

    def __init__(
        self,
        root: Path,
        max_jobs: int,
        env: dict[str, str],
        on_finish: Any = None,
        idle_grace: float | None = None,
        on_promote: Any = None,
    ) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_jobs = max_jobs
        self.env = env
        self.on_finish = on_finish
        self.idle_grace = idle_grace
        self.on_promote = on_promote
        self._warned = False
        self._lock = filelock.FileLock(str(root / "dispatcher.lock"))
        self._dispatching = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: _Run | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the dispatcher thread."""
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching; a running job is ended and will be reported as interrupted."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._running is not None:
            proc = self._running.proc
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._dispatching:
            self._lock.release()

    # ------------------------------------------------------------------ client side
    def submit(self, kind: str, request: dict[str, Any], region: str) -> dict[str, Any]:
        """Queue a job; returns its record."""
        active = sum(1 for j in self.list() if j["state"] in ("queued", "running"))
        if active >= self.max_jobs:
            raise RequestError(
                "TooManyJobs",
                f"{active} jobs are queued or running (the server's limit is {self.max_jobs}); "
                "retry later",
                429,
                {"Retry-After": "30"},
            )
        job_id = secrets.token_hex(8)
        folder = self.root / job_id
        folder.mkdir()
        write_json(folder / "request.json", request)
        record = {
            "id": job_id,
            "kind": kind,
            "state": "queued",
            "region": region,
            "created": _now(),
            "started": None,
            "finished": None,
            "error": None,
            **_NO_PRIORITY,
        }
        write_json(folder / "job.json", record)
        self._wake.set()
        return record

    def _folder(self, job_id: str) -> Path:
        if not (len(job_id) == 16 and all(c in "0123456789abcdef" for c in job_id)):
            raise RequestError(
                "NotFound", f"no job {job_id[:40]!r}: job ids are 16 hex digits", 404
            )
        folder = self.root / job_id
        if not (folder / "job.json").is_file():
            raise RequestError("NotFound", f"no job {job_id!r} (never created, or deleted)", 404)
        return folder

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's record with its progress."""
        folder = self._folder(job_id)
        record: dict[str, Any] = {**_NO_PRIORITY, **read_json(folder / "job.json")}
        progress = folder / "progress.json"
        record["progress"] = read_json(progress) if progress.is_file() else None
        record["cancel_requested"] = (folder / "cancel").exists()
        record["result_available"] = (folder / "result.json").is_file()
        return record

    def result(self, job_id: str) -> Path:
        """The path of the job's ``result.json``; 409 while it has none."""
        folder = self._folder(job_id)
        record = read_json(folder / "job.json")
        path = folder / "result.json"
        if record["state"] != "succeeded" or not path.is_file():
            raise RequestError(
                "NoResult",
                f"job {job_id} is {record['state']}"
                + (f": {record['error']}" if record.get("error") else "")
                + "; a result exists once it has succeeded",
                409,
            )
        return path

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; delete a finished one (and its result)."""
        folder = self._folder(job_id)
        record = read_json(folder / "job.json")
        if record["state"] in FINAL_STATES:
            shutil.rmtree(folder, ignore_errors=True)
            return {**record, "deleted": True}
        (folder / "cancel").touch()
        self._wake.set()
        return {**record, "cancel_requested": True}

    def list(self) -> list[dict[str, Any]]:
        """Every job's record, oldest first."""
        out = []
        for folder in self.root.iterdir():
            path = folder / "job.json"
            if path.is_file():
                try:
                    out.append(read_json(path))
                except (OSError, ValueError):
                    continue
        return sorted(out, key=lambda r: r["created"])

    # ------------------------------------------------------------------ dispatcher
    def _update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        path = self.root / job_id / "job.json"
        record: dict[str, Any] = read_json(path)
        record.update(changes)
        write_json(path, record)
        return record

    def _finish(self, job_id: str, state: str, error: str | None = None) -> None:
        record = self._update(job_id, state=state, finished=_now(), error=error)
        log.info("job %s (%s): %s%s", job_id, record["kind"], state, f": {error}" if error else "")
        if self.on_finish is not None:
            self.on_finish(record["kind"], state)

    def _recover(self) -> None:
        """Jobs left running by a process that died: interrupted (precompute: queued again)."""
        for record in self.list():
            if record["state"] == "running":
                _end_orphan(record.get("pid"), self.root / record["id"])
                if record["kind"] == "precompute":
                    self._update(record["id"], state="queued", resumed=True, **_NO_PRIORITY)
                else:
                    self._finish(
                        record["id"],
                        "interrupted",
                        "the server stopped while the job ran; submit it again",
                    )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # the dispatcher must survive anything a job folder holds
                log.exception("job dispatcher")
            self._wake.wait(_POLL_S)
            self._wake.clear()

    def _step(self) -> None:
        if not self._dispatching:
            try:
                self._lock.acquire(timeout=0)
            except filelock.Timeout:
                return
            self._dispatching = True
            self._recover()
        if self._running is not None:
            run = self._running
            job_id, proc = run.job_id, run.proc
            folder = self.root / job_id
            code = proc.poll()
            try:
                self._watch_priority(run, alive=code is None)
            except Exception:  # a bad priority file must not keep the job from finishing
                log.exception("job %s: priority", job_id)
                run.promotion_tried = True
            if code is None:
                if (folder / "cancel").exists():
                    proc.terminate()
                return
            self._running = None
            if (folder / "cancel").exists() and not (folder / "result.json").is_file():
                self._finish(job_id, "cancelled")
            elif code == 0 and (folder / "result.json").is_file():
                self._finish(job_id, "succeeded")
            else:
                err = folder / "error.txt"
                reason = err.read_text().strip() if err.is_file() else f"exit code {code}"
                self._finish(job_id, "failed", reason)
        for record in self.list():
            if record["state"] != "queued":
                continue
            folder = self.root / record["id"]
            if (folder / "cancel").exists():
                self._finish(record["id"], "cancelled")
                continue
            self._update(record["id"], state="running", started=_now(), **_NO_PRIORITY)
            (folder / "priority.json").unlink(missing_ok=True)  # of an earlier run (resumed)
            grace = "none" if self.idle_grace is None else repr(float(self.idle_grace))
            log_file = (folder / "worker.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "territory.service.job_worker", str(folder)],
                # BLAS pools start at numpy's import, before the worker lowers its priority
                # (a Linux scheduling policy is per thread): one thread, so none escapes it
                env={**_SINGLE_THREAD_BLAS, **os.environ, **self.env, IDLE_GRACE_ENV: grace},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            log_file.close()
            self._update(record["id"], pid=proc.pid)
            self._running = _Run(record["id"], proc, time.monotonic())
            return

    def _watch_priority(self, run: _Run, alive: bool) -> None:
        """Copy the priority the job process gave itself into its record; promote an idle job
        whose grace period is over (this thread is not idle: its timer is not starved)."""
        folder = self.root / run.job_id
        if run.priority is None:
            try:
                told = read_json(folder / "priority.json")
            except (OSError, ValueError):
                return  # not written yet
            if not isinstance(told, dict) or not isinstance(told.get("priority"), str):
                run.promotion_tried = True  # nothing to promote on a priority we cannot read
                return
            run.priority = told["priority"]
            self._update(run.job_id, priority=run.priority, priority_note=told.get("note"))
            if told.get("note"):
                self._warn_once(f"job {run.job_id}: {told['note']}")
        grace = self.idle_grace
        if (
            not alive
            or run.priority != "idle"
            or run.promotion_tried
            or grace is None
            or time.monotonic() - run.started < grace
        ):
            return
        run.promotion_tried = True  # one try: a refusal does not change while the job runs
        try:
            moved = promote(run.proc.pid)
        except OSError as exc:
            note = (
                f"the job could not leave SCHED_IDLE after {grace:g} s ({exc.strerror}); it "
                "runs on idle CPU only"
            )
            if self.on_promote is not None:  # counted first: a record that says it is counted
                self.on_promote("refused")
            self._update(run.job_id, priority_note=note)
            self._warn_once(f"job {run.job_id}: {note}")
        else:
            if run.proc.poll() is not None:
                return  # it ended meanwhile (an unreaped process still lists its threads)
            run.priority = "low"
            if self.on_promote is not None:
                self.on_promote("promoted")
            self._update(run.job_id, priority="low", promoted=_now())
            log.info("job %s: promoted to nice 19 (%d threads) after %g s", run.job_id, moved,
                     grace)  # fmt: skip

    def _warn_once(self, message: str) -> None:
        if self._warned:
            return
        self._warned = True
        log.warning(
            "%s. For an idle-only phase followed by nice 19, give the server RLIMIT_NICE >= 1 "
            "(systemd LimitNICE=+19, prlimit --nice=1) or CAP_SYS_NICE; --job-idle-grace none "
            "keeps jobs idle-only (the smallest share, 0.3-0.4 %% of a core under a full "
            "load). Said once per server process",
            message,
        )


@dataclass
class _Run:
    """The running job: its process, when it started (monotonic) and its priority as known
    (``None`` until the job process has said)."""

    job_id: str
    proc: subprocess.Popen[bytes]
    started: float
    priority: str | None = None
    promotion_tried: bool = False


#: Job processes' BLAS thread pools (unless the environment sets them): see JobQueue's Popen.
_SINGLE_THREAD_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _end_orphan(pid: int | None, folder: Path) -> None:
    """End the job process of a server that died, if it still runs (checked by its command
    line, so that a reused pid is never hit)."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if str(folder).encode() in cmdline:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
