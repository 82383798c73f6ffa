"""Helpers shared by the test modules (not a test module itself): where the shared data lives.

Test modules import helpers from here (``from tests.support import shared_file``) or from the
modules of this package, never from another test module or from ``conftest``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["ROOT", "SHARED", "shared_file"]

#: the project root (the folder of ``pyproject.toml``)
ROOT = Path(__file__).resolve().parents[2]
#: the shared real data (``../shared/data``): OSM extracts, areas, OR-Library benchmarks
SHARED = ROOT.parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """Path of a file in ../shared/data, skipping the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared data not available: {path}")
    return path
