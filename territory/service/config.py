"""The settings of one server, as given to ``roadnet serve`` (and passed to worker processes)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from territory.exceptions import OptionError

__all__ = ["CONFIG_ENV", "DEFAULT_JOB_IDLE_GRACE", "ServiceConfig", "parse_idle_grace"]

#: Environment variable that carries the configuration (JSON) to uvicorn's worker processes.
CONFIG_ENV = "ROADNET_SERVICE_CONFIG"

#: Default of ``job_idle_grace`` (seconds): as long as a request may wait and run
#: (``time_limit``); a burst of requests that keeps every core busy longer than that is a
#: lasting load, which an idle-only job would have to outwait.
DEFAULT_JOB_IDLE_GRACE = 30.0

_NEVER = ("inf", "infinity", "none", "never")


def parse_idle_grace(text: str) -> float | None:
    """``job_idle_grace`` from text (``--job-idle-grace``, ``ROADNET_JOB_IDLE_GRACE``).

    Parameters
    ----------
    text
        Seconds >= 0, or ``inf`` / ``none`` / ``never`` (never promote).

    Returns
    -------
    float or None
        ``None`` for never.

    Raises
    ------
    OptionError
        For anything else.
    """
    word = text.strip().lower()
    if word in _NEVER:
        return None
    try:
        value = float(word)
    except ValueError:
        value = math.nan
    if value == math.inf:
        return None
    if not (math.isfinite(value) and value >= 0):
        raise OptionError(
            f"--job-idle-grace must be a number of seconds >= 0, or 'inf' / 'none' to never "
            f"promote a job, got {text!r}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """What a server serves and how (see ``roadnet serve --help``).

    Attributes
    ----------
    pbf, graph
        Road sources: OSM ``.pbf`` files (graphs and hierarchies cached) and saved graphs.
    speeds
        A speed-profile JSON file (default: roadnet's default car profile).
    cache_dir
        The cache folder (default: roadnet's settings); jobs are kept in its ``service-jobs``.
    token_env
        Name of the environment variable holding the bearer token (``None`` = no token).
    max_table_size
        OSRM table limit: ``sources x destinations <= max_table_size ** 2``.
    max_body_bytes
        Largest request body.
    max_waiting
        Heavy requests that may wait for the compute slot before 503 + ``Retry-After``.
    time_limit
        Seconds a heavy request may wait and run.
    threads
        Threads of one table query (``None`` = all cores). Default 1: a server answers many
        small tables, one at a time per process; ``--workers`` uses more cores.
    cors_origins
        Origins allowed by CORS (none = CORS off).
    max_jobs
        Jobs queued or running at once (more are refused with 429).
    jobs_dir
        Where jobs and their results are kept (default: ``service-jobs`` in the cache folder).
    snap_cache
        Snapped points kept per region for the OSRM services (0 = none; see
        :mod:`territory.service.snapcache`).
    job_idle_grace
        Seconds a job runs on idle CPU only (Linux ``SCHED_IDLE``) before the server moves it
        to the lowest normal priority (nice 19), where the kernel guarantees it a small share
        of the CPU by weight (15 instead of 3 against a normal thread's 1024): under a load
        that never lets up it then progresses ~2.4x faster than idle-only. ``0`` = as soon as the
        dispatcher sees that the job has set its priority (the job starts idle: a short idle
        phase remains), ``None`` (or ``inf``) = never (idle-only for its whole run). Default
        :data:`DEFAULT_JOB_IDLE_GRACE` (30 s, the longest a request may wait and run): a
        passing burst of requests does not promote a job. See
        :mod:`territory.service.priority`.
    """

    pbf: tuple[str, ...] = ()
    graph: tuple[str, ...] = ()
    speeds: str | None = None
    cache_dir: str | None = None
    token_env: str | None = None
    max_table_size: int = 1000
    max_body_bytes: int = 10_000_000
    max_waiting: int = 64
    time_limit: float = 30.0
    threads: int | None = 1
    cors_origins: tuple[str, ...] = ()
    max_jobs: int = 8
    jobs_dir: str | None = None
    snap_cache: int = 100_000
    job_idle_grace: float | None = DEFAULT_JOB_IDLE_GRACE

    def __post_init__(self) -> None:
        if not self.pbf and not self.graph:
            raise OptionError("give at least one road source: --pbf FILE or --graph FILE")
        for name in ("max_table_size", "max_body_bytes", "max_jobs"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.snap_cache < 0:
            raise OptionError(f"snap_cache must be >= 0 points, got {self.snap_cache}")
        if self.max_waiting < 0:
            raise OptionError(f"max_waiting must be >= 0, got {self.max_waiting}")
        if not self.time_limit > 0:
            raise OptionError(f"time_limit must be > 0 seconds, got {self.time_limit}")
        grace = self.job_idle_grace
        if grace == math.inf:
            object.__setattr__(self, "job_idle_grace", None)
        elif grace is not None and (
            isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not (math.isfinite(grace) and grace >= 0)
        ):
            raise OptionError(
                f"job_idle_grace must be a number of seconds >= 0, or None to never promote a "
                f"job, got {grace!r}"
            )

    def token(self) -> str | None:
        """The bearer token from the environment, or ``None`` when none is configured.

        Raises
        ------
        OptionError
            When ``token_env`` names a variable that is unset or empty.
        """
        if self.token_env is None:
            return None
        value = os.environ.get(self.token_env, "")
        if not value.strip():
            raise OptionError(
                f"--token-env {self.token_env}: the environment variable is unset or empty; "
                "export it with the token clients must send as 'Authorization: Bearer <token>'"
            )
        return value.strip()

    def jobs_folder(self, cache_root: Path) -> Path:
        """Where jobs and their results are kept."""
        return Path(self.jobs_dir) if self.jobs_dir else cache_root / "service-jobs"

    def to_json(self) -> str:
        """The configuration as JSON (for :data:`CONFIG_ENV`)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceConfig:
        """Read :meth:`to_json`'s output."""
        raw: dict[str, Any] = json.loads(text)
        for name in ("pbf", "graph", "cors_origins"):
            raw[name] = tuple(raw.get(name) or ())
        return cls(**raw)
