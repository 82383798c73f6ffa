"""One validated settings object for roadnet, usable as a context manager.

Environment variables map onto it when the module is first imported; CLI flags set it for the
duration of a command::

    import roadnet
    roadnet.settings.max_snap_distance_m = 2000
    with roadnet.settings.override(n_jobs=1, use_cache=False):
        ...

=========================  ==========================  ======================================
attribute                  environment variable        meaning
=========================  ==========================  ======================================
``cache_dir``              ``ROADNET_CACHE_DIR``       cache folder; ``None`` = per-user default
``use_cache``              ``ROADNET_NO_CACHE=1``      read and write the cache at all
``refresh``                ``ROADNET_REFRESH=1``       recompute and overwrite cached entries
``n_jobs``                 ``ROADNET_N_JOBS``          worker processes for matrices (-1 = all
                                                       cores, 1 = no extra process)
``connector_speed_kmh``    ``ROADNET_CONNECTOR_KMH``   speed from a point to its road (15 km/h)
``max_snap_distance_m``    ``ROADNET_MAX_SNAP_M``      snaps farther than this are flagged (1000)
``overpass_url``           ``ROADNET_OVERPASS_URL``    Overpass API endpoint used by osmnx
``nominatim_url``          ``ROADNET_NOMINATIM_URL``   Nominatim endpoint used by osmnx
``chunk_size``             ``ROADNET_CHUNK_SIZE``      Dijkstra sources computed per block (64)
``engine``                 ``ROADNET_ENGINE``          matrix engine: ``auto``, ``ch`` (contraction
                                                       hierarchy) or ``scipy`` (Dijkstra)
``ch_min_searches``        ``ROADNET_CH_MIN_SEARCHES`` ``auto`` builds a hierarchy when a matrix
                                                       needs at least this many searches (1000)
``pbf_node_locations``     ``ROADNET_PBF_NODE_LOCS``   how the osmium reader finds the road
                                                       nodes' coordinates: ``auto``, ``index``
                                                       (a location index of every node of the
                                                       file, one pass) or ``two-pass`` (a
                                                       second pass reads the road nodes only)
=========================  ==========================  ======================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs

from roadnet.exceptions import RoadnetError

__all__ = ["ENGINES", "NODE_LOCATIONS", "Settings", "default_cache_dir", "settings"]

ENGINES = ("auto", "ch", "scipy")
"""Matrix engines: chosen automatically, contraction hierarchy, scipy's Dijkstra."""

NODE_LOCATIONS = ("auto", "index", "two-pass")
"""How the streaming PBF reader gets node coordinates: by available memory, osmium's location
index of every node of the file (one pass, fastest), or a second pass over the nodes that keeps
only the road nodes' coordinates (memory follows the road network, not the file)."""


class SettingsError(RoadnetError, ValueError):
    """A setting was given an invalid value."""


@dataclasses.dataclass
class Settings:
    """roadnet's global settings (see the module docstring for the table)."""

    cache_dir: Path | None = None
    use_cache: bool = True
    refresh: bool = False
    n_jobs: int = -1
    connector_speed_kmh: float = 15.0
    max_snap_distance_m: float = 1000.0
    overpass_url: str = "https://overpass-api.de/api"
    nominatim_url: str = "https://nominatim.openstreetmap.org/"
    chunk_size: int = 64
    engine: str = "auto"
    ch_min_searches: int = 1000
    pbf_node_locations: str = "auto"

    def __setattr__(self, name: str, value: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self)}
        if name not in fields:
            raise SettingsError(
                f"unknown setting {name!r}; valid settings: {', '.join(sorted(fields))}"
            )
        super().__setattr__(name, _validate(name, value))

    def effective_n_jobs(self) -> int:
        """Number of worker processes ``n_jobs`` resolves to on this machine (>= 1)."""
        cpus = os.cpu_count() or 1
        return cpus if self.n_jobs < 0 else max(1, min(self.n_jobs, cpus))

    @contextmanager
    def override(self, **changes: Any) -> Iterator[Settings]:
        """Temporarily change settings; the old values come back on exit, even on error."""
        old = {k: getattr(self, k) for k in changes}
        try:
            for k, v in changes.items():
                setattr(self, k, v)
            yield self
        finally:
            for k, v in old.items():
                setattr(self, k, v)


def check_n_jobs(n_jobs: Any, name: str = "n_jobs") -> int | None:
    """``n_jobs`` checked: ``None`` (the setting), ``-1`` (all cores) or a count ``>= 1``.

    The one check of worker counts for the library, the CLI (``name="--jobs"``) and the
    service.

    Raises
    ------
    InvalidArgumentError
        ``0``, a negative number other than ``-1``, or no integer.
    """
    from roadnet.exceptions import InvalidArgumentError

    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        try:
            import numpy as np

            ok = isinstance(n_jobs, np.integer)
        except ImportError:  # pragma: no cover - numpy is a dependency
            ok = False
        if not ok:
            raise InvalidArgumentError(
                f"{name} must be -1 (all cores) or a number of workers >= 1, got {n_jobs!r}"
            )
    if n_jobs == 0 or n_jobs < -1:
        raise InvalidArgumentError(
            f"{name} must be -1 (all cores) or a number of workers >= 1, got {int(n_jobs)}"
        )
    return int(n_jobs)


def _validate(name: str, value: Any) -> Any:
    if name == "cache_dir":
        return None if value is None else Path(value).expanduser()
    if name in {"use_cache", "refresh"}:
        if not isinstance(value, bool):
            raise SettingsError(f"setting {name!r} must be True or False, got {value!r}")
        return value
    if name == "engine":
        if value not in ENGINES:
            raise SettingsError(
                f"setting 'engine' must be one of {', '.join(ENGINES)}, got {value!r}"
            )
        return value
    if name == "pbf_node_locations":
        if value not in NODE_LOCATIONS:
            raise SettingsError(
                f"setting 'pbf_node_locations' must be one of {', '.join(NODE_LOCATIONS)}, "
                f"got {value!r}"
            )
        return value
    if name in {"n_jobs", "chunk_size", "ch_min_searches"}:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"setting {name!r} must be an integer, got {value!r}")
        if name == "n_jobs" and (value == 0 or value < -1):
            raise SettingsError(f"setting 'n_jobs' must be -1 (all cores) or >= 1, got {value}")
        if name in {"chunk_size", "ch_min_searches"} and value < 1:
            raise SettingsError(f"setting {name!r} must be >= 1, got {value}")
        return value
    if name in {"connector_speed_kmh", "max_snap_distance_m"}:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"setting {name!r} must be a number, got {value!r}") from None
        if not v > 0:
            raise SettingsError(f"setting {name!r} must be > 0, got {value!r}")
        return v
    if name in {"overpass_url", "nominatim_url"}:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise SettingsError(f"setting {name!r} must be an http(s) URL, got {value!r}")
        return value
    return value


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "ROADNET_CACHE_DIR": ("cache_dir", str),
    "ROADNET_NO_CACHE": ("use_cache", lambda s: s.strip().lower() in {"", "0", "false", "no"}),
    "ROADNET_REFRESH": ("refresh", lambda s: s.strip().lower() in {"1", "true", "yes"}),
    "ROADNET_N_JOBS": ("n_jobs", int),
    "ROADNET_CONNECTOR_KMH": ("connector_speed_kmh", float),
    "ROADNET_MAX_SNAP_M": ("max_snap_distance_m", float),
    "ROADNET_OVERPASS_URL": ("overpass_url", str),
    "ROADNET_NOMINATIM_URL": ("nominatim_url", str),
    "ROADNET_CHUNK_SIZE": ("chunk_size", int),
    "ROADNET_ENGINE": ("engine", str),
    "ROADNET_CH_MIN_SEARCHES": ("ch_min_searches", int),
    "ROADNET_PBF_NODE_LOCS": ("pbf_node_locations", str),
}


def _from_environment() -> Settings:
    s = Settings()
    for var, (name, conv) in _ENV.items():
        raw = os.environ.get(var)
        if raw is None:
            continue
        try:
            setattr(s, name, conv(raw))
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"environment variable {var}={raw!r} is invalid: {exc}") from None
    return s


class _InvalidEnvironment(Settings):
    """The settings of a process whose ``ROADNET_*`` environment is invalid: importing
    roadnet still works (so that a command line can report it as one line), and reading any
    setting raises the :class:`SettingsError` that names the variable."""

    def __init__(self, error: SettingsError) -> None:
        object.__setattr__(self, "_error", error)
        super().__init__()

    def __getattribute__(self, name: str) -> Any:
        if name in _FIELDS:
            raise object.__getattribute__(self, "_error")
        return super().__getattribute__(name)


_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))


def _settings_at_import() -> Settings:
    try:
        return _from_environment()
    except SettingsError as exc:
        return _InvalidEnvironment(exc)


settings: Settings = _settings_at_import()


def default_cache_dir() -> Path:
    """roadnet's cache folder: ``settings.cache_dir`` (``$ROADNET_CACHE_DIR``) if set, else the
    per-user cache folder of the platform (``platformdirs.user_cache_dir("roadnet")``)."""
    if settings.cache_dir:
        return Path(settings.cache_dir).expanduser()
    return Path(platformdirs.user_cache_dir("roadnet"))
