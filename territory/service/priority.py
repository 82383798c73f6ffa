"""CPU priority of job processes: idle-only first, then the lowest normal priority.

A job process (:mod:`territory.service.job_worker`) starts with :func:`lower_priority`: on
Linux its scheduling policy becomes ``SCHED_IDLE`` (CPU time nobody else wants; weight 3 against
1024 for a normal thread), so a job does not delay a table request. Under a load that never
lets up such a job crawls (0.3-0.4 % of a core measured on Linux 6.18) and its wall-clock
budgeted phases get next to nothing. So after a grace period (``job_idle_grace``) the server
that started the job moves every thread of it to ``SCHED_OTHER`` at nice 19 with
:func:`promote` (weight 15 against 1024: a share the kernel guarantees by weight, ~1 % of a
core measured, 2.4x the idle one; the requests keep almost all of the CPU). The timer lives in
the server, not in the job: a timer inside a ``SCHED_IDLE`` process would be starved too.

Leaving ``SCHED_IDLE`` needs privileges: Linux lets a process move a thread out of it only with
``CAP_SYS_NICE`` (root) or when its ``RLIMIT_NICE`` allows the thread's nice value (>= 1 for nice
19; the default limit for users is 0). :func:`idle_is_reversible` tries it on a throwaway thread,
so a job that could never be promoted starts at nice 19 at once rather than idle throughout.

The policy and the nice value are per thread on Linux and a thread inherits them from the
thread that creates it: :func:`promote` moves the main thread first, then the others, and goes
over the threads again until none is left behind.

This module uses only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

__all__ = [
    "JOB_NICE",
    "LOW_NICE",
    "has_idle_policy",
    "idle_is_reversible",
    "lower_priority",
    "promote",
    "thread_ids",
]

#: Niceness added to a job's process where ``SCHED_IDLE`` is not available (and kept under it).
JOB_NICE = 10
#: Nice value of a promoted job: the lowest priority of the normal policy.
LOW_NICE = 19
#: Passes of :func:`promote` over the threads (each pass catches threads started meanwhile by a
#: thread that was still idle; two passes suffice unless threads keep starting threads).
_MAX_PASSES = 10


def has_idle_policy() -> bool:
    """Whether this platform has ``SCHED_IDLE`` (Linux)."""
    return hasattr(os, "SCHED_IDLE") and hasattr(os, "sched_setscheduler")


_CAP_SYS_NICE = 23


def _may_leave_idle() -> bool:
    """What Linux's rule allows this process: ``CAP_SYS_NICE``, or a soft ``RLIMIT_NICE`` that
    allows nice 19 (>= 1; raised to 1 here when the hard limit allows it; child processes
    inherit it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:") and int(line.split()[1], 16) >> _CAP_SYS_NICE & 1:
                return True
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # not Unix
        return False
    need = 20 - LOW_NICE
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NICE)
        inf = resource.RLIM_INFINITY
        if soft == inf or soft >= need:
            return True
        if hard == inf or hard >= need:
            resource.setrlimit(resource.RLIMIT_NICE, (need, hard))
            return True
    except (OSError, ValueError):
        pass
    return False


def idle_is_reversible() -> bool:
    """Whether a thread of this process, once ``SCHED_IDLE``, may be moved back to
    ``SCHED_OTHER`` at nice 19 (what :func:`promote` does).

    Linux allows it with ``CAP_SYS_NICE`` or a soft ``RLIMIT_NICE`` >= 1 (the soft limit is
    raised to 1 when the hard limit allows it; child processes inherit it). When that rule
    says yes, the move is tried on a throwaway thread that waits on an event (it needs no CPU
    while idle), in case something else (a sandbox, a security module) refuses it; when it is
    refused that thread ends on idle CPU.

    Returns
    -------
    bool
        ``False`` also where ``SCHED_IDLE`` does not exist.
    """
    if not has_idle_policy() or not _may_leave_idle():
        return False
    started, done = threading.Event(), threading.Event()
    tids: list[int] = []

    def wait() -> None:
        tids.append(threading.get_native_id())
        started.set()
        done.wait()

    probe = threading.Thread(target=wait, name="sched-idle-probe", daemon=True)
    probe.start()
    started.wait()
    tid = tids[0]
    try:
        os.setpriority(os.PRIO_PROCESS, tid, LOW_NICE)
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        reversible = True
    except OSError:
        reversible = False
    done.set()
    probe.join()
    return reversible


def lower_priority(*, promoted_later: bool = False) -> str:
    """Give this process (every thread of it, and the threads it starts) the CPU only when
    nothing else wants it.

    The policy and the niceness are per thread on Linux: every thread that exists is changed
    (libraries start some at import, e.g. jemalloc's background thread), and the threads
    started afterwards (numba's) inherit from the thread that starts them; BLAS pools are kept
    to one thread by the job's environment (:mod:`territory.service.jobs`).

    On Linux the policy becomes ``SCHED_IDLE`` (niceness raised by :data:`JOB_NICE` too): the
    kernel runs the process only on otherwise idle CPU time, so a job does not delay a table
    request. Under a load that keeps every core busy the job then crawls; ``promoted_later``
    says that the server will move it to nice 19 after its grace period (:func:`promote`).
    When that move would be refused (:func:`idle_is_reversible`), the process takes nice 19
    at once instead (no idle phase, but never the idle-only crawl). Elsewhere, or when the
    policy cannot be set, the niceness is raised by :data:`JOB_NICE` (such a job still takes
    ~10 % of a core from the requests).

    Parameters
    ----------
    promoted_later
        Whether the server will promote the job after a grace period.

    Returns
    -------
    str
        What was applied: ``"idle"`` (``SCHED_IDLE``), ``"low"`` (``SCHED_OTHER`` at nice 19:
        promotion requested but impossible) or ``"nice"`` (niceness + :data:`JOB_NICE`).
    """
    if not has_idle_policy():
        with contextlib.suppress(OSError):
            os.nice(JOB_NICE)
        return "nice"
    if promoted_later and not idle_is_reversible():
        with contextlib.suppress(OSError):
            _settle(os.getpid(), os.SCHED_OTHER, LOW_NICE)
            return "low"
    nice = min(LOW_NICE, os.getpriority(os.PRIO_PROCESS, 0) + JOB_NICE)
    try:
        _settle(os.getpid(), os.SCHED_IDLE, nice)
    except OSError:
        return "nice"
    return "idle"


def thread_ids(pid: int) -> list[int]:
    """The thread ids of process ``pid`` (Linux ``/proc``), the main thread first; ``[]`` when
    the process is gone."""
    try:
        tids = sorted(int(name) for name in os.listdir(Path("/proc") / str(pid) / "task"))
    except (FileNotFoundError, ProcessLookupError):
        return []
    return sorted(tids, key=lambda tid: tid != pid)


def promote(pid: int) -> int:
    """Move every thread of process ``pid`` to ``SCHED_OTHER`` at nice :data:`LOW_NICE`.

    The main thread goes first (threads started by it from then on inherit the new policy),
    then the other threads; the threads are listed again until a pass finds none left to move,
    so a thread started during a pass by a thread not yet moved is caught too. The nice value
    is set before the policy: Linux checks the move out of ``SCHED_IDLE`` against
    ``RLIMIT_NICE`` at the thread's nice value.

    Parameters
    ----------
    pid
        A process of the same user (Linux).

    Returns
    -------
    int
        Threads moved (0 when the process is gone).

    Raises
    ------
    PermissionError
        When the kernel refuses (no ``CAP_SYS_NICE`` and ``RLIMIT_NICE`` < 1); threads already
        moved stay moved.
    """
    return _settle(pid, os.SCHED_OTHER, LOW_NICE)


def _settle(pid: int, policy: int, nice: int) -> int:
    """Give every thread of ``pid`` the policy and nice value, the main thread first, in passes
    until one finds no thread to change; threads that end meanwhile are skipped. The nice value
    is set before the policy. Returns the threads changed."""
    changed = 0
    for _ in range(_MAX_PASSES):
        now = 0
        for tid in thread_ids(pid):
            try:
                if (
                    os.sched_getscheduler(tid) == policy
                    and os.getpriority(os.PRIO_PROCESS, tid) == nice
                ):
                    continue
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                os.sched_setscheduler(tid, policy, os.sched_param(0))
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            now += 1
        changed += now
        if now == 0:
            break
    return changed
