"""Crash and concurrency tests of the cache: SIGKILLed writers, racing readers and writers.

Workers live in ``tests/cache_helpers/workers.py``; every value they write is derived from the
entry name and a generation number, so after each kill the test knows exactly what every entry
may hold: the value of the previous generation or of the killed one, complete and verified.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cache import Store, open_matrix, partial_matrix

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "cache_helpers" / "workers.py"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def _load_workers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cache_test_workers", WORKER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


workers = _load_workers()


def _start(*args: str) -> subprocess.Popen[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"worker {args} did not start: {line!r}\n{err}")
    return proc


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def _kill(proc: subprocess.Popen[str]) -> bool:
    """SIGKILL the worker; ``True`` if it was still running."""
    running = proc.poll() is None
    if running:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return running


def _check_store(root: Path, state: dict[str, int | None], names: list[str], gen: int) -> int:
    """Verify every entry after a kill; update ``state``; return how many hold ``gen``."""
    store = Store(root)
    store.cleanup()
    assert os.listdir(store.tmp_dir) == [], "cleanup left temp items of a dead writer"
    n_new = 0
    for name in names:
        key = workers.key_of(name)
        before = state.get(name)
        if name == "matrix-0":
            matrix = open_matrix(store, key)
            if matrix is None:
                assert before is None, f"{name}: the entry of generation {before} vanished"
                continue
            got = int(matrix.meta["gen"])
            assert got in (before, gen), f"{name}: generation {got}, expected {before} or {gen}"
            matrix.verify()
            np.testing.assert_array_equal(
                matrix.rows(0, matrix.shape[0]), workers.expected_matrix(got)
            )
        else:
            entry = store.get(key)  # verify=True: every chunk hashed
            if entry is None:
                assert before is None, f"{name}: the entry of generation {before} vanished"
                continue
            got = int(entry.meta["gen"])
            assert got in (before, gen), f"{name}: generation {got}, expected {before} or {gen}"
            expected = workers.expected_arrays(name, got)
            assert set(entry.arrays) == set(expected)
            for array_name, array in expected.items():
                np.testing.assert_array_equal(entry.arrays[array_name], array)
                assert entry.arrays[array_name].dtype == array.dtype
        state[name] = got
        n_new += got == gen
        # exactly one live version and its pointer; no orphan versions after cleanup
        edir = store.entries_dir / key[:2] / key
        assert sorted(os.listdir(edir))[0] == "current"
        assert len(os.listdir(edir)) == 2
    listed = {info.key for info in store.ls()}
    on_disk = {workers.key_of(n) for n, g in state.items() if g is not None}
    assert listed == on_disk, "the index disagrees with the entry folders"
    store.close()
    return n_new


def test_sigkill_during_writes_never_serves_corrupt_entries(tmp_path: Path) -> None:
    """>= 50 writers killed at random moments: every served entry is complete and exact."""
    root = tmp_path / "store"
    state: dict[str, int | None] = {}
    seen: list[str] = []

    # Calibration: generations 1 (creates) and 2 (overwrites) run to completion; the second
    # one measures how long a worker writes, which spreads the kill delays below.
    duration = 0.05
    for gen in (1, 2):
        proc = _start("crash", str(root), str(gen))
        t0 = time.monotonic()
        _finish(proc)
        duration = max(duration, time.monotonic() - t0)
        seen.extend(n for n in workers.entry_names(gen) if n not in seen)
        assert _check_store(root, state, seen, gen) == len(workers.entry_names(gen))

    rng = np.random.default_rng(20240611)
    n_trials, mid_way, killed = 55, 0, 0
    budget = time.monotonic() + 50.0
    for gen in range(3, n_trials + 3):
        proc = _start("crash", str(root), str(gen))
        time.sleep(rng.uniform(0.0, 1.05 * duration))
        killed += _kill(proc)
        names = workers.entry_names(gen)
        seen.extend(n for n in names if n not in seen)
        n_new = _check_store(root, state, seen, gen)
        mid_way += 0 < n_new < len(names)
        if time.monotonic() > budget and gen - 2 >= 50:
            break
    print(f"trials={gen - 2} killed={killed} mid_way={mid_way} duration={duration:.2f}")
    assert gen - 2 >= 50
    assert killed >= 25, f"only {killed} workers were killed while writing"
    assert mid_way >= 10, f"only {mid_way} kills landed between the first and the last write"


def test_readers_racing_an_overwriting_writer_see_only_complete_values(tmp_path: Path) -> None:
    root = tmp_path / "store"
    key = workers.key_of("mid-0")
    proc = _start("overwrite", str(root), "25")
    store = Store(root)
    last_gen, reads = 0, 0
    while True:
        finished = proc.poll() is not None
        for mmap in (False, True):
            entry = store.get(key, mmap=mmap)
            if entry is None:
                assert last_gen == 0, "an entry disappeared while being overwritten"
                continue
            gen = int(entry.meta["gen"])
            assert gen >= last_gen
            np.testing.assert_array_equal(
                entry.arrays["a"], workers.expected_arrays("mid-0", gen)["a"]
            )
            last_gen, reads = gen, reads + 1
        if finished:
            break
    _finish(proc)
    print(f"reads={reads}")
    assert last_gen == 25
    assert reads > 2


def test_two_processes_computing_one_key_compute_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root).close()
    barrier, log = tmp_path / "go", tmp_path / "computed.log"
    key = "concurrent-key"
    procs = [_start("concurrent", str(root), key, str(barrier), str(log)) for _ in range(2)]
    barrier.touch()
    results = [json.loads(_finish(p).strip().splitlines()[-1]) for p in procs]
    assert len(log.read_text().split()) == 1, "both processes computed the key"
    assert sorted(r["cached"] for r in results) == [False, True]
    assert all(r["stored"] for r in results)
    assert results[0]["digest"] == results[1]["digest"]
    entry = Store(root).get(key)
    assert entry is not None
    assert workers.arrays_digest(entry.arrays) == results[0]["digest"]


def test_killed_resumable_matrix_keeps_finished_blocks(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rng = np.random.default_rng(7)
    shape, block_rows = workers.PARTIAL_SHAPE, workers.PARTIAL_BLOCK_ROWS
    n_blocks = -(-shape[0] // block_rows)
    done_before: set[int] = set()
    for _ in range(6):
        proc = _start("partial", str(root))
        time.sleep(rng.uniform(0.0, 0.03))
        _kill(proc)
        store = Store(root)
        store.cleanup()
        if store.contains(workers.PARTIAL_KEY):
            break  # the worker got to finish() before the kill
        part = partial_matrix(
            store,
            workers.PARTIAL_KEY,
            "partial-test",
            {"n": 1},
            shape,
            np.arange(shape[0]),
            np.array([f"c{j}" for j in range(shape[1])]),
            block_rows,
        )
        done = part.done_blocks()
        assert done >= done_before, "finished blocks were lost"
        for i in done:  # every block on disk is complete and exact
            path = next(part.folder.glob(f"block-{i:06d}-*.npy"))
            np.testing.assert_array_equal(
                np.load(path), workers.partial_block(*part.block_range(i))
            )
        done_before = done
    _finish(_start("partial", str(root)))
    matrix = open_matrix(Store(root), workers.PARTIAL_KEY)
    assert matrix is not None
    assert matrix.n_blocks == n_blocks
    expected = workers.partial_block(0, shape[0])
    np.testing.assert_array_equal(matrix.rows(0, shape[0]), expected)
    assert not (root / "partial" / workers.PARTIAL_KEY).exists()
