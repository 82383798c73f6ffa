"""Crash and concurrency tests of the cache: SIGKILLed writers, racing readers and writers.

Writers are killed at the cache's named pause points (``CACHE_TEST_PAUSE_AT``, see
``cache/_pause.py``): the worker stops there and the test SIGKILLs it, so where a crash lands
never depends on the machine's speed.

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
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cache import Store, open_matrix, partial_matrix
from cache._pause import PAUSE_ENV, POINTS

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


def _start(*args: str, pause_at: str | None = None) -> subprocess.Popen[str]:
    """Start a worker; with ``pause_at``, it stops at those cache pause points (``*``: all)."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    env.pop(PAUSE_ENV, None)
    if pause_at is not None:
        env[PAUSE_ENV] = pause_at
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
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


def _next_pause(proc: subprocess.Popen[str]) -> str | None:
    """The pause point the worker stopped at next, or ``None`` when it finished instead."""
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line == "done":
        return None
    if not line.startswith("cache-pause "):
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"unexpected worker output {line!r}\n{err}")
    return line.removeprefix("cache-pause ")


def _go_on(proc: subprocess.Popen[str]) -> None:
    """Let a paused worker run on to its next pause point."""
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()


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


def _calibrate(root: Path) -> dict[str, int]:
    """Run one overwriting generation through every pause point; count each point's visits."""
    proc = _start("crash", str(root), "2", pause_at="*")
    counts: dict[str, int] = {}
    while (point := _next_pause(proc)) is not None:
        counts[point] = counts.get(point, 0) + 1
        _go_on(proc)
    _finish(proc)
    return counts


def test_sigkill_during_writes_never_serves_corrupt_entries(tmp_path: Path) -> None:
    """Writers SIGKILLed at every pause point of the write path, at several visits of each:
    every served entry is complete and exact, and an entry holds the killed generation exactly
    when its pointer was replaced before the kill."""
    root = tmp_path / "store"
    state: dict[str, int | None] = {}
    seen: list[str] = []

    # generation 1 creates every entry, generation 2 overwrites them, pausing at every point
    _finish(_start("crash", str(root), "1"))
    seen.extend(workers.entry_names(1))
    assert _check_store(root, state, seen, 1) == len(workers.entry_names(1))
    visits = _calibrate(root)
    seen.extend(n for n in workers.entry_names(2) if n not in seen)
    assert _check_store(root, state, seen, 2) == len(workers.entry_names(2))
    n_entries = len(workers.entry_names(2))
    write_points = set(POINTS) - {"partial_block_written"}
    assert set(visits) == write_points, visits
    assert visits["atomic_replaced"] == visits["indexed"] == n_entries

    # one kill per (point, visit): each point of the write path at 4 of its visits (the last
    # one, then three drawn at random with a fixed seed)
    rng = np.random.default_rng(20240611)
    rounds = 4
    plan = [
        (point, int(visit))
        for r in range(rounds)
        for point in sorted(write_points)
        for visit in [rng.integers(visits[point]) if r else visits[point] - 1]
    ]
    mid_way = 0
    killed_at: dict[str, int] = {}
    for gen, (target, visit) in enumerate(plan, start=3):
        proc = _start("crash", str(root), str(gen), pause_at="*")
        n_visit, commits = 0, 0
        while True:
            point = _next_pause(proc)
            assert point is not None, f"generation {gen} never reached visit {visit} of {target}"
            commits += point == "atomic_replaced"
            if point == target:
                if n_visit == visit:
                    break
                n_visit += 1
            _go_on(proc)
        assert _kill(proc), "the paused worker was not running"
        killed_at[target] = killed_at.get(target, 0) + 1
        names = workers.entry_names(gen)
        seen.extend(n for n in names if n not in seen)
        n_new = _check_store(root, state, seen, gen)
        # the pointer switch is the commit: entries whose pointer was replaced hold `gen`
        assert n_new == commits, f"{target} visit {visit}: {n_new} new entries, {commits} commits"
        mid_way += 0 < n_new < len(names)
    print(f"kills={len(plan)} per point={killed_at} mid_way={mid_way} visits={visits}")
    assert killed_at == dict.fromkeys(sorted(write_points), rounds)
    assert mid_way >= len(plan) // 2, f"only {mid_way} kills landed between first and last write"


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
    """Writers of a resumable matrix killed after 0, 1, 2, ... finished blocks lose none."""
    root = tmp_path / "store"
    shape, block_rows = workers.PARTIAL_SHAPE, workers.PARTIAL_BLOCK_ROWS
    n_blocks = -(-shape[0] // block_rows)
    done_before: set[int] = set()
    for n_written in (0, 1, 2, 3, 1, 2, 3):  # 12 of the 15 blocks, then one run finishes
        proc = _start("partial", str(root), pause_at="partial_block_written")
        for k in range(n_written):  # killed right after its n_written-th block
            assert _next_pause(proc) == "partial_block_written"
            if k < n_written - 1:
                _go_on(proc)
        assert _kill(proc), "the paused worker was not running"
        store = Store(root)
        store.cleanup()
        assert not store.contains(workers.PARTIAL_KEY)
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
        assert len(done) == len(done_before) + n_written
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
