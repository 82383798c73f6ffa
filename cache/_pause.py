"""Test-only pause points on the write path: a crash test stops a writer at a named point.

The write path calls :func:`pause_point` with a name at each step after which a crash leaves a
different state on disk (arrays written, ``meta.json`` written, version folder renamed into
place, pointer replaced, ...). Normally nothing happens: the environment variable
``CACHE_TEST_PAUSE_AT`` is read once, at import, and when it is unset :func:`pause_point` is a
function that returns at once.

When ``CACHE_TEST_PAUSE_AT`` holds a comma-separated list of point names (or ``*`` for all of
them), a writer reaching one of those points writes the line ``cache-pause <name>`` to its
standard output, flushes it, and blocks reading one line from its standard input: any line lets
it go on; end of input lets it go on and stops all later pauses. A test running the writer as a
subprocess reads the markers and either answers or SIGKILLs the writer exactly there, so where a
crash lands never depends on the machine's speed.
"""

from __future__ import annotations

import os
import sys

__all__ = ["PAUSE_ENV", "POINTS", "pause_point"]

#: the environment variable that names the points to pause at
PAUSE_ENV = "CACHE_TEST_PAUSE_AT"

#: every pause point of the write path, in the order one entry passes them
POINTS = (
    "array_written",  # one array file of a new version written and fsynced
    "matrix_block_written",  # one block of a matrix written (before the file is fsynced)
    "meta_written",  # meta.json written and the version folder fsynced, still under tmp/
    "version_renamed",  # the version folder renamed into the entry folder; pointer unchanged
    "atomic_tmp_written",  # write_atomic: the temp file fsynced, not yet renamed over the target
    "atomic_replaced",  # write_atomic: the temp file renamed over the target (the commit)
    "stale_removed",  # older versions of the entry removed; index not yet updated
    "indexed",  # the index updated: the write is complete
    "partial_block_written",  # a resumable matrix: one block file renamed into place
)

_requested = frozenset(
    name.strip() for name in os.environ.get(PAUSE_ENV, "").split(",") if name.strip()
)
_active = bool(_requested)


def _pause(name: str) -> None:
    """Announce ``name`` on stdout and wait for one line on stdin (see the module docstring)."""
    global _active
    if "*" not in _requested and name not in _requested:
        return
    sys.stdout.write(f"cache-pause {name}\n")
    sys.stdout.flush()
    if not sys.stdin.readline():  # end of input: run on without pausing again
        _active = False


def pause_point(name: str) -> None:
    """Pause here when ``CACHE_TEST_PAUSE_AT`` names ``name`` (test-only; no-op otherwise).

    Parameters
    ----------
    name
        One of :data:`POINTS`.
    """
    if _active:
        _pause(name)
