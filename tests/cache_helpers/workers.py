"""Subprocess workers for ``tests/test_cache_crash.py`` and their deterministic data.

Run as ``python workers.py MODE ROOT ...``. Every array a worker writes is derived from the entry
name and a generation number, so the test can recompute exactly what each entry must hold.

Modes
-----
crash ROOT GEN
    Write every entry of :func:`entry_names` (shuffled by ``GEN``) with generation ``GEN``,
    overwriting older generations, then print ``done``. The test runs it with the cache's
    pause points on (``CACHE_TEST_PAUSE_AT``, see ``cache/_pause.py``) and kills it at one.
overwrite ROOT N
    Overwrite one key with generations 1..N (readers race against it).
concurrent ROOT KEY BARRIER LOG
    Wait for the file BARRIER, then ``get_or_compute`` KEY; the compute appends a line to LOG.
partial ROOT
    Resume the partial matrix of :data:`PARTIAL_KEY`, write its missing blocks, finish it
    (killed at its ``partial_block_written`` pause points).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "PARTIAL_BLOCK_ROWS",
    "PARTIAL_KEY",
    "PARTIAL_SHAPE",
    "arrays_digest",
    "entry_names",
    "expected_arrays",
    "expected_matrix",
    "key_of",
    "partial_block",
]

# name -> number of float32 values in array "a" (mixed small and multi-MB entries)
_SIZES = {
    "small-0": 300,
    "small-1": 2_000,
    "small-2": 5_000,
    "small-3": 12,
    "mid-0": 250_000,
    "mid-1": 400_000,
    "big-0": 1_500_000,
    "big-1": 2_200_000,
}
MATRIX_NAME = "matrix-0"
PARTIAL_KEY = "partial-matrix-0"
PARTIAL_SHAPE = (240, 300)
PARTIAL_BLOCK_ROWS = 16


def key_of(name: str) -> str:
    """Cache key of an entry name."""
    return f"crash-{name}"


def entry_names(gen: int) -> list[str]:
    """Names written by crash worker generation ``gen``: shared names plus one fresh name."""
    return [*_SIZES, MATRIX_NAME, f"fresh-{gen}"]


def _rng(name: str, gen: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(name.encode()), gen])


def expected_arrays(name: str, gen: int) -> dict[str, np.ndarray]:
    """The arrays entry ``name`` holds in generation ``gen``."""
    rng = _rng(name, gen)
    n = _SIZES.get(name, 100)
    return {
        "a": rng.random(n, dtype=np.float32),
        "b": (np.arange(64, dtype=np.int64) * gen).reshape(8, 8),
        "c": rng.integers(0, 2, size=(3, 5)).astype(bool),
    }


def expected_matrix(gen: int) -> np.ndarray:
    """The matrix of entry :data:`MATRIX_NAME` in generation ``gen`` (about 3 MB)."""
    return _rng(MATRIX_NAME, gen).random((700, 1100), dtype=np.float32)


def partial_block(start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the partial matrix."""
    rows = np.arange(start, stop, dtype=np.float32)[:, None]
    cols = np.arange(PARTIAL_SHAPE[1], dtype=np.float32)[None, :]
    return rows * 1000.0 + cols


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of a dict of arrays."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _crash(root: str, gen: int) -> None:
    from cache import Store, put_matrix

    store = Store(root)
    print("ready", flush=True)
    names = entry_names(gen)
    order = np.random.default_rng(gen).permutation(len(names))
    for i in order:
        name = names[int(i)]
        if name == MATRIX_NAME:
            matrix = expected_matrix(gen)
            blocks = [(s, matrix[s : s + 128]) for s in range(0, matrix.shape[0], 128)][::-1]
            put_matrix(
                store,
                key_of(name),
                "crash-test",
                {"name": name},
                iter(blocks),
                row_labels=np.arange(matrix.shape[0]),
                col_labels=np.arange(matrix.shape[1]),
                block_rows=100,
                meta={"gen": gen},
            )
        else:
            store.put(
                key_of(name), "crash-test", {"name": name}, expected_arrays(name, gen), {"gen": gen}
            )
    print("done", flush=True)


def _overwrite(root: str, n: int) -> None:
    from cache import Store

    store = Store(root)
    print("ready", flush=True)
    for gen in range(1, n + 1):
        store.put(
            key_of("mid-0"), "race", {"name": "mid-0"}, expected_arrays("mid-0", gen), {"gen": gen}
        )
    print("done", flush=True)


def _concurrent(root: str, key: str, barrier: str, log: str) -> None:
    from cache import Store

    store = Store(root)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(barrier):
        if time.monotonic() > deadline:
            raise SystemExit("barrier never appeared")
        time.sleep(0.001)

    def compute() -> tuple[dict[str, np.ndarray], dict[str, object]]:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.3)  # widen the window in which the other process asks for the key
        return expected_arrays("mid-1", 7), {"computed_by": os.getpid()}

    entry, cached = store.get_or_compute(key, "concurrent", {"n": 7}, compute)
    print(
        json.dumps(
            {"cached": cached, "stored": entry.info.stored, "digest": arrays_digest(entry.arrays)}
        ),
        flush=True,
    )


def _partial(root: str) -> None:
    from cache import Store, partial_matrix

    store = Store(root)
    labels_r = np.arange(PARTIAL_SHAPE[0])
    labels_c = np.array([f"c{j}" for j in range(PARTIAL_SHAPE[1])])
    part = partial_matrix(
        store,
        PARTIAL_KEY,
        "partial-test",
        {"n": 1},
        PARTIAL_SHAPE,
        labels_r,
        labels_c,
        PARTIAL_BLOCK_ROWS,
    )
    print("ready", flush=True)
    for i in part.missing_blocks():
        start, stop = part.block_range(i)
        part.write_block(i, partial_block(start, stop))
    part.finish()
    print("done", flush=True)


def main(argv: list[str]) -> None:
    """Dispatch on the mode (see the module docstring)."""
    mode, root, *rest = argv
    if mode == "crash":
        _crash(root, int(rest[0]))
    elif mode == "overwrite":
        _overwrite(root, int(rest[0]))
    elif mode == "concurrent":
        _concurrent(root, rest[0], rest[1], rest[2])
    elif mode == "partial":
        _partial(root)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project root, for `cache`
    main(sys.argv[1:])
