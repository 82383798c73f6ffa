"""CPU priority of job processes: the move of every thread of an idle (``SCHED_IDLE``) process to
nice 19, its inheritance by threads started afterwards, what an unprivileged user gets, a move
the kernel refuses, and the ``job_idle_grace`` setting (config, CLI, environment)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from territory.cli import app as cli_app
from territory.exceptions import OptionError
from territory.service import jobs as jobs_module
from territory.service.config import ServiceConfig, parse_idle_grace
from territory.service.jobs import JobManager
from territory.service.priority import (
    LOW_NICE,
    idle_is_reversible,
    promote,
    thread_ids,
)
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[1]
PRIORITY_SOURCE = (ROOT / "territory" / "service" / "priority.py").read_text()

linux_only = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")

# An idle process with three waiting threads; it starts a fourth when told (after the test has
# promoted it), then ends when told again.
_IDLE_CHILD = """
import os, sys, threading
os.nice(10)
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
stop = threading.Event()
for _ in range(3):
    threading.Thread(target=stop.wait, daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
later = threading.Thread(target=stop.wait, daemon=True)
later.start()
print(later.native_id, flush=True)
sys.stdin.readline()
stop.set()
"""


def _policies(pid: int) -> dict[int, tuple[int, int]]:
    return {
        tid: (os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid))
        for tid in thread_ids(pid)
    }


@linux_only
def test_promote_moves_every_thread_and_later_threads_inherit() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _IDLE_CHILD],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as child:  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready"
            before = _policies(child.pid)
            assert len(before) == 4 and thread_ids(child.pid)[0] == child.pid
            assert {policy for policy, _ in before.values()} == {os.SCHED_IDLE}
            if not idle_is_reversible():  # this user may not leave SCHED_IDLE: refused
                with pytest.raises(PermissionError):
                    promote(child.pid)
                return
            assert promote(child.pid) == 4
            assert promote(child.pid) == 0  # nothing left to move
            child.stdin.write("\n")
            child.stdin.flush()
            later = int(child.stdout.readline())
            after = _policies(child.pid)
            assert later in after and set(before) < set(after)
            assert set(after.values()) == {(os.SCHED_OTHER, LOW_NICE)}
        finally:
            for _ in range(2):
                with contextlib.suppress(BrokenPipeError):
                    child.stdin.write("\n")
                    child.stdin.flush()


def test_promote_of_a_process_that_does_not_exist_moves_nothing() -> None:
    # a pid above the kernel's largest: it cannot exist (a reaped pid could be reused by an
    # unrelated process, which the promotion would then renice)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert promote(pid_max + 1) == 0


# What an unprivileged process gets: the probe, then lower_priority as a job that will be
# promoted later (it cannot be: nice 19 at once) and as one that will not (idle).
_UNPRIVILEGED = """
import os, resource, sys, types
mod = types.ModuleType("priority")
exec(sys.stdin.read(), mod.__dict__)
print(resource.getrlimit(resource.RLIMIT_NICE)[1], mod.idle_is_reversible(),
      mod.lower_priority(promoted_later=sys.argv[1] == "1"),
      os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
"""


def _as_unprivileged_user() -> list[str]:
    """A command prefix that runs Python as a user without CAP_SYS_NICE."""
    if os.geteuid() != 0:
        return [sys.executable]
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    setpriv = shutil.which("setpriv")
    if python is None or setpriv is None:
        pytest.skip("running as root without setpriv and a system python3 to drop privileges")
    cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python]
    if subprocess.run([*cmd, "-c", "pass"], cwd="/", capture_output=True).returncode != 0:
        pytest.skip(f"{python} cannot run as uid 65534 here")
    return cmd


@linux_only
@pytest.mark.parametrize("promoted_later", [True, False])
def test_unprivileged_job_that_cannot_leave_idle_starts_at_nice_19(promoted_later: bool) -> None:
    out = subprocess.run(
        [*_as_unprivileged_user(), "-c", _UNPRIVILEGED, "1" if promoted_later else "0"],
        input=PRIORITY_SOURCE, capture_output=True, text=True, check=True, cwd="/",
    ).stdout.split()  # fmt: skip
    hard_limit, reversible, applied, policy, nice = out
    if int(hard_limit) != 0:
        pytest.skip(f"RLIMIT_NICE hard limit is {hard_limit}: this user may leave SCHED_IDLE")
    assert reversible == "False"
    if promoted_later:  # a bounded wait: nice 19 from the start, normal policy
        assert (applied, int(policy), int(nice)) == ("low", os.SCHED_OTHER, LOW_NICE)
    else:  # never promoted anyway: idle-only
        assert (applied, int(policy)) == ("idle", os.SCHED_IDLE)


# ------------------------------------------------------------------------------ the setting
@pytest.mark.parametrize(
    ("text", "want"),
    [("0", 0.0), ("30", 30.0), (" 2.5 ", 2.5), ("1e6", 1e6), ("inf", None), ("None", None),
     ("never", None), ("+Infinity", None)],
)  # fmt: skip
def test_idle_grace_text(text: str, want: float | None) -> None:
    assert parse_idle_grace(text) == want


@pytest.mark.parametrize("text", ["-1", "-inf", "nan", "abc", "", "30s"])
def test_bad_idle_grace_text_is_an_option_error(text: str) -> None:
    with pytest.raises(OptionError, match="job-idle-grace") as info:
        parse_idle_grace(text)
    assert isinstance(info.value, ValueError) and repr(text) in str(info.value)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("-inf"), True, "30"])
def test_bad_idle_grace_in_the_config_is_an_option_error(value: object) -> None:
    with pytest.raises(OptionError, match="job_idle_grace must be a number of seconds >= 0"):
        ServiceConfig(graph=("g.npz",), job_idle_grace=value)  # type: ignore[arg-type]


def test_idle_grace_config_round_trip() -> None:
    assert ServiceConfig(graph=("g.npz",)).job_idle_grace == 30.0
    assert ServiceConfig(graph=("g.npz",), job_idle_grace=float("inf")).job_idle_grace is None
    for grace in (None, 0.0, 12.5):
        cfg = ServiceConfig(graph=("g.npz",), job_idle_grace=grace)
        assert ServiceConfig.from_json(cfg.to_json()) == cfg


def test_serve_refuses_a_bad_idle_grace_from_the_flag_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the command's logging setup would point the root logger at the runner's closed stream
    monkeypatch.setattr("territory.cli.serve.setup_logging", lambda verbose: None)
    pbf = str(shared_file("osm", "andorra-latest.osm.pbf"))
    res = CliRunner().invoke(cli_app, ["serve", "--pbf", pbf, "--job-idle-grace", "-5"])
    assert res.exit_code == 2 and "--job-idle-grace" in res.output and "'-5'" in res.output
    res = CliRunner().invoke(cli_app, ["serve", "--pbf", pbf],
                             env={"ROADNET_JOB_IDLE_GRACE": "soon"})  # fmt: skip
    assert res.exit_code == 2 and "'soon'" in res.output


# ------------------------------------------------------------------------------ the dispatcher
def _record_when(jobs: JobManager, job_id: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        record = jobs.get(job_id)
        if record[key] is not None:
            return record
        time.sleep(0.05)  # polling the job's record; no result depends on the delay
    raise AssertionError(f"job {job_id}: {key} never set: {jobs.get(job_id)}")


@linux_only
def test_refused_promotion_keeps_the_job_running_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(pid: int) -> int:  # what the kernel answers a user without RLIMIT_NICE
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(jobs_module, "promote", refuse)
    gate = tmp_path / "gate"
    gate.mkdir()
    results: list[str] = []
    env = {"PYTHONPATH": str(ROOT), "ROADNET_JOB_GATE": str(gate)}
    jobs = JobManager(tmp_path / "jobs", 4, env, idle_grace=0.0, on_promote=results.append)
    reversible = idle_is_reversible()
    jobs.start()
    try:
        for n in (1, 2):
            job_id = jobs.submit("validate", {}, "nowhere")["id"]
            record = _record_when(jobs, job_id, "priority_note")
            assert record["state"] == "running" and record["promoted"] is None
            if reversible:  # idle, the move refused: it stays idle and runs on
                assert record["priority"] == "idle"
                assert "could not leave SCHED_IDLE" in record["priority_note"]
                assert results == ["refused"] * n
                assert os.sched_getscheduler(record["pid"]) == os.SCHED_IDLE
            else:  # this user cannot leave SCHED_IDLE: nice 19 from the start
                assert record["priority"] == "low" and "RLIMIT_NICE" in record["priority_note"]
                assert results == []
            jobs.cancel(job_id)
            _record_when(jobs, job_id, "finished")
    finally:
        jobs.stop()
    warnings = [
        r for r in caplog.records if r.name == jobs_module.__name__ and r.levelname == "WARNING"
    ]
    assert len(warnings) == 1 and "LimitNICE" in warnings[0].getMessage()


@pytest.mark.parametrize("content", ["[1]", '{"priority": null}', '"idle"'])
def test_unreadable_priority_of_a_job_is_ignored_not_fatal(tmp_path: Path, content: str) -> None:
    """A priority file that is JSON but not the job's report neither raises (which would stop
    the dispatcher from finishing or cancelling the job) nor leads to a promotion."""
    jobs = JobManager(tmp_path / "jobs", 4, {}, idle_grace=0.0)
    folder = tmp_path / "jobs" / "j1"
    folder.mkdir(parents=True)
    (folder / "priority.json").write_text(content)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = jobs_module._Run("j1", proc, 0.0)
    jobs._watch_priority(run, alive=True)
    assert run.priority is None and run.promotion_tried
