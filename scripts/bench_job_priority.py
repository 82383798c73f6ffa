"""CPU a job process gets under a load that never lets up: idle-only (``SCHED_IDLE``, the
baseline: ``roadnet serve --job-idle-grace none``) against the same process promoted to nice 19
by :func:`territory.service.priority.promote` after a grace period (the default since the grace
period exists).

One CPU-bound process per core at normal priority (nice 0, ``SCHED_OTHER``) is the load; a
CPU-bound "job" process runs beside it, ``SCHED_IDLE`` at nice +10 as a job starts. Two runs of
``--seconds`` each: (a) idle throughout; (b) idle for the first half, then promoted. For each
half the job's CPU seconds (the scheduler's count, ``/proc/<pid>/schedstat``) are printed, as
a share of one core, with the ratio promoted / idle. Other processes on the machine compete
too: the load average is printed before and after. Linux only; stops by itself; asserts nothing.

Run from the repository root::

    python scripts/bench_job_priority.py               # 2 x 30 s
    python scripts/bench_job_priority.py --seconds 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from territory.service.priority import JOB_NICE, promote  # noqa: E402

_SPIN = "while True: pass"
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the (single-threaded) process ``pid``: the scheduler's own count in
    ``/proc/<pid>/schedstat`` (nanoseconds), else user + system from ``/proc/<pid>/stat``
    (clock ticks)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK


def spin() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _SPIN])


def run(seconds: float, promote_half: bool, n_load: int) -> tuple[float, float, float]:
    """The job's CPU seconds in the first and second half, and the load's CPU share."""
    load = [spin() for _ in range(n_load)]
    job = spin()
    try:
        os.setpriority(os.PRIO_PROCESS, job.pid, JOB_NICE)
        os.sched_setscheduler(job.pid, os.SCHED_IDLE, os.sched_param(0))
        time.sleep(0.5)  # everyone running
        load0 = sum(cpu_seconds(p.pid) for p in load)
        c0, t0 = cpu_seconds(job.pid), time.monotonic()
        time.sleep(seconds / 2)
        c1 = cpu_seconds(job.pid)
        if promote_half:
            promote(job.pid)
        time.sleep(seconds / 2)
        c2, t2 = cpu_seconds(job.pid), time.monotonic()
        load_share = (sum(cpu_seconds(p.pid) for p in load) - load0) / (t2 - t0)
    finally:
        for p in [job, *load]:
            p.kill()
            p.wait()
    return c1 - c0, c2 - c1, load_share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    ap.add_argument("--load", type=int, default=os.cpu_count() or 1, help="busy processes")
    args = ap.parse_args()
    if not hasattr(os, "SCHED_IDLE"):
        print("SCHED_IDLE is Linux's", file=sys.stderr)
        return 2
    print(
        f"job priority benchmark — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{args.load} busy processes at nice 0 + one busy job process; {args.seconds:g} s a run")
    half = args.seconds / 2
    a1, a2, la = run(args.seconds, False, args.load)
    b1, b2, lb = run(args.seconds, True, args.load)
    print(f"(a) idle only (--job-idle-grace none): job CPU {a1:.3f} s + {a2:.3f} s in the two "
          f"halves = {a1 / half:.2%} + {a2 / half:.2%} of a core; load {la:.2f} cores")  # fmt: skip
    print(f"(b) promoted to nice 19 at half time:  job CPU {b1:.3f} s + {b2:.3f} s "
          f"= {b1 / half:.2%} + {b2 / half:.2%} of a core; load {lb:.2f} cores")  # fmt: skip
    if a2 > 0:
        print(f"second half, promoted / idle-only: {b2 / a2:.1f}x the CPU")
    else:
        print(f"second half: idle-only job got no CPU at all; promoted got {b2:.3f} s")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
