"""The engine a drive-time matrix runs on, chosen once per matrix.

``"scipy"`` runs scipy's Dijkstra from every origin; ``"ch"`` queries the contraction hierarchy
(:mod:`roadnet.ch`, built once and cached by :func:`roadnet.graph_cache.cached_hierarchy`);
``"auto"`` picks (:func:`choose_engine`). The matrix functions take the resolved
:class:`EngineChoice`; a name is resolved here, in one place, and checked by
:func:`check_engine`.
"""

from __future__ import annotations

import dataclasses
import logging

from roadnet.ch import Hierarchy
from roadnet.exceptions import InvalidArgumentError
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import ProgressCallback, cached_hierarchy, hierarchy_available
from roadnet.settings import ENGINES, settings

__all__ = ["EngineChoice", "check_engine", "choose_engine", "resolve_engine"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """The engine a matrix runs on, and why (see :func:`choose_engine`).

    Attributes
    ----------
    name
        ``"ch"`` (contraction hierarchy) or ``"scipy-dijkstra"``.
    reason
        Why it was chosen, for logs and the CLI.
    hierarchy
        The hierarchy for ``"ch"``.
    """

    name: str
    reason: str
    hierarchy: Hierarchy | None = None

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return f"engine {self.name} ({self.reason})"


def check_engine(engine: str | None) -> str:
    """The engine name to use: ``engine``, or ``settings.engine`` when ``None``.

    Raises
    ------
    InvalidArgumentError
        When the name is not one of :data:`roadnet.settings.ENGINES`.
    """
    name = settings.engine if engine is None else engine
    if name not in ENGINES:
        raise InvalidArgumentError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
    return name


def choose_engine(
    graph: CompiledGraph,
    engine: str | None,
    searches: int,
    *,
    progress: ProgressCallback | None = None,
) -> EngineChoice:
    """Pick the engine for a matrix that needs ``searches`` Dijkstra searches.

    ``"scipy"`` and ``"ch"`` are taken as asked (``"ch"`` builds the hierarchy when needed).
    ``"auto"`` (default: ``settings.engine``) takes the hierarchy when it is in memory or in
    the cache, or when ``searches >= settings.ch_min_searches`` (building it pays for itself
    then, and it is cached for the next matrix), else Dijkstra.
    """
    name = check_engine(engine)
    if name == "scipy":
        return EngineChoice("scipy-dijkstra", "requested")
    if name == "auto":
        if hierarchy_available(graph):
            reason = "auto: hierarchy available"
        elif searches >= settings.ch_min_searches:
            reason = f"auto: {searches:,} searches >= {settings.ch_min_searches:,}"
        else:
            return EngineChoice(
                "scipy-dijkstra",
                f"auto: {searches:,} searches < {settings.ch_min_searches:,}, no hierarchy cached",
            )
    else:
        reason = "requested"
    h, reused = cached_hierarchy(graph, progress=progress)
    if not reused:
        reason += f"; hierarchy built in {h.meta.get('build_seconds', 0):.1f} s"
    return EngineChoice("ch", reason, h)


def resolve_engine(
    graph: CompiledGraph,
    engine: str | EngineChoice | None,
    searches: int,
    build_progress: ProgressCallback | None = None,
) -> EngineChoice:
    """The engine for a matrix needing ``searches`` Dijkstra searches (logged)."""
    if isinstance(engine, EngineChoice):
        choice = engine
    else:
        choice = choose_engine(graph, engine, searches, progress=build_progress)
    log.info("drive-time matrix: %s", choice.describe())
    return choice
